//! What a failed `create` must take back.

use crate::cgroups::Cgroup;
use crate::isolation::rootfs::host_mount;
use crate::state::ContainerDir;
use crate::sys::host_file::StagedFile;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::path::PathBuf;

/// What a failed create must take back, in reverse order of making it.
#[derive(Default)]
pub(super) struct Undo {
    pub(super) pid_file: Option<StagedFile>,
    pub(super) dir: Option<ContainerDir>,
    pub(super) cgroup: Option<Cgroup>,
    pub(super) init_pid: Option<i32>,
    /// The init that set up outside the pid namespace it joins late, once it
    /// forked the process that runs the program (`init_pid` then).
    pub(super) setup_pid: Option<i32>,
    /// The rootfs and the id of the mount it was on before the init, when
    /// the init mounts in the host's namespace.
    pub(super) host_rootfs: Option<(PathBuf, u64)>,
}

impl Undo {
    pub(super) fn disarm(mut self) -> ContainerDir {
        self.cgroup = None;
        self.init_pid = None;
        self.setup_pid = None;
        self.host_rootfs = None;
        self.dir
            .take()
            .expect("create holds its state directory until it succeeds")
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        let pids: Vec<i32> = [self.init_pid.take(), self.setup_pid.take()]
            .into_iter()
            .flatten()
            .collect();
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        // What the init started (a createContainer hook, its children) is
        // in the container's cgroup, and without a pid namespace of the
        // container's own it outlives the init and keeps the cgroup busy.
        // In anyone else's cgroup the hooks' own watchdog kills theirs.
        if let Some(cgroup) = &self.cgroup {
            crate::lifecycle::container::kill_what_runs_in_own(cgroup);
        }
        for pid in &pids {
            let _ = waitpid(Pid::from_raw(*pid), None);
        }
        if let Some((path, before)) = self.host_rootfs.take() {
            // A mount there that was not before is the dead init's.
            match host_mount::mount_id(&path) {
                Ok(now) if now != before => {
                    let _ = host_mount::detach(&path, now);
                }
                _ => {}
            }
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.remove();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}
