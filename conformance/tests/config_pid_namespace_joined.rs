//! config-linux.md "Namespaces": a pid namespace joined by `path` (a
//! Kubernetes pod's containers share the sandbox's). Berth's init sets up
//! outside that namespace and the container's process is forked into it at
//! the end (docs/security.md); everything a caller sees must be as if it had
//! been born there: its /proc, its pid in state.json and the pid file, its
//! terminal, its startContainer hooks, kill and delete.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use berth_conformance::{read_until_closed, Bundle, ConsoleSocket, HostDir, Runtime};
use serde_json::json;

/// A running sleeper whose pid namespace the others join; its host pid.
fn sandbox(rt: &Runtime) -> (String, Bundle, i64) {
    let bundle = Bundle::sleeper();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    (id, bundle, pid)
}

fn joining(args: &[&str], sandbox_pid: i64) -> Bundle {
    let mut bundle = Bundle::busybox(args);
    bundle.join_pid_namespace_of(sandbox_pid);
    bundle
}

fn ns_of(pid: i64) -> String {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The process in state.json and the pid file is in the joined namespace;
/// its /proc shows that namespace (the sandbox is its pid 1), and kill and
/// delete reach it.
#[test]
fn the_state_pid_file_and_proc_are_the_joined_namespaces() {
    let rt = Runtime::new();
    let (sandbox_id, sandbox_bundle, sandbox_pid) = sandbox(&rt);
    let dir = HostDir::new();
    let pid_file = dir.path().join("joined.pid");
    let bundle = joining(&["sleep", "1000"], sandbox_pid);
    let id = rt.new_id();
    rt.create(&id, &bundle, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    assert_eq!(
        fs::read_to_string(&pid_file).expect("pid file").trim(),
        pid.to_string()
    );
    assert_eq!(
        ns_of(pid),
        ns_of(sandbox_pid),
        "born in the joined namespace"
    );
    assert_eq!(rt.state(&id)["status"], "created");
    rt.start(&id).ok();
    rt.wait_status(&id, "running");
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; echo $$",
    ]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("while :")),
        "pid 1 of the container's /proc is the sandbox's: {}",
        out.describe()
    );
    rt.kill_and_delete(&id, &bundle);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z")),
        "delete killed the process"
    );
    rt.kill_and_delete(&sandbox_id, &sandbox_bundle);
}

/// The forked process takes the terminal as its controlling one (the init
/// that set up, which made the pty, is gone by then).
#[test]
fn a_terminal_is_the_joined_processs_controlling_one() {
    let rt = Runtime::new();
    let (sandbox_id, sandbox_bundle, sandbox_pid) = sandbox(&rt);
    let mut bundle = joining(
        &[
            "sh",
            "-c",
            "tty; [ -c /dev/console ] && echo console-ok; sleep 0.3; echo done",
        ],
        sandbox_pid,
    );
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    let id = rt.new_id();
    rt.create(
        &id,
        &bundle,
        &["--console-socket", socket.path().to_str().unwrap()],
    )
    .ok();
    let received = socket.receive().expect("the master");
    rt.start(&id).ok();
    let out = read_until_closed(&received.master);
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert_eq!(lines, ["/dev/pts/0", "console-ok", "done"], "{out:?}");
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
    rt.kill_and_delete(&sandbox_id, &sandbox_bundle);
}

/// startContainer hooks run in the init after `start`: the process forked
/// into the namespace runs them there, then the program.
#[test]
fn start_container_hooks_run_in_the_joined_namespace() {
    let rt = Runtime::new();
    let (sandbox_id, sandbox_bundle, sandbox_pid) = sandbox(&rt);
    let mut bundle = joining(&["cat", "/dev/shm/hook"], sandbox_pid);
    let script = bundle.rootfs().join("hook.sh");
    fs::write(&script, "#!/bin/sh\ncat /proc/1/cmdline > /dev/shm/hook\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    bundle.edit(|c| c["hooks"] = json!({ "startContainer": [{ "path": "/hook.sh" }] }));
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(
        out.success() && out.stdout.contains("while :"),
        "{}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
    rt.kill_and_delete(&sandbox_id, &sandbox_bundle);
}
