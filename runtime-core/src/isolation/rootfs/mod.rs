//! The container's filesystem view, built inside its mount namespace:
//! propagation, the rootfs bind, config mounts, devices, pivot_root, masked
//! and read-only paths, and a read-only root.

mod copy_up;
mod devices;
pub mod host_mount;
mod idmap;
mod inroot;

mod mounts;

pub use crate::sys::mount_api::{attach, clone_tree, FsContext, MountAttr};
pub use copy_up::CopyError;
pub use inroot::{Root, TargetKind};

use crate::sys::mount_api::{self, set_attr};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("make / {propagation} in the container's mount namespace: {source}")]
    Propagation {
        propagation: &'static str,
        source: nix::Error,
    },
    #[error("rootfsPropagation {0:?} needs a mount namespace of the container's own (linux.namespaces has no mount namespace)")]
    PropagationWithoutNamespace(String),
    #[error("unsupported rootfsPropagation {0:?}")]
    UnknownPropagation(String),
    #[error("bind the rootfs {path}: {source}")]
    BindRootfs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unable to {op} mount {destination}: {source}")]
    Mount {
        destination: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("bind mount source {source_path}: {source}")]
    BindSource {
        source_path: PathBuf,
        source: std::io::Error,
    },
    #[error("mount {0} has no source")]
    MissingSource(PathBuf),
    #[error("mount target {0} must be a directory, not a symlink or file")]
    TargetNotDirectory(PathBuf),
    #[error("mount {destination}: tmpcopyup is for tmpfs mounts only, not {fstype}")]
    CopyUpNotTmpfs {
        destination: PathBuf,
        fstype: String,
    },
    #[error("mount {destination}: tmpcopyup: {source}")]
    CopyUp {
        destination: PathBuf,
        source: copy_up::CopyError,
    },
    #[error("create device {path}: {source}")]
    Device {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device {path}: the rootfs has {found} there, not the device")]
    DeviceInTheWay { path: PathBuf, found: &'static str },
    #[error("create the working directory {path}: {source}")]
    Cwd {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("/dev/null on the host is not the null device")]
    BadDevNull,
    #[error("pivot_root into {path}: {source}")]
    Pivot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mask {path}: {source}")]
    Mask {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Hooks(String),
    /// The init could not enter the cgroup the runtime made meanwhile.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::LateEntryError),
    #[error("make {path} read-only: {source}")]
    ReadOnly {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything `prepare` needs beyond the spec.
pub struct RootfsSetup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// Each cgroup hierarchy's name and the container's directory in it, for `cgroup` mounts.
    pub cgroup_binds: &'a [(String, PathBuf)],
    pub no_pivot: bool,
    /// The container shares the runtime's mount namespace (host_mount.rs):
    /// nothing of the host's propagation is touched, and chroot replaces
    /// pivot_root, which would move the host's own root.
    pub in_host_namespace: bool,
    /// Bind the host's device nodes instead of mknod, which a user namespace forbids.
    pub bind_devices: bool,
    /// From `idmapped_trees`, one entry per mount.
    pub idmapped: &'a [Option<OwnedFd>],
    /// The cgroup the init enters late, if it is not in it yet: entered
    /// before a `cgroup` mount binds it or a `tmpcopyup` copy is charged to it.
    pub late_cgroup: Option<&'a crate::cgroups::LateEntry<'a>>,
    /// The pid namespace `proc` mounts show, when the init is outside it.
    pub proc_pid_namespace: Option<BorrowedFd<'a>>,
}

/// Whether a config mount is a bind (its type, or a `bind`/`rbind` option).
pub(crate) fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

/// For a container with a user namespace: the detached, idmapped trees of
/// the config's idmapped binds, one entry per mount, made by the runtime
/// before the init is cloned (see `mounts::idmapped_tree`); the init
/// inherits the descriptors. Their sources are seen as the host sees them.
/// Without a user namespace the init makes them itself, in mount order, so
/// a bind can take a tree that earlier mounts built inside the container.
pub fn idmapped_trees(spec: &Spec, bundle: &Path) -> Result<Vec<Option<OwnedFd>>, RootfsError> {
    let in_user_namespace = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User);
    if !in_user_namespace {
        return Ok(Vec::new());
    }
    let env = mounts::MountEnv {
        bundle,
        cgroups: &[],
        late_cgroup: None,
        user_mappings: user_mappings(spec),
        proc_pid_namespace: None,
        mount_label: None,
    };
    spec.mounts()
        .iter()
        .flatten()
        .map(|mount| mounts::idmapped_tree(mount, &env))
        .collect()
}

/// Build the container's filesystem and make it `/`. Runs in the init,
/// inside its new mount namespace. `before_pivot` runs once every mount and
/// device is in place, before anything is made read-only and before
/// pivot_root: where the spec puts the createRuntime and createContainer hooks.
pub fn prepare(
    setup: &RootfsSetup,
    before_pivot: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(), RootfsError> {
    let linux = setup.spec.linux().as_ref();
    let propagation = linux.and_then(|l| l.rootfs_propagation().as_deref());
    if setup.in_host_namespace {
        if let Some(propagation) = propagation {
            return Err(RootfsError::PropagationWithoutNamespace(
                propagation.to_string(),
            ));
        }
    } else {
        make_root_private(propagation)?;
    }

    let bind_err = |source| RootfsError::BindRootfs {
        path: setup.rootfs.to_path_buf(),
        source,
    };
    // The rootfs path is the host's to choose and may be a symlink: the
    // bind is attached where it leads, as move_mount will not follow it.
    let rootfs = std::fs::canonicalize(setup.rootfs).map_err(bind_err)?;
    let tree = clone_tree(None, &rootfs, true).map_err(bind_err)?;
    mount_api::attach_at_path(tree.as_fd(), &rootfs).map_err(bind_err)?;
    let root = Root::open(&rootfs).map_err(bind_err)?;

    let mounts = setup.spec.mounts().as_deref().unwrap_or_default();
    let mount_label = crate::isolation::lsm::mount_label(setup.spec);
    let env = mounts::MountEnv {
        bundle: setup.bundle,
        cgroups: setup.cgroup_binds,
        late_cgroup: setup.late_cgroup,
        user_mappings: user_mappings(setup.spec),
        proc_pid_namespace: setup.proc_pid_namespace,
        mount_label: mount_label.as_deref(),
    };
    // A cgroup mount binds the container's cgroup, which the parent may
    // still be making (lifecycle/create/handoff.rs): it goes after the devices where no later
    // mount is above, at or below it, so the order changes nothing visible.
    let mut deferred = Vec::new();
    for (i, mount) in mounts.iter().enumerate() {
        if mounts::is_cgroup_tree(mount) && !nests_with_a_later_one(mounts, i) {
            deferred.push(i);
            continue;
        }
        mounts::mount_one(
            &root,
            mount,
            &env,
            setup.idmapped.get(i).and_then(Option::as_ref),
        )?;
    }
    let dev_is_bound = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && m.options()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o == "bind" || o == "rbind")
    });
    let spec_devices = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    // What a mount of the config is at (`-v /dev/urandom:/dev/random`) is the config's
    // choice, not something the rootfs planted: no device is made over it (replacing a
    // mount point fails with EBUSY), as runc leaves it.
    let mounted = |path: &Path| mounts.iter().any(|m| m.destination() == path);
    if !dev_is_bound {
        // A device the config lists at a default path comes with its own mode and owner.
        let defaults = devices::default_devices()
            .into_iter()
            .filter(|d| spec_devices.iter().all(|s| s.path() != &d.path))
            .filter(|d| !mounted(&d.path));
        for node in defaults {
            devices::create_node(&root, &node, setup.bind_devices, devices::Existing::Replace)?;
        }
    }
    // The nodes before the /dev links, as runc orders them: a device listed
    // at /dev/stdin (say) is a node, not the link. /dev/ptmx is the link.
    let listed = spec_devices
        .iter()
        .filter(|d| !devices::is_dev_ptmx(d.path()) && !mounted(d.path()));
    for device in listed {
        devices::create_node(
            &root,
            &devices::DeviceNode::from_spec(device),
            setup.bind_devices,
            devices::Existing::MustMatch,
        )?;
    }
    if !dev_is_bound {
        devices::create_dev_symlinks(&root)?;
    }
    for i in deferred {
        mounts::mount_one(
            &root,
            &mounts[i],
            &env,
            setup.idmapped.get(i).and_then(Option::as_ref),
        )?;
    }
    if let Some(process) = setup.spec.process() {
        root.mkdir_all(process.cwd())
            .map_err(|source| RootfsError::Cwd {
                path: process.cwd().clone(),
                source,
            })?;
    }

    before_pivot().map_err(RootfsError::Hooks)?;

    // Masks and read-only binds are made before pivot_root, while the host's
    // /dev/null is still in this mount namespace to be cloned from; every
    // path is still resolved inside the rootfs.
    let dev_null = open_host_dev_null()?;
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
    {
        mask_path(&root, Path::new(path), &dev_null, env.mount_label)?;
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        make_read_only(&root, Path::new(path))?;
    }
    if setup
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let attr = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        set_attr(root.as_fd(), attr, false).map_err(|source| RootfsError::ReadOnly {
            path: "/".into(),
            source,
        })?;
    }
    drop(root);
    if setup.in_host_namespace {
        let fail = |source: nix::Error| RootfsError::Pivot {
            path: rootfs.clone(),
            source: source.into(),
        };
        nix::unistd::chdir(&rootfs).map_err(fail)?;
        nix::unistd::chroot(".").map_err(fail)?;
        return nix::unistd::chdir("/").map_err(fail);
    }
    if setup.no_pivot {
        move_root(&rootfs)?;
    } else {
        pivot_root(&rootfs)?;
    }
    if let Some((flags, name)) = root_propagation_after_pivot(propagation) {
        remount_propagation(flags, name)?;
    }
    Ok(())
}

/// Whether a mount after `mounts[i]` is at, above or below its destination
/// (or cannot be told: a relative or `..` path).
fn nests_with_a_later_one(mounts: &[oci_spec::runtime::Mount], i: usize) -> bool {
    let plain =
        |p: &Path| p.is_absolute() && !p.components().any(|c| c == std::path::Component::ParentDir);
    let this = mounts[i].destination();
    !plain(this)
        || mounts[i + 1..]
            .iter()
            .map(|m| m.destination())
            .any(|later| !plain(later) || later.starts_with(this) || this.starts_with(later))
}

/// The container's user namespace mappings, when it has a user namespace
/// with both.
fn user_mappings(spec: &Spec) -> Option<(&[LinuxIdMapping], &[LinuxIdMapping])> {
    let linux = spec.linux().as_ref()?;
    let has_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User);
    let uid = linux.uid_mappings().as_deref().filter(|m| !m.is_empty())?;
    let gid = linux.gid_mappings().as_deref().filter(|m| !m.is_empty())?;
    has_userns.then_some((uid, gid))
}

/// Cut the container's mounts off from the host's before touching anything,
/// always recursively: a submount left shared would carry the container's
/// mounts out to the host. The requested propagation is given to the
/// container's `/` after pivot_root, which refuses shared parents, and an
/// unbindable `/` could not be bound to make the root in the first place.
fn make_root_private(propagation: Option<&str>) -> Result<(), RootfsError> {
    let (flags, name) = match propagation {
        None | Some("" | "private" | "rprivate" | "unbindable" | "runbindable") => {
            (MsFlags::MS_PRIVATE | MsFlags::MS_REC, "rprivate")
        }
        Some("slave" | "rslave" | "shared" | "rshared") => {
            (MsFlags::MS_SLAVE | MsFlags::MS_REC, "rslave")
        }
        Some(other) => return Err(RootfsError::UnknownPropagation(other.to_string())),
    };
    remount_propagation(flags, name)
}

/// What `/` still needs once it is the container's root: only the kinds
/// that setup had to put off.
fn root_propagation_after_pivot(propagation: Option<&str>) -> Option<(MsFlags, &'static str)> {
    Some(match propagation? {
        "shared" => (MsFlags::MS_SHARED, "shared"),
        "rshared" => (MsFlags::MS_SHARED | MsFlags::MS_REC, "rshared"),
        "unbindable" => (MsFlags::MS_UNBINDABLE, "unbindable"),
        "runbindable" => (MsFlags::MS_UNBINDABLE | MsFlags::MS_REC, "runbindable"),
        _ => return None,
    })
}

fn remount_propagation(flags: MsFlags, name: &'static str) -> Result<(), RootfsError> {
    nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).map_err(|source| {
        RootfsError::Propagation {
            propagation: name,
            source,
        }
    })
}

/// The host's /dev/null, checked to be the real null device, for masking
/// files. The container's own /dev/null is never used: it could be a symlink
/// to a procfs file that would then be mounted writable (CVE-2025-31133).
fn open_host_dev_null() -> Result<OwnedFd, RootfsError> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|_| RootfsError::BadDevNull)?;
    let stat = nix::sys::stat::fstat(&fd).map_err(|_| RootfsError::BadDevNull)?;
    let is_null = stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(stat.st_rdev) == 1
        && nix::sys::stat::minor(stat.st_rdev) == 3;
    if !is_null {
        return Err(RootfsError::BadDevNull);
    }
    Ok(fd)
}

fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let fail = |source: nix::Error| RootfsError::Pivot {
        path: rootfs.to_path_buf(),
        source: source.into(),
    };
    // A handle on the old root: after pivot_root(".", ".") it is stacked on
    // top of the new one, and a path lookup of "." from the new root's cwd
    // lands on the new root, not on it; only umount follows down the stack.
    let old_root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(fail)?;
    nix::unistd::chdir(rootfs).map_err(fail)?;
    nix::unistd::pivot_root(".", ".").map_err(fail)?;
    // Slave, so detaching it cannot unmount anything on the host.
    let slave = MountAttr {
        propagation: libc::MS_SLAVE,
        ..Default::default()
    };
    set_attr(old_root.as_fd(), slave, true).map_err(|source| RootfsError::Pivot {
        path: rootfs.to_path_buf(),
        source,
    })?;
    nix::unistd::fchdir(&old_root).map_err(fail)?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(fail)?;
    nix::unistd::chdir("/").map_err(fail)
}

/// `--no-pivot`: move the rootfs over / and chroot, for hosts (ramfs roots)
/// where pivot_root is refused. Weaker: the old root stays reachable to a
/// process with CAP_SYS_CHROOT.
fn move_root(rootfs: &Path) -> Result<(), RootfsError> {
    let fail = |source: nix::Error| RootfsError::Pivot {
        path: rootfs.to_path_buf(),
        source: source.into(),
    };
    nix::unistd::chdir(rootfs).map_err(fail)?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(fail)?;
    nix::unistd::chroot(".").map_err(fail)?;
    nix::unistd::chdir("/").map_err(fail)
}

fn is_missing(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

/// Hide `path`: a directory under an empty read-only tmpfs (with the
/// container's mount label, as runc gives it), anything else under /dev/null.
fn mask_path(
    root: &Root,
    path: &Path,
    dev_null: &OwnedFd,
    mount_label: Option<&str>,
) -> Result<(), RootfsError> {
    let fail = |source| RootfsError::Mask {
        path: path.to_path_buf(),
        source,
    };
    let target = match root.open_path(path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let stat = nix::sys::stat::fstat(&target).map_err(|e| fail(e.into()))?;
    let cover = if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let ctx = FsContext::open("tmpfs").map_err(fail)?;
        ctx.set_source("tmpfs").map_err(fail)?;
        mounts::set_mount_label(&ctx, "tmpfs", mount_label).map_err(fail)?;
        ctx.mount(
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC,
        )
        .map_err(fail)?
    } else {
        clone_tree(Some(dev_null.as_fd()), Path::new(""), false).map_err(fail)?
    };
    attach(cover.as_fd(), target.as_fd()).map_err(fail)
}

/// Bind `path` over itself, read-only all the way down.
fn make_read_only(root: &Root, path: &Path) -> Result<(), RootfsError> {
    let fail = |source| RootfsError::ReadOnly {
        path: path.to_path_buf(),
        source,
    };
    let target = match root.open_path(path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if is_missing(&e) => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let tree = clone_tree(Some(target.as_fd()), Path::new(""), true).map_err(fail)?;
    let attr = MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    set_attr(tree.as_fd(), attr, true).map_err(fail)?;
    attach(tree.as_fd(), target.as_fd()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::nests_with_a_later_one;
    use oci_spec::runtime::{Mount, MountBuilder};

    fn at(destinations: &[&str]) -> Vec<Mount> {
        destinations
            .iter()
            .map(|d| {
                MountBuilder::default()
                    .destination(*d)
                    .typ("tmpfs")
                    .build()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_mount_moves_last_only_when_no_later_one_is_above_at_or_below_it() {
        let runc_default = at(&["/proc", "/dev", "/sys", "/sys/fs/cgroup"]);
        assert!(!nests_with_a_later_one(&runc_default, 3), "the last mount");
        let cgroup_first = at(&["/sys/fs/cgroup", "/proc", "/dev/shm"]);
        assert!(!nests_with_a_later_one(&cgroup_first, 0));
        assert!(
            nests_with_a_later_one(&at(&["/sys/fs/cgroup", "/sys"]), 0),
            "a later mount above it would hide it"
        );
        assert!(
            nests_with_a_later_one(&at(&["/sys/fs/cgroup", "/sys/fs/cgroup"]), 0),
            "at it"
        );
        assert!(
            nests_with_a_later_one(&at(&["/sys/fs/cgroup", "/sys/fs/cgroup/x"]), 0),
            "below it"
        );
        assert!(
            !nests_with_a_later_one(&at(&["/sys/fs/cgroup", "/sys/fs/cgroupfoo"]), 0),
            "a sibling whose name starts the same"
        );
        assert!(
            nests_with_a_later_one(&at(&["/sys/fs/cgroup", "/x/../sys"]), 0),
            "a path that cannot be told"
        );
    }
}
