//! A private containerd whose shim is given runc's options (`Root`, `ShimCgroup`,
//! `SystemdCgroup`...): Berth's shim in the file its handler's `ConfigPath` names
//! (docs/containerd.md), the runc shim (RUNTIME=/usr/sbin/runc) in handler `runc`'s
//! `options` table; and what a pod that failed to start may have left.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Cri, NAMESPACE, PID_CONTAINER};
use crate::leftovers::processes_working_under;
use crate::{cgroups_named, wait_until, Output};

/// The options file's text: one `Key = value` line an option.
pub(super) fn file_text(options: &[(&str, String)]) -> String {
    options
        .iter()
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect()
}

/// The state root the options set, if any.
pub(super) fn root(options: &[(&str, String)]) -> Option<PathBuf> {
    options
        .iter()
        .find(|(key, _)| *key == "Root")
        .map(|(_, value)| PathBuf::from(value.trim_matches('"')))
}

impl Cri {
    /// Like `start_shim`, with runc's `options` (name, TOML value): in the options
    /// file of handler `berth-shim`, or, under another runtime, in the `options` table
    /// of handler `runc`.
    pub fn start_shim_with(options: &[(&str, String)]) -> Option<Cri> {
        Cri::start_with(true, options)
    }

    /// `crictl runp` of pod `name` under this suite's handler, which may fail; under
    /// `cgroup_parent` (a systemd slice, say) or else this containerd's own.
    pub fn runp(&self, name: &str, cgroup_parent: Option<&str>) -> Output {
        let parent = cgroup_parent.unwrap_or(&self.cgroup_parent);
        let config = self.pod_config_in(name, PID_CONTAINER, parent);
        self.crictl(&["runp", "--runtime", self.handler, &config.to_string_lossy()])
    }

    /// Container `id`'s state directory under state root `root`.
    pub fn state_dir_in(&self, root: &Path, id: &str) -> PathBuf {
        root.join(NAMESPACE).join(id)
    }

    /// The pids of this containerd's shims (`shims`).
    pub fn shim_pids(&self) -> Vec<i32> {
        pids_of(&self.shims())
    }

    /// The pids of the forkers of Berth's shims (`forkers`).
    pub fn forker_pids(&self) -> Vec<i32> {
        pids_of(&self.forkers())
    }

    /// What pods that failed to start left: sandboxes the CRI plugin lists, shims,
    /// bundles, state in any root, the CRI plugin's directories, cgroups under the
    /// pods' cgroup parent, processes and mounts under containerd's directories.
    pub fn leftovers_of_failed_pods(&self) -> Vec<String> {
        let mut found = Vec::new();
        let listed = self.crictl(&["pods", "-q"]);
        found.extend(
            listed
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|id| format!("pod {id}")),
        );
        wait_until(Duration::from_secs(5), || self.shims().is_empty());
        found.extend(self.shims());
        let mut dirs = vec![
            self.bundle(""),
            self.dir.join("state/io.containerd.grpc.v1.cri/sandboxes"),
            self.dir.join("root/io.containerd.grpc.v1.cri/sandboxes"),
        ];
        dirs.extend(self.roots.iter().map(|root| root.join(NAMESPACE)));
        let parent = self.cgroup_parent.trim_start_matches('/');
        dirs.extend(cgroups_named(parent));
        for dir in dirs {
            let entries = fs::read_dir(&dir).into_iter().flatten().flatten();
            found.extend(
                entries
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| format!("dir {}", e.path().display())),
            );
        }
        found.extend(self.leftovers(&[]));
        found.extend(processes_working_under(&self.dir.join("state")));
        found
    }
}

/// The pids of `processes` ("process PID (...)" lines).
fn pids_of(processes: &[String]) -> Vec<i32> {
    processes
        .iter()
        .filter_map(|p| p.strip_prefix("process ")?.split(' ').next()?.parse().ok())
        .collect()
}
