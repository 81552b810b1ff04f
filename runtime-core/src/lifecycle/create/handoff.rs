//! Create's fifth phase: the conversation with the init over the sync
//! channel (init/sync.rs). `let_go`: the cgroup it must be in (a systemd scope,
//! the v2 directory), its id maps, network devices and oom_score_adj, the
//! first Proceed, then the v1 directories it enters later (CgroupReady).
//! `until_ready`: the hooks it asks for, its console and seccomp listener,
//! Ready, its report of the process that runs the program, and the console
//! and pidfd sent on to the caller's sockets.

use super::prepare::{device_rules, set_limits, Prepared};
use super::validate::Validated;
use super::{CreateOptions, Undo};
use crate::hooks::{self, HookKind};
use crate::init::child_error::{ChildError, ChildStep};
use crate::init::sync::Message;
use crate::lifecycle::error::{Error, Result};
use crate::{cgroups, process::seccomp, state, state::cgroup_intent, sys::fault};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Put the init in its cgroup, write its id maps and let it set up; the
/// v1 directories it enters later are made and sent meanwhile.
pub(super) fn let_go(
    options: &CreateOptions,
    valid: &Validated,
    prepared: &mut Prepared,
    pid: i32,
    undo: &mut Undo,
) -> Result<()> {
    let spec = &valid.spec;
    let namespaces = &valid.namespaces;
    let cgroup = &mut prepared.cgroup;
    let dir = undo
        .dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default();
    if let Some((scope, annotations)) = &valid.scope {
        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        scope
            .start(
                &options.id,
                pid,
                resources,
                &device_rules(spec),
                annotations,
            )
            .map_err(cgroups::CgroupError::from)?;
        cgroup.systemd_unit = Some(scope.unit.clone());
        undo.cgroup = Some(cgroup.clone());
        let joined = cgroup.make_and_join(pid);
        undo.cgroup = Some(cgroup.clone());
        joined?;
        cgroup_intent::record(&dir, cgroup)?;
        set_limits(cgroup, spec)?;
    }
    if let Some(entry) = prepared
        .cgroup_entry
        .as_ref()
        .filter(|_| !namespaces.clones_into_cgroup())
    {
        entry.add_to_v2(pid)?;
    }
    fault::point("in-cgroup");
    namespaces.write_id_maps(pid)?;
    valid.net_devices.move_into_init(namespaces, pid)?;
    if let Some(value) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        set_oom_score_adj(pid, value)?;
    }
    let channel = &prepared.channel;
    channel.send(&Message::Proceed).map_err(Error::Sync)?;
    fault::point("proceed-sent");
    if valid.driver.overlaps() {
        let hierarchies = &valid.hierarchies;
        let made = cgroup.make_in(hierarchies, cgroups::Versions::V1);
        undo.cgroup = Some(cgroup.clone());
        made?;
        cgroup_intent::drop_found_dirs(
            &dir,
            &mut prepared.plan,
            cgroup,
            hierarchies,
            cgroups::Versions::V1,
        )?;
        fault::point("v1-cgroup-made");
        set_limits(cgroup, spec)?;
        fault::point("limits-set");
        let entry = cgroup.entry_in(hierarchies, cgroups::Versions::V1)?;
        if let Err(e) = channel.send_with_fds(&Message::CgroupReady, &entry.v1_tasks()) {
            // The init may have failed meanwhile: its reason is the better error.
            return Err(match channel.recv() {
                Ok(Some(Message::Failed(reason))) => Error::Init(reason),
                _ => Error::Sync(e),
            });
        }
    }
    Ok(())
}

/// The init once it is ready to wait for `start`.
pub(super) struct Ready {
    /// The process that runs the program: the init, or the one it forked
    /// into the pid namespace it joins late.
    pub(super) pid: i32,
    /// The init, when it forked `pid` and exits once let go.
    pub(super) setup_pid: i32,
    /// The terminal's master, for the caller (no console socket).
    pub(super) console: Option<OwnedFd>,
}

/// Serve the init until it is Ready: the create-phase hooks, its console
/// and seccomp listener; then read which process runs the program, and
/// send the console and a pidfd on to the caller's sockets.
pub(super) fn until_ready(
    options: &CreateOptions,
    valid: &Validated,
    prepared: Prepared,
    pid: i32,
    undo: &mut Undo,
) -> Result<(Ready, crate::init::sync::Channel)> {
    let spec = &valid.spec;
    let channel = prepared.channel;
    let mut console = None;
    loop {
        match channel.recv_unless_stopped("the container's init set itself up")? {
            Some((Message::Ready, _)) => break,
            Some((Message::Console, Some(master))) => console = Some(master),
            Some((Message::SeccompListener, Some(fd))) => {
                // The init sends one only for a profile with notify rules, which `build` checked has a listener.
                if let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                    let state = hook_state(&options.id, pid, spec, &valid.bundle, &valid.rootfs);
                    seccomp::hand_to_listener(profile, pid, &state, std::os::fd::AsFd::as_fd(&fd))?;
                }
            }
            Some((Message::RunHooks, _)) => {
                let state = hook_state(&options.id, pid, spec, &valid.bundle, &valid.rootfs);
                for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                    hooks::run_hooks(hooks::hooks_of(spec.hooks().as_ref(), kind), kind, &state)?;
                }
                channel
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
    let report = read_report(prepared.report).map_err(|e| {
        // An init that failed after Ready said why on the channel; the
        // waiter, by its exit status.
        match channel.recv() {
            Ok(Some(Message::Failed(reason))) => Error::Init(reason),
            _ => match (e, waitpid(Pid::from_raw(pid), None)) {
                (Error::Init(what), Ok(status)) => Error::Init(what.ended(status)),
                (e, _) => e,
            },
        }
    })?;
    let setup_pid = pid;
    let pid = match report {
        0 => pid,
        forked => {
            undo.init_pid = Some(forked);
            undo.setup_pid = Some(setup_pid);
            forked
        }
    };
    let console = crate::process::console::hand_over(options.console_socket.as_deref(), console)
        .map_err(|e| {
            Error::Init(ChildError::new(ChildStep::Console, e.to_string()).with_errno_of(&e))
        })?;
    if let Some(socket) = &valid.pidfd_socket {
        socket.send(pid, "standard")?;
    }
    fault::point("init-ready");
    let ready = Ready {
        pid,
        setup_pid,
        console,
    };
    Ok((ready, channel))
}

/// The init's report after Ready: 0 when it runs the program itself, else
/// the pid of the process it forked for that (CLONE_PARENT: our child).
fn read_report(report: OwnedFd) -> Result<i32> {
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
    match pid == 0 || crate::isolation::namespaces::is_own_child(pid) {
        true => Ok(pid),
        false => Err(Error::init(
            ChildStep::Sync,
            format!("the init reported pid {pid}, not a child of the runtime"),
        )),
    }
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
