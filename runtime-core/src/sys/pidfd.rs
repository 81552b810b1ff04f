//! Process descriptors: `pidfd_open`, and runc 1.2's `--pidfd-socket`, which
//! hands the caller a pidfd of the container's init (create, run) or of an
//! exec'd process, so it can signal and wait on that process without pid
//! reuse races.

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidfdError {
    #[error(
        "--pidfd-socket needs pidfd_open(2) (Linux 5.3 or later), and this kernel refuses it: {0}"
    )]
    Unsupported(io::Error),
    #[error("pidfd socket {0}")]
    Connect(crate::sys::host_file::HostFileError),
    #[error("pidfd_open of pid {pid}: {source}")]
    Open { pid: i32, source: io::Error },
    #[error("send the pidfd to the pidfd socket {path}: {source}")]
    Send { path: PathBuf, source: nix::Error },
}

/// A descriptor for process `pid`, which the caller must know to be the one
/// it means (its own unreaped child, or one it just checked).
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just gave us this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A connection to the caller's `--pidfd-socket`, made before anything
/// exists so a bad socket or a kernel without pidfds fails with nothing to undo.
#[derive(Debug)]
pub struct PidfdSocket {
    path: PathBuf,
    sock: OwnedFd,
}

impl PidfdSocket {
    pub fn connect(path: &Path) -> Result<PidfdSocket, PidfdError> {
        open(std::process::id() as i32).map_err(PidfdError::Unsupported)?;
        // Not through a symlink someone else planted (sys/host_file.rs).
        let sock = crate::sys::host_file::connect_unix(path).map_err(PidfdError::Connect)?;
        Ok(PidfdSocket {
            path: path.to_path_buf(),
            sock,
        })
    }

    /// Send a pidfd of `pid` as runc 1.2 does: one message whose payload
    /// names the kind of process (`standard` for an init, `setns` for an
    /// exec'd one), the descriptor as the only SCM_RIGHTS entry.
    pub fn send(&self, pid: i32, kind: &str) -> Result<(), PidfdError> {
        let pidfd = open(pid).map_err(|source| PidfdError::Open { pid, source })?;
        let fds = [pidfd.as_raw_fd()];
        sendmsg::<()>(
            self.sock.as_raw_fd(),
            &[IoSlice::new(kind.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| PidfdError::Send {
            path: self.path.clone(),
            source,
        })?;
        Ok(())
    }
}
