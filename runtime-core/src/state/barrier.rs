//! The start barrier: a FIFO in the container's state directory.
//!
//! The init opens it read-write (which never blocks) and then blocks in
//! `read` until `start` writes a byte. The FIFO existing means "created, not
//! started"; `start` removes it. It survives the `create` process's exit,
//! which is the point.
//!
//! `start` returns once the init has exec'd the user's program (or died), as
//! runc's does: the init's end is close-on-exec, and `start` holds a reader
//! of its own that sees the FIFO hang up when that last end goes. So a
//! signal sent right after `start` reaches the program, not the runtime's
//! init, and poststart hooks run after the program is executed (runtime.md).
//! A byte left unread once the FIFO hung up means no init was waiting.

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
    /// The runtime was told to stop while the init had not exec'd yet (its
    /// startContainer hooks may never end): the caller decides its fate.
    #[error("stopped by {} to the runtime while the container's process started", crate::sys::stop_signals::name(*.0))]
    Stopped(i32),
}

/// Make the FIFO and open the init's end (read-write, so opening never blocks
/// and `read` waits for `start` rather than seeing end-of-file).
pub fn create(state_dir: &Path) -> Result<OwnedFd, BarrierError> {
    let path = state_dir.join(FIFO_NAME);
    let fail = |e: Errno| BarrierError::Create {
        path: path.clone(),
        source: e.into(),
    };
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

/// `start` side: let the init go on, take the barrier down, and wait until
/// the init has exec'd the user's program or exited.
pub fn release(state_dir: &Path) -> Result<(), BarrierError> {
    let path = state_dir.join(FIFO_NAME);
    let fail = |source: io::Error| BarrierError::Release {
        path: path.clone(),
        source,
    };
    // A reader opened before our writer: it hears the hang-up when the
    // writers there after ours (the init's read-write end) are all gone.
    let watch = match nix::fcntl::open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(BarrierError::InitGone),
        Err(e) => return Err(fail(e.into())),
    };
    // Our own reader makes this open succeed even with the init gone: the
    // init is there only while it holds its end, which no poll can tell
    // apart from ours before we write. The byte is for the init alone.
    let fd = nix::fcntl::open(
        &path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    nix::unistd::write(&fd, b"0").map_err(|e| fail(e.into()))?;
    drop(fd);
    std::fs::remove_file(&path).map_err(fail)?;
    if let Some(signal) = wait_for_hang_up(&watch).map_err(|e| fail(e.into()))? {
        return Err(BarrierError::Stopped(signal));
    }
    let mut byte = [0u8; 1];
    match nix::unistd::read(&watch, &mut byte) {
        Ok(1) => Err(BarrierError::InitGone),
        _ => Ok(()),
    }
}

/// Block until every writer of the FIFO `watch` reads from is gone, or a
/// stop signal (SIGTERM, SIGINT, SIGHUP) comes: `Some` of that signal.
fn wait_for_hang_up(watch: &OwnedFd) -> Result<Option<i32>, Errno> {
    let stop = crate::sys::stop_signals::StopSignals::hold().ok();
    loop {
        // Only POLLHUP is of interest (always reported); the byte in the FIFO must not wake us.
        let events = nix::poll::PollFlags::empty();
        let revents = match &stop {
            Some(stop) => match stop.wait(watch.as_fd(), events) {
                Ok(Ok(revents)) => revents,
                Ok(Err(signal)) => return Ok(Some(signal)),
                Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            },
            None => {
                let mut fds = [nix::poll::PollFd::new(watch.as_fd(), events)];
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
                fds[0].revents().unwrap_or(nix::poll::PollFlags::empty())
            }
        };
        if revents.intersects(nix::poll::PollFlags::POLLHUP | nix::poll::PollFlags::POLLERR) {
            return Ok(None);
        }
    }
}
