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
    // With a whole spec (`--config`), ctr takes no image: the spec names the rootfs.
    if !flags.contains(&"--config") {
        args.push(IMAGE);
    }
    args.push(id);
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

/// Hooks run by the runtime (poststart at start, poststop at delete) run to the end and
/// their success is seen: the shim reaps every child it gets, and a hook's status must
/// not be taken from the runtime that waits for it.
#[test]
fn poststart_and_poststop_hooks_run_and_succeed() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let dir = berth_conformance::scratch_dir().join(&id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let spec = containerd.ctr(&["oci", "spec"]);
    spec.ok();
    let mut config: serde_json::Value = serde_json::from_str(&spec.stdout).expect("ctr oci spec");
    // Several of each: the race of a reaper with the runtime's wait is lost often, not
    // always.
    let hook = |name: &str| {
        let hooks: Vec<serde_json::Value> = (0..4)
            .map(|n| {
                let mark = dir.join(format!("{name}-{n}"));
                serde_json::json!({
                    "path": "/bin/sh",
                    "args": ["sh", "-c", format!("sleep 0.1; echo ran > {}", mark.display())],
                })
            })
            .collect();
        serde_json::Value::from(hooks)
    };
    config["hooks"] = serde_json::json!({
        "poststart": hook("poststart"),
        "poststop": hook("poststop"),
    });
    config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "sleep 1; exit 3"]);
    config["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    let rootfs = berth_conformance::Bundle::busybox(&["true"]);
    config["root"] = serde_json::json!({ "path": rootfs.rootfs(), "readonly": false });
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).expect("write config.json");
    let out = run(
        &containerd,
        &id,
        &["--rm", "--config", &path.to_string_lossy()],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.describe());
    for mark in ["poststart-3", "poststop-3"] {
        assert!(dir.join(mark).exists(), "no {mark}: {}", out.describe());
    }
    containerd.assert_nothing_left(&id, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A container over its memory limit: the kernel kills its process, `ctr run` gets 137,
/// and containerd hears `/tasks/oom` for it (`ctr events`).
#[test]
fn an_oom_kill_is_published() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let log = berth_conformance::scratch_dir().join(format!("{id}.events"));
    let file = std::fs::File::create(&log).expect("create the events log");
    let mut events = containerd
        .ctr_command(&["events"])
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ctr events");
    // Give the subscription a moment to exist before the container does.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // `tail` of an endless line buffers it all: it grows until the limit kills it.
    let out = run(
        &containerd,
        &id,
        &["--rm", "--memory-limit", "16777216"],
        &["sh", "-c", "exec tail /dev/zero"],
    );
    let published = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("/tasks/oom"))
    });
    let _ = events.kill();
    let _ = events.wait();
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(out.code, 137, "{}", out.describe());
    assert!(published, "no /tasks/oom event:\n{seen}");
    containerd.assert_nothing_left(&id, 0);
}

/// A container in another's pid namespace: its init's background child outlives the
/// init unless the shim kills what is left of the container when the init exits (before
/// any delete, which would kill it too).
#[test]
fn the_inits_children_die_with_it_without_a_pid_namespace() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let dir = berth_conformance::scratch_dir().join(&id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    // This test's own pid namespace (pid 1's may be out of reach here).
    let pid_ns = format!("pid:/proc/{}/ns/pid", std::process::id());
    let mount = format!("type=bind,src={},dst=/out,options=rbind:rw", dir.display());
    run(
        &containerd,
        &id,
        &["-d", "--with-ns", &pid_ns, "--mount", &mount],
        &[
            "sh",
            "-c",
            "sleep 300 >/dev/null 2>&1 & echo $! > /out/child; exit 0",
        ],
    )
    .ok();
    containerd.wait_task_status(&id, "STOPPED");
    let child: i64 = std::fs::read_to_string(dir.join("child"))
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .expect("the init wrote its child's pid");
    let gone = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        !berth_conformance::pid_alive(child)
    });
    containerd.ctr(&["task", "delete", &id]).ok();
    containerd.ctr(&["container", "rm", &id]).ok();
    if !gone {
        // SAFETY: kill(2) of the test's own leftover.
        unsafe { libc::kill(child as i32, libc::SIGKILL) };
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(gone, "the init's child {child} outlived it");
    containerd.assert_nothing_left(&id, 0);
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
