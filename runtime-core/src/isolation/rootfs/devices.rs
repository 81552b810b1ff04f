//! Device nodes and the /dev symlinks every container expects.

use super::inroot::{file_kind, relative, split_last, Root};
use super::RootfsError;
use crate::sys::mount_api::{attach, clone_tree};
use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A device node to create inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The nodes the OCI spec says every Linux container gets.
pub fn default_devices() -> Vec<DeviceNode> {
    let node = |name: &str, major, minor| DeviceNode {
        path: PathBuf::from("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    vec![
        node("null", 1, 3),
        node("zero", 1, 5),
        node("full", 1, 7),
        node("random", 1, 8),
        node("urandom", 1, 9),
        node("tty", 5, 0),
    ]
}

impl DeviceNode {
    pub fn from_spec(device: &LinuxDevice) -> DeviceNode {
        let kind = match device.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        DeviceNode {
            path: device.path().clone(),
            kind,
            major: device.major() as u64,
            minor: device.minor() as u64,
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        }
    }
}

/// What to do when the rootfs already has something at a device's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// A default device: the spec says the runtime supplies it, so an
    /// impostor (another node, a symlink, a fifo) is replaced.
    Replace,
    /// A device the config lists: config-linux.md makes a file there that
    /// does not match an error. One exception: the runtime's own link at
    /// that path (`/dev/stdin -> /proc/self/fd/0`, left by an earlier run
    /// on a rootfs without a /dev tmpfs, or shipped by the image) is what
    /// the runtime would have put there itself, and gives way to the node.
    MustMatch,
}

/// The links every container's /dev gets (`create_dev_symlinks`), by name
/// under /dev, with their targets.
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Whether a listed device at `path` is left to the /dev/ptmx link. runc
/// does the same: the container's ptys must come from its own devpts, and
/// podman `--privileged` and `--device /dev/ptmx` list the host's 5:2 there.
/// The device cgroup still allows it.
pub fn is_dev_ptmx(path: &Path) -> bool {
    relative(path) == Path::new("dev/ptmx")
}

/// Whether the symlink `name` in `dir` (the rootfs's /dev) is the runtime's
/// own default link: same name, same target, nothing followed.
fn is_default_link(dir: &Path, name: &Path, dir_fd: std::os::fd::BorrowedFd) -> bool {
    if dir != Path::new("dev") {
        return false;
    }
    let Ok(target) = nix::fcntl::readlinkat(dir_fd, name) else {
        return false;
    };
    DEV_LINKS
        .iter()
        .any(|(link, to)| name == Path::new(link) && target == std::ffi::OsStr::new(to))
}

/// Create `node` inside `root`, or bind the host's node at the same path
/// onto an empty file when `bind` (a user namespace may not mknod). A node
/// already there of the same type and numbers is kept as it is; anything
/// else is dealt with as `existing` says. Nothing at the path is ever
/// opened: an impostor node would open a host device.
pub fn create_node(
    root: &Root,
    node: &DeviceNode,
    bind: bool,
    existing: Existing,
) -> Result<(), RootfsError> {
    let fail = |source: std::io::Error| RootfsError::Device {
        path: node.path.clone(),
        source,
    };
    let (parent, name) = split_last(&relative(&node.path)).map_err(fail)?;
    let dir = root.mkdir_all(&parent).map_err(fail)?;
    let found = match nix::sys::stat::fstatat(
        dir.as_fd(),
        name.as_path(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Some(st),
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(fail(e.into())),
    };
    if let Some(st) = found {
        // What the host node is bound over may be an empty file or any char node.
        let bind_target =
            bind && matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFCHR);
        let keep = is_node(&st, node) || bind_target;
        if keep && !bind {
            return Ok(());
        }
        if !keep {
            let own_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK
                && is_default_link(&parent, &name, dir.as_fd());
            let replace = existing == Existing::Replace || own_link;
            if !replace || st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(RootfsError::DeviceInTheWay {
                    path: node.path.clone(),
                    found: file_kind(st.st_mode),
                });
            }
            nix::unistd::unlinkat(
                dir.as_fd(),
                name.as_path(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(|e| fail(e.into()))?;
        }
    }
    if bind {
        return bind_host_node(root, node).map_err(fail);
    }
    let dev = if node.kind == SFlag::S_IFIFO {
        0
    } else {
        nix::sys::stat::makedev(node.major, node.minor)
    };
    match nix::sys::stat::mknodat(
        dir.as_fd(),
        name.as_path(),
        node.kind,
        Mode::from_bits_truncate(node.mode),
        dev,
    ) {
        Ok(()) => {}
        // A user namespace not detected as one, or a kernel or LSM that
        // refuses mknod to this root: the host's node, as runc falls back to.
        // A fifo is made by anyone, so EPERM for one is a real failure.
        Err(Errno::EPERM) if node.kind != SFlag::S_IFIFO => {
            return bind_host_node(root, node).map_err(fail)
        }
        Err(e) => return Err(fail(e.into())),
    }
    nix::unistd::fchownat(
        dir.as_fd(),
        name.as_path(),
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| fail(e.into()))
}

/// Whether `st` is `node`: same type and, but for a fifo, the same numbers.
fn is_node(st: &nix::sys::stat::FileStat, node: &DeviceNode) -> bool {
    st.st_mode & libc::S_IFMT == node.kind.bits()
        && (node.kind == SFlag::S_IFIFO
            || st.st_rdev == nix::sys::stat::makedev(node.major, node.minor))
}

/// Bind the host's node at the device's path, once it is checked to be that
/// device: never what a link there leads to (the host's /dev/stdin is a link
/// to the init's own stdin), nor another node.
fn bind_host_node(root: &Root, node: &DeviceNode) -> std::io::Result<()> {
    // The init still sees the host's /dev: pivot_root has not happened yet.
    let host = nix::fcntl::open(
        &node.path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("the host's {} to bind: {e}", node.path.display()),
        )
    })?;
    let st = nix::sys::stat::fstat(&host)?;
    if !is_node(&st, node) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the host's {} to bind is {}, not the device",
                node.path.display(),
                file_kind(st.st_mode)
            ),
        ));
    }
    let tree = clone_tree(Some(host.as_fd()), Path::new(""), false)?;
    let target = root.file_not_link(&node.path)?;
    attach(tree.as_fd(), target.as_fd())
}

/// /dev/fd, stdin, stdout, stderr and ptmx, as runc makes them, after the
/// device nodes: a device the config lists at one of these paths keeps its
/// node, and the link is not made. ptmx is always replaced, as runc does: a
/// rootfs's own /dev/ptmx node would be the host's devpts instance, not the
/// container's. Every entry is made or removed in the rootfs's /dev itself,
/// never through a link.
pub fn create_dev_symlinks(root: &Root) -> Result<(), RootfsError> {
    let dev = root
        .mkdir_all(Path::new("/dev"))
        .map_err(|source| RootfsError::Device {
            path: PathBuf::from("/dev"),
            source,
        })?;
    let fail = |name: &str, e: Errno| RootfsError::Device {
        path: Path::new("/dev").join(name),
        source: e.into(),
    };
    match nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(fail("ptmx", e)),
    }
    for (name, target) in DEV_LINKS {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(name, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-devices-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/dev")).unwrap();
        dir
    }

    fn null() -> DeviceNode {
        default_devices()
            .into_iter()
            .find(|d| d.path == Path::new("/dev/null"))
            .unwrap()
    }

    fn rdev(path: &Path) -> (u32, u64) {
        let st = nix::sys::stat::lstat(path).unwrap();
        (st.st_mode & libc::S_IFMT, st.st_rdev)
    }

    #[test]
    fn a_default_device_replaces_an_impostor_and_a_listed_one_refuses_it() {
        let dir = scratch("impostor");
        let at = dir.join("root/dev/null");
        nix::sys::stat::mknod(
            &at,
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(8, 0),
        )
        .unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        let err = create_node(&root, &null(), false, Existing::MustMatch).unwrap_err();
        assert!(
            err.to_string()
                .contains("/dev/null: the rootfs has a block device there"),
            "{err}"
        );
        create_node(&root, &null(), false, Existing::Replace).unwrap();
        assert_eq!(rdev(&at), (libc::S_IFCHR, nix::sys::stat::makedev(1, 3)));
        // The right node now: kept by both.
        create_node(&root, &null(), false, Existing::MustMatch).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_listed_device_replaces_only_the_runtimes_own_link() {
        let dir = scratch("ownlink");
        std::os::unix::fs::symlink("/proc/self/fd/0", dir.join("root/dev/stdin")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd/0", dir.join("root/dev/stdout")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        let at = |name: &str| DeviceNode {
            path: PathBuf::from("/dev").join(name),
            ..null()
        };
        create_node(&root, &at("stdin"), false, Existing::MustMatch).unwrap();
        let stdin = dir.join("root/dev/stdin");
        assert_eq!(rdev(&stdin), (libc::S_IFCHR, nix::sys::stat::makedev(1, 3)));
        // /dev/stdout's link, but with stdin's target: not the runtime's own.
        let err = create_node(&root, &at("stdout"), false, Existing::MustMatch).unwrap_err();
        assert!(err.to_string().contains("a symlink"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_ptmx_is_recognised_however_it_is_spelled() {
        assert!(is_dev_ptmx(Path::new("/dev/ptmx")));
        assert!(is_dev_ptmx(Path::new("/dev/./ptmx")));
        assert!(is_dev_ptmx(Path::new("dev//ptmx")));
        assert!(!is_dev_ptmx(Path::new("/dev/pts/ptmx")));
    }

    #[test]
    fn a_directory_at_a_device_path_is_never_replaced() {
        let dir = scratch("dir");
        std::fs::create_dir(dir.join("root/dev/null")).unwrap();
        let root = Root::open(&dir.join("root")).unwrap();
        let err = create_node(&root, &null(), false, Existing::Replace).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
