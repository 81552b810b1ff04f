//! The receiving end of runc 1.2's `--pidfd-socket`: the same message shape
//! as the console socket (a payload naming the kind of process, one fd as
//! SCM_RIGHTS), carrying a pidfd.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::console::accept_one_fd;

pub struct PidfdSocket {
    path: PathBuf,
    listener: UnixListener,
}

/// What arrived: the payload (`standard` for an init, `setns` for an exec'd
/// process) and the descriptor.
pub struct ReceivedPidfd {
    pub kind: String,
    pub pidfd: OwnedFd,
}

impl ReceivedPidfd {
    /// The host pid the pidfd refers to, from its fdinfo (`Pid:`), or None
    /// if the descriptor is not a pidfd.
    pub fn pid(&self) -> Option<i64> {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", self.pidfd.as_raw_fd()))
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// pidfd_send_signal with signal 0: whether the process is alive and the
    /// descriptor a pidfd.
    pub fn signal_zero(&self) -> io::Result<()> {
        // SAFETY: pidfd_send_signal on a descriptor we own, no siginfo, no flags.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl PidfdSocket {
    pub fn bind(dir: &Path) -> PidfdSocket {
        let path = dir.join("pidfd.sock");
        let listener = UnixListener::bind(&path).expect("bind the pidfd socket");
        PidfdSocket { path, listener }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn receive(&self) -> io::Result<ReceivedPidfd> {
        let (kind, pidfd) = accept_one_fd(&self.listener)?;
        Ok(ReceivedPidfd { kind, pidfd })
    }
}
