//! containerd with Berth's own shim, `containerd-shim-berth-v2`
//! (`ctr run --runtime io.containerd.berth.v2`), which links the library instead of
//! running a runtime binary. Under `RUNTIME=/usr/sbin/runc` the same tests drive the runc
//! shim (`io.containerd.runc.v2`) with runc, so any difference between the two shims
//! shows as a test that passes on one side only.
//!
//! Needs `cargo build -p containerd-shim-berth-v2` (the private containerd finds the shim
//! in `target/debug` through its PATH; see `containerd::shim_path`).

use berth_conformance::containerd::{Containerd, IMAGE};
use berth_conformance::{is_berth, runtime, unique_name, Output};

/// Idles until SIGTERM (then exits 0).
const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
];

/// `ctr run` with the shim under test: Berth's for Berth, else the runc shim with the
/// runtime under test as its runc.
fn run(containerd: &Containerd, id: &str, flags: &[&str], command: &[&str]) -> Output {
    let args = run_args(containerd, id, flags, command);
    containerd.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_args(containerd: &Containerd, id: &str, flags: &[&str], command: &[&str]) -> Vec<String> {
    let runc_root = containerd.runc_root().to_string_lossy().into_owned();
    let binary = runtime().to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["run"];
    if is_berth() {
        let shim = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug/containerd-shim-berth-v2");
        assert!(
            shim.exists() || std::env::var_os("CARGO_TARGET_DIR").is_some(),
            "{} does not exist: cargo build -p containerd-shim-berth-v2",
            shim.display()
        );
        args.extend(["--runtime", "io.containerd.berth.v2"]);
    } else {
        args.extend(["--runtime", "io.containerd.runc.v2"]);
        args.extend(["--runc-binary", &binary, "--runc-root", &runc_root]);
    }
    args.extend(flags);
    args.extend([IMAGE, id]);
    args.extend(command);
    args.into_iter().map(str::to_owned).collect()
}

/// `ctr run -d` of the sleeper; returns the init's pid.
#[track_caller]
fn run_detached(containerd: &Containerd, id: &str) -> i64 {
    run(containerd, id, &["-d"], SLEEPER).ok();
    containerd.wait_task_status(id, "RUNNING");
    containerd
        .task(id)
        .map(|(pid, _)| pid)
        .expect("a running task has a pid")
}

#[track_caller]
fn kill_delete_and_check(containerd: &Containerd, id: &str, pid: i64) {
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", id]).ok();
    containerd.wait_task_status(id, "STOPPED");
    containerd.ctr(&["task", "delete", id]).ok();
    containerd.ctr(&["container", "rm", id]).ok();
    containerd.assert_nothing_left(id, pid);
}

#[test]
fn run_rm_returns_the_exit_code_and_output() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm"],
        &["sh", "-c", "echo out-$((6*7)); echo err-7 >&2; exit 3"],
    );
    assert_eq!(out.code, 3, "{}", out.describe());
    assert!(out.stdout.contains("out-42"), "{}", out.describe());
    assert!(out.stderr.contains("err-7"), "{}", out.describe());
    let listed = containerd.ctr(&["container", "ls", "-q"]);
    assert!(!listed.stdout.contains(&id), "{}", listed.describe());
    containerd.assert_nothing_left(&id, 0);
}

#[test]
fn exec_runs_in_the_container_with_its_exit_code() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "probe",
        &id,
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(out.code, 4, "{}", out.describe());
    assert!(
        out.stdout.contains("pid1=sh"),
        "exec did not see the container's init: {}",
        out.describe()
    );
    kill_delete_and_check(&containerd, &id, pid);
}

#[test]
fn kill_delivers_the_signal_and_delete_reports_the_exit() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGTERM", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    // The sleeper's TERM trap exits 0: `task delete` warns of any other status.
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    assert!(
        !deleted.stderr.contains("non-zero exit code"),
        "{}",
        deleted.describe()
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, pid);
}

/// A task killed by SIGKILL reports 137 (128 + 9): `task delete` warns with it.
#[test]
fn a_killed_task_reports_137() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    assert!(
        deleted.stderr.contains("non-zero exit code 137"),
        "{}",
        deleted.describe()
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, pid);
}

#[test]
fn pause_and_resume() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    containerd.ctr(&["task", "pause", &id]).ok();
    containerd.wait_task_status(&id, "PAUSED");
    containerd.ctr(&["task", "resume", &id]).ok();
    containerd.wait_task_status(&id, "RUNNING");
    let out = containerd.ctr(&["task", "exec", "--exec-id", "after-resume", &id, "true"]);
    out.ok();
    kill_delete_and_check(&containerd, &id, pid);
}

/// `task ps` lists the init and an exec'd process (containerd asks the shim's Pids).
#[test]
fn ps_lists_the_containers_processes() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let ps = containerd.ctr(&["task", "ps", &id]);
    ps.ok();
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "the init {pid} is not listed: {}",
        ps.describe()
    );
    kill_delete_and_check(&containerd, &id, pid);
}

/// A process that cannot start: the library's error reaches the ctr user, and nothing
/// (state, rootfs mount, cgroup) is left.
#[test]
fn a_failed_create_reaches_the_user_and_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = run(&containerd, &id, &["--rm"], &["/no/such/binary"]);
    let text = out.fails();
    assert!(text.contains("/no/such/binary"), "{}", out.describe());
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

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

/// The parent of `pid` (from /proc/PID/stat).
fn parent_of(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the `(comm)` field, which may hold spaces: state, then ppid.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The children of `parent` whose command line contains `word`.
fn children_running(parent: i64, word: &str) -> Vec<i64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(word))
        })
        .collect()
}

/// Berth's shim makes processes through its forker (docs/shim.md); when the forker is
/// killed, the next exec starts a new one and works.
#[test]
fn exec_works_after_the_forker_is_killed() {
    if !berth_conformance::berth_only("the runc shim has no forker") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let shim = parent_of(pid).expect("the init has a parent");
    let forkers = children_running(shim, "berth-forker");
    assert_eq!(
        forkers.len(),
        1,
        "the shim {shim} has no one forker: {forkers:?}"
    );
    // SAFETY: kill(2) of the forker found above.
    unsafe { libc::kill(forkers[0] as i32, libc::SIGKILL) };
    let gone = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        !std::path::Path::new(&format!("/proc/{}", forkers[0])).exists()
    });
    assert!(gone, "the killed forker {} was not reaped", forkers[0]);
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "after",
        &id,
        "sh",
        "-c",
        "exit 9",
    ]);
    assert_eq!(out.code, 9, "{}", out.describe());
    kill_delete_and_check(&containerd, &id, pid);
}

/// The shim is killed: containerd runs the shim's `delete` in the bundle, which removes
/// the container (its processes, state and cgroup); the task then reads as stopped.
#[test]
fn a_killed_shim_leaves_nothing_after_delete() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let shim = parent_of(pid).expect("the init has a parent");
    // SAFETY: kill(2) of the container's shim, the init's parent.
    unsafe { libc::kill(shim as i32, libc::SIGKILL) };
    let cleaned = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        !berth_conformance::pid_alive(pid)
    });
    assert!(cleaned, "the init {pid} survived its shim's delete");
    containerd.ctr(&["task", "delete", &id]);
    containerd.ctr(&["container", "rm", &id]).ok();
    // containerd cleans up after a dead shim in the background.
    berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        containerd.leftovers(&id, pid).is_empty()
    });
    containerd.assert_nothing_left(&id, pid);
}

/// `ctr task metrics` (the shim's Stats): the running container's pid count and memory
/// usage, from its cgroup.
#[test]
fn metrics_come_from_the_containers_cgroup() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let out = containerd.ctr(&["task", "metrics", &id]);
    out.ok();
    let value = |name: &str| {
        out.stdout
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    assert!(
        value("pids.current").is_some_and(|n| n >= 1),
        "no pids.current of the running container: {}",
        out.describe()
    );
    assert!(
        value("memory.usage_in_bytes").is_some_and(|n| n > 0),
        "no memory usage: {}",
        out.describe()
    );
    kill_delete_and_check(&containerd, &id, pid);
}
