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
//! from a single-threaded parent.
//!
//! A hook never outlives the operation that ran it unless it finished by
//! itself (`child.rs`): it starts with clean signal state in a process group
//! of its own, which is SIGKILLed at its timeout, when the runtime is told to
//! stop (SIGTERM, SIGINT, SIGHUP: `sys/stop_signals.rs`), when the runtime that
//! asked for it hangs up, and, by a watchdog, when the runtime dies.

mod child;
mod supervise;
#[cfg(test)]
mod tests;

use crate::sys::stop_signals::{self, StopSignals};
use child::HookProcess;
use oci_spec::runtime::{Hook, Hooks};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use supervise::{supervise, Capture, Ending, Watch};

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
    InvalidTimeout {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        timeout: i64,
    },
    #[error("error running {kind} hook #{index} ({}): {source}", path.display())]
    Spawn {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        source: io::Error,
    },
    #[error("error running {kind} hook #{index} ({}): {what}: {source}", path.display())]
    Io {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("error running {kind} hook #{index} ({}): {}, stdout: {stdout}, stderr: {stderr}", path.display(), describe(status))]
    Failed {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    #[error("error running {kind} hook #{index} ({}): timeout after {seconds} seconds, stdout: {stdout}, stderr: {stderr}", path.display())]
    Timeout {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        seconds: i64,
        stdout: String,
        stderr: String,
    },
    /// The runtime was told to stop while the hook ran (or before it could):
    /// the hook and its process group were killed.
    #[error("error running {kind} hook #{index} ({}): stopped by {} to the runtime, stdout: {stdout}, stderr: {stderr}", path.display(), stop_signals::name(*signal))]
    Stopped {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        signal: i32,
        stdout: String,
        stderr: String,
    },
    /// The runtime that asked for the hook (the init's parent) is gone: the
    /// hook and its process group were killed.
    #[error("error running {kind} hook #{index} ({}): killed: the runtime that asked for it is gone", path.display())]
    RuntimeGone {
        kind: HookKind,
        index: usize,
        path: PathBuf,
    },
}

/// Go's wording, which runc's messages carry: "exit status 1", "signal: SIGKILL".
fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(n)) => format!(
            "signal: {}",
            nix::sys::signal::Signal::try_from(n).map_or_else(|_| n.to_string(), |s| s.to_string())
        ),
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
    run_required(hooks, kind, state_json, None)
}

/// `run_hooks` in the init for the runtime that asked for them: when its end
/// of `channel` hangs up (the runtime died, or gave up and killed us), the
/// running hook's group is killed and the rest are not run.
pub fn run_hooks_for_runtime(
    hooks: &[Hook],
    kind: HookKind,
    state_json: &str,
    channel: BorrowedFd<'_>,
) -> Result<(), HookError> {
    run_required(hooks, kind, state_json, Some(channel))
}

fn run_required(
    hooks: &[Hook],
    kind: HookKind,
    state_json: &str,
    runtime: Option<BorrowedFd<'_>>,
) -> Result<(), HookError> {
    if hooks.is_empty() {
        return Ok(());
    }
    // Without a signalfd (a seccomp profile may deny it to a startContainer
    // hook's init) the hooks still run, with stop signals as they were.
    let stop = StopSignals::hold().ok();
    let watch = Watch {
        stop: stop.as_ref(),
        runtime,
    };
    for (index, hook) in hooks.iter().enumerate() {
        run_hook(hook, kind, index, state_json.as_bytes(), watch)?;
    }
    Ok(())
}

/// Run every hook of a kind whose failure is only a warning (poststop;
/// poststart too before spec 1.3): one that fails does not keep the rest from running
/// (runtime.md, "Lifecycle"). Returns one error per failed hook. A stop
/// signal ends the list: the hook running is killed, the rest are not run,
/// and a caller that queues that signal itself (a foreground `run`) gets it
/// back, to forward to the container.
pub fn run_warning_hooks(hooks: &[Hook], kind: HookKind, state_json: &str) -> Vec<HookError> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let stop = StopSignals::hold().ok();
    let watch = Watch {
        stop: stop.as_ref(),
        runtime: None,
    };
    let mut errors = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        match run_hook(hook, kind, index, state_json.as_bytes(), watch) {
            Ok(()) => {}
            Err(e @ HookError::Stopped { signal, .. }) => {
                if let Some(stop) = &stop {
                    stop.pass_on(signal);
                }
                errors.push(e);
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

fn run_hook(
    hook: &Hook,
    kind: HookKind,
    index: usize,
    state: &[u8],
    watch: Watch<'_>,
) -> Result<(), HookError> {
    let path = hook.path().clone();
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => {
            return Err(HookError::InvalidTimeout {
                kind,
                index,
                path,
                timeout: t,
            })
        }
        t => t,
    };
    // Told to stop before it began: it does not begin.
    if let Some(signal) = watch.stop.and_then(StopSignals::received) {
        return Err(HookError::Stopped {
            kind,
            index,
            path,
            signal,
            stdout: String::new(),
            stderr: String::new(),
        });
    }
    let mut process = HookProcess::spawn(hook).map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    let mut stdout = Capture::default();
    let mut stderr = Capture::default();
    let ending = match supervise(
        &mut process,
        timeout,
        state,
        &mut stdout,
        &mut stderr,
        watch,
    ) {
        Ok(ending) => ending,
        Err((what, source)) => {
            // Never leave a hook running (or unreaped) behind an error of ours.
            let _ = process.kill_and_reap();
            return Err(HookError::Io {
                kind,
                index,
                path,
                what,
                source,
            });
        }
    };
    let (stdout, stderr) = (stdout.render(), stderr.render());
    match ending {
        Ending::Exited(status) if status.success() => Ok(()),
        Ending::Exited(status) => Err(HookError::Failed {
            kind,
            index,
            path,
            status,
            stdout,
            stderr,
        }),
        Ending::TimedOut(seconds) => Err(HookError::Timeout {
            kind,
            index,
            path,
            seconds,
            stdout,
            stderr,
        }),
        Ending::Stopped(signal) => Err(HookError::Stopped {
            kind,
            index,
            path,
            signal,
            stdout,
            stderr,
        }),
        Ending::RuntimeGone => Err(HookError::RuntimeGone { kind, index, path }),
    }
}
