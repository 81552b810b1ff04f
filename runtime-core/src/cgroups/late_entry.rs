//! The init's side of the cgroupfs driver's overlap
//! ([`Driver::Cgroupfs`](super::Driver::Cgroupfs) `{ overlap: true }`): the
//! runtime makes the v1 directories while the init sets itself up, and
//! sends their `tasks` files with `CgroupReady` (lifecycle/create/handoff.rs). The
//! init waits for them only at the first step that needs its cgroup:
//! binding it into the container, a `tmpcopyup` copy, the hooks, or at the
//! latest when the mounts are done, before anything of the container's runs.

use super::Entry;
use std::cell::Cell;
use std::io;
use std::os::fd::OwnedFd;

/// Where the init gets the v1 directories' `tasks` files from: the sync
/// channel's `CgroupReady` (init/sync.rs).
pub trait CgroupReadySource {
    /// Wait for `CgroupReady` and take the files that come with it.
    fn recv_cgroup_ready(&self) -> Result<Vec<OwnedFd>, LateEntryError>;
}

/// The v1 cgroup the init enters late, once. Entering when nothing is
/// pending (no overlap, or already entered) does nothing.
pub struct LateEntry<'a> {
    source: &'a dyn CgroupReadySource,
    pending: Cell<bool>,
}

/// Why the init could not enter the cgroup sent late.
#[derive(Debug, thiserror::Error)]
pub enum LateEntryError {
    /// Writing `0` to a `tasks` file.
    #[error("{0}")]
    Join(String),
    /// Another message came first (its debug text).
    #[error("unexpected message from the runtime: {0}")]
    Unexpected(String),
    #[error("the runtime exited before the container's cgroup was made")]
    RuntimeGone,
    #[error("read from the runtime: {0}")]
    Recv(#[source] io::Error),
}

impl<'a> LateEntry<'a> {
    /// `pending`: the runtime sends the v1 cgroup through `source` (the overlap).
    pub fn new(source: &'a dyn CgroupReadySource, pending: bool) -> LateEntry<'a> {
        LateEntry {
            source,
            pending: Cell::new(pending),
        }
    }

    /// Wait for the v1 directories and move this process into each.
    pub fn enter(&self) -> Result<(), LateEntryError> {
        if !self.pending.replace(false) {
            return Ok(());
        }
        let tasks = self.source.recv_cgroup_ready()?;
        Entry::from_v1_tasks(tasks)
            .enter_v1()
            .map_err(LateEntryError::Join)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the waits; sends no file, or fails as told.
    struct Source {
        waits: Cell<u32>,
        gone: bool,
    }

    impl CgroupReadySource for Source {
        fn recv_cgroup_ready(&self) -> Result<Vec<OwnedFd>, LateEntryError> {
            self.waits.set(self.waits.get() + 1);
            match self.gone {
                true => Err(LateEntryError::RuntimeGone),
                false => Ok(Vec::new()),
            }
        }
    }

    #[test]
    fn entered_once_when_sent_and_never_waited_for_when_not_pending() {
        let source = Source {
            waits: Cell::new(0),
            gone: false,
        };
        LateEntry::new(&source, false).enter().unwrap();
        assert_eq!(source.waits.get(), 0);
        let late = LateEntry::new(&source, true);
        late.enter().unwrap();
        // Entered: a second step that needs the cgroup waits for nothing.
        late.enter().unwrap();
        assert_eq!(source.waits.get(), 1);
    }

    #[test]
    fn a_runtime_gone_is_the_error() {
        let source = Source {
            waits: Cell::new(0),
            gone: true,
        };
        let e = LateEntry::new(&source, true).enter().unwrap_err();
        assert!(matches!(e, LateEntryError::RuntimeGone));
    }
}
