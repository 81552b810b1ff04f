//! `exec`, top to bottom: a new process in a running container.
//!
//! The parent forks a setup child that stays in the host's pid namespace,
//! where nothing in the container can see it. The child joins the
//! container's cgroup and namespaces (the pid and time ones for its
//! children; mount last, which also makes the container's root its root),
//! makes its terminal if asked, applies the process attributes and the
//! container's seccomp profile, and execs the waiter, which forks the process
//! into the pid namespace as the parent's child and execs the user's
//! program there (docs/security.md: a container with CAP_SYS_PTRACE never
//! sees a copy of the runtime).

use crate::init::child_error::{AtStep, AtStepText, ChildError, ChildStep};
use crate::init::sync::{self, Channel, Message};
use crate::isolation::namespaces::Namespaces;
use crate::lifecycle::container::Container;
use crate::lifecycle::error::{Error, Result};
use crate::process::affinity::{self, ExecAffinity};
use crate::process::memory_policy::MemoryPolicy;
use crate::state::Status;
use crate::sys::pidfd::PidfdSocket;
use crate::{init::waiter, isolation::namespaces, process, process::console, process::seccomp};
use oci_spec::runtime::{LinuxMemoryPolicy, LinuxSeccomp, Process};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// What `exec` runs and how.
///
/// Start from [`ExecOptions::for_container`] (the container's own process
/// running other arguments) or [`ExecOptions::for_container_process`] (a
/// whole process of the caller's, as runc's `--process`): both take the
/// container's seccomp profile and memory policy from what create recorded
/// (see [`Container::config`]), never from the bundle. There is no
/// `Default`: a struct literal must name `seccomp`, so running without the
/// container's filter is always an explicit choice
/// ([`ExecOptions::without_seccomp`]). Not `Clone`: it may own the
/// descriptors given for the process's stdio ([`ExecOptions::stdio`](#structfield.stdio)).
#[derive(Debug)]
pub struct ExecOptions {
    /// The process to run (runc's process.json, or one built from the container's own).
    pub process: Process,
    /// The container's seccomp profile, which exec'd processes get too.
    pub seccomp: Option<LinuxSeccomp>,
    /// A unix socket to send the terminal's master to (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Where to write the process's host pid.
    pub pid_file: Option<PathBuf>,
    /// Pass file descriptors 3 .. 3+N of the caller to the process.
    pub preserve_fds: u32,
    /// Whether the caller returns without waiting, for the terminal checks.
    pub detach: bool,
    /// Exec into a paused container (the process starts frozen).
    pub ignore_paused: bool,
    /// Existing sub-cgroups of the container's cgroup to put the process in
    /// (runc's `--cgroup`): (controller, path), controller "" for every hierarchy.
    pub sub_cgroups: Vec<(String, PathBuf)>,
    /// Where to send a pidfd of the process once it runs (runc 1.2's `--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
    /// The container's `linux.memoryPolicy`, which exec'd processes get
    /// too (as runc's): set before the exec, which keeps it.
    pub memory_policy: Option<LinuxMemoryPolicy>,
    /// The process dies (SIGKILL) when the caller does (a pidfd of the
    /// caller, for this exec alone).
    pub die_with_caller: bool,
    /// Keep the caller non-dumpable after the fork, as `berth` does;
    /// otherwise its dumpable flag is put back once the setup child is
    /// forked (see `caller_effects`).
    pub leave_caller_non_dumpable: bool,
    /// The process's stdin, stdout and stderr, in place of the caller's (by
    /// default, each inherited): taken by `exec`, the caller's copies
    /// closed once its setup child is forked. Refused with `process.terminal`.
    pub stdio: crate::Stdio,
}

impl ExecOptions {
    /// Run `args` as the container's own process, as create recorded it
    /// (user with its additional groups and umask, env, cwd, capabilities,
    /// rlimits, no_new_privileges, AppArmor profile and SELinux label, I/O
    /// priority, scheduler, execCPUAffinity), without a terminal, under the
    /// container's seccomp profile and memory policy.
    pub fn for_container(container: &Container, args: Vec<String>) -> Result<ExecOptions> {
        let config = container.config()?;
        let mut process = config.process().clone().unwrap_or_default();
        process.set_args(Some(args));
        process.set_terminal(Some(false));
        process.set_console_size(None);
        Ok(ExecOptions::from_config(&config, process))
    }

    /// Run `process` (a whole process, runc's process.json) in `container`,
    /// under the container's recorded seccomp profile and memory policy;
    /// without an execCPUAffinity of its own it takes the config's, as
    /// runc's does.
    pub fn for_container_process(container: &Container, process: Process) -> Result<ExecOptions> {
        Ok(ExecOptions::from_config(&container.config()?, process))
    }

    /// Drop the container's seccomp profile: the process runs unfiltered.
    pub fn without_seccomp(mut self) -> ExecOptions {
        self.seccomp = None;
        self
    }

    fn from_config(config: &oci_spec::runtime::Spec, mut process: Process) -> ExecOptions {
        if process.exec_cpu_affinity().is_none() {
            let configured = config
                .process()
                .as_ref()
                .and_then(|p| p.exec_cpu_affinity().clone());
            process.set_exec_cpu_affinity(configured);
        }
        let linux = config.linux().as_ref();
        ExecOptions {
            process,
            seccomp: linux.and_then(|l| l.seccomp().clone()),
            console_socket: None,
            pid_file: None,
            preserve_fds: 0,
            detach: false,
            ignore_paused: false,
            sub_cgroups: Vec::new(),
            pidfd_socket: None,
            memory_policy: linux.and_then(|l| l.memory_policy().clone()),
            die_with_caller: false,
            leave_caller_non_dumpable: false,
            stdio: crate::Stdio::default(),
        }
    }
}

/// A process started in a container.
#[derive(Debug)]
pub struct ExecProcess {
    /// Host pid; a child of the caller.
    pub pid: crate::Pid,
    /// The terminal's master, in the foreground with `process.terminal`.
    pub console: Option<OwnedFd>,
    /// A pidfd of the process, opened while it was the caller's unreaped
    /// child (so it is this process, never a recycled pid): to poll for its
    /// exit, or to signal it with `pidfd_send_signal`.
    pub pidfd: OwnedFd,
}

impl ExecProcess {
    /// Wait for the process to exit, and reap it, through its pidfd: only
    /// this process, with no change to the caller's signal mask or
    /// handlers. The caller of `exec` is its parent; a wait by anyone
    /// else, or a second one, is [`Error::NotChild`].
    pub fn wait(&self) -> Result<crate::ExitStatus> {
        crate::lifecycle::wait::wait(self.pidfd.as_fd(), self.pid.as_raw())
    }
}

/// Start `options.process` in `container`. Forks: from a process with more
/// than one thread it refuses with [`Error::Threaded`] before anything exists.
pub fn exec(container: &Container, options: &ExecOptions) -> Result<ExecProcess> {
    span!("exec", id = %container.id());
    crate::lifecycle::single_thread::refuse_threaded()?;
    let _standard_fds = crate::lifecycle::caller_effects::standard_fds()?;
    match container.status() {
        Status::Running | Status::Created => {}
        Status::Paused if options.ignore_paused => {}
        Status::Paused => return Err(Error::ExecPaused),
        Status::Stopped => return Err(Error::ExecStopped),
        other => return Err(Error::ExecInState(other)),
    }
    // runc checks a process.json and the flags' result alike (relative cwd, no args).
    crate::spec::validate_process(&options.process)?;
    let terminal = options.process.terminal().unwrap_or(false);
    crate::lifecycle::create::check_terminal(
        terminal,
        options.console_socket.as_deref(),
        options.detach,
    )?;
    let stdio = options.stdio.take(terminal)?;
    crate::isolation::lsm::check(&options.process)?;
    let affinity = ExecAffinity::of(&options.process)?;
    let filter = options.seccomp.as_ref().map(seccomp::build).transpose()?;
    // Probed on a thread that is gone before the fork below.
    let memory_policy = options
        .memory_policy
        .as_ref()
        .map(MemoryPolicy::from_spec)
        .transpose()?;
    let cgroup = container.record().cgroup.sub_cgroup(&options.sub_cgroups)?;
    let pidfd_socket = options
        .pidfd_socket
        .as_deref()
        .map(PidfdSocket::connect)
        .transpose()?;
    let namespaces = Namespaces::of_process(container.pid().as_raw())?;
    // Read here: the setup child's mounted /proc is the container's, where
    // it has no /proc/self.
    let setgroups_denied = process::setgroups_denied_in(std::path::Path::new(&format!(
        "/proc/{}/setgroups",
        container.pid()
    )));
    let (parent_end, child_end) = sync::channel().map_err(Error::Sync)?;
    let (spawn_read, spawn_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
            Error::Init(
                ChildError::new(ChildStep::Sync, format!("make the spawn pipe: {e}"))
                    .with_errno_of(&e),
            )
        })?;

    let dumpable = crate::lifecycle::caller_effects::DumpableForFork::set(
        false,
        options.leave_caller_non_dumpable,
    )?;
    let caller_pidfd = crate::sys::caller_death::caller_pidfd(options.die_with_caller)?;
    // The child enters the cgroup itself, as create's init does (cgroups/entry.rs).
    let entry = cgroup.entry()?;
    // The setup child is born on `initial`'s CPUs; the caller's own
    // affinity comes back as soon as it is forked.
    let caller_affinity = affinity::narrow_to(&affinity)
        .at_text(ChildStep::Affinity)
        .map_err(Error::Init)?;
    let setup_pid = namespaces.fork_outside(entry.v2_dir());
    if !matches!(setup_pid, Ok(0)) {
        affinity::restore(caller_affinity);
    }
    let setup_pid = setup_pid?;
    if setup_pid == 0 {
        drop(parent_end);
        crate::sys::caller_death::die_with_caller_in_child(caller_pidfd);
        drop(spawn_read);
        process::assume_setgroups_denied(setgroups_denied);
        let keyring = (!container.record().no_new_keyring).then(|| container.record().id.as_str());
        let installed = stdio.map_or(Ok(()), crate::init::stdio::Streams::install);
        let failure = match installed {
            Err(failure) => failure,
            Ok(()) => run_child(
                &namespaces,
                &child_end,
                entry,
                options,
                Prepared {
                    filter: filter.as_ref(),
                    memory_policy: memory_policy.as_ref(),
                },
                keyring,
                spawn_write,
            ),
        };
        let _ = child_end.send(&Message::Failed(failure));
        // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
        unsafe { libc::_exit(1) };
    }
    drop(dumpable);
    drop(caller_pidfd);
    drop(stdio);
    drop(child_end);
    drop(spawn_write);
    drop(entry);
    let reap = |pid: i32| {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    let kill_setup = |e: Error| {
        reap(setup_pid);
        e
    };
    // Staged before the setup child may go on, so a pid file that cannot
    // be written (runc: "file exists") stops it before anything of the
    // caller's runs; given the pid once the process is forked, and renamed
    // into place once it has exec'd.
    let pid_file = options
        .pid_file
        .as_deref()
        .map(|path| crate::lifecycle::create::stage_pid_file(path, 0))
        .transpose()
        .map_err(kill_setup)?;
    parent_end
        .send(&Message::Proceed)
        .map_err(|e| kill_setup(Error::Sync(e)))?;
    let mut console = None;
    let mut listener = None;
    // The child closes its end when it execs the waiter (close-on-exec):
    // end-of-file means its setup is done.
    loop {
        match parent_end
            .recv_unless_stopped("the process to exec started")
            .map_err(|e| kill_setup(e.into()))?
        {
            Some((Message::Console, Some(master))) => console = Some(master),
            Some((Message::SeccompListener, Some(fd))) => match &options.seccomp {
                // A listener that may be sent the waiter's syscalls before
                // its report must have its descriptor now, with the only
                // pid known yet.
                Some(profile) if waiter::may_notify_before_report(profile) => {
                    let state = serde_json::to_string(&container.state()).unwrap_or_default();
                    seccomp::hand_to_listener(profile, setup_pid, &state, fd.as_fd())
                        .map_err(|e| kill_setup(e.into()))?;
                }
                _ => listener = Some(fd),
            },
            Some((Message::Failed(reason), _)) => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(setup_pid), None);
                return Err(Error::Init(reason));
            }
            Some((other, _)) => {
                return Err(kill_setup(Error::init(
                    ChildStep::Sync,
                    format!("unexpected message from the exec'd process: {other:?}"),
                )))
            }
            None => break,
        }
    }
    let mut spawn = SpawnPipe(std::fs::File::from(spawn_read));
    let spawned = spawn.read_pid();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(setup_pid), None);
    let pid = spawned?;
    let kill_child = |e: Error| {
        reap(pid);
        e
    };
    // Our unreaped child: the pid cannot have been recycled.
    let pidfd = crate::sys::pidfd::open(pid)
        .map_err(|source| kill_child(crate::sys::pidfd::PidfdError::Open { pid, source }.into()))?;
    if let (Some(profile), Some(fd)) = (&options.seccomp, &listener) {
        let state = serde_json::to_string(&container.state()).unwrap_or_default();
        seccomp::hand_to_listener(profile, pid, &state, fd.as_fd())
            .map_err(|e| kill_child(e.into()))?;
    }
    if let Some(staged) = &pid_file {
        staged
            .rewrite(pid.to_string().as_bytes())
            .map_err(|source| {
                kill_child(Error::PidFile {
                    path: staged.path(),
                    source,
                })
            })?;
    }
    spawn.wait_for_exec().map_err(kill_child)?;
    let console = console::hand_over(options.console_socket.as_deref(), console)
        .at(ChildStep::Console)
        .map_err(|e| kill_child(Error::Init(e)))?;
    if let Some(socket) = &pidfd_socket {
        socket
            .send(pid, "setns")
            .map_err(|e| kill_child(e.into()))?;
    }
    if let Some(pid_file) = pid_file {
        crate::lifecycle::create::commit_pid_file(pid_file).map_err(kill_child)?;
    }
    Ok(ExecProcess {
        pid: crate::Pid::from_raw(pid),
        console,
        pidfd,
    })
}

/// The read end of the spawn pipe. The setup child (or the waiter it
/// became) writes the pid of the process it forked into the container; that
/// process writes its errno if its execve fails, and closes its end by
/// exec'ing.
struct SpawnPipe(std::fs::File);

impl SpawnPipe {
    /// Wait until the pipe has something to read, unless a stop signal comes first.
    fn wait_unless_stopped(&self) -> Result<()> {
        crate::sys::stop_signals::wait_readable(self.0.as_fd(), "the process to exec started")?;
        Ok(())
    }

    fn read_pid(&mut self) -> Result<i32> {
        use std::io::Read;
        self.wait_unless_stopped()?;
        let mut bytes = [0u8; 4];
        self.0.read_exact(&mut bytes).map_err(|_| {
            Error::init(
                ChildStep::Sync,
                "the exec'd process failed before it started (see the host's log)",
            )
        })?;
        let pid = i32::from_ne_bytes(bytes);
        // Anything but our child was not written by the setup child, and is
        // not ours to wait for or signal.
        match namespaces::is_own_child(pid) {
            true => Ok(pid),
            false => Err(Error::init(
                ChildStep::Sync,
                format!("the exec'd process reported pid {pid}, not a child of the runtime"),
            )),
        }
    }

    /// End-of-file once the process has exec'd; its errno if that failed.
    fn wait_for_exec(mut self) -> Result<()> {
        use std::io::Read;
        // An execve a seccomp agent holds may never be done.
        self.wait_unless_stopped()?;
        let mut bytes = Vec::new();
        self.0.read_to_end(&mut bytes).map_err(|e| {
            Error::Init(
                ChildError::new(
                    ChildStep::Sync,
                    format!("read from the exec'd process: {e}"),
                )
                .with_errno_of(&e),
            )
        })?;
        match bytes.get(..4) {
            None => Ok(()),
            Some(b) => {
                let errno = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                let mut failure = ChildError::new(
                    ChildStep::Exec,
                    format!("exec the process: {}", nix::errno::Errno::from_raw(errno)),
                );
                failure.errno = Some(errno);
                Err(Error::Init(failure))
            }
        }
    }
}

/// The setup child's side, outside the container's pid namespace and so
/// out of sight of everything in it: join the other namespaces (mount last,
/// which makes the container's root ours), set up the process, and only
/// then fork the process that runs into the pid namespace, from the waiter
/// (docs/security.md). Returns only on failure, with the reason.
/// What `exec` builds and checks before the fork, for the setup child to apply.
struct Prepared<'a> {
    filter: Option<&'a libseccomp::ScmpFilterContext>,
    memory_policy: Option<&'a MemoryPolicy>,
}

fn run_child(
    namespaces: &Namespaces,
    channel: &Channel,
    cgroup_entry: crate::cgroups::Entry,
    options: &ExecOptions,
    prepared: Prepared<'_>,
    session_keyring: Option<&str>,
    spawn: OwnedFd,
) -> ChildError {
    let Prepared {
        filter,
        memory_policy,
    } = prepared;
    crate::sys::default_signals::reset_signals();
    match channel.recv() {
        Ok(Some(Message::Proceed)) => {}
        _ => {
            return ChildError::new(
                ChildStep::Sync,
                "the runtime went away before the process could start",
            )
        }
    }
    if let Err(e) = cgroup_entry.enter_v1().at_text(ChildStep::Cgroup) {
        return e;
    }
    // In the container's cgroups: `final`, or the cgroup's CPUs (not the
    // caller's); the waiter and the process it forks keep it.
    let affinity = ExecAffinity::of(&options.process).at(ChildStep::Affinity);
    if let Err(e) = affinity.and_then(|a| a.apply_final().at_text(ChildStep::Affinity)) {
        return e;
    }
    if let Err(e) = memory_policy
        .map_or(Ok(()), MemoryPolicy::apply)
        .at_text(ChildStep::MemoryPolicy)
    {
        return e;
    }
    if let Err(e) = namespaces.enter_from_outside().at(ChildStep::Namespaces) {
        return e;
    }
    let process = &options.process;
    if let Some(name) = session_keyring {
        let joined = crate::isolation::lsm::with_key_label(Some(process), || {
            crate::process::keyring::join_session(name)
        });
        if let Err(e) = joined.at_text(ChildStep::Keyring) {
            return e;
        }
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = match console::setup_in_container(size, false).at(ChildStep::Console) {
            Ok(master) => master,
            Err(e) => return e,
        };
        if let Err(e) = channel.send_with_fd(&Message::Console, Some(master.as_fd())) {
            return ChildError::new(ChildStep::Sync, format!("send the console: {e}"))
                .with_errno_of(&e);
        }
    }
    if let Err(e) = crate::isolation::lsm::apply_on_exec(process).at(ChildStep::Lsm) {
        return e;
    }
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let mut exec = match process::apply(process, filter.is_some() && !no_new_privs) {
        Ok(exec) => exec,
        Err(e) => return e.into(),
    };
    if let Err(e) = process::close_runtime_fds(options.preserve_fds) {
        return e.into();
    }
    let profile = options.seccomp.as_ref();
    let notify = profile.is_some_and(|p| seccomp::uses_notify(p).unwrap_or(false));
    // Under no_new_privs (and without a listener to hand over) the waiter
    // loads the filter itself, right before the user's execve; otherwise it
    // loads here, and must let the waiter's own syscalls through.
    let late_filter = filter.filter(|_| no_new_privs && !notify);
    let waiter = match late_filter.is_some()
        || filter.is_none()
        || profile.is_some_and(waiter::runs_under)
    {
        true => waiter::prepare(process, late_filter).ok(),
        false => None,
    };
    let Some(waiter) = waiter else {
        return spawn_without_waiter(exec, filter, notify, channel, spawn, terminal);
    };
    if let Some(filter) = filter.filter(|_| late_filter.is_none()) {
        if let Err(e) = load_filter(&mut exec, filter, notify, channel) {
            return e;
        }
    }
    let handoff = waiter::Handoff {
        report: Some(spawn.as_fd()),
        spawn: true,
        session: terminal,
        ..Default::default()
    };
    ChildError::new(ChildStep::Exec, waiter.exec(&handoff, &exec).to_string())
}

/// Load the filter, and send its listener's descriptor to the parent.
fn load_filter(
    exec: &mut process::Exec,
    filter: &libseccomp::ScmpFilterContext,
    notify: bool,
    channel: &Channel,
) -> std::result::Result<(), ChildError> {
    exec.load_seccomp(filter).map_err(ChildError::from)?;
    // The listener's descriptor must reach the parent: sendmsg is the one
    // syscall a notifying filter may not take from the runtime.
    if notify {
        channel.send_seccomp_listener(filter)?;
    }
    Ok(())
}

/// Where there is no waiter (an LSM label, which applies at the next exec
/// and confines ptrace; a build for another architecture; a filter without
/// no_new_privs that would stop the waiter's syscalls): fork the process
/// into the pid namespace from here, where it loads the filter itself. It
/// is this copy of the runtime until its execve (docs/security.md says what
/// that leaves).
fn spawn_without_waiter(
    mut exec: process::Exec,
    filter: Option<&libseccomp::ScmpFilterContext>,
    notify: bool,
    channel: &Channel,
    spawn: OwnedFd,
    terminal: bool,
) -> ChildError {
    use std::io::Write;
    let mut spawn = std::fs::File::from(spawn);
    match namespaces::fork_as_sibling() {
        Ok(0) => {
            let session = match terminal {
                true => console::take_controlling_terminal().at(ChildStep::Session),
                false => Ok(()),
            };
            let loaded = session.and_then(|()| {
                filter.map_or(Ok(()), |f| load_filter(&mut exec, f, notify, channel))
            });
            let errno = match loaded {
                Err(reason) => {
                    let _ = channel.send(&Message::Failed(reason));
                    libc::EPERM
                }
                Ok(()) => match exec.run() {
                    process::ProcessError::Exec { source, .. } => source as i32,
                    other => {
                        let _ = channel.send(&Message::Failed(other.into()));
                        libc::EINVAL
                    }
                },
            };
            let _ = spawn.write_all(&errno.to_ne_bytes());
            // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
            unsafe { libc::_exit(1) }
        }
        Ok(pid) => match spawn.write_all(&pid.to_ne_bytes()) {
            // SAFETY: as above; the forked process is the runtime's child now.
            Ok(()) => unsafe { libc::_exit(0) },
            Err(e) => ChildError::new(
                ChildStep::Sync,
                format!("report the exec'd process's pid: {e}"),
            )
            .with_errno_of(&e),
        },
        Err(e) => ChildError::new(ChildStep::Namespaces, e.to_string()).with_errno_of(&e),
    }
}
