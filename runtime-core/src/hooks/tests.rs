//! Unit tests of running hooks: each runs real programs (/bin/sh).

use super::supervise::{sigpipe_pending, OUTPUT_LIMIT};
use super::*;
use crate::spec::testdir::TestDir;
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PATH: &str = "PATH=/usr/bin:/bin";

fn hook(path: impl Into<PathBuf>, args: &[&str], env: &[&str], timeout: Option<i64>) -> Hook {
    let mut hook = Hook::default();
    hook.set_path(path.into());
    hook.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    hook.set_env(Some(env.iter().map(|e| e.to_string()).collect()));
    hook.set_timeout(timeout);
    hook
}

/// A `/bin/sh -c` hook: it reads no freshly written executable (see `run_fresh`).
fn sh(script: &str) -> Hook {
    hook("/bin/sh", &["sh", "-c", script], &[PATH], None)
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}

/// Exec of a script just written fails with ETXTBSY while a process another
/// test thread is forking still holds its write fd; try again, as real
/// hooks are never that fresh. Only for lists whose first hook is the script.
fn run_fresh(hooks: &[Hook], kind: HookKind, state: &str) -> Result<(), HookError> {
    for _ in 0..50 {
        match run_hooks(hooks, kind, state) {
            Err(HookError::Spawn { source, .. })
                if source.raw_os_error() == Some(libc::ETXTBSY) =>
            {
                std::thread::sleep(Duration::from_millis(20))
            }
            result => return result,
        }
    }
    run_hooks(hooks, kind, state)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read hook output")
}

#[test]
fn kinds_select_their_list_by_the_specs_names() {
    let hooks: Hooks = serde_json::from_value(serde_json::json!({
        "createRuntime": [{"path": "/a"}, {"path": "/b"}],
        "poststop": [{"path": "/c"}],
    }))
    .expect("hooks json");
    let paths = |kind| {
        hooks_of(Some(&hooks), kind)
            .iter()
            .map(|h| h.path().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(HookKind::CreateRuntime),
        [PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(paths(HookKind::Poststop), [PathBuf::from("/c")]);
    assert!(paths(HookKind::StartContainer).is_empty());
    assert!(hooks_of(None, HookKind::Prestart).is_empty());
    assert_eq!(HookKind::CreateContainer.as_str(), "createContainer");
    assert_eq!(HookKind::StartContainer.to_string(), "startContainer");
}

#[test]
fn state_json_arrives_on_stdin() {
    let dir = TestDir::new("hooks-stdin");
    let out = dir.path().join("state");
    let path = script(
        dir.path(),
        "hook",
        &format!("/bin/cat > '{}'", out.display()),
    );
    let state = r#"{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;
    run_fresh(
        &[hook(&path, &[], &[], None)],
        HookKind::CreateRuntime,
        state,
    )
    .expect("hook runs");
    assert_eq!(read(&out), state);
}

#[test]
fn args_zero_is_argv_zero_and_the_rest_are_arguments() {
    let dir = TestDir::new("hooks-argv");
    let out = dir.path().join("argv");
    let line = format!("tr '\\0' ' ' < /proc/$$/cmdline > '{}'", out.display());
    let hook = hook(
        "/bin/sh",
        &["not-sh", "-c", &line, "x", "two words"],
        &[PATH],
        None,
    );
    run_hooks(&[hook], HookKind::Poststart, "{}").expect("hook runs");
    assert_eq!(read(&out), format!("not-sh -c {line} x two words "));
}

#[test]
fn env_is_exactly_the_hooks() {
    let dir = TestDir::new("hooks-env");
    let out = dir.path().join("env");
    let line = format!("tr '\\0' '\\n' < /proc/$$/environ > '{}'", out.display());
    let hook = hook(
        "/bin/sh",
        &["sh", "-c", &line],
        &[PATH, "GREETING=hello world", "EMPTY=", "A=b=c"],
        None,
    );
    run_hooks(&[hook], HookKind::Poststop, "{}").expect("hook runs");
    let mut env: Vec<String> = read(&out).lines().map(str::to_owned).collect();
    env.sort();
    assert_eq!(env, ["A=b=c", "EMPTY=", "GREETING=hello world", PATH]);
}

#[test]
fn non_zero_exit_fails_naming_the_hook_and_carrying_stderr() {
    let dir = TestDir::new("hooks-fail");
    let path = script(
        dir.path(),
        "bad-hook",
        "echo to-stdout; echo 'no network for you' >&2; exit 3",
    );
    let err = run_fresh(
        &[hook(&path, &[], &[], None)],
        HookKind::CreateRuntime,
        "{}",
    )
    .expect_err("exit 3 fails");
    assert!(matches!(&err, HookError::Failed { index: 0, status, .. } if status.code() == Some(3)));
    let message = err.to_string();
    let expected = format!(
        "error running createRuntime hook #0 ({}): exit status 3, ",
        path.display()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        message.ends_with("stdout: to-stdout, stderr: no network for you"),
        "{message}"
    );
}

#[test]
fn a_missing_hook_is_a_spawn_error_naming_it() {
    let err = run_hooks(
        &[hook("/nonexistent/hook", &[], &[], None)],
        HookKind::Prestart,
        "{}",
    )
    .expect_err("no such file");
    assert!(matches!(err, HookError::Spawn { .. }));
    assert!(
        err.to_string()
            .starts_with("error running prestart hook #0 (/nonexistent/hook): "),
        "{err}"
    );
}

#[test]
fn a_zero_timeout_is_refused_without_running_the_hook() {
    let dir = TestDir::new("hooks-zero");
    let ran = dir.path().join("ran");
    let mut hook = sh(&format!(": > '{}'", ran.display()));
    hook.set_timeout(Some(0));
    let err = run_hooks(&[hook], HookKind::Poststart, "{}").expect_err("timeout 0 is invalid");
    assert!(
        matches!(err, HookError::InvalidTimeout { timeout: 0, .. }),
        "{err}"
    );
    assert!(!ran.exists());
}

#[test]
fn timeout_kills_the_hook() {
    let dir = TestDir::new("hooks-timeout");
    let pid_file = dir.path().join("pid");
    let mut hook = sh(&format!(
        "echo $$ > '{}'; echo started >&2; exec sleep 30",
        pid_file.display()
    ));
    hook.set_timeout(Some(1));
    let err = run_hooks(&[hook], HookKind::StartContainer, "{}").expect_err("times out");
    assert!(
        matches!(err, HookError::Timeout { seconds: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("timeout after 1 seconds"), "{err}");
    assert!(err.to_string().ends_with("stderr: started"), "{err}");
    // Killed and reaped: no zombie is left under that pid.
    let pid = read(&pid_file).trim().to_owned();
    assert!(!Path::new("/proc").join(pid).exists());
}

#[test]
fn hooks_run_in_order_and_stop_at_the_first_failure() {
    let dir = TestDir::new("hooks-order");
    let log = dir.path().join("log");
    let append = |word: &str| sh(&format!("echo {word} >> '{}'", log.display()));
    let hooks = [append("one"), append("two"), sh("exit 1"), append("four")];
    let err = run_hooks(&hooks, HookKind::CreateContainer, "{}").expect_err("third fails");
    assert!(matches!(err, HookError::Failed { index: 2, .. }), "{err}");
    assert_eq!(read(&log), "one\ntwo\n");
}

#[test]
fn a_hook_that_ignores_a_large_state_succeeds() {
    let state = format!("{{\"id\":\"{}\"}}", "x".repeat(4 << 20));
    run_hooks(&[sh("exit 0")], HookKind::Poststop, &state).expect("EPIPE is not a failure");
    assert!(
        !sigpipe_pending(),
        "the SIGPIPE our write raised was taken off"
    );
    let mask = SigSet::thread_get_mask().expect("sigmask");
    assert!(
        !mask.contains(Signal::SIGPIPE),
        "the signal mask is restored"
    );
}

#[test]
fn large_output_on_both_pipes_neither_deadlocks_nor_floods_the_error() {
    let body = "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2; echo last-line >&2; exit 1";
    let err = run_hooks(&[sh(body)], HookKind::Poststart, "{}").expect_err("exit 1");
    let HookError::Failed { stdout, stderr, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        stdout.len() <= OUTPUT_LIMIT + 3 && stdout.starts_with("...o"),
        "{stdout}"
    );
    assert!(
        stderr.len() <= OUTPUT_LIMIT + 3 && stderr.ends_with("eeelast-line"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_holding_stdout_does_not_hold_the_runtime() {
    let dir = TestDir::new("hooks-daemon");
    let pid_file = dir.path().join("pid");
    let started = Instant::now();
    run_hooks(
        &[sh(&format!(
            "sleep 30 & echo $! > '{}'",
            pid_file.display()
        ))],
        HookKind::Poststart,
        "{}",
    )
    .expect("hook exits 0");
    let waited = started.elapsed();
    if let Ok(pid) = read(&pid_file).trim().parse::<i32>() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(
        waited < Duration::from_secs(20),
        "waited for the daemon's end-of-file"
    );
}

/// The init runs hooks with SIGPIPE at its default (fatal) action, which
/// this harness ignores; check in a re-executed test binary that sets it.
#[test]
fn a_hook_closing_stdin_early_does_not_kill_a_runtime_with_default_sigpipe() {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new(exe)
        .args([
            "--exact",
            "hooks::tests::sigpipe_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("BERTH_HOOKS_SIGPIPE_CHILD", "1")
        .output()
        .expect("run the test binary");
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}

#[test]
#[ignore = "run by a_hook_closing_stdin_early_does_not_kill_a_runtime_with_default_sigpipe"]
fn sigpipe_child() {
    if std::env::var_os("BERTH_HOOKS_SIGPIPE_CHILD").is_none() {
        return;
    }
    // SAFETY: installing SIG_DFL runs no handler code.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) }
        .expect("reset SIGPIPE");
    let state = "x".repeat(1 << 20);
    for _ in 0..5 {
        run_hooks(
            &[sh("exit 0"), sh("head -c 10 > /dev/null")],
            HookKind::CreateContainer,
            &state,
        )
        .expect("hooks pass");
    }
}

/// Whether `pid` is gone or a zombie (dead, waiting for whoever reaps it).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[track_caller]
fn wait_dead(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dead(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[track_caller]
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A shell that starts a background sleep (its pid to `child`), writes its own
/// pid to `leader` and waits: both must go when the hook is killed.
fn shell_with_a_child(leader: &Path, child: &Path) -> Hook {
    sh(&format!(
        "sleep 1000 & echo $! > '{}'; echo $$ > '{}'; wait",
        child.display(),
        leader.display()
    ))
}

#[test]
fn timeout_kills_the_hooks_whole_process_group() {
    let dir = TestDir::new("hooks-timeout-group");
    let (leader, child) = (dir.path().join("leader"), dir.path().join("child"));
    let mut hook = shell_with_a_child(&leader, &child);
    hook.set_timeout(Some(1));
    let err = run_hooks(&[hook], HookKind::Prestart, "{}").expect_err("times out");
    assert!(matches!(err, HookError::Timeout { .. }), "{err}");
    assert!(dead(read(&leader).trim()), "the hook was reaped");
    wait_dead(read(&child).trim());
}

/// Hooks start with nothing blocked and nothing ignored, whatever the
/// runtime's own state (a foreground `run` blocks everything; Rust ignores
/// SIGPIPE), in a process group that is not the runtime's.
#[test]
fn a_hook_starts_with_clean_signals_in_a_group_of_its_own() {
    let dir = TestDir::new("hooks-clean-signals");
    let out = dir.path().join("state");
    let block: u64 = (1 << (libc::SIGUSR1 - 1)) | (1 << (libc::SIGHUP - 1)) | (1 << 39);
    let mut old: u64 = 0;
    // SAFETY: blocks three signals on this test thread; restored below.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &block,
            &mut old,
            8usize,
        )
    };
    let result = run_hooks(
        &[sh(&format!(
            "exec > '{}'; read -r s < /proc/self/stat; set -- $s; echo \"pgrp $5\"; exec grep -E '^Sig(Blk|Ign)' /proc/self/status",
            out.display()
        ))],
        HookKind::CreateRuntime,
        "{}",
    );
    // SAFETY: puts back this thread's mask.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    result.expect("hook runs");
    let text = read(&out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    assert_eq!(field("SigBlk:"), "0000000000000000");
    assert_eq!(field("SigIgn:"), "0000000000000000");
    let ours = nix::unistd::getpgrp().as_raw().to_string();
    assert_ne!(field("pgrp"), ours, "the hook is in the runtime's group");
}

/// Signal this test thread only, from another thread, once `ready` is
/// written: the thread has the stop signals blocked by then.
fn signal_me_when(ready: PathBuf, signo: i32) -> std::thread::JoinHandle<()> {
    // SAFETY: gettid has no arguments.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    std::thread::spawn(move || {
        wait_for_file(&ready);
        // SAFETY: tgkill to a thread of this process that holds `signo` blocked.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signo) };
    })
}

#[test]
fn a_stop_signal_kills_a_hook_that_never_reads_its_state_nor_exits() {
    let dir = TestDir::new("hooks-stop");
    let (leader, child) = (dir.path().join("leader"), dir.path().join("child"));
    // 4 MiB: far more than the pipe holds; the hook reads none of it.
    let state = format!("{{\"id\":\"{}\"}}", "x".repeat(4 << 20));
    let signaller = signal_me_when(leader.clone(), libc::SIGTERM);
    let err = run_hooks(
        &[shell_with_a_child(&leader, &child)],
        HookKind::CreateRuntime,
        &state,
    )
    .expect_err("stopped");
    signaller.join().expect("signaller");
    assert!(
        matches!(
            err,
            HookError::Stopped {
                signal: libc::SIGTERM,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("stopped by SIGTERM"), "{err}");
    assert!(dead(read(&leader).trim()), "the hook was reaped");
    wait_dead(read(&child).trim());
}

#[test]
fn a_stop_signal_ends_a_list_of_warning_hooks() {
    let dir = TestDir::new("hooks-stop-warning");
    let (leader, child) = (dir.path().join("leader"), dir.path().join("child"));
    let after = dir.path().join("after");
    let signaller = signal_me_when(leader.clone(), libc::SIGHUP);
    let errors = run_warning_hooks(
        &[
            shell_with_a_child(&leader, &child),
            sh(&format!(": > '{}'", after.display())),
        ],
        HookKind::Poststop,
        "{}",
    );
    signaller.join().expect("signaller");
    assert!(
        matches!(
            errors.as_slice(),
            [HookError::Stopped {
                signal: libc::SIGHUP,
                ..
            }]
        ),
        "{errors:?}"
    );
    assert!(!after.exists(), "the next hook ran after the stop");
    wait_dead(read(&child).trim());
}

#[test]
fn a_hang_up_of_the_runtime_kills_the_init_side_hook() {
    let dir = TestDir::new("hooks-hang-up");
    let (leader, child) = (dir.path().join("leader"), dir.path().join("child"));
    let (runtime_end, init_end) = crate::init::sync::channel().expect("socketpair");
    let ready = leader.clone();
    let closer = std::thread::spawn(move || {
        wait_for_file(&ready);
        drop(runtime_end);
    });
    let err = run_hooks_for_runtime(
        &[shell_with_a_child(&leader, &child)],
        HookKind::CreateContainer,
        "{}",
        std::os::fd::AsFd::as_fd(&init_end),
    )
    .expect_err("the runtime is gone");
    closer.join().expect("closer");
    assert!(matches!(err, HookError::RuntimeGone { .. }), "{err}");
    wait_dead(read(&child).trim());
}

/// The watchdog: a process running a hook is SIGKILLed (no code of its own
/// runs), and the hook and what it started die too. The runner is this test
/// binary, re-executed.
#[test]
fn a_killed_runtime_takes_its_hooks_group_with_it() {
    let dir = TestDir::new("hooks-killed-runtime");
    let (leader, child) = (dir.path().join("leader"), dir.path().join("child"));
    let exe = std::env::current_exe().expect("test binary");
    let mut runner = Command::new(exe)
        .args([
            "--exact",
            "hooks::tests::hanging_hook_runner",
            "--ignored",
            "--test-threads=1",
        ])
        .env("BERTH_HOOKS_RUNNER_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the test binary");
    let leader_pid = wait_for_file(&leader).trim().to_owned();
    let child_pid = read(&child).trim().to_owned();
    runner.kill().expect("SIGKILL the runner");
    runner.wait().expect("reap the runner");
    wait_dead(&leader_pid);
    wait_dead(&child_pid);
}

#[test]
#[ignore = "run by a_killed_runtime_takes_its_hooks_group_with_it"]
fn hanging_hook_runner() {
    let Some(dir) = std::env::var_os("BERTH_HOOKS_RUNNER_DIR").map(PathBuf::from) else {
        return;
    };
    let _ = run_hooks(
        &[shell_with_a_child(&dir.join("leader"), &dir.join("child"))],
        HookKind::Poststart,
        "{}",
    );
}
