//! sd_notify passthrough (`NOTIFY_SOCKET`), which systemd `Type=notify`
//! services and `podman --sdnotify=container` rely on: a runtime started
//! with NOTIFY_SOCKET gives the container a socket of its own at
//! /run/notify/notify.sock (read-only bind, NOTIFY_SOCKET set to it), and
//! `start` (or `run`) passes the container's READY=1 on to the caller's
//! socket with MAINPID and a BARRIER=1. The container notifies with
//! testdata/sd_notify.c, built static here (busybox has no unix-datagram
//! sender).

use berth_conformance::notify_socket::{sd_notify_sender, HostSocket};
use berth_conformance::{berth_only, Bundle, HostDir, Output, Runtime};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `<runtime> args...` with NOTIFY_SOCKET set to `host`.
fn cmd(host: &HostSocket, rt: &Runtime, args: &[&str]) -> Output {
    rt.cmd_with(args, |c| {
        c.env("NOTIFY_SOCKET", &host.path);
    })
}

/// Runs `<runtime> args...` with NOTIFY_SOCKET set while it reads `count`
/// messages (the runtime waits for the barrier's end, which only reading
/// them closes); returns them and the command's output.
fn relayed(host: &HostSocket, rt: &Runtime, args: &[&str], count: usize) -> (Vec<String>, Output) {
    std::thread::scope(|s| {
        let command = s.spawn(|| cmd(host, rt, args));
        let messages = host.receive(count);
        let out = command.join().expect("runtime thread");
        match messages {
            Ok(messages) => (messages, out),
            Err(e) => panic!("{e}; the runtime: {}", out.describe()),
        }
    })
}

/// runc 1.1 binds its socket by path, and the state root of a test is too
/// deep for a socket address (108 bytes); Berth binds through a descriptor.
/// Checked by hand against runc 1.1.5 with a short `--root`: the same
/// NOTIFY_SOCKET, mount and options, READY=1 and MAINPID; no BARRIER=1,
/// which runc 1.2 added.
const RUNC_PATH_LIMIT: &str = "runc 1.1 cannot bind a notify socket under a state root this deep";

/// A busybox bundle with the sender at /sd_notify running `script`; what it
/// records lands in the returned host directory (at /report inside).
fn notifying_bundle(script: &str) -> (Bundle, PathBuf) {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    std::fs::copy(sd_notify_sender(), bundle.rootfs().join("sd_notify")).expect("copy the sender");
    let report = bundle.share_dir("/report");
    (bundle, report)
}

/// Records what the container sees, says STATUS= (not passed on), then READY=1.
const NOTIFY_AND_STAY: &str = "echo \"$NOTIFY_SOCKET\" > /report/env; \
     grep ' /run/notify ' /proc/self/mounts > /report/mounts; \
     /sd_notify STATUS=starting READY=1; exec sleep 100000";

fn bundle_args<'a>(verb: &'a str, bundle: &'a Bundle, id: &'a str) -> Vec<&'a str> {
    bundle.write_config();
    vec![verb, "--bundle", bundle.path().to_str().unwrap(), id]
}

/// What the container saw: NOTIFY_SOCKET and a read-only /run/notify.
fn assert_container_side(report: &Path) {
    let env = std::fs::read_to_string(report.join("env")).expect("the container wrote env");
    assert_eq!(env.trim(), "/run/notify/notify.sock");
    let mounts = std::fs::read_to_string(report.join("mounts")).expect("mounts");
    let options = mounts.split_whitespace().nth(3).unwrap_or_default();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "/run/notify is not read-only: {mounts}"
    );
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            options.split(',').any(|o| o == flag),
            "/run/notify lacks {flag}: {mounts}"
        );
    }
}

#[test]
fn start_relays_ready_with_the_inits_pid() {
    if !berth_only(RUNC_PATH_LIMIT) {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let (bundle, report) = notifying_bundle(NOTIFY_AND_STAY);
    let id = rt.new_id();
    cmd(&host, &rt, &bundle_args("create", &bundle, &id)).ok();
    // Nothing is passed on before start, and create does not wait.
    assert!(host.is_empty(), "a message came before start");
    let (messages, start) = relayed(&host, &rt, &["start", &id], 3);
    start.ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    assert_eq!(
        messages,
        [
            "READY=1\n".to_string(),
            format!("MAINPID={pid}\n"),
            "BARRIER=1".into()
        ]
    );
    assert_container_side(&report);
    assert!(host.is_empty(), "more than READY, MAINPID and BARRIER came");
    // The socket is the init's: an exec'd process gets the config's
    // environment as recorded at create, without it (as runc's does).
    let exec = rt.cmd(&["exec", &id, "sh", "-c", "echo ${NOTIFY_SOCKET-unset}"]);
    assert_eq!(exec.ok().stdout.trim(), "unset", "{}", exec.describe());
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn detached_run_relays_ready_with_the_inits_pid() {
    if !berth_only(RUNC_PATH_LIMIT) {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let (bundle, report) = notifying_bundle(NOTIFY_AND_STAY);
    let id = rt.new_id();
    let mut args = bundle_args("run", &bundle, &id);
    args.insert(1, "-d");
    let (messages, run) = relayed(&host, &rt, &args, 3);
    run.ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    assert_eq!(
        messages,
        [
            "READY=1\n".to_string(),
            format!("MAINPID={pid}\n"),
            "BARRIER=1".into()
        ]
    );
    assert_container_side(&report);
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn foreground_run_relays_ready_with_its_own_pid() {
    if !berth_only(RUNC_PATH_LIMIT) {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    // The container waits for the barrier's end before it exits, so that
    // the runtime is still there to be MAINPID.
    let (bundle, _report) = notifying_bundle("/sd_notify READY=1; sleep 1; exit 3");
    let id = rt.new_id();
    {
        let (messages, out) = relayed(&host, &rt, &bundle_args("run", &bundle, &id), 3);
        assert_eq!(out.code, 3, "{}", out.describe());
        assert_eq!(messages[0], "READY=1\n");
        let main_pid: i64 = messages[1]
            .strip_prefix("MAINPID=")
            .and_then(|p| p.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("not a MAINPID: {:?}", messages[1]));
        // The runtime stays in the foreground: systemd should watch it, not the container.
        let comm = std::fs::read_to_string(format!("/proc/{main_pid}/comm")).unwrap_or_default();
        let runtime_name = berth_conformance::runtime();
        let runtime_name = runtime_name
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        assert!(
            comm.trim() == runtime_name || comm.is_empty(),
            "MAINPID {main_pid} is {comm:?}, not the runtime"
        );
        assert_eq!(messages[2], "BARRIER=1");
    }
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn start_returns_when_the_container_stops_without_ready() {
    if !berth_only("runc 1.1 waits for READY as long as the stopped init is an unreaped zombie") {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let (bundle, _report) = notifying_bundle("/sd_notify STATUS=never-ready; exit 0");
    let id = rt.new_id();
    cmd(&host, &rt, &bundle_args("create", &bundle, &id)).ok();
    cmd(&host, &rt, &["start", &id]).ok();
    rt.wait_status(&id, "stopped");
    assert!(host.is_empty(), "something was passed on without READY");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn the_mount_never_follows_a_symlinked_run_out_of_the_rootfs() {
    if !berth_only(RUNC_PATH_LIMIT) {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let (mut bundle, _report) = notifying_bundle("/sd_notify READY=1; exec sleep 100000");
    // /run points at a host directory: it must resolve inside the rootfs.
    let outside = HostDir::new();
    let run = bundle.rootfs().join("run");
    let _ = std::fs::remove_dir_all(&run);
    let _ = std::fs::remove_file(&run);
    symlink(outside.path(), &run).expect("symlink /run");
    bundle.edit(|_| {});
    let id = rt.new_id();
    cmd(&host, &rt, &bundle_args("create", &bundle, &id)).ok();
    let (messages, start) = relayed(&host, &rt, &["start", &id], 3);
    start.ok();
    assert_eq!(messages[0], "READY=1\n");
    let relative = outside.path().strip_prefix("/").expect("absolute");
    assert!(
        bundle.rootfs().join(relative).join("notify").is_dir(),
        "/run/notify was not made where /run leads inside the rootfs"
    );
    let leaked: Vec<_> = std::fs::read_dir(outside.path())
        .expect("read the host dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leaked.is_empty(),
        "made on the host through /run: {leaked:?}"
    );
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_container_created_without_notify_socket_gets_none() {
    let rt = Runtime::new();
    let (bundle, report) = notifying_bundle(
        "echo \"[$NOTIFY_SOCKET]\" > /report/env; grep -c ' /run/notify ' /proc/self/mounts > /report/mounts; exec sleep 100000",
    );
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.wait_status(&id, "running");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !report.join("mounts").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let env = std::fs::read_to_string(report.join("env")).expect("env");
    assert_eq!(env.trim(), "[]");
    let mounts = std::fs::read_to_string(report.join("mounts")).expect("mounts");
    assert_eq!(mounts.trim(), "0");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn start_with_notify_socket_of_a_container_created_without_it_relays_nothing() {
    if !berth_only("runc fails start: it binds into a socket directory create never made") {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let (bundle, _report) = notifying_bundle("exec sleep 100000");
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    cmd(&host, &rt, &["start", &id]).ok();
    rt.wait_status(&id, "running");
    assert!(host.is_empty());
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn an_abstract_notify_socket_gets_ready() {
    if !berth_only(RUNC_PATH_LIMIT) {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind_abstract();
    let (bundle, _report) = notifying_bundle("/sd_notify READY=1; exec sleep 100000");
    let id = rt.new_id();
    cmd(&host, &rt, &bundle_args("create", &bundle, &id)).ok();
    let (messages, start) = relayed(&host, &rt, &["start", &id], 3);
    start.ok();
    assert_eq!(messages[0], "READY=1\n");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_notify_socket_reached_through_someone_elses_link_is_refused_before_start() {
    if !berth_only("runc follows any link at the caller's socket path") {
        return;
    }
    let rt = Runtime::new();
    let host = HostSocket::bind();
    let links = HostDir::new();
    let link = links.path().join("planted.sock");
    symlink(&host.path, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(1000), Some(1000)).expect("lchown");
    let (bundle, _report) = notifying_bundle("/sd_notify READY=1; exec sleep 100000");
    let id = rt.new_id();
    cmd(&host, &rt, &bundle_args("create", &bundle, &id)).ok();
    let start = rt.cmd_with(&["start", &id], |c| {
        c.env("NOTIFY_SOCKET", &link);
    });
    start.fails_with("symbolic link owned by uid 1000");
    // Refused before the container was let go: it can still be started.
    assert_eq!(rt.state(&id)["status"], "created");
    let (messages, start) = relayed(&host, &rt, &["start", &id], 3);
    start.ok();
    assert_eq!(messages[0], "READY=1\n");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_notify_socket_that_is_not_a_socket_fails_start_and_run_cleanly() {
    if !berth_only("runc 1.1 finds out only once the container is ready") {
        return;
    }
    let rt = Runtime::new();
    let files = HostDir::new();
    let not_socket = files.path().join("plain-file");
    std::fs::write(&not_socket, "").expect("write");
    let (bundle, _report) = notifying_bundle("/sd_notify READY=1; exec sleep 100000");
    let id = rt.new_id();
    let with_env = |args: &[&str]| {
        rt.cmd_with(args, |c| {
            c.env("NOTIFY_SOCKET", &not_socket);
        })
    };
    with_env(&bundle_args("create", &bundle, &id)).ok();
    with_env(&["start", &id]).fails_with("is not a socket");
    assert_eq!(rt.state(&id)["status"], "created");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
    let id = rt.new_id();
    let mut args = bundle_args("run", &bundle, &id);
    args.insert(1, "-d");
    with_env(&args).fails_with("is not a socket");
    rt.assert_nothing_left(&id, &bundle);
}
