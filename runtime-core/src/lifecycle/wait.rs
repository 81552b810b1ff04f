//! Waiting for one process through its pidfd: the container's init
//! ([`Container::wait`](crate::Container::wait)) or an exec'd process
//! ([`ExecProcess::wait`](crate::lifecycle::exec::ExecProcess::wait)).
//!
//! `waitid(P_PIDFD)` waits for that process alone: no `waitpid(-1)` that
//! would reap the caller's other children, no signal mask or SIGCHLD
//! handler to set up, nothing changed in the calling process. Only the
//! process's parent gets its exit status (the kernel's rule): the process
//! that called `create` or `exec`. Any other holder of a pidfd can still
//! learn *that* it exited, by polling the pidfd for readability.

use crate::lifecycle::error::{Error, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled {
        /// The signal's number.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// The exit code as a shell (and `runc run`) reports it: the code, or
    /// 128 + the signal's number.
    ///
    /// ```
    /// use berth::ExitStatus;
    ///
    /// assert_eq!(ExitStatus::Exited(3).code(), 3);
    /// let killed = ExitStatus::Signaled { signal: libc::SIGKILL, core_dumped: false };
    /// assert_eq!(killed.code(), 137);
    /// ```
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
        }
    }

    /// From `waitid`'s `si_code` and `si_status`.
    fn from_siginfo(code: i32, status: i32) -> Option<ExitStatus> {
        match code {
            libc::CLD_EXITED => Some(ExitStatus::Exited(status)),
            libc::CLD_KILLED => Some(ExitStatus::Signaled {
                signal: status,
                core_dumped: false,
            }),
            libc::CLD_DUMPED => Some(ExitStatus::Signaled {
                signal: status,
                core_dumped: true,
            }),
            _ => None,
        }
    }
}

/// `P_PIDFD` from linux/wait.h (Linux 5.4); not in every libc crate build.
const P_PIDFD: libc::idtype_t = 3;

/// Wait until the process of `pidfd` (host pid `pid`, for the error)
/// exits, and reap it. [`Error::NotChild`] when the caller is not its
/// parent, or it was reaped already.
pub(crate) fn wait(pidfd: BorrowedFd<'_>, pid: i32) -> Result<ExitStatus> {
    loop {
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: waitid writes a siginfo_t into memory we own; the pidfd
        // is borrowed for the call.
        let waited = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                info.as_mut_ptr(),
                libc::WEXITED,
            )
        };
        if waited != 0 {
            match nix::Error::last() {
                nix::Error::EINTR => continue,
                nix::Error::ECHILD => {
                    return Err(Error::NotChild {
                        pid: crate::Pid::from_raw(pid),
                    })
                }
                other => return Err(Error::Wait(other)),
            }
        }
        // SAFETY: zeroed, then filled in by a successful waitid.
        let info = unsafe { info.assume_init() };
        // SAFETY: for a CLD_* child event the kernel filled in si_status.
        let status = unsafe { info.si_status() };
        return ExitStatus::from_siginfo(info.si_code, status)
            .ok_or(Error::Wait(nix::Error::EINVAL));
    }
}

/// A pidfd of the init `record` names, or [`Error::NotRunning`] when that
/// process is gone (the pid may name another process by now).
///
/// The pidfd is opened first, then compared with the record: its pidfs
/// inode where the record has one (that is the process's own, never
/// reused), else the start time in its stat file. A pidfd holds one
/// process, so once the comparison passes it is the init's for good. An
/// exited init not yet reaped (a zombie) still passes: its parent may wait
/// for it.
pub(crate) fn open_recorded(record: &crate::state::Record) -> Result<OwnedFd> {
    let pid = record.pid;
    if pid <= 0 {
        return Err(Error::NotRunning);
    }
    let pidfd = match crate::sys::pidfd::open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(Error::NotRunning),
        Err(source) => return Err(crate::sys::pidfd::PidfdError::Open { pid, source }.into()),
    };
    let same = match (
        record.pidfs_inode,
        crate::sys::pidfd::pidfs_inode(pidfd.as_fd()),
    ) {
        (Some(recorded), Some(inode)) => recorded == inode,
        _ => crate::state::process_stat(pid)
            .is_some_and(|(_, started)| started == record.pid_start_time),
    };
    if same {
        Ok(pidfd)
    } else {
        Err(Error::NotRunning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn codes_are_a_shells() {
        assert_eq!(ExitStatus::Exited(0).code(), 0);
        assert_eq!(ExitStatus::Exited(255).code(), 255);
        let term = ExitStatus::Signaled {
            signal: libc::SIGTERM,
            core_dumped: false,
        };
        assert_eq!(term.code(), 143);
    }

    #[test]
    fn siginfo_codes_map_to_statuses() {
        assert_eq!(
            ExitStatus::from_siginfo(libc::CLD_EXITED, 7),
            Some(ExitStatus::Exited(7))
        );
        assert_eq!(
            ExitStatus::from_siginfo(libc::CLD_KILLED, libc::SIGKILL),
            Some(ExitStatus::Signaled {
                signal: libc::SIGKILL,
                core_dumped: false
            })
        );
        assert_eq!(
            ExitStatus::from_siginfo(libc::CLD_DUMPED, libc::SIGSEGV),
            Some(ExitStatus::Signaled {
                signal: libc::SIGSEGV,
                core_dumped: true
            })
        );
        // Stopped or continued are not an end.
        assert_eq!(ExitStatus::from_siginfo(libc::CLD_STOPPED, 19), None);
    }

    /// A record of the init `pid`, started at `start`, with pidfs inode `inode`.
    fn recorded(pid: i32, start: u64, inode: Option<u64>) -> crate::state::Record {
        let text = format!(
            r#"{{"id":"w","ociVersion":"1.2.1","pid":{pid},"pid_start_time":{start},"bundle":"/b","rootfs":"/b/r","created":"2026-12-07T20:00:00Z"}}"#
        );
        let mut record: crate::state::Record = serde_json::from_str(&text).unwrap();
        record.pidfs_inode = inode;
        record
    }

    #[test]
    fn a_pid_that_is_not_the_recorded_process_is_not_running() {
        // This test process is alive, but did not start at tick 1.
        let me = std::process::id() as i32;
        assert!(matches!(
            open_recorded(&recorded(me, 1, None)),
            Err(Error::NotRunning)
        ));
        assert!(matches!(
            open_recorded(&recorded(0, 0, None)),
            Err(Error::NotRunning)
        ));
        let (_, started) = crate::state::process_stat(me).expect("own stat");
        assert!(open_recorded(&recorded(me, started, None)).is_ok());
    }

    #[test]
    fn a_recorded_pidfs_inode_decides_over_the_start_time() {
        let me = std::process::id() as i32;
        let own = crate::sys::pidfd::open(me).unwrap();
        let Some(inode) = crate::sys::pidfd::pidfs_inode(own.as_fd()) else {
            eprintln!("no pidfs (Linux before 6.9): nothing to test");
            return;
        };
        let (_, started) = crate::state::process_stat(me).expect("own stat");
        // The inode is the process's own: a start time off by a tick is not looked at.
        assert!(open_recorded(&recorded(me, started + 1, Some(inode))).is_ok());
        // Another process's inode (the pid recycled) is not running, whatever the start time says.
        assert!(matches!(
            open_recorded(&recorded(me, started, Some(inode + 1))),
            Err(Error::NotRunning)
        ));
    }

    #[test]
    fn waiting_for_a_process_that_is_not_a_child_is_a_typed_error() {
        // pid 1 is nobody's child here.
        let (_, started) = crate::state::process_stat(1).expect("stat of pid 1");
        let init = open_recorded(&recorded(1, started, None)).expect("pidfd of pid 1");
        assert!(matches!(
            wait(init.as_fd(), 1),
            Err(Error::NotChild { pid }) if pid.as_raw() == 1
        ));
    }
}
