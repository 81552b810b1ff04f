//! Berth's containerd shim (see engine_shim.rs): `binary://` log URIs, the logging
//! programs containerd's shim protocol has the shim start (`ctr run --log-uri
//! binary:///PATH?KEY=VALUE`, what nerdctl sends for every container), and the owner of
//! the stdio pipes (`io_uid`/`io_gid`, from `ctr run --uidmap/--gidmap`). Under
//! `RUNTIME=/usr/sbin/runc` the same tests drive the runc shim with runc.

use std::path::Path;
use std::time::Duration;

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_shim::{kill_delete_and_check, run, run_detached, SLEEPER};
use berth_conformance::{is_berth, pid_alive, unique_name, wait_until, HostDir};

/// How long a logger may take to write what it got.
const LOGGED: Duration = Duration::from_secs(10);

/// A logger script in `dir`, which records in `dir` its pid, its arguments (one a
/// line), its environment and its descriptors, copies descriptors 3 and 4 (the
/// container's stdout and stderr) to `dir/stdout` and `dir/stderr`, and closes 5 (ready);
/// then runs `after` (the copies run in the background, without 5).
fn logger(dir: &Path, after: &str) -> String {
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\n\
         echo $$ > {d}/pid.tmp && mv {d}/pid.tmp {d}/pid\n\
         for a in \"$@\"; do echo \"$a\"; done > {d}/args\n\
         env > {d}/env\n\
         fds=$(for fd in 0 1 2; do echo fd$fd=$(readlink /proc/$$/fd/$fd); done;\
               for fd in 3 4; do echo fd$fd=$(stat -L -c %F /proc/$$/fd/$fd); done)\n\
         echo \"$fds\" > {d}/fds\n\
         cat <&3 > {d}/stdout 5>&- &\n\
         cat <&4 > {d}/stderr 5>&- &\n\
         exec 5>&-\n\
         {after}\n"
    );
    program(dir, "logger.sh", &script)
        .to_string_lossy()
        .into_owned()
}

/// An executable script `name` in `dir`.
fn program(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write the logger");
    let chmod = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status();
    assert!(chmod.is_ok_and(|s| s.success()), "chmod {}", path.display());
    path
}

/// `ctr run --rm` of a container logged by `program`, which must fail with a message
/// that names the program and says `why`; then nothing of it may be left.
fn run_fails_with_logger(containerd: &Containerd, program: &Path, why: &str) {
    let uri = format!("binary://{}", program.display());
    let id = unique_name();
    let out = run(
        containerd,
        &id,
        &["--rm", "--log-uri", &uri],
        &["echo", "never"],
    );
    let text = out.fails();
    assert!(
        text.contains(&program.to_string_lossy().into_owned()) && text.contains(why),
        "{}",
        out.describe()
    );
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// The logger's pid, once it has written it.
#[track_caller]
fn logger_pid(dir: &Path) -> i64 {
    let mut pid = 0;
    wait_until(LOGGED, || {
        pid = read(dir, "pid").trim().parse().unwrap_or(0);
        pid > 0
    });
    assert!(pid > 0, "the logger never wrote its pid");
    pid
}

/// The logger gets the container's stdout and stderr on descriptors 3 and 4 (pipes), the
/// URI's query as its arguments (name, value; in any order of the pairs: the runc shim
/// walks a Go map), CONTAINER_ID and CONTAINER_NAMESPACE and nothing of the shim's own
/// environment (no PATH), /dev/null as its own stdio; `ctr run --rm` then ends as usual.
#[test]
fn a_logging_binary_gets_the_output_arguments_and_environment() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let program = logger(&dir, "wait");
    let uri = format!("binary://{program}?size=10&name=two%20words&flag");
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm", "--log-uri", &uri],
        &[
            "sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; stat -L -c %F /proc/self/fd/1; exit 3",
        ],
    );
    assert_eq!(out.code, 3, "{}", out.describe());
    let logged = wait_until(LOGGED, || {
        read(&dir, "stdout").contains("fifo") && read(&dir, "stderr").contains("to-stderr")
    });
    assert!(
        logged,
        "stdout {:?}, stderr {:?}: {}",
        read(&dir, "stdout"),
        read(&dir, "stderr"),
        out.describe()
    );
    assert_eq!(read(&dir, "stdout"), "to-stdout\nfifo\n");
    assert_eq!(read(&dir, "stderr"), "to-stderr\n");
    let args = read(&dir, "args");
    let lines: Vec<&str> = args.lines().collect();
    let mut pairs: Vec<(&str, &str)> = lines.chunks(2).map(|p| (p[0], p[1])).collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [("flag", ""), ("name", "two words"), ("size", "10")],
        "arguments {args:?}"
    );
    let env = read(&dir, "env");
    assert!(env.contains(&format!("CONTAINER_ID={id}\n")), "{env}");
    assert!(env.contains("CONTAINER_NAMESPACE=berth-"), "{env}");
    assert!(
        !env.contains("PATH="),
        "the shim's environment leaked: {env}"
    );
    assert_eq!(
        read(&dir, "fds"),
        "fd0=/dev/null\nfd1=/dev/null\nfd2=/dev/null\nfd3=fifo\nfd4=fifo\n"
    );
    let pid = logger_pid(&dir);
    assert!(!pid_alive(pid), "the logger {pid} outlived the task");
    containerd.assert_nothing_left(&id, 0);
}

/// `ctr task exec --log-uri binary://...`: the exec'd process's output goes to a logger
/// of its own, told the exec's id as CONTAINER_ID (as the runc shim tells it), which is
/// gone once ctr has deleted the exec.
#[test]
fn an_exec_gets_a_logger_of_its_own() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    // It outlives its input: only the exec's delete ends it.
    let program = logger(&dir, "while :; do sleep 1; done");
    let uri = format!("binary://{program}?exec=1");
    let id = unique_name();
    let init = run_detached(&containerd, &id);
    let exec = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "logged",
        "--log-uri",
        &uri,
        &id,
        "sh",
        "-c",
        "echo exec-out; echo exec-err >&2; exit 4",
    ]);
    assert_eq!(exec.code, 4, "{}", exec.describe());
    let logged = wait_until(LOGGED, || {
        read(&dir, "stdout") == "exec-out\n" && read(&dir, "stderr") == "exec-err\n"
    });
    assert!(
        logged,
        "stdout {:?}, stderr {:?}",
        read(&dir, "stdout"),
        read(&dir, "stderr")
    );
    assert_eq!(read(&dir, "args"), "exec\n1\n");
    let env = read(&dir, "env");
    assert!(env.contains("CONTAINER_ID=logged\n"), "{env}");
    let pid = logger_pid(&dir);
    let gone = wait_until(LOGGED, || !pid_alive(pid));
    assert!(gone, "the exec's logger {pid} outlived the exec");
    kill_delete_and_check(&containerd, &id, init);
}

/// A logging binary that does not exist: `ctr run` fails with a message naming it and
/// saying it is missing, and nothing is left (no task, state, bundle, mount, cgroup or shim).
#[test]
fn a_missing_logging_binary_fails_the_run_and_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let program = dir.join("no-such-logger");
    let uri = format!("binary://{}", program.display());
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm", "--log-uri", &uri],
        &["echo", "never"],
    );
    let text = out.fails();
    assert!(
        text.contains(&program.to_string_lossy().into_owned())
            && text.to_lowercase().contains("no such file"),
        "{}",
        out.describe()
    );
    assert!(containerd.task(&id).is_none(), "a task is left");
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// A logger that never ends on its own (it outlives the end of its input): once the task
/// is deleted, it is gone, and it ran until then.
#[test]
fn the_logger_is_gone_after_the_task_is_deleted() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let program = logger(&dir, "while :; do sleep 1; done");
    let uri = format!("binary://{program}");
    let id = unique_name();
    run(&containerd, &id, &["-d", "--log-uri", &uri], SLEEPER).ok();
    let init = containerd.running_pid(&id);
    let pid = logger_pid(&dir);
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    assert!(pid_alive(pid), "the logger {pid} ended before the delete");
    containerd.ctr(&["task", "delete", &id]).ok();
    assert!(
        !pid_alive(pid),
        "the logger {pid} outlived `ctr task delete`"
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, init);
}

/// A logger that ignores SIGTERM and never ends: `ctr run --rm` still ends, and the
/// logger is killed (after containerd's 12 s under the runc shim, 2 + 10 s under Berth's).
#[test]
fn a_logger_ignoring_sigterm_is_killed() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let program = logger(&dir, "trap '' TERM; while :; do sleep 1; done");
    let uri = format!("binary://{program}");
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm", "--log-uri", &uri],
        &["echo", "once"],
    );
    out.ok();
    let pid = logger_pid(&dir);
    assert!(!pid_alive(pid), "the logger {pid} outlived `ctr run --rm`");
    assert_eq!(read(&dir, "stdout"), "once\n");
    containerd.assert_nothing_left(&id, 0);
}

/// A logger that exits before it is ready: Berth's shim refuses the create, naming it,
/// and leaves nothing. (The runc shim takes the exit for readiness and runs the container
/// with output nobody reads; not compared.)
#[test]
fn a_logger_that_exits_before_it_is_ready_fails_the_run() {
    if !berth_conformance::berth_only("the runc shim takes a logger's exit for readiness") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let quitter = program(&dir, "quitter.sh", "#!/bin/sh\nexit 3\n");
    run_fails_with_logger(&containerd, &quitter, "exited before it was ready");
}

/// A logger that never says it is ready: after Berth's shim's 10 s the run fails, naming
/// it, and the logger is killed. (The runc shim waits for it forever; not compared.)
#[test]
fn a_logger_never_ready_is_killed_and_fails_the_run() {
    if !berth_conformance::berth_only("the runc shim waits for a logger's readiness forever") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let dir = HostDir::new();
    let script = format!(
        "#!/bin/sh\necho $$ > {}/pid\nexec sleep 600\n",
        dir.display()
    );
    let sleeper = program(&dir, "sleeper.sh", &script);
    run_fails_with_logger(&containerd, &sleeper, "was not ready within 10 s");
    let pid = logger_pid(&dir);
    assert!(!pid_alive(pid), "the logger {pid} outlived the failed run");
}

/// `ctr run --uidmap/--gidmap` runs the container in a user namespace and names the
/// mapped root as the owner of its stdio (`io_uid`, `io_gid`: the runc options for the
/// runc shim, the older `CreateOptions` for any other runtime): inside, the pipes of its
/// stdout and stderr belong to its root, which can reopen them (`/proc/self/fd/1`); a
/// pipe of the host's root would be the overflow id's, and refused. (ctr 1.6 sends the
/// runc shim runc options holding only these two, in place of `--runc-binary` and
/// `--runc-root`'s: it then runs `runc` from PATH in its default root,
/// `/run/containerd/runc`, where the namespace's directory is removed here.)
#[test]
fn the_stdio_pipes_belong_to_the_mapped_root() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let map = "0:100000:65536";
    let out = run(
        &containerd,
        &id,
        &["--rm", "--uidmap", map, "--gidmap", map],
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; stat -L -c %u:%g /proc/self/fd/1 /proc/self/fd/2; \
             echo reopened > /proc/self/fd/1",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines
            .first()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["0", "100000", "65536"]),
        "not in the user namespace: {}",
        out.describe()
    );
    assert_eq!(lines[1..], ["0:0", "0:0", "reopened"], "{}", out.describe());
    containerd.assert_nothing_left(&id, 0);
    if !is_berth() {
        let namespace = Path::new("/run/containerd/runc").join(containerd.namespace());
        assert!(
            !namespace.join(&id).exists(),
            "runc's state of {id} is left"
        );
        let _ = std::fs::remove_dir(namespace);
    }
}
