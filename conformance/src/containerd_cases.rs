//! Test bodies that `engine_containerd.rs` (the runc shim with the runtime under test as
//! its runc) and `engine_shim.rs` (Berth's own shim) share: the same steps of a ctr user,
//! each file with its own `ctr run` (`Run`), so the two shims meet one set of
//! expectations.

use crate::containerd::Containerd;
use crate::containerd_shim::kill_delete_and_check;
use crate::{unique_name, Output, SLEEPER};

/// `ctr run` with a shim: `Containerd::run` or `containerd_shim::run`.
pub type Run = fn(&Containerd, &str, &[&str], &[&str]) -> Output;

/// `ctr run -d` of the sleeper; the init's pid.
#[track_caller]
pub fn run_detached(containerd: &Containerd, run: Run, id: &str) -> i64 {
    run(containerd, id, &["-d"], SLEEPER).ok();
    containerd.running_pid(id)
}

/// `ctr task exec` runs in the container (it sees the init as pid 1) and returns the
/// process's exit code.
pub fn exec_runs_in_the_container_with_its_exit_code(run: Run) {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, run, &id);
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

/// SIGTERM reaches the init (the sleeper's trap exits 0, so `task delete` warns of no
/// non-zero status), and delete leaves nothing.
pub fn kill_delivers_the_signal_and_delete_reports_the_exit(run: Run) {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, run, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGTERM", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
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

/// `task pause` freezes, `task resume` thaws, and exec works after.
pub fn pause_and_resume(run: Run) {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, run, &id);
    containerd.ctr(&["task", "pause", &id]).ok();
    containerd.wait_task_status(&id, "PAUSED");
    containerd.ctr(&["task", "resume", &id]).ok();
    containerd.wait_task_status(&id, "RUNNING");
    let out = containerd.ctr(&["task", "exec", "--exec-id", "after-resume", &id, "true"]);
    out.ok();
    kill_delete_and_check(&containerd, &id, pid);
}

/// `ctr task metrics`: the running container's pid count and memory usage, from its
/// cgroup.
pub fn metrics_come_from_the_containers_cgroup(run: Run) {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, run, &id);
    let out = containerd.ctr(&["task", "metrics", &id]);
    out.ok();
    let value = |name: &str| {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    assert!(
        value("pids.current").is_some_and(|n| n >= 1),
        "no pids.current of the running container: {}",
        out.describe()
    );
    assert!(
        value("memory.usage_in_bytes").is_some_and(|n| n > 0),
        "no memory usage: {}",
        out.describe()
    );
    kill_delete_and_check(&containerd, &id, pid);
}
