//! A foreground container (`run` without `--detach`): the runtime stays as
//! the init's parent, forwards the signals it gets, reaps, relays the
//! container's terminal if it has one, and reports the exit as a shell would
//! (the code, or 128 + the signal).

use crate::console;
use crate::error::{Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Block every signal so they queue for `forward_until_exit` instead of
/// killing the runtime. Call before `create`; the init unblocks them for itself.
/// `subreaper` makes orphans of the container reparent to this process, to be reaped here.
pub fn prepare(subreaper: bool) -> Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None).map_err(Error::Wait)?;
    if subreaper {
        nix::sys::prctl::set_child_subreaper(true).map_err(Error::Wait)?;
    }
    Ok(())
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
pub fn forward_until_exit(init: i32, console: Option<OwnedFd>) -> Result<i32> {
    let init = Pid::from_raw(init);
    let signals = SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_CLOEXEC).map_err(Error::Wait)?;
    let stdin = std::io::stdin();
    let stdin_is_tty = console.is_some() && nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let _raw = if stdin_is_tty { RawTerminal::enter(stdin.as_fd()) } else { None };
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
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        if ready[0] {
            if let Ok(Some(info)) = signals.read_signal() {
                handle_signal(info.ssi_signo as i32, init, console.as_ref(), stdin_is_tty);
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

fn handle_signal(signo: i32, init: Pid, console: Option<&OwnedFd>, stdin_is_tty: bool) {
    match Signal::try_from(signo) {
        Ok(Signal::SIGCHLD) => {}
        Ok(Signal::SIGWINCH) => {
            if let (Some(master), true) = (console, stdin_is_tty) {
                resize_from(std::io::stdin().as_fd(), master.as_fd());
            }
        }
        // SIGURG is the Go runtime's business in runc, and not forwarded there either.
        Ok(Signal::SIGURG) => {}
        _ => {
            // SAFETY: kill(2) with plain integers; a vanished init is not an error here.
            unsafe { libc::kill(init.as_raw(), signo) };
        }
    }
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
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => init_code = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == init => init_code = Some(128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(init_code),
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(Error::Wait(e)),
        }
    }
}
