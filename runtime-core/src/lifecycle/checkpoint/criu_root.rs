//! The rootfs bind a restore makes in the state directory for CRIU to work
//! in, and its removal (by the restore's undo, and by `delete` of what a
//! killed restore left).

use nix::mount::{umount2, MntFlags};
use std::path::{Path, PathBuf};

/// The directory, inside the state directory, where the rootfs is bound for CRIU.
pub(crate) const CRIU_ROOT: &str = "criu-root";

pub(crate) fn unbind(root: Option<PathBuf>) {
    if let Some(root) = root {
        let _ = umount2(&root, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
        let _ = std::fs::remove_dir(&root);
    }
}

/// The rootfs bind a restore killed midway left in state directory `dir`,
/// for `delete` of a directory without state.json.
pub(crate) fn unbind_left_behind(dir: &Path) {
    let root = dir.join(CRIU_ROOT);
    if root.is_dir() {
        unbind(Some(root));
    }
}
