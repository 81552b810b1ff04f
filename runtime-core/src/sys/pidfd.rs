//! Process descriptors: `pidfd_open`, and runc 1.2's `--pidfd-socket`, which
//! hands the caller a pidfd of the container's init (create, run) or of an
//! exec'd process, so it can signal and wait on that process without pid
//! reuse races.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::statfs::FsType;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `PID_FS_MAGIC` (linux/magic.h): the filesystem of pidfds since Linux 6.9.
const PIDFS: FsType = FsType(0x5049_4446);

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
    open_with(pid, 0)
}

fn open_with(pid: i32, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just gave us this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether pidfds are pidfs files here (Linux 6.9 and later), asked once
/// per process. Only there does a pidfd's inode name its process: before,
/// every pidfd was the one anonymous inode.
fn on_pidfs() -> bool {
    static ON_PIDFS: OnceLock<bool> = OnceLock::new();
    *ON_PIDFS.get_or_init(|| {
        open(std::process::id() as i32).is_ok_and(|fd| {
            nix::sys::statfs::fstatfs(&fd).is_ok_and(|fs| fs.filesystem_type() == PIDFS)
        })
    })
}

/// Sends `signal` to the process `pidfd` holds (pidfd_send_signal(2)):
/// never to another process that took its pid since the pidfd was opened.
/// `ESRCH` once it has exited.
pub(crate) fn send_signal(pidfd: BorrowedFd, signal: i32) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal on a borrowed, open pidfd, with no siginfo.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent == 0 {
        Ok(())
    } else {
        Err(nix::Error::last())
    }
}

/// The pidfs inode of the process `pidfd` holds: one per process (per
/// struct pid), never given to another while the system runs (a 64-bit
/// counter), so it names a process better than its start time, whose clock
/// ticks a recycled pid could share. `None` without pidfs.
pub(crate) fn pidfs_inode(pidfd: BorrowedFd) -> Option<u64> {
    if !on_pidfs() {
        return None;
    }
    nix::sys::stat::fstat(pidfd).ok().map(|st| st.st_ino)
}

/// Whether `pid` still names the process whose pidfs inode is `inode`, and
/// that process has not exited (a zombie has): `list`'s and `state`'s probe,
/// in four system calls where reading `/proc/<pid>/stat` costs the kernel
/// the formatting of the whole line. `None` when this cannot tell (no pidfs,
/// no descriptor left): the caller asks `/proc`.
pub(crate) fn alive_by_inode(pid: i32, inode: u64) -> Option<bool> {
    if pid <= 0 || !on_pidfs() {
        return None;
    }
    // A thread pidfd (PIDFD_THREAD, Linux 6.9, as pidfs) polls readable
    // once the thread itself has exited, as the stat file's 'Z' says of a
    // group leader; a process pidfd only once every thread has. It also
    // opens a pid that is now another process's thread, whose inode then differs.
    let fd = match open_with(pid, libc::PIDFD_THREAD) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Some(false),
        Err(_) => return None,
    };
    let st = nix::sys::stat::fstat(&fd).ok()?;
    if st.st_ino != inode {
        return Some(false);
    }
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => Some(true),
        Ok(_) => Some(false),
        Err(_) => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn inode_of(pid: i32) -> Option<u64> {
        pidfs_inode(open(pid).ok()?.as_fd())
    }

    #[test]
    fn the_probe_tells_a_live_process_from_an_exited_or_another_one() {
        let me = std::process::id() as i32;
        let Some(mine) = inode_of(me) else {
            eprintln!("no pidfs (Linux before 6.9): nothing to test");
            assert_eq!(alive_by_inode(me, 1), None, "without pidfs, /proc decides");
            return;
        };
        assert_eq!(alive_by_inode(me, mine), Some(true));
        assert_eq!(
            alive_by_inode(me, mine + 1),
            Some(false),
            "another process's inode"
        );
        assert_eq!(inode_of(me), Some(mine), "one inode per process");
        assert_eq!(alive_by_inode(0, mine), None, "no pid: the caller decides");

        // A pid that now names a thread of another process.
        let tid = std::thread::spawn(move || {
            // SAFETY: gettid takes nothing and cannot fail.
            let tid = unsafe { libc::gettid() };
            (tid, alive_by_inode(tid, mine))
        })
        .join()
        .unwrap();
        assert_ne!(tid.0, me);
        assert_eq!(tid.1, Some(false), "a thread has an inode of its own");

        // A child that exited and is not yet reaped (a zombie) has exited.
        let mut child = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id() as i32;
        let pidfd = open(pid).unwrap();
        let inode = pidfs_inode(pidfd.as_fd()).unwrap();
        assert_ne!(inode, mine);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(alive_by_inode(pid, inode), Some(false), "a zombie");
        child.wait().unwrap();
        assert_eq!(alive_by_inode(pid, inode), Some(false), "reaped");

        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id() as i32;
        let inode = inode_of(pid).unwrap();
        assert_eq!(alive_by_inode(pid, inode), Some(true));
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
