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
//! The `tasks` files are opened here, by the runtime: before the clone, for
//! the child to inherit (close-on-exec), or, for a `create` that makes the v1
//! directories while its init sets itself up, sent to the init once made. The
//! child writes to each before any step that needs its cgroup. The kernel
//! checks the credentials the file was opened with, so a child already in a
//! new user namespace may still write them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{Cgroup, CgroupError, Hierarchy, Versions};

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
        let mut entry = Entry {
            v1_tasks: Vec::new(),
            v2_dir: None,
        };
        for (_, dir) in &self.dirs {
            // Only a v1 directory has `tasks`.
            match open_tasks(dir) {
                Ok(tasks) => entry.v1_tasks.push((dir.clone(), tasks)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    entry.v2_dir = Some((dir.clone(), open_dir(dir)?))
                }
                Err(source) => {
                    return Err(CgroupError::Create {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        Ok(entry)
    }

    /// The same for the directories in `hierarchies` of `versions` only.
    pub fn entry_in(
        &self,
        hierarchies: &[Hierarchy],
        versions: Versions,
    ) -> Result<Entry, CgroupError> {
        let mut entry = Entry {
            v1_tasks: Vec::new(),
            v2_dir: None,
        };
        for (name, dir) in &self.dirs {
            let Some(hierarchy) = hierarchies
                .iter()
                .find(|h| &h.name == name && versions.covers(h))
            else {
                continue;
            };
            if hierarchy.v2 {
                entry.v2_dir = Some((dir.clone(), open_dir(dir)?));
            } else {
                let tasks = open_tasks(dir).map_err(|source| CgroupError::Create {
                    path: dir.clone(),
                    source,
                })?;
                entry.v1_tasks.push((dir.clone(), tasks));
            }
        }
        Ok(entry)
    }
}

fn open_tasks(dir: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dir.join("tasks"))
}

fn open_dir(dir: &std::path::Path) -> Result<File, CgroupError> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(dir)
        .map_err(|source| CgroupError::Create {
            path: dir.to_path_buf(),
            source,
        })
}

impl Entry {
    /// The v2 directory, for `CLONE_INTO_CGROUP`.
    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.v2_dir.as_ref().map(|(_, dir)| dir.as_fd())
    }

    /// In the parent, when the clone could not use [`Entry::v2_dir`] (a child
    /// cloned from inside a user namespace): move `pid` into the v2 directory by pid.
    pub fn add_to_v2(&self, pid: i32) -> Result<(), CgroupError> {
        let Some((dir, _)) = &self.v2_dir else {
            return Ok(());
        };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|source| {
            CgroupError::Join {
                pid,
                path: dir.clone(),
                source,
            }
        })
    }

    /// The v1 `tasks` files, to send to a child already cloned.
    pub fn v1_tasks(&self) -> Vec<BorrowedFd<'_>> {
        self.v1_tasks
            .iter()
            .map(|(_, tasks)| tasks.as_fd())
            .collect()
    }

    /// In the child: the v1 `tasks` files the parent sent.
    pub fn from_v1_tasks(received: Vec<OwnedFd>) -> Entry {
        Entry {
            v1_tasks: received
                .into_iter()
                .map(|fd| (PathBuf::new(), File::from(fd)))
                .collect(),
            v2_dir: None,
        }
    }

    /// In the child, single-threaded: move itself into each v1 directory, then
    /// close the files.
    pub fn enter_v1(self) -> Result<(), String> {
        for (dir, mut tasks) in self.v1_tasks {
            tasks.write_all(b"0").map_err(|e| {
                // A received file's directory is looked up only to name it here.
                let named = Some(dir).filter(|d| !d.as_os_str().is_empty()).or_else(|| {
                    let link = std::fs::read_link(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(&tasks)
                    ))
                    .ok()?;
                    link.parent().map(std::path::Path::to_path_buf)
                });
                format!("join cgroup {}: {e}", named.unwrap_or_default().display())
            })?;
        }
        Ok(())
    }
}
