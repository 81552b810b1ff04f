//! `binary://` log URIs: a logging program the shim starts for a process's
//! output, as containerd's shim protocol for logging binaries defines it
//! (its `runtime/v2/logging` package is the logger's side). The program
//! is the URI's path, its arguments the query (`uri.rs`), its environment
//! only `CONTAINER_ID` and `CONTAINER_NAMESPACE`; it gets the reading ends
//! of the process's stdout and stderr pipes as descriptors 3 and 4, and as
//! 5 the writing end of a pipe it closes (or writes to) once it is ready.
//!
//! The shim is threaded, so it never forks to run code: std's spawn
//! (fork+exec, nothing run in between) starts this binary again as a
//! trampoline (`LOGGER_ARG`) with one end of a socketpair as its stdin.
//! The shim sends it the three descriptors there; the trampoline, a fresh
//! single-threaded process, puts them at 3-5 and /dev/null at 0-2, and
//! execs the logger in its place (same pid). The socket is close-on-exec,
//! so the shim reads its end (EOF) once the exec worked; the trampoline
//! sends the exec's error instead when it failed (a missing program).
//!
//! Unlike the runc shim, which keeps its copies of the pipes' writing ends
//! until Delete, the shim holds none once the process has them, so the
//! logger reads EOF when the process's last holder of its output exits.
//! At Delete the shim waits a little for it to end, then sends SIGTERM (as
//! containerd's shim does first), waits a bounded time and kills it: no
//! logger outlives its process's Delete.

mod uri;

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

pub use uri::is_binary;

/// The hidden first argument that makes the shim binary the trampoline.
pub const LOGGER_ARG: &str = "berth-logger";

/// How long the logger has to start and say it is ready. containerd's shim
/// waits forever; a logger that hangs would hang the create with it.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// At Delete: how long the logger may take to end on its own (it has read
/// EOF when the process exited), then after SIGTERM (containerd's shim
/// gives 12 s), then after SIGKILL.
const OWN_END: Duration = Duration::from_secs(2);
const AFTER_TERM: Duration = Duration::from_secs(10);
const AFTER_KILL: Duration = Duration::from_secs(2);

/// A running logging program.
#[derive(Debug)]
pub struct Logger {
    pid: i32,
    /// Taken right after the spawn, while the trampoline waits for its
    /// descriptors: waits and signals reach this process even after the
    /// shim's reaper took its status and the pid was reused.
    pidfd: OwnedFd,
    program: String,
}

/// A started logger and the writing ends the process gets.
#[derive(Debug)]
pub struct Started {
    pub logger: Logger,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Starts the logger `uri` names for a process of container `id` in
/// `namespace` and waits until it is ready. `spawned(pid)` is called as
/// soon as it exists (the shim's exit thread must know the pid before the
/// logger can exit). On an error nothing is left: the logger is killed and
/// the pipes are closed.
pub fn start(
    uri: &str,
    id: &str,
    namespace: &str,
    spawned: impl FnOnce(i32),
) -> std::io::Result<Started> {
    let binary =
        uri::parse(uri).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let program = binary.program.to_string_lossy().into_owned();
    let failed = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("the logging binary {program}: {e}"))
    };
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from);
    let (out_read, out_write) = pipe().map_err(failed)?;
    let (err_read, err_write) = pipe().map_err(failed)?;
    let (ready_read, ready_write) = pipe().map_err(failed)?;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| failed(e.into()))?;
    // One expression: the Command (and its copy of `theirs`) is dropped at
    // its end, so the trampoline's exec leaves no other holder of its end.
    let pid = Command::new("/proc/self/exe")
        .arg(LOGGER_ARG)
        .arg(&binary.program)
        .args(&binary.args)
        .env_clear()
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed)?
        .id() as i32;
    // The shim's reaper thread reaps it: the Child is not waited on.
    spawned(pid);
    let pidfd = match pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(e) => {
            // Only a kill from outside ends the trampoline before it has
            // its descriptors; the pid is still its own (not reaped).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(failed(e));
        }
    };
    let logger = Logger {
        pid,
        pidfd,
        program: program.clone(),
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let readied = crate::forker::send(&ours, b"stdio", &[&out_read, &err_read, &ready_write])
        .and_then(|()| {
            drop((out_read, err_read, ready_write));
            exec_result(&ours, deadline)
        })
        .and_then(|()| wait_ready(&ready_read, pid, &logger.pidfd, deadline));
    match readied {
        Ok(()) => Ok(Started {
            logger,
            stdout: out_write,
            stderr: err_write,
        }),
        Err(e) => {
            logger.kill();
            Err(failed(e))
        }
    }
}

/// Whether the trampoline's exec of the logger worked: EOF on the socket
/// (the exec closed it), or the error it sent.
fn exec_result(socket: &OwnedFd, deadline: Instant) -> std::io::Result<()> {
    if !readable(
        socket.as_fd(),
        deadline.saturating_duration_since(Instant::now()),
    )? {
        return Err(timed_out("did not start"));
    }
    match crate::forker::receive(socket)? {
        None => Ok(()),
        Some((message, _)) => Err(std::io::Error::other(
            String::from_utf8_lossy(&message).into_owned(),
        )),
    }
}

/// Waits until the logger writes to or closes its ready pipe, alive: a
/// logger that exits first (whose exit closed the pipe) is an error.
fn wait_ready(
    ready: &OwnedFd,
    pid: i32,
    pidfd: &OwnedFd,
    deadline: Instant,
) -> std::io::Result<()> {
    let exited = || std::io::Error::other("it exited before it was ready");
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut fds = [
        PollFd::new(ready.as_fd(), PollFlags::POLLIN),
        PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
    ];
    if poll(&mut fds, timeout(remaining))? == 0 {
        return Err(timed_out("was not ready"));
    }
    if fds[0].any() != Some(true) {
        return Err(exited());
    }
    let mut byte = [0u8; 1];
    let n = std::fs::File::from(ready.try_clone()?).read(&mut byte)?;
    // A close is the usual "ready" (containerd's logging package closes the
    // pipe), and an exit closes it too, a moment before the pidfd shows the
    // exit. The kernel marks a task exiting before it closes its files, so
    // the mark tells the two apart with no wait; the pidfd, looked at after
    // it, covers a logger already reaped (and its pid reused).
    if n == 0 && (exiting(pid) || readable(pidfd.as_fd(), Duration::ZERO)?) {
        return Err(exited());
    }
    Ok(())
}

/// Whether process `pid` is exiting or has exited: `PF_EXITING` (0x4) in
/// the flags of /proc/PID/stat (field 9), or a zombie; or gone.
fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // After "(comm)", which may hold spaces: state is field 3, flags 9.
    let mut fields = stat[stat.rfind(')').map_or(0, |i| i + 1)..].split_whitespace();
    let state = fields.next().unwrap_or("");
    let flags: u64 = fields.nth(5).and_then(|f| f.parse().ok()).unwrap_or(0);
    state == "Z" || state == "X" || flags & PF_EXITING != 0
}

impl Logger {
    /// Ends the logger after its process's Delete: a little time to end on
    /// its own, then SIGTERM and a bounded wait, then SIGKILL.
    pub fn stop(self) {
        if self.ended_within(OWN_END) {
            return;
        }
        self.signal(libc::SIGTERM);
        if self.ended_within(AFTER_TERM) {
            return;
        }
        log::warn!(
            "the logging binary {} (pid {}) did not end after SIGTERM: killing it",
            self.program,
            self.pid
        );
        self.kill();
    }

    /// SIGKILL, and a bounded wait for the exit.
    fn kill(self) {
        self.signal(libc::SIGKILL);
        if !self.ended_within(AFTER_KILL) {
            log::warn!("the logging binary (pid {}) outlived SIGKILL", self.pid);
        }
    }

    fn ended_within(&self, wait: Duration) -> bool {
        readable(self.pidfd.as_fd(), wait).unwrap_or(true)
    }

    fn signal(&self, signal: i32) {
        // SAFETY: pidfd_send_signal takes the pidfd, a signal number, a
        // null siginfo and no flags; it touches no memory of ours.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if sent < 0 {
            let e = std::io::Error::last_os_error();
            // ESRCH: it has exited already.
            if e.raw_os_error() != Some(libc::ESRCH) {
                log::warn!("signal the logging binary (pid {}): {e}", self.pid);
            }
        }
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor
    // or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: the kernel just made this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether `fd` becomes readable (a pidfd: its process exited) within
/// `wait`.
fn readable(fd: BorrowedFd<'_>, wait: Duration) -> std::io::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    Ok(poll(&mut fds, timeout(wait))? > 0)
}

fn timeout(wait: Duration) -> PollTimeout {
    PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("it {what} within {} s", READY_TIMEOUT.as_secs()),
    )
}

/// The trampoline (`LOGGER_ARG PROGRAM ARGS...`): takes the descriptors
/// from the socket on its stdin, and execs the program with them at 3-5;
/// if that fails, sends the error back and exits 127.
pub fn trampoline() -> std::process::ExitCode {
    let socket = match take_socket() {
        Ok(socket) => socket,
        // Nothing to tell the shim on: it sees the exit (EOF) instead.
        Err(_) => return std::process::ExitCode::from(127),
    };
    let error = match exec_logger(&socket) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = crate::forker::send(&socket, error.as_bytes(), &[]);
    std::process::ExitCode::from(127)
}

/// The socket on descriptor 0 moved above 5 (close-on-exec: the exec
/// closes it and the shim reads EOF), /dev/null on 0 in its place.
fn take_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: descriptor 0 is the socket the shim gave as stdin (`start`),
    // borrowed only for the copy.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let socket = dup_high(stdin)?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    Ok(socket)
}

/// A close-on-exec copy of `fd` above 5 (the logger's 3-5).
fn dup_high(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let copy = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10))?;
    // SAFETY: fcntl just made this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Only returns on an error: its text.
fn exec_logger(socket: &OwnedFd) -> Result<std::convert::Infallible, String> {
    let mut args = std::env::args_os().skip(2);
    let program = args.next().ok_or("no program named")?;
    let argv: Vec<CString> = std::iter::once(program.clone())
        .chain(args)
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let fds = match crate::forker::receive(socket) {
        Ok(Some((_, fds))) if fds.len() == 3 => fds,
        Ok(_) => return Err("the shim sent no descriptors".into()),
        Err(e) => return Err(format!("receive the descriptors: {e}")),
    };
    // Above 5 first (close-on-exec), so that placing one at 3-5 never
    // overwrites another still to be placed.
    let moved: Vec<OwnedFd> = fds
        .iter()
        .map(|fd| dup_high(fd.as_fd()).map_err(|e| format!("dup: {e}")))
        .collect::<Result<_, _>>()?;
    drop(fds);
    for (target, fd) in (3..).zip(&moved) {
        // SAFETY: dup2 onto 3-5, which nothing in this process owns (the
        // originals above were moved off them); the copies stay open, not
        // close-on-exec, for the logger.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
    }
    let program = CString::new(program.into_vec()).map_err(|e| e.to_string())?;
    let e = nix::unistd::execv(&program, &argv).unwrap_err();
    Err(format!("exec: {}", std::io::Error::from(e)))
}
