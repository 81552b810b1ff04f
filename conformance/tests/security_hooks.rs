//! A hook that never ends must neither hold the runtime nor outlive it.
//!
//! runc 1.1.5, measured: a foreground `runc run` (and `runc create`) stuck in
//! a createRuntime hook without a timeout queues SIGTERM, SIGINT and SIGHUP
//! and waits for the hook forever; SIGKILLed, it leaves the hook running as
//! an orphan that `runc delete --force` does not find. Berth kills the
//! hook's whole process group and fails cleanly when it is told to stop
//! (SIGTERM, SIGINT, SIGHUP), and the hook dies with it when it is killed.
//! Every phase counts: prestart, createRuntime (the runtime's),
//! createContainer, startContainer (the container's init's), poststart
//! (start's), poststop (delete's).
//!
//! Each hanging hook is a shell that waits for one `sleep` and leaves another
//! in the background, both named by a number no other process has on its
//! command line: the test finds the hook's processes by it in /proc, from
//! the host, whichever pid namespace they run in.

use std::fs::{self, File};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_conformance::{
    berth_only, pid_alive, runtime, wait_until, Answer, Bundle, HostDir, Runtime, SeccompAgent,
};
use serde_json::{json, Value};

/// Long enough for any step on a loaded machine; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(30);

const RUNC_WAITS: &str =
    "runc 1.1.5 queues stop signals while a hook runs and waits for it forever";
const RUNC_ORPHANS: &str = "runc 1.1.5 leaves a hook running when it is killed";

/// A hook that never ends, and the processes it made.
struct HangingHook {
    token: String,
}

impl HangingHook {
    fn new() -> HangingHook {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // A duration of a few months: unique to this test process and hook.
        let token = 10_000_000 + u64::from(std::process::id() % 100_000) * 100 + n;
        HangingHook {
            token: token.to_string(),
        }
    }

    /// `/bin/sh` is the host's for the runtime's hooks and busybox's in the
    /// rootfs for startContainer. `; :` keeps the shell from exec'ing the last sleep.
    fn json(&self) -> Value {
        let t = &self.token;
        json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("sleep {t} & sleep {t}; :")] })
    }

    /// A poststop hook that hangs the first time only: `delete` runs them
    /// again after a `delete` that was killed or stopped (and the test's
    /// cleanup must not hang where the runtime under test fails).
    fn json_once(&self, marker: &std::path::Path) -> Value {
        let t = &self.token;
        let m = marker.display();
        json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("mkdir {m} || exit 0; sleep {t} & sleep {t}; :")] })
    }

    /// Live processes whose command line mentions the token.
    fn processes(&self) -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .split('\0')
                        .any(|arg| arg.contains(&self.token))
                })
            })
            .filter(|pid| pid_alive(i64::from(*pid)))
            .collect()
    }

    /// Until the shell and both sleeps run.
    #[track_caller]
    fn wait_running(&self, runtime: &Running) {
        assert!(
            wait_until(DEADLINE, || self.processes().len() >= 3),
            "the hook never started: {:?}; runtime stderr: {}",
            self.processes(),
            runtime.stderr()
        );
    }

    #[track_caller]
    fn assert_gone(&self, after: &str) {
        assert!(
            wait_until(DEADLINE, || self.processes().is_empty()),
            "the hook still runs after {after}: {:?}",
            self.processes()
        );
    }
}

impl Drop for HangingHook {
    /// A failed test must not leave its hook running for months.
    fn drop(&mut self) {
        for pid in self.processes() {
            // SAFETY: kill(2) of a process this test's hook made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A runtime command the test starts and signals; killed if the test fails first.
struct Running {
    child: Child,
    logs: HostDir,
}

impl Running {
    /// `<runtime> --root R args...`, started by a shell whose `prelude` (traps)
    /// applies to the runtime, which it execs.
    fn start(rt: &Runtime, prelude: &str, args: &[&str]) -> Running {
        let logs = HostDir::new();
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude} exec \"$0\" \"$@\""))
            .arg(runtime())
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(logs.join("stdout")).unwrap())
            .stderr(File::create(logs.join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", runtime().display()));
        Running { child, logs }
    }

    /// A foreground `run` of `bundle`.
    fn run(rt: &Runtime, id: &str, bundle: &Bundle) -> Running {
        bundle.write_config();
        let path = bundle.path().to_str().unwrap();
        Running::start(rt, "", &["run", "--bundle", path, id])
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, signo: i32) {
        // SAFETY: kill(2) on our own unreaped child.
        assert_eq!(unsafe { libc::kill(self.pid(), signo) }, 0, "kill -{signo}");
    }

    /// Its exit; panics if it still runs after `DEADLINE` (a hang).
    #[track_caller]
    fn wait(&mut self) -> ExitStatus {
        let mut status = None;
        wait_until(DEADLINE, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("the runtime did not exit; stderr: {}", self.stderr()))
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.logs.join("stderr")).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sleeper bundle whose `kind` hooks are `hooks`.
fn bundle_with(kind: &str, hooks: Value) -> Bundle {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["hooks"] = json!({ kind: hooks }));
    bundle
}

/// A foreground `run` stuck in a `kind` hook, told to stop by `signo`:
/// the run ends, and so does the hook; returns the run's stderr.
fn stop_a_run_in(kind: &str, signo: i32, expected_code: i32) -> String {
    stop_a_run_of(kind, signo, expected_code, bundle_with)
}

/// Without a pid namespace of its own, what the init started does not die with it.
fn without_pid_namespace(kind: &str, hooks: Value) -> Bundle {
    let mut bundle = bundle_with(kind, hooks);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    });
    bundle
}

fn stop_a_run_of(
    kind: &str,
    signo: i32,
    expected_code: i32,
    make_bundle: fn(&str, Value) -> Bundle,
) -> String {
    let hook = HangingHook::new();
    let bundle = make_bundle(kind, json!([hook.json()]));
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut run = Running::run(&rt, &id, &bundle);
    hook.wait_running(&run);
    run.signal(signo);
    let status = run.wait();
    assert_eq!(
        status.code(),
        Some(expected_code),
        "{kind}: run's exit {status:?}; stderr: {}",
        run.stderr()
    );
    hook.assert_gone(&format!("run got signal {signo} in a {kind} hook"));
    rt.assert_nothing_left(&id, &bundle);
    run.stderr()
}

#[test]
fn sigterm_ends_a_foreground_run_stuck_in_a_create_phase_hook() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let stderr = stop_a_run_in(kind, libc::SIGTERM, 1);
        assert!(
            stderr.contains("stopped by SIGTERM"),
            "{kind}: no clear error: {stderr}"
        );
    }
    let stderr = stop_a_run_of("createContainer", libc::SIGTERM, 1, without_pid_namespace);
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
}

#[test]
fn sigterm_ends_a_foreground_run_stuck_in_a_start_container_hook() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    let stderr = stop_a_run_in("startContainer", libc::SIGTERM, 1);
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
}

#[test]
fn sigint_and_sighup_end_it_too() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    for (signo, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGHUP, "SIGHUP")] {
        let stderr = stop_a_run_in("createRuntime", signo, 1);
        assert!(stderr.contains(&format!("stopped by {name}")), "{stderr}");
    }
}

/// The container runs by then: the hook is killed, which fails it, and a
/// failed poststart hook stops the container and fails the run (spec 1.3,
/// runtime.md "Lifecycle" step 9), as in the create-phase hooks.
#[test]
fn sigterm_during_a_poststart_hook_kills_it_and_stops_the_container() {
    if !berth_only("runc 1.1.5 runs poststart hooks in create, and waits for them forever") {
        return;
    }
    let stderr = stop_a_run_in("poststart", libc::SIGTERM, 1);
    assert!(
        stderr.contains("poststart hook #0") && stderr.contains("stopped by SIGTERM"),
        "{stderr}"
    );
}

/// `run` deletes its container at the end: a hanging poststop hook is killed
/// and the delete finishes; the run exits with the container's code.
#[test]
fn sigterm_during_a_poststop_hook_kills_it_and_the_delete_finishes() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    let hook = HangingHook::new();
    let marker = HostDir::new();
    let mut bundle = Bundle::busybox(&["sh", "-c", "exit 7"]);
    bundle.edit(|c| c["hooks"] = json!({ "poststop": [hook.json_once(&marker.join("ran"))] }));
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut run = Running::run(&rt, &id, &bundle);
    hook.wait_running(&run);
    run.signal(libc::SIGTERM);
    let status = run.wait();
    assert_eq!(status.code(), Some(7), "stderr: {}", run.stderr());
    assert!(
        run.stderr().contains("stopped by SIGTERM"),
        "{}",
        run.stderr()
    );
    hook.assert_gone("run got SIGTERM in a poststop hook");
    rt.assert_nothing_left(&id, &bundle);
}

/// A detached `create` (and `delete`) told to stop: the hook is killed and
/// what `create` made is undone before it exits.
#[test]
fn sigterm_to_create_or_delete_in_a_hanging_hook_leaves_nothing() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    for kind in ["createRuntime", "createContainer"] {
        let hook = HangingHook::new();
        let bundle = bundle_with(kind, json!([hook.json()]));
        bundle.write_config();
        let rt = Runtime::new();
        let id = rt.new_id();
        let path = bundle.path().to_str().unwrap();
        let mut create = Running::start(&rt, "", &["create", "--bundle", path, &id]);
        hook.wait_running(&create);
        create.signal(libc::SIGTERM);
        let status = create.wait();
        assert_eq!(status.code(), Some(1), "{kind}: {}", create.stderr());
        assert!(
            create.stderr().contains("stopped by SIGTERM"),
            "{}",
            create.stderr()
        );
        hook.assert_gone(&format!("create got SIGTERM in a {kind} hook"));
        rt.assert_nothing_left(&id, &bundle);
    }

    let hook = HangingHook::new();
    let marker = HostDir::new();
    let bundle = bundle_with("poststop", json!([hook.json_once(&marker.join("ran"))]));
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    let mut delete = Running::start(&rt, "", &["delete", &id]);
    hook.wait_running(&delete);
    delete.signal(libc::SIGTERM);
    let status = delete.wait();
    assert_eq!(status.code(), Some(0), "{}", delete.stderr());
    hook.assert_gone("delete got SIGTERM in a poststop hook");
    rt.assert_nothing_left(&id, &bundle);
}

/// `start` waits for the init's exec, which waits for its startContainer
/// hooks: told to stop, `start` stops waiting; the hook belongs to the
/// container then, and `delete --force` takes both.
#[test]
fn sigterm_to_start_ends_its_wait_for_a_start_container_hook() {
    if !berth_only("runc 1.1.5's start does not wait for startContainer hooks") {
        return;
    }
    let hook = HangingHook::new();
    let bundle = bundle_with("startContainer", json!([hook.json()]));
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let mut start = Running::start(&rt, "", &["start", &id]);
    hook.wait_running(&start);
    start.signal(libc::SIGTERM);
    let status = start.wait();
    assert_eq!(status.code(), Some(1), "{}", start.stderr());
    assert!(
        start.stderr().contains("stopped by SIGTERM"),
        "{}",
        start.stderr()
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    hook.assert_gone("delete --force");
    rt.assert_nothing_left(&id, &bundle);
}

/// SIGKILL leaves the runtime no say: its hook, and what the hook started,
/// must die with it. `delete --force` then finds nothing running.
#[test]
fn a_killed_runtime_takes_its_hanging_hook_with_it() {
    if !berth_only(RUNC_ORPHANS) {
        return;
    }
    let cases: &[(&str, &str)] = &[
        ("run", "prestart"),
        ("run", "createRuntime"),
        ("run", "createContainer"),
        ("run", "startContainer"),
        ("run", "poststart"),
        ("create", "createRuntime"),
        ("create", "createContainer"),
    ];
    for &(verb, kind) in cases {
        let hook = HangingHook::new();
        let bundle = bundle_with(kind, json!([hook.json()]));
        bundle.write_config();
        let rt = Runtime::new();
        let id = rt.new_id();
        let path = bundle.path().to_str().unwrap();
        let mut runtime = Running::start(&rt, "", &[verb, "--bundle", path, &id]);
        hook.wait_running(&runtime);
        runtime.signal(libc::SIGKILL);
        runtime.wait();
        hook.assert_gone(&format!("{verb} was killed in a {kind} hook"));
        rt.cmd(&["delete", "--force", &id]).ok();
        rt.assert_nothing_left(&id, &bundle);
    }

    let hook = HangingHook::new();
    let marker = HostDir::new();
    let bundle = bundle_with("poststop", json!([hook.json_once(&marker.join("ran"))]));
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    let mut delete = Running::start(&rt, "", &["delete", &id]);
    hook.wait_running(&delete);
    delete.signal(libc::SIGKILL);
    delete.wait();
    hook.assert_gone("delete was killed in a poststop hook");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// What a hook finds of its own process group (read by the shell itself:
/// /proc/self is the shell, in whatever procfs it sees) and signal state
/// (read by the program it execs, which keeps it: a shell ignores some
/// signals for itself, busybox's SIGQUIT, and puts them back for what it runs).
const SIGNAL_STATE: &str = "read -r s < /proc/self/stat; set -- $s; echo \"pgrp $5\"; exec grep -E '^Sig(Blk|Ign)' /proc/self/status";

fn recorder(out: &str) -> Value {
    json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("exec > {out}; {SIGNAL_STATE}")] })
}

/// A foreground `run` blocks every signal to forward it, and its caller may
/// ignore some: none of that reaches a hook, in any phase.
#[test]
fn hooks_start_with_no_signal_blocked_or_ignored() {
    let out = HostDir::new();
    let mut bundle = Bundle::busybox(&["true"]);
    let shared = bundle.share_dir("/shared");
    let host = |kind: &str| out.join(kind).to_str().unwrap().to_owned();
    let (o, s) = (host("createRuntime"), host("createContainer"));
    let p = host("poststart");
    bundle.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [recorder(&o)],
            "createContainer": [recorder(&s)],
            "startContainer": [recorder("/shared/startContainer")],
            "poststart": [recorder(&p)],
        })
    });
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let path = bundle.path().to_str().unwrap();
    // The caller ignores SIGINT (as a shell does for a background job), SIGQUIT and a realtime signal.
    let mut run = Running::start(&rt, "trap '' INT QUIT 40;", &["run", "--bundle", path, &id]);
    let status = run.wait();
    assert!(status.success(), "{status:?}: {}", run.stderr());
    // The runtime (exec'd by the shell the test spawned) is in the test's group.
    // SAFETY: getpgrp takes no arguments.
    let runtime_group = unsafe { libc::getpgrp() };
    for (kind, file) in [
        ("createRuntime", out.join("createRuntime")),
        ("createContainer", out.join("createContainer")),
        ("startContainer", shared.join("startContainer")),
        ("poststart", out.join("poststart")),
    ] {
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("the {kind} hook wrote nothing ({e}); {}", run.stderr()));
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{kind}: no {name} in {text:?}"))
                .to_owned()
        };
        assert_eq!(
            field("SigBlk:"),
            "0000000000000000",
            "{kind}: blocked signals"
        );
        // The test's spawn (glibc's posix_spawn) leaves 32 and 33 ignored in the runtime.
        if berth_only("runc 1.1.5 passes on signal 32 ignored when its caller ignores it") {
            assert_eq!(
                field("SigIgn:"),
                "0000000000000000",
                "{kind}: ignored signals"
            );
        }
        // startContainer reads its group in the container's pid namespace.
        if kind != "startContainer"
            && berth_only("runc 1.1.5 leaves hooks in the runtime's process group")
        {
            assert_ne!(
                field("pgrp").parse::<i32>().ok(),
                Some(runtime_group),
                "{kind}: the hook is in the runtime's process group"
            );
        }
    }
    rt.assert_nothing_left(&id, &bundle);
}

/// The same wait outside hooks: a foreground `exec` waits for its process's
/// execve, which a seccomp agent may hold forever. Told to stop, it kills
/// that process and fails.
#[test]
fn sigterm_ends_a_foreground_exec_held_before_its_exec() {
    if !berth_only(RUNC_WAITS) {
        return;
    }
    let agent = SeccompAgent::start(Answer::HoldFirstOf(1));
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": agent.path(),
            "syscalls": [{ "names": ["execve"], "action": "SCMP_ACT_NOTIFY" }],
        })
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let mut exec = Running::start(&rt, "", &["exec", &id, "/bin/true"]);
    assert!(
        wait_until(DEADLINE, || agent.holding()),
        "the exec'd process never reached its execve: {}",
        exec.stderr()
    );
    exec.signal(libc::SIGTERM);
    let status = exec.wait();
    agent.release();
    assert_eq!(status.code(), Some(255), "{}", exec.stderr());
    assert!(
        exec.stderr().contains("stopped by SIGTERM"),
        "{}",
        exec.stderr()
    );
    rt.kill_and_delete(&id, &bundle);
}
