//! Signals in a foreground `run` (runc's `run` without `--detach`): every
//! catchable signal the runtime gets reaches the container's process, the
//! exit is reported as a shell would, orphans are reaped by the runtime as
//! subreaper, and a killed runtime leaves no container running.
//!
//! The runtime runs as a child of the test with its stdio in files (a pipe
//! would stay open for as long as the container lives); the container writes
//! what it saw to a shared host directory.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use berth_conformance::{berth_only, pid_alive, runtime, wait_until, Bundle, HostDir, Runtime};
use serde_json::{json, Value};

/// Long enough for any step on a loaded machine; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(30);

/// A foreground `<runtime> run` started by the test; killed if the test fails first.
struct Foreground {
    child: Child,
    logs: HostDir,
}

impl Foreground {
    fn start(rt: &Runtime, id: &str, bundle: &Bundle, flags: &[&str]) -> Foreground {
        Foreground::start_ignoring(rt, id, bundle, flags, &[])
    }

    /// Started by a shell that ignores `ignored` and execs the runtime, which inherits that.
    fn start_ignoring(
        rt: &Runtime,
        id: &str,
        bundle: &Bundle,
        flags: &[&str],
        ignored: &[i32],
    ) -> Foreground {
        bundle.write_config();
        let logs = HostDir::new();
        let traps: String = ignored.iter().map(|n| format!("trap '' {n}; ")).collect();
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("{traps}exec \"$0\" \"$@\""))
            .arg(runtime())
            .arg("--root")
            .arg(rt.root())
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .args(flags)
            .arg(id);
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(logs.join("stdout")).unwrap())
            .stderr(File::create(logs.join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", runtime().display()));
        Foreground { child, logs }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, signo: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(
            unsafe { libc::kill(self.pid(), signo) },
            0,
            "kill -{signo} {}",
            self.pid()
        );
    }

    /// Its exit; panics if it is still running after `DEADLINE` (a hang).
    #[track_caller]
    fn wait(&mut self) -> ExitStatus {
        let mut status = None;
        wait_until(DEADLINE, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
            .unwrap_or_else(|| panic!("the foreground run did not exit; stderr: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.logs.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the runtime ended, telling its own death by a signal from an exit code of 128 + N.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status:?}"),
    }
}

/// A busybox bundle running `script` with a host directory at /shared.
fn bundle_with_script(script: &str) -> (Bundle, PathBuf) {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    let shared = bundle.share_dir("/shared");
    (bundle, shared)
}

/// Without a pid namespace: the shell is not a namespace's init, so a signal it
/// has no trap for kills it, and its orphans reparent out of the container.
fn without_pid_namespace(bundle: &mut Bundle) {
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn wait_for_file(path: &Path) -> String {
    assert!(
        wait_until(DEADLINE, || path.exists() && !lines(path).is_empty()),
        "{} never appeared",
        path.display()
    );
    fs::read_to_string(path).unwrap()
}

/// Idles with short sleeps it waits for, so a trap runs as soon as its signal comes.
const IDLE: &str = "echo ready > /shared/ready; while :; do sleep 1 & wait $!; done";

#[test]
fn every_catchable_signal_is_forwarded_and_the_exit_code_passed_through() {
    // 9 and 19 cannot be caught; 17 and 28 are checked apart; 15 ends the run.
    let mut forwarded: Vec<i32> = (1..=31)
        .filter(|n| ![9, 15, 17, 19, 28].contains(n))
        .collect();
    // Realtime signals busybox can trap (glibc keeps 32 and 33 for itself).
    forwarded.extend([34, 35, 40, 50, 63]);
    if !berth_only("runc 1.1 drops SIGURG and SIGPROF (its Go runtime's own) and dies of signal 34")
    {
        forwarded.retain(|n| ![libc::SIGURG, libc::SIGPROF, 34].contains(n));
    }
    let marker = 64;
    let traps: String = forwarded
        .iter()
        .chain([&libc::SIGWINCH, &marker])
        .map(|n| format!("trap 'echo {n} >> /shared/got' {n}; "))
        .collect();
    let script = format!("{traps} trap 'echo 15 >> /shared/got; exit 3' TERM; {IDLE}");
    let (bundle, shared) = bundle_with_script(&script);
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut run = Foreground::start(&rt, &id, &bundle, &[]);
    wait_for_file(&shared.join("ready"));
    let got = shared.join("got");
    // One at a time: pending standard signals are taken lowest number first.
    for signo in &forwarded {
        run.signal(*signo);
        let seen = wait_until(DEADLINE, || lines(&got).contains(&signo.to_string()));
        assert!(
            seen,
            "signal {signo} never reached the container; it got {:?}; stderr: {}",
            lines(&got),
            run.stderr()
        );
    }
    // runc's rules: SIGCHLD is the runtime's own, SIGWINCH only resizes a
    // terminal (this container has none). Both are taken before the marker.
    run.signal(libc::SIGWINCH);
    run.signal(libc::SIGCHLD);
    run.signal(marker);
    assert!(
        wait_until(DEADLINE, || lines(&got).contains(&marker.to_string())),
        "the marker never came: {:?}",
        lines(&got)
    );
    assert!(
        !lines(&got).contains(&libc::SIGWINCH.to_string()),
        "SIGWINCH was forwarded to a container without a terminal: {:?}",
        lines(&got)
    );

    run.signal(libc::SIGTERM);
    let status = run.wait();
    assert_eq!(
        status.code(),
        Some(3),
        "the container's exit code is run's: {}; stderr: {}",
        describe(status),
        run.stderr()
    );
    assert!(
        !rt.root().join(&id).exists(),
        "run without --keep deletes the container"
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// `run`'s exit when the container's process is killed by `signo`, forwarded to it.
/// `ignored`: signals the runtime's caller ignores.
fn exit_after_forwarding(signo: i32, ignored: &[i32]) -> ExitStatus {
    let (mut bundle, shared) = bundle_with_script(IDLE);
    without_pid_namespace(&mut bundle);
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut run = Foreground::start_ignoring(&rt, &id, &bundle, &[], ignored);
    wait_for_file(&shared.join("ready"));
    run.signal(signo);
    let status = run.wait();
    rt.assert_nothing_left(&id, &bundle);
    status
}

#[test]
fn a_container_killed_by_a_signal_makes_run_exit_128_plus_it() {
    for signo in [libc::SIGUSR1, libc::SIGRTMIN() + 6] {
        let status = exit_after_forwarding(signo, &[]);
        assert_eq!(
            status.code(),
            Some(128 + signo),
            "run after signal {signo}: {}",
            describe(status)
        );
    }
}

#[test]
fn the_signals_glibc_reserves_are_forwarded_too() {
    // glibc's sigfillset and sigprocmask leave out 32 and 33: a runtime that
    // relies on them dies of these rather than forwarding them.
    if !berth_only(
        "runc 1.1 dies of signal 32, or passes 32 and 33 on ignored when its caller ignores them",
    ) {
        return;
    }
    for signo in [32, 33] {
        let status = exit_after_forwarding(signo, &[]);
        assert_eq!(
            status.code(),
            Some(128 + signo),
            "run after signal {signo}: {}",
            describe(status)
        );
    }
}

#[test]
fn signals_the_caller_ignores_are_not_ignored_in_the_container() {
    // An ignored signal stays ignored across exec: the runtime must reset
    // every one, realtime ones included, for its container.
    let signo = libc::SIGRTMIN() + 6;
    let status = exit_after_forwarding(signo, &[signo, libc::SIGUSR1]);
    assert_eq!(
        status.code(),
        Some(128 + signo),
        "run after signal {signo}: {}",
        describe(status)
    );
}

/// The host pid of an orphan the container leaves (its shell's child, which exits at once).
const ORPHANS: &str = "for n in 1 2; do sh -c \"sleep 1000 & echo \\$! > /shared/orphan$n\"; done; trap 'exit 0' TERM; ";

fn parent_of(pid: i32) -> Option<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
}

/// Orphans of a container without a pid namespace go to the foreground
/// runtime (`subreaper`) or past it; `run` ends with the init either way.
fn orphans(subreaper: bool) {
    let (mut bundle, shared) = bundle_with_script(&format!("{ORPHANS}{IDLE}"));
    without_pid_namespace(&mut bundle);
    let rt = Runtime::new();
    let id = rt.new_id();
    let flags: &[&str] = if subreaper { &[] } else { &["--no-subreaper"] };
    let mut run = Foreground::start(&rt, &id, &bundle, flags);
    wait_for_file(&shared.join("ready"));
    let orphan = |n: u32| -> i32 {
        wait_for_file(&shared.join(format!("orphan{n}")))
            .trim()
            .parse()
            .unwrap()
    };
    let (first, second) = (orphan(1), orphan(2));
    let parent = parent_of(first).expect("the orphan is alive");
    if subreaper {
        assert_eq!(
            parent,
            run.pid(),
            "an orphan of the container is the runtime's child"
        );
        // SAFETY: kill(2) on a process of this test's container.
        unsafe { libc::kill(first, libc::SIGKILL) };
        let reaped = wait_until(DEADLINE, || !Path::new(&format!("/proc/{first}")).exists());
        assert!(
            reaped,
            "the runtime left its orphan {first} a zombie: {:?}",
            fs::read_to_string(format!("/proc/{first}/stat"))
        );
    } else {
        assert_ne!(
            parent,
            run.pid(),
            "--no-subreaper: orphans are not the runtime's"
        );
    }
    // The init exits while an orphan lives on: run waits for the init only.
    run.signal(libc::SIGTERM);
    let status = run.wait();
    assert_eq!(
        status.code(),
        Some(0),
        "{}; stderr: {}",
        describe(status),
        run.stderr()
    );
    assert!(
        wait_until(DEADLINE, || !pid_alive(second as i64)),
        "run's delete left the orphan {second} running"
    );
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn orphans_are_reaped_by_the_runtime_as_subreaper() {
    orphans(true);
}

#[test]
fn no_subreaper_leaves_orphans_to_the_host() {
    orphans(false);
}

fn status_in_list(rt: &Runtime, id: &str) -> Value {
    let out = rt.cmd(&["list", "--format", "json"]);
    out.ok();
    let list: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("list is not JSON ({e}): {}", out.describe()));
    list.as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == id)
        .map(|c| c["status"].clone())
        .unwrap_or(Value::Null)
}

/// `run` SIGKILLed while its container runs: the container dies with it, and
/// what it leaves is a stopped container that `delete` removes.
fn runtime_killed(flags: &[&str], pid_namespace: PidNamespace) {
    let (mut bundle, shared) = bundle_with_script(&format!("trap 'exit 0' TERM; {IDLE}"));
    let rt = Runtime::new();
    let sandbox = Bundle::sleeper();
    let sandbox_id = rt.new_id();
    match pid_namespace {
        PidNamespace::Own => {}
        PidNamespace::None => without_pid_namespace(&mut bundle),
        PidNamespace::Joined => {
            // A pod's: the process is forked into it from the waiter, which
            // hands it the death signal (docs/security.md).
            rt.create_and_start(&sandbox_id, &sandbox);
            let pid = rt.state(&sandbox_id)["pid"].as_i64().unwrap();
            bundle.join_pid_namespace_of(pid);
        }
    }
    let id = rt.new_id();
    let mut run = Foreground::start(&rt, &id, &bundle, flags);
    wait_for_file(&shared.join("ready"));
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(rt.state(&id)["status"], "running");
    run.signal(libc::SIGKILL);
    run.wait();
    if berth_only("runc 1.1 sets no parent death signal on the init: its container runs on without `runc run`") {
        assert!(wait_until(DEADLINE, || !pid_alive(init)), "the init {init} outlived the runtime");
        assert_eq!(rt.state(&id)["status"], "stopped");
        assert_eq!(status_in_list(&rt, &id), "stopped");
    } else {
        rt.kill(&id, Some("KILL")).ok();
        rt.wait_status(&id, "stopped");
    }
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
    if pid_namespace == PidNamespace::Joined {
        rt.kill_and_delete(&sandbox_id, &sandbox);
    }
}

#[derive(PartialEq)]
enum PidNamespace {
    Own,
    None,
    Joined,
}

#[test]
fn a_killed_run_leaves_no_container_running() {
    runtime_killed(&[], PidNamespace::Own);
}

#[test]
fn a_killed_run_leaves_no_container_running_without_a_pid_namespace() {
    runtime_killed(&[], PidNamespace::None);
}

#[test]
fn a_killed_run_leaves_no_container_running_in_a_joined_pid_namespace() {
    runtime_killed(&[], PidNamespace::Joined);
}

#[test]
fn a_killed_run_with_keep_leaves_no_container_running() {
    runtime_killed(&["--keep"], PidNamespace::Own);
}

#[test]
fn a_run_killed_before_its_process_starts_leaves_nothing_running() {
    // The init is past `start` but not yet at exec: in a startContainer hook
    // (run by the init, in the container) that waits for ever.
    let (mut bundle, shared) = bundle_with_script(IDLE);
    bundle.edit(|c| {
        c["hooks"] = json!({ "startContainer": [{ "path": "/bin/sh", "args": ["sh", "-c", "echo in > /shared/hook; exec sleep 1000"] }] });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut run = Foreground::start(&rt, &id, &bundle, &[]);
    wait_for_file(&shared.join("hook"));
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    run.signal(libc::SIGKILL);
    run.wait();
    if berth_only("runc 1.1 sets no parent death signal on the init: its container runs on without `runc run`") {
        assert!(wait_until(DEADLINE, || !pid_alive(init)), "the init {init} outlived the runtime");
        assert_eq!(rt.state(&id)["status"], "stopped");
    } else {
        rt.kill(&id, Some("KILL")).ok();
        rt.wait_status(&id, "stopped");
    }
    assert!(
        !shared.join("ready").exists(),
        "the container's process started after its runtime was killed"
    );
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}
