//! Files and sockets at paths a caller names on the host: the pid file, the
//! log, the console, pidfd and seccomp listener sockets, the `spec` command's
//! config.json; and the state store's own files, written with the same care.
//!
//! Berth runs as root, and whoever can write the directory such a path ends
//! in must not be able to turn what Berth writes there onto another file. A
//! pid file staged as `.<name>` by a plain open would write through a symlink
//! planted at that name, and the rename would then leave no trace. So:
//!
//! - A file Berth creates is created exclusively (`O_CREAT|O_EXCL`, which
//!   never follows a symlink at the last component, and `O_NOFOLLOW` to say
//!   so), with its final mode at creation; a staged file is created and
//!   renamed relative to one descriptor of its directory, so both steps
//!   happen in the same directory whatever its path comes to name meanwhile.
//!   Something already at the staged name is an error, as in runc ("file
//!   exists"): it is neither followed nor removed.
//! - A file or socket that may already exist (the log, which is appended to,
//!   and the sockets) is reached through a symlink at the last component
//!   only when root or this user owns the link: the kernel's
//!   `protected_symlinks` rule, for every directory instead of only sticky
//!   world-writable ones. `--log /dev/stderr` (a link root made) still
//!   works; a link another user planted is refused. A socket is connected
//!   through the descriptor that was checked (`/proc/self/fd/N`), so nothing
//!   can be swapped in between.
//! - The directories on the way are the caller's choice and are followed.
//!
//! A front end opens its own files on the host the same way:
//! [`open_append`] for a log file (runc's `--log`), [`write_new_file`] for
//! a file it creates (the config.json of runc's `spec`).

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why a file or socket at a caller's path could not be made or reached.
/// Each message begins with the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum HostFileError {
    /// The path ends in `..` or is `/`: there is no name to create.
    #[error("{}: names no file", .0.display())]
    NoFileName(PathBuf),
    /// Something is already where Berth would create a file.
    #[error(
        "{}: already exists; whatever is there (a leftover, or a symlink someone planted) \
         is neither followed nor replaced",
        .0.display()
    )]
    Exists(PathBuf),
    /// A symlink at the last component that someone else owns.
    #[error(
        "{}: is a symbolic link owned by uid {owner}; only a link owned by root or by \
         this user (uid {euid}) is followed there",
        .path.display()
    )]
    UntrustedLink {
        /// The link.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Berth's effective uid.
        euid: u32,
    },
    /// A socket path that names something else.
    #[error("{}: is not a socket", .0.display())]
    NotSocket(PathBuf),
    /// A system call on the path failed.
    #[error("{}: {op}: {source}", .path.display())]
    Io {
        /// What was being done ("open", "write", "connect", ...).
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl HostFileError {
    /// The system's reason, when a system call failed (for callers that word it their own way).
    pub fn io_source(&self) -> Option<&io::Error> {
        match self {
            HostFileError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> HostFileError + 'a {
    move |errno| HostFileError::Io {
        op,
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// A directory held open: what is made in it stays in it, whatever its path names later.
#[derive(Debug)]
struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// The path of `name` in this directory, for messages.
    fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }
}

/// The directory `path` is in, opened by following its path (the caller's
/// choice), and the last component's name.
fn split(path: &Path) -> Result<(Dir, OsString), HostFileError> {
    let absolute = std::path::absolute(path).map_err(|source| HostFileError::Io {
        op: "resolve",
        path: path.to_path_buf(),
        source,
    })?;
    let name = absolute
        .file_name()
        .ok_or_else(|| HostFileError::NoFileName(absolute.clone()))?
        .to_owned();
    let dir_path = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    let fd = openat(
        AT_FDCWD,
        &dir_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("open its directory", &absolute))?;
    Ok((Dir { fd, path: dir_path }, name))
}

/// Create `name` in `dir` exclusively, never through a link, with `mode` (less the umask).
fn create_exclusive(dir: &Dir, name: &OsStr, mode: u32) -> Result<OwnedFd, HostFileError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(&dir.fd, name, flags, Mode::from_bits_truncate(mode)).map_err(|errno| match errno {
        Errno::EEXIST => HostFileError::Exists(dir.join(name)),
        errno => io_error("create", &dir.join(name))(errno),
    })
}

/// Open `name` in `dir` with `flags`, through a symlink at `name` only if
/// root or this user owns it (see the module's documentation).
fn open_last(dir: &Dir, name: &OsStr, flags: OFlag, mode: u32) -> Result<OwnedFd, HostFileError> {
    let path = dir.join(name);
    let mode = Mode::from_bits_truncate(mode);
    match openat(
        &dir.fd,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    ) {
        // O_PATH opens a link itself rather than failing on it.
        Ok(fd) if !flags.contains(OFlag::O_PATH) || !is_link(&stat(&fd, &path)?) => return Ok(fd),
        Ok(_) | Err(Errno::ELOOP) => {}
        Err(errno) => return Err(io_error("open", &path)(errno)),
    }
    // The link is opened and checked once, and its target read from that
    // same inode: another link swapped in meanwhile is never read.
    let link = openat(
        &dir.fd,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_error("open", &path))?;
    let link_stat = stat(&link, &path)?;
    let euid = nix::unistd::geteuid().as_raw();
    if link_stat.st_uid != 0 && link_stat.st_uid != euid {
        return Err(HostFileError::UntrustedLink {
            path,
            owner: link_stat.st_uid,
            euid,
        });
    }
    let target = nix::fcntl::readlinkat(&link, "").map_err(io_error("read the link", &path))?;
    // A relative target is relative to the link's directory; its own path is the link owner's choice.
    openat(&dir.fd, target.as_os_str(), flags | OFlag::O_CLOEXEC, mode)
        .map_err(io_error("open the link's target", &path))
}

fn stat(fd: &OwnedFd, path: &Path) -> Result<FileStat, HostFileError> {
    fstat(fd).map_err(io_error("stat", path))
}

fn is_link(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// A file written beside its final name, as `.<name>`, and renamed into
/// place by [`StagedFile::commit`]; removed if dropped before that.
#[derive(Debug)]
pub(crate) struct StagedFile {
    dir: OwnedFd,
    dir_path: PathBuf,
    staged: OsString,
    name: OsString,
    /// (device, inode) of what was created, so a drop removes only that.
    created: (u64, u64),
    committed: bool,
}

impl StagedFile {
    /// Write `contents` to `.<name>` beside `path`, created exclusively with
    /// `mode` (less the umask). Fails if anything is already at `.<name>`.
    pub fn stage(path: &Path, contents: &[u8], mode: u32) -> Result<StagedFile, HostFileError> {
        let (dir, name) = split(path)?;
        let mut staged = OsString::from(".");
        staged.push(&name);
        let fd = create_exclusive(&dir, &staged, mode)?;
        let staged_path = dir.join(&staged);
        let created = stat(&fd, &staged_path)?;
        let file = StagedFile {
            dir: dir.fd,
            dir_path: dir.path,
            staged,
            name,
            created: (created.st_dev, created.st_ino),
            committed: false,
        };
        File::from(fd)
            .write_all(contents)
            .map_err(|source| HostFileError::Io {
                op: "write",
                path: staged_path,
                source,
            })?;
        Ok(file)
    }

    /// Replace what the staged file holds, before its commit: the file made
    /// by [`StagedFile::stage`] and nothing else (not a link, not another
    /// file put at its name meanwhile).
    pub fn rewrite(&self, contents: &[u8]) -> Result<(), HostFileError> {
        let staged_path = self.dir_path.join(&self.staged);
        let flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.dir, &*self.staged, flags, Mode::empty())
            .map_err(io_error("open", &staged_path))?;
        let now = stat(&fd, &staged_path)?;
        if (now.st_dev, now.st_ino) != self.created {
            return Err(HostFileError::Io {
                op: "rewrite",
                path: staged_path,
                source: io::Error::from(io::ErrorKind::AlreadyExists),
            });
        }
        let mut file = File::from(fd);
        file.set_len(0)
            .and_then(|()| file.write_all(contents))
            .map_err(|source| HostFileError::Io {
                op: "write",
                path: staged_path,
                source,
            })
    }

    /// The final path.
    pub fn path(&self) -> PathBuf {
        self.dir_path.join(&self.name)
    }

    /// Rename the staged file onto its final name. A symlink there is
    /// replaced, not followed (rename acts on names); a directory there fails.
    pub fn commit(mut self) -> Result<(), HostFileError> {
        renameat(&self.dir, &*self.staged, &self.dir, &*self.name).map_err(|errno| {
            HostFileError::Io {
                op: "rename into place",
                path: self.dir_path.join(&self.staged),
                source: errno.into(),
            }
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Only what this created: another file someone put at the name is not ours to remove.
        let ours = fstatat(&self.dir, &*self.staged, AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|s| (s.st_dev, s.st_ino) == self.created);
        if ours {
            let _ = unlinkat(&self.dir, &*self.staged, UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Open `path` to append to it, creating it with `mode` (less the umask) if
/// it is missing: `--log`. `extra` adds flags (runc's log is O_SYNC).
pub fn open_append(path: &Path, mode: u32, extra: OFlag) -> Result<File, HostFileError> {
    let (dir, name) = split(path)?;
    let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | extra;
    open_last(&dir, &name, flags, mode).map(File::from)
}

/// A stream connection to the unix socket at `path` (console, pidfd and
/// seccomp listener sockets). The socket is opened and checked first, then
/// connected through that descriptor, which also lifts the 108-byte limit
/// of a socket address.
pub(crate) fn connect_unix(path: &Path) -> Result<OwnedFd, HostFileError> {
    connect_unix_as(path, SockType::Stream)
}

/// A datagram socket connected to the unix socket at `path`, checked as
/// [`connect_unix`] checks it: the caller's `NOTIFY_SOCKET`.
pub(crate) fn connect_unix_datagram(path: &Path) -> Result<OwnedFd, HostFileError> {
    connect_unix_as(path, SockType::Datagram)
}

fn connect_unix_as(path: &Path, kind_of_socket: SockType) -> Result<OwnedFd, HostFileError> {
    let (dir, name) = split(path)?;
    let target = open_last(&dir, &name, OFlag::O_PATH, 0)?;
    let kind = SFlag::from_bits_truncate(stat(&target, path)?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFSOCK {
        return Err(HostFileError::NotSocket(path.to_path_buf()));
    }
    let sock = socket(
        AddressFamily::Unix,
        kind_of_socket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io_error("socket", path))?;
    let via = UnixAddr::new(format!("/proc/self/fd/{}", target.as_raw_fd()).as_str())
        .map_err(io_error("connect", path))?;
    connect(sock.as_fd().as_raw_fd(), &via).map_err(io_error("connect", path))?;
    Ok(sock)
}

/// Create `path` exclusively with `contents` and `mode` (less the umask):
/// fails with `AlreadyExists` if anything, a symlink included, is there.
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(AT_FDCWD, path, flags, Mode::from_bits_truncate(mode))?;
    File::from(fd).write_all(contents)
}

/// [`write_new_file`] after removing what is at `path` (not following a
/// link): for a staging name in a directory only Berth writes, where a
/// leftover of a killed command may remain. Never on a caller's path.
pub(crate) fn write_fresh_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_new_file(path, contents, mode)
}

/// Replace `path` atomically (a fresh `.<name>.tmp` beside it, renamed
/// over it): readers see the old file or the new one, with `mode` from its
/// creation. In a directory only Berth writes.
pub(crate) fn replace_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut staged = OsString::from(".");
    staged.push(name);
    staged.push(".tmp");
    let staged = path.with_file_name(staged);
    write_fresh_file(&staged, contents, mode)?;
    std::fs::rename(&staged, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::os::unix::net::UnixListener;

    /// A fresh directory for one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("berth-hostfile-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_link_at_the_staged_name_is_refused_and_left_alone() {
        let dir = Scratch::new("staged-link");
        let victim = dir.0.join("victim");
        std::fs::write(&victim, "victim").unwrap();
        symlink(&victim, dir.0.join(".pid")).unwrap();
        let err = StagedFile::stage(&dir.0.join("pid"), b"42", 0o644).unwrap_err();
        assert!(
            matches!(&err, HostFileError::Exists(p) if p == &dir.0.join(".pid")),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim");
        assert_eq!(names(&dir.0), [".pid", "victim"]);
        // A dangling one is not followed either: nothing is created at its target.
        std::fs::remove_file(dir.0.join(".pid")).unwrap();
        symlink(dir.0.join("made"), dir.0.join(".pid")).unwrap();
        assert!(StagedFile::stage(&dir.0.join("pid"), b"42", 0o644).is_err());
        assert!(!dir.0.join("made").exists());
    }

    #[test]
    fn a_link_at_the_final_name_is_replaced_not_followed() {
        let dir = Scratch::new("final-link");
        let victim = dir.0.join("victim");
        std::fs::write(&victim, "victim").unwrap();
        symlink(&victim, dir.0.join("pid")).unwrap();
        let staged = StagedFile::stage(&dir.0.join("pid"), b"42", 0o644).unwrap();
        assert_eq!(staged.path(), dir.0.join("pid"));
        staged.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim");
        let meta = std::fs::symlink_metadata(dir.0.join("pid")).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7022, 0o644 & 0o7022);
        assert_eq!(std::fs::read_to_string(dir.0.join("pid")).unwrap(), "42");
        assert_eq!(names(&dir.0), ["pid", "victim"]);
    }

    #[test]
    fn an_uncommitted_or_failed_stage_leaves_nothing() {
        let dir = Scratch::new("uncommitted");
        drop(StagedFile::stage(&dir.0.join("pid"), b"1", 0o644).unwrap());
        assert!(names(&dir.0).is_empty());
        std::fs::create_dir(dir.0.join("pid")).unwrap();
        let staged = StagedFile::stage(&dir.0.join("pid"), b"1", 0o644).unwrap();
        let err = staged.commit().unwrap_err();
        assert!(err.to_string().contains(".pid: rename into place"), "{err}");
        assert_eq!(names(&dir.0), ["pid"]);
        assert!(matches!(
            StagedFile::stage(Path::new("/"), b"1", 0o644),
            Err(HostFileError::NoFileName(_))
        ));
    }

    #[test]
    fn append_follows_only_links_root_or_this_user_owns() {
        let dir = Scratch::new("append");
        let log = dir.0.join("log");
        let mut file = open_append(&log, 0o644, OFlag::empty()).unwrap();
        file.write_all(b"one\n").unwrap();
        open_append(&log, 0o644, OFlag::empty())
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        // Our own link (relative, too) is followed.
        symlink("log", dir.0.join("mine")).unwrap();
        open_append(&dir.0.join("mine"), 0o644, OFlag::empty())
            .unwrap()
            .write_all(b"three\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\nthree\n");
        // Someone else's is not (chowning a link needs root).
        symlink(&log, dir.0.join("planted")).unwrap();
        if nix::unistd::fchownat(
            AT_FDCWD,
            &dir.0.join("planted"),
            Some(65534.into()),
            None,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok()
        {
            let err = open_append(&dir.0.join("planted"), 0o644, OFlag::empty()).unwrap_err();
            assert!(
                matches!(err, HostFileError::UntrustedLink { owner: 65534, .. }),
                "{err}"
            );
            let err = connect_unix(&dir.0.join("planted")).unwrap_err();
            assert!(matches!(err, HostFileError::UntrustedLink { .. }), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_socket_is_connected_through_the_checked_descriptor() {
        let dir = Scratch::new("socket");
        let path = dir.0.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        connect_unix(&path).unwrap();
        assert!(listener.accept().is_ok());
        symlink("s.sock", dir.0.join("mine.sock")).unwrap();
        connect_unix(&dir.0.join("mine.sock")).unwrap();
        std::fs::write(dir.0.join("file"), "").unwrap();
        assert!(matches!(
            connect_unix(&dir.0.join("file")),
            Err(HostFileError::NotSocket(_))
        ));
        let err = connect_unix(&dir.0.join("none.sock")).unwrap_err();
        assert_eq!(
            err.io_source().and_then(io::Error::raw_os_error),
            Some(libc::ENOENT)
        );
        // Past the 108 bytes of a socket address.
        let deep = dir.0.join("d".repeat(100));
        std::fs::create_dir(&deep).unwrap();
        std::fs::rename(&path, deep.join("s.sock")).unwrap();
        connect_unix(&deep.join("s.sock")).unwrap();
    }

    #[test]
    fn new_files_have_their_mode_from_creation_and_are_exclusive() {
        let dir = Scratch::new("new");
        let path = dir.0.join("state.json");
        write_new_file(&path, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let err = write_new_file(&path, b"{}", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        symlink(dir.0.join("elsewhere"), dir.0.join("link")).unwrap();
        assert!(write_new_file(&dir.0.join("link"), b"x", 0o600).is_err());
        assert!(!dir.0.join("elsewhere").exists());
        // A leftover 0644 staging file does not lend its mode to the new one.
        std::fs::write(dir.0.join(".state.json.tmp"), "old").unwrap();
        replace_file(&path, b"{\"a\":1}", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(names(&dir.0), ["link", "state.json"]);
    }
}
