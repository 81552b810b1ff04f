//! The changes `create` and `exec` make to the calling process, each scoped
//! to the call unless the caller asks to keep it (docs/architecture.md,
//! "The library's contract").
//!
//! Only the dumpable flag is changed in the caller itself, because the
//! child must inherit it from the fork: a child that made itself
//! non-dumpable after the fork would be open to the container's processes
//! (through `/proc/<pid>/exe`, CVE-2019-5736) for the moment in between.
//! And a caller's closed 0, 1 or 2 holds /dev/null for the call
//! ([`standard_fds`]), closed again after it.

use crate::init::child_error::ChildStep;
use crate::lifecycle::error::{Error, Result};

/// The dumpable flag the fork's child inherits, set on the caller for the
/// fork and put back when dropped (in the parent: the child never drops
/// it, it execs or exits).
pub(crate) struct DumpableForFork {
    /// What to put back; `None` when the caller keeps the fork's setting.
    previous: Option<bool>,
}

impl DumpableForFork {
    /// Set the caller dumpable or not for the fork; `leave` keeps that
    /// setting after it (the CLI's choice: `berth` stays non-dumpable).
    pub(crate) fn set(dumpable: bool, leave: bool) -> Result<DumpableForFork> {
        let previous = nix::sys::prctl::get_dumpable()
            .map_err(|e| Error::init(ChildStep::Process, format!("read the dumpable flag: {e}")))?;
        nix::sys::prctl::set_dumpable(dumpable)
            .map_err(|e| Error::init(ChildStep::Process, format!("set non-dumpable: {e}")))?;
        Ok(DumpableForFork {
            previous: (!leave && previous != dumpable).then_some(previous),
        })
    }
}

impl Drop for DumpableForFork {
    fn drop(&mut self) {
        if let Some(previous) = self.previous {
            let _ = nix::sys::prctl::set_dumpable(previous);
        }
    }
}

/// /dev/null on each of the caller's 0, 1 and 2 that is closed, until the
/// guard is dropped (`sys::standard_fds`): the runtime's own descriptors
/// never take those numbers, which the child's stdio set-up overwrites.
pub(crate) fn standard_fds() -> Result<crate::sys::standard_fds::StandardFds> {
    crate::sys::standard_fds::StandardFds::fill()
        .map_err(|e| Error::Stdio(crate::init::stdio::StdioError::NullForClosed(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::prctl::{get_dumpable, set_dumpable};

    // One test: the flag is the process's, shared by every test thread.
    #[test]
    fn the_flag_is_put_back_after_the_fork_unless_the_caller_keeps_it() {
        let before = get_dumpable().unwrap();
        set_dumpable(true).unwrap();
        {
            let _guard = DumpableForFork::set(false, false).unwrap();
            assert!(!get_dumpable().unwrap());
        }
        assert!(get_dumpable().unwrap(), "put back");
        drop(DumpableForFork::set(false, true).unwrap());
        assert!(!get_dumpable().unwrap(), "kept, as the CLI asks");
        set_dumpable(before).unwrap();
    }
}
