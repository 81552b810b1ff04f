//! A foreground container (`run` without `--detach`): the runtime stays as
//! the init's parent, forwards the signals it gets, reaps, and reports the
//! exit as a shell would (the code, or 128 + the signal).

use crate::error::{Error, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

/// Forward signals to `init` until it exits; returns its exit code.
pub fn forward_until_exit(init: i32) -> Result<i32> {
    let init = Pid::from_raw(init);
    let all = SigSet::all();
    loop {
        // Reap first: the init may have exited before any signal was queued.
        if let Some(code) = reap(init)? {
            return Ok(code);
        }
        let signal = all.wait().map_err(Error::Wait)?;
        match signal {
            Signal::SIGCHLD => continue,
            // Window size changes belong to a terminal, and SIGURG is the Go runtime's business in runc.
            Signal::SIGWINCH | Signal::SIGURG => {}
            other => {
                let _ = nix::sys::signal::kill(init, other);
            }
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
