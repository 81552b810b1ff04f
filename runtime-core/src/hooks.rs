//! The OCI hooks (runtime-spec config.md, "POSIX-platform Hooks").
//!
//! Each hook is an absolute path, an argv (args[0] is argv[0]), its whole
//! environment and an optional timeout. It gets the container's state JSON on
//! stdin; exiting non-zero or outliving the timeout fails it.
//!
//! prestart, createRuntime, poststart and poststop run in the runtime's
//! namespaces; createContainer and startContainer run in the container's, so
//! the init calls `run_hooks` after joining them. Nothing here depends on the
//! namespaces or on threads already existing: the init calls this after a fork
//! from a single-threaded parent. One poll loop feeds stdin, drains stdout and
//! stderr and waits for the exit on a pidfd, so no helper threads are needed.

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How much of a failed hook's stdout and stderr goes into the error (the tail).
const OUTPUT_LIMIT: usize = 1024;
/// After the hook exits, output still in the pipes is read up to this much; a
/// grandchild that keeps the pipe open and writing must not hold us forever.
const DRAIN_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    /// The name the spec gives the list in config.json.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index} ({}): timeout must be greater than zero, got {timeout}", path.display())]
    InvalidTimeout { kind: HookKind, index: usize, path: PathBuf, timeout: i64 },
    #[error("error running {kind} hook #{index} ({}): {source}", path.display())]
    Spawn { kind: HookKind, index: usize, path: PathBuf, source: io::Error },
    #[error("error running {kind} hook #{index} ({}): {what}: {source}", path.display())]
    Io { kind: HookKind, index: usize, path: PathBuf, what: &'static str, source: io::Error },
    #[error("error running {kind} hook #{index} ({}): {}, stdout: {stdout}, stderr: {stderr}", path.display(), describe(status))]
    Failed { kind: HookKind, index: usize, path: PathBuf, status: ExitStatus, stdout: String, stderr: String },
    #[error("error running {kind} hook #{index} ({}): timeout after {seconds} seconds, stdout: {stdout}, stderr: {stderr}", path.display())]
    Timeout { kind: HookKind, index: usize, path: PathBuf, seconds: i64, stdout: String, stderr: String },
}

/// Go's wording, which runc's messages carry: "exit status 1", "signal: SIGKILL".
fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("signal: {signal}"),
            Err(_) => format!("signal: {signal}"),
        },
        (None, None) => status.to_string(),
    }
}

/// The hooks of one kind in the config, in order; none when absent.
#[allow(deprecated)] // prestart is deprecated in the spec but still run.
pub fn hooks_of(spec_hooks: Option<&Hooks>, kind: HookKind) -> &[Hook] {
    let Some(hooks) = spec_hooks else {
        return &[];
    };
    let list = match kind {
        HookKind::Prestart => hooks.prestart(),
        HookKind::CreateRuntime => hooks.create_runtime(),
        HookKind::CreateContainer => hooks.create_container(),
        HookKind::StartContainer => hooks.start_container(),
        HookKind::Poststart => hooks.poststart(),
        HookKind::Poststop => hooks.poststop(),
    };
    list.as_deref().unwrap_or(&[])
}

/// Run the hooks of one kind, in order, each with `state_json` on stdin. Stops at the first failure.
///
/// Runs in the caller's namespaces and cwd: for createContainer and
/// startContainer the caller is the container's init, already inside the
/// container's namespaces. Only fds 0-2 reach the hook (every other fd of the
/// runtime is close-on-exec).
pub fn run_hooks(hooks: &[Hook], kind: HookKind, state_json: &str) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_hook(hook, kind, index, state_json.as_bytes())?;
    }
    Ok(())
}

/// What became of a hook that was started.
enum Ending {
    Exited(ExitStatus),
    TimedOut(i64),
}

fn run_hook(hook: &Hook, kind: HookKind, index: usize, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => return Err(HookError::InvalidTimeout { kind, index, path, timeout: t }),
        t => t,
    };
    let mut child = command(hook).spawn().map_err(|source| HookError::Spawn { kind, index, path: path.clone(), source })?;
    let mut stdout = Capture::default();
    let mut stderr = Capture::default();
    let ending = match supervise(&mut child, timeout, state, &mut stdout, &mut stderr) {
        Ok(ending) => ending,
        Err((what, source)) => {
            // Never leave a hook running (or unreaped) behind an error of ours.
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Io { kind, index, path, what, source });
        }
    };
    let (stdout, stderr) = (stdout.render(), stderr.render());
    match ending {
        Ending::Exited(status) if status.success() => Ok(()),
        Ending::Exited(status) => Err(HookError::Failed { kind, index, path, status, stdout, stderr }),
        Ending::TimedOut(seconds) => Err(HookError::Timeout { kind, index, path, seconds, stdout, stderr }),
    }
}

fn command(hook: &Hook) -> Command {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    // The spec makes env the hook's whole environment, not an addition to ours.
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        // Command cannot pass an entry without "=" (or with an empty name); execve
        // would hand it over, but no getenv can find it, so dropping it is harmless.
        if let Some((name, value)) = entry.split_once('=').filter(|(name, _)| !name.is_empty()) {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

type Failure = (&'static str, io::Error);

/// Feed stdin, collect output and wait for the exit or the deadline, whichever
/// comes first. Output is drained until the hook exits, not until end-of-file:
/// a hook that leaves a daemon holding its stdout open has still finished.
fn supervise(
    child: &mut Child,
    timeout: Option<i64>,
    state: &[u8],
    stdout: &mut Capture,
    stderr: &mut Capture,
) -> Result<Ending, Failure> {
    let pidfd = pidfd_open(child.id()).map_err(|e| ("pidfd_open", e))?;
    let mut stdin = child.stdin.take();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    for fd in [stdin.as_ref().map(|f| f.as_raw_fd()), out.as_ref().map(|f| f.as_raw_fd()), err.as_ref().map(|f| f.as_raw_fd())]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd).map_err(|e| ("set O_NONBLOCK on a hook pipe", e))?;
    }
    // A deadline too far away to represent is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(Duration::from_secs(t.unsigned_abs())));
    let mut written = 0;
    if state.is_empty() {
        stdin = None;
    }
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    child.kill().map_err(|e| ("kill the hook", e))?;
                    child.wait().map_err(|e| ("wait for the hook", e))?;
                    drain(out.as_mut(), stdout);
                    drain(err.as_mut(), stderr);
                    return Ok(Ending::TimedOut(timeout.unwrap_or_default()));
                }
                // Round up, or the last millisecond would be spent spinning.
                let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let (exited, stdin_ready, out_ready, err_ready) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let slot = |fds: &mut Vec<PollFd<'_>>, fd: Option<std::os::fd::BorrowedFd<'_>>, flags| {
                fd.map(|fd| {
                    fds.push(PollFd::new(fd, flags));
                    fds.len() - 1
                })
            };
            let i_in = slot(&mut fds, stdin.as_ref().map(|f| f.as_fd()), PollFlags::POLLOUT);
            let i_out = slot(&mut fds, out.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN);
            let i_err = slot(&mut fds, err.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN);
            match nix::poll::poll(&mut fds, wait) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(("poll the hook's pipes", e.into())),
            }
            let ready = |i: Option<usize>| i.is_some_and(|i| fds[i].any().unwrap_or(false));
            (ready(Some(0)), ready(i_in), ready(i_out), ready(i_err))
        };
        if stdin_ready {
            if let Some(pipe) = stdin.as_mut() {
                match write_without_sigpipe(pipe, &state[written..]) {
                    Ok(n) => written += n,
                    // The hook need not read its stdin; Go's exec (so runc) ignores EPIPE too.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = state.len(),
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                    Err(e) => return Err(("write the state to the hook's stdin", e)),
                }
            }
            if written == state.len() {
                stdin = None; // closing it is the hook's end-of-file
            }
        }
        if out_ready && !read_some(out.as_mut(), stdout).map_err(|e| ("read the hook's stdout", e))? {
            out = None;
        }
        if err_ready && !read_some(err.as_mut(), stderr).map_err(|e| ("read the hook's stderr", e))? {
            err = None;
        }
        if exited {
            let status = child.wait().map_err(|e| ("wait for the hook", e))?;
            drain(out.as_mut(), stdout);
            drain(err.as_mut(), stderr);
            return Ok(Ending::Exited(status));
        }
    }
}

/// Read what the pipe has now; false at end-of-file.
fn read_some(pipe: Option<&mut impl Read>, into: &mut Capture) -> io::Result<bool> {
    let Some(pipe) = pipe else { return Ok(false) };
    let mut buf = [0u8; 16 * 1024];
    match pipe.read(&mut buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            into.push(&buf[..n]);
            Ok(true)
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(true),
        Err(e) => Err(e),
    }
}

/// After the exit: take what is left in the pipe without waiting for more.
fn drain(mut pipe: Option<&mut impl Read>, into: &mut Capture) {
    let start = into.seen;
    while into.seen - start < DRAIN_LIMIT {
        match read_some(pipe.as_deref_mut(), into) {
            Ok(true) if into.last_read_empty => break,
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
}

/// The tail of a stream, bounded, for the error message.
#[derive(Default)]
struct Capture {
    tail: Vec<u8>,
    seen: usize,
    last_read_empty: bool,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        self.seen += bytes.len();
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * OUTPUT_LIMIT {
            self.tail.drain(..self.tail.len() - OUTPUT_LIMIT);
        }
    }

    fn render(&self) -> String {
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
