//! Pausing a container: v1's freezer.state or v2's cgroup.freeze, written
//! only in a cgroup the container made.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Cgroup, CgroupError};

/// Freezer operations: v1's freezer.state, or v2's cgroup.freeze.
impl Cgroup {
    /// The freezer file to write, in a cgroup the container made. One that
    /// someone else made is theirs to freeze and thaw: the container's state
    /// still reads `paused` while they keep it frozen (`is_frozen`).
    fn own_freezer(&self) -> Result<(PathBuf, bool), CgroupError> {
        let (file, v1) = self.freezer()?;
        if !self.is_own() {
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            return Err(CgroupError::NotOwnFreezer(dir));
        }
        Ok((file, v1))
    }

    fn freezer(&self) -> Result<(PathBuf, bool), CgroupError> {
        if self.dirs.is_empty() {
            return Err(CgroupError::NoCgroup);
        }
        if let Some((_, dir)) = self.dirs.iter().find(|(name, _)| name == "freezer") {
            return Ok((dir.join("freezer.state"), true));
        }
        if let Some((_, dir)) = self.dirs.iter().find(|(name, dir)| {
            (name.is_empty() || name == "unified") && dir.join("cgroup.freeze").exists()
        }) {
            return Ok((dir.join("cgroup.freeze"), false));
        }
        Err(CgroupError::NoFreezer)
    }

    /// Whether the container's processes are frozen (a v1 cgroup still FREEZING is not).
    pub fn is_frozen(&self) -> bool {
        let Ok((file, v1)) = self.freezer() else {
            return false;
        };
        let frozen = if v1 { "FROZEN" } else { "1" };
        fs::read_to_string(file).is_ok_and(|s| s.trim() == frozen)
    }

    /// Freeze every process of the container, and wait until the kernel says they are.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let (file, v1) = self.own_freezer()?;
        let fail = |source| CgroupError::Freeze {
            path: file.clone(),
            source,
        };
        fs::write(&file, if v1 { "FROZEN" } else { "1" }).map_err(fail)?;
        // v1 reports FREEZING until every task has stopped; there is no event to wait on.
        for _ in 0..1000 {
            let now = fs::read_to_string(&file).map_err(fail)?;
            if !v1 || now.trim() == "FROZEN" {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = fs::write(&file, "THAWED");
        Err(fail(io::Error::new(
            io::ErrorKind::TimedOut,
            "the tasks did not freeze within a second",
        )))
    }

    pub fn thaw(&self) -> Result<(), CgroupError> {
        let (file, v1) = self.own_freezer()?;
        fs::write(&file, if v1 { "THAWED" } else { "0" }).map_err(|source| CgroupError::Freeze {
            path: file.clone(),
            source,
        })
    }
}
