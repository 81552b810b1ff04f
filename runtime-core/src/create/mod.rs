//! `create`, top to bottom: the parent's side of making a container.
//!
//! validate → claim the id → cgroup (v2) → start barrier → namespaces →
//! clone the init into it → let it set itself up (init.rs) while the v1
//! cgroup is made and handed to it → record the state → pid file → let the
//! init wait for `start`. Any failure before the
//! last step undoes everything done so far (see `Undo`). A create killed
//! before it writes the state leaves its cgroup recorded beside it, for
//! `delete` to undo (see `cgroup_intent`); `fault::point` marks each step
//! for the conformance suite's kill tests.

mod options;
mod systemd_unit;
mod undo;

pub use options::CreateOptions;
use undo::Undo;

use crate::cgroups::{self, Cgroup};
use crate::child_error::{ChildError, ChildStep};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::hooks::{self, HookKind};
use crate::host_file::StagedFile;
use crate::init::{self, InitConfig};
use crate::memory_policy::MemoryPolicy;
use crate::namespaces::Namespaces;
use crate::net_devices::NetDevices;
use crate::rootfs::host_mount;
use crate::state::{self, Record, StateRoot};
use crate::sync::{self, Message};
use crate::{barrier, cgroup_intent, fault, seccomp, spec};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::path::Path;

/// Create a container and leave its init blocked until `start`.
///
/// Forks: from a process with more than one thread it refuses with
/// [`Error::Threaded`] before anything exists. The child is made
/// non-dumpable before it enters the container's namespaces, so nothing in
/// the container can open this binary through `/proc/<pid>/exe`
/// (CVE-2019-5736); an embedding program is the binary in question.
pub fn create(options: &CreateOptions) -> Result<Container> {
    crate::single_thread::refuse_threaded()?;
    state::validate_id(&options.id)?;
    let bundle = std::path::absolute(&options.bundle).map_err(|source| Error::Bundle {
        path: options.bundle.clone(),
        source,
    })?;
    let mut spec = spec::load(&bundle)?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    check_terminal(terminal, options.console_socket.as_deref(), options.detach)?;
    // Taken now, whatever happens next: the caller's copies close once the init is cloned (stdio.rs).
    let stdio = options.stdio.take(terminal)?;
    refuse_unsupported(&spec)?;
    // Built here, so a bad profile fails before anything exists; the init inherits it.
    let seccomp_filter = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::build)
        .transpose()?;
    let rootfs = spec::rootfs_path(&spec, &bundle);
    let namespaces = Namespaces::from_spec(&spec)?;
    let linux_spec = spec.linux().as_ref();
    let own_netns = namespaces.has_own(oci_spec::runtime::LinuxNamespaceType::Network);
    let net_devices = linux_spec
        .and_then(|l| l.net_devices().as_ref())
        .map(|devices| NetDevices::check(devices, own_netns))
        .transpose()?
        .unwrap_or_default();
    let memory_policy = linux_spec
        .and_then(|l| l.memory_policy().as_ref())
        .map(MemoryPolicy::from_spec)
        .transpose()?;
    let pidfd_socket = options
        .pidfd_socket
        .as_deref()
        .map(crate::pidfd::PidfdSocket::connect)
        .transpose()?;

    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let scope = match options.systemd_cgroup {
        true => {
            let path = cgroups_path.as_deref().map(|p| p.to_string_lossy());
            let (scope, annotations) =
                systemd_unit::prepare(path.as_deref(), &options.id, &mut spec)
                    .map_err(cgroups::CgroupError::from)?;
            Some((scope, annotations))
        }
        false => None,
    };

    fault::arm();
    let root = StateRoot::open(&options.root)?;
    let mut undo = Undo::default();
    undo.dir = Some(root.claim(&options.id)?);
    fault::point("claimed");
    let dir_path = undo
        .dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default();
    // Recorded without the notify socket's mount and variable, which are
    // the init's alone: an exec'd process never had NOTIFY_SOCKET.
    let recorded_spec = options.notify_socket.then(|| spec.clone());
    if options.notify_socket {
        crate::notify::prepare(&mut spec, &dir_path)?;
    }
    let linux = spec.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    // The v1 directories (slow to make: memory's above all) are made while
    // the init sets itself up, which it does outside them until it gets
    // them (below) — unless it must be inside before it starts: a new cgroup
    // namespace is rooted where it is, and a rootless create learns only
    // from making them whether it may. The v2 directory is made first: the
    // init is born in it. systemd makes a scope only around a process: its
    // cgroup is set up once the init exists.
    let hierarchies = cgroups::hierarchies()?;
    let make_v1_later = scope.is_none()
        && !options.rootless
        && namespaces.clones_into_cgroup()
        && !namespaces.has_new(oci_spec::runtime::LinuxNamespaceType::Cgroup)
        && hierarchies.iter().any(|h| !h.v2);
    let made_first = if make_v1_later {
        cgroups::Versions::V2
    } else {
        cgroups::Versions::All
    };
    // The plan `delete` goes by if this create is killed: only what it makes (cgroup_intent.rs).
    let mut plan = Cgroup::default();
    let mut cgroup = match &scope {
        None => {
            let mut cgroup = Cgroup::plan_in(&hierarchies, cgroups_path.as_deref(), &options.id)?;
            plan = cgroup_intent::for_cgroupfs(&cgroup);
            cgroup_intent::record(&dir_path, &plan)?;
            fault::point("cgroup-recorded");
            match cgroup.make_in(&hierarchies, made_first) {
                Ok(()) => {
                    cgroup_intent::drop_found_dirs(
                        &dir_path,
                        &mut plan,
                        &cgroup,
                        &hierarchies,
                        made_first,
                    )?;
                    cgroup
                }
                Err(e) if options.rootless && e.is_permission() => {
                    let mut limits = resources.cloned().unwrap_or_default();
                    limits.set_devices(None);
                    if limits != Default::default() {
                        return Err(Error::RootlessLimits(e.to_string()));
                    }
                    cgroup_intent::forget(&dir_path);
                    Cgroup::default()
                }
                Err(e) => return Err(e.into()),
            }
        }
        Some((scope, _)) => {
            let cgroup = Cgroup::plan_in(
                &hierarchies,
                Some(&scope.cgroup_path().map_err(cgroups::CgroupError::from)?),
                &options.id,
            )?;
            cgroup_intent::record(&dir_path, &cgroup_intent::for_systemd_scope(&cgroup))?;
            fault::point("cgroup-recorded");
            cgroup
        }
    };
    undo.cgroup = Some(cgroup.clone());
    fault::point("cgroup-made");
    if scope.is_none() && !make_v1_later {
        set_limits(&cgroup, &spec)?;
        fault::point("limits-set");
    }
    let idmapped = crate::rootfs::idmapped_trees(&spec, &bundle)?;
    // Sharing the host's mount namespace, the init mounts its rootfs where
    // the host sees it: whatever is there now is not ours to take down.
    if !namespaces.has_own(oci_spec::runtime::LinuxNamespaceType::Mount) {
        let path = std::fs::canonicalize(&rootfs).map_err(|source| Error::HostMount {
            path: rootfs.clone(),
            source,
        })?;
        let before = host_mount::mount_id(&path).map_err(|source| Error::HostMount {
            path: path.clone(),
            source,
        })?;
        undo.host_rootfs = Some((path, before));
    }
    let barrier_fd = barrier::create(&dir_path)?;
    fault::point("barrier-made");
    let (parent_end, init_end) = sync::channel().map_err(Error::Sync)?;
    let (report_read, report_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Sync(e.into()))?;
    let pid_joined_late = namespaces.pid_joined_late().is_some();

    // The child inherits this, and it only resets at the user program's exec.
    // A rootless parent needs the init dumpable until the id maps are
    // written: the init turns non-dumpable itself then, before it does
    // anything in its namespaces (runc's init does the same). Nothing else
    // is in those new namespaces yet, and a rootless container's root is an
    // ordinary user on the host, who cannot write the runtime's binary.
    let dumpable_until_mapped = namespaces.maps_written_unprivileged();
    let dumpable = crate::caller_effects::DumpableForFork::set(
        dumpable_until_mapped,
        options.leave_caller_non_dumpable,
    )?;
    let caller_pidfd = crate::foreground::caller_pidfd(options.die_with_caller)?;
    // The init enters its cgroup itself (cgroups/entry.rs): no move by pid,
    // whose lock waits out an RCU grace period. A systemd scope is joined
    // below instead, once systemd has made it.
    let cgroup_entry = if scope.is_none() {
        Some(cgroup.entry_in(&hierarchies, made_first)?)
    } else {
        None
    };
    let into_cgroup = cgroup_entry
        .as_ref()
        .and_then(cgroups::Entry::v2_dir)
        .filter(|_| namespaces.clones_into_cgroup());
    let pid = namespaces.clone_init(into_cgroup, pid_joined_late)?;
    if pid == 0 {
        drop(parent_end);
        crate::foreground::die_with_caller_in_child(caller_pidfd);
        if let Some(dir) = undo.dir.as_mut() {
            dir.close_lock_in_child();
        }
        init::run(InitConfig {
            spec: &spec,
            id: &options.id,
            rootfs: &rootfs,
            bundle: &bundle,
            cgroup: &cgroup,
            namespaces: &namespaces,
            channel: init_end,
            barrier: barrier_fd,
            no_pivot: options.no_pivot,
            no_new_keyring: options.no_new_keyring,
            preserve_fds: options.preserve_fds,
            extra_env: &options.extra_env,
            seccomp: seccomp_filter.as_ref(),
            idmapped: &idmapped,
            cgroup_entry,
            v1_cgroup_sent_later: make_v1_later,
            report: report_write,
            pid_joined_late,
            memory_policy: memory_policy.as_ref(),
            stdio,
        });
    }
    undo.init_pid = Some(pid);
    drop(dumpable);
    drop(caller_pidfd);
    drop(stdio);
    fault::point("cloned");
    // Only the init may hold the barrier's read end: `start` detects a dead init by there being no reader.
    drop(barrier_fd);
    drop(init_end);
    drop(report_write);

    if let Some((scope, annotations)) = &scope {
        scope
            .start(
                &options.id,
                pid,
                resources,
                &device_rules(&spec),
                annotations,
            )
            .map_err(cgroups::CgroupError::from)?;
        cgroup.systemd_unit = Some(scope.unit.clone());
        undo.cgroup = Some(cgroup.clone());
        let joined = cgroup.make_and_join(pid);
        undo.cgroup = Some(cgroup.clone());
        joined?;
        cgroup_intent::record(&dir_path, &cgroup)?;
        set_limits(&cgroup, &spec)?;
    }
    if let Some(entry) = cgroup_entry.filter(|_| !namespaces.clones_into_cgroup()) {
        entry.add_to_v2(pid)?;
    }
    fault::point("in-cgroup");
    namespaces.write_id_maps(pid)?;
    net_devices.move_into_init(&namespaces, pid)?;
    if let Some(value) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        set_oom_score_adj(pid, value)?;
    }
    parent_end.send(&Message::Proceed).map_err(Error::Sync)?;
    fault::point("proceed-sent");
    if make_v1_later {
        let made = cgroup.make_in(&hierarchies, cgroups::Versions::V1);
        undo.cgroup = Some(cgroup.clone());
        made?;
        cgroup_intent::drop_found_dirs(
            &dir_path,
            &mut plan,
            &cgroup,
            &hierarchies,
            cgroups::Versions::V1,
        )?;
        fault::point("v1-cgroup-made");
        set_limits(&cgroup, &spec)?;
        fault::point("limits-set");
        let entry = cgroup.entry_in(&hierarchies, cgroups::Versions::V1)?;
        if let Err(e) = parent_end.send_with_fds(&Message::CgroupReady, &entry.v1_tasks()) {
            // The init may have failed meanwhile: its reason is the better error.
            return Err(match parent_end.recv() {
                Ok(Some(Message::Failed(reason))) => Error::Init(reason),
                _ => Error::Sync(e),
            });
        }
    }
    // The init now does its mounts, which take a while; meanwhile write the
    // state record and the pid file beside their final names. Creating those
    // files (inodes) is the slow part; the renames once the init is ready
    // are cheap, and until then no reader sees either.
    let (_, pid_start_time) = state::process_stat(pid)
        .ok_or_else(|| Error::init(ChildStep::Sync, "the container init exited during setup"))?;
    let mut record = Record {
        no_new_keyring: options.no_new_keyring,
        ..Record::made_from(
            &options.id,
            &spec,
            (pid, pid_start_time),
            bundle,
            rootfs,
            cgroup,
        )
    };
    let dir = undo
        .dir
        .as_ref()
        .ok_or(Error::init(ChildStep::Other, "state directory lost"))?;
    dir.stage(&record)?;
    // What exec and checkpoint read later, never the bundle (recorded_config.rs).
    crate::recorded_config::record(dir.path(), recorded_spec.as_ref().unwrap_or(&spec))?;
    if let Some(path) = &options.pid_file {
        undo.pid_file = Some(stage_pid_file(path, pid)?);
    }
    let mut console = None;
    loop {
        match parent_end.recv_unless_stopped("the container's init set itself up")? {
            Some((Message::Ready, _)) => break,
            Some((Message::Console, Some(master))) => console = Some(master),
            Some((Message::SeccompListener, Some(fd))) => {
                // The init sends one only for a profile with notify rules, which `build` checked has a listener.
                if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                    let state = hook_state(&options.id, pid, &spec, &record.bundle, &record.rootfs);
                    seccomp::hand_to_listener(profile, pid, &state, std::os::fd::AsFd::as_fd(&fd))?;
                }
            }
            Some((Message::RunHooks, _)) => {
                let state = hook_state(&options.id, pid, &spec, &record.bundle, &record.rootfs);
                for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                    hooks::run_hooks(hooks::hooks_of(spec.hooks().as_ref(), kind), kind, &state)?;
                }
                parent_end
                    .send(&Message::HooksDone(state))
                    .map_err(Error::Sync)?;
            }
            Some((Message::Failed(reason), _)) => return Err(Error::Init(reason)),
            Some((other, _)) => {
                return Err(Error::init(
                    ChildStep::Sync,
                    format!("unexpected message from init: {other:?}"),
                ))
            }
            None => {
                return Err(Error::init(
                    ChildStep::Sync,
                    "the container init exited during setup",
                ))
            }
        }
    }
    // The process that runs the program: the init, or the one it forked
    // into the pid namespace it joins late; the init then exits.
    let setup_pid = pid;
    let report = read_report(report_read).map_err(|e| {
        // An init that failed after Ready said why on the channel; the
        // waiter, by its exit status.
        match parent_end.recv() {
            Ok(Some(Message::Failed(reason))) => Error::Init(reason),
            _ => match (e, waitpid(Pid::from_raw(pid), None)) {
                (Error::Init(what), Ok(status)) => Error::Init(what.ended(status)),
                (e, _) => e,
            },
        }
    })?;
    let pid = match report {
        0 => pid,
        forked => {
            undo.init_pid = Some(forked);
            undo.setup_pid = Some(setup_pid);
            record.pid = forked;
            record.pid_start_time = state::process_stat(forked)
                .ok_or_else(|| {
                    Error::init(
                        ChildStep::Sync,
                        "the container's process exited before create finished",
                    )
                })?
                .1;
            if let Some(dir) = undo.dir.as_ref() {
                dir.stage(&record)?;
            }
            if let Some(staged) = &undo.pid_file {
                staged
                    .rewrite(forked.to_string().as_bytes())
                    .map_err(|source| Error::PidFile {
                        path: staged.path(),
                        source,
                    })?;
            }
            forked
        }
    };
    let console =
        crate::console::hand_over(options.console_socket.as_deref(), console).map_err(|e| {
            Error::Init(ChildError::new(ChildStep::Console, e.to_string()).with_errno_of(&e))
        })?;
    if let Some(socket) = &pidfd_socket {
        socket.send(pid, "standard")?;
    }
    fault::point("init-ready");

    let dir = undo
        .dir
        .as_ref()
        .ok_or(Error::init(ChildStep::Other, "state directory lost"))?;
    if let Some((path, before)) = &undo.host_rootfs {
        let now = host_mount::mount_id(path).map_err(|source| Error::HostMount {
            path: path.clone(),
            source,
        })?;
        if now != *before {
            record.host_rootfs_mount = Some(now);
            dir.stage(&record)?;
        }
    }
    dir.commit_staged()?;
    fault::point("state-written");
    if let Some(pid_file) = undo.pid_file.take() {
        commit_pid_file(pid_file)?;
        fault::point("pid-file-written");
    }
    parent_end.send(&Message::Proceed).map_err(Error::Sync)?;
    fault::point("released");
    if setup_pid != pid {
        let _ = waitpid(Pid::from_raw(setup_pid), None);
    }
    let dir = undo.disarm();
    Ok(Container::from_parts(dir, record, console))
}

/// The init's report after Ready: 0 when it runs the program itself, else
/// the pid of the process it forked for that (CLONE_PARENT: our child).
fn read_report(report: std::os::fd::OwnedFd) -> Result<i32> {
    use std::io::Read;
    let mut bytes = [0u8; 4];
    std::fs::File::from(report)
        .read_exact(&mut bytes)
        .map_err(|_| {
            Error::init(
                ChildStep::Sync,
                "the container init exited before it reported its process",
            )
        })?;
    let pid = i32::from_ne_bytes(bytes);
    match pid == 0 || crate::namespaces::is_own_child(pid) {
        true => Ok(pid),
        false => Err(Error::init(
            ChildStep::Sync,
            format!("the init reported pid {pid}, not a child of the runtime"),
        )),
    }
}

/// The device cgroup's rules: the config's, then access to its device nodes.
fn device_rules(spec: &oci_spec::runtime::Spec) -> Vec<cgroups::DeviceRule> {
    let linux = spec.linux().as_ref();
    cgroups::device_rules(
        linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_deref())
            .unwrap_or_default(),
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    )
}

/// Device rules, then `linux.resources`.
pub(crate) fn set_limits(cgroup: &Cgroup, spec: &oci_spec::runtime::Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let device_rules = device_rules(spec);
    // Without a cgroup (rootless), the user namespace is what keeps devices
    // out: its root can neither mknod nor open what the host does not grant.
    if !cgroup.dirs.is_empty() {
        cgroup.set_device_rules(&device_rules)?;
    }
    if let Some(resources) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply_resources(resources)?;
    }
    Ok(())
}

/// Refuse what this version cannot honour yet, rather than run a container
/// with less isolation or fewer limits than its config asks for.
fn refuse_unsupported(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let refuse = |what| Err(Error::Unsupported(what));
    if let Some(process) = spec.process() {
        crate::lsm::check(process)?;
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.intel_rdt().is_some() {
        return refuse("linux.intelRdt");
    }
    Ok(())
}

/// The state the create-phase hooks get on stdin (runtime.md "State"), status `creating`.
fn hook_state(
    id: &str,
    pid: i32,
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    rootfs: &Path,
) -> String {
    let state = state::ContainerState {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid,
        status: state::Status::Creating,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
    };
    serde_json::to_string(&state).unwrap_or_default()
}

/// `process.oomScoreAdj`, written by the parent through the host's /proc:
/// the init may not write its own once in a user namespace (its /proc files
/// belong to the host's root), and what it execs inherits the value.
fn set_oom_score_adj(pid: i32, value: i32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), value.to_string()).map_err(|e| {
        let failure = format!("set oom_score_adj to {value}: {e}");
        let failure = ChildError::new(ChildStep::Process, failure).with_errno_of(&e);
        Error::Init(failure.with_field("process.oomScoreAdj"))
    })
}

/// runc's rules for when a terminal needs a console socket.
pub(crate) fn check_terminal(
    terminal: bool,
    console_socket: Option<&Path>,
    detach: bool,
) -> Result<()> {
    match (terminal, console_socket.is_some(), detach) {
        (true, false, true) => Err(Error::TerminalWithoutSocket),
        (false, true, _) | (true, true, false) => Err(Error::SocketWithoutTerminal),
        _ => Ok(()),
    }
}

/// The pid with no newline, as containerd expects, staged as `.<name>`
/// beside `path` (host_file.rs: never through a link planted there). Mode
/// 0644 less the umask, where runc has 0666: an engine signals the pid it
/// reads here, so no other user may rewrite it.
pub(crate) fn stage_pid_file(path: &Path, pid: i32) -> Result<StagedFile> {
    StagedFile::stage(path, pid.to_string().as_bytes(), 0o644).map_err(|source| Error::PidFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Rename a staged pid file into place.
pub(crate) fn commit_pid_file(pid_file: StagedFile) -> Result<()> {
    let path = pid_file.path();
    pid_file
        .commit()
        .map_err(|source| Error::PidFile { path, source })
}
