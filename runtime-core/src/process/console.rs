//! The container's terminal (`process.terminal`).
//!
//! The init opens the pty inside the container, after pivot_root, from the
//! container's own devpts instance (resolved in-root, checked to be the ptmx
//! device), so the pty belongs to the container. The slave is reached from
//! the master with TIOCGPTPEER rather than by a path, and /dev/console is a
//! bind of that descriptor, never of a /dev/pts path the container could
//! swap (CVE-2025-52565). The master goes to the parent over the sync
//! channel, and from there to `--console-socket` or the foreground relay.

use crate::isolation::rootfs::Root;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("open the container's /dev/pts/ptmx: {0}")]
    OpenPtmx(std::io::Error),
    #[error("/dev/pts/ptmx in the container is not the pty multiplexer")]
    NotPtmx,
    #[error("{op} on the container's pty: {source}")]
    Pty {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("bind the pty to /dev/console: {0}")]
    Console(std::io::Error),
    #[error("make the pty the controlling terminal: {0}")]
    Controlling(nix::Error),
    #[error("send the pty master to the console socket {path}: {source}")]
    Socket { path: PathBuf, source: nix::Error },
    #[error("console socket {0}")]
    SocketPath(crate::sys::host_file::HostFileError),
}

fn ioctl(
    fd: BorrowedFd,
    request: libc::Ioctl,
    arg: libc::c_ulong,
    op: &'static str,
) -> Result<libc::c_int, ConsoleError> {
    // SAFETY: the pty ioctls used here take an integer or a pointer to a live local; the result is checked.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if ret < 0 {
        return Err(ConsoleError::Pty {
            op,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(ret)
}

/// Set the terminal size of a pty (rows × columns).
pub fn set_size(fd: BorrowedFd, rows: u16, cols: u16) -> Result<(), ConsoleError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    ioctl(
        fd,
        libc::TIOCSWINSZ,
        &size as *const libc::winsize as libc::c_ulong,
        "set the window size",
    )
    .map(drop)
}

/// The terminal size of `fd`, if it is a terminal.
pub fn get_size(fd: BorrowedFd) -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    ioctl(
        fd,
        libc::TIOCGWINSZ,
        &mut size as *mut libc::winsize as libc::c_ulong,
        "get the window size",
    )
    .ok()?;
    Some((size.ws_row, size.ws_col))
}

/// Make a new session whose controlling terminal is stdin, the slave
/// [`setup_in_container`] made the process's stdio.
pub fn take_controlling_terminal() -> Result<(), ConsoleError> {
    nix::unistd::setsid().map_err(ConsoleError::Controlling)?;
    // SAFETY: TIOCSCTTY takes an integer argument; an invalid descriptor is an error.
    if unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) } < 0 {
        return Err(ConsoleError::Controlling(nix::Error::last()));
    }
    Ok(())
}

/// In the init, after pivot_root: make a pty, make its slave the process's
/// stdio and /dev/console, and return the master.
/// `bind_console`: also make /dev/console the slave (the container's first
/// process; an exec'd process leaves /dev/console as it is). The process
/// that runs the program takes it as its controlling terminal
/// ([`take_controlling_terminal`]): not a setup process that forks it.
pub fn setup_in_container(
    size: Option<(u16, u16)>,
    bind_console: bool,
) -> Result<OwnedFd, ConsoleError> {
    let root = Root::open(Path::new("/")).map_err(ConsoleError::OpenPtmx)?;
    let master = root
        .open_path(Path::new("/dev/pts/ptmx"), libc::O_RDWR | libc::O_NOCTTY)
        .map_err(ConsoleError::OpenPtmx)?;
    let stat = nix::sys::stat::fstat(&master).map_err(|e| ConsoleError::OpenPtmx(e.into()))?;
    let is_ptmx = stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(stat.st_rdev) == 5
        && nix::sys::stat::minor(stat.st_rdev) == 2;
    if !is_ptmx {
        return Err(ConsoleError::NotPtmx);
    }
    let unlock: libc::c_int = 0;
    ioctl(
        master.as_fd(),
        libc::TIOCSPTLCK,
        &unlock as *const libc::c_int as libc::c_ulong,
        "unlock",
    )?;
    if let Some((rows, cols)) = size {
        set_size(master.as_fd(), rows, cols)?;
    }
    let flags = (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong;
    let raw = ioctl(master.as_fd(), libc::TIOCGPTPEER, flags, "open the slave")?;
    // SAFETY: TIOCGPTPEER returned a new descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(raw) };

    if bind_console {
        let target = root
            .file_not_link(Path::new("/dev/console"))
            .map_err(ConsoleError::Console)?;
        let bind = crate::sys::mount_api::clone_tree(Some(slave.as_fd()), Path::new(""), false)
            .map_err(ConsoleError::Console)?;
        crate::sys::mount_api::attach(bind.as_fd(), target.as_fd())
            .map_err(ConsoleError::Console)?;
    }

    for stdio in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which the init owns.
        if unsafe { libc::dup2(slave.as_raw_fd(), stdio) } < 0 {
            return Err(ConsoleError::Controlling(nix::Error::last()));
        }
    }
    Ok(master)
}

/// A detached process's terminal goes to the caller's `--console-socket`
/// now; without a socket the master stays with the caller, to relay.
pub fn hand_over(
    socket: Option<&Path>,
    master: Option<OwnedFd>,
) -> Result<Option<OwnedFd>, ConsoleError> {
    match (socket, master) {
        (Some(path), Some(master)) => send_to_socket(path, master.as_fd()).map(|()| None),
        (_, master) => Ok(master),
    }
}

/// Hand the master to whoever listens on `path`, as runc does: one message,
/// the name as payload, the descriptor as the only SCM_RIGHTS entry.
pub fn send_to_socket(path: &Path, master: BorrowedFd) -> Result<(), ConsoleError> {
    let fail = |source| ConsoleError::Socket {
        path: path.to_path_buf(),
        source,
    };
    // Not through a symlink someone else planted (sys/host_file.rs).
    let sock = crate::sys::host_file::connect_unix(path).map_err(ConsoleError::SocketPath)?;
    let fds = [master.as_raw_fd()];
    let payload = b"/dev/ptmx";
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(fail)?;
    Ok(())
}
