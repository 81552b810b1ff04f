//! Dying with the caller (`CreateOptions::die_with_caller`): a pidfd of the
//! caller, opened before the fork and kept by the forked child alone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use crate::sys::pidfd::PidfdError;

/// In a forked child only (create's init, exec's setup child): a pidfd of
/// the runtime it must die with. Never set in the caller, so one create
/// that asks (`die_with_caller`) changes nothing for the next.
static RUNTIME: OnceLock<OwnedFd> = OnceLock::new();

/// A pidfd of the caller, opened before the fork when `wanted`, for the
/// child to die with (`CreateOptions::die_with_caller`).
pub(crate) fn caller_pidfd(wanted: bool) -> Result<Option<OwnedFd>, PidfdError> {
    if !wanted {
        return Ok(None);
    }
    let pid = std::process::id() as i32;
    crate::sys::pidfd::open(pid)
        .map(Some)
        .map_err(|source| PidfdError::Open { pid, source })
}

/// In the forked child, right after the fork: remember the caller's pidfd
/// (this copy's memory only) for `process::die_with_runtime`.
pub(crate) fn die_with_caller_in_child(caller: Option<OwnedFd>) {
    if let Some(fd) = caller {
        let _ = RUNTIME.set(fd);
    }
}

/// In the init: the runtime's pidfd when its create asked to die with the caller.
pub(crate) fn runtime_to_die_with() -> Option<BorrowedFd<'static>> {
    RUNTIME.get().map(|fd| fd.as_fd())
}
