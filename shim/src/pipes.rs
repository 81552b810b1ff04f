//! The container's stdio as pipes the shim copies to and from containerd's
//! FIFOs (as the runc shim does), not the FIFOs themselves: a pipe is what
//! CRIU can dump and re-attach at restore, where a FIFO at a host path
//! outside the container's mounts is refused; and the container's output
//! does not depend on how containerd opened its end. The output of a
//! `binary://` log URI goes to pipes whose reading ends only the logging
//! program holds (`logger.rs`).
//!
//! The pipes are owned by the runc options' `io_uid`/`io_gid` when set, as
//! the runc shim's: a process in a user namespace where the host's root is
//! unmapped can then reopen its stdio (`/proc/self/fd/1`, `/dev/stdout`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{Gid, Uid};

use crate::logger::{Logger, Started};
use crate::stdio::StdioPaths;

/// The owner the process's pipes get (`io_uid`, `io_gid`); `None` leaves
/// them the shim's (root's).
pub type Owner = Option<(u32, u32)>;

/// Opens `stdio`'s FIFOs and returns the process's ends of three pipes
/// (none where containerd gave no path), with a thread copying each. For a
/// logging binary, `start_logger(uri)` starts it, and its pipes are the
/// output's (returned with the logger).
pub fn connect(
    stdio: &StdioPaths,
    owner: Owner,
    start_logger: impl FnOnce(&str) -> std::io::Result<Started>,
) -> std::io::Result<([Option<OwnedFd>; 3], Option<Logger>)> {
    let [stdin, stdout, stderr] = stdio.open()?;
    let stdin = stdin.map(|fifo| feed(fifo, owner)).transpose()?;
    if stdio.logs_to_binary() {
        let started = start_logger(&stdio.stdout)?;
        if let Err(e) = own(&started.stdout, owner).and_then(|()| own(&started.stderr, owner)) {
            started.logger.stop();
            return Err(e);
        }
        let fds = [stdin, Some(started.stdout), Some(started.stderr)];
        return Ok((fds, Some(started.logger)));
    }
    let fds = [
        stdin,
        stdout.map(|out| drain(out, owner)).transpose()?,
        stderr.map(|out| drain(out, owner)).transpose()?,
    ];
    Ok((fds, None))
}

/// Gives the pipe of `end` (either end: one inode) to `owner`.
pub fn own(end: &OwnedFd, owner: Owner) -> std::io::Result<()> {
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(end, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(
            |e| {
                let e = std::io::Error::from(e);
                std::io::Error::new(
                    e.kind(),
                    format!("chown the stdio pipe to {uid}:{gid}: {e}"),
                )
            },
        )?;
    }
    Ok(())
}

/// A pipe whose reading end is the process's stdin, fed from `fifo` until
/// containerd's writer closes it.
fn feed(fifo: OwnedFd, owner: Owner) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    own(&read, owner)?;
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || copy_from_fifo(fifo, File::from(write)))?;
    Ok(read)
}

/// A pipe whose writing end is the process's stdout or stderr, drained
/// into `out` until every holder of the writing end has closed it.
fn drain(out: OwnedFd, owner: Owner) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    own(&write, owner)?;
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
