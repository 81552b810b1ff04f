//! Other cgroup layouts than the host's, for the runtime under test to see:
//! a mount namespace of their own, kept alive by a bind mount of its nsfs
//! file, in which /sys/fs/cgroup is rearranged. The hierarchies are the
//! host's (a mount namespace cannot make new ones), so a pure v2 layout
//! has only the controllers that no v1 hierarchy holds.
//!
//! Every command of a `Runtime` made with `Runtime::in_layout` runs through
//! `nsenter --mount=<that file>`, so create, start and delete all see it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{scratch_dir, unique_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// v1 controllers only: the hybrid host's cgroup2 mount taken away.
    V1,
    /// One cgroup2 hierarchy at /sys/fs/cgroup, as on a unified host.
    V2,
}

/// A mount namespace with a cgroup layout; removed on drop.
pub struct LayoutNamespace {
    dir: PathBuf,
    file: PathBuf,
}

impl LayoutNamespace {
    /// Makes the namespace (panicking on a step that fails), or `None` where
    /// the host cannot show `layout`: a v1 layout needs v1 hierarchies.
    pub fn new(layout: CgroupLayout) -> Option<LayoutNamespace> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
        if layout == CgroupLayout::V1 && !mountinfo.lines().any(|l| l.contains(" - cgroup ")) {
            return None;
        }
        let dir = scratch_dir().join(format!("{}.mntns", unique_name()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let file = dir.join("mnt");
        fs::write(&file, "").unwrap_or_else(|e| panic!("create {}: {e}", file.display()));
        // unshare(1) can only keep a namespace on a mount that is not shared.
        let dir_str = dir.to_str().expect("scratch paths are UTF-8");
        sh(&format!(
            "mount --bind {dir_str} {dir_str} && mount --make-private {dir_str}"
        ));
        let ns = LayoutNamespace { dir, file };
        let setup = match layout {
            CgroupLayout::V1 => {
                "! mountpoint -q /sys/fs/cgroup/unified || umount /sys/fs/cgroup/unified"
            }
            CgroupLayout::V2 => {
                "umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup"
            }
        };
        let file_str = ns.file.to_str().expect("scratch paths are UTF-8");
        sh(&format!(
            "unshare --mount={file_str} --propagation private sh -c '{setup}'"
        ));
        Some(ns)
    }

    /// The nsfs file that holds the namespace.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `program args...` run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--mount={}", self.file.display()))
            .arg("--")
            .arg(program);
        command
    }

    /// The namespace's mount table, as /proc/self/mountinfo inside it shows it.
    pub fn mountinfo(&self) -> String {
        let out = self
            .command(Path::new("cat"))
            .arg("/proc/self/mountinfo")
            .output()
            .expect("run nsenter");
        assert!(
            out.status.success(),
            "nsenter cat: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Where the host mounts its cgroup2 hierarchy, if it does.
pub fn host_cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
}

impl Drop for LayoutNamespace {
    fn drop(&mut self) {
        for target in [&self.file, &self.dir] {
            let _ = Command::new("umount").arg(target).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sh(script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
