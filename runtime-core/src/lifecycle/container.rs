//! The `Container` handle: start, state, kill and delete of a created
//! container, and listing the containers of a state root.

use crate::cgroups::{systemd, Driver, OomCounter, OomNotifier, Stats};
use crate::hooks::{self, HookKind};
use crate::lifecycle::container_processes::{self, Process};
use crate::lifecycle::error::{Error, Result};
use crate::state::barrier;
use crate::state::{self, ContainerDir, ContainerState, Record, StateError, StateRoot, Status};
use crate::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A container with a state record (created, running, paused or stopped).
///
/// Each change (`start`, `pause`, `resume`, `update`, `checkpoint`, `delete`)
/// takes the container's lock (a `flock` on its state directory) for its own
/// duration, so two commands on one container never interleave; between calls
/// a handle holds no lock, and other handles, in this process or another, take
/// turns. Reading (`state`, `status`, `pids`, `stats`) and `kill` take no lock.
#[derive(Debug)]
pub struct Container {
    dir: ContainerDir,
    record: Record,
    /// The terminal's master, for a container created in the foreground with `process.terminal`.
    console: Option<OwnedFd>,
    /// A pidfd of the init: opened by `create` or `restore` (see
    /// `from_parts`), or on the first `pidfd()` of a loaded handle.
    init_pidfd: std::sync::OnceLock<OwnedFd>,
}

impl Container {
    /// The handle `create` or `restore` returns; `init_pidfd` is the pidfd
    /// they opened of the init to record it (`create::identify_init`).
    pub(crate) fn from_parts(
        mut dir: ContainerDir,
        record: Record,
        console: Option<OwnedFd>,
        init_pidfd: Option<OwnedFd>,
    ) -> Container {
        // `create` held the lock until now; each later change takes it again
        // (see `locked`), so other handles and commands are not shut out.
        dir.unlock();
        let container = Container {
            dir,
            record,
            console,
            init_pidfd: std::sync::OnceLock::new(),
        };
        // The creator's handle holds the init from the start (an unreaped
        // child of this process: its pid cannot be recycled meanwhile). A
        // failure here leaves it to the first `pidfd()`.
        match init_pidfd {
            Some(fd) => {
                let _ = container.init_pidfd.set(fd);
            }
            None => {
                let _ = container.pidfd();
            }
        }
        container
    }

    /// Run `op` under the container's exclusive lock, released afterwards:
    /// a handle kept alive does not block another handle or command.
    pub(crate) fn locked<T>(&mut self, op: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
        self.dir.lock()?;
        let result = op(self);
        self.dir.unlock();
        result
    }

    /// The master of the container's terminal, when this process created it
    /// in the foreground (no `--console-socket`) with `process.terminal`.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// The container `id` in the state root `root`.
    ///
    /// ```
    /// use berth::{Container, Error, StateError};
    ///
    /// let root = std::env::temp_dir().join(format!("berth-doc-load-{}", std::process::id()));
    /// match Container::load(&root, "no-such-container") {
    ///     Err(Error::State(StateError::NotExist)) => {}
    ///     other => panic!("expected NotExist, got {other:?}"),
    /// }
    /// // Loading never creates a container directory.
    /// assert!(berth::container::list(&root).unwrap().is_empty());
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// ```
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        let root = StateRoot::open(root)?;
        let dir = root.open_container(id)?;
        let record = dir.read()?.ok_or(StateError::NotExist)?;
        Ok(Container {
            dir,
            record,
            console: None,
            init_pidfd: std::sync::OnceLock::new(),
        })
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The init's host pid (as recorded; see `status` for whether it still runs).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.record.pid)
    }

    /// A pidfd of the init, to poll for its exit or signal it without a
    /// pid-reuse race. The handle `create` returned opened it then; a
    /// loaded handle opens it now from the recorded pid, checked against
    /// the recorded pidfs inode or start time. [`Error::NotRunning`] once
    /// the init is gone.
    pub fn pidfd(&self) -> Result<std::os::fd::BorrowedFd<'_>> {
        if let Some(fd) = self.init_pidfd.get() {
            return Ok(fd.as_fd());
        }
        let fd = crate::lifecycle::wait::open_recorded(&self.record)?;
        Ok(self.init_pidfd.get_or_init(|| fd).as_fd())
    }

    /// Wait for the init to exit, and reap it, through its pidfd: only
    /// the init, with no change to the caller's signal mask or handlers
    /// (unlike [`crate::lifecycle::foreground`], which forwards signals). Only the
    /// caller of `create` is the init's parent; anyone else, or a second
    /// wait, gets [`Error::NotChild`].
    pub fn wait(&self) -> Result<crate::ExitStatus> {
        crate::lifecycle::wait::wait(self.pidfd()?, self.record.pid)
    }

    /// The container's state directory, `<root>/<id>`.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// What Berth recorded at create: bundle, rootfs, cgroup, hooks, the init's start time.
    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    /// The config the container was created from, as create applied it
    /// (less the notify socket, the init's alone), recorded in its state directory: what exec and checkpoint go by, so
    /// an edited or removed bundle changes nothing for them. A container
    /// made by an older Berth has no such record; its bundle's config.json
    /// is read instead.
    pub fn config(&self) -> Result<oci_spec::runtime::Spec> {
        match crate::state::recorded_config::read(self.dir.path())? {
            Some(spec) => Ok(spec),
            None => Ok(crate::spec::load(&self.record.bundle)?),
        }
    }

    /// The hooks recorded at create. A caller that must not have child
    /// processes of its own waited for by the library (a threaded one whose
    /// other threads reap every child) can tell whether `start` (poststart)
    /// or `delete` (poststop) will run any.
    pub fn hooks(&self) -> Option<&oci_spec::runtime::Hooks> {
        self.record.hooks.as_ref()
    }

    /// The status now, derived from the init process each time it is asked
    /// (see the crate's architecture notes): never a stale stored value.
    pub fn status(&self) -> Status {
        state::derive_status(&self.record, self.dir.path())
    }

    /// The OCI state, as `runc state` prints it.
    pub fn state(&self) -> ContainerState {
        ContainerState::from_record(&self.record, self.status(), self.dir.owner())
    }

    /// Let the init exec the user's program, then run the poststart hooks.
    /// A failing poststart hook fails `start` and stops the container
    /// (runtime.md "Lifecycle" step 9, spec 1.3; runc does the same): every
    /// process of it is killed, and the rest of the hooks are not run.
    pub fn start(&mut self) -> Result<()> {
        span!("start", id = %self.record.id);
        self.locked(|c| {
            match c.status() {
                Status::Created => {}
                Status::Stopped => return Err(Error::StartStopped),
                Status::Running => return Err(Error::StartRunning),
                other => return Err(Error::StartInState(other)),
            }
            barrier::release(c.dir.path()).map_err(|e| match e {
                barrier::BarrierError::InitGone => Error::StartStopped,
                other => Error::Barrier(other),
            })?;
            c.run_poststart_hooks()
        })
    }

    fn run_poststart_hooks(&self) -> Result<()> {
        let list = hooks::hooks_of(self.record.hooks.as_ref(), HookKind::Poststart);
        if list.is_empty() {
            return Ok(());
        }
        let mut state = ContainerState::from_record(&self.record, Status::Running, String::new());
        state.pid = self.record.pid;
        let json = serde_json::to_string(&state).unwrap_or_default();
        let failed = match hooks::run_hooks(list, HookKind::Poststart, &json) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // The hook's error is the one to report; a kill that fails too
        // (the container already gone) changes nothing for the caller.
        let _ = self.kill(Signal::KILL, true);
        Err(failed.into())
    }

    /// Run hooks whose failure is only a warning (poststop).
    fn run_warning_hooks(&self, kind: HookKind, status: Status) -> Vec<String> {
        let list = hooks::hooks_of(self.record.hooks.as_ref(), kind);
        if list.is_empty() {
            return Vec::new();
        }
        let mut state = ContainerState::from_record(&self.record, status, String::new());
        state.pid = self.record.pid;
        let json = serde_json::to_string(&state).unwrap_or_default();
        hooks::run_warning_hooks(list, kind, &json)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Send `signal` to the init, or with `all` to every process in the
    /// container's cgroup: those left after the init died too (without a pid
    /// namespace of its own, the init's children outlive it).
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        let status = self.status();
        if all {
            return self.kill_all(signal, status);
        }
        if status == Status::Stopped {
            return Err(Error::NotRunning);
        }
        // Through the init's pidfd, checked against the record when it was
        // opened: a pid the init left between the status and the signal,
        // taken by another process, is never signalled.
        match crate::sys::pidfd::send_signal(self.pidfd()?, signal.as_raw()) {
            Ok(()) => {}
            Err(nix::Error::ESRCH) => return Err(Error::NotRunning),
            Err(source) => {
                return Err(Error::Signal {
                    signal,
                    pid: self.pid(),
                    source,
                })
            }
        }
        // A frozen task cannot act on SIGKILL until it is thawed (runc does
        // the same). A cgroup someone else made and froze stays frozen.
        if signal == Signal::KILL && status == Status::Paused && self.record.cgroup.is_own() {
            self.record.cgroup.thaw()?;
        }
        Ok(())
    }

    fn kill_all(&self, signal: Signal, status: Status) -> Result<()> {
        if !self.record.cgroup.is_own() {
            // Only the container's own processes: the cgroup's others are
            // someone else's (lifecycle/container_processes.rs), and so is its freezer.
            for process in container_processes::in_shared_cgroup(&self.record)? {
                process
                    .signal(signal.as_raw())
                    .map_err(|source| Error::Signal {
                        signal,
                        pid: Pid::from_raw(process.pid),
                        source,
                    })?;
            }
            return Ok(());
        }
        // Frozen while the signals go out, so that no process forks a child
        // that the pid list missed. A host without a freezer signals unfrozen.
        let froze_here = status != Status::Paused && self.record.cgroup.freeze().is_ok();
        let mut result = Ok(());
        for pid in self.pids()? {
            match send_signal(pid, signal) {
                Ok(()) | Err(Error::NotRunning) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if froze_here || (signal == Signal::KILL && status == Status::Paused) {
            self.record.cgroup.thaw()?;
        }
        result
    }

    /// Freeze every process of the container.
    pub fn pause(&mut self) -> Result<()> {
        self.locked(|c| {
            match c.status() {
                Status::Running | Status::Created => {}
                _ => return Err(Error::NotRunning),
            }
            // The hint goes down before the freeze, so `list` never misses a
            // frozen container; a failed freeze takes it back.
            c.set_paused_hint(true)?;
            if let Err(e) = c.record.cgroup.freeze() {
                let _ = c.set_paused_hint(false);
                return Err(e.into());
            }
            Ok(())
        })
    }

    /// Thaw a paused container.
    pub fn resume(&mut self) -> Result<()> {
        self.locked(|c| {
            match c.status() {
                Status::Paused => {}
                _ => return Err(Error::NotPaused),
            }
            c.record.cgroup.thaw()?;
            c.set_paused_hint(false)
        })
    }

    fn set_paused_hint(&mut self, paused: bool) -> Result<()> {
        // Another handle may have changed the hint since this one read the record.
        if let Some(current) = self.dir.read()? {
            self.record.paused = current.paused;
        }
        if self.record.paused != paused {
            self.record.paused = paused;
            self.dir.write(&self.record)?;
        }
        Ok(())
    }

    /// Change the container's resource limits (`runc update`). Zero fields and
    /// a zero pids limit mean "leave as is", as runc's update reads them;
    /// device rules are never touched.
    pub fn update(&mut self, resources: &LinuxResources) -> Result<()> {
        self.locked(|c| {
            if c.status() == Status::Stopped {
                return Err(Error::NotRunning);
            }
            let mut resources = resources.clone();
            resources.set_devices(None);
            if resources.pids().is_some_and(|p| p.limit() == 0) {
                resources.set_pids(None);
            }
            let cgroup = &c.record.cgroup;
            // Before systemd hears of a lower limit: it would apply it at once.
            cgroup.check_memory_usage(&resources, c.record.memory_check_before_update)?;
            if let Driver::Systemd { unit } = cgroup.driver() {
                // systemd is told every limit the update leaves in force, so
                // that its next daemon-reload writes those.
                systemd::complete_cpu_quota(cgroup, &mut resources);
                systemd::round_cpu_quota(&mut resources);
                systemd::set_properties(&unit, &resources, cgroup.unified_only_dir().is_some())
                    .map_err(crate::cgroups::CgroupError::from)?;
            }
            Ok(c.record.cgroup.apply_resources(&resources)?)
        })
    }

    /// The container's resource usage, as `runc events --stats` reports it.
    pub fn stats(&self) -> Result<Stats> {
        if self.status() == Status::Stopped {
            return Err(Error::EventsStopped(self.record.id.clone()));
        }
        Ok(self.record.cgroup.stats()?)
    }

    /// The memory cgroup's OOM counters (`None` without a memory controller).
    pub fn oom_counter(&self) -> Result<Option<OomCounter>> {
        Ok(self.record.cgroup.oom_counter()?)
    }

    /// A descriptor that becomes readable when the container's memory cgroup
    /// has an OOM event (v1: an eventfd through `cgroup.event_control`, which
    /// also fires when the cgroup is removed; v2: an inotify watch of
    /// `memory.events`), for a caller that waits on many containers in one
    /// `poll`/`epoll`. It only says "look": read [`Container::oom_counter`]
    /// to learn whether a process was killed, and on v1 look again shortly
    /// if not, since the kernel counts the kill just after it signals.
    /// Refused ([`OomNotifierError::NoMemoryCgroup`](crate::OomNotifierError::NoMemoryCgroup))
    /// without a memory cgroup.
    pub fn oom_notifier(&self) -> Result<OomNotifier> {
        Ok(self.record.cgroup.oom_notifier()?)
    }

    /// The host pids of every process in the container.
    pub fn pids(&self) -> Result<Vec<Pid>> {
        // A rootless container may have no cgroup: its init is all it is known by.
        if self.record.cgroup.driver() == Driver::None {
            return Ok(if state::init_alive(&self.record) {
                vec![self.pid()]
            } else {
                Vec::new()
            });
        }
        let pids = self.record.cgroup.pids()?;
        Ok(pids.into_iter().map(Pid::from_raw).collect())
    }

    /// Remove the container: refused while it runs unless `force`, which kills
    /// it first. Returns the warnings of failed poststop hooks.
    pub fn delete(mut self, force: bool) -> Result<Vec<String>> {
        span!("delete", id = %self.record.id);
        self.dir.lock()?;
        match self.status() {
            Status::Stopped | Status::Created => {}
            status if !force => {
                return Err(Error::DeleteNotStopped {
                    id: self.record.id.clone(),
                    status,
                })
            }
            _ => {}
        }
        self.destroy()
    }

    /// Kill whatever is left, remove the cgroup, run the poststop hooks, remove
    /// the state. Safe to repeat.
    fn destroy(self) -> Result<Vec<String>> {
        if self.record.cgroup.is_own() {
            let mut victims = self.record.cgroup.pids()?;
            if state::init_alive(&self.record) && !victims.contains(&self.record.pid) {
                victims.push(self.record.pid);
            }
            let frozen = state::derive_status(&self.record, self.dir.path()) == Status::Paused;
            kill_and_wait(open_all(&victims), || {
                if frozen {
                    let _ = self.record.cgroup.thaw();
                }
            });
        } else {
            // A cgroup the container did not make: its own processes only
            // (lifecycle/container_processes.rs), and the directories stay (`remove`
            // takes only what create made).
            kill_and_wait(container_processes::in_shared_cgroup(&self.record)?, || {});
        }
        self.record.cgroup.remove()?;
        if let Some(id) = self.record.host_rootfs_mount {
            let path = std::fs::canonicalize(&self.record.rootfs)
                .unwrap_or_else(|_| self.record.rootfs.clone());
            crate::isolation::rootfs::host_mount::detach(&path, id)
                .map_err(|source| Error::HostMount { path, source })?;
        }
        let warnings = self.run_warning_hooks(HookKind::Poststop, Status::Stopped);
        self.dir.remove()?;
        Ok(warnings)
    }
}

/// Delete by id, including a container whose create died before it wrote its
/// state: what that create left is removed, and that counts as success only
/// with `force` (without, the container does not exist, as `state` says).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<Vec<String>> {
    span!("delete", id = %id);
    let state_root = StateRoot::open(root)?;
    let mut dir = match state_root.open_container(id) {
        Ok(dir) => dir,
        Err(StateError::NotExist) if force => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    dir.lock()?;
    match dir.read()? {
        Some(record) => Container {
            dir,
            record,
            console: None,
            init_pidfd: std::sync::OnceLock::new(),
        }
        .delete(force),
        None => {
            remove_unfinished(&dir)?;
            if force {
                Ok(Vec::new())
            } else {
                Err(StateError::NotExist.into())
            }
        }
    }
}

/// What a `create` or `restore` killed before it wrote state.json left: the
/// cgroup it recorded and whatever runs in it (its init, mid-setup or about to
/// exit on its own; what CRIU restored), a restore's rootfs bind, then the
/// directory. The lock we hold proves that create is gone: it holds the lock
/// until it has written the state or undone everything.
fn remove_unfinished(dir: &ContainerDir) -> Result<()> {
    if let Some(cgroup) = crate::state::cgroup_intent::read(dir.path()) {
        // Every hierarchy is asked: a create killed while moving its init in
        // may have left it in some of them only. A directory create did not
        // make (a cgroupsPath naming an existing cgroup) is not ours to
        // empty (the init in it exits by itself, create's end of the sync
        // channel being closed); a systemd scope is, once systemd started it
        // for this container, which is when the unit is recorded.
        let ours = |own: &std::path::PathBuf| {
            cgroup.systemd_unit.is_some() || cgroup.created.contains(own)
        };
        let mut victims = Vec::new();
        for (_, own) in cgroup.dirs.iter().filter(|(_, own)| ours(own)) {
            let procs = std::fs::read_to_string(own.join("cgroup.procs")).unwrap_or_default();
            victims.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        victims.sort_unstable();
        victims.dedup();
        kill_and_wait(open_all(&victims), || {});
        cgroup.remove()?;
    }
    crate::lifecycle::checkpoint::criu_root::unbind_left_behind(dir.path());
    Ok(dir.remove()?)
}

/// Whether `root` holds anything of container `id`: its state, or what a
/// create that died before writing it left. Without, a forced [`delete`] has
/// nothing to do, and a caller may spare itself arranging one (Berth's
/// containerd shim starts no forker for it). Creates nothing, not even the
/// root.
///
/// ```
/// let root = std::env::temp_dir().join(format!("berth-doc-exists-{}", std::process::id()));
/// assert!(!berth::container::exists(&root, "nothing-here")?);
/// assert!(!root.exists(), "exists made the root");
/// // What a create killed before it wrote its state leaves is something.
/// std::fs::create_dir_all(root.join("half-made"))?;
/// assert!(berth::container::exists(&root, "half-made")?);
/// assert!(berth::container::exists(&root, "../half-made").is_err());
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn exists(root: &Path, id: &str) -> Result<bool> {
    crate::state::validate_id(id)?;
    Ok(root.join(id).is_dir())
}

/// The state of every container under `root`, by id. Directories without a
/// state record (a create in progress or killed midway) are not listed.
pub fn list(root: &Path) -> Result<Vec<ContainerState>> {
    Ok(crate::state::list::list(root)?)
}

fn send_signal(pid: Pid, signal: Signal) -> Result<()> {
    // SAFETY: kill(2) with plain integers; the result is checked.
    if unsafe { libc::kill(pid.as_raw(), signal.as_raw()) } != 0 {
        let source = nix::Error::last();
        if source == nix::Error::ESRCH {
            return Err(Error::NotRunning);
        }
        return Err(Error::Signal {
            signal,
            pid,
            source,
        });
    }
    Ok(())
}

/// Pidfds of the processes `pids` name now (those already gone are skipped).
fn open_all(pids: &[i32]) -> Vec<Process> {
    pids.iter().filter_map(|&pid| Process::open(pid)).collect()
}

/// [`kill_and_wait`] for the processes `pids` name now.
pub(crate) fn kill_pids_and_wait(pids: &[i32]) {
    kill_and_wait(open_all(pids), || {});
}

/// What a failed create or restore leaves running in its cgroup (a hook's
/// children, processes CRIU restored), killed and waited for. Only in a
/// cgroup the container made: in anyone else's, those processes are not told
/// apart from the owner's (docs/security.md, section 3).
pub(crate) fn kill_what_runs_in_own(cgroup: &crate::cgroups::Cgroup) {
    if !cgroup.is_own() {
        return;
    }
    if let Ok(pids) = cgroup.pids() {
        kill_pids_and_wait(&pids);
    }
}

/// SIGKILL each process and wait until each has exited, through pidfds
/// (so a pid recycled once its pidfd is open is never signalled, and there
/// is no polling).
/// `after_signal` runs once every process was sent SIGKILL (to thaw a frozen cgroup).
fn kill_and_wait(processes: Vec<Process>, after_signal: impl FnOnce()) {
    for process in &processes {
        let _ = process.signal(libc::SIGKILL);
    }
    after_signal();
    for process in &processes {
        let mut pollfd = [nix::poll::PollFd::new(
            process.pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        // A SIGKILLed process exits promptly; the bound only guards against a stuck (D-state) one.
        let _ = nix::poll::poll(&mut pollfd, nix::poll::PollTimeout::from(10_000u16));
    }
}
