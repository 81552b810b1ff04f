//! runc's option `ShimCgroup`: the cgroup the shim itself runs in, so that
//! a node can account and limit its shims apart from containerd (the
//! kubelet's `--runtime-cgroups`, a `system.slice` unit of the node's). The
//! shim moves itself and its forker (whose workers and loggers are forked
//! from them) there at its first create: the options come with the create.
//!
//! The path is relative to each hierarchy's root, as the runc shim takes
//! it: every v1 hierarchy, or a v2 host's one tree (a hybrid host's
//! controller-less `unified` tree only where the path exists in it). It
//! must exist in each (the shim makes no cgroup, so it leaves none), and is
//! opened beneath the hierarchy's mount with `openat2`, following no link:
//! a path cannot lead out of the cgroup filesystem. Every directory is
//! opened before any process moves, so that an error moves none.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// Moves the processes `pids` (the shim's and its forker's) to cgroup
/// `path` of every hierarchy.
pub fn join(path: &str, pids: &[u32]) -> Result<(), String> {
    let named = format!("ShimCgroup {path:?}");
    let relative = relative(path).ok_or_else(|| {
        format!("{named}: a cgroup path relative to the hierarchies' roots, without '..'")
    })?;
    let hierarchies = berth::hierarchy::hierarchies().map_err(|e| format!("{named}: {e}"))?;
    let hybrid = hierarchies.iter().any(|h| !h.v2);
    let mut procs = Vec::new();
    for hierarchy in &hierarchies {
        let dir = hierarchy.mountpoint.join(&relative);
        match open_procs(&hierarchy.mountpoint, &relative) {
            Ok(file) => procs.push((dir, file)),
            Err(e) if hybrid && hierarchy.v2 && e == nix::errno::Errno::ENOENT => {}
            Err(nix::errno::Errno::ENOENT) => {
                return Err(format!("{named}: {} does not exist", dir.display()))
            }
            Err(nix::errno::Errno::ELOOP | nix::errno::Errno::EXDEV) => {
                return Err(format!(
                    "{named}: {} is reached through a link, which the shim does not follow",
                    dir.display()
                ))
            }
            Err(e) => return Err(format!("{named}: open {}/cgroup.procs: {e}", dir.display())),
        }
    }
    for (dir, file) in procs {
        let mut file = std::fs::File::from(file);
        for pid in pids {
            match file.write_all(pid.to_string().as_bytes()) {
                // A forker that died meanwhile: the next is forked from the
                // moved shim.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                // The kernel's word for a v1 cpuset cgroup without cpus or mems.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    return Err(format!(
                    "{named}: move pid {pid} to {}: {e} (its cpuset.cpus or cpuset.mems is empty)",
                    dir.display()
                ))
                }
                Err(e) => return Err(format!("{named}: move pid {pid} to {}: {e}", dir.display())),
                Ok(()) => {}
            }
        }
    }
    Ok(())
}

/// `path` without its leading '/', or `None` when it has a '..' (or is
/// not a plain path).
fn relative(path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => relative.push(name),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(relative)
}

/// `cgroup.procs` of `relative` under `mountpoint`, for writing: nothing on
/// the way may be a link or leave the mount.
fn open_procs(mountpoint: &Path, relative: &Path) -> nix::Result<OwnedFd> {
    let beneath = ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
        | ResolveFlag::RESOLVE_NO_XDEV;
    let root = nix::fcntl::open(
        mountpoint,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let file = relative.join("cgroup.procs");
    let how = OpenHow::new()
        .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC)
        .resolve(beneath);
    openat2(&root, &file, how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_relative_to_the_roots_and_never_climbs() {
        assert_eq!(relative("/a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative("a/./b/"), Some(PathBuf::from("a/b")));
        assert_eq!(relative("/"), Some(PathBuf::new()));
        assert_eq!(relative("/a/../../etc"), None);
        let error = join("/a/../..", &[]).unwrap_err();
        assert!(error.contains("without '..'"), "{error}");
    }

    #[test]
    fn a_missing_cgroup_is_an_error_naming_it() {
        let path = format!("/berth-shim-test-missing-{}", std::process::id());
        let error = join(&path, &[]).unwrap_err();
        assert!(
            error.starts_with(&format!("ShimCgroup {path:?}: /sys/fs/cgroup/")),
            "{error}"
        );
        assert!(error.ends_with("does not exist"), "{error}");
    }
}
