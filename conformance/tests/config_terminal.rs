//! config.md "process.terminal" with runc's `--console-socket` contract
//! (what containerd's shim relies on): the runtime sends the pty master over
//! the socket as one SCM_RIGHTS message, and the container's stdio is the
//! slave, which is also its controlling terminal and /dev/console.

use berth_conformance::{berth_only, read_until_closed, Bundle, ConsoleSocket, HostDir, Runtime};
use serde_json::json;

#[test]
fn console_socket_receives_the_master_and_the_container_talks_through_it() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "tty; stty size; [ -c /dev/console ] && echo console-ok; echo done",
    ]);
    bundle.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({ "height": 33, "width": 111 });
    });
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(
        &id,
        &bundle,
        &["--console-socket", socket.path().to_str().unwrap()],
    )
    .ok();
    let received = socket
        .receive()
        .expect("the runtime sent the master as go-runc expects");
    assert!(
        !received.name.is_empty(),
        "the message carries the master's name"
    );
    rt.start(&id).ok();
    let out = read_until_closed(&received.master);
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        ["/dev/pts/0", "33 111", "console-ok", "done"],
        "{out:?}"
    );
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_detached_terminal_without_a_console_socket_is_refused() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle, &[]);
    out.fails_with("cannot allocate tty if runc will detach without setting console socket");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_console_socket_without_a_terminal_is_refused() {
    let bundle = Bundle::sleeper();
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.create(
        &id,
        &bundle,
        &["--console-socket", socket.path().to_str().unwrap()],
    );
    out.fails_with("cannot use console socket if runc will not detach or allocate tty");
    rt.assert_nothing_left(&id, &bundle);
}

/// `run` in the foreground relays the container's terminal to its own stdio,
/// whether or not that stdio is itself a terminal.
#[test]
fn foreground_run_relays_the_terminal_berth_only() {
    if !berth_only("runc 1.1 insists on opening /dev/tty, which a test has not got") {
        return;
    }
    let mut bundle = Bundle::busybox(&["sh", "-c", "tty; echo relayed; exit 3"]);
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert_eq!(out.code, 3, "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().map(str::trim_end).collect();
    assert_eq!(lines, ["/dev/pts/0", "relayed"], "{}", out.describe());
    rt.assert_nothing_left(&id, &bundle);
}
