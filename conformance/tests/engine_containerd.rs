//! containerd with the runtime under test as the runc of its runc shim
//! (`io.containerd.runc.v2`, `ctr run --runc-binary`): each test starts a private
//! containerd (own socket, root, state, config.toml), imports a busybox OCI image built
//! offline with umoci, and drives it with `ctr` as a user would.

use berth_conformance::containerd::Containerd;
use berth_conformance::{berth_only, unique_name};

/// Idles until SIGTERM (then exits 0).
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
];

/// `ctr run -d` of the sleeper; returns the init's pid.
#[track_caller]
fn run_detached(containerd: &Containerd, id: &str) -> i64 {
    containerd.run(id, &["-d"], SLEEPER).ok();
    containerd.wait_task_status(id, "RUNNING");
    containerd
        .task(id)
        .map(|(pid, _)| pid)
        .expect("a running task has a pid")
}

#[track_caller]
fn delete_and_check(containerd: &Containerd, id: &str, pid: i64) {
    containerd.ctr(&["task", "delete", id]).ok();
    containerd.ctr(&["container", "rm", id]).ok();
    containerd.assert_nothing_left(id, pid);
}

#[test]
fn run_returns_the_exit_code_and_output() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &[], &["sh", "-c", "echo out-$((6*7)); exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert!(out.stdout.contains("out-42"), "{}", out.describe());
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, 0);
}

#[test]
fn run_rm_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    containerd.run(&id, &["--rm"], &["true"]).ok();
    let listed = containerd.ctr(&["container", "ls", "-q"]);
    assert!(!listed.stdout.contains(&id), "{}", listed.describe());
    containerd.assert_nothing_left(&id, 0);
}

#[test]
fn exec_runs_in_the_container_with_its_exit_code() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        &id,
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(out.code, 4, "{}", out.describe());
    assert!(
        out.stdout.contains("pid1=sh"),
        "exec did not see the container's init: {}",
        out.describe()
    );
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    delete_and_check(&containerd, &id, pid);
}

#[test]
fn kill_delivers_the_signal_and_delete_cleans_up() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGTERM", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    // The sleeper's TERM trap exits 0; `task delete` prints the exit status.
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, pid);
}

#[test]
fn pause_and_resume() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "pause", &id]).ok();
    containerd.wait_task_status(&id, "PAUSED");
    containerd.ctr(&["task", "resume", &id]).ok();
    containerd.wait_task_status(&id, "RUNNING");
    let out = containerd.ctr(&["task", "exec", "--exec-id", "after-resume", &id, "true"]);
    out.ok();
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    delete_and_check(&containerd, &id, pid);
}

/// The runc shim reads a task's metrics from its cgroup itself (containerd 1.6); it does
/// not call `runc events --stats`, so this does not wait for Berth's `events`.
#[test]
fn metrics_come_from_the_containers_cgroup() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let out = containerd.ctr(&["task", "metrics", &id]);
    out.ok();
    let pids_current = out
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("pids.current"))
        .map(str::trim)
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        pids_current.is_some_and(|n| n >= 1),
        "no pids.current of the running container: {}",
        out.describe()
    );
    assert!(
        out.stdout.contains("memory.usage_in_bytes"),
        "{}",
        out.describe()
    );
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    delete_and_check(&containerd, &id, pid);
}

#[test]
fn tty_run_gets_a_terminal() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    // The short sleep lets the shim copy the output before the exit closes the console.
    let out = containerd.run_in_terminal(
        &id,
        &["-t", "--rm"],
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; tty; sleep 1; exit 5",
        ],
    );
    assert_eq!(out.code, 5, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.describe());
    containerd.assert_nothing_left(&id, 0);
}

/// A process that cannot be started: the runtime's error text reaches the ctr user.
#[test]
fn runtime_errors_reach_the_ctr_user() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &["--rm"], &["/no/such/binary"]);
    let text = out.fails();
    assert!(
        text.contains("OCI runtime create failed") && text.contains("/no/such/binary"),
        "{}",
        out.describe()
    );
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// A config Berth refuses (runc 1.1 only warns about an unknown capability): Berth's own
/// message, naming the field, is what ctr prints.
#[test]
fn a_refused_config_shows_berths_message() {
    if !berth_only("runc 1.1 runs with an unknown capability") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &["--rm", "--cap-add", "CAP_BOGUS"], &["true"]);
    out.fails_with("unknown capability \"CAP_BOGUS\" in process.capabilities");
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// Two tasks of one namespace share the cgroup parent `/<namespace>`, which the runtime
/// created for the first. Deleting the first task while the second runs must succeed
/// (runc removes only the container's own directory) and leave the second one working.
#[test]
fn deleting_one_task_leaves_a_sibling_sharing_its_parent_cgroup() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let first = unique_name();
    let second = unique_name();
    let first_pid = run_detached(&containerd, &first);
    let second_pid = run_detached(&containerd, &second);
    containerd
        .ctr(&["task", "kill", "-s", "SIGKILL", &first])
        .ok();
    containerd.wait_task_status(&first, "STOPPED");
    delete_and_check(&containerd, &first, first_pid);
    containerd
        .ctr(&["task", "exec", "--exec-id", "still-there", &second, "true"])
        .ok();
    containerd
        .ctr(&["task", "kill", "-s", "SIGKILL", &second])
        .ok();
    containerd.wait_task_status(&second, "STOPPED");
    delete_and_check(&containerd, &second, second_pid);
}
