//! The caller's descriptors 0, 1 and 2 while a call forks the container's
//! process. A caller may have closed them (a daemon, a shim's worker); then
//! every descriptor the runtime opens would take one of those numbers, and
//! the child's stdio set-up, which puts the pty's slave or the given
//! descriptors on 0-2, would close the runtime's own there (the pty's
//! master, the sync channel). So each closed one holds /dev/null for the
//! call, as Go's runtime (and so runc) fills them at start: the container's
//! process inherits /dev/null there, and the caller gets its 0-2 back closed.

use std::io;
use std::os::fd::RawFd;

/// The standard descriptors this call filled, closed again when it is dropped.
#[must_use = "dropping it closes the descriptors it filled at once"]
pub(crate) struct StandardFds {
    filled: Vec<RawFd>,
}

impl StandardFds {
    /// /dev/null on each of 0, 1 and 2 that is closed, in order, so that
    /// each open takes the lowest free number: the one being filled.
    pub(crate) fn fill() -> io::Result<StandardFds> {
        let mut guard = StandardFds { filled: Vec::new() };
        for fd in 0..=2 {
            // SAFETY: F_GETFD only reads a descriptor's flags; a closed one gives EBADF.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
                continue;
            }
            // SAFETY: open(2) of a constant path; the result is checked. Not
            // close-on-exec: the container's process keeps it as its stdio.
            let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if opened < 0 {
                return Err(io::Error::last_os_error());
            }
            guard.filled.push(opened);
            if opened != fd {
                // Not the lowest free number (another thread opened one):
                // put it where it belongs.
                // SAFETY: dup2 onto a number this process has closed.
                if unsafe { libc::dup2(opened, fd) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                guard.filled.push(fd);
            }
        }
        Ok(guard)
    }
}

impl Drop for StandardFds {
    fn drop(&mut self) {
        for &fd in &self.filled {
            // SAFETY: a descriptor this guard opened and nothing else owns.
            unsafe { libc::close(fd) };
        }
    }
}
