//! A foreground container (`run` without `--detach`): the runtime stays as
//! the init's parent, forwards the signals it gets, reaps, relays the
//! container's terminal if it has one, and reports the exit as a shell would
//! (the code, or 128 + the signal).

use crate::lifecycle::error::{Error, Result};
use crate::process::console;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// Every signal the kernel has, 1 to 64, as its 8-byte sigset. glibc's
/// `sigfillset` and `sigprocmask` leave out 32 and 33, which it keeps for
/// its threads' cancellation and setxid; this single-threaded runtime uses
/// neither, and would otherwise die of them instead of forwarding them.
const ALL_SIGNALS: u64 = u64::MAX;

/// Block every signal so they queue for `forward_until_exit` instead of
/// killing the runtime. Call before `create`; the init unblocks them for itself.
/// `subreaper` makes orphans of the container reparent to this process, to be reaped here.
///
/// Both are changes to the whole calling process (its one thread's mask),
/// undone when the returned guard is dropped: the mask as it was (a signal
/// that came meanwhile is then delivered), the subreaper flag cleared if
/// this set it. [`Foreground::leave_in_place`] keeps them, as `berth` does.
pub fn prepare(subreaper: bool) -> Result<Foreground> {
    let mut previous_mask: u64 = 0;
    // SAFETY: rt_sigprocmask reads and writes 8-byte masks we own.
    let blocked = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &ALL_SIGNALS,
            &mut previous_mask,
            8usize,
        )
    };
    if blocked != 0 {
        return Err(Error::Wait(nix::Error::last()));
    }
    let mut guard = Foreground {
        previous_mask,
        clear_subreaper: false,
    };
    if subreaper && !nix::sys::prctl::get_child_subreaper().unwrap_or(false) {
        nix::sys::prctl::set_child_subreaper(true).map_err(Error::Wait)?;
        guard.clear_subreaper = true;
    }
    Ok(guard)
}

/// What [`prepare`] changed in the calling process, put back when dropped.
#[derive(Debug)]
#[must_use = "dropping it unblocks the signals at once"]
pub struct Foreground {
    previous_mask: u64,
    clear_subreaper: bool,
}

impl Foreground {
    /// Keep every signal blocked and the subreaper flag for the rest of
    /// the process's life (a runtime that exits when its container does).
    pub fn leave_in_place(self) {
        std::mem::forget(self);
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // SAFETY: rt_sigprocmask reads an 8-byte mask we own.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.previous_mask,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if self.clear_subreaper {
            let _ = nix::sys::prctl::set_child_subreaper(false);
        }
    }
}

/// Puts the caller's terminal in raw mode for the relay, and restores it.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter(fd: BorrowedFd) -> Option<RawTerminal> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Forward signals to `init` until it exits, relaying `console` (the
/// container's terminal master) to this process's stdio; returns the exit code.
pub fn forward_until_exit(init: Pid, console: Option<OwnedFd>) -> Result<i32> {
    let signals = signal_fd()?;
    let stdin = std::io::stdin();
    let stdin_is_tty = console.is_some() && nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let _raw = if stdin_is_tty {
        RawTerminal::enter(stdin.as_fd())
    } else {
        None
    };
    if let (Some(master), true) = (&console, stdin_is_tty) {
        resize_from(stdin.as_fd(), master.as_fd());
    }
    let mut relay_stdin = console.is_some();
    let mut relay_master = console.is_some();
    loop {
        // Reap first: the init may have exited before anything was queued.
        if let Some(code) = reap(init)? {
            if let Some(master) = &console {
                drain(master.as_fd());
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(master), true) = (&console, relay_master) {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if relay_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(Error::Wait(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            if let Some(signo) = read_signal(signals.as_fd()) {
                handle_signal(signo, init, console.as_ref(), stdin_is_tty);
            }
        }
        let mut next = 1;
        if let (Some(master), true) = (&console, relay_master) {
            if ready[next] && !copy(master.as_fd(), std::io::stdout().as_fd()) {
                relay_master = false;
            }
            next += 1;
        }
        if let (Some(master), true) = (&console, relay_stdin) {
            if ready.get(next).copied().unwrap_or(false) && !copy(stdin.as_fd(), master.as_fd()) {
                relay_stdin = false;
            }
        }
    }
}

/// A descriptor that reads every signal `prepare` blocked. nix's `SignalFd`
/// takes glibc's sigset, which cannot hold 32 and 33.
fn signal_fd() -> Result<OwnedFd> {
    // SAFETY: signalfd4 with fd -1 makes a new descriptor from an 8-byte mask we own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1,
            &ALL_SIGNALS,
            8usize,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(Error::Wait(nix::Error::last()));
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The number of the next queued signal, if one is there.
fn read_signal(fd: BorrowedFd) -> Option<i32> {
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    match nix::unistd::read(fd, &mut info) {
        // ssi_signo, a u32, opens the record.
        Ok(n) if n == info.len() => {
            Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32)
        }
        _ => None,
    }
}

fn handle_signal(signo: i32, init: Pid, console: Option<&OwnedFd>, stdin_is_tty: bool) {
    match signo {
        // Our own children's exits, reaped by the loop: the container's are its own business.
        libc::SIGCHLD => {}
        // The caller's terminal changed size: only a container with a terminal has one to follow.
        libc::SIGWINCH => {
            if let (Some(master), true) = (console, stdin_is_tty) {
                resize_from(std::io::stdin().as_fd(), master.as_fd());
            }
        }
        // Everything else, SIGURG, SIGPROF and the realtime signals included
        // (runc 1.1 drops SIGURG and SIGPROF, which its Go runtime uses itself).
        _ => {
            // SAFETY: kill(2) with plain integers; a vanished init is not an error here.
            unsafe { libc::kill(init.as_raw(), signo) };
        }
    }
}

/// The terminal size of `fd` as (rows, columns), if it is a terminal: the
/// caller's, for an exec'd process's `consoleSize` (runc's `exec -t`).
pub fn terminal_size(fd: BorrowedFd) -> Option<(u16, u16)> {
    crate::process::console::get_size(fd)
}

/// Set the size of the container's terminal (its pty master, from
/// [`Container::take_console`](crate::Container::take_console) or the
/// console socket) to `rows` by `cols`: an engine relaying a resize.
pub fn set_terminal_size(master: BorrowedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    use crate::process::console::ConsoleError;
    crate::process::console::set_size(master, rows, cols).map_err(|e| match e {
        ConsoleError::Pty { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    })
}

/// Give the container's terminal the caller's size before its program runs,
/// when the caller is on a terminal.
pub fn follow_caller_size(master: BorrowedFd) {
    let stdin = std::io::stdin();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        resize_from(stdin.as_fd(), master);
    }
}

fn resize_from(tty: BorrowedFd, master: BorrowedFd) {
    if let Some((rows, cols)) = console::get_size(tty) {
        let _ = console::set_size(master, rows, cols);
    }
}

/// Copy what is ready on `from` to `to`; `false` once `from` is finished.
fn copy(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => write_all(to, &buf[..n]),
        Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => true,
        // EIO: every slave descriptor is closed, the container is gone.
        Err(_) => false,
    }
}

fn write_all(to: BorrowedFd, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match nix::unistd::write(to, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::Error::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Whatever the container wrote before it exited.
fn drain(master: BorrowedFd) {
    let stdout = std::io::stdout();
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        if !copy(master, stdout.as_fd()) {
            return;
        }
    }
}

/// Reap every exited child; `Some(code)` once the init is among them.
fn reap(init: Pid) -> Result<Option<i32>> {
    let mut init_code = None;
    loop {
        let mut status = 0;
        // Raw waitpid: nix's refuses a death by a realtime signal, which has no `Signal`.
        // SAFETY: waitpid writes one int we own.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return Ok(init_code),
            -1 => match nix::Error::last() {
                nix::Error::ECHILD => return Ok(init_code),
                nix::Error::EINTR => {}
                e => return Err(Error::Wait(e)),
            },
            pid if pid == init.as_raw() => init_code = exit_code(status).or(init_code),
            _ => {}
        }
    }
}

/// A shell's view of a wait status: the exit code, or 128 + the signal.
fn exit_code(status: i32) -> Option<i32> {
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some(128 + libc::WTERMSIG(status))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's blocked signals (the mask `prepare` changes is the
    /// calling thread's; the test harness runs each test on its own).
    fn blocked_now() -> u64 {
        let mut mask: u64 = 0;
        // SAFETY: rt_sigprocmask with no new mask only writes the current one into ours.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                std::ptr::null::<u64>(),
                &mut mask,
                8usize,
            )
        };
        mask
    }

    #[test]
    fn prepare_blocks_every_signal_until_its_guard_is_dropped() {
        // The kernel never blocks these two.
        let blockable = ALL_SIGNALS & !(1 << (libc::SIGKILL - 1)) & !(1 << (libc::SIGSTOP - 1));
        let before = blocked_now();
        assert_ne!(before, blockable);
        let guard = prepare(false).unwrap();
        assert_eq!(blocked_now(), blockable);
        drop(guard);
        assert_eq!(blocked_now(), before, "the caller's mask is put back");
        prepare(false).unwrap().leave_in_place();
        assert_eq!(blocked_now(), blockable, "kept when asked");
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        assert_eq!(exit_code(3 << 8), Some(3));
        assert_eq!(exit_code(libc::SIGTERM), Some(143));
        // A realtime signal, which nix's wait status cannot name.
        assert_eq!(exit_code(40), Some(168));
        assert_eq!(exit_code(libc::SIGKILL | 0x80), Some(137));
        // Stopped (WUNTRACED) is not an exit.
        assert_eq!(exit_code(0x137f), None);
    }
}
