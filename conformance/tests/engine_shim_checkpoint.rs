//! Berth's containerd shim (see engine_shim.rs): checkpoint (`ctr containers checkpoint
//! --task`) and restore (`ctr containers restore`), with CRIU run by the library in the
//! shim's forker. Under `RUNTIME=/usr/sbin/runc`, the runc shim with runc. Skipped where
//! CRIU cannot work. (`ctr task checkpoint --exit` is not tested: ctr sends its options,
//! `exit` among them, only to runtimes named io.containerd.runc.v1/v2.)

use std::path::Path;

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_shim::run;
use berth_conformance::criu::{criu_on_path, read_count, wait_count, STOPPABLE_COUNTER};
use berth_conformance::{pid_alive, unique_name, HostDir};

/// `ctr run -d` of the counter writing to `shared`; returns the init's pid.
fn run_counter(containerd: &Containerd, id: &str, shared: &Path) -> i64 {
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        shared.display()
    );
    run(
        containerd,
        id,
        &["-d", "--mount", &mount],
        &["sh", "-c", STOPPABLE_COUNTER],
    )
    .ok();
    let pid = containerd.running_pid(id);
    wait_count(shared, 3);
    pid
}

/// A checkpoint image of the running task, the task removed, then restored from the
/// image: the count goes on from the checkpoint's, and the restored init's exit status
/// reaches containerd.
#[test]
fn checkpoint_and_restore_resume_the_counter() {
    if !criu_on_path() {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let shared = HostDir::new();
    let id = unique_name();
    let pid = run_counter(&containerd, &id, shared.path());
    let reference = format!("berth.test/checkpoint/{id}:1");
    containerd
        .ctr(&["containers", "checkpoint", "--task", &id, &reference])
        .ok();
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    let at = read_count(shared.path());
    containerd.delete_and_check(&id, pid);

    containerd
        .ctr(&["containers", "restore", "--live", &id, &reference])
        .ok();
    containerd.wait_task_status(&id, "RUNNING");
    let restored = containerd
        .task(&id)
        .map(|(pid, _)| pid)
        .expect("a restored task has a pid");
    assert!(
        pid_alive(restored),
        "the restored task's pid {restored} is not a process"
    );
    let now = read_count(shared.path());
    assert!(
        now <= at + 5,
        "the count {now} is past the checkpoint's {at} plus the time since"
    );
    wait_count(shared.path(), now + 3);

    std::fs::write(shared.path().join("stop"), "").expect("write stop");
    containerd.wait_task_status(&id, "STOPPED");
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    assert!(
        deleted.stderr.contains("exit code 7"),
        "the restored task's exit status was lost: {}",
        deleted.describe()
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.ctr(&["images", "rm", &reference]).ok();
    containerd.assert_nothing_left(&id, restored);
}
