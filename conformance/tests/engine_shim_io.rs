//! Berth's containerd shim (see engine_shim.rs): the processes' stdio (terminals, stdin
//! and its end, log URIs) and what a process sees of itself, compared with the runc
//! shim's.

use berth_conformance::containerd::{Containerd, IMAGE};
use berth_conformance::containerd_shim::{
    kill_delete_and_check, run, run_args, run_detached, SLEEPER,
};
use berth_conformance::unique_name;

/// `ctr run -t`: the process gets a terminal (the shim receives the pty's master from the
/// library on a console socket and copies it to ctr).
#[test]
fn tty_run_gets_a_terminal() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    // The short sleep lets the shim copy the output before the exit closes the console.
    let args = run_args(
        &containerd,
        &id,
        &["-t", "--rm"],
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; tty; sleep 1; exit 5",
        ],
    );
    let out = containerd.ctr_in_terminal(&args);
    assert_eq!(out.code, 5, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.describe());
    containerd.assert_nothing_left(&id, 0);
}

/// `ctr task exec -t` into a running task: the exec'd process gets a terminal of its own.
#[test]
fn tty_exec_gets_a_terminal() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let args: Vec<String> = [
        "task",
        "exec",
        "-t",
        "--exec-id",
        "tty",
        &id,
        "sh",
        "-c",
        "test -t 0 && test -t 1 && echo exec-is-a-tty; sleep 1; exit 6",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = containerd.ctr_in_terminal(&args);
    assert_eq!(out.code, 6, "{}", out.describe());
    assert!(out.stdout.contains("exec-is-a-tty"), "{}", out.describe());
    kill_delete_and_check(&containerd, &id, pid);
}

/// What a process sees of itself, one fact per line, ids and host paths aside.
const SELF_REPORT: &str = "\
echo hostname=$(hostname); echo id=$(id); echo cwd=$(pwd); echo umask=$(umask); \
grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status; \
echo oom_score_adj=$(cat /proc/self/oom_score_adj); \
for fd in 0 1 2; do echo fd$fd=$(stat -L -c %F /proc/self/fd/$fd); done; \
echo env; env | sort; \
echo mounts; awk '{ print $5, $(NF-2) }' /proc/self/mountinfo | sort; \
echo cgroups; sed 's/[^:/]*$/ID/' /proc/self/cgroup; \
echo ns; ls /proc/self/ns";

/// The same workload, as an exec'd process and as the init, under Berth's shim and under
/// the runc shim with runc, in one containerd: exit code and what the process sees of
/// itself must be equal.
#[test]
fn the_same_workload_looks_the_same_under_the_runc_shim() {
    let runc = std::path::Path::new(berth_conformance::RUNC);
    if !runc.exists() {
        return berth_conformance::skip("runc is not installed at /usr/sbin/runc");
    }
    if !berth_conformance::berth_only("compares Berth's shim with runc's") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let runc_root = containerd.runc_root().to_string_lossy().into_owned();
    let report = |shim: &[&str]| {
        let id = unique_name();
        let mut args = vec!["run", "-d"];
        args.extend(shim);
        args.extend([IMAGE, id.as_str()]);
        args.extend(SLEEPER);
        containerd.ctr(&args).ok();
        containerd.wait_task_status(&id, "RUNNING");
        let pid = containerd.task(&id).map_or(0, |(pid, _)| pid);
        let script = format!("{SELF_REPORT}; exit 7");
        let exec = containerd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            "report",
            &id,
            "sh",
            "-c",
            &script,
        ]);
        kill_delete_and_check(&containerd, &id, pid);
        let exec_report = normalise(&exec.stdout.replace(&id, "ID"));
        // And as the init of a `run --rm`.
        let id = unique_name();
        let mut args = vec!["run", "--rm"];
        args.extend(shim);
        args.extend([IMAGE, id.as_str(), "sh", "-c", &script]);
        let init = containerd.ctr(&args);
        containerd.assert_nothing_left(&id, 0);
        let init_report = normalise(&init.stdout.replace(&id, "ID"));
        (
            (init.code, exec.code),
            format!("init\n{init_report}\nexec\n{exec_report}"),
            format!("{}{}", init.stderr, exec.stderr),
        )
    };
    let ours = report(&["--runtime", "io.containerd.berth.v2"]);
    let theirs = report(&[
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        berth_conformance::RUNC,
        "--runc-root",
        &runc_root,
    ]);
    assert_eq!(ours.0, (7, 7), "stderr: {}", ours.2);
    let differ: Vec<String> = ours
        .1
        .lines()
        .filter(|l| !theirs.1.lines().any(|t| t == *l))
        .map(|l| format!("  ours only:   {l}"))
        .chain(
            theirs
                .1
                .lines()
                .filter(|l| !ours.1.lines().any(|o| o == *l))
                .map(|l| format!("  runc's only: {l}")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "the exec'd process's view differs from the runc shim's:\n{}",
        differ.join("\n")
    );
    assert_eq!((ours.0, &ours.1), (theirs.0, &theirs.1));
}

/// What legitimately differs between Berth's view and runc 1.1's, made equal.
fn normalise(report: &str) -> String {
    report
        .lines()
        .map(|line| match line.split_once(' ') {
            // config-linux.md "Masked Paths" asks only that the path cannot be read.
            // Berth masks a file with the host's /dev/null (devtmpfs), never the
            // container's (CVE-2025-31133); runc 1.1 binds the container's, a tmpfs.
            Some((point, "devtmpfs" | "tmpfs"))
                if point.starts_with("/proc/") || point.starts_with("/sys/firmware") =>
            {
                format!("{point} masked")
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// ctr's stdin reaches the container's, and its end is the container's EOF: `cat`
/// copies it and returns.
#[test]
fn stdin_and_its_end_reach_the_container() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let args = run_args(&containerd, &id, &["--rm"], &["sh", "-c", "cat; echo done"]);
    let mut ctr = containerd
        .ctr_command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ctr run");
    let mut stdin = ctr.stdin.take().expect("ctr's stdin");
    {
        use std::io::Write;
        stdin
            .write_all(b"line-1\nline-2\n")
            .expect("write ctr's stdin");
    }
    // Closed once the task runs: ctr turns the end of its stdin into a CloseIO call,
    // which the runc shim loses when it comes before the task exists (Berth's shim
    // needs no CloseIO: the container holds the only reading end of the FIFO).
    containerd.wait_task_status(&id, "RUNNING");
    drop(stdin);
    let ended = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        ctr.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = ctr.kill();
    }
    let out = ctr.wait_with_output().expect("ctr's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(ended, "cat never saw the end of stdin: {stdout} {stderr}");
    assert_eq!(stdout, "line-1\nline-2\ndone\n", "stderr: {stderr}");
    containerd.assert_nothing_left(&id, 0);
}

/// `--log-uri file://PATH`: the container's stdout and stderr go to the file.
#[test]
fn a_log_uri_file_gets_the_output() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let log = berth_conformance::scratch_dir().join(format!("{id}.log"));
    let uri = format!("file://{}", log.display());
    let out = run(
        &containerd,
        &id,
        &["--rm", "--log-uri", &uri],
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 2"],
    );
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(out.code, 2, "{}", out.describe());
    assert!(
        written.contains("to-stdout") && written.contains("to-stderr"),
        "the log has {written:?}: {}",
        out.describe()
    );
    containerd.assert_nothing_left(&id, 0);
}

/// The rootfs as the native snapshotter gives it: a bind mount (`rbind`, `rw`) of the
/// snapshot's directory, where the overlay snapshotter every other test uses gives an
/// overlay; the shim makes both itself (shim/src/rootfs.rs). The container runs and
/// writes, read-only views aside (`--read-only` sets the config's `root.readonly` too,
/// which the runtime applies whatever the mount).
#[test]
fn a_native_snapshot_is_bind_mounted_as_the_rootfs() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let probe = ["sh", "-c", "echo wrote > /probe && cat /probe"];
    let out = run(
        &containerd,
        &id,
        &["--rm", "--snapshotter", "native"],
        &probe,
    );
    out.ok();
    assert!(out.stdout.contains("wrote"), "{}", out.describe());
    containerd.assert_nothing_left(&id, 0);
}
