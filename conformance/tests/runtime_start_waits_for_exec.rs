//! runtime.md "start": `start` runs the user's program, and returns only once
//! that program has been exec'd (runc's start reads the exec fifo until EOF,
//! which comes when the init's end of it is closed, at the exec). Whatever
//! comes right after `start` (a poststart hook, a monitor that looks at
//! /proc/<pid>/exe) must find the user's program, not the runtime or a helper
//! still on its way to the exec.
//!
//! Signals sent right after `start` are not tested: a shell that installs a
//! trap is still racy against its own startup. The exe is deterministic.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_conformance::{berth_only, runtime, wait_until, Bundle, HostDir, Runtime};
use serde_json::{json, Value};

/// runc 1.1.5 as Debian ships it (with the CVE-2024-21626 fix) closes all its
/// descriptors, the exec fifo's among them, just before the execve: its start
/// returns a moment before the exec (the init's exe still reads "/"), which
/// the big environment below makes long enough to see; even without it, it
/// shows in most rounds.
const RUNC_CLOSES_THE_FIFO_BEFORE_EXEC: &str =
    "runc 1.1.5 closes the exec fifo just before execve, so its start can return before the exec";

/// The device and inode of the file `path` names (following links).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The init's exe the moment it is asked: its device and inode, then what
/// the link says (read just after, for the failure message).
fn exe_now(pid: i64) -> (Option<(u64, u64)>, String) {
    let link = format!("/proc/{pid}/exe");
    let id = file_id(Path::new(&link));
    let text = match fs::read_link(&link) {
        Ok(target) => format!("{link} -> {}", target.display()),
        Err(e) => format!("{link}: {e}"),
    };
    (id, text)
}

fn busybox_of(bundle: &Bundle) -> (u64, u64) {
    file_id(&bundle.rootfs().join("bin/busybox")).expect("the rootfs has busybox")
}

/// The runtime with `--root` and `args`, waited for without polling (the
/// Runtime helpers poll every few milliseconds, which would give a late exec
/// time to catch up). Only for commands whose success the caller asserts.
fn runtime_now(rt: &Runtime, args: &[&str]) {
    let status = Command::new(runtime())
        .arg("--root")
        .arg(rt.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("spawn the runtime");
    assert!(status.success(), "{args:?}: {status}");
}

/// A big environment: the exec copies it (twice where a helper execs on
/// the runtime's behalf), so the window between the release of the init and
/// its exec of the user's program grows from microseconds to a millisecond
/// or more, and a start that returns early is caught nearly every round.
fn big_environment(config: &mut Value) {
    let env = config["process"]["env"]
        .as_array_mut()
        .expect("process.env");
    for i in 0..64 {
        env.push(json!(format!("FILLER{i}={}", "x".repeat(16 * 1024))));
    }
}

/// Old Berth's start returned once it had written the barrier's byte: the
/// init's light waiter (exe "/memfd:berth-waiter (deleted)") was then still
/// on its way to the exec. That is a race; twenty rounds with a big
/// environment make a regression show nearly every time.
#[test]
fn the_init_is_the_users_program_as_soon_as_start_returns_berth_only() {
    if !berth_only(RUNC_CLOSES_THE_FIFO_BEFORE_EXEC) {
        return;
    }
    let mut bundle = Bundle::busybox(&["sleep", "1000000"]);
    bundle.edit(big_environment);
    start_rounds(&bundle, 20);
}

/// `rounds` times: create, start, and check the init is the user's program
/// the moment `start` has returned.
fn start_rounds(bundle: &Bundle, rounds: usize) {
    let busybox = busybox_of(bundle);
    let rt = Runtime::new();
    for round in 0..rounds {
        let id = rt.new_id();
        rt.create(&id, bundle, &[]).ok();
        let pid = rt.state(&id)["pid"]
            .as_i64()
            .expect("state has the init's pid");
        runtime_now(&rt, &["start", &id]);
        let (exe, link) = exe_now(pid);
        assert_eq!(
            exe,
            Some(busybox),
            "round {round}: right after start, the init is not the rootfs's busybox ({link})"
        );
        rt.kill_and_delete(&id, bundle);
    }
}

/// `run --detach` is create and start in one: when it returns, the same
/// holds (old Berth: the same race as above).
#[test]
fn the_init_is_the_users_program_as_soon_as_run_detach_returns_berth_only() {
    if !berth_only(RUNC_CLOSES_THE_FIFO_BEFORE_EXEC) {
        return;
    }
    let mut bundle = Bundle::busybox(&["sleep", "1000000"]);
    bundle.edit(big_environment);
    bundle.write_config();
    let busybox = busybox_of(&bundle);
    let dir = HostDir::new();
    let rt = Runtime::new();
    for round in 0..10 {
        let id = rt.new_id();
        let pid_file = dir.path().join(format!("{id}.pid"));
        let bundle_path = bundle.path().to_str().unwrap();
        runtime_now(
            &rt,
            &[
                "run",
                "--detach",
                "--bundle",
                bundle_path,
                "--pid-file",
                pid_file.to_str().unwrap(),
                &id,
            ],
        );
        let pid: i64 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .expect("a pid in the pid file");
        let (exe, link) = exe_now(pid);
        assert_eq!(
            exe,
            Some(busybox),
            "round {round}: right after run -d, the init is not the rootfs's busybox ({link})"
        );
        rt.kill_and_delete(&id, &bundle);
    }
}

/// A startContainer hook that takes its time: it runs in the init after
/// `start` released it and before the exec (runtime.md "Lifecycle" step 7),
/// so for those 300ms the init is the runtime, and old Berth's start returned
/// in the middle of them every time (exe: the berth binary). runc 1.1.5 waits
/// for its hooks too (it closes the fifo after them), but still returns just
/// before its exec, as above.
fn slow_start_container_hook(config: &mut Value) {
    // The hook runs in the container, after pivot_root: busybox's sh.
    config["hooks"]["startContainer"] =
        json!([{ "path": "/bin/sh", "args": ["sh", "-c", "sleep 0.3"] }]);
}

#[test]
fn start_waits_for_the_exec_past_a_slow_start_container_hook_berth_only() {
    if !berth_only(RUNC_CLOSES_THE_FIFO_BEFORE_EXEC) {
        return;
    }
    let mut bundle = Bundle::busybox(&["sleep", "1000000"]);
    bundle.edit(slow_start_container_hook);
    start_rounds(&bundle, 3);
}

/// A host script for hooks.poststart: reads the state on stdin, and writes
/// the init's exe (device:inode, then the link) to $OUT.
const EXE_RECORDER: &str = "#!/bin/sh\n\
    pid=$(sed -n 's/.*\"pid\": *\\([0-9][0-9]*\\).*/\\1/p')\n\
    { stat -L -c %d:%i /proc/$pid/exe; readlink /proc/$pid/exe; } > \"$OUT.tmp\"\n\
    mv \"$OUT.tmp\" \"$OUT\"\n";

/// runtime.md "Lifecycle" step 9: poststart hooks run after the user's
/// program has started, so the hook must see it as the init's exe. Old Berth
/// ran them as soon as the init was released: with a slow startContainer
/// hook its poststart hook saw the berth binary every time (without one, the
/// light waiter usually wins the race against the hook's own start, so that
/// case is a weaker check). runc 1.1.5 runs poststart hooks in create,
/// before the program exists at all.
#[test]
fn a_poststart_hook_sees_the_users_program_berth_only() {
    if !berth_only("runc 1.1.5 runs poststart hooks in create, against runtime.md's lifecycle") {
        return;
    }
    let dir = HostDir::new();
    let script = dir.path().join("exe-recorder.sh");
    fs::write(&script, EXE_RECORDER).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let rt = Runtime::new();
    for slow_hook in [true, false] {
        let mut bundle = Bundle::busybox(&["sleep", "1000000"]);
        bundle.edit(big_environment);
        if slow_hook {
            bundle.edit(slow_start_container_hook);
        }
        let busybox = busybox_of(&bundle);
        let expected = format!("{}:{}", busybox.0, busybox.1);
        for round in 0..5 {
            let out = dir.path().join(format!("exe-{slow_hook}-{round}"));
            bundle.edit(|c| {
                c["hooks"]["poststart"] = json!([{
                    "path": script, "args": ["exe-recorder"],
                    "env": [format!("OUT={}", out.display()), "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string()],
                }]);
            });
            let id = rt.new_id();
            rt.create(&id, &bundle, &[]).ok();
            rt.start(&id).ok();
            assert!(
                wait_until(Duration::from_secs(10), || out.exists()),
                "round {round}: the poststart hook wrote nothing"
            );
            let recorded = fs::read_to_string(&out).unwrap();
            assert_eq!(
                recorded.lines().next(),
                Some(expected.as_str()),
                "slow startContainer hook {slow_hook}, round {round}: the poststart hook saw {recorded:?}, not the rootfs's busybox"
            );
            rt.kill_and_delete(&id, &bundle);
        }
    }
}
