//! How a new process (the init, or exec's child) enters the container's
//! cgroup without being moved into it by pid.
//!
//! Moving another process (its pid written to `cgroup.procs`) takes the
//! kernel's global lock on thread groups, whose writer first waits out an RCU
//! grace period: 3-15 ms on our machines, once per create and per exec, on
//! the path to the container's start. Two ways in skip that lock:
//! - on a v1 hierarchy, a single-threaded process writes `0` (itself) to the
//!   directory's `tasks`: moving one thread needs no thread-group lock;
//! - on the v2 hierarchy, clone3's `CLONE_INTO_CGROUP` makes the child there.
//!
//! The `tasks` files are opened here, by the runtime, before the clone; the
//! child inherits them (close-on-exec) and writes to each as soon as it is let
//! go, before it does anything else. The kernel checks the credentials the
//! file was opened with, so a child already in a new user namespace may still
//! write them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{Cgroup, CgroupError};

/// The open ends of the container's cgroup directories, for a child to enter.
#[derive(Debug)]
pub struct Entry {
    /// Each v1 hierarchy's directory and its `tasks` file.
    v1_tasks: Vec<(PathBuf, File)>,
    /// The v2 directory (the hybrid `unified` mount, or a v2 host's only one).
    v2_dir: Option<(PathBuf, File)>,
}

impl Cgroup {
    /// Open the container's directories for a child to enter (see [`Entry`]).
    pub fn entry(&self) -> Result<Entry, CgroupError> {
        let mut entry = Entry { v1_tasks: Vec::new(), v2_dir: None };
        for (_, dir) in &self.dirs {
            let open_error = |source| CgroupError::Create { path: dir.clone(), source };
            // Only a v1 directory has `tasks`.
            match OpenOptions::new().write(true).custom_flags(libc::O_CLOEXEC).open(dir.join("tasks")) {
                Ok(tasks) => entry.v1_tasks.push((dir.clone(), tasks)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
                    let opened = OpenOptions::new().read(true).custom_flags(flags).open(dir).map_err(open_error)?;
                    entry.v2_dir = Some((dir.clone(), opened));
                }
                Err(e) => return Err(open_error(e)),
            }
        }
        Ok(entry)
    }
}

impl Entry {
    /// The v2 directory, for `CLONE_INTO_CGROUP`.
    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.v2_dir.as_ref().map(|(_, dir)| dir.as_fd())
    }

    /// In the parent, when the clone could not use [`Entry::v2_dir`] (a child
    /// cloned from inside a user namespace): move `pid` into the v2 directory by pid.
    pub fn add_to_v2(&self, pid: i32) -> Result<(), CgroupError> {
        let Some((dir, _)) = &self.v2_dir else { return Ok(()) };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|source| CgroupError::Join { pid, path: dir.clone(), source })
    }

    /// In the child, single-threaded: move itself into each v1 directory, then
    /// close the files.
    pub fn enter_v1(self) -> Result<(), String> {
        for (dir, mut tasks) in self.v1_tasks {
            tasks.write_all(b"0").map_err(|e| format!("join cgroup {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}
