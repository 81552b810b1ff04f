//! Faults a runtime meets in the field: an init that dies before `start`, a
//! state root that is read-only or full. Each gives a clear answer and
//! leaves nothing behind.

use std::process::Command;
use std::time::Duration;

use berth_conformance::{
    berth_only, cgroups_named, unique_name, wait_until, Bundle, HostDir, Runtime,
};

#[test]
fn an_init_killed_before_start_is_stopped_and_cannot_start() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("a pid") as i32;
    // SAFETY: kill(2) with plain integers, on the init this test just created.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(
        wait_until(Duration::from_secs(10), || rt.state(&id)["status"]
            == "stopped"),
        "a dead init is not reported stopped"
    );
    let err = rt.start(&id).fails();
    if berth_only("the error says the container stopped") {
        assert!(err.contains("stopped"), "{err}");
    }
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// A tmpfs for a state root, mounted with `options`; unmounted on drop.
struct StateMount(HostDir);

impl StateMount {
    fn new(options: &str) -> StateMount {
        let dir = HostDir::new();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs with {options}");
        StateMount(dir)
    }
}

impl Drop for StateMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn create_under(root: &std::path::Path, bundle: &Bundle) -> (String, String) {
    let rt = Runtime::new();
    let id = unique_name();
    bundle.write_config();
    let out = rt.cmd_raw(&[
        "--root",
        root.to_str().unwrap(),
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(
        !out.success(),
        "create succeeded on a broken state root: {}",
        out.describe()
    );
    assert!(
        cgroups_named(&id).is_empty(),
        "a cgroup was left: {:?}",
        cgroups_named(&id)
    );
    assert!(
        berth_conformance::processes_using(&bundle.rootfs()).is_empty(),
        "a process was left"
    );
    (id, out.combined())
}

#[test]
fn a_read_only_state_root_is_a_clear_error() {
    let mount = StateMount::new("ro,mode=755");
    let bundle = Bundle::sleeper();
    let (_, err) = create_under(mount.0.path(), &bundle);
    if berth_only("the error names the state root and the cause") {
        assert!(
            err.contains(mount.0.path().to_str().unwrap())
                && err.to_lowercase().contains("read-only"),
            "{err}"
        );
    }
}

#[test]
fn a_full_state_root_is_a_clear_error_and_keeps_no_half_state() {
    // Room for the container's directory and nothing in it.
    let mount = StateMount::new("nr_inodes=2,mode=755");
    let bundle = Bundle::sleeper();
    let (id, err) = create_under(mount.0.path(), &bundle);
    if berth_only("the error names the cause") {
        assert!(err.to_lowercase().contains("no space left"), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(mount.0.path())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left.iter().any(|n| n.to_string_lossy() == id),
        "a half-made state dir was left: {left:?}"
    );
}
