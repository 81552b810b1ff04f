//! The start barrier: a FIFO in the container's state directory.
//!
//! The init opens it read-write (which never blocks) and then blocks in
//! `read` until `start` writes a byte. `start` opens it write-only and
//! non-blocking, which fails with ENXIO when no reader is left: the init is
//! gone. The FIFO existing means "created, not started"; `start` removes it.
//! It survives the `create` process's exit, which is the point.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const FIFO_NAME: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error("create the start barrier {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("wait on the start barrier: {0}")]
    Wait(io::Error),
    #[error("cannot start a container whose init has exited")]
    InitGone,
    #[error("release the start barrier {path}: {source}")]
    Release { path: PathBuf, source: io::Error },
}

/// Make the FIFO and open the init's end (read-write, so opening never blocks
/// and `read` waits for `start` rather than seeing end-of-file).
pub fn create(state_dir: &Path) -> Result<OwnedFd, BarrierError> {
    let path = state_dir.join(FIFO_NAME);
    let fail = |e: Errno| BarrierError::Create { path: path.clone(), source: e.into() };
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(fail)?;
    nix::fcntl::open(&path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(fail)
}

/// Init side: block until `start`.
pub fn wait(fd: &OwnedFd) -> Result<(), BarrierError> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut byte) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(BarrierError::Wait(e.into())),
        }
    }
}

/// Whether the barrier is still up (the container was created but not started).
pub fn is_up(state_dir: &Path) -> bool {
    state_dir.join(FIFO_NAME).exists()
}

/// `start` side: let the init go on and take the barrier down.
pub fn release(state_dir: &Path) -> Result<(), BarrierError> {
    let path = state_dir.join(FIFO_NAME);
    let fd = match nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENXIO) => {
            let _ = std::fs::remove_file(&path);
            return Err(BarrierError::InitGone);
        }
        Err(e) => return Err(BarrierError::Release { path, source: e.into() }),
    };
    match nix::unistd::write(&fd, b"0") {
        Ok(_) => {}
        Err(Errno::EPIPE) => return Err(BarrierError::InitGone),
        Err(e) => return Err(BarrierError::Release { path, source: e.into() }),
    }
    std::fs::remove_file(&path).map_err(|source| BarrierError::Release { path, source })
}
