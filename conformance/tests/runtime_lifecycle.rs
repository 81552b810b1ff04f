//! runtime.md "Lifecycle" and "Operations": create, start, kill, delete, run, and the
//! state each step leaves the container in.

use std::fs;
use std::path::{Path, PathBuf};

use berth_conformance::{pid_alive, wait_until, Bundle, Runtime, STATE_DEADLINE};

/// A bundle whose program records that it ran, writes the name of the signal that stops
/// it, and otherwise idles. Returns the bundle and the host dir the files appear in.
fn recording_bundle() -> (Bundle, PathBuf) {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'echo TERM > /shared/signal; exit 0' TERM; touch /shared/started; \
         while :; do sleep 1 & wait $!; done",
    ]);
    let shared = bundle.share_dir("/shared");
    (bundle, shared)
}

fn appears(path: &Path) -> bool {
    wait_until(STATE_DEADLINE, || path.exists())
}

#[test]
fn create_leaves_a_created_container_whose_program_has_not_run() {
    let (bundle, shared) = recording_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let state = rt.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().expect("pid is a number");
    assert!(pid > 0, "{state}");
    assert!(
        pid_alive(pid),
        "init {pid} of a created container is not alive"
    );
    // runtime.md "create": the user-specified program MUST NOT be run at this time.
    assert!(
        !shared.join("started").exists(),
        "the program ran before start"
    );
}

#[test]
fn start_runs_the_program_and_reports_running() {
    let (bundle, shared) = recording_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let created_pid = rt.state(&id)["pid"].clone();

    rt.start(&id).ok();
    assert!(
        appears(&shared.join("started")),
        "the program did not run after start"
    );
    let state = rt.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(
        state["pid"], created_pid,
        "start must exec in the created init, not a new pid"
    );
}

#[test]
fn kill_without_a_signal_sends_sigterm() {
    let (bundle, shared) = recording_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    assert!(appears(&shared.join("started")));

    rt.kill(&id, None).ok();
    let state = rt.wait_status(&id, "stopped");
    assert_eq!(
        state["pid"], 0,
        "a stopped container reports pid 0: {state}"
    );
    assert_eq!(
        fs::read_to_string(shared.join("signal")).unwrap_or_default(),
        "TERM\n"
    );
}

fn kill_stops_with(signal: &str) {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.kill(&id, Some(signal)).ok();
    let state = rt.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn kill_by_name_kill() {
    kill_stops_with("KILL");
}

#[test]
fn kill_by_name_sigkill() {
    kill_stops_with("SIGKILL");
}

#[test]
fn kill_by_number_9() {
    kill_stops_with("9");
}

#[test]
fn delete_of_a_stopped_container_removes_it() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");

    rt.delete(&id).ok();
    rt.cmd(&["state", &id])
        .fails_with("container does not exist");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn run_exits_with_the_program_exit_code() {
    let bundle = Bundle::busybox(&["sh", "-c", "echo out; exit 3"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert_eq!(out.stdout, "out\n");
    rt.assert_nothing_left(&id, &bundle);
}

/// The kernel ignores SIGKILL sent to a pid namespace's init from inside it, so a shell
/// that kills itself as pid 1 carries on and exits 0 (runc 1.1.5 returns 0 here).
#[test]
fn run_init_cannot_sigkill_itself_in_its_pid_namespace() {
    let bundle = Bundle::busybox(&["sh", "-c", "kill -9 $$; echo survived"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert_eq!(out.code, 0, "{}", out.describe());
    assert_eq!(out.stdout, "survived\n");
    rt.assert_nothing_left(&id, &bundle);
}

/// Without a pid namespace the same self-kill works, and `run` exits 128+9 like a shell.
#[test]
fn run_exits_137_when_init_dies_of_sigkill() {
    let mut bundle = Bundle::busybox(&["sh", "-c", "kill -9 $$; echo survived"]);
    bundle.edit(|c| {
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.retain(|ns| ns["type"] != "pid");
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert_eq!(out.code, 128 + 9, "{}", out.describe());
    assert_eq!(out.stdout, "");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn run_exits_137_when_killed_from_outside() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = std::thread::scope(|s| {
        let foreground = s.spawn(|| rt.run(&id, &bundle, &[]));
        let running = wait_until(STATE_DEADLINE, || {
            let state = rt.cmd(&["state", &id]);
            state.success() && state.stdout.contains("\"running\"")
        });
        rt.kill(&id, Some("KILL")).ok();
        assert!(running, "the foreground container never showed as running");
        foreground.join().unwrap()
    });
    assert_eq!(out.code, 128 + 9, "{}", out.describe());
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let (bundle, shared) = recording_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["--detach"]).ok();
    assert!(appears(&shared.join("started")));
    assert_eq!(rt.state(&id)["status"], "running");

    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let bundle = Bundle::busybox(&["true"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["--keep"]).ok();
    let state = rt.state(&id);
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(state["pid"], 0, "{state}");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn start_twice_fails() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.start(&id)
        .fails_with("cannot start an already running container");
    assert_eq!(rt.state(&id)["status"], "running");
}

#[test]
fn kill_of_a_stopped_container_fails_with_container_not_running() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");

    // containerd string-matches this text to treat the kill as NotFound.
    rt.kill(&id, None).fails_with("container not running");
    rt.kill(&id, Some("9")).fails_with("container not running");
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);

    let refused = rt.delete(&id);
    refused.fails_with(&format!(
        "cannot delete container {id} that is not stopped: running"
    ));
    assert_eq!(refused.code, 1);
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "a refused delete disturbed the container"
    );

    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn pid_file_holds_the_host_pid_without_newline() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    let pid_file = rt.root().with_extension("pid");
    rt.create(&id, &bundle, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();

    let text = fs::read_to_string(&pid_file).expect("pid file written by create");
    let state = rt.state(&id);
    assert_eq!(
        text,
        state["pid"].to_string(),
        "pid file must be exactly the init's host pid"
    );
}

#[test]
fn state_of_an_unknown_id_fails_with_container_does_not_exist() {
    let rt = Runtime::new();
    let out = rt.cmd(&["state", "no-such-container"]);
    assert_eq!(out.code, 1, "{}", out.describe());
    out.fails_with("container does not exist");
}

#[test]
fn create_with_a_taken_id_fails_and_the_first_container_still_works() {
    let (first, shared) = recording_bundle();
    let second = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &first, &[]).ok();
    let before = rt.state(&id);

    rt.create(&id, &second, &[]).fails_with("already exists");
    let after = rt.state(&id);
    assert_eq!(
        before, after,
        "the failed create changed the first container's state"
    );

    rt.start(&id).ok();
    assert!(
        appears(&shared.join("started")),
        "the first container no longer starts"
    );
}

#[test]
fn init_that_died_before_start_is_reported_stopped() {
    let (bundle, shared) = recording_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();

    // The test kills the init directly, as an OOM kill or an admin would.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    let state = rt.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
    rt.start(&id)
        .fails_with("cannot start a container that has stopped");
    assert!(!shared.join("started").exists());

    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// Every hierarchy's path in /proc/PID/cgroup (`/proc/self/cgroup` text).
fn cgroup_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(str::to_owned)
        .collect()
}

/// From `create` on, before `start`, the init is in the container's cgroup
/// in every hierarchy the runtime itself is in (v1 controllers and the
/// cgroup2 mount alike), and so is a process `exec` adds. runc puts both in
/// by pid; Berth has them enter by themselves (cgroups/entry.rs), which this
/// checks misses no hierarchy.
#[test]
fn the_init_and_an_exec_are_in_the_containers_cgroup_in_every_hierarchy() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let own = cgroup_paths(&fs::read_to_string("/proc/self/cgroup").unwrap());
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let init_paths = cgroup_paths(&fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap());
    assert_eq!(init_paths.len(), own.len(), "{init_paths:?}");
    for path in &init_paths {
        assert!(
            path.ends_with(&format!("/{id}")),
            "the created init is outside its cgroup: {init_paths:?}"
        );
    }
    rt.start(&id).ok();
    let out = rt.cmd(&["exec", &id, "cat", "/proc/self/cgroup"]);
    let exec_paths = cgroup_paths(&out.ok().stdout);
    assert_eq!(exec_paths, init_paths, "exec'd process and init differ");
    rt.kill_and_delete(&id, &bundle);
}

/// With a cgroup namespace, the init is in its cgroup before it makes the
/// namespace: every hierarchy is rooted at the container's cgroup inside.
#[test]
fn a_cgroup_namespace_is_rooted_at_the_containers_cgroup_in_every_hierarchy() {
    let mut bundle = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({ "type": "cgroup" }))
    });
    let rt = Runtime::new();
    let paths = cgroup_paths(&rt.run_to_completion(&bundle));
    let own = cgroup_paths(&fs::read_to_string("/proc/self/cgroup").unwrap());
    assert_eq!(paths.len(), own.len(), "{paths:?}");
    assert!(
        paths.iter().all(|p| p == "/"),
        "a hierarchy not rooted at the container's cgroup: {paths:?}"
    );
}
