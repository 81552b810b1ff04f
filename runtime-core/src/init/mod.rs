//! The container's init, top to bottom: what the cloned child does between
//! `clone3` and the exec of the user's program. It never returns: it execs,
//! or reports why it failed to the parent and exits.

pub(crate) mod child_error;
pub(crate) mod stdio;
pub(crate) mod sync;
#[allow(missing_docs)]
pub(crate) mod waiter;

use crate::cgroups::{Cgroup, LateEntry};
use crate::hooks::{self, HookKind};
use crate::init::child_error::{AtStep, AtStepText, ChildError, ChildStep};
use crate::init::sync::{Channel, Message};
use crate::isolation::namespaces::Namespaces;
use crate::isolation::rootfs::{self, RootfsSetup};
use crate::process;
use crate::sys::procfs::PrivateProc;
use crate::{process::console, state::barrier, sys::fault};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, OwnedFd};

use std::path::Path;

/// What the parent hands the init (by memory: the init is a fork of it).
pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: &'a Cgroup,
    pub namespaces: &'a Namespaces,
    pub channel: Channel,
    pub barrier: OwnedFd,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub extra_env: &'a [String],
    pub seccomp: Option<&'a libseccomp::ScmpFilterContext>,
    /// Idmapped bind trees made by the parent, one entry per mount.
    pub idmapped: &'a [Option<OwnedFd>],
    /// The v1 cgroup directories the init moves itself into once let go
    /// (`None` when the parent puts it in its cgroup, as for a systemd scope).
    pub cgroup_entry: Option<crate::cgroups::Entry>,
    /// The cgroup driver's overlap: the parent makes the v1 directories while
    /// the init sets up, and sends them with `CgroupReady`
    /// ([`LateEntry`](crate::cgroups::LateEntry)).
    pub v1_cgroup_sent_later: bool,
    /// Where the init reports, after Ready, the pid of the process that runs
    /// the program: 0 for itself, or the one it forked (`pid_joined_late`).
    pub report: OwnedFd,
    /// The container joins a pid namespace by path and the init sets up
    /// outside it (`Namespaces::pid_joined_late`): the process that runs the
    /// program is forked into it at the end, from the waiter.
    pub pid_joined_late: bool,
    /// `linux.memoryPolicy`, checked by the parent: set before the exec,
    /// which keeps it, as do the processes forked after.
    pub memory_policy: Option<&'a crate::process::memory_policy::MemoryPolicy>,
    /// The caller's descriptors for 0, 1 and 2, put there first thing.
    pub stdio: Option<crate::init::stdio::Streams>,
}

/// Run the init. Only called in the freshly cloned child.
pub fn run(mut config: InitConfig) -> ! {
    let cgroup_entry = config.cgroup_entry.take();
    let stdio = config
        .stdio
        .take()
        .map_or(Ok(()), crate::init::stdio::Streams::install);
    let code = match stdio.and_then(|()| setup_and_exec(&config, cgroup_entry)) {
        Ok(Outcome::ParentGone) => 1,
        Err(reason) => {
            let _ = config.channel.send(&Message::Failed(reason));
            1
        }
    };
    // SAFETY: _exit skips the parent's atexit handlers and buffered I/O, which this copy must not run.
    unsafe { libc::_exit(code) }
}

enum Outcome {
    ParentGone,
}

fn setup_and_exec(
    config: &InitConfig,
    cgroup_entry: Option<crate::cgroups::Entry>,
) -> Result<Outcome, ChildError> {
    crate::sys::default_signals::reset_signals();
    // Device nodes and mount targets get exactly the modes the config asks for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    if !wait_for_parent(&config.channel)? {
        return Ok(Outcome::ParentGone);
    }
    // A v2 directory holds us since the clone. Directories made before it
    // are entered first, so every later step, and any cgroup namespace made
    // below, happens inside them; those the parent sends later, at the first
    // step that needs them (LateEntry).
    if let Some(entry) = cgroup_entry {
        entry.enter_v1().at_text(ChildStep::Cgroup)?;
    }
    let late_cgroup = LateEntry::new(&config.channel, config.v1_cgroup_sent_later);
    fault::hold("init-started");
    nix::sys::prctl::set_dumpable(false).map_err(|e| {
        ChildError::new(ChildStep::Process, format!("set non-dumpable: {e}")).with_errno_of(&e)
    })?;
    config
        .namespaces
        .enter_in_init()
        .at(ChildStep::Namespaces)?;
    fault::hold("init-namespaces-joined");
    if !config.no_new_keyring {
        crate::isolation::lsm::with_key_label(config.spec.process().as_ref(), || {
            crate::process::keyring::join_session(config.id)
        })
        .at_text(ChildStep::Keyring)?;
    }

    let mut state_for_hooks = None;
    // rootfs::prepare takes the reason as text: the step of a failure here
    // (cgroup, hooks) is kept aside, to report instead of the rootfs's.
    let pivot_failure = std::cell::RefCell::new(None);
    let mut at_pivot = || {
        fault::hold("init-mounted");
        let done = late_cgroup
            .enter()
            .map_err(ChildError::from)
            .and_then(|()| create_phase_hooks(config, &mut state_for_hooks));
        done.map_err(|e| {
            let text = e.message.clone();
            *pivot_failure.borrow_mut() = Some(e);
            text
        })
    };
    rootfs::prepare(
        &RootfsSetup {
            spec: config.spec,
            rootfs: config.rootfs,
            bundle: config.bundle,
            cgroup_binds: &config.cgroup.dirs,
            no_pivot: config.no_pivot,
            in_host_namespace: !config
                .namespaces
                .has_own(oci_spec::runtime::LinuxNamespaceType::Mount),
            // runc's rule: in a user namespace (the container's own, or one
            // the runtime runs in) mknod is refused, so the host's nodes are bound.
            bind_devices: config.namespaces.in_user_namespace()
                || crate::sys::host_userns::running_in_user_namespace(),
            idmapped: config.idmapped,
            late_cgroup: Some(&late_cgroup),
            proc_pid_namespace: config
                .namespaces
                .pid_joined_late()
                .filter(|_| config.pid_joined_late),
        },
        &mut at_pivot,
    )
    .map_err(|e| {
        let message = format!("error during container init: {e}");
        match pivot_failure.borrow_mut().take() {
            Some(failure) => ChildError { message, ..failure },
            None => crate::init::child_error::rootfs(&e, message),
        }
    })?;
    late_cgroup.enter()?;
    // In every cgroup now: not the caller's pinned CPUs, but all the
    // cgroup's cpuset allows (execCPUAffinity is not the init's; process/affinity.rs).
    crate::process::affinity::reset().at_text(ChildStep::Affinity)?;
    if let Some(policy) = config.memory_policy {
        policy.apply().at_text(ChildStep::MemoryPolicy)?;
    }
    fault::hold("init-rootfs-done");

    let process = config
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| ChildError::new(ChildStep::Exec, "config.json has no process to run"))?;
    if process.terminal().unwrap_or(false) {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = console::setup_in_container(size, true).at(ChildStep::Console)?;
        if !config.pid_joined_late {
            console::take_controlling_terminal().at(ChildStep::Session)?;
        }
        config
            .channel
            .send_with_fd(&Message::Console, Some(master.as_fd()))
            .map_err(|e| sync_failure(format!("send the console: {e}"), &e))?;
    } else if !config.pid_joined_late {
        // A session of its own, with or without a terminal, as runc's init
        // has: what the container runs is not in its creator's session, and
        // CRIU can dump it without --shell-job.
        setsid()?;
    }

    if config
        .namespaces
        .has_new(oci_spec::runtime::LinuxNamespaceType::Network)
    {
        crate::isolation::net_devices::loopback_up().map_err(|e| {
            ChildError::new(
                ChildStep::Namespaces,
                format!("set the loopback device up: {e}"),
            )
            .with_errno_of(&e)
        })?;
    }
    if let Some(hostname) = config.spec.hostname() {
        nix::unistd::sethostname(hostname).map_err(|e| {
            ChildError::new(
                ChildStep::Hostname,
                format!("set hostname {hostname:?}: {e}"),
            )
            .with_errno_of(&e)
        })?;
    }
    if let Some(domainname) = config.spec.domainname() {
        set_domainname(domainname)?;
    }
    let sysctl = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .filter(|s| !s.is_empty());
    if let Some(params) = sysctl {
        PrivateProc::open()
            .and_then(|proc| proc.apply_sysctl(params))
            .at(ChildStep::Sysctl)?;
    }
    if let Some(personality) = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        crate::process::scheduling::apply_personality(personality).at(ChildStep::Personality)?;
    }
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let mut process = process.clone();
    if !config.extra_env.is_empty() {
        process.set_env(Some(
            process
                .env()
                .iter()
                .flatten()
                .chain(config.extra_env)
                .cloned()
                .collect(),
        ));
    }
    // With the capabilities it is about to drop; only the process forked at
    // the end is born there (the hooks above ran outside it).
    if config.pid_joined_late {
        config
            .namespaces
            .join_pid_late()
            .at(ChildStep::Namespaces)?;
    }
    crate::isolation::lsm::apply_on_exec(&process).at(ChildStep::Lsm)?;
    let mut exec = process::apply(&process, config.seccomp.is_some() && !no_new_privs)?;
    process::close_runtime_fds(config.preserve_fds)?;
    fault::hold("init-attributes-set");
    // A listener needs its descriptor while the parent is still there to
    // pass it on: the filter then loads here, before the start barrier
    // (runc does the same).
    let notify_profile = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .filter(|p| crate::process::seccomp::uses_notify(p).unwrap_or(false));
    if let (Some(filter), Some(_)) = (config.seccomp, notify_profile) {
        exec.load_seccomp(filter)?;
        config.channel.send_seccomp_listener(filter)?;
    }
    let seccomp_at_exec = config.seccomp.filter(|_| notify_profile.is_none());
    let start_hooks = hooks::hooks_of(config.spec.hooks().as_ref(), HookKind::StartContainer);
    // The init waits as the waiter, so that nothing the container can see
    // (an exec'd process with CAP_SYS_PTRACE) is ever a copy of the runtime
    // (docs/security.md). A filter without no_new_privs needs CAP_SYS_ADMIN
    // to load, which the waiter lacks: it loads here, before the waiter's
    // exec, as runc's loads before its exec FIFO, when the profile lets the
    // waiter's own syscalls through (a notify profile is loaded already).
    // startContainer hooks run in the init after the barrier.
    let filter_before_waiter = seccomp_at_exec.filter(|_| !no_new_privs);
    let judges_waiter = filter_before_waiter.is_some() || notify_profile.is_some();
    let waiter_passes = !judges_waiter
        || config
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_some_and(crate::init::waiter::runs_under);
    let waiter = match start_hooks.is_empty() && waiter_passes {
        true => {
            crate::init::waiter::prepare(&process, seccomp_at_exec.filter(|_| no_new_privs)).ok()
        }
        false => None,
    };

    config
        .channel
        .send(&Message::Ready)
        .map_err(|e| sync_failure(format!("report readiness: {e}"), &e))?;
    // The parent reads the report, writes the state record with the pid it
    // names, and only then gives its go-ahead: by then nothing of the
    // runtime is left to see but a process that has no way back.
    let terminal = process.terminal().unwrap_or(false);
    let mut filter_loaded = false;
    if let Some(waiter) = waiter {
        if let Some(filter) = filter_before_waiter {
            exec.load_seccomp(filter)?;
            filter_loaded = true;
        }
        let handoff = crate::init::waiter::Handoff {
            report: Some(config.report.as_fd()),
            spawn: config.pid_joined_late,
            go: Some(config.channel.as_fd()),
            die_with: crate::sys::caller_death::runtime_to_die_with()
                .filter(|_| config.pid_joined_late),
            session: terminal && config.pid_joined_late,
            barrier: Some(config.barrier.as_fd()),
        };
        // Returns only when the exec failed, with nothing changed: go on here then.
        let _ = waiter.exec(&handoff, &exec);
    }
    if !report_and_wait(config, terminal)? {
        return Ok(Outcome::ParentGone);
    }
    barrier::wait(&config.barrier).at(ChildStep::StartBarrier)?;
    // A filter without no_new_privs loads before the hooks, with no_new_privs
    // after them, as runc's do: a hook runs under the first but not the second.
    if let Some(filter) = filter_before_waiter.filter(|_| !filter_loaded) {
        exec.load_seccomp(filter)?;
    }
    if !start_hooks.is_empty() {
        let state = with_status(state_for_hooks.as_deref().unwrap_or("{}"), "created");
        hooks::run_hooks(start_hooks, HookKind::StartContainer, &state).at(ChildStep::Hooks)?;
    }
    if let Some(filter) = seccomp_at_exec.filter(|_| no_new_privs) {
        exec.load_seccomp(filter)?;
    }
    Err(exec.run().into())
}

/// Without the waiter: report which process runs the program (this one, or
/// one forked into the pid namespace joined late, which goes on from here
/// while this one waits for the go-ahead and exits), then wait for the
/// parent's go-ahead. `false` if the parent died first.
fn report_and_wait(config: &InitConfig, terminal: bool) -> Result<bool, ChildError> {
    use std::io::Write;
    let mut report = std::fs::File::from(
        config
            .report
            .try_clone()
            .map_err(|e| sync_failure(format!("report to the runtime: {e}"), &e))?,
    );
    let forked = match config.pid_joined_late {
        false => 0,
        true => crate::isolation::namespaces::fork_as_sibling().at(ChildStep::Namespaces)?,
    };
    if config.pid_joined_late && forked == 0 {
        // The process that runs the program: the setup process's death
        // signal and terminal do not pass to it.
        crate::process::die_with_runtime()?;
        if terminal {
            console::take_controlling_terminal().at(ChildStep::Session)?;
        } else {
            setsid()?;
        }
        return Ok(true);
    }
    report
        .write_all(&forked.to_ne_bytes())
        .map_err(|e| sync_failure(format!("report to the runtime: {e}"), &e))?;
    let go = wait_for_parent(&config.channel);
    if forked > 0 {
        if !matches!(go, Ok(true)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(forked),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
        unsafe { libc::_exit(i32::from(!matches!(go, Ok(true)))) }
    }
    go
}

/// Kinds of hook that need the parent's state at the createRuntime point.
const CREATE_PHASE: [HookKind; 4] = [
    HookKind::Prestart,
    HookKind::CreateRuntime,
    HookKind::CreateContainer,
    HookKind::StartContainer,
];

/// At the point the spec names (mounts done, before pivot_root): have the
/// parent run prestart and createRuntime hooks in the runtime's namespaces,
/// then run createContainer hooks here, in the container's, from its rootfs.
fn create_phase_hooks(
    config: &InitConfig,
    state_for_hooks: &mut Option<String>,
) -> Result<(), ChildError> {
    let spec_hooks = config.spec.hooks().as_ref();
    if CREATE_PHASE
        .iter()
        .all(|kind| hooks::hooks_of(spec_hooks, *kind).is_empty())
    {
        return Ok(());
    }
    config
        .channel
        .send(&Message::RunHooks)
        .map_err(|e| sync_failure(format!("ask for the createRuntime hooks: {e}"), &e))?;
    let state = match config.channel.recv() {
        Ok(Some(Message::HooksDone(state))) => state,
        Ok(Some(other)) => {
            return Err(ChildError::new(
                ChildStep::Sync,
                format!("unexpected message from the runtime: {other:?}"),
            ))
        }
        Ok(None) => {
            return Err(ChildError::new(
                ChildStep::Sync,
                "the runtime exited while running hooks",
            ))
        }
        Err(e) => return Err(sync_failure(format!("read from the runtime: {e}"), &e)),
    };
    let create_hooks = hooks::hooks_of(spec_hooks, HookKind::CreateContainer);
    if !create_hooks.is_empty() {
        nix::unistd::chdir(config.rootfs).map_err(|e| {
            ChildError::new(
                ChildStep::Hooks,
                format!("chdir to the rootfs for createContainer hooks: {e}"),
            )
            .with_errno_of(&e)
        })?;
        // The parent waits for them: if it dies (or gives up and kills
        // us), they are killed rather than left running.
        hooks::run_hooks_for_runtime(
            create_hooks,
            HookKind::CreateContainer,
            &state,
            config.channel.as_fd(),
        )
        .at(ChildStep::Hooks)?;
    }
    *state_for_hooks = Some(state);
    Ok(())
}

/// The state JSON with another status.
fn with_status(state: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state) {
        Ok(mut value) => {
            value["status"] = serde_json::Value::String(status.into());
            value.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// Wait for the parent's go-ahead; `false` if the parent died first.
fn wait_for_parent(channel: &Channel) -> Result<bool, ChildError> {
    match channel.recv() {
        Ok(Some(Message::Proceed)) => Ok(true),
        Ok(None) => Ok(false),
        Ok(Some(other)) => Err(ChildError::new(
            ChildStep::Sync,
            format!("unexpected message from the runtime: {other:?}"),
        )),
        Err(e) => Err(sync_failure(format!("read from the runtime: {e}"), &e)),
    }
}

/// A failure to talk to the runtime, with its errno.
fn sync_failure(message: String, error: &std::io::Error) -> ChildError {
    ChildError::new(ChildStep::Sync, message).with_errno_of(error)
}

/// A session of its own (no terminal to make the controlling one).
fn setsid() -> Result<(), ChildError> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(|e| ChildError::new(ChildStep::Session, format!("setsid: {e}")).with_errno_of(&e))
}

fn set_domainname(name: &str) -> Result<(), ChildError> {
    // SAFETY: the pointer and length describe a live byte slice.
    if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ChildError::new(
            ChildStep::Domainname,
            format!("set domainname {name:?}: {e}"),
        )
        .with_errno_of(&e));
    }
    Ok(())
}
