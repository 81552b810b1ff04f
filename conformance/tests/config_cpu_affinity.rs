//! CPU affinity: a container's processes run on the CPUs its cgroup allows,
//! not on those of the runtime's caller (`taskset -c 0 berth run` must not
//! pin the container to CPU 0: runc 1.3.1 and crun reset it), and an exec'd
//! process follows runtime-spec 1.2's `process.execCPUAffinity` (`initial`
//! during setup, `final` once in the container's cgroup), which the spec
//! says does not apply to the init. runc 1.1 does neither: those checks are
//! Berth's only; that a cpuset bounds the affinity holds for runc 1.1 too.

use berth_conformance::{berth_only, skip, Bundle, HostDir, Output, Runtime};
use serde_json::{json, Value};

const INHERITS: &str =
    "runc 1.1 lets the container inherit its caller's CPU affinity (runc 1.3.1 resets it)";
const NO_EXEC_AFFINITY: &str = "runc 1.1 ignores process.execCPUAffinity (runtime-spec 1.2)";

/// The `Cpus_allowed_list` of a /proc/<pid>/status text.
fn allowed_list(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status:?}"))
        .trim()
        .to_owned()
}

fn allowed_list_of(pid: i64) -> String {
    let path = format!("/proc/{pid}/status");
    allowed_list(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}")))
}

/// The CPUs this test process may use, if they are two or more (pinning the
/// runtime to the first then shows whether the container inherits it).
fn several_cpus() -> Option<String> {
    let own = allowed_list_of(std::process::id().into());
    if own.contains(',') || own.contains('-') {
        return Some(own);
    }
    skip(&format!(
        "this process runs on CPU {own} alone: nothing to narrow"
    ));
    None
}

/// `taskset -c 0 <runtime> --root R args...`: the runtime pinned to CPU 0.
fn pinned(rt: &Runtime, args: &[&str]) -> Output {
    rt.cmd_in_shell("taskset -p -c 0 $$ >/dev/null &&", args)
}

fn started_pinned(bundle: &Bundle) -> (Runtime, String) {
    let rt = Runtime::new();
    let id = rt.new_id();
    bundle.write_config();
    pinned(
        &rt,
        &["create", "--bundle", bundle.path().to_str().unwrap(), &id],
    )
    .ok();
    rt.start(&id).ok();
    (rt, id)
}

fn finish(rt: &Runtime, id: &str, bundle: &Bundle) {
    rt.cmd(&["delete", "--force", id]).ok();
    rt.assert_nothing_left(id, bundle);
}

#[test]
fn a_pinned_runtime_does_not_pin_the_container() {
    let Some(all) = several_cpus() else { return };
    let bundle = Bundle::busybox(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    bundle.write_config();
    let out = pinned(
        &rt,
        &["run", "--bundle", bundle.path().to_str().unwrap(), &id],
    );
    out.ok();
    rt.assert_nothing_left(&id, &bundle);
    if berth_only(INHERITS) {
        assert_eq!(allowed_list(&out.stdout), all, "run under taskset -c 0");
    }
}

#[test]
fn a_pinned_exec_is_not_pinned_and_neither_is_the_init() {
    let Some(all) = several_cpus() else { return };
    let bundle = Bundle::sleeper();
    let (rt, id) = started_pinned(&bundle);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let init_cpus = allowed_list_of(init);
    let out = pinned(
        &rt,
        &[
            "exec",
            &id,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ],
    );
    out.ok();
    finish(&rt, &id, &bundle);
    if berth_only(INHERITS) {
        assert_eq!(init_cpus, all, "the init, created under taskset -c 0");
        assert_eq!(allowed_list(&out.stdout), all, "exec under taskset -c 0");
    }
}

#[test]
fn a_cpuset_bounds_the_reset_affinity() {
    let Some(_) = several_cpus() else { return };
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "1", "mems": "0"}));
    let (rt, id) = started_pinned(&bundle);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(allowed_list_of(init), "1", "the init in a cpuset of CPU 1");
    let out = pinned(
        &rt,
        &[
            "exec",
            &id,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ],
    );
    out.ok();
    // A final list outside the cpuset is refused by the kernel: exec says which.
    let dir = HostDir::new();
    let outside = exec_with_affinity(&rt, &id, &dir, json!({"final": "0"}));
    finish(&rt, &id, &bundle);
    assert_eq!(allowed_list(&out.stdout), "1", "exec in a cpuset of CPU 1");
    if berth_only(NO_EXEC_AFFINITY) {
        outside
            .fails_with("set the CPU affinity to process.execCPUAffinity.final")
            .fails_with("Invalid argument");
    }
}

/// `exec --process` (under `taskset -c 0`) of a process printing its
/// `Cpus_allowed_list`, with `execCPUAffinity` set to `affinity`.
fn exec_with_affinity(rt: &Runtime, id: &str, dir: &HostDir, affinity: Value) -> Output {
    let process = json!({
        "args": ["grep", "Cpus_allowed_list", "/proc/self/status"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": ["PATH=/bin"],
        "execCPUAffinity": affinity,
    });
    let path = dir.path().join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    pinned(rt, &["exec", "--process", path.to_str().unwrap(), id])
}

#[test]
fn exec_cpu_affinity_applies_to_exec_not_to_the_init() {
    let Some(all) = several_cpus() else { return };
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["process"]["execCPUAffinity"] = json!({"final": "1"}));
    let (rt, id) = started_pinned(&bundle);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let init_cpus = allowed_list_of(init);
    // From the config (no --process), from a process.json without it (the
    // config's, as runc does), and a process.json's own.
    let from_config = pinned(
        &rt,
        &[
            "exec",
            &id,
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status",
        ],
    );
    let dir = HostDir::new();
    let inherited = {
        let process = json!({
            "args": ["grep", "Cpus_allowed_list", "/proc/self/status"],
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"],
        });
        let path = dir.path().join("plain.json");
        std::fs::write(&path, process.to_string()).unwrap();
        pinned(&rt, &["exec", "--process", path.to_str().unwrap(), &id])
    };
    let own_final = exec_with_affinity(&rt, &id, &dir, json!({"initial": "1", "final": "0"}));
    let initial_only = exec_with_affinity(&rt, &id, &dir, json!({"initial": "1"}));
    let empty = exec_with_affinity(&rt, &id, &dir, json!({"initial": "", "final": ""}));
    finish(&rt, &id, &bundle);
    if !berth_only(NO_EXEC_AFFINITY) {
        return;
    }
    assert_eq!(init_cpus, all, "execCPUAffinity is not the init's");
    assert_eq!(
        allowed_list(&from_config.ok().stdout),
        "1",
        "exec with the config's"
    );
    assert_eq!(
        allowed_list(&inherited.ok().stdout),
        "1",
        "a process.json without one"
    );
    assert_eq!(
        allowed_list(&own_final.ok().stdout),
        "0",
        "a process.json's own final"
    );
    // The spec: without final, the runtime does not change it after setup.
    assert_eq!(
        allowed_list(&initial_only.ok().stdout),
        "1",
        "initial alone"
    );
    // "If omitted or empty": empty lists are as none, and the caller's
    // affinity is not the process's.
    assert_eq!(allowed_list(&empty.ok().stdout), all, "empty lists");
}

#[test]
fn bad_cpu_lists_are_refused_by_name() {
    if !berth_only(NO_EXEC_AFFINITY) {
        return;
    }
    // In config.json: create fails before anything exists.
    // (The log format escapes quotes: the value is checked apart from the reason.)
    for (list, reason) in [
        ("3-1", "the range 3-1 runs backwards"),
        ("1,x", "is not a CPU number"),
        ("70000", "CPU 70000 is above the highest supported"),
    ] {
        let mut bundle = Bundle::sleeper();
        bundle.edit(|c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": list}));
        let rt = Runtime::new();
        let id = rt.new_id();
        rt.create(&id, &bundle, &[])
            .fails_with("process.execCPUAffinity.final")
            .fails_with(list)
            .fails_with(reason);
        rt.assert_nothing_left(&id, &bundle);
    }
    // In a process.json: exec fails, and no process is left in the container.
    let bundle = Bundle::busybox(&["sleep", "1000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let dir = HostDir::new();
    exec_with_affinity(&rt, &id, &dir, json!({"initial": "2-1"}))
        .fails_with("process.execCPUAffinity.initial")
        .fails_with("the range 2-1 runs backwards");
    let ps = rt.cmd(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(&ps.ok().stdout).unwrap();
    assert_eq!(pids.len(), 1, "a refused exec left a process: {pids:?}");
    finish(&rt, &id, &bundle);
}
