//! config.md "POSIX-platform Hooks" and runtime.md "Lifecycle": each hook runs
//! at its point, in its namespace, with the state on stdin, its own args and
//! env; a failing create-phase hook fails `create` and leaves nothing, a
//! failing poststart hook fails `start` and stops the container (spec 1.3).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_conformance::{berth_only, host_namespace, Bundle, HostDir, Runtime};
use serde_json::{json, Value};

/// A hook script that records, under $OUT, the state it got, its mount
/// namespace and its working directory, in files named after its first argument.
const RECORDER: &str = "#!/bin/sh\nkind=$1\ncat > \"$OUT/$kind.state\"\nreadlink /proc/self/ns/mnt > \"$OUT/$kind.mnt\"\npwd > \"$OUT/$kind.cwd\"\n";

fn write_script(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn hook(path: &Path, kind: &str, out: &Path) -> Value {
    json!({ "path": path, "args": ["recorder", kind], "env": [format!("OUT={}", out.display())] })
}

fn recorded(out: &Path, kind: &str) -> (Value, String, String) {
    let read = |ext: &str| {
        fs::read_to_string(out.join(format!("{kind}.{ext}")))
            .unwrap_or_else(|e| panic!("{kind} hook did not run ({e})"))
    };
    let state = serde_json::from_str(&read("state")).unwrap();
    (
        state,
        read("mnt").trim().to_string(),
        read("cwd").trim().to_string(),
    )
}

/// runtime.md "Lifecycle": poststart hooks run after the user's program
/// started (step 9), not during create; runc 1.1 ran them in create (fixed in 1.2).
const RUNC_POSTSTART_AT_CREATE: &str =
    "runc 1.1.5 runs poststart hooks in create, against runtime.md's lifecycle";

#[test]
fn every_hook_runs_at_its_point_with_the_state_berth_only() {
    if !berth_only(RUNC_POSTSTART_AT_CREATE) {
        return;
    }
    let out = HostDir::new();
    let host_script = out.path().join("recorder.sh");
    write_script(&host_script, RECORDER);
    let mut bundle = Bundle::busybox(&["sh", "-c", "cat /dev/shm/startContainer.state"]);
    // startContainer runs after pivot_root: its program must be in the rootfs.
    write_script(&bundle.rootfs().join("recorder.sh"), RECORDER);
    let (h, o) = (host_script.clone(), out.path().to_path_buf());
    bundle.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook(&h, "prestart", &o)],
            "createRuntime": [hook(&h, "createRuntime", &o)],
            "createContainer": [hook(&h, "createContainer", &o)],
            "startContainer": [hook(Path::new("/recorder.sh"), "startContainer", Path::new("/dev/shm"))],
            "poststart": [hook(&h, "poststart", &o)],
            "poststop": [hook(&h, "poststop", &o)],
        });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let host_mnt = host_namespace("mnt");
    for kind in ["prestart", "createRuntime"] {
        let (state, mnt, _) = recorded(out.path(), kind);
        assert_eq!(state["id"], json!(id), "{kind}: {state}");
        assert_eq!(state["status"], "creating", "{kind}: {state}");
        assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{kind}: {state}");
        assert_eq!(
            mnt, host_mnt,
            "{kind} must run in the runtime's mount namespace"
        );
    }
    let (state, mnt, cwd) = recorded(out.path(), "createContainer");
    assert_eq!(state["id"], json!(id));
    assert_ne!(
        mnt, host_mnt,
        "createContainer must run in the container's mount namespace"
    );
    assert_eq!(
        Path::new(&cwd),
        bundle.rootfs(),
        "createContainer runs from the rootfs"
    );
    assert!(
        !out.path().join("poststart.state").exists(),
        "poststart ran before start"
    );

    rt.start(&id).ok();
    let (state, mnt, _) = recorded(out.path(), "poststart");
    assert_eq!(state["id"], json!(id));
    assert_eq!(mnt, host_mnt);
    rt.wait_status(&id, "stopped");
    assert!(
        !out.path().join("poststop.state").exists(),
        "poststop ran before delete"
    );
    rt.delete(&id).ok();
    let (state, _, _) = recorded(out.path(), "poststop");
    assert_eq!(state["id"], json!(id));
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn start_container_hook_runs_inside_before_the_program() {
    let out = HostDir::new();
    let mut bundle = Bundle::busybox(&["sh", "-c", "cat /dev/shm/startContainer.state"]);
    write_script(&bundle.rootfs().join("recorder.sh"), RECORDER);
    bundle.edit(|c| {
        c["hooks"] = json!({ "startContainer": [hook(Path::new("/recorder.sh"), "startContainer", Path::new("/dev/shm"))] });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let run = rt.run(&id, &bundle, &[]);
    run.ok();
    let state: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no state from startContainer ({e}): {}", run.describe()));
    assert_eq!(state["id"], json!(id));
    drop(out);
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let out = HostDir::new();
    let script = out.path().join("fail.sh");
    write_script(&script, "#!/bin/sh\necho hook-said-no >&2\nexit 3\n");
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["hooks"] = json!({ "createRuntime": [{ "path": script }] }));
    let rt = Runtime::new();
    let id = rt.new_id();
    let result = rt.create(&id, &bundle, &[]);
    let text = result.fails();
    assert!(text.contains("hook"), "{}", result.describe());
    rt.assert_nothing_left(&id, &bundle);
}

/// runtime.md "Lifecycle" step 9 (spec 1.3): a failing poststart hook MUST
/// generate an error and stop the container; the hooks after it do not run.
/// Both `start` and a detached `run` fail, and the run leaves nothing.
#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container_berth_only() {
    if !berth_only(RUNC_POSTSTART_AT_CREATE) {
        return;
    }
    let out = HostDir::new();
    let script = out.path().join("fail.sh");
    write_script(
        &script,
        "#!/bin/sh
echo poststart-said-no >&2
exit 3
",
    );
    let after = out.path().join("after");
    let hooks = json!({ "poststart": [
        { "path": script },
        { "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", after.display())] }
    ] });
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["hooks"] = hooks.clone());
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let started = rt.start(&id);
    let text = started.fails();
    assert!(text.contains("poststart-said-no"), "{}", started.describe());
    assert_eq!(rt.wait_status(&id, "stopped")["status"], "stopped");
    assert!(!after.exists(), "the hook after the failing one ran");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);

    let id = rt.new_id();
    let run = rt.run(&id, &bundle, &["--detach"]);
    run.fails_with("poststart-said-no");
    rt.assert_nothing_left(&id, &bundle);
}

/// config.md "POSIX-platform Hooks": `args` is the hook's whole argv (args[0]
/// included), `env` its whole environment; runtime.md "State": the state on
/// stdin carries the config's annotations.
#[test]
fn a_hook_gets_its_args_its_env_only_and_the_annotations() {
    let out = HostDir::new();
    // busybox picks its applet by argv[0]: were args[0] not passed as argv[0],
    // it would look for an applet named "-c" and fail the hook.
    let script = "cat > \"$OUT/state\"; env > \"$OUT/env\"; echo \"$0 $1\" > \"$OUT/args\"";
    let mut bundle = Bundle::sleeper();
    let o = out.path().to_path_buf();
    bundle.edit(|c| {
        c["annotations"] = json!({ "org.example.a": "1", "org.example.b": "two words" });
        c["hooks"] = json!({ "createRuntime": [{
            "path": "/bin/busybox",
            "args": ["sh", "-c", script, "first", "second"],
            "env": [format!("OUT={}", o.display()), "HOOK_VAR=x y"],
        }] });
    });
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let create = ["create", "--bundle", bundle.path().to_str().unwrap(), &id];
    rt.cmd_with(&create, |command| {
        command.env("ONLY_THE_RUNTIME_HAS_THIS", "1");
    })
    .ok();
    let read = |name: &str| {
        fs::read_to_string(out.path().join(name))
            .unwrap_or_else(|e| panic!("the hook wrote no {name} ({e})"))
    };
    let state: Value = serde_json::from_str(&read("state")).unwrap();
    assert_eq!(
        state["annotations"],
        json!({ "org.example.a": "1", "org.example.b": "two words" }),
        "{state}"
    );
    assert_eq!(read("args"), "first second\n");
    let env = read("env");
    assert!(env.lines().any(|l| l == "HOOK_VAR=x y"), "{env}");
    assert!(
        !env.contains("ONLY_THE_RUNTIME_HAS_THIS"),
        "the runtime's environment reached the hook: {env}"
    );
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// config.md "POSIX-platform Hooks": `timeout` is the number of seconds before
/// aborting the hook. A create-phase hook that outlives it fails `create`,
/// which leaves nothing, and is killed.
#[test]
fn a_hook_past_its_timeout_fails_create_and_is_killed() {
    // A duration no other process has on its command line: how the hook is found again.
    let seconds = (900_000 + std::process::id()).to_string();
    let mut bundle = Bundle::sleeper();
    let s = seconds.clone();
    bundle.edit(|c| {
        c["hooks"] = json!({ "createRuntime": [{ "path": "/bin/busybox", "args": ["sleep", s], "timeout": 1 }] });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).fails_with("timeout");
    rt.assert_nothing_left(&id, &bundle);
    let hook_cmdline = format!("sleep\0{seconds}\0");
    let alive: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == hook_cmdline.as_bytes()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        alive.is_empty(),
        "the timed-out hook still runs as pid {alive:?}"
    );
}

/// The init is moved into its cgroup while it sets itself up (see create/mod.rs);
/// that move must be done before any hook process of the container starts:
/// a createContainer hook (forked by the init) is in the container's cgroup
/// in every hierarchy, as is the program.
#[test]
fn a_create_container_hook_runs_inside_the_containers_cgroup() {
    let out = HostDir::new();
    let script = out.path().join("cgroup.sh");
    write_script(
        &script,
        "#!/bin/sh\ncat /proc/self/cgroup > \"$OUT/hook.cgroup\"\n",
    );
    let mut bundle = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    let o = out.path().to_path_buf();
    bundle.edit(|c| {
        c["hooks"] = json!({ "createContainer": [{ "path": script, "env": [format!("OUT={}", o.display())] }] });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let hook = fs::read_to_string(out.path().join("hook.cgroup")).expect("the hook ran");
    for controller in ["pids", "memory", "cpu,cpuacct", "devices", "freezer"] {
        let line = hook
            .lines()
            .find(|l| l.split(':').nth(1) == Some(controller));
        if let Some(line) = line {
            assert!(line.contains(&id), "the createContainer hook ran outside the container's {controller} cgroup: {line}\n{hook}");
        }
    }
    assert!(
        hook.lines().any(|l| l.contains(&id)),
        "the hook is in no cgroup of the container:\n{hook}"
    );
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}
