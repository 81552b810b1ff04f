//! runc's `exec`: a new process in a running container joins all its
//! namespaces, its cgroup and its seccomp profile, takes a process.json or
//! flags, and returns its own exit code (255 when exec itself fails).

use std::fs;

use berth_conformance::{
    berth_only, cap_mask, cgroups_named, read_until_closed, Bundle, ConsoleSocket, HostDir,
    PidfdSocket, Runtime, SLEEPER,
};
use serde_json::{json, Value};

fn running(edit: impl FnOnce(&mut Value)) -> (Runtime, String, Bundle) {
    let mut bundle = Bundle::sleeper();
    bundle.edit(edit);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    (rt, id, bundle)
}

fn finish(rt: &Runtime, id: &str, bundle: &Bundle) {
    rt.cmd(&["delete", "--force", id]).ok();
    rt.assert_nothing_left(id, bundle);
}

#[test]
fn exec_joins_the_container_and_returns_the_exit_code() {
    let (rt, id, bundle) = running(|_| {});
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net /proc/self/ns/uts; exit 5",
    ]);
    assert_eq!(out.code, 5, "{}", out.describe());
    for (line, ns) in out.stdout.lines().zip(["pid", "mnt", "net", "uts"]) {
        let theirs = fs::read_link(format!("/proc/{init}/ns/{ns}")).unwrap();
        assert_eq!(
            line,
            theirs.to_str().unwrap(),
            "exec is not in the container's {ns} namespace"
        );
    }
    finish(&rt, &id, &bundle);
}

#[test]
fn exec_takes_a_process_json() {
    let (rt, id, bundle) = running(|_| {});
    let dir = HostDir::new();
    let process = json!({
        "terminal": false, "user": { "uid": 1000, "gid": 1000 }, "cwd": "/tmp",
        "args": ["sh", "-c", "id -u; pwd; echo $GREETING"],
        "env": ["PATH=/bin", "GREETING=from-process-json"],
    });
    let path = dir.path().join("process.json");
    fs::write(&path, process.to_string()).unwrap();
    let out = rt.cmd(&["exec", "--process", path.to_str().unwrap(), &id]);
    assert_eq!(out.ok().stdout, "1000\n/tmp\nfrom-process-json\n");
    finish(&rt, &id, &bundle);
}

#[test]
fn detached_exec_writes_the_pid_file_and_lands_in_the_cgroup() {
    let (rt, id, bundle) = running(|_| {});
    let dir = HostDir::new();
    let pid_file = dir.path().join("exec.pid");
    let mut args = vec![
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ];
    args.extend(SLEEPER);
    rt.cmd(&args).ok();
    let pid: i64 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let listed = rt.cmd(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(listed.ok().stdout.trim()).unwrap();
    assert!(
        pids.contains(&pid),
        "exec'd pid {pid} is not in the container's cgroup: {pids:?}"
    );
    finish(&rt, &id, &bundle);
}

#[test]
fn exec_gets_the_container_seccomp_profile() {
    let (rt, id, bundle) = running(|c| {
        c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }] });
    });
    let out = rt.cmd(&["exec", &id, "sh", "-c", "mkdir /dev/shm/x 2>&1; true"]);
    assert!(
        out.ok().stdout.contains("Operation not permitted"),
        "{}",
        out.describe()
    );
    finish(&rt, &id, &bundle);
}

/// `--cap` adds to bounding, effective and permitted, never to inheritable (CVE-2022-29162).
#[test]
fn exec_cap_does_not_grant_inheritable() {
    let (rt, id, bundle) = running(|_| {});
    let out = rt.cmd(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    let text = out.ok().stdout.clone();
    let field = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let sys_admin = cap_mask(&["CAP_SYS_ADMIN"]);
    assert_eq!(field("CapEff:") & sys_admin, sys_admin, "{text}");
    assert_eq!(field("CapInh:"), 0, "{text}");
    finish(&rt, &id, &bundle);
}

#[test]
fn exec_with_a_terminal_sends_the_master_to_the_console_socket() {
    let (rt, id, bundle) = running(|_| {});
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    rt.cmd(&[
        "exec",
        "--detach",
        "--tty",
        "--console-socket",
        socket.path().to_str().unwrap(),
        &id,
        "sh",
        "-c",
        "tty; echo done",
    ])
    .ok();
    let received = socket
        .receive()
        .expect("the master arrives as go-runc expects");
    let out = read_until_closed(&received.master);
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{out:?}"
    );
    assert_eq!(lines.last(), Some(&"done"), "{out:?}");
    finish(&rt, &id, &bundle);
}

#[test]
fn exec_failures_exit_255() {
    let (rt, id, bundle) = running(|_| {});
    let missing = rt.cmd(&["exec", &id, "/no/such/program"]);
    assert_eq!(missing.code, 255, "{}", missing.describe());
    assert!(
        missing.combined().contains("/no/such/program"),
        "{}",
        missing.describe()
    );
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    let stopped = rt.cmd(&["exec", &id, "true"]);
    assert_eq!(stopped.code, 255, "{}", stopped.describe());
    assert!(
        stopped.combined().contains("stopped"),
        "{}",
        stopped.describe()
    );
    finish(&rt, &id, &bundle);
}

/// The container's own directory in every hierarchy, with a sub-cgroup `sub` made in each.
fn make_sub_cgroups(id: &str, sub: &str) -> Vec<std::path::PathBuf> {
    let dirs = cgroups_named(id);
    assert!(!dirs.is_empty(), "no cgroup directory named {id}");
    for dir in &dirs {
        let new = dir.join(sub);
        fs::create_dir(&new).unwrap_or_else(|e| panic!("mkdir {}: {e}", new.display()));
        // A new v1 cpuset has no cpus or mems, and takes no process until given some.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(parent) = fs::read_to_string(dir.join(file)) {
                fs::write(new.join(file), parent.trim())
                    .unwrap_or_else(|e| panic!("write {}/{file}: {e}", new.display()));
            }
        }
    }
    dirs
}

/// /proc/self/cgroup lines of a process, as (hierarchy's controllers, path).
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((ctrls.to_owned(), path.to_owned()))
        })
        .collect()
}

/// runc's `exec --cgroup PATH`: the process joins the existing sub-cgroup
/// PATH of the container's cgroup in every hierarchy; `delete` then removes
/// the sub-cgroups with the container's own (as runc's recursive removal does).
#[test]
fn exec_cgroup_joins_a_sub_cgroup_in_every_hierarchy() {
    let (rt, id, bundle) = running(|_| {});
    make_sub_cgroups(&id, "sub");
    let out = rt.cmd(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    let lines = cgroup_lines(&out.ok().stdout);
    assert!(!lines.is_empty(), "{}", out.describe());
    for (ctrls, path) in &lines {
        assert!(
            path.ends_with("/sub"),
            "hierarchy {ctrls:?} not in the sub-cgroup: {}",
            out.stdout
        );
    }
    // A leading '/' is still below the container's cgroup.
    let out = rt.cmd(&["exec", "--cgroup", "/sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(
        cgroup_lines(&out.ok().stdout)
            .iter()
            .all(|(_, p)| p.ends_with("/sub")),
        "{}",
        out.stdout
    );
    finish(&rt, &id, &bundle);
}

/// On v1, `--cgroup controller[,controller]:PATH` moves only those hierarchies.
#[test]
fn exec_cgroup_per_controller_moves_only_that_hierarchy() {
    let (rt, id, bundle) = running(|_| {});
    make_sub_cgroups(&id, "only-memory");
    let out = rt.cmd(&[
        "exec",
        "--cgroup",
        "memory:only-memory",
        &id,
        "cat",
        "/proc/self/cgroup",
    ]);
    let lines = cgroup_lines(&out.ok().stdout);
    let memory = lines
        .iter()
        .find(|(c, _)| c == "memory")
        .unwrap_or_else(|| panic!("no memory hierarchy: {}", out.stdout));
    assert!(memory.1.ends_with("/only-memory"), "{}", out.stdout);
    let others: Vec<_> = lines.iter().filter(|(c, _)| c != "memory").collect();
    assert!(
        !others.is_empty() && others.iter().all(|(_, p)| !p.ends_with("/only-memory")),
        "{}",
        out.stdout
    );
    finish(&rt, &id, &bundle);
}

/// A sub-cgroup that does not exist, one outside the container's cgroup, or
/// an unknown controller fail exec (255) naming the problem, and no process
/// is left in the container.
#[test]
fn exec_cgroup_refuses_missing_escaping_and_unknown() {
    // Not the sleeper: its loop forks a `sleep` every second, which would change the list.
    let bundle = Bundle::busybox(&["sleep", "1000000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pids = || -> Vec<i64> {
        serde_json::from_str(rt.cmd(&["ps", "--format", "json", &id]).ok().stdout.trim()).unwrap()
    };
    let before = pids();
    for (value, key) in [
        ("nonexistent", "nonexistent"),
        ("cpu:nonexistent", "nonexistent"),
        ("..", "not a sub cgroup path"),
        ("whaaat:/", "whaaat"),
        ("a:b:c", "invalid --cgroup argument"),
    ] {
        let out = rt.cmd(&["exec", "--cgroup", value, &id, "echo", "ran"]);
        assert_eq!(out.code, 255, "{}", out.describe());
        assert!(
            out.combined().contains(key),
            "--cgroup {value}: the error does not name {key:?}: {}",
            out.describe()
        );
        assert!(!out.stdout.contains("ran"), "{}", out.describe());
    }
    assert_eq!(pids(), before, "a refused exec left a process behind");
    finish(&rt, &id, &bundle);
}

/// runc 1.2's `exec --pidfd-socket`: a pidfd of the exec'd process arrives,
/// with runc's payload `setns`.
#[test]
fn exec_pidfd_socket_receives_a_pidfd_of_the_process_berth_only() {
    if !berth_only("runc 1.1 has no --pidfd-socket") {
        return;
    }
    let (rt, id, bundle) = running(|_| {});
    let dir = HostDir::new();
    let socket = PidfdSocket::bind(dir.path());
    let pid_file = dir.path().join("exec.pid");
    let mut args = vec![
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--pidfd-socket",
        socket.path().to_str().unwrap(),
        &id,
    ];
    args.extend(SLEEPER);
    rt.cmd(&args).ok();
    let pid: i64 = fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let received = socket.receive().expect("a pidfd arrives on the socket");
    assert_eq!(received.kind, "setns");
    assert_eq!(
        received.pid(),
        Some(pid),
        "the pidfd is not of the exec'd process"
    );
    received
        .signal_zero()
        .expect("pidfd_send_signal(0) on the received pidfd");
    finish(&rt, &id, &bundle);
}
