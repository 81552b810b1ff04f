//! runc's options for Berth's own shim under containerd's CRI plugin. The plugin sends
//! a runtime whose type is not runc's only `runtimeoptions.v1.Options`; the handler
//! `berth-shim` of docs/containerd.md sets its `ConfigPath`, a TOML file of runc's
//! option names, which each test here writes. Each test starts a private containerd,
//! drives it with `crictl` and checks that nothing is left.
//!
//! Under RUNTIME=/usr/sbin/runc the same options go into handler `runc`'s `options`
//! table, which the CRI plugin sends the runc shim as runc's options; a test whose
//! case differs there by design says so and skips that side. Build the shim first:
//! `cargo build -p containerd-shim-berth-v2`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_conformance::cri::{Cri, GREETING_SLEEPER, PID_CONTAINER};
use berth_conformance::cri_config::toml_string;
use berth_conformance::{is_berth, skip, unique_name, wait_until, HostDir, STATE_DEADLINE};
use serde_json::json;

/// `crictl runp` and the start of one container in it: (pod id, container id).
#[track_caller]
fn run_pod_and_container(cri: &Cri) -> (String, String) {
    let name = unique_name();
    let (config, pod) = cri.run_pod(&name, PID_CONTAINER);
    let linux = json!({ "security_context": { "namespace_options": { "pid": PID_CONTAINER } } });
    let container = cri.create_container(&pod, &config, "main", GREETING_SLEEPER, linux);
    cri.crictl(&["start", &container]).ok();
    cri.wait_container_state(&container, "CONTAINER_RUNNING");
    (pod, container)
}

/// `rm` of a container (stopped first when it runs), `stopp` and `rmp` of its pod.
#[track_caller]
fn remove(cri: &Cri, pod: &str, container: &str) {
    cri.crictl(&["rm", "--force", container]).ok();
    cri.crictl(&["stopp", pod]).ok();
    cri.crictl(&["rmp", pod]).ok();
}

/// `Root` puts the state of the pod's sandbox and container under it; after the shim
/// is killed, containerd's `delete` command (a new shim process, in the bundle) finds
/// them there too, so removing the pod leaves nothing but the killed shim's socket,
/// which no one removes under either shim (its shim would have, at its exit).
#[test]
fn a_root_in_the_options_holds_the_state_and_delete_after_a_dead_shim_finds_it() {
    let root = HostDir::new();
    let Some(cri) = Cri::start_shim_with(&[("Root", toml_string(&root.to_string_lossy()))]) else {
        return;
    };
    let (pod, container) = run_pod_and_container(&cri);
    for id in [&pod, &container] {
        let state = cri.state_dir_in(&root, id);
        assert!(state.is_dir(), "no state dir {}", state.display());
    }
    let mut traces = [
        cri.traces("inspect", &container),
        cri.traces("inspectp", &pod),
    ];
    let shims = cri.shim_pids();
    assert_eq!(shims.len(), 1, "one pod, one shim: {:?}", cri.shims());
    // Removed even when the test fails: the Cri finds no bundle naming it by then.
    let _sockets = RemovedOnDrop(
        traces
            .iter()
            .filter_map(|t| t.shim_socket.clone())
            .collect(),
    );
    // SAFETY: kill(2) on the shim of this test's pod.
    assert_eq!(unsafe { libc::kill(shims[0], libc::SIGKILL) }, 0);
    cri.wait_container_state(&container, "CONTAINER_EXITED");
    remove(&cri, &pod, &container);
    for t in &mut traces {
        t.shim_socket = None;
    }
    // containerd cleans up after a dead shim in the background (as in
    // engine_shim.rs's killed-shim test): wait for it, then check.
    berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        cri.leftovers(&traces).is_empty()
    });
    cri.assert_nothing_left(&traces);
}

/// Files removed when dropped.
struct RemovedOnDrop(Vec<PathBuf>);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = fs::remove_file(file);
        }
    }
}

/// Directories of one cgroup name in every hierarchy, removed when dropped (the
/// processes moved there gone first).
struct TestCgroup {
    name: String,
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new() -> TestCgroup {
        let name = format!("berth-shim-cgroup-{}", unique_name());
        let mut cgroup = TestCgroup {
            name,
            dirs: Vec::new(),
        };
        for hierarchy in hierarchies() {
            let dir = hierarchy.join(&cgroup.name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            cgroup.dirs.push(dir.clone());
            // A new v1 cpuset cgroup has no cpus or mems, and takes no process until
            // it has: the root's.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = fs::read_to_string(hierarchy.join(file)) {
                    fs::write(dir.join(file), value.trim())
                        .unwrap_or_else(|e| panic!("write {}/{file}: {e}", dir.display()));
                }
            }
        }
        cgroup
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let empty = |dir: &Path| {
            fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
        };
        wait_until(Duration::from_secs(5), || {
            self.dirs.iter().all(|d| empty(d))
        });
        for dir in &self.dirs {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("rmdir {}: {e}", dir.display());
            }
        }
    }
}

/// The mounted hierarchies' roots: the directories of /sys/fs/cgroup (a v2 host's is
/// that one), not the links between them (cpu,cpuacct).
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.procs").exists() {
        return vec![root.to_path_buf()];
    }
    let mut found: Vec<PathBuf> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    found.sort();
    found
}

/// The v1 lines of /proc/PID/cgroup ("ID:CONTROLLERS:PATH"), or a v2 host's one line.
fn cgroup_lines(pid: i32) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let v1: Vec<String> = lines
        .iter()
        .filter(|l| !l.starts_with("0::"))
        .cloned()
        .collect();
    if v1.is_empty() {
        lines
    } else {
        v1
    }
}

/// `ShimCgroup` moves the pod's shim into that cgroup of every
/// hierarchy; the containers still get cgroups of their own.
#[test]
fn the_pods_shim_runs_in_the_options_shim_cgroup() {
    let cgroup = TestCgroup::new();
    let path = format!("/{}", cgroup.name);
    let Some(cri) = Cri::start_shim_with(&[("ShimCgroup", toml_string(&path))]) else {
        return;
    };
    let (pod, container) = run_pod_and_container(&cri);
    let traces = [
        cri.traces("inspect", &container),
        cri.traces("inspectp", &pod),
    ];
    let moved = cri.shim_pids();
    assert_eq!(moved.len(), 1, "one pod, one shim: {:?}", cri.shims());
    // Berth's shim keeps no forker between requests (docs/shim.md); those it starts
    // later are its children, in its cgroup from their start.
    if is_berth() {
        let none = wait_until(STATE_DEADLINE, || cri.forker_pids().is_empty());
        assert!(none, "a forker stays: {:?}", cri.forkers());
    }
    for pid in moved {
        let lines = cgroup_lines(pid);
        let elsewhere: Vec<&String> = lines
            .iter()
            .filter(|l| l.rsplit(':').next() != Some(path.as_str()))
            .collect();
        assert!(
            elsewhere.is_empty(),
            "process {pid} is not in {path} in every hierarchy: {lines:#?}"
        );
    }
    let init = cgroup_lines(traces[0].pid as i32);
    assert!(
        init.iter().all(|l| l.ends_with(&container)),
        "the container is not in its own cgroup: {init:#?}"
    );
    remove(&cri, &pod, &container);
    cri.assert_nothing_left(&traces);
    wait_until(STATE_DEADLINE, || cri.shims().is_empty());
    let procs = |dir: &PathBuf| fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let left: Vec<String> = cgroup.dirs.iter().map(procs).collect();
    assert!(
        left.iter().all(|p| p.trim().is_empty()),
        "processes left in {path}: {left:?}"
    );
}

/// Options the shim cannot apply fail `crictl runp` (of a pod under `cgroup_parent`,
/// or the suite's own) with a message that names the problem (the `berth` or `runc`
/// words, which crictl shows with their quotes escaped), and the failed pod leaves
/// nothing: no sandbox, shim, bundle, state, cgroup, process or mount.
#[track_caller]
fn runp_fails_and_leaves_nothing(
    options: &[(&str, String)],
    cgroup_parent: Option<&str>,
    berth: &[&str],
    runc: &[&str],
) {
    let Some(cri) = Cri::start_shim_with(options) else {
        return;
    };
    let out = cri.runp(&unique_name(), cgroup_parent);
    let wanted = if is_berth() { berth } else { runc };
    for needle in wanted {
        out.fails_with(needle);
    }
    let left = cri.leftovers_of_failed_pods();
    assert!(
        left.is_empty(),
        "the failed pod left things behind:\n  {}",
        left.join("\n  ")
    );
}

/// A misspelt key is an error naming the file and the key, not an option ignored.
#[test]
fn an_unknown_key_in_the_options_file_fails_runp_naming_it() {
    if !is_berth() {
        skip("the CRI plugin decodes handler runc's options table into runc's options and drops a key it does not know: the runc shim never sees it");
        return;
    }
    runp_fails_and_leaves_nothing(
        &[("SystemdCgroups", "true".into())],
        None,
        &[
            "the shim's options file",
            "berth-shim.toml (ConfigPath): unknown key",
            "SystemdCgroups",
        ],
        &[],
    );
}

/// `SystemdCgroup = true` reaches the runtime, which refuses it where systemd is not
/// the init (PID 1 here is not systemd). The pod's cgroup parent is a slice, as the
/// kubelet's systemd driver names it (the CRI plugin then asks for `slice:prefix:name`).
#[test]
fn the_systemd_cgroup_driver_without_systemd_fails_runp() {
    if Path::new("/run/systemd/system").is_dir() {
        skip("systemd is this host's init: the systemd cgroup driver would work");
        return;
    }
    runp_fails_and_leaves_nothing(
        &[("SystemdCgroup", "true".into())],
        Some("berth-test-pods.slice"),
        &["the systemd cgroup driver needs systemd as the host's init"],
        &["systemd"],
    );
}

/// A `ShimCgroup` that does not exist is an error naming it: the shim makes no cgroup.
#[test]
fn a_shim_cgroup_that_does_not_exist_fails_runp() {
    let missing = format!("/berth-missing-{}", unique_name());
    runp_fails_and_leaves_nothing(
        &[("ShimCgroup", toml_string(&missing))],
        None,
        &["ShimCgroup", "/sys/fs/cgroup/", "does not exist"],
        &[&missing],
    );
}
