//! The mounts of config.json: option parsing and one mount at a time.

use super::copy_up;
use super::idmap::{self, IdMap};
use super::inroot::{Root, TargetKind};
use super::RootfsError;
use crate::sys::mount_api::{self, FsContext, MountAttr};
use oci_spec::runtime::{LinuxIdMapping, Mount};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A mount's options, sorted into what the kernel takes where.
#[derive(Debug, Default, PartialEq)]
pub struct MountOptions {
    /// Per-mount attributes for this mount only.
    pub attr: MountAttr,
    /// `r`-prefixed attributes (`rro`, `rnosuid`, ...), applied to the whole tree.
    pub recursive_attr: MountAttr,
    /// `MS_PRIVATE`/`MS_SHARED`/... and whether it is the recursive form.
    pub propagation: Option<(u64, bool)>,
    /// `Some(recursive)` for `bind`/`rbind`.
    pub bind: Option<bool>,
    /// `Some(recursive)` for `idmap`/`ridmap`.
    pub idmap: Option<bool>,
    /// `tmpcopyup`: a tmpfs starts with a copy of what the rootfs holds at its destination.
    pub copy_up: bool,
    /// Superblock flags and filesystem data (`mode=755`, `newinstance`, `sync`).
    pub fs_options: Vec<String>,
}

fn atime(value: u64) -> MountAttr {
    MountAttr {
        set: value,
        clear: libc::MOUNT_ATTR__ATIME,
        propagation: 0,
    }
}

fn flag(set: u64) -> MountAttr {
    MountAttr {
        set,
        clear: 0,
        propagation: 0,
    }
}

fn unflag(clear: u64) -> MountAttr {
    MountAttr {
        set: 0,
        clear,
        propagation: 0,
    }
}

/// The per-mount attribute an option names, if it is one (without an `r` prefix).
fn attr_option(name: &str) -> Option<MountAttr> {
    Some(match name {
        "ro" => flag(libc::MOUNT_ATTR_RDONLY),
        "rw" => unflag(libc::MOUNT_ATTR_RDONLY),
        "nosuid" => flag(libc::MOUNT_ATTR_NOSUID),
        "suid" => unflag(libc::MOUNT_ATTR_NOSUID),
        "nodev" => flag(libc::MOUNT_ATTR_NODEV),
        "dev" => unflag(libc::MOUNT_ATTR_NODEV),
        "noexec" => flag(libc::MOUNT_ATTR_NOEXEC),
        "exec" => unflag(libc::MOUNT_ATTR_NOEXEC),
        "noatime" => atime(libc::MOUNT_ATTR_NOATIME),
        "relatime" | "atime" | "nostrictatime" => atime(libc::MOUNT_ATTR_RELATIME),
        "strictatime" | "norelatime" => atime(libc::MOUNT_ATTR_STRICTATIME),
        "nodiratime" => flag(libc::MOUNT_ATTR_NODIRATIME),
        "diratime" => unflag(libc::MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => flag(libc::MOUNT_ATTR_NOSYMFOLLOW),
        "symfollow" => unflag(libc::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

fn merge(into: &mut MountAttr, attr: MountAttr) {
    into.set = (into.set & !attr.clear) | attr.set;
    into.clear = (into.clear & !attr.set) | attr.clear;
}

fn propagation_option(name: &str) -> Option<(u64, bool)> {
    let (flag, recursive) = match name {
        "private" => (libc::MS_PRIVATE, false),
        "rprivate" => (libc::MS_PRIVATE, true),
        "shared" => (libc::MS_SHARED, false),
        "rshared" => (libc::MS_SHARED, true),
        "slave" => (libc::MS_SLAVE, false),
        "rslave" => (libc::MS_SLAVE, true),
        "unbindable" => (libc::MS_UNBINDABLE, false),
        "runbindable" => (libc::MS_UNBINDABLE, true),
        _ => return None,
    };
    Some((flag, recursive))
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions, RootfsError> {
        let mut parsed = MountOptions::default();
        for option in options {
            let name = option.as_str();
            if let Some(attr) = attr_option(name) {
                merge(&mut parsed.attr, attr);
            } else if let Some(attr) = name.strip_prefix('r').and_then(attr_option) {
                merge(&mut parsed.recursive_attr, attr);
            } else if let Some(p) = propagation_option(name) {
                parsed.propagation = Some(p);
            } else {
                match name {
                    "bind" => parsed.bind = Some(parsed.bind.unwrap_or(false)),
                    "rbind" => parsed.bind = Some(true),
                    // mount(8) words with no effect on a fresh mount.
                    "defaults" | "async" | "nomand" | "remount" | "loud" => {}
                    "sync" | "dirsync" | "mand" | "lazytime" => {
                        parsed.fs_options.push(option.clone())
                    }
                    "idmap" => parsed.idmap = Some(parsed.idmap.unwrap_or(false)),
                    "ridmap" => parsed.idmap = Some(true),
                    "tmpcopyup" => parsed.copy_up = true,
                    _ => parsed.fs_options.push(option.clone()),
                }
            }
        }
        Ok(parsed)
    }
}

/// What the `cgroup` mount type binds: each hierarchy's name and the container's directory in it.
pub type CgroupBinds = [(String, PathBuf)];

/// What mounts need from outside the mount entry itself.
pub struct MountEnv<'a> {
    /// Relative bind sources are relative to the bundle.
    pub bundle: &'a Path,
    pub cgroups: &'a CgroupBinds,
    /// Entered before the container's cgroup directories are bound: they may still be in the making.
    pub late_cgroup: Option<&'a crate::cgroups::LateEntry<'a>>,
    /// The container's own user namespace mappings (uid, gid), for an
    /// `idmap` mount that states none of its own.
    pub user_mappings: Option<(&'a [LinuxIdMapping], &'a [LinuxIdMapping])>,
    /// The pid namespace a `proc` mount shows (procfs's `pidns=`), when the
    /// init sets up outside the one it joins (docs/security.md).
    pub proc_pid_namespace: Option<BorrowedFd<'a>>,
    /// `linux.mountLabel` where the host has SELinux (isolation/lsm.rs), else `None`.
    pub mount_label: Option<&'a str>,
}

impl MountEnv<'_> {
    fn enter_late_cgroup(&self) -> Result<(), RootfsError> {
        match self.late_cgroup {
            Some(late) => Ok(late.enter()?),
            None => Ok(()),
        }
    }
}

/// An idmapped bind's tree, cloned and idmapped but not attached; `None`
/// for every other mount. Made by the runtime before the init exists:
/// idmapping a host filesystem needs CAP_SYS_ADMIN in the host's user
/// namespace, which an init in a user namespace of its own lacks.
pub fn idmapped_tree(mount: &Mount, env: &MountEnv) -> Result<Option<OwnedFd>, RootfsError> {
    let options = MountOptions::parse(mount.options().as_deref().unwrap_or_default())?;
    let is_bind = options.bind.is_some() || mount.typ().as_deref() == Some("bind");
    if !is_bind || id_map(mount, &options, env).is_none() {
        return Ok(None);
    }
    let source = bind_source(mount, env.bundle)?;
    bind_tree(mount, &source, &options, env).map(Some)
}

/// A detached clone of a bind's `source`, idmapped if the mount asks for it.
fn bind_tree(
    mount: &Mount,
    source: &Path,
    options: &MountOptions,
    env: &MountEnv,
) -> Result<OwnedFd, RootfsError> {
    let tree = mount_api::clone_tree(None, source, options.bind.unwrap_or(false)).map_err(|e| {
        RootfsError::BindSource {
            source_path: source.to_path_buf(),
            source: e,
        }
    })?;
    if let Some(map) = id_map(mount, options, env) {
        idmap::apply(tree.as_fd(), &map).map_err(mount_failed(mount.destination(), "idmap"))?;
    }
    Ok(tree)
}

/// Mount one entry of `mounts` inside `root`; `premade` is its tree from
/// `idmapped_tree`, if it has one.
/// A `cgroup` mount that binds the container's own cgroup (not a bind of some path).
pub fn is_cgroup_tree(mount: &Mount) -> bool {
    mount.typ().as_deref() == Some("cgroup")
        && MountOptions::parse(mount.options().as_deref().unwrap_or_default())
            .is_ok_and(|o| o.bind.is_none())
}

pub fn mount_one(
    root: &Root,
    mount: &Mount,
    env: &MountEnv,
    premade: Option<&OwnedFd>,
) -> Result<(), RootfsError> {
    let destination = mount.destination();
    let fail = |op| mount_failed(destination, op);
    let mut options = MountOptions::parse(mount.options().as_deref().unwrap_or_default())?;
    let fstype = mount.typ().as_deref().unwrap_or("");

    let is_bind = options.bind.is_some() || fstype == "bind";
    if options.copy_up && (is_bind || fstype != "tmpfs") {
        return Err(RootfsError::CopyUpNotTmpfs {
            destination: destination.clone(),
            fstype: if is_bind { "bind" } else { fstype }.to_string(),
        });
    }
    if fstype == "cgroup" && options.bind.is_none() {
        env.enter_late_cgroup()?;
        return mount_cgroup_tree(root, mount, &options, env);
    }

    let (detached, target) = if is_bind {
        let source = bind_source(mount, env.bundle)?;
        let meta = std::fs::metadata(&source).map_err(|e| RootfsError::BindSource {
            source_path: source.clone(),
            source: e,
        })?;
        let kind = if meta.is_dir() {
            TargetKind::Directory
        } else {
            TargetKind::File
        };
        let tree = match premade {
            Some(tree) => tree.try_clone().map_err(|e| RootfsError::BindSource {
                source_path: source.clone(),
                source: e,
            })?,
            None => bind_tree(mount, &source, &options, env)?,
        };
        mount_api::set_attr(tree.as_fd(), options.attr, false).map_err(|e| {
            mount_failed(destination, mount_api::set_attr_failure(options.attr, &e))(e)
        })?;
        let target = root
            .ensure(destination, kind)
            .map_err(fail("create the target of"))?;
        (tree, target)
    } else {
        if fstype == "tmpfs" {
            inherit_directory_mode(root, destination, &mut options)?;
        }
        let detached = match new_filesystem(mount, fstype, &options, env) {
            // A user namespace may mount sysfs only with a network namespace
            // of its own; crun then binds the host's /sys, and so do we.
            Err((_, e)) if fstype == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
                let tree = mount_api::clone_tree(None, Path::new("/sys"), true)
                    .map_err(fail("bind /sys for"))?;
                // Recursively: the host's submounts (its cgroup trees) get `ro` too.
                mount_api::set_attr(tree.as_fd(), options.attr, true)
                    .map_err(fail("set attributes of"))?;
                tree
            }
            result => result.map_err(|(op, e)| mount_failed(destination, op)(e))?,
        };
        // mqueue takes no `context=`: its root directory gets the label.
        if let Some(label) = env.mount_label.filter(|_| fstype == "mqueue") {
            crate::isolation::lsm::label_file(detached.as_fd(), label)
                .map_err(fail("set the SELinux mount label (linux.mountLabel) of"))?;
        }
        let target = if matches!(fstype, "proc" | "sysfs") {
            // A procfs or sysfs must land on a real directory, never through a
            // symlink planted in the rootfs (CVE-2019-19921).
            let fd = root
                .ensure(destination, TargetKind::Directory)
                .map_err(fail("create the target of"))?;
            require_real_directory(root, destination)?;
            fd
        } else {
            root.ensure(destination, TargetKind::Directory)
                .map_err(fail("create the target of"))?
        };
        if options.copy_up {
            // The copy's tmpfs pages are charged to the memory cgroup of
            // whoever writes them, for as long as they live: the container's.
            env.enter_late_cgroup()?;
            fill_from_rootfs(detached.as_fd(), target.as_fd(), &options, destination)?;
        }
        (detached, target)
    };
    mount_api::set_attr(detached.as_fd(), options.recursive_attr, true)
        .map_err(fail("set recursive attributes of"))?;
    mount_api::attach(detached.as_fd(), target.as_fd()).map_err(fail("attach"))?;
    apply_propagation(detached.as_fd(), options.propagation).map_err(fail("set propagation of"))
}

/// A new, detached filesystem for a mount that is not a bind; on failure,
/// the step that failed.
fn new_filesystem(
    mount: &Mount,
    fstype: &str,
    options: &MountOptions,
    env: &MountEnv,
) -> Result<OwnedFd, (&'static str, std::io::Error)> {
    let ctx = FsContext::open(fstype).map_err(|e| ("open the filesystem for", e))?;
    if let Some(pid_namespace) = env.proc_pid_namespace.filter(|_| fstype == "proc") {
        ctx.set_fd("pidns", pid_namespace)
            .map_err(|e| ("show the joined pid namespace (pidns=, Linux 6.18) in", e))?;
    }
    let source = mount
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| fstype.to_string());
    ctx.set_source(&source)
        .map_err(|e| ("set the source of", e))?;
    for option in &options.fs_options {
        ctx.set_option(option).map_err(|e| ("set options of", e))?;
    }
    set_mount_label(&ctx, fstype, env.mount_label)
        .map_err(|e| ("set the SELinux mount label (linux.mountLabel) of", e))?;
    // mount(8)'s `ro` on a new filesystem makes the superblock read-only
    // too, not just this mount: nothing can write to it through any view.
    // A tmpfs to copy into is made read-only once filled (fill_from_rootfs).
    let read_only = options.attr.set & libc::MOUNT_ATTR_RDONLY != 0;
    if read_only && !options.copy_up {
        ctx.set_option("ro").map_err(|e| ("set options of", e))?;
    }
    let mut attr = options.attr.set;
    if options.copy_up {
        attr &= !libc::MOUNT_ATTR_RDONLY;
    }
    ctx.mount(attr).map_err(|e| ("create", e))
}

/// A tmpfs over a directory of the rootfs takes that directory's mode
/// unless its options give `mode=`, as runc and crun do: a tmpfs at /run
/// stays 0755 rather than tmpfs's default 1777. The owner is not taken.
fn inherit_directory_mode(
    root: &Root,
    destination: &Path,
    options: &mut MountOptions,
) -> Result<(), RootfsError> {
    if options.fs_options.iter().any(|o| o.starts_with("mode=")) {
        return Ok(());
    }
    let target = match root.open_path(destination, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(mount_failed(destination, "open the target of")(e)),
    };
    let stat = nix::sys::stat::fstat(&target)
        .map_err(|e| mount_failed(destination, "inspect the target of")(e.into()))?;
    if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let mode = format!("mode={:o}", stat.st_mode & 0o7777);
        options.fs_options.insert(0, mode);
    }
    Ok(())
}

/// `tmpcopyup`: copy what the rootfs holds at the mount's target (the
/// directory `target`, resolved in-root) into the detached tmpfs, before it
/// is attached over it; then make it read-only if the mount is `ro`. A
/// target that is no directory has nothing to copy (and the attach fails).
fn fill_from_rootfs(
    tmpfs: BorrowedFd,
    target: BorrowedFd,
    options: &MountOptions,
    destination: &Path,
) -> Result<(), RootfsError> {
    let is_dir = nix::sys::stat::fstat(target)
        .map_err(|e| mount_failed(destination, "inspect the target of")(e.into()))?
        .st_mode
        & libc::S_IFMT
        == libc::S_IFDIR;
    if is_dir {
        copy_up::copy_tree(target, tmpfs).map_err(|source| RootfsError::CopyUp {
            destination: destination.to_path_buf(),
            source,
        })?;
    }
    if options.attr.set & libc::MOUNT_ATTR_RDONLY != 0 {
        let fail = mount_failed(destination, "make read-only");
        mount_api::make_superblock_read_only(tmpfs).map_err(fail)?;
        let read_only = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mount_api::set_attr(tmpfs, read_only, false)
            .map_err(mount_failed(destination, "make read-only"))?;
    }
    Ok(())
}

/// Put `linux.mountLabel` (where the host has SELinux) on a new filesystem
/// of type `fstype` that takes one (isolation/lsm.rs).
pub fn set_mount_label(ctx: &FsContext, fstype: &str, label: Option<&str>) -> std::io::Result<()> {
    match label.and_then(|label| crate::isolation::lsm::mount_context_option(fstype, label)) {
        Some(context) => ctx.set_option(&context),
        None => Ok(()),
    }
}

/// The mapping of an idmapped bind: its own uidMappings/gidMappings (which
/// imply `idmap` when the option is missing), else the container's with
/// `idmap`/`ridmap`. Validation has refused every other combination.
fn id_map<'a>(mount: &'a Mount, options: &MountOptions, env: &MountEnv<'a>) -> Option<IdMap<'a>> {
    let own = mount
        .uid_mappings()
        .as_deref()
        .zip(mount.gid_mappings().as_deref())
        .filter(|(u, g)| !u.is_empty() && !g.is_empty());
    let (uid, gid) = match own {
        Some(maps) => maps,
        None if options.idmap.is_some() => env.user_mappings?,
        None => return None,
    };
    Some(IdMap {
        uid,
        gid,
        recursive: options.idmap.unwrap_or(false),
    })
}

/// The error for step `op` of mounting at `destination`.
fn mount_failed<'a>(
    destination: &'a Path,
    op: &'static str,
) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Mount {
        destination: destination.to_path_buf(),
        op,
        source,
    }
}

fn apply_propagation(mount: BorrowedFd, propagation: Option<(u64, bool)>) -> std::io::Result<()> {
    match propagation {
        Some((flag, recursive)) => mount_api::set_attr(
            mount,
            MountAttr {
                propagation: flag,
                ..Default::default()
            },
            recursive,
        ),
        None => Ok(()),
    }
}

fn bind_source(mount: &Mount, bundle: &Path) -> Result<PathBuf, RootfsError> {
    let source = mount
        .source()
        .as_ref()
        .ok_or_else(|| RootfsError::MissingSource(mount.destination().clone()))?;
    Ok(if source.is_absolute() {
        source.clone()
    } else {
        bundle.join(source)
    })
}

fn require_real_directory(root: &Root, destination: &Path) -> Result<(), RootfsError> {
    let fd = root
        .open_path(destination, libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(mount_failed(destination, "open the target of"))?;
    let stat = nix::sys::stat::fstat(&fd)
        .map_err(|e| mount_failed(destination, "inspect the target of")(e.into()))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(RootfsError::TargetNotDirectory(destination.to_path_buf()));
    }
    Ok(())
}

/// The `cgroup` mount type on a v1 or hybrid host: a tmpfs with one read-only
/// bind per hierarchy of the container's own cgroup, as runc lays it out.
/// On a pure v2 host the single directory is bound in place.
fn mount_cgroup_tree(
    root: &Root,
    mount: &Mount,
    options: &MountOptions,
    env: &MountEnv,
) -> Result<(), RootfsError> {
    let cgroups = env.cgroups;
    let destination = mount.destination();
    let fail = |op| mount_failed(destination, op);
    let read_only = MountAttr {
        set: options.attr.set & libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    let per_mount = MountAttr {
        set: options.attr.set
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | libc::MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    if let [(name, dir)] = cgroups {
        if name.is_empty() {
            let tree =
                mount_api::clone_tree(None, dir, false).map_err(fail("bind the cgroup of"))?;
            mount_api::set_attr(tree.as_fd(), per_mount, false)
                .map_err(fail("set attributes of"))?;
            let target = root
                .ensure(destination, TargetKind::Directory)
                .map_err(fail("create the target of"))?;
            return mount_api::attach(tree.as_fd(), target.as_fd()).map_err(fail("attach"));
        }
    }
    let ctx = FsContext::open("tmpfs").map_err(fail("open the filesystem for"))?;
    ctx.set_source("tmpfs").map_err(fail("set the source of"))?;
    ctx.set_option("mode=755").map_err(fail("set options of"))?;
    set_mount_label(&ctx, "tmpfs", env.mount_label)
        .map_err(fail("set the SELinux mount label (linux.mountLabel) of"))?;
    let tmpfs = ctx
        .mount(libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC)
        .map_err(fail("create"))?;
    let target = root
        .ensure(destination, TargetKind::Directory)
        .map_err(fail("create the target of"))?;
    mount_api::attach(tmpfs.as_fd(), target.as_fd()).map_err(fail("attach"))?;
    for (name, dir) in cgroups {
        let sub = destination.join(name);
        let sub_fd = root
            .ensure(&sub, TargetKind::Directory)
            .map_err(fail("create a hierarchy directory in"))?;
        let tree =
            mount_api::clone_tree(None, dir, false).map_err(fail("bind a hierarchy into"))?;
        mount_api::set_attr(tree.as_fd(), per_mount, false).map_err(fail("set attributes of"))?;
        mount_api::attach(tree.as_fd(), sub_fd.as_fd()).map_err(fail("attach a hierarchy into"))?;
    }
    mount_api::set_attr(tmpfs.as_fd(), read_only, false).map_err(fail("make read-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_sort_into_attributes_and_data() {
        let o = parse(&["nosuid", "noexec", "mode=755", "size=65536k", "ro"]);
        assert_eq!(
            o.attr.set,
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC | libc::MOUNT_ATTR_RDONLY
        );
        assert_eq!(o.fs_options, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.bind, None);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = parse(&["ro", "rw"]);
        assert_eq!(o.attr.set & libc::MOUNT_ATTR_RDONLY, 0);
        assert_eq!(
            o.attr.clear & libc::MOUNT_ATTR_RDONLY,
            libc::MOUNT_ATTR_RDONLY
        );
    }

    #[test]
    fn recursive_and_propagation_options() {
        let o = parse(&["rbind", "rro", "rnosuid", "rslave"]);
        assert_eq!(o.bind, Some(true));
        assert_eq!(
            o.recursive_attr.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID
        );
        assert_eq!(o.propagation, Some((libc::MS_SLAVE, true)));
    }

    #[test]
    fn atime_options_replace_each_other() {
        let o = parse(&["noatime", "strictatime"]);
        assert_eq!(
            o.attr.set & libc::MOUNT_ATTR__ATIME,
            libc::MOUNT_ATTR_STRICTATIME
        );
        assert_eq!(o.attr.clear, libc::MOUNT_ATTR__ATIME);
    }

    #[test]
    fn idmap_options_are_recognised() {
        assert_eq!(parse(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(parse(&["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(parse(&["ridmap", "idmap"]).idmap, Some(true));
        assert_eq!(parse(&["rbind"]).idmap, None);
        assert!(
            parse(&["idmap"]).fs_options.is_empty(),
            "idmap is not for the filesystem"
        );
    }

    #[test]
    fn tmpcopyup_is_recognised_and_not_for_the_filesystem() {
        let o = parse(&["nosuid", "tmpcopyup", "mode=755"]);
        assert!(o.copy_up);
        assert_eq!(o.fs_options, vec!["mode=755"]);
        assert!(!parse(&["nosuid"]).copy_up);
    }
}
