//! Building hostile trees inside a bundle's rootfs (planted links, device
//! nodes, fifos and sockets, host paths that must never come to exist) and
//! the checks `hostile_input.rs` and `hostile_nodes_and_ids.rs` repeat: refused by name, or confined.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{
    bind_mount, mount_at, mounts_mentioning, run_and_read_mounts, tmpfs_mount, unique_name, Bundle,
    HostDir, Output, Runtime,
};

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
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
}

/// A device node or fifo at `path`, mode 0666, made from the test (as root).
pub fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the result is checked.
    let rc = unsafe { libc::mknod(cpath.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A unix socket bound at `path` and left behind when the listener is dropped.
pub fn socket_file(path: &Path) {
    drop(
        std::os::unix::net::UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display())),
    );
}

/// Replaces `path` in the rootfs (a file or directory) by a symlink to `target`.
pub fn plant_link(bundle: &Bundle, path: &str, target: impl AsRef<Path>) {
    let at = bundle.rootfs().join(path.trim_start_matches('/'));
    let _ = fs::remove_dir_all(&at);
    let _ = fs::remove_file(&at);
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    symlink(target, &at).unwrap();
}

/// Runs `create`, which must fail with an error naming `needle`, and leave nothing.
#[track_caller]
pub fn refused(rt: &Runtime, bundle: &Bundle, needle: &str) -> Output {
    let id = rt.new_id();
    let out = rt.create(&id, bundle, &[]);
    let text = out.fails();
    assert!(
        text.contains(needle),
        "expected {needle:?} in the error: {}",
        out.describe()
    );
    rt.assert_nothing_left(&id, bundle);
    out
}

/// A chain of `hops` links ending at a directory; its first link's path.
pub fn chain(bundle: &Bundle, hops: usize) -> String {
    fs::create_dir_all(bundle.rootfs().join("end")).unwrap();
    for i in 0..hops {
        let next = if i + 1 == hops {
            "/end".to_owned()
        } else {
            format!("hop{}", i + 1)
        };
        plant_link(bundle, &format!("/hop{i}"), next);
    }
    "/hop0".to_owned()
}

/// A new filesystem or a host directory: what lands at a destination that leads out.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Tmpfs,
    Bind,
}

impl Kind {
    pub fn mount(self, source: &Path, destination: &str) -> Value {
        match self {
            Kind::Tmpfs => tmpfs_mount(destination, &[]),
            Kind::Bind => bind_mount(source, destination, &["rbind"]),
        }
    }
}

/// Mounts a `kind` at `destination` (which the rootfs makes lead out of it)
/// and writes a file through it from inside; the mount must be at `lands`,
/// inside the rootfs, and the host's `outside` untouched.
#[track_caller]
pub fn confined(
    kind: Kind,
    setup: impl Fn(&Bundle),
    destination: &str,
    lands: &str,
    outside: &Path,
) {
    let source = HostDir::new();
    let mut bundle = Bundle::busybox(&[]);
    setup(&bundle);
    bundle.add_mount(kind.mount(source.path(), destination));
    let rt = Runtime::new();
    let script = format!("touch '{lands}/written' && echo wrote");
    let (printed, mounts) = run_and_read_mounts(&rt, &mut bundle, &script);
    assert_eq!(printed, "wrote\n", "{kind:?}");
    let mount = mount_at(&mounts, lands);
    if let Kind::Tmpfs = kind {
        assert_eq!(mount.fs_type, "tmpfs");
    } else {
        assert!(
            source.join("written").exists(),
            "{kind:?}: the write did not reach the bind's source"
        );
    }
    assert!(
        inside(&bundle, Path::new(lands)).is_dir(),
        "{kind:?}: no mount point inside the rootfs"
    );
    let escaped: Vec<_> = fs::read_dir(outside)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        escaped.is_empty(),
        "{kind:?}: written on the host: {escaped:?}"
    );
    assert!(
        mounts_mentioning(outside).is_empty(),
        "{kind:?}: a mount on the host's {}",
        outside.display()
    );
}

/// Names of the entries in `dir` (empty if it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
