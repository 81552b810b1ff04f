//! Building hostile trees inside a bundle's rootfs: planted links, device
//! nodes, fifos and sockets, and host paths that must never come to exist.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{unique_name, Bundle};

/// More `..` than any bundle is deep: resolved on the host from the rootfs it
/// reaches `/`; resolved in the rootfs it stays at the rootfs's `/`.
pub const UP: &str = "../../../../../../../../../..";

/// A path on the host that must never come to exist: the test checks it is absent.
pub fn host_probe() -> PathBuf {
    let path = PathBuf::from("/tmp").join(format!("berth-hostile-{}", unique_name()));
    assert!(!path.exists(), "{} exists already", path.display());
    path
}

/// `path` (absolute on the host) as the rootfs sees it when resolved inside it.
pub fn inside(bundle: &Bundle, path: &Path) -> PathBuf {
    bundle.rootfs().join(path.strip_prefix("/").unwrap_or(path))
}

/// The config without its /dev tmpfs, so the rootfs's own /dev is what the runtime fills.
pub fn own_dev(c: &mut Value) {
    c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev");
}

/// A device node or fifo at `path`, mode 0666, made from the test (as root).
pub fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the result is checked.
    let rc = unsafe { libc::mknod(cpath.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(rc, 0, "mknod {}: {}", path.display(), std::io::Error::last_os_error());
}

/// A unix socket bound at `path` and left behind when the listener is dropped.
pub fn socket_file(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display())));
}

/// Replaces `path` in the rootfs (a file or directory) by a symlink to `target`.
pub fn plant_link(bundle: &Bundle, path: &str, target: impl AsRef<Path>) {
    let at = bundle.rootfs().join(path.trim_start_matches('/'));
    let _ = fs::remove_dir_all(&at);
    let _ = fs::remove_file(&at);
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(target, &at).unwrap();
}

