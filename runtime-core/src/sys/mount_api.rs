//! Thin wrappers over the kernel's file-descriptor mount API (Linux 5.12+).
//!
//! Every mount Berth makes goes through these: a mount is built detached
//! (`fsopen`/`fsmount` or `open_tree`), shaped with `mount_setattr`, and
//! attached with `move_mount` onto a target that was already resolved inside
//! the rootfs as a file descriptor. No path string is ever re-walked between
//! the check and the mount, so a symlink swapped in by the container cannot
//! redirect it (CVE-2021-30465), and nothing depends on /proc being mounted.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(s: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(s.as_ref()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn fd_result(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit_result(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `path`
/// (relative to `dir`, or `dir` itself when `path` is empty).
pub fn clone_tree(dir: Option<BorrowedFd>, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let cpath = cstring(path.as_os_str().as_bytes())?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    // SAFETY: plain syscall with a valid NUL-terminated path; the result is checked.
    fd_result(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, cpath.as_ptr(), flags) })
}

/// Attach the detached mount `mount` onto the object `target` refers to.
pub fn attach(mount: BorrowedFd, target: BorrowedFd) -> io::Result<()> {
    let empty = c"";
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both descriptors are borrowed for the call; empty paths with the EMPTY_PATH flags.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            flags,
        )
    })
}

/// Attach `mount` at a host path (used only for paths the runtime itself owns).
pub fn attach_at_path(mount: BorrowedFd, target: &Path) -> io::Result<()> {
    let empty = c"";
    let ctarget = cstring(target.as_os_str().as_bytes())?;
    // SAFETY: borrowed descriptor and NUL-terminated strings; result checked.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            ctarget.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
}

/// Mount attributes to set and clear, and an optional propagation type (`MS_PRIVATE`, ...).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clear: u64,
    pub propagation: u64,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0 && self.propagation == 0
    }
}

/// The flags the kernel locks on the mounts it copies into a mount namespace
/// a less privileged user namespace owns (rootless podman's, a nested
/// runtime's, a container's own): they may be set, never cleared.
const LOCKED_IN_A_USER_NAMESPACE: u64 = libc::MOUNT_ATTR_RDONLY
    | libc::MOUNT_ATTR_NOSUID
    | libc::MOUNT_ATTR_NODEV
    | libc::MOUNT_ATTR_NOEXEC
    | libc::MOUNT_ATTR__ATIME;

/// What a `set_attr(attr)` that failed with `e` was doing, for its error:
/// EPERM while clearing a lockable flag is the user namespace's lock.
pub fn set_attr_failure(attr: MountAttr, e: &io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) && attr.clear & LOCKED_IN_A_USER_NAMESPACE != 0 {
        "clear flags its source's mount has locked in this user namespace (ro, nosuid, nodev, noexec, atime) on"
    } else {
        "set attributes of"
    }
}

/// `mount_setattr` on the mount `fd` refers to (and, if `recursive`, all below it).
pub fn set_attr(fd: BorrowedFd, attr: MountAttr, recursive: bool) -> io::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    let raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clear,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    mount_setattr(fd, raw, recursive)
}

/// Idmap the detached mount `fd` (and, if `recursive`, all below it) with the
/// mappings of the user namespace `userns`.
pub fn set_idmap(fd: BorrowedFd, userns: BorrowedFd, recursive: bool) -> io::Result<()> {
    let raw = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(fd, raw, recursive)
}

fn mount_setattr(fd: BorrowedFd, mut raw: libc::mount_attr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `raw` lives across the call and its size is passed; the fd is borrowed.
    unit_result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut raw as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
}

/// A filesystem being configured with `fsopen`/`fsconfig`, before `fsmount`.
pub struct FsContext {
    fd: OwnedFd,
}

impl FsContext {
    pub fn open(fstype: &str) -> io::Result<Self> {
        let ctype = cstring(fstype)?;
        // SAFETY: NUL-terminated name, flag constant; result checked.
        let fd = fd_result(unsafe {
            libc::syscall(libc::SYS_fsopen, ctype.as_ptr(), libc::FSOPEN_CLOEXEC)
        })?;
        Ok(FsContext { fd })
    }

    fn config(&self, cmd: libc::c_uint, key: Option<&str>, value: Option<&str>) -> io::Result<()> {
        let ckey = key.map(cstring).transpose()?;
        let cvalue = value.map(cstring).transpose()?;
        let kp = ckey.as_ref().map_or(std::ptr::null(), |k| k.as_ptr());
        let vp = cvalue.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: key/value are NUL-terminated or null as the command requires; the fd is ours.
        let ret = unsafe { libc::syscall(libc::SYS_fsconfig, self.fd.as_raw_fd(), cmd, kp, vp, 0) };
        unit_result(ret).map_err(|e| self.annotate(e))
    }

    /// One filesystem option: `key=value`, or a bare flag like `newinstance`.
    pub fn set_option(&self, option: &str) -> io::Result<()> {
        match option.split_once('=') {
            Some((k, v)) => self.config(libc::FSCONFIG_SET_STRING, Some(k), Some(v)),
            None => self.config(libc::FSCONFIG_SET_FLAG, Some(option), None),
        }
    }

    /// An option whose value is a descriptor (FSCONFIG_SET_FD).
    pub fn set_fd(&self, key: &str, fd: BorrowedFd) -> io::Result<()> {
        let ckey = cstring(key)?;
        // SAFETY: NUL-terminated key, no value pointer, a live descriptor as aux; both fds are ours.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                libc::FSCONFIG_SET_FD,
                ckey.as_ptr(),
                std::ptr::null::<libc::c_char>(),
                fd.as_raw_fd(),
            )
        };
        unit_result(ret).map_err(|e| self.annotate(e))
    }

    pub fn set_source(&self, source: &str) -> io::Result<()> {
        self.config(libc::FSCONFIG_SET_STRING, Some("source"), Some(source))
    }

    /// Create the superblock and return a detached mount of it with `attr_flags` (MOUNT_ATTR_*).
    pub fn mount(self, attr_flags: u64) -> io::Result<OwnedFd> {
        self.config(libc::FSCONFIG_CMD_CREATE, None, None)?;
        // SAFETY: the fd is a configured fs context; the result is checked.
        fd_result(unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.fd.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                attr_flags,
            )
        })
    }

    /// The kernel queues a human-readable reason on the context fd; fold it into the error.
    fn annotate(&self, err: io::Error) -> io::Error {
        let mut buf = [0u8; 512];
        let n = nix::unistd::read(self.fd.as_fd(), &mut buf).unwrap_or(0);
        if n == 0 {
            return err;
        }
        let msg = String::from_utf8_lossy(&buf[..n]);
        let msg = msg.trim_end().trim_start_matches("e ");
        io::Error::new(err.kind(), format!("{err} ({msg})"))
    }
}

/// Make the filesystem of the mount `fd` read-only, its superblock itself
/// (`fspick` + reconfigure), as `ro` makes a new one at creation: for a
/// filesystem filled in before it is shut.
pub fn make_superblock_read_only(fd: BorrowedFd) -> io::Result<()> {
    // Not in the libc crate yet (linux/mount.h).
    const FSPICK_CLOEXEC: libc::c_uint = 0x1;
    const FSPICK_EMPTY_PATH: libc::c_uint = 0x8;
    // SAFETY: a borrowed descriptor and an empty NUL-terminated path with FSPICK_EMPTY_PATH; result checked.
    let picked = fd_result(unsafe {
        libc::syscall(
            libc::SYS_fspick,
            fd.as_raw_fd(),
            c"".as_ptr(),
            FSPICK_CLOEXEC | FSPICK_EMPTY_PATH,
        )
    })?;
    let ctx = FsContext { fd: picked };
    ctx.set_option("ro")?;
    ctx.config(libc::FSCONFIG_CMD_RECONFIGURE, None, None)
}

/// `openat2` with `RESOLVE_*` flags; the basis of every in-rootfs lookup.
pub fn openat2(
    dir: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let cpath = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: open_how is a plain C struct of integers; zero is the kernel's default for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve;
    // With RESOLVE_IN_ROOT or RESOLVE_BENEATH the kernel answers EAGAIN when
    // a rename anywhere on the host raced a `..` of the walk (it cannot then
    // vouch that the walk stayed inside); openat2(2) says to retry. A host
    // busy with renames (an engine writing its state files) hit it.
    let mut attempts = 0;
    loop {
        // SAFETY: `how` outlives the call and its size is passed; the path is NUL-terminated.
        let result = fd_result(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        });
        match result {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && attempts < OPENAT2_RETRIES => {
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// How often `openat2` is retried on EAGAIN (a `..` raced by a rename)
/// before the EAGAIN is returned.
const OPENAT2_RETRIES: u32 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_opens_with_dot_dot_survive_renames_elsewhere_on_the_host() {
        // Renames on another thread make the kernel answer EAGAIN to a `..`
        // under RESOLVE_IN_ROOT now and then; the wrapper retries.
        let dir = std::env::temp_dir().join(format!("berth-openat2-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("root/a/b")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let (x, y) = (dir.join("x"), dir.join("y"));
                std::fs::write(&x, b"").unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::rename(&x, &y);
                    let _ = std::fs::rename(&y, &x);
                }
            })
        };
        let root = std::fs::File::open(dir.join("root")).unwrap();
        let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        let mut failures = 0;
        for _ in 0..20_000 {
            if openat2(
                root.as_fd(),
                Path::new("a/b/../../a/b/.."),
                libc::O_PATH,
                0,
                resolve,
            )
            .is_err()
            {
                failures += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(failures, 0, "openat2 failed {failures} times of 20000");
    }

    #[test]
    fn eperm_clearing_a_lockable_flag_is_named_as_the_lock() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let clear_noexec = MountAttr {
            clear: libc::MOUNT_ATTR_NOEXEC,
            ..Default::default()
        };
        assert!(set_attr_failure(clear_noexec, &eperm).contains("locked in this user namespace"));
        let set_ro = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        assert_eq!(set_attr_failure(set_ro, &eperm), "set attributes of");
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(set_attr_failure(clear_noexec, &einval), "set attributes of");
    }
}
