//! The signals that tell the runtime to stop (SIGTERM, SIGINT, SIGHUP), held
//! while it waits on something that may never end by itself: a hook without
//! a timeout, the init's setup (its createContainer hooks), the exec after
//! `start` (its startContainer hooks).
//!
//! A foreground `run` blocks every signal to forward it later
//! (`foreground::prepare`); a detached `create` dies of SIGTERM at once. In
//! the first case a stop request would wait forever behind a hanging hook,
//! in the second the hook would outlive the runtime. While a `StopSignals`
//! guard is held, the stop signals are blocked and readable from a signalfd,
//! so the waiting code sees them, kills what it waits for, and returns an
//! error the caller cleans up after.
//!
//! A signal the runtime ignores (SIG_IGN, as a shell leaves SIGINT for a
//! background job) is not a request to stop, and is not held.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The signals that ask the runtime to stop.
pub(crate) const STOP_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The kernel's 8-byte signal set: bit `n - 1` is signal `n`.
fn bit(signo: i32) -> u64 {
    1u64 << (signo - 1)
}

/// Stop signals blocked on this thread and readable from a descriptor, until dropped.
pub(crate) struct StopSignals {
    fd: OwnedFd,
    /// The ones this guard blocked (the caller had them unblocked).
    newly_blocked: u64,
}

impl StopSignals {
    /// Block the stop signals the runtime does not ignore and open a signalfd over them.
    pub(crate) fn hold() -> io::Result<StopSignals> {
        let held = STOP_SIGNALS
            .iter()
            .filter(|&&signo| !ignored(signo))
            .fold(0u64, |set, &signo| set | bit(signo));
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask reads and writes 8-byte masks we own.
        let blocked = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &held,
                &mut old,
                8usize,
            )
        };
        if blocked != 0 {
            return Err(io::Error::last_os_error());
        }
        let newly_blocked = held & !old;
        // SAFETY: signalfd4 with fd -1 makes a new descriptor from an 8-byte mask we own.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &held,
                8usize,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            unblock(newly_blocked);
            return Err(err);
        }
        // SAFETY: the kernel just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(StopSignals { fd, newly_blocked })
    }

    /// Readable (POLLIN) while a stop signal is pending.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The stop signal that came, taken off the queue: the caller acts on it
    /// (kills what it waited for and fails) instead of dying of it.
    pub(crate) fn received(&self) -> Option<i32> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match nix::unistd::read(self.fd.as_fd(), &mut info) {
            // ssi_signo, a u32, opens the record.
            Ok(n) if n == info.len() => {
                Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32)
            }
            _ => None,
        }
    }

    /// Put `signo` back on this thread's queue when the caller keeps it
    /// blocked to handle it itself (a foreground `run` forwards it to the
    /// container once the interrupted poststart hook is dead). A signal the
    /// caller had unblocked was the runtime's to act on, and was.
    pub(crate) fn pass_on(&self, signo: i32) {
        if (1..=64).contains(&signo) && self.newly_blocked & bit(signo) == 0 {
            // SAFETY: tgkill to this very thread, which has the signal blocked: it only queues it.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    libc::syscall(libc::SYS_gettid),
                    signo,
                )
            };
        }
    }

    /// Wait until `fd` reports one of `events` (POLLHUP and POLLERR are always
    /// reported) or a stop signal comes: `Ok(Err(signo))` for the signal,
    /// taken off the queue.
    pub(crate) fn wait(
        &self,
        fd: BorrowedFd<'_>,
        events: PollFlags,
    ) -> io::Result<Result<PollFlags, i32>> {
        loop {
            if let Some(signo) = self.received() {
                return Ok(Err(signo));
            }
            let mut fds = [
                PollFd::new(fd, events),
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if fds[1].any().unwrap_or(false) {
                continue; // taken at the top of the loop
            }
            if !revents.is_empty() {
                return Ok(Ok(revents));
            }
        }
    }
}

impl Drop for StopSignals {
    /// A stop signal that came after the last look is delivered now, as if
    /// it had come a moment later.
    fn drop(&mut self) {
        unblock(self.newly_blocked);
    }
}

fn unblock(set: u64) {
    if set == 0 {
        return;
    }
    // SAFETY: rt_sigprocmask reads an 8-byte mask we own and is not asked for the old one.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK,
            &set,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// A stop signal came to the runtime while it waited for `during`; the
/// crate's `Error::Interrupted` carries the same two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interrupted {
    /// What the runtime was waiting for.
    pub during: &'static str,
    /// The signal's number.
    pub signal: i32,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by {} to the runtime while {}",
            name(self.signal),
            self.during
        )
    }
}

/// Wait until `fd` is readable, unless a stop signal (SIGTERM, SIGINT,
/// SIGHUP) comes first: then [`Interrupted`] naming `during`. Where the
/// signals cannot be watched, it returns at once and the caller's read
/// blocks as it would have.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, during: &'static str) -> Result<(), Interrupted> {
    if let Ok(stop) = StopSignals::hold() {
        if let Ok(Err(signal)) = stop.wait(fd, PollFlags::POLLIN) {
            return Err(Interrupted { during, signal });
        }
    }
    Ok(())
}

/// Whether the process ignores `signo` (SIG_IGN).
fn ignored(signo: i32) -> bool {
    let mut action = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction only writes the current one into ours.
    let ok = unsafe { libc::sigaction(signo, std::ptr::null(), action.as_mut_ptr()) } == 0;
    // SAFETY: zeroed, then filled by the kernel on success; read only then.
    ok && unsafe { action.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// The signal's name for messages ("SIGTERM"), or its number.
pub(crate) fn name(signo: i32) -> String {
    nix::sys::signal::Signal::try_from(signo)
        .map_or_else(|_| format!("signal {signo}"), |s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> u64 {
        let mut set: u64 = 0;
        // SAFETY: rt_sigpending writes an 8-byte set we own.
        unsafe { libc::syscall(libc::SYS_rt_sigpending, &mut set, 8usize) };
        set
    }

    fn mask() -> u64 {
        let mut old: u64 = 0;
        // SAFETY: SIG_BLOCK of an empty set changes nothing and reports the mask.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &0u64,
                &mut old,
                8usize,
            )
        };
        old
    }

    /// Signals go to this thread only (tgkill), so parallel tests do not see them.
    fn signal_this_thread(signo: i32) {
        // SAFETY: tgkill to our own thread with a signal it has blocked only queues it.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                libc::syscall(libc::SYS_gettid),
                signo,
            )
        };
    }

    #[test]
    fn a_held_signal_is_reported_taken_and_the_mask_restored() {
        let before = mask();
        let stop = StopSignals::hold().expect("hold");
        assert_eq!(stop.received(), None);
        signal_this_thread(libc::SIGHUP);
        assert_eq!(stop.received(), Some(libc::SIGHUP));
        assert_eq!(pending() & bit(libc::SIGHUP), 0, "taken off the queue");
        drop(stop);
        assert_eq!(mask(), before);
    }

    #[test]
    fn wait_ends_on_a_stop_signal_or_on_the_descriptor() {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let stop = StopSignals::hold().expect("hold");
        signal_this_thread(libc::SIGTERM);
        let got = stop.wait(read.as_fd(), PollFlags::POLLIN).expect("wait");
        assert_eq!(got, Err(libc::SIGTERM));
        nix::unistd::write(&write, b"x").expect("write");
        let got = stop.wait(read.as_fd(), PollFlags::POLLIN).expect("wait");
        assert!(matches!(got, Ok(r) if r.contains(PollFlags::POLLIN)));
    }

    #[test]
    fn pass_on_requeues_only_what_the_caller_blocks_itself() {
        let term = bit(libc::SIGTERM);
        let old = mask();
        // SAFETY: blocks SIGTERM on this test thread; restored below.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &term,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        let stop = StopSignals::hold().expect("hold");
        signal_this_thread(libc::SIGTERM);
        let signo = stop.received().expect("SIGTERM came");
        stop.pass_on(signo);
        drop(stop);
        assert_ne!(pending() & term, 0, "queued again for the caller");
        // Take it off again before the mask is restored.
        let fd = StopSignals::hold().expect("hold");
        assert_eq!(fd.received(), Some(libc::SIGTERM));
        drop(fd);
        // SAFETY: restores this thread's mask from before the test.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &old,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }

    #[test]
    fn names() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(40), "signal 40");
    }
}
