//! A descriptor that becomes readable when the container's memory cgroup has
//! an OOM event, so that a caller (a shim) can wait for OOM kills in one
//! `epoll` instead of reading every container's count on a timer.
//!
//! - cgroup v1: an eventfd registered through the memory cgroup's
//!   `cgroup.event_control` with `memory.oom_control` (the kernel's
//!   Documentation/admin-guide/cgroup-v1/memory.rst, "OOM Control"). It is
//!   signalled when the cgroup runs out of memory, before the OOM killer
//!   picks a victim, and when the cgroup is removed.
//! - cgroup v2 (a unified-only host): an inotify descriptor watching
//!   `memory.events` for modification; the kernel notifies after it has
//!   counted the event (`oom`, `oom_kill`...).
//!
//! A notification says only "look now": the caller reads the counters
//! ([`Cgroup::oom_counter`]) to learn whether a process was killed. On v1
//! the kill is counted just after the eventfd fires, so a reader that finds
//! no new kill right away should look again shortly.
//!
//! The files are opened beneath one descriptor of the cgroup directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)`: whoever can write into the container's cgroup (a
//! container given its own cgroup rw) cannot point the runtime, which runs as
//! root, at another file.

use super::Cgroup;
use crate::sys::mount_api::openat2;
use nix::fcntl::OFlag;
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Why no OOM notifier could be made.
#[derive(Debug, thiserror::Error)]
pub enum OomNotifierError {
    /// Neither a v1 memory hierarchy nor a v2 `memory.events` (a rootless
    /// container without a cgroup, or the memory controller not enabled).
    #[error("the container has no memory cgroup, so there are no OOM events to wait for")]
    NoMemoryCgroup,
    /// A cgroup directory or file could not be opened (a symlink among them
    /// is refused: ELOOP or EXDEV).
    #[error("open {}: {source}", .path.display())]
    Open {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The eventfd or inotify descriptor could not be made (the process's
    /// descriptor limit, the user's inotify instance limit).
    #[error("make an {what} for OOM events: {source}")]
    Descriptor {
        /// "eventfd" or "inotify descriptor".
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The kernel refused the v1 registration or the v2 watch.
    #[error("register for OOM events through {}: {source}", .path.display())]
    Register {
        /// `cgroup.event_control` (v1) or `memory.events` (v2).
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Readable when the memory cgroup has an OOM event (see the module's
/// docs); drain it with [`OomNotifier::drain`] before waiting again. Non-blocking
/// and close-on-exec.
#[derive(Debug)]
pub struct OomNotifier {
    fd: OwnedFd,
}

impl OomNotifier {
    /// Consumes the pending notifications, so that the descriptor polls as
    /// not readable until the next one.
    pub fn drain(&self) -> io::Result<()> {
        // Room for many inotify events; an eventfd's read takes 8 bytes and
        // resets its counter.
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomNotifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<OomNotifier> for OwnedFd {
    fn from(notifier: OomNotifier) -> OwnedFd {
        notifier.fd
    }
}

/// Nothing of a cgroup file's path may leave its directory or follow a link.
const BENEATH: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_XDEV;

impl Cgroup {
    /// A descriptor that becomes readable on the memory cgroup's OOM events:
    /// v2's `memory.events` on a unified-only host, else v1's memory hierarchy.
    pub fn oom_notifier(&self) -> Result<OomNotifier, OomNotifierError> {
        match self.unified_only_dir() {
            Some(dir) => v2_notifier(dir),
            None => match self.v1_controller_dir("memory") {
                Some(dir) => v1_notifier(dir),
                None => Err(OomNotifierError::NoMemoryCgroup),
            },
        }
    }
}

/// The container's cgroup directory; the directories on its way are the
/// library's own record and are followed.
fn open_dir(dir: &Path) -> Result<OwnedFd, OomNotifierError> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| OomNotifierError::Open {
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// `name` in the directory `dir_fd` (at `dir`), opened with `flags`; a file
/// the kernel does not provide is `NoMemoryCgroup`.
fn open_beneath(
    dir_fd: BorrowedFd<'_>,
    dir: &Path,
    name: &str,
    flags: i32,
) -> Result<OwnedFd, OomNotifierError> {
    openat2(dir_fd, Path::new(name), flags, 0, BENEATH).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            OomNotifierError::NoMemoryCgroup
        } else {
            OomNotifierError::Open {
                path: dir.join(name),
                source,
            }
        }
    })
}

/// What v1's `cgroup.event_control` takes: "<event_fd> <fd of the control file>".
fn event_control_line(event: RawFd, control: RawFd) -> String {
    format!("{event} {control}")
}

fn v1_notifier(dir: &Path) -> Result<OomNotifier, OomNotifierError> {
    let dir_fd = open_dir(dir)?;
    let control = open_beneath(dir_fd.as_fd(), dir, "memory.oom_control", libc::O_RDONLY)?;
    let register = open_beneath(dir_fd.as_fd(), dir, "cgroup.event_control", libc::O_WRONLY)?;
    let event =
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(|e| {
            OomNotifierError::Descriptor {
                what: "eventfd",
                source: e.into(),
            }
        })?;
    let line = event_control_line(event.as_fd().as_raw_fd(), control.as_raw_fd());
    // One write: the kernel parses each write on its own. Once registered it
    // holds what it needs; both files may be closed.
    let written = nix::unistd::write(&register, line.as_bytes()).map_err(io::Error::from);
    match written {
        Ok(n) if n == line.len() => Ok(OomNotifier { fd: event.into() }),
        Ok(_) => Err(io::Error::from(io::ErrorKind::WriteZero)),
        Err(e) => Err(e),
    }
    .map_err(|source| OomNotifierError::Register {
        path: dir.join("cgroup.event_control"),
        source,
    })
}

fn v2_notifier(dir: &Path) -> Result<OomNotifier, OomNotifierError> {
    let dir_fd = open_dir(dir)?;
    let events = open_beneath(dir_fd.as_fd(), dir, "memory.events", libc::O_PATH)?;
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| {
        OomNotifierError::Descriptor {
            what: "inotify descriptor",
            source: e.into(),
        }
    })?;
    // inotify takes a path: the descriptor just opened, through procfs's
    // link to it, so the watch is on that very file.
    let by_fd = format!("/proc/self/fd/{}", events.as_raw_fd());
    inotify
        .add_watch(by_fd.as_str(), AddWatchFlags::IN_MODIFY)
        .map_err(|e| OomNotifierError::Register {
            path: dir.join("memory.events"),
            source: e.into(),
        })?;
    Ok(OomNotifier { fd: inotify.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-oomn-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn cgroup(dirs: &[(&str, &Path)]) -> Cgroup {
        Cgroup {
            dirs: dirs
                .iter()
                .map(|(name, dir)| (name.to_string(), dir.to_path_buf()))
                .collect(),
            ..Default::default()
        }
    }

    fn readable(fd: BorrowedFd<'_>) -> bool {
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).unwrap() == 1
    }

    #[test]
    fn the_v1_registration_names_the_eventfd_then_the_control_file() {
        assert_eq!(event_control_line(7, 9), "7 9");
    }

    #[test]
    fn no_memory_cgroup_is_refused_as_such() {
        let err = cgroup(&[]).oom_notifier().unwrap_err();
        assert!(matches!(err, OomNotifierError::NoMemoryCgroup), "{err}");
        assert!(err.to_string().contains("no memory cgroup"), "{err}");
        // A v2 cgroup without the memory controller has no memory.events.
        let dir = scratch("nomem");
        let err = cgroup(&[("", &dir)]).oom_notifier().unwrap_err();
        assert!(matches!(err, OomNotifierError::NoMemoryCgroup), "{err}");
        // v1 hierarchies without a memory one.
        let cpu = dir.join("cpu");
        fs::create_dir_all(&cpu).unwrap();
        fs::write(cpu.join("cpu.shares"), "1024").unwrap();
        let err = cgroup(&[("cpu", &cpu)]).oom_notifier().unwrap_err();
        assert!(matches!(err, OomNotifierError::NoMemoryCgroup), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// v2's watch works on any file: a write to memory.events wakes it,
    /// and a drained notifier is quiet again.
    #[test]
    fn a_v2_notifier_wakes_when_memory_events_changes() {
        let dir = scratch("v2");
        fs::write(dir.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        let notifier = cgroup(&[("", &dir)]).oom_notifier().unwrap();
        assert!(!readable(notifier.as_fd()), "readable before any change");
        fs::write(dir.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(readable(notifier.as_fd()), "a change did not wake it");
        notifier.drain().unwrap();
        assert!(!readable(notifier.as_fd()), "still readable once drained");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A link in place of a cgroup file is not followed, on either version.
    #[test]
    fn a_symlinked_cgroup_file_is_refused() {
        let dir = scratch("links");
        let outside = dir.join("outside");
        fs::write(&outside, "").unwrap();
        let v2 = dir.join("v2");
        fs::create_dir_all(&v2).unwrap();
        std::os::unix::fs::symlink(&outside, v2.join("memory.events")).unwrap();
        let err = cgroup(&[("", &v2)]).oom_notifier().unwrap_err();
        assert!(matches!(err, OomNotifierError::Open { .. }), "{err}");
        assert!(err.to_string().contains("memory.events"), "{err}");

        let v1 = dir.join("memory");
        fs::create_dir_all(&v1).unwrap();
        fs::write(v1.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        std::os::unix::fs::symlink(&outside, v1.join("cgroup.event_control")).unwrap();
        let err = cgroup(&[("memory", &v1)]).oom_notifier().unwrap_err();
        assert!(err.to_string().contains("cgroup.event_control"), "{err}");
        assert_eq!(
            fs::read_to_string(&outside).unwrap(),
            "",
            "written through the link"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// On a real v1 memory cgroup: the registration is accepted, and the
    /// eventfd fires when the cgroup is removed (as the kernel documents).
    #[test]
    fn a_v1_notifier_fires_when_its_cgroup_is_removed() {
        let memory = Path::new("/sys/fs/cgroup/memory");
        if !nix::unistd::geteuid().is_root() || !memory.join("cgroup.event_control").exists() {
            eprintln!("skipped: needs root and a v1 memory hierarchy");
            return;
        }
        let dir = memory.join(format!("berth-oomn-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        let made = cgroup(&[("memory", &dir)]).oom_notifier();
        let quiet = made.as_ref().map(|n| !readable(n.as_fd())).ok();
        fs::remove_dir(&dir).unwrap();
        let notifier = made.unwrap();
        assert_eq!(quiet, Some(true), "readable before any event");
        assert!(readable(notifier.as_fd()), "the removal did not wake it");
    }
}
