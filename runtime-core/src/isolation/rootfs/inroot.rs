//! Resolving paths inside the container's rootfs, by file descriptor.
//!
//! The rootfs is hostile: any component of a path in it may be a symlink,
//! absolute or full of `..`. Every lookup here goes through `openat2` with
//! `RESOLVE_IN_ROOT`, so the kernel treats the rootfs as `/` for the whole
//! walk and nothing can resolve outside it, and `RESOLVE_NO_MAGICLINKS`, so
//! `/proc/self/fd/N`-style links planted in the rootfs are refused.

use crate::sys::mount_api::openat2;
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// A directory treated as `/` for every lookup through it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// What a mount target should be when it has to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Directory,
    File,
}

impl Root {
    /// Open `path` (a host path the runtime trusts, like the bundle's rootfs).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(Root { fd })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Open an existing path inside the root with `flags` (`O_PATH` for a handle).
    pub fn open_path(&self, path: &Path, flags: i32) -> io::Result<OwnedFd> {
        openat2(self.fd.as_fd(), &relative(path), flags, 0, RESOLVE).map_err(explain_loop)
    }

    /// Make every missing directory of `path` inside the root and return an
    /// `O_PATH` handle on the last one. A dangling symlink on the way is
    /// followed the way the kernel would resolve it in-root, and its target
    /// made, as runc's securejoin does.
    pub fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        self.walk_making_dirs(path, true).map_err(explain_loop)
    }

    /// `mkdir_all`, for a caller that has just found `path` missing
    /// (`try_whole` false: it is not opened again first).
    fn walk_making_dirs(&self, path: &Path, try_whole: bool) -> io::Result<OwnedFd> {
        let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
        let rel = relative(path);
        // Most paths, or their parents, exist: open the deepest of the two
        // that does in one call, and walk only the rest. The same in-root
        // resolution as the walk's (each step there reopens its whole path
        // from the root too); any failure leaves the walk from the root to
        // find and name it.
        let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
        let starts = [Some(rel.as_path()).filter(|_| try_whole), parent];
        for start in starts.into_iter().flatten() {
            if let Ok(fd) = openat2(self.fd.as_fd(), start, dir_flags, 0, RESOLVE) {
                if start == rel {
                    return Ok(fd);
                }
                if let Some(last) = rel.file_name() {
                    return self.walk_from(start.to_path_buf(), fd, vec![PathBuf::from(last)]);
                }
            }
        }
        let pending: Vec<PathBuf> = rel
            .components()
            .rev()
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        let walked = PathBuf::new();
        let current = self.open_path(&walked, dir_flags)?;
        self.walk_from(walked, current, pending)
    }

    /// Make the `pending` components (last first) below `walked`, whose
    /// handle is `current`.
    fn walk_from(
        &self,
        mut walked: PathBuf,
        mut current: OwnedFd,
        mut pending: Vec<PathBuf>,
    ) -> io::Result<OwnedFd> {
        let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
        let mut links_followed = 0;
        while let Some(component) = pending.pop() {
            let next = walked.join(&component);
            match openat2(self.fd.as_fd(), &next, dir_flags, 0, RESOLVE) {
                Ok(fd) => {
                    current = fd;
                    walked = next;
                    continue;
                }
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                Err(_) => {}
            }
            match nix::sys::stat::mkdirat(
                current.as_fd(),
                component.as_path(),
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    // A dangling symlink: continue the walk at its target.
                    links_followed += 1;
                    if links_followed > 40 {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = nix::fcntl::readlinkat(current.as_fd(), component.as_path())
                        .map_err(io::Error::from)?;
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        walked = PathBuf::new();
                        current = self.open_path(&walked, dir_flags)?;
                    }
                    pending.extend(
                        relative(&target)
                            .components()
                            .rev()
                            .map(|c| PathBuf::from(c.as_os_str())),
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            // Reopen through the root: a racing symlink swap is resolved in-root again.
            current = openat2(self.fd.as_fd(), &next, dir_flags, 0, RESOLVE)?;
            walked = next;
        }
        Ok(current)
    }

    /// An `O_PATH` handle on `path`, created as `kind` (with its parents) when missing.
    /// What is there already must be of that kind (a directory, or anything else for a
    /// file): the kernel refuses to mount one over the other with a bare EINVAL.
    pub fn ensure(&self, path: &Path, kind: TargetKind) -> io::Result<OwnedFd> {
        match self.open_path(path, libc::O_PATH) {
            Ok(fd) => return require_kind(fd, kind),
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            Err(_) => {}
        }
        match kind {
            TargetKind::Directory => self.walk_making_dirs(path, false).map_err(explain_loop),
            TargetKind::File => {
                let rel = relative(path);
                let (parent, name) = split_last(&rel)?;
                let parent_fd = self.mkdir_all(&parent)?;
                let flags = nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC;
                match nix::fcntl::openat(
                    parent_fd.as_fd(),
                    name.as_path(),
                    flags,
                    Mode::from_bits_truncate(0o644),
                ) {
                    Ok(_) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                self.open_path(path, libc::O_PATH)
            }
        }
    }
}

impl Root {
    /// An `O_PATH` handle on the file `path` itself, never on what it links
    /// to: a symlink there is replaced by an empty file (CVE-2025-52565: a
    /// rootfs's /dev/console pointing at /proc/sys/kernel/core_pattern must
    /// not get the console bound over that), and so are a fifo and a socket.
    /// A file or device node is kept, and never opened: a node the rootfs
    /// planted may be any host device, and opening some has effects.
    pub fn file_not_link(&self, path: &Path) -> io::Result<OwnedFd> {
        let (parent, name) = split_last(&relative(path))?;
        let parent_fd = self.mkdir_all(&parent)?;
        let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        let exists = match nix::sys::stat::fstatat(parent_fd.as_fd(), name.as_path(), nofollow) {
            Ok(st) => match st.st_mode & libc::S_IFMT {
                libc::S_IFREG | libc::S_IFCHR | libc::S_IFBLK => true,
                libc::S_IFDIR => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
                _ => {
                    nix::unistd::unlinkat(
                        parent_fd.as_fd(),
                        name.as_path(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    )
                    .map_err(|e| {
                        io::Error::new(
                            io::Error::from(e).kind(),
                            format!(
                                "{} is there and cannot be replaced: {e}",
                                file_kind(st.st_mode)
                            ),
                        )
                    })?;
                    false
                }
            },
            Err(Errno::ENOENT) => false,
            Err(e) => return Err(e.into()),
        };
        if !exists {
            let create = nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_EXCL
                | nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC;
            nix::fcntl::openat(
                parent_fd.as_fd(),
                name.as_path(),
                create,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(io::Error::from)?;
        }
        let handle = nix::fcntl::OFlag::O_PATH
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC;
        nix::fcntl::openat(parent_fd.as_fd(), name.as_path(), handle, Mode::empty())
            .map_err(io::Error::from)
    }
}

/// ELOOP in the rootfs has more causes than its text says: the kernel's
/// limit of 40 links, and procfs's magic links, which `RESOLVE_NO_MAGICLINKS`
/// refuses with the same errno.
fn explain_loop(e: io::Error) -> io::Error {
    if e.raw_os_error() != Some(libc::ELOOP) {
        return e;
    }
    io::Error::new(e.kind(), "too many levels of symbolic links (a loop, a chain of more than 40, or a /proc magic link)")
}

/// A file type as an error message names it.
pub fn file_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFREG => "a regular file",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFIFO => "a fifo",
        libc::S_IFSOCK => "a socket",
        _ => "a file of unknown type",
    }
}

/// `fd` if what it names is of `kind`. Otherwise an ENOTDIR error that says what is
/// there, ending in Go's text for ENOTDIR as runc's does: docker reads that to tell its
/// user a file and a directory were mixed up.
fn require_kind(fd: OwnedFd, kind: TargetKind) -> io::Result<OwnedFd> {
    let mode = nix::sys::stat::fstat(&fd)?.st_mode;
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir == (kind == TargetKind::Directory) {
        return Ok(fd);
    }
    let wanted = match kind {
        TargetKind::Directory => "a directory",
        TargetKind::File => "a file",
    };
    Err(io::Error::new(
        io::Error::from_raw_os_error(libc::ENOTDIR).kind(),
        format!(
            "the rootfs has {} there, and {wanted} is to be mounted on it: not a directory",
            file_kind(mode)
        ),
    ))
}

/// The parent directory and last component of a relative path.
pub fn split_last(path: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((parent, PathBuf::from(name)))
}

/// `path` without its root, so it is looked up relative to the root fd
/// (`.` for the root itself).
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::Prefix(_) | Component::CurDir
            )
        })
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-inroot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).unwrap();
        dir
    }

    #[test]
    fn absolute_symlink_stays_inside_the_root() {
        let dir = scratch("abs");
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        symlink(dir.join("outside"), dir.join("root/evil")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        root.mkdir_all(Path::new("/evil/x")).unwrap();
        assert!(
            !dir.join("outside/x").exists(),
            "mkdir followed the symlink out of the root"
        );
        assert!(dir
            .join("root")
            .join(dir.strip_prefix("/").unwrap())
            .join("outside/x")
            .is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dotdot_is_clamped_at_the_root() {
        let dir = scratch("dotdot");
        symlink("../../..", dir.join("root/up")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        root.ensure(Path::new("/up/f"), TargetKind::File).unwrap();
        assert!(dir.join("root/f").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ensure_refuses_a_target_of_the_other_kind() {
        let dir = scratch("kind");
        std::fs::create_dir_all(dir.join("root/d")).unwrap();
        std::fs::write(dir.join("root/f"), "").unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        for (path, kind, found) in [
            ("/d", TargetKind::File, "a directory"),
            ("/f", TargetKind::Directory, "a regular file"),
        ] {
            let err = root.ensure(Path::new(path), kind).unwrap_err();
            let not_a_directory = io::Error::from_raw_os_error(libc::ENOTDIR).kind();
            assert_eq!(err.kind(), not_a_directory, "{path}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(found) && text.ends_with(": not a directory"),
                "{text}"
            );
        }
        root.ensure(Path::new("/d"), TargetKind::Directory).unwrap();
        root.ensure(Path::new("/f"), TargetKind::File).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_not_link_replaces_links_fifos_and_sockets_and_refuses_a_directory() {
        let dir = scratch("notlink");
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        symlink(dir.join("outside/f"), dir.join("root/link")).unwrap();
        nix::unistd::mkfifo(&dir.join("root/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        drop(std::os::unix::net::UnixListener::bind(dir.join("root/sock")).unwrap());
        std::fs::create_dir(dir.join("root/d")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        for name in ["/link", "/fifo", "/sock"] {
            root.file_not_link(Path::new(name)).unwrap();
            let meta = std::fs::symlink_metadata(dir.join("root").join(&name[1..])).unwrap();
            assert!(meta.is_file(), "{name} is still {meta:?}");
        }
        assert!(!dir.join("outside/f").exists(), "the link was followed");
        let err = root.file_not_link(Path::new("/d")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_kinds_are_named() {
        assert_eq!(file_kind(libc::S_IFIFO | 0o644), "a fifo");
        assert_eq!(file_kind(libc::S_IFLNK | 0o777), "a symlink");
    }

    #[test]
    fn relative_strips_the_root() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }
}
