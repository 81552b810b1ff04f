//! The container process's standard streams, as descriptors the caller gives
//! ([`CreateOptions::stdio`](crate::CreateOptions::stdio),
//! [`ExecOptions::stdio`](crate::lifecycle::exec::ExecOptions::stdio)) instead of its
//! own 0, 1 and 2, which the process inherits otherwise.
//!
//! The descriptors are the process's alone once it exists: the call that
//! uses them takes them out of the options (through a shared reference:
//! `create` and `exec` borrow their options), the forked child puts them on
//! 0, 1 and 2 and closes the originals, and the caller's copies are closed
//! right after the fork. A reader of a pipe given as stdout so sees
//! end-of-file when the container's process (and whatever it forked) is gone,
//! not when the options are dropped.
//!
//! With `process.terminal` the terminal is the process's stdio, so given
//! descriptors are refused ([`StdioError::WithTerminal`]) rather than
//! dropped without a word, as youki's init drops them when it sets up a
//! terminal: a caller reading its pipe would wait for output that goes
//! elsewhere.

use crate::init::child_error::{ChildError, ChildStep};
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};

/// Why the given descriptors could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// `process.terminal` is set: the terminal is the process's stdin,
    /// stdout and stderr, and there is no place for the given descriptors.
    #[error("stdio descriptors were given for a process with a terminal (process.terminal): the terminal is its stdio")]
    WithTerminal,
    /// The options were used already by a create or exec, which took the
    /// descriptors: a second process cannot have them.
    #[error("the stdio descriptors in these options were given to an earlier create or exec")]
    AlreadyUsed,
    /// The caller's stdin, stdout or stderr is closed and /dev/null could
    /// not be put there for the call (see `sys::standard_fds`).
    #[error("put /dev/null on the caller's closed stdin, stdout or stderr: {0}")]
    NullForClosed(std::io::Error),
}

/// The descriptors for a process's stdin, stdout and stderr; a stream left
/// `None` is inherited from the caller (its 0, 1 or 2), as without any.
///
/// Built by value, then moved into the process by the first `create` or
/// `exec` given the options that hold it; after that it is used up (a
/// second call refuses with [`StdioError::AlreadyUsed`]). That is why
/// [`CreateOptions`](crate::CreateOptions) and
/// [`ExecOptions`](crate::lifecycle::exec::ExecOptions) are not `Clone`: two processes
/// cannot own one descriptor.
///
/// ```
/// use berth::{CreateOptions, Stdio};
///
/// let (read, write) = nix::unistd::pipe().unwrap();
/// let options = CreateOptions::new("/run/berth", "c1", "/srv/bundle").stdout(write);
/// assert!(options.stdio.is_given());
/// assert!(!CreateOptions::new("/run/berth", "c2", "/srv/bundle").stdio.is_given());
/// # drop(read);
/// ```
#[derive(Debug, Default)]
pub struct Stdio {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
enum State {
    /// Nothing given: the caller's 0, 1 and 2.
    #[default]
    Inherit,
    Given(Streams),
    Used,
}

/// The given descriptors, taken out of the options by the call that uses them.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    /// stdin, stdout, stderr.
    fds: [Option<OwnedFd>; 3],
}

impl Stdio {
    /// stdin, stdout and stderr (each `None` to inherit the caller's).
    pub fn new(stdin: Option<OwnedFd>, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) -> Stdio {
        let mut stdio = Stdio::default();
        for (target, fd) in [stdin, stdout, stderr].into_iter().enumerate() {
            if let Some(fd) = fd {
                stdio = stdio.with(target, fd);
            }
        }
        stdio
    }

    /// This with `fd` as the process's stdin.
    pub fn stdin(self, fd: impl Into<OwnedFd>) -> Stdio {
        self.with(0, fd.into())
    }

    /// This with `fd` as the process's stdout.
    pub fn stdout(self, fd: impl Into<OwnedFd>) -> Stdio {
        self.with(1, fd.into())
    }

    /// This with `fd` as the process's stderr.
    pub fn stderr(self, fd: impl Into<OwnedFd>) -> Stdio {
        self.with(2, fd.into())
    }

    /// Whether descriptors were given (and not yet used or dropped with an error).
    pub fn is_given(&self) -> bool {
        matches!(*self.lock(), State::Given(_))
    }

    fn with(self, target: usize, fd: OwnedFd) -> Stdio {
        let mut state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let mut streams = match state {
            State::Given(streams) => streams,
            State::Inherit | State::Used => Streams::default(),
        };
        streams.fds[target] = Some(fd);
        state = State::Given(streams);
        Stdio {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the descriptors for a process that has a terminal or not:
    /// `None` when nothing was given. They leave the options whatever
    /// happens next; the caller drops its copies once it has forked.
    pub(crate) fn take(&self, terminal: bool) -> Result<Option<Streams>, StdioError> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Used) {
            State::Inherit => {
                *state = State::Inherit;
                Ok(None)
            }
            State::Used => Err(StdioError::AlreadyUsed),
            State::Given(_) if terminal => Err(StdioError::WithTerminal),
            State::Given(streams) => Ok(Some(streams)),
        }
    }
}

impl Streams {
    /// In the forked child, first thing: the given descriptors become 0, 1
    /// and 2, and no other number of the child holds them (so nothing but
    /// those three reaches the container, whatever `preserve_fds` keeps).
    pub(crate) fn install(self) -> Result<(), ChildError> {
        let originals: [Option<RawFd>; 3] = self.fds.map(|fd| fd.map(IntoRawFd::into_raw_fd));
        install_raw(originals).map_err(|e| {
            ChildError::new(
                ChildStep::Stdio,
                format!("put the given descriptors on stdin, stdout and stderr: {e}"),
            )
            .with_errno_of(&e)
        })
    }
}

/// Put `originals[n]` on descriptor `n` (those `Some`) and close the
/// originals. An original may itself be 0, 1 or 2 (a caller that had closed
/// its own), even the target of another: each is first copied above 2, so
/// no `dup2` overwrites a descriptor still to be moved.
fn install_raw(originals: [Option<RawFd>; 3]) -> std::io::Result<()> {
    let mut copies: [Option<RawFd>; 3] = [None; 3];
    for (copy, original) in copies.iter_mut().zip(originals) {
        if let Some(fd) = original {
            // SAFETY: fcntl on a descriptor this child owns; returns a new one or -1.
            let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if high < 0 {
                return Err(std::io::Error::last_os_error());
            }
            *copy = Some(high);
        }
    }
    for fd in originals.into_iter().flatten() {
        // SAFETY: the child owns the original and has a copy of it; close
        // cannot fail in a way that leaves it open.
        unsafe { libc::close(fd) };
    }
    for (target, copy) in copies.into_iter().enumerate() {
        if let Some(high) = copy {
            // SAFETY: dup2 onto 0, 1 or 2 (not close-on-exec), then close
            // the copy, which this child owns.
            let moved = unsafe { libc::dup2(high, target as RawFd) };
            let error = std::io::Error::last_os_error();
            // SAFETY: as above.
            unsafe { libc::close(high) };
            if moved < 0 {
                return Err(error);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().expect("pipe")
    }

    #[test]
    fn nothing_given_inherits_every_time() {
        let stdio = Stdio::default();
        assert!(!stdio.is_given());
        assert!(stdio.take(false).expect("first").is_none());
        // A terminal is no conflict when nothing was given.
        assert!(stdio.take(true).expect("second").is_none());
    }

    #[test]
    fn given_descriptors_are_taken_once() {
        let (read, write) = pipe();
        let stdio = Stdio::default().stdout(write);
        assert!(stdio.is_given());
        let streams = stdio.take(false).expect("take").expect("given");
        assert!(streams.fds[0].is_none() && streams.fds[1].is_some() && streams.fds[2].is_none());
        assert!(!stdio.is_given());
        assert!(matches!(stdio.take(false), Err(StdioError::AlreadyUsed)));
        // Dropping the taken streams closes the caller's copy: the reader sees EOF.
        drop(streams);
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&read, &mut buf), Ok(0));
    }

    #[test]
    fn a_terminal_refuses_given_descriptors_and_uses_them_up() {
        let (read, write) = pipe();
        let stdio = Stdio::new(Some(read), None, Some(write));
        assert!(matches!(stdio.take(true), Err(StdioError::WithTerminal)));
        assert!(matches!(stdio.take(false), Err(StdioError::AlreadyUsed)));
    }

    #[test]
    fn a_later_setter_replaces_the_same_stream() {
        let (first, second) = pipe();
        let second_raw = std::os::fd::AsRawFd::as_raw_fd(&second);
        let stdio = Stdio::default().stderr(first).stderr(second);
        let streams = stdio.take(false).expect("take").expect("given");
        let fd = streams.fds[2].as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        assert_eq!(fd, Some(second_raw));
    }
}
