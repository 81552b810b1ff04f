//! `tmpcopyup`: a new tmpfs starts with a copy of what the rootfs held at its
//! destination, as podman asks for every tmpfs it mounts (`--read-only`,
//! `--tmpfs`, `--mount type=tmpfs`).
//!
//! The source is the container's rootfs, which is hostile, so the copy never
//! follows a link: each directory is opened beneath the source with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, each entry is examined
//! with `fstatat(AT_SYMLINK_NOFOLLOW)` and opened `O_NOFOLLOW`, and a symlink
//! is copied as a symlink (its target as text, never resolved). Everything is
//! written beneath the new tmpfs while it is still detached, where nothing
//! else can reach it.
//!
//! What is copied, as runc copies it: directories, regular files (contents),
//! symlinks, each entry's owner and its mode (setuid, setgid and sticky
//! bits included). Not copied, as in runc: timestamps, extended attributes,
//! hard links (each name gets a file of its own), and the mode and owner of
//! the destination directory itself (the tmpfs root keeps `mode=`, `uid=`,
//! `gid=` or their defaults). Fifos and sockets are recreated as the inert
//! inodes they are on disk (as crun does; runc fails on them). Device nodes
//! are refused: a copy could make usable a node that the rootfs's own mount
//! makes unusable (`nodev`), and runc refuses character devices too.

use crate::sys::mount_api::openat2;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Lookups beneath a copy's source or destination: nothing outside it, no
/// symlink anywhere on the way.
const BENEATH: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// The permission bits a copy keeps (ALLPERMS).
const PERMISSIONS: libc::mode_t = 0o7777;

/// A step of the copy that failed, and the path (relative to the
/// destination) it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path:?}: {source}")]
pub struct CopyError {
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

fn failed<'a, E: Into<io::Error>>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(E) -> CopyError + 'a {
    move |e| CopyError {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Copy the contents of the directory `from` (any handle on it, `O_PATH`
/// will do) into the directory `to`. Directories are walked one at a time
/// from a list of paths, not by recursion, so a deep tree in the rootfs
/// costs neither stack nor descriptors.
pub fn copy_tree(from: BorrowedFd, to: BorrowedFd) -> Result<(), CopyError> {
    let mut pending = vec![PathBuf::from(".")];
    while let Some(dir) = pending.pop() {
        let source = openat2(from, &dir, libc::O_RDONLY | libc::O_DIRECTORY, 0, BENEATH)
            .map_err(failed("open the directory", &dir))?;
        let target = openat2(to, &dir, libc::O_PATH | libc::O_DIRECTORY, 0, BENEATH)
            .map_err(failed("open the copy of", &dir))?;
        let source_names = source
            .try_clone()
            .map_err(failed("list the directory", &dir))?;
        for name in entry_names(source_names).map_err(failed("list the directory", &dir))? {
            let path = if dir == Path::new(".") {
                PathBuf::from(&name)
            } else {
                dir.join(&name)
            };
            if copy_entry(source.as_fd(), target.as_fd(), Path::new(&name), &path)? {
                pending.push(path);
            }
        }
    }
    Ok(())
}

/// The names in a directory, `.` and `..` left out.
fn entry_names(dir: OwnedFd) -> io::Result<Vec<OsString>> {
    let mut dir = nix::dir::Dir::from_fd(dir)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(&name).to_owned());
        }
    }
    Ok(names)
}

/// Copy the entry `name` of the directory `from` into `to`, where `path`
/// names it for errors; true when it is a directory whose contents are
/// still to be copied.
fn copy_entry(
    from: BorrowedFd,
    to: BorrowedFd,
    name: &Path,
    path: &Path,
) -> Result<bool, CopyError> {
    let stat = nix::sys::stat::fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(failed("inspect", path))?;
    let owner = (
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
    );
    let mode = Mode::from_bits_truncate(stat.st_mode & PERMISSIONS);
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            nix::sys::stat::mkdirat(to, name, Mode::from_bits_truncate(0o700))
                .map_err(failed("create the directory", path))?;
            let dir = nix::fcntl::openat(
                to,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(failed("open the copy of", path))?;
            set_owner_and_mode(dir.as_fd(), owner, mode, path)?;
            Ok(true)
        }
        libc::S_IFREG => {
            copy_file(from, to, name, path, owner, mode)?;
            Ok(false)
        }
        libc::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(from, name).map_err(failed("read the symlink", path))?;
            nix::unistd::symlinkat(target.as_os_str(), to, name)
                .map_err(failed("create the symlink", path))?;
            nix::unistd::fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(failed("set the owner of", path))?;
            Ok(false)
        }
        kind @ (libc::S_IFIFO | libc::S_IFSOCK) => {
            let kind = SFlag::from_bits_truncate(kind);
            nix::sys::stat::mknodat(to, name, kind, Mode::empty(), 0)
                .map_err(failed("create", path))?;
            nix::unistd::fchownat(to, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(failed("set the owner of", path))?;
            // Following is safe: the inode was just made here, in a tmpfs
            // only this process can reach, and is no symlink.
            nix::sys::stat::fchmodat(to, name, mode, FchmodatFlags::FollowSymlink)
                .map_err(failed("set the mode of", path))?;
            Ok(false)
        }
        other => Err(CopyError {
            op: "copy",
            path: path.to_path_buf(),
            source: io::Error::other(format!(
                "{} is not copied (device nodes never are)",
                super::inroot::file_kind(other)
            )),
        }),
    }
}

/// A regular file's contents, then its owner and mode (in that order: a
/// change of owner clears the setuid and setgid bits).
fn copy_file(
    from: BorrowedFd,
    to: BorrowedFd,
    name: &Path,
    path: &Path,
    owner: (Option<Uid>, Option<Gid>),
    mode: Mode,
) -> Result<(), CopyError> {
    // O_NONBLOCK and O_NOCTTY: should the file have been swapped for a fifo
    // or a terminal since fstatat, the open neither hangs nor takes it as a
    // controlling terminal; the check below then refuses it.
    let source = nix::fcntl::openat(
        from,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(failed("open", path))?;
    let stat = nix::sys::stat::fstat(&source).map_err(failed("inspect", path))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(CopyError {
            op: "copy",
            path: path.to_path_buf(),
            source: io::Error::other("it stopped being a regular file while being copied"),
        });
    }
    let target = nix::fcntl::openat(
        to,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(failed("create", path))?;
    let (mut source, mut target) = (File::from(source), File::from(target));
    io::copy(&mut source, &mut target).map_err(failed("copy", path))?;
    set_owner_and_mode(target.as_fd(), owner, mode, path)
}

fn set_owner_and_mode(
    fd: BorrowedFd,
    owner: (Option<Uid>, Option<Gid>),
    mode: Mode,
    path: &Path,
) -> Result<(), CopyError> {
    nix::unistd::fchown(fd, owner.0, owner.1).map_err(failed("set the owner of", path))?;
    nix::sys::stat::fchmod(fd, mode).map_err(failed("set the mode of", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-copyup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("from")).unwrap();
        std::fs::create_dir_all(dir.join("to")).unwrap();
        dir
    }

    fn open_dir(path: &Path) -> OwnedFd {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn files_directories_and_links_are_copied_and_links_not_followed() {
        let dir = scratch("tree");
        let from = dir.join("from");
        std::fs::create_dir_all(dir.join("secret")).unwrap();
        std::fs::write(dir.join("secret/data"), "host secret").unwrap();
        std::fs::write(from.join("file"), "contents").unwrap();
        std::fs::set_permissions(from.join("file"), std::fs::Permissions::from_mode(0o4751))
            .unwrap();
        std::fs::create_dir_all(from.join("sub/deeper")).unwrap();
        std::fs::set_permissions(from.join("sub"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::write(from.join("sub/deeper/f"), "deep").unwrap();
        symlink(dir.join("secret"), from.join("out")).unwrap();
        symlink("../../secret/data", from.join("sub/up")).unwrap();
        nix::unistd::mkfifo(&from.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();

        copy_tree(open_dir(&from).as_fd(), open_dir(&dir.join("to")).as_fd()).unwrap();

        let to = dir.join("to");
        assert_eq!(
            std::fs::read_to_string(to.join("file")).unwrap(),
            "contents"
        );
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode();
        assert_eq!(mode(&to.join("file")) & 0o7777, 0o4751);
        assert_eq!(mode(&to.join("sub")) & 0o7777, 0o1777);
        assert_eq!(mode(&to.join("fifo")), libc::S_IFIFO | 0o640);
        assert_eq!(
            std::fs::read_to_string(to.join("sub/deeper/f")).unwrap(),
            "deep"
        );
        assert_eq!(
            std::fs::read_link(to.join("out")).unwrap(),
            dir.join("secret")
        );
        assert_eq!(
            std::fs::read_link(to.join("sub/up")).unwrap(),
            Path::new("../../secret/data")
        );
        assert!(!to.join("data").exists() && !to.join("secret").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn device_nodes_are_refused() {
        let dir = scratch("dev");
        let from = dir.join("from");
        nix::sys::stat::mknod(
            &from.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let err =
            copy_tree(open_dir(&from).as_fd(), open_dir(&dir.join("to")).as_fd()).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
        assert!(!dir.join("to/null").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
