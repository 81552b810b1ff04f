//! What a container may leave behind on the host, and the check that it left none.
//!
//! The spec requires a failed operation to leave no trace (runtime.md, "Lifecycle" and
//! "Errors"), and `delete` to remove every resource created by `create`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::pid_alive;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// `/sys/fs/cgroup/<controller>/a/b/<id>`: runc nests a container's cgroup under the
/// caller's cgroup for some controllers (e.g. memory under a sandbox's own group).
const CGROUP_SEARCH_DEPTH: usize = 4;

/// Panics, listing everything found, if container `id` of runtime root `root` left a
/// state dir, a mount, a cgroup or a process behind.
pub fn assert_nothing_left(root: &Path, id: &str, bundle: &Path) {
    let found = leftovers(root, id, bundle);
    assert!(
        found.is_empty(),
        "container {id} left things behind:\n  {}",
        found.join("\n  ")
    );
}

/// Everything container `id` left behind, one description each.
pub fn leftovers(root: &Path, id: &str, bundle: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let state_dir = root.join(id);
    if state_dir.exists() {
        found.push(format!("state dir {}", state_dir.display()));
    }
    found.extend(
        mounts_mentioning(bundle)
            .into_iter()
            .map(|l| format!("mount: {l}")),
    );
    found.extend(
        cgroups_named(id)
            .into_iter()
            .map(|p| format!("cgroup {}", p.display())),
    );
    found.extend(processes_using(&bundle.join("rootfs")));
    found
}

/// Lines of this process's mountinfo that name `path` or something under it.
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mounts_mentioning_in(&info, path)
}

/// Lines of the mountinfo text `info` that name `path` or something under it.
pub fn mounts_mentioning_in(info: &str, path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy();
    info.lines()
        .filter(|line| line.split(' ').any(|field| is_under(field, &needle)))
        .map(str::to_owned)
        .collect()
}

/// Live processes whose root or cwd is `rootfs` or below it. A process that pivoted into
/// the rootfs shows its root as "/", so the root is also compared by device and inode.
pub fn processes_using(rootfs: &Path) -> Vec<String> {
    let Ok(rootfs_meta) = fs::metadata(rootfs) else {
        return Vec::new();
    };
    let needle = rootfs.to_string_lossy();
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let proc_dir = entry.path();
        let by_path = ["root", "cwd"].iter().any(|link| {
            fs::read_link(proc_dir.join(link))
                .is_ok_and(|target| is_under(&target.to_string_lossy(), &needle))
        });
        let by_inode = fs::metadata(proc_dir.join("root"))
            .is_ok_and(|m| m.dev() == rootfs_meta.dev() && m.ino() == rootfs_meta.ino());
        if by_path || by_inode {
            let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
            found.push(format!("process {pid} ({}) uses {needle}", comm.trim()));
        }
    }
    found
}

/// Cgroup directories named `id` anywhere near the top of the cgroup hierarchies.
pub fn cgroups_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if !id.is_empty() {
        find_dirs_named(Path::new(CGROUP_ROOT), id, CGROUP_SEARCH_DEPTH, &mut found);
    }
    found
}

fn find_dirs_named(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // Not following symlinks: cpu,cpuacct style aliases would only repeat a hierarchy.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            found.push(entry.path());
        }
        find_dirs_named(&entry.path(), name, depth - 1, found);
    }
}

/// The processes working in a directory under `dir` (shims and what they start run in
/// a bundle; a removed one reads as "PATH (deleted)").
pub(crate) fn processes_working_under(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|pid| pid_alive(*pid))
        .filter_map(|pid| {
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            cwd.starts_with(dir).then(|| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                format!("process {pid} ({}) in {}", args.trim(), cwd.display())
            })
        })
        .collect()
}

/// `path` is `dir` or inside it (so /a/b-10 is not under /a/b-1).
fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn scratch(name: &str) -> PathBuf {
        let dir = crate::scratch_dir().join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bundle/rootfs")).unwrap();
        fs::create_dir_all(dir.join("root")).unwrap();
        dir
    }

    #[test]
    fn path_prefix_respects_component_boundaries() {
        assert!(is_under("/a/b-1", "/a/b-1"));
        assert!(is_under("/a/b-1/rootfs", "/a/b-1"));
        assert!(!is_under("/a/b-10", "/a/b-1"));
    }

    #[test]
    fn clean_state_reports_nothing() {
        let dir = scratch("leftovers-clean");
        assert_nothing_left(&dir.join("root"), "no-such-container", &dir.join("bundle"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn detects_a_leftover_state_dir() {
        let dir = scratch("leftovers-state");
        fs::create_dir(dir.join("root/c1")).unwrap();
        let found = leftovers(&dir.join("root"), "c1", &dir.join("bundle"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("state dir"), "{found:?}");
        let panicked = std::panic::catch_unwind(|| {
            assert_nothing_left(&dir.join("root"), "c1", &dir.join("bundle"))
        });
        assert!(
            panicked.is_err(),
            "assert_nothing_left accepted a leftover state dir"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn detects_a_leftover_process() {
        let dir = scratch("leftovers-process");
        let rootfs = dir.join("bundle/rootfs");
        let mut child = Command::new("/bin/busybox")
            .args(["sleep", "60"])
            .current_dir(&rootfs)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let found = processes_using(&rootfs);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(processes_using(&rootfs).is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn detects_a_leftover_cgroup() {
        let pids = Path::new(CGROUP_ROOT).join("pids");
        if !pids.is_dir() || fs::metadata(&pids).is_ok_and(|m| m.permissions().readonly()) {
            eprintln!(
                "no writable pids cgroup hierarchy at {}: skipped",
                pids.display()
            );
            return;
        }
        let id = format!("berth-leftover-probe-{}", std::process::id());
        let cgroup = pids.join(&id);
        fs::create_dir(&cgroup).expect("mkdir cgroup (tests run as root)");
        let found = cgroups_named(&id);
        fs::remove_dir(&cgroup).unwrap();
        assert_eq!(found, vec![cgroup]);
    }
}
