//! The init's side of the cgroupfs driver's overlap
//! ([`Driver::Cgroupfs`](super::Driver::Cgroupfs) `{ overlap: true }`): the
//! runtime makes the v1 directories while the init sets itself up, and
//! sends their `tasks` files with `CgroupReady` (create/handoff.rs). The
//! init waits for them only at the first step that needs its cgroup:
//! binding it into the container, a `tmpcopyup` copy, the hooks, or at the
//! latest when the mounts are done, before anything of the container's runs.

use super::Entry;
use crate::child_error::{ChildError, ChildStep};
use crate::sync::{Channel, Message};
use std::cell::Cell;
use std::io;

/// The v1 cgroup the init enters late, once. Entering when nothing is
/// pending (no overlap, or already entered) does nothing.
pub struct LateEntry<'a> {
    channel: &'a Channel,
    pending: Cell<bool>,
}

/// Why the init could not enter the cgroup sent late.
#[derive(Debug, thiserror::Error)]
pub enum LateEntryError {
    /// Writing `0` to a `tasks` file.
    #[error("{0}")]
    Join(String),
    #[error("unexpected message from the runtime: {0:?}")]
    Unexpected(Message),
    #[error("the runtime exited before the container's cgroup was made")]
    RuntimeGone,
    #[error("read from the runtime: {0}")]
    Recv(#[source] io::Error),
}

impl<'a> LateEntry<'a> {
    /// `pending`: the runtime sends the v1 cgroup on `channel` (the overlap).
    pub fn new(channel: &'a Channel, pending: bool) -> LateEntry<'a> {
        LateEntry {
            channel,
            pending: Cell::new(pending),
        }
    }

    /// Wait for the v1 directories and move this process into each.
    pub fn enter(&self) -> Result<(), LateEntryError> {
        if !self.pending.replace(false) {
            return Ok(());
        }
        match self.channel.recv_with_fds() {
            Ok(Some((Message::CgroupReady, fds))) => Entry::from_v1_tasks(fds)
                .enter_v1()
                .map_err(LateEntryError::Join),
            Ok(Some((other, _))) => Err(LateEntryError::Unexpected(other)),
            Ok(None) => Err(LateEntryError::RuntimeGone),
            Err(e) => Err(LateEntryError::Recv(e)),
        }
    }
}

impl LateEntryError {
    /// The init's report of it: entering the cgroup, or talking to the runtime.
    pub(crate) fn step(&self) -> ChildStep {
        match self {
            LateEntryError::Join(_) => ChildStep::Cgroup,
            _ => ChildStep::Sync,
        }
    }
}

impl From<LateEntryError> for ChildError {
    fn from(e: LateEntryError) -> ChildError {
        ChildError::new(e.step(), e.to_string()).with_errno_of(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entered_once_when_sent_and_never_waited_for_when_not_pending() {
        let (runtime, init) = crate::sync::channel().unwrap();
        // Not pending: nothing is read (a message left there stays).
        runtime.send(&Message::Proceed).unwrap();
        LateEntry::new(&init, false).enter().unwrap();
        assert_eq!(init.recv().unwrap(), Some(Message::Proceed));

        let late = LateEntry::new(&init, true);
        runtime.send_with_fds(&Message::CgroupReady, &[]).unwrap();
        late.enter().unwrap();
        // Entered: a second step that needs the cgroup reads nothing.
        late.enter().unwrap();
    }

    #[test]
    fn failures_are_typed_and_keep_their_step() {
        let (runtime, init) = crate::sync::channel().unwrap();
        runtime.send(&Message::Ready).unwrap();
        let unexpected = LateEntry::new(&init, true).enter().unwrap_err();
        assert!(matches!(
            unexpected,
            LateEntryError::Unexpected(Message::Ready)
        ));
        drop(runtime);
        let gone = LateEntry::new(&init, true).enter().unwrap_err();
        assert!(matches!(gone, LateEntryError::RuntimeGone));
        assert_eq!(ChildError::from(gone).step, ChildStep::Sync);

        let join = LateEntryError::Join("join cgroup /x: EACCES".into());
        let in_rootfs = crate::rootfs::RootfsError::from(join);
        let reported = crate::child_error::rootfs(&in_rootfs, in_rootfs.to_string());
        assert_eq!(reported.step, ChildStep::Cgroup);
        assert_eq!(reported.message, "join cgroup /x: EACCES");
    }
}
