//! The container's stdio as pipes the shim copies to and from containerd's
//! FIFOs (as the runc shim does), not the FIFOs themselves: a pipe is what
//! CRIU can dump and re-attach at restore, where a FIFO at a host path
//! outside the container's mounts is refused; and the container's output
//! does not depend on how containerd opened its end.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::stdio::StdioPaths;

/// Opens `stdio`'s FIFOs and returns the process's ends of three pipes
/// (none where containerd gave no path), with a thread copying each.
pub fn connect(stdio: &StdioPaths) -> std::io::Result<[Option<OwnedFd>; 3]> {
    let [stdin, stdout, stderr] = stdio.open()?;
    Ok([
        stdin.map(feed).transpose()?,
        stdout.map(drain).transpose()?,
        stderr.map(drain).transpose()?,
    ])
}

/// A pipe whose reading end is the process's stdin, fed from `fifo` until
/// containerd's writer closes it.
fn feed(fifo: OwnedFd) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || copy_from_fifo(fifo, File::from(write)))?;
    Ok(read)
}

/// A pipe whose writing end is the process's stdout or stderr, drained
/// into `out` until every holder of the writing end has closed it.
fn drain(out: OwnedFd) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    std::thread::Builder::new()
        .name("output".into())
        .spawn(move || {
            let _ = std::io::copy(&mut File::from(read), &mut File::from(out));
        })?;
    Ok(write)
}

/// Copies until the FIFO's writer has come and gone. A FIFO read before
/// its writer opened it reads as the end (0 bytes): poll first, which
/// waits for data or for a writer that closed.
fn copy_from_fifo(fifo: OwnedFd, mut to: File) {
    let mut from = File::from(fifo);
    let mut buffer = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            return;
        }
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
