//! containerd with Berth's own shim, `containerd-shim-berth-v2`
//! (`ctr run --runtime io.containerd.berth.v2`), which links the library instead of
//! running a runtime binary: the task's lifecycle, the forker and the shim dying, hooks,
//! OOM events. Under `RUNTIME=/usr/sbin/runc` the same tests drive the runc shim
//! (`io.containerd.runc.v2`) with runc (`containerd_shim`), so any difference between the
//! two shims shows as a test that passes on one side only. Needs
//! `cargo build -p containerd-shim-berth-v2`.

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_cases as cases;
use berth_conformance::containerd_shim::{kill_delete_and_check, run, run_detached, SLEEPER};
use berth_conformance::unique_name;

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

/// The shim blocks SIGCHLD, SIGTERM and SIGINT in its own threads (its reaper takes them
/// by sigwait, docs/shim.md) and inherits signal handlers from containerd's `start`
/// command: neither may reach a container's processes, the init or an exec'd one, which
/// start with no signal blocked and no standard signal (1-31) ignored. (Under the runc
/// shim signal 32 comes ignored, which runc's Go init leaves so.)
#[test]
fn the_containers_processes_start_with_no_signal_blocked_or_ignored() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let check = |what: &str, out: &berth_conformance::Output| {
        let mask = |field: &str| -> u64 {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or_else(|| panic!("no {field} in {what}'s status: {}", out.describe()))
        };
        assert_eq!(mask("SigBlk:"), 0, "{what}: {}", out.describe());
        assert_eq!(
            mask("SigIgn:") & 0x7fff_ffff,
            0,
            "{what}: {}",
            out.describe()
        );
    };
    let id = unique_name();
    let init = run(&containerd, &id, &["--rm"], &["cat", "/proc/self/status"]);
    check("the init", &init);

    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let exec = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "masks",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    check("an exec'd process", &exec);
    kill_delete_and_check(&containerd, &id, pid);
}

#[test]
fn exec_runs_in_the_container_with_its_exit_code() {
    cases::exec_runs_in_the_container_with_its_exit_code(run);
}

#[test]
fn kill_delivers_the_signal_and_delete_reports_the_exit() {
    cases::kill_delivers_the_signal_and_delete_reports_the_exit(run);
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
    cases::pause_and_resume(run);
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

/// Berth's shim makes processes through a forker (docs/shim.md) that it does not keep
/// between requests: a running task's shim has no forker child; an exec starts one, gets
/// its process (its exit status comes back) and leaves none again.
#[test]
fn no_forker_stays_between_requests() {
    if !berth_conformance::berth_only("the runc shim has no forker") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let shim = parent_of(pid).expect("the init has a parent");
    let no_forker = || children_running(shim, "berth-forker").is_empty();
    assert!(
        berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, no_forker),
        "the shim {shim} keeps a forker: {:?}",
        children_running(shim, "berth-forker")
    );
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
    assert!(
        berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, no_forker),
        "the exec's forker stays: {:?}",
        children_running(shim, "berth-forker")
    );
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
    // The shim's socket, as `start` wrote it for containerd in the bundle.
    let socket = containerd
        .shim_socket(&id)
        .expect("the address file names the shim's socket");
    assert!(socket.exists(), "no socket at {}", socket.display());
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
    if berth_conformance::berth_only("the runc shim's delete leaves a killed shim's socket") {
        assert!(
            !socket.exists(),
            "the killed shim's socket {} is left",
            socket.display()
        );
    }
}

/// `ctr task metrics` (the shim's Stats).
#[test]
fn metrics_come_from_the_containers_cgroup() {
    cases::metrics_come_from_the_containers_cgroup(run);
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

/// `ctr events` written to a log named after `name`, from now until the child is killed.
fn log_events(containerd: &Containerd, name: &str) -> (std::process::Child, std::path::PathBuf) {
    let log = berth_conformance::scratch_dir().join(format!("{name}.events"));
    let file = std::fs::File::create(&log).expect("create the events log");
    let events = containerd
        .ctr_command(&["events"])
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ctr events");
    // Give the subscription a moment to exist before the containers do.
    std::thread::sleep(std::time::Duration::from_millis(500));
    (events, log)
}

/// A container over its memory limit: the kernel kills its process, `ctr run` gets 137,
/// and containerd hears `/tasks/oom` for it (`ctr events`).
#[test]
fn an_oom_kill_is_published() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let (mut events, log) = log_events(&containerd, &id);
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

/// A shim serving several containers (one group, as a pod's) has one OOM thread for all
/// of them (their memory cgroups' notifiers in one epoll, docs/shim.md), not one each;
/// and an OOM kill of an exec'd process in the second container is published while its
/// init runs on: the event path, not the count read again at the init's exit.
#[test]
fn an_oom_kill_in_a_shared_shim_is_published_while_its_container_runs() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let ids: Vec<String> = (0..3).map(|_| unique_name()).collect();
    let (mut events, log) = log_events(&containerd, &ids[1]);
    let group = format!("io.containerd.runc.v2.group={}", ids[0]);
    let mut pids = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut flags = vec!["-d", "--annotation", &group];
        if i == 1 {
            flags.extend(["--memory-limit", "16777216"]);
        }
        run(&containerd, id, &flags, SLEEPER).ok();
        pids.push(containerd.running_pid(id));
    }
    let shims: Vec<Option<i64>> = pids.iter().map(|&pid| parent_of(pid)).collect();
    let shim = shims[0].unwrap_or(0);
    // Berth's shim only: the runc shim is Go, its threads unnamed.
    let oom_threads = berth_conformance::is_berth().then(|| threads_named(shim, "oom"));
    // `tail` of an endless line buffers it all: the limit kills it, not the idle init.
    let hog = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "hog",
        &ids[1],
        "sh",
        "-c",
        "exec tail /dev/zero",
    ]);
    let oom_of = |id: &str| {
        std::fs::read_to_string(&log).is_ok_and(|l| {
            l.lines()
                .any(|l| l.contains("/tasks/oom") && l.contains(id))
        })
    };
    let published =
        berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || oom_of(&ids[1]));
    let status = containerd.task(&ids[1]).map(|(_, status)| status);
    let others = [oom_of(&ids[0]), oom_of(&ids[2])];
    let _ = events.kill();
    let _ = events.wait();
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    for (id, pid) in ids.iter().zip(&pids).rev() {
        kill_delete_and_check(&containerd, id, *pid);
    }
    assert!(
        shims.iter().all(|s| *s == Some(shim)),
        "not one shim: {shims:?}"
    );
    if let Some(oom_threads) = oom_threads {
        assert_eq!(
            oom_threads,
            1,
            "OOM threads of the shim {shim} with {} containers",
            ids.len()
        );
    }
    assert_eq!(hog.code, 137, "{}", hog.describe());
    assert!(published, "no /tasks/oom event for {}:\n{seen}", ids[1]);
    assert_eq!(status.as_deref(), Some("RUNNING"), "the OOM's container");
    assert_eq!(
        others,
        [false, false],
        "an OOM event for another container:\n{seen}"
    );
}

/// How many of `pid`'s threads have a name starting with `prefix`.
fn threads_named(pid: i64, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
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

/// Two `ctr run`s of one group (the `io.containerd.runc.v2.group` annotation, which both
/// shims honour, as the CRI plugin's sandbox id groups a pod) are served by one shim
/// process: both inits are its children. Each outlives the other's removal: exec works in
/// the second after the first is gone, and the shim exits only with the last.
#[test]
fn a_groups_two_tasks_share_one_shim_and_outlive_each_other() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let group = format!("io.containerd.runc.v2.group={}", unique_name());
    let (first, second) = (unique_name(), unique_name());
    let flags = ["-d", "--annotation", group.as_str()];
    run(&containerd, &first, &flags, berth_conformance::SLEEPER).ok();
    let first_pid = containerd.running_pid(&first);
    run(&containerd, &second, &flags, berth_conformance::SLEEPER).ok();
    let second_pid = containerd.running_pid(&second);
    let shim = parent_of(first_pid).expect("the first init has a parent");
    assert_eq!(
        parent_of(second_pid),
        Some(shim),
        "the second task of the group has another shim than the first's ({shim})"
    );
    // Not `kill_delete_and_check`: the group's shim bears the first task's id and
    // rightly outlives it, so that check comes after the last task.
    containerd
        .ctr(&["task", "kill", "-s", "SIGKILL", &first])
        .ok();
    containerd.wait_task_status(&first, "STOPPED");
    containerd.ctr(&["task", "delete", &first]).ok();
    containerd.ctr(&["container", "rm", &first]).ok();
    assert!(
        !berth_conformance::pid_alive(first_pid),
        "the first init {first_pid} survived its delete"
    );
    assert!(
        berth_conformance::pid_alive(shim),
        "the group's shim {shim} exited with its first task"
    );
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "after",
        &second,
        "echo",
        "still-here",
    ]);
    assert!(out.stdout.contains("still-here"), "{}", out.describe());
    kill_delete_and_check(&containerd, &second, second_pid);
    let gone = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        !berth_conformance::pid_alive(shim)
    });
    assert!(gone, "the group's shim {shim} outlived its last task");
    containerd.assert_nothing_left(&first, first_pid);
}

/// Stats in cgroup v2's form (what Berth's shim answers on a unified host; forced here,
/// on a v1 host, by `BERTH_SHIM_CGROUP_METRICS=v2`), decoded by containerd itself:
/// `ctr task metrics --format json` prints the v2 message's fields, with the values the
/// container's cgroup holds. The shim writes this message by hand (no generated type),
/// so containerd's decoder is the oracle. Berth only: the runc shim follows the host.
#[test]
fn metrics_in_v2_form_decode_in_containerd() {
    if !berth_conformance::berth_only("the v2 form is forced through Berth's shim") {
        return;
    }
    let Some(containerd) = Containerd::start_with_env(&[("BERTH_SHIM_CGROUP_METRICS", "v2")])
    else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let table = containerd.ctr(&["task", "metrics", &id]);
    table.ok();
    assert!(
        table.stdout.contains("memory.usage_limit") && !table.stdout.contains("usage_in_bytes"),
        "ctr did not read the v2 form: {}",
        table.describe()
    );
    let out = containerd.ctr(&["task", "metrics", "--format", "json", &id]);
    out.ok();
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
    let number = |path: &str| json.pointer(path).and_then(serde_json::Value::as_u64);
    assert!(number("/pids/current").is_some_and(|n| n >= 1), "{json:#}");
    assert!(number("/cpu/usage_usec").is_some_and(|n| n > 0), "{json:#}");
    assert!(number("/memory/usage").is_some_and(|n| n > 0), "{json:#}");
    // A line of memory.stat, by its kernel name, reached its field.
    assert!(number("/memory/pgfault").is_some_and(|n| n > 0), "{json:#}");
    kill_delete_and_check(&containerd, &id, pid);
}

/// Many requests to one shim at once: sixteen `ctr task exec`s into one container, each
/// its own exec id, output and exit code. Berth's shim serves them on ttrpc threads and
/// serialises the forking through its one forker (docs/shim.md); each must get its own
/// process, output and status back, with nothing crossed or lost. (With the forker's lock
/// released between request and reply, replies crossed in 3 runs of 3 at sixteen, 0 of
/// 3 at eight: the ctr starts spread the requests out.)
#[test]
fn concurrent_execs_each_get_their_own_output_and_status() {
    const EXECS: usize = 16;
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let pid = run_detached(&containerd, &id);
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..EXECS)
            .map(|n| {
                let (containerd, id) = (&containerd, &id);
                s.spawn(move || {
                    let exec_id = format!("e{n}");
                    let script = format!("echo token-{n}-$$; exit {}", 10 + n);
                    containerd.ctr(&[
                        "task",
                        "exec",
                        "--exec-id",
                        &exec_id,
                        id,
                        "sh",
                        "-c",
                        &script,
                    ])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a ctr thread"))
            .collect()
    });
    let mut pids = std::collections::BTreeSet::new();
    for (n, out) in outs.iter().enumerate() {
        assert_eq!(out.code, 10 + n as i32, "exec {n}: {}", out.describe());
        let token = out
            .stdout
            .trim()
            .strip_prefix(&format!("token-{n}-"))
            .unwrap_or_else(|| panic!("exec {n} printed another's output: {}", out.describe()));
        pids.insert(token.to_string());
    }
    assert_eq!(
        pids.len(),
        EXECS,
        "the execs did not run as {EXECS} processes: {pids:?}"
    );
    kill_delete_and_check(&containerd, &id, pid);
}
