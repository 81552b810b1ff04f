//! Berth's containerd shim (see engine_shim.rs): checkpoint (`ctr containers checkpoint
//! --task`) and restore (`ctr containers restore`), with CRIU run by the library in the
//! shim's forker. Under `RUNTIME=/usr/sbin/runc`, the runc shim with runc. Skipped where
//! CRIU cannot work. (`ctr task checkpoint --exit` is not tested: ctr sends its options,
//! `exit` among them, only to runtimes named io.containerd.runc.v1/v2.)

use std::path::Path;
use std::sync::Once;

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_shim::run;
use berth_conformance::criu::{criu_or_skip, read_count, wait_count};
use berth_conformance::{pid_alive, unique_name, HostDir};

/// Writes 1, 2, 3... to /out/count every 0.1 s (through a rename, so a reader never sees
/// a half-written number); exits 7 once /out/stop exists.
const COUNTER: &str = "i=0; while :; do [ -e /out/stop ] && exit 7; i=$((i+1)); \
                       echo $i > /out/count.tmp; mv /out/count.tmp /out/count; sleep 0.1; done";

/// Puts the working CRIU's directory first on this process's PATH, which containerd and
/// its shims inherit; false after a skip note when this host has no working CRIU.
fn criu_on_path() -> bool {
    let Some(criu) = criu_or_skip() else {
        return false;
    };
    static SET: Once = Once::new();
    SET.call_once(|| {
        let dir = Path::new(&criu)
            .parent()
            .expect("criu has a directory")
            .to_path_buf();
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&old));
        let path = std::env::join_paths(dirs).expect("PATH joins");
        // Once, before any test of this binary starts a process.
        std::env::set_var("PATH", path);
    });
    true
}

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
        &["sh", "-c", COUNTER],
    )
    .ok();
    containerd.wait_task_status(id, "RUNNING");
    wait_count(shared, 3);
    containerd
        .task(id)
        .map(|(pid, _)| pid)
        .expect("a running task has a pid")
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
    containerd.ctr(&["task", "delete", &id]).ok();
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, pid);

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
