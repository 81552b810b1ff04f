//! The mount points a restore needs in the rootfs. CRIU mounts the dumped
//! mount table onto the rootfs it is given, but it does not make the
//! directories (or files) those mounts land on: where the rootfs is new
//! (containerd restores onto a fresh snapshot of the image, without the
//! `/out` that `create` made for a bind), CRIU fails with "Can't stat
//! mountpoint". runc makes them before calling CRIU; so does Berth, through
//! the in-root resolution `create` uses, so a hostile rootfs cannot send a
//! mount point outside itself.

use super::CheckpointError;
use crate::isolation::rootfs::is_bind;
use crate::isolation::rootfs::{Root, TargetKind};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_bind_targets_by_kind_and_skips_what_a_tmpfs_covers() {
        let dir = std::env::temp_dir().join(format!("berth-mountpoints-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (bundle, rootfs) = (dir.join("bundle"), dir.join("rootfs"));
        std::fs::create_dir_all(bundle.join("shared")).unwrap();
        std::fs::write(bundle.join("file"), "x").unwrap();
        std::fs::create_dir_all(&rootfs).unwrap();
        // A symlink in the rootfs pointing out of it stays inside.
        std::os::unix::fs::symlink(&dir, rootfs.join("escape")).unwrap();
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/out", "type": "bind", "source": "shared", "options": ["rbind"]},
                {"destination": "/etc/f", "source": "file", "options": ["bind"]},
                {"destination": "/escape/made", "type": "bind", "source": "shared", "options": ["rbind"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
                {"destination": "/proc", "type": "proc", "source": "proc"}
            ]
        }))
        .unwrap();
        make(&spec, &bundle, &rootfs).unwrap();
        assert!(rootfs.join("out").is_dir());
        assert!(rootfs.join("etc/f").is_file());
        assert!(rootfs.join("proc").is_dir());
        assert!(rootfs.join("dev").is_dir());
        assert!(!rootfs.join("dev/shm").exists(), "made under a tmpfs");
        assert!(
            !dir.join("made").exists(),
            "followed a symlink out of the rootfs"
        );
        assert!(dir
            .join("rootfs")
            .join(dir.strip_prefix("/").unwrap())
            .join("made")
            .is_dir());

        let missing: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "mounts": [{"destination": "/gone", "type": "bind", "source": "nothing"}]
        }))
        .unwrap();
        let err = make(&missing, &bundle, &rootfs).unwrap_err().to_string();
        assert!(err.contains("stat the bind source"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
