//! Podman with the runtime under test as its OCI runtime (`podman --runtime PATH`), on a
//! busybox rootfs directory (`--rootfs`), with storage of its own per test.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use berth_conformance::notify_socket::{sd_notify_sender, HostSocket};
use berth_conformance::podman::Podman;
use berth_conformance::{unique_name, SLEEPER};

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn run_returns_the_exit_code_and_output() {
    let Some(podman) = Podman::new() else { return };
    let name = unique_name();
    let args = podman.run_args(
        &["--name", &name],
        &["sh", "-c", "echo out-$((6*7)); hostname; exit 3"],
    );
    let out = podman.podman(&strs(&args));
    assert_eq!(out.code, 3, "{}", out.describe());
    assert!(out.stdout.contains("out-42"), "{}", out.describe());
    let id = podman.inspect(&name, "{{.Id}}");
    assert_eq!(podman.inspect(&name, "{{.State.ExitCode}}"), "3");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[]);
}

#[test]
fn exec_stop_and_rm() {
    let Some(podman) = Podman::new() else { return };
    let name = unique_name();
    let args = podman.run_args(&["-d", "--name", &name], SLEEPER);
    podman.podman(&strs(&args)).ok();
    let id = podman.inspect(&name, "{{.Id}}");
    let pid: i64 = podman.inspect(&name, "{{.State.Pid}}").parse().unwrap_or(0);
    let conmon: i64 = podman
        .inspect(&name, "{{.State.ConmonPid}}")
        .parse()
        .unwrap_or(0);
    assert!(pid > 0 && conmon > 0, "no pids for a running container");

    let out = podman.podman(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(out.code, 4, "{}", out.describe());
    assert!(out.stdout.contains("pid1=sh"), "{}", out.describe());

    let out = podman.podman_in_terminal(&[
        "exec",
        "-t",
        &name,
        "sh",
        "-c",
        "test -t 0 && echo is-a-tty; exit 6",
    ]);
    assert_eq!(out.code, 6, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());

    // SIGTERM first: the sleeper's trap exits 0.
    podman.podman(&["stop", "--time", "30", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.ExitCode}}"), "0");
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[pid, conmon]);
}

#[test]
fn tty_run_gets_a_terminal() {
    let Some(podman) = Podman::new() else { return };
    let name = unique_name();
    let args = podman.run_args(
        &["-t", "--name", &name],
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; tty; exit 5",
        ],
    );
    let out = podman.podman_in_terminal(&strs(&args));
    assert_eq!(out.code, 5, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.describe());
    let id = podman.inspect(&name, "{{.Id}}");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[]);
}

#[test]
fn kill_of_a_running_container() {
    let Some(podman) = Podman::new() else { return };
    let name = unique_name();
    let args = podman.run_args(&["-d", "--name", &name], &["sleep", "1000"]);
    podman.podman(&strs(&args)).ok();
    let id = podman.inspect(&name, "{{.Id}}");
    let pid: i64 = podman.inspect(&name, "{{.State.Pid}}").parse().unwrap_or(0);
    podman.podman(&["kill", "--signal", "KILL", &name]).ok();
    podman.podman(&["wait", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.ExitCode}}"), "137");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[pid]);
}

/// The runtime's error text reaches the podman user, as the bare message: with the
/// runtime listed in `runtime_supports_json`, podman reads it from the runtime's JSON log.
/// A missing command is podman's exit code 127.
#[test]
fn runtime_errors_reach_the_podman_user() {
    let Some(podman) = Podman::new() else { return };
    let name = unique_name();
    let args = podman.run_args(&["--name", &name], &["/no/such/binary"]);
    let out = podman.podman(&strs(&args));
    let text = out.fails();
    assert_eq!(out.code, 127, "{}", out.describe());
    assert!(
        text.contains("unable to start container process: exec: \"/no/such/binary\""),
        "{}",
        out.describe()
    );
    assert!(
        !text.contains("level=error"),
        "podman showed a raw log line: {}",
        out.describe()
    );
    let id = podman.inspect(&name, "{{.Id}}");
    podman.podman(&["rm", "--force", &name]).ok();
    podman.assert_nothing_left(&id, &[]);
}

/// `--privileged` lists every host device, /dev/ptmx (the host's 5:2 node) among them,
/// and `--device /dev/ptmx` lists that one: the container's /dev/ptmx stays the link into
/// its own devpts (as runc makes it), a pty can be had from it, and the host's other
/// devices are there as nodes.
#[test]
fn privileged_and_device_ptmx_runs_keep_the_ptmx_link() {
    let Some(podman) = Podman::new() else { return };
    let script = "readlink /dev/ptmx; stat -L -c '%F %t:%T' /dev/ptmx; \
                  readlink /dev/stdin; test -c /dev/null && echo null-is-a-node";
    let expected = "pts/ptmx\ncharacter special file 5:2\n/proc/self/fd/0\nnull-is-a-node\n";
    for flag in ["--privileged", "--device=/dev/ptmx"] {
        let name = unique_name();
        let args = podman.run_args(&["--name", &name, flag], &["sh", "-c", script]);
        let out = podman.podman(&strs(&args));
        assert_eq!(out.ok().stdout, expected, "{flag}: {}", out.describe());
        let id = podman.inspect(&name, "{{.Id}}");
        podman.podman(&["rm", &name]).ok();
        podman.assert_nothing_left(&id, &[]);
    }
    // A terminal: the pty comes through the link, from the container's devpts.
    let name = unique_name();
    let args = podman.run_args(
        &["-t", "--privileged", "--name", &name],
        &["sh", "-c", "tty; exit 7"],
    );
    let out = podman.podman_in_terminal(&strs(&args));
    assert_eq!(out.code, 7, "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/0"), "{}", out.describe());
    let id = podman.inspect(&name, "{{.Id}}");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[]);
}

/// Podman adds `tmpcopyup` to every tmpfs it asks for: `--read-only` (a tmpfs at /run,
/// /tmp and /var/tmp), `--tmpfs` and `--mount type=tmpfs`. Each starts with what the
/// rootfs held there (a symlink as the link itself), takes writes that never reach the
/// rootfs, and the rest of the rootfs stays read-only.
#[test]
fn read_only_and_tmpfs_mounts_start_with_the_rootfs_contents() {
    let Some(podman) = Podman::new() else { return };
    let rootfs = Path::new(&podman.rootfs()).to_path_buf();
    for (dir, contents) in [("x", "from-x"), ("y", "from-y"), ("run", "from-run")] {
        fs::create_dir_all(rootfs.join(dir).join("sub")).unwrap();
        fs::write(rootfs.join(dir).join("sub/file"), contents).unwrap();
    }
    symlink("/etc/shadow", rootfs.join("x/link")).unwrap();
    let script = "cat /x/sub/file /y/sub/file /run/sub/file; echo; readlink /x/link; \
        for d in /x /y /run /tmp /var/tmp; do touch $d/new || exit 9; done; \
        touch /etc/new 2>/dev/null || echo rootfs-read-only; \
        for d in /x /y /run /tmp /var/tmp; do \
        grep \" $d \" /proc/self/mountinfo | cut -d' ' -f5,9; done";
    let name = unique_name();
    let args = podman.run_args(
        &[
            "--name",
            &name,
            "--read-only",
            "--tmpfs",
            "/x",
            "--mount",
            "type=tmpfs,destination=/y",
        ],
        &["sh", "-c", script],
    );
    let out = podman.podman(&strs(&args));
    assert_eq!(out.code, 0, "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        [
            "from-xfrom-yfrom-run",
            "/etc/shadow",
            "rootfs-read-only",
            "/x tmpfs",
            "/y tmpfs",
            "/run tmpfs",
            "/tmp tmpfs",
            "/var/tmp tmpfs",
        ],
        "{}",
        out.describe()
    );
    for dir in ["x", "y", "run", "tmp", "var/tmp"] {
        assert!(
            !rootfs.join(dir).join("new").exists(),
            "a write to /{dir} reached the rootfs"
        );
    }
    let id = podman.inspect(&name, "{{.Id}}");
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[]);
}

#[test]
fn sdnotify_container_passes_ready_on_with_conmons_pid() {
    let Some(podman) = Podman::new() else { return };
    let host = HostSocket::bind();
    std::fs::copy(
        sd_notify_sender(),
        Path::new(&podman.rootfs()).join("sd_notify"),
    )
    .expect("copy the sender");
    let name = unique_name();
    let args = podman.run_args(
        &["-d", "--name", &name, "--sdnotify=container"],
        &[
            "sh",
            "-c",
            "echo \"$NOTIFY_SOCKET\" > /notify-env; /sd_notify READY=1; exec sleep 100000",
        ],
    );
    podman.podman_notifying(&strs(&args), &host.path).ok();
    let messages = host.receive(2).unwrap_or_else(|e| panic!("{e}"));
    let conmon = podman.inspect(&name, "{{.State.ConmonPid}}");
    let id = podman.inspect(&name, "{{.Id}}");
    let pid: i64 = podman
        .inspect(&name, "{{.State.Pid}}")
        .parse()
        .expect("pid");
    // Podman 4.3 mounts its own socket at /run/notify and sends MAINPID itself.
    let mut sorted: Vec<String> = messages.iter().map(|m| m.trim_end().to_string()).collect();
    sorted.sort();
    assert_eq!(sorted, ["MAINPID=".to_string() + &conmon, "READY=1".into()]);
    let env = podman.podman(&["exec", &name, "cat", "/notify-env"]);
    assert_eq!(env.ok().stdout.trim(), "/run/notify/notify.sock");
    podman.podman(&["rm", "-f", "-t", "0", &name]).ok();
    podman.assert_nothing_left(&id, &[pid]);
}
