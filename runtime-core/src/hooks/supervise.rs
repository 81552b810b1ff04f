//! Watching one started hook: one poll loop feeds its stdin, drains its
//! stdout and stderr, and waits for whichever comes first of its exit (on a
//! pidfd), its timeout, a stop signal to the runtime, or the hang-up of the
//! runtime that asked for it. No helper threads: the init runs this after a
//! fork from a single-threaded parent.
//!
//! Every pipe of ours is non-blocking: a hook that never reads its stdin and
//! never exits is still killed at its timeout or at a stop signal.

use super::child::HookProcess;
use crate::sys::stop_signals::StopSignals;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, ChildStdin, ExitStatus};
use std::time::{Duration, Instant};

/// How much of a failed hook's stdout and stderr goes into the error (the tail).
pub(super) const OUTPUT_LIMIT: usize = 1024;
/// After the hook exits, output still in the pipes is read up to this much; a
/// grandchild that keeps the pipe open and writing must not hold us forever.
const DRAIN_LIMIT: usize = 1 << 20;

/// What ends the wait besides the hook's exit and its timeout.
#[derive(Clone, Copy, Default)]
pub(super) struct Watch<'a> {
    /// Stop signals to the runtime (sys/stop_signals.rs).
    pub(super) stop: Option<&'a StopSignals>,
    /// A descriptor whose hang-up means the runtime that asked for the hook
    /// is gone (the init's end of its channel to the parent).
    pub(super) runtime: Option<BorrowedFd<'a>>,
}

/// What became of a hook that was started.
pub(super) enum Ending {
    Exited(ExitStatus),
    TimedOut(i64),
    /// A stop signal came: the hook's group was killed.
    Stopped(i32),
    /// The runtime that asked for it hung up: the hook's group was killed.
    RuntimeGone,
}

pub(super) type Failure = (&'static str, io::Error);

/// Feed stdin, collect output and wait for the exit, the deadline, a stop
/// signal or the runtime's hang-up, whichever comes first; on all but the
/// exit, the hook's process group is killed and the hook reaped. Output is
/// read until the hook exits, not until end-of-file: a hook that leaves a
/// daemon holding its stdout open has still finished.
pub(super) fn supervise(
    hook: &mut HookProcess,
    timeout: Option<i64>,
    state: &[u8],
    stdout: &mut Capture,
    stderr: &mut Capture,
    watch: Watch<'_>,
) -> Result<Ending, Failure> {
    let pidfd = pidfd_of(&hook.child).map_err(|e| ("pidfd_open", e))?;
    let mut stdin = hook.child.stdin.take().filter(|_| !state.is_empty());
    let mut out = hook.child.stdout.take();
    let mut err = hook.child.stderr.take();
    let ours = [
        stdin.as_ref().map(|p| p.as_fd()),
        out.as_ref().map(|p| p.as_fd()),
        err.as_ref().map(|p| p.as_fd()),
    ];
    for fd in ours.into_iter().flatten() {
        set_nonblocking(fd).map_err(|e| ("make a hook pipe non-blocking", e))?;
    }
    // A deadline too far away to represent is no deadline.
    let deadline =
        timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t.unsigned_abs())));
    let mut written = 0;
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return end_early(hook, out.as_mut(), err.as_mut(), stdout, stderr)
                        .map(|()| Ending::TimedOut(timeout.unwrap_or_default()));
                }
                // Round up, or the last millisecond would be spent spinning.
                let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let at_stop = watch_fd(&mut fds, watch.stop.map(|s| s.fd()), PollFlags::POLLIN);
        // Only the hang-up (always reported): a message from the runtime is
        // not ours to read. A closed socketpair peer gives POLLHUP.
        let at_runtime = watch_fd(&mut fds, watch.runtime, PollFlags::empty());
        let at_in = watch_fd(
            &mut fds,
            stdin.as_ref().map(|p| p.as_fd()),
            PollFlags::POLLOUT,
        );
        let at_out = watch_fd(&mut fds, out.as_ref().map(|p| p.as_fd()), PollFlags::POLLIN);
        let at_err = watch_fd(&mut fds, err.as_ref().map(|p| p.as_fd()), PollFlags::POLLIN);
        match nix::poll::poll(&mut fds, wait) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(("poll the hook's pipes", e.into())),
        }
        // Any event counts: POLLHUP/POLLERR are what a closed other end gives.
        let ready = |at: Option<usize>| at.is_some_and(|i| fds[i].any().unwrap_or(false));
        let (exited, stop_ready, runtime_gone) =
            (ready(Some(0)), ready(at_stop), ready(at_runtime));
        let (in_ready, out_ready, err_ready) = (ready(at_in), ready(at_out), ready(at_err));
        drop(fds); // it borrows the pipes, which may be closed below

        if let Some(signo) = watch
            .stop
            .filter(|_| stop_ready)
            .and_then(StopSignals::received)
        {
            return end_early(hook, out.as_mut(), err.as_mut(), stdout, stderr)
                .map(|()| Ending::Stopped(signo));
        }
        if runtime_gone {
            return end_early(hook, out.as_mut(), err.as_mut(), stdout, stderr)
                .map(|()| Ending::RuntimeGone);
        }
        if let (true, Some(pipe)) = (in_ready, stdin.as_mut()) {
            match write_without_sigpipe(pipe, &state[written..]) {
                Ok(n) => written += n,
                // The hook need not read its stdin; Go's exec (so runc) ignores EPIPE too.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = state.len(),
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(("write the state to the hook's stdin", e)),
            }
            if written == state.len() {
                stdin = None; // closing it is the hook's end-of-file
            }
        }
        if let (true, Some(pipe)) = (out_ready, out.as_mut()) {
            if read_some(pipe, stdout).map_err(|e| ("read the hook's stdout", e))? == Pulled::Eof {
                out = None;
            }
        }
        if let (true, Some(pipe)) = (err_ready, err.as_mut()) {
            if read_some(pipe, stderr).map_err(|e| ("read the hook's stderr", e))? == Pulled::Eof {
                err = None;
            }
        }
        if exited {
            let status = hook.child.wait().map_err(|e| ("wait for the hook", e))?;
            drain(out.as_mut(), stdout);
            drain(err.as_mut(), stderr);
            return Ok(Ending::Exited(status));
        }
    }
}

/// Kill the hook's group, reap the hook, and keep what it had written.
fn end_early(
    hook: &mut HookProcess,
    out: Option<&mut impl Read>,
    err: Option<&mut impl Read>,
    stdout: &mut Capture,
    stderr: &mut Capture,
) -> Result<(), Failure> {
    hook.kill_and_reap().map_err(|e| ("kill the hook", e))?;
    drain(out, stdout);
    drain(err, stderr);
    Ok(())
}

/// Add a descriptor to the poll set; its index there.
fn watch_fd<'fd>(
    fds: &mut Vec<PollFd<'fd>>,
    fd: Option<BorrowedFd<'fd>>,
    events: PollFlags,
) -> Option<usize> {
    let fd = fd?;
    fds.push(PollFd::new(fd, events));
    Some(fds.len() - 1)
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

#[derive(PartialEq)]
enum Pulled {
    Data,
    Nothing,
    Eof,
}

fn read_some(pipe: &mut impl Read, into: &mut Capture) -> io::Result<Pulled> {
    let mut buf = [0u8; 16 * 1024];
    match pipe.read(&mut buf) {
        Ok(0) => Ok(Pulled::Eof),
        Ok(n) => {
            into.push(&buf[..n]);
            Ok(Pulled::Data)
        }
        Err(e) if is_transient(&e) => Ok(Pulled::Nothing),
        Err(e) => Err(e),
    }
}

/// After the exit: take what is already in the pipe without waiting for more,
/// and only so much of it, in case a grandchild keeps writing.
fn drain(pipe: Option<&mut impl Read>, into: &mut Capture) {
    let Some(pipe) = pipe else { return };
    let start = into.seen;
    while into.seen - start < DRAIN_LIMIT {
        if !matches!(read_some(pipe, into), Ok(Pulled::Data)) {
            break;
        }
    }
}

/// The tail of a stream, bounded, for the error message.
#[derive(Default)]
pub(super) struct Capture {
    tail: Vec<u8>,
    seen: usize,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        self.seen += bytes.len();
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * OUTPUT_LIMIT {
            self.tail.drain(..self.tail.len() - OUTPUT_LIMIT);
        }
    }

    pub(super) fn render(&self) -> String {
        let start = self.tail.len().saturating_sub(OUTPUT_LIMIT);
        let text = String::from_utf8_lossy(&self.tail[start..]);
        let text = text.trim();
        if self.seen > OUTPUT_LIMIT {
            format!("...{text}")
        } else {
            text.to_owned()
        }
    }
}

/// Our ends only: each end of a pipe has its own open file description.
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The init resets SIGPIPE to its default action, which kills: a hook exiting
/// before it read all of stdin would take the init with it. With SIGPIPE
/// blocked the write fails with EPIPE instead and the signal stays pending on
/// this thread; it is taken off before the mask is restored, so it never fires.
fn write_without_sigpipe(pipe: &mut ChildStdin, bytes: &[u8]) -> io::Result<usize> {
    let sigpipe = SigSet::from(Signal::SIGPIPE);
    let was_pending = sigpipe_pending();
    let old_mask = sigpipe.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let result = pipe.write(bytes);
    if !was_pending && sigpipe_pending() {
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the set and timespec are valid for the call; a null info is allowed.
        unsafe { libc::sigtimedwait(sigpipe.as_ref(), std::ptr::null_mut(), &now) };
    }
    old_mask.thread_set_mask()?;
    result
}

pub(super) fn sigpipe_pending() -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigpending fills the set, which we own and which starts zeroed.
    unsafe {
        libc::sigpending(set.as_mut_ptr()) == 0
            && libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}

/// The child is ours and not yet reaped, so its pid cannot have been reused.
fn pidfd_of(child: &Child) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    crate::sys::pidfd::open(pid)
}
