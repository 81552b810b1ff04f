//! runc's `pause`, `resume` and `ps` (beyond the OCI lifecycle, used by
//! containerd): the freezer stops every process of the container, `resume`
//! lets it go on, and `ps` lists the container's processes by host pid.

use std::fs;
use std::path::Path;
use std::time::Duration;

use berth_conformance::{wait_until, Bundle, Runtime};

/// A container that bumps a counter in a shared host directory ten times a second.
fn counter() -> (Bundle, std::path::PathBuf) {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /shared/count; sleep 0.1; done",
    ]);
    let shared = bundle.share_dir("/shared");
    (bundle, shared)
}

fn count(shared: &Path) -> String {
    fs::read_to_string(shared.join("count")).unwrap_or_default()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let (bundle, shared) = counter();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    assert!(
        wait_until(Duration::from_secs(10), || !count(&shared).is_empty()),
        "the counter never ran"
    );

    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "paused");
    let frozen_at = count(&shared);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&shared), frozen_at, "the counter moved while paused");

    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "running");
    assert!(
        wait_until(Duration::from_secs(10), || count(&shared) != frozen_at),
        "the counter did not move after resume"
    );

    rt.cmd(&["resume", &id]).fails_with("container not paused");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_paused_container_can_be_killed_and_deleted() {
    let (bundle, _shared) = counter();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.cmd(&["pause", &id]).ok();
    rt.kill_and_delete(&id, &bundle);

    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.cmd(&["pause", &id]).ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn pause_of_a_stopped_container_fails() {
    let bundle = Bundle::busybox(&["true"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.wait_status(&id, "stopped");
    rt.cmd(&["pause", &id]).fails_with("container not running");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn ps_lists_the_container_processes() {
    let (bundle, shared) = counter();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    assert!(wait_until(Duration::from_secs(10), || !count(&shared).is_empty()));
    let init = rt.state(&id)["pid"].as_i64().unwrap();

    let json = rt.cmd(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(json.ok().stdout.trim()).unwrap();
    assert!(pids.contains(&init), "{pids:?} lacks the init {init}");

    let table = rt.cmd(&["ps", &id]);
    let text = table.ok().stdout.clone();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .expect("a PID column");
    let listed: Vec<i64> = lines
        .filter_map(|l| l.split_whitespace().nth(pid_col)?.parse().ok())
        .collect();
    assert!(listed.contains(&init), "{text}");
    assert!(
        listed.iter().all(|p| pids.contains(p)),
        "ps listed a process outside the container: {text}"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// Whether host pid `pid` is alive and not a zombie.
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// What the container's shell wrote to /shared/child, once it has.
fn wait_for_report(shared: &Path) -> String {
    let read = || {
        fs::read_to_string(shared.join("child"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    assert!(
        wait_until(Duration::from_secs(10), || !read().is_empty()),
        "the container never wrote /shared/child"
    );
    read()
}

#[test]
fn kill_all_reaches_processes_that_outlive_the_init() {
    // Without a pid namespace the init's children are not killed with it:
    // they stay in the container's cgroup, and only `kill --all` reaches them.
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "sleep 1000 & echo $! > /shared/child; exec sleep 1000",
    ]);
    let shared = bundle.share_dir("/shared");
    bundle.edit(|c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        namespaces.retain(|ns| ns["type"] != "pid");
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let child = wait_for_report(&shared);

    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    assert!(
        alive(&child),
        "the child {child} died with the init: the test shows nothing"
    );

    rt.cmd(&["kill", "--all", &id, "KILL"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(&child)),
        "kill --all left {child} running"
    );
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn kill_all_signals_every_process_of_a_running_container() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "sleep 1000 & echo started > /shared/child; exec sleep 2000",
    ]);
    let shared = bundle.share_dir("/shared");
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    wait_for_report(&shared);
    let init = rt.state(&id)["pid"].to_string();
    let listed = rt.cmd(&["ps", "--format", "json", &id]);
    listed.ok();
    let pids: Vec<i64> =
        serde_json::from_str(&listed.stdout).expect("ps --format json is an array of pids");
    let children: Vec<String> = pids
        .iter()
        .map(i64::to_string)
        .filter(|p| *p != init)
        .collect();
    assert_eq!(children.len(), 1, "the init {init} and one sleep: {pids:?}");

    // SIGTERM: the init (pid 1 of its namespace, no handler) ignores it; the other sleep dies.
    rt.cmd(&["kill", "--all", &id, "TERM"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || !alive(&children[0])),
        "kill --all TERM did not reach {}",
        children[0]
    );
    assert!(alive(&init), "the init should have ignored TERM");
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "the freeze around kill --all must be undone"
    );
    rt.kill_and_delete(&id, &bundle);
}

/// `list` derives each status on its own, more cheaply than `state`: the
/// two agree at every step of the lifecycle.
#[test]
fn list_and_state_agree_through_the_lifecycle() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    let listed = |rt: &Runtime, id: &str| -> String {
        let out = rt.cmd(&["list", "--format", "json"]).ok().stdout.clone();
        let all: serde_json::Value = serde_json::from_str(&out).expect("list prints JSON");
        let entry = all
            .as_array()
            .and_then(|a| a.iter().find(|e| e["id"] == id).cloned())
            .expect("the container is listed");
        entry["status"].as_str().unwrap_or_default().to_string()
    };
    rt.create(&id, &bundle, &[]).ok();
    let mut seen = Vec::new();
    let mut step = |rt: &Runtime, want: &str| {
        assert_eq!(rt.state(&id)["status"], want, "state after {seen:?}");
        assert_eq!(listed(rt, &id), want, "list after {seen:?}");
        seen.push(want.to_string());
    };
    step(&rt, "created");
    rt.cmd(&["pause", &id]).ok();
    step(&rt, "paused");
    rt.cmd(&["resume", &id]).ok();
    step(&rt, "created");
    rt.start(&id).ok();
    step(&rt, "running");
    rt.cmd(&["pause", &id]).ok();
    step(&rt, "paused");
    rt.cmd(&["resume", &id]).ok();
    step(&rt, "running");
    rt.cmd(&["kill", &id, "KILL"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || rt.state(&id)["status"]
            == "stopped"),
        "the container did not stop"
    );
    step(&rt, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}
