//! The mount points a restore needs in the rootfs. CRIU mounts the dumped
//! mount table onto the rootfs it is given, but it does not make the
//! directories (or files) those mounts land on: where the rootfs is new
//! (containerd restores onto a fresh snapshot of the image, without the
//! `/out` that `create` made for a bind), CRIU fails with "Can't stat
//! mountpoint". runc makes them before calling CRIU; so does Berth, through
//! the in-root resolution `create` uses, so a hostile rootfs cannot send a
//! mount point outside itself.

use super::CheckpointError;
use crate::rootfs::{Root, TargetKind};
use oci_spec::runtime::{Mount, Spec};
use std::path::{Path, PathBuf};

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

/// Makes, inside `rootfs`, every missing mount point of the config's mounts,
/// except those under a tmpfs the config mounts (CRIU restores a tmpfs
/// with its contents, mount points included). A bind of a file gets a file,
/// anything else a directory, as at `create`.
pub(super) fn make(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<(), CheckpointError> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let tmpfs: Vec<&Path> = mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("tmpfs") && !is_bind(m))
        .map(|m| m.destination().as_path())
        .collect();
    let root = Root::open(rootfs).map_err(|source| CheckpointError::Dir {
        what: "open the rootfs",
        path: rootfs.to_path_buf(),
        source,
    })?;
    for m in mounts {
        let dest = m.destination();
        if tmpfs.iter().any(|t| dest != *t && dest.starts_with(t)) {
            continue;
        }
        let kind = match (is_bind(m), m.source()) {
            (true, Some(source)) => {
                let source: PathBuf = bundle.join(source);
                let meta = std::fs::metadata(&source).map_err(|e| CheckpointError::Dir {
                    what: "stat the bind source",
                    path: source.clone(),
                    source: e,
                })?;
                if meta.is_dir() {
                    TargetKind::Directory
                } else {
                    TargetKind::File
                }
            }
            _ => TargetKind::Directory,
        };
        root.ensure(dest, kind)
            .map_err(|source| CheckpointError::Dir {
                what: "make the mount point",
                path: rootfs.join(dest.strip_prefix("/").unwrap_or(dest)),
                source,
            })?;
    }
    Ok(())
}
