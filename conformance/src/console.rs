//! The receiving end of `--console-socket`, as containerd's go-runc has it:
//! listen on a unix stream socket, accept one connection, and take one
//! message whose only control message is SCM_RIGHTS with exactly one fd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

/// What arrived: the payload (the master's name) and the descriptor.
pub struct ReceivedConsole {
    pub name: String,
    pub master: OwnedFd,
}

impl ConsoleSocket {
    pub fn bind(dir: &Path) -> ConsoleSocket {
        let path = dir.join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind the console socket");
        ConsoleSocket { path, listener }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept the runtime's connection and receive the master, checking the
    /// message has the shape go-runc's recvFd requires.
    pub fn receive(&self) -> io::Result<ReceivedConsole> {
        let (name, master) = accept_one_fd(&self.listener)?;
        Ok(ReceivedConsole { name, master })
    }
}

/// Accept one connection on `listener` and take its one message: a payload
/// and exactly one descriptor as SCM_RIGHTS (how runtimes hand over a pty
/// master or a seccomp listener).
pub fn accept_one_fd(listener: &UnixListener) -> io::Result<(String, OwnedFd)> {
    let (stream, _) = listener.accept()?;
    let mut payload = vec![0u8; 1 << 16];
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space * 4];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; every pointer in it refers to a live local buffer.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    // SAFETY: recvmsg fills the buffers described by msg, all of which outlive the call.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if msg.msg_controllen != space {
        return Err(io::Error::other(format!(
            "control data of {} bytes, want {space} (one fd)",
            msg.msg_controllen
        )));
    }
    // SAFETY: msg_controllen says one whole cmsg is present in `control`.
    let cmsg = unsafe { &*libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.cmsg_level != libc::SOL_SOCKET || cmsg.cmsg_type != libc::SCM_RIGHTS {
        return Err(io::Error::other("the control message is not SCM_RIGHTS"));
    }
    // SAFETY: an SCM_RIGHTS cmsg of this length carries exactly one int.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32) };
    // SAFETY: the kernel installed this descriptor for us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((
        String::from_utf8_lossy(&payload[..n as usize]).into_owned(),
        fd,
    ))
}

/// Everything the pty master yields until the container side closes.
pub fn read_until_closed(master: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: read into a live buffer of the given length.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            // EIO once every slave descriptor is closed.
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}
