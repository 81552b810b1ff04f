//! containerd with Berth's own shim, `containerd-shim-berth-v2`
//! (`ctr run --runtime io.containerd.berth.v2`), which links the library instead of
//! running a runtime binary. Under `RUNTIME=/usr/sbin/runc` the same tests drive the runc
//! shim (`io.containerd.runc.v2`) with runc, so any difference between the two shims
//! shows as a test that passes on one side only.
//!
//! Needs `cargo build -p containerd-shim-berth-v2` (the private containerd finds the shim
//! in `target/debug` through its PATH; see `containerd::shim_path`).

use berth_conformance::containerd::{Containerd, IMAGE};
use berth_conformance::{is_berth, runtime, unique_name, Output};

/// Idles until SIGTERM (then exits 0).
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
];

/// `ctr run` with the shim under test: Berth's for Berth, else the runc shim with the
/// runtime under test as its runc.
fn run(containerd: &Containerd, id: &str, flags: &[&str], command: &[&str]) -> Output {
    let runc_root = containerd.runc_root().to_string_lossy().into_owned();
    let binary = runtime().to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["run"];
    if is_berth() {
        let shim = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug/containerd-shim-berth-v2");
        assert!(
            shim.exists() || std::env::var_os("CARGO_TARGET_DIR").is_some(),
            "{} does not exist: cargo build -p containerd-shim-berth-v2",
            shim.display()
        );
        args.extend(["--runtime", "io.containerd.berth.v2"]);
    } else {
        args.extend(["--runtime", "io.containerd.runc.v2"]);
        args.extend(["--runc-binary", &binary, "--runc-root", &runc_root]);
    }
    args.extend(flags);
    args.extend([IMAGE, id]);
    args.extend(command);
    containerd.ctr(&args)
}

/// `ctr run -d` of the sleeper; returns the init's pid.
#[track_caller]
fn run_detached(containerd: &Containerd, id: &str) -> i64 {
    run(containerd, id, &["-d"], SLEEPER).ok();
    containerd.wait_task_status(id, "RUNNING");
    containerd
        .task(id)
        .map(|(pid, _)| pid)
        .expect("a running task has a pid")
}

#[track_caller]
fn kill_delete_and_check(containerd: &Containerd, id: &str, pid: i64) {
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", id]).ok();
    containerd.wait_task_status(id, "STOPPED");
    containerd.ctr(&["task", "delete", id]).ok();
    containerd.ctr(&["container", "rm", id]).ok();
    containerd.assert_nothing_left(id, pid);
}

#[test]
fn run_rm_returns_the_exit_code_and_output() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm"],
        &["sh", "-c", "echo out-$((6*7)); echo err-7 >&2; exit 3"],
    );
    assert_eq!(out.code, 3, "{}", out.describe());
    assert!(out.stdout.contains("out-42"), "{}", out.describe());
    assert!(out.stderr.contains("err-7"), "{}", out.describe());
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
    kill_delete_and_check(&containerd, &id, pid);
}

#[test]
fn kill_delivers_the_signal_and_delete_reports_the_exit() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGTERM", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    // The sleeper's TERM trap exits 0: `task delete` warns of any other status.
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    assert!(
        !deleted.stderr.contains("non-zero exit code"),
        "{}",
        deleted.describe()
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, pid);
}

/// A task killed by SIGKILL reports 137 (128 + 9): `task delete` warns with it.
#[test]
fn a_killed_task_reports_137() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    assert!(
        deleted.stderr.contains("non-zero exit code 137"),
        "{}",
        deleted.describe()
    );
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
    kill_delete_and_check(&containerd, &id, pid);
}

/// `task ps` lists the init and an exec'd process (containerd asks the shim's Pids).
#[test]
fn ps_lists_the_containers_processes() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let ps = containerd.ctr(&["task", "ps", &id]);
    ps.ok();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "the init {pid} is not listed: {}",
        ps.describe()
    );
    kill_delete_and_check(&containerd, &id, pid);
}

/// A process that cannot start: the library's error reaches the ctr user, and nothing
/// (state, rootfs mount, cgroup) is left.
#[test]
fn a_failed_create_reaches_the_user_and_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = run(&containerd, &id, &["--rm"], &["/no/such/binary"]);
    let text = out.fails();
    assert!(text.contains("/no/such/binary"), "{}", out.describe());
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}
