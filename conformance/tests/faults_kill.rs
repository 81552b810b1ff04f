//! `berth create` killed with SIGKILL at each step of its setup:
//! `list` and `state` never show a half-written container (absent, or a
//! well-formed state with a valid status), `delete --force` succeeds, and
//! then nothing is left: no state dir, cgroup, mount or process.
//!
//! The steps come from Berth's test-build hook (`BERTH_FAULT_STOP_AT`, the
//! `fault-injection` feature, runtime-core/src/fault.rs): the parent's steps
//! kill create there; at the init's steps the init waits, the test kills
//! create (or the init), and lets the init go on or leaves it waiting.
//! runc has no such hook: every test here is Berth-only.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_conformance::{
    berth_only, is_rfc3339, runtime, skip, wait_until, Bundle, HostDir, Runtime,
};
use serde_json::{json, Value};

const ENV: &str = "BERTH_FAULT_STOP_AT";
/// What the init calls itself while it waits at its step (fault.rs's HELD_COMM).
const HELD_COMM: &str = "berth-held";
const SIGKILLED: i32 = 128 + libc::SIGKILL;

/// A runtime for these tests: `None` (skipped) for anything but Berth; a
/// Berth built without the hook fails, naming the build it needs.
fn fault_runtime() -> Option<Runtime> {
    hook_built().then(Runtime::new)
}

fn hook_built() -> bool {
    if !berth_only("the fault-injection hook (BERTH_FAULT_STOP_AT) is Berth's own") {
        return false;
    }
    let bin = runtime();
    let bytes = std::fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    assert!(
        bytes.windows(ENV.len()).any(|w| w == ENV.as_bytes()),
        "{} has no fault-injection hook: build it with `cargo build -p berth-cli --features fault-injection` (scripts/test does)",
        bin.display()
    );
    true
}

/// `create --pid-file` for `id`, with `step` armed, run to its end.
fn create_armed(
    rt: &Runtime,
    bundle: &Bundle,
    id: &str,
    step: &str,
    pid_file: &Path,
) -> berth_conformance::Output {
    bundle.write_config();
    let args = [
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        id,
    ];
    rt.cmd_with(&args, |c| {
        c.env(ENV, step);
    })
}

/// The same, left running: for the init's steps, where the test acts while create waits.
fn spawn_create_armed(rt: &Runtime, bundle: &Bundle, id: &str, step: &str, out: &HostDir) -> Child {
    bundle.write_config();
    let root = rt.root();
    Command::new(runtime())
        .args([
            "--root",
            root.to_str().unwrap(),
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            id,
        ])
        .env(ENV, step)
        .stdin(Stdio::null())
        .stdout(File::create(out.join("create.stdout")).unwrap())
        .stderr(File::create(out.join("create.stderr")).unwrap())
        .spawn()
        .expect("spawn create")
}

/// The child of `parent` that waits at an armed step, once there is one.
fn held_child_of(parent: u32) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm == HELD_COMM && ppid == Some(parent) {
            return head.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// Waits for create's init to reach `step`; panics with create's output if create ends first.
fn wait_for_held_init(create: &mut Child, step: &str, out: &HostDir) -> i32 {
    let mut held = None;
    let reached = wait_until(Duration::from_secs(30), || {
        held = held_child_of(create.id());
        held.is_some() || create.try_wait().ok().flatten().is_some()
    });
    held.unwrap_or_else(|| {
        let stderr = std::fs::read_to_string(out.join("create.stderr")).unwrap_or_default();
        panic!(
            "the init never waited at {step} (reached: {reached}, create: {:?}): {stderr}",
            create.try_wait()
        )
    })
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with plain integers, on a process this test started.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// `state` and `list` show `id` as absent or whole: never a half-made container.
fn assert_no_half_state(rt: &Runtime, id: &str, bundle: &Bundle, step: &str) {
    let state = rt.cmd(&["state", id]);
    if state.success() {
        let value: Value = serde_json::from_str(&state.stdout).unwrap_or_else(|e| {
            panic!(
                "after {step}: state is not JSON ({e}): {}",
                state.describe()
            )
        });
        assert_whole(&value, id, bundle, step);
    } else {
        assert!(
            state.combined().contains("does not exist"),
            "after {step}: state failed otherwise than with \"does not exist\": {}",
            state.describe()
        );
    }
    let list = rt.cmd(&["list", "--format", "json"]);
    let listed: Value = serde_json::from_str(&list.ok().stdout)
        .unwrap_or_else(|e| panic!("after {step}: list is not JSON ({e}): {}", list.describe()));
    for entry in listed.as_array().into_iter().flatten() {
        assert_whole(entry, id, bundle, step);
    }
    let quiet = rt.cmd(&["list", "-q"]);
    assert!(
        quiet.ok().stdout.lines().all(|l| l == id),
        "after {step}: list -q shows other names: {}",
        quiet.describe()
    );
}

fn assert_whole(state: &Value, id: &str, bundle: &Bundle, step: &str) {
    assert_eq!(state["id"], id, "after {step}: {state}");
    let status = state["status"].as_str().unwrap_or("");
    assert!(
        ["created", "running", "stopped"].contains(&status),
        "after {step}: status {status:?} in {state}"
    );
    let pid = state["pid"].as_i64().unwrap_or(-1);
    assert!(
        if status == "stopped" {
            pid == 0
        } else {
            pid > 0
        },
        "after {step}: pid {pid} with status {status}: {state}"
    );
    assert_eq!(
        state["bundle"],
        bundle.path().to_str().unwrap(),
        "after {step}: {state}"
    );
    assert!(
        is_rfc3339(state["created"].as_str().unwrap_or("")),
        "after {step}: created is not RFC 3339: {state}"
    );
    assert!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "after {step}: {state}"
    );
}

/// `delete --force` succeeds and leaves nothing; the id is then unknown.
fn assert_force_delete_cleans_up(rt: &Runtime, id: &str, bundle: &Bundle, step: &str) {
    let out = rt.cmd(&["delete", "--force", id]);
    assert!(
        out.success(),
        "after {step}: delete --force failed: {}",
        out.describe()
    );
    rt.assert_nothing_left(id, bundle);
    rt.cmd(&["state", id]).fails_with("does not exist");
}

/// create kills itself at the parent's step `step`.
fn killed_at_parent_step(step: &str) {
    let Some(rt) = fault_runtime() else { return };
    let bundle = Bundle::sleeper();
    let id = rt.new_id();
    let dir = HostDir::new();
    let out = create_armed(&rt, &bundle, &id, step, &dir.join("pid"));
    assert_eq!(
        out.code,
        SIGKILLED,
        "create was not killed at {step}: {}",
        out.describe()
    );
    assert_no_half_state(&rt, &id, &bundle, step);
    assert_force_delete_cleans_up(&rt, &id, &bundle, step);
}

/// The same with the systemd driver, under a systemd of the test's own: the
/// scope and the directories Berth made beside it go too.
fn killed_at_parent_step_in_a_scope(step: &str) {
    if !hook_built() {
        return;
    }
    let Some(rt) = Runtime::in_private_systemd() else {
        skip("no /lib/systemd/systemd, or not a hybrid cgroup host");
        return;
    };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("berth-test.slice:berth:{id}")));
    bundle.write_config();
    let args = [
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ];
    let out = rt.cmd_with(&args, |c| {
        c.env(ENV, step);
    });
    assert_eq!(
        out.code,
        SIGKILLED,
        "create was not killed at {step}: {}",
        out.describe()
    );
    assert_no_half_state(&rt, &id, &bundle, step);
    assert_force_delete_cleans_up(&rt, &id, &bundle, step);
    let unit = format!("berth-{id}.scope");
    assert_eq!(
        systemd.unit_property(&unit, "LoadState"),
        "not-found",
        "after {step}: the scope outlived delete"
    );
    assert!(
        systemd.cgroups_named(&unit).is_empty(),
        "after {step}: cgroups left: {:?}",
        systemd.cgroups_named(&unit)
    );
    for hierarchy in ["devices", "freezer"] {
        let slice = systemd.cgroup_dir(hierarchy, "berth.slice");
        assert!(
            !slice.exists(),
            "after {step}: {} was left",
            slice.display()
        );
    }
}

/// What the test does to the init waiting at its step, once create is dead.
#[derive(Clone, Copy, PartialEq)]
enum Init {
    /// SIGCONT: it goes on with create gone (and finds out at its next message).
    GoesOn,
    /// Left waiting: only delete ends it.
    StaysHeld,
}

/// create is SIGKILLed while its init waits at the init's step `step`.
fn create_killed_at_init_step(step: &str, then: Init) {
    let Some(rt) = fault_runtime() else { return };
    let bundle = Bundle::sleeper();
    let id = rt.new_id();
    let dir = HostDir::new();
    let mut create = spawn_create_armed(&rt, &bundle, &id, step, &dir);
    let init = wait_for_held_init(&mut create, step, &dir);
    create.kill().expect("SIGKILL create");
    let status = create.wait().expect("wait for create");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "create at {step}: {status:?}"
    );
    if then == Init::GoesOn {
        signal(init, libc::SIGCONT);
    }
    assert_no_half_state(&rt, &id, &bundle, step);
    assert_force_delete_cleans_up(&rt, &id, &bundle, step);
}

/// The init is SIGKILLed at its step `step`: create fails, undoes everything itself.
fn init_killed_at_init_step(step: &str) {
    let Some(rt) = fault_runtime() else { return };
    let bundle = Bundle::sleeper();
    let id = rt.new_id();
    let dir = HostDir::new();
    let mut create = spawn_create_armed(&rt, &bundle, &id, step, &dir);
    let init = wait_for_held_init(&mut create, step, &dir);
    signal(init, libc::SIGKILL);
    let status = create.wait().expect("wait for create");
    let stderr = std::fs::read_to_string(dir.join("create.stderr")).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(1),
        "create with its init killed at {step}: {status:?}: {stderr}"
    );
    assert!(
        stderr.contains("init"),
        "the error does not say the init died: {stderr}"
    );
    rt.assert_nothing_left(&id, &bundle);
    assert_no_half_state(&rt, &id, &bundle, step);
    assert_force_delete_cleans_up(&rt, &id, &bundle, step);
}

macro_rules! parent_steps {
    ($($test:ident => $step:literal),* $(,)?) => {
        $(#[test] fn $test() { killed_at_parent_step($step) })*
    };
}

macro_rules! parent_steps_in_a_scope {
    ($($test:ident => $step:literal),* $(,)?) => {
        mod systemd_scope {
            $(#[test] fn $test() { super::killed_at_parent_step_in_a_scope($step) })*
        }
    };
}

macro_rules! init_steps {
    ($($module:ident => $step:literal),* $(,)?) => {
        $(mod $module {
            #[test] fn create_killed_init_goes_on() { super::create_killed_at_init_step($step, super::Init::GoesOn) }
            #[test] fn create_killed_init_stays_held() { super::create_killed_at_init_step($step, super::Init::StaysHeld) }
            #[test] fn init_killed() { super::init_killed_at_init_step($step) }
        })*
    };
}

parent_steps! {
    killed_after_the_id_is_claimed => "claimed",
    killed_after_the_cgroup_is_recorded => "cgroup-recorded",
    killed_after_the_cgroup_is_made => "cgroup-made",
    killed_after_limits_are_set => "limits-set",
    killed_after_the_barrier_is_made => "barrier-made",
    killed_after_the_init_is_cloned => "cloned",
    killed_after_the_init_is_in_its_cgroup => "in-cgroup",
    killed_after_the_init_is_let_go => "proceed-sent",
    killed_after_the_v1_cgroup_is_made_while_the_init_sets_up => "v1-cgroup-made",
    killed_after_the_init_is_ready => "init-ready",
    killed_between_state_write_and_rename => "state-tmp-written",
    killed_after_the_state_is_written => "state-written",
    killed_after_the_pid_file_is_written => "pid-file-written",
    killed_after_the_init_is_released => "released",
}

init_steps! {
    init_started => "init-started",
    init_namespaces_joined => "init-namespaces-joined",
    init_mounted_before_pivot_root => "init-mounted",
    init_rootfs_done => "init-rootfs-done",
    init_attributes_set => "init-attributes-set",
}

parent_steps_in_a_scope! {
    killed_before_the_scope_is_asked_for => "cgroup-recorded",
    killed_after_the_init_is_cloned => "cloned",
    killed_in_the_scope => "in-cgroup",
    killed_after_the_init_is_let_go => "proceed-sent",
    killed_after_the_state_is_written => "state-written",
}
