//! `checkpoint` and `restore` with CRIU (docs/checkpoint.md) on real busybox
//! containers: what a restored container carries over from the dumped one.
//! Each test skips with a note where no CRIU works (see src/criu.rs).

use std::fs;
use std::path::Path;

use berth_conformance::criu::{
    assert_counter_stopped, checkpoint, counter_bundle, criu_or_skip, read_count, restore,
    wait_count,
};
use berth_conformance::{berth_only, tmpfs_mount, HostDir, Runtime};

fn pid_of(rt: &Runtime, id: &str) -> i64 {
    rt.state(id)["pid"].as_i64().expect("pid is a number")
}

#[test]
fn a_restored_counter_resumes_from_where_it_was_not_from_zero() {
    let Some(criu) = criu_or_skip() else { return };
    let (bundle, shared) = counter_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    let images = HostDir::new();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 5);

    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    // As runc: the dumped container is gone, and its processes with it.
    rt.cmd(&["state", &id]).fails_with("does not exist");
    assert_counter_stopped(&shared);
    let dumped = read_count(&shared);

    restore(&rt, &criu, &id, &bundle, images.path(), &[]).ok();
    let state = rt.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    let first = read_count(&shared);
    assert!(
        first >= dumped,
        "the restored counter shows {first}, below the {dumped} it was dumped at"
    );
    wait_count(&shared, dumped + 5);
    // The state record names the restored init, which `list` shows too.
    let pid = pid_of(&rt, &id);
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(
        comm.trim(),
        "sh",
        "pid {pid} in the state is not the restored init"
    );
    let list = rt.cmd(&["list", "--format", "json"]).ok().stdout.clone();
    let listed: serde_json::Value = serde_json::from_str(&list).expect("list prints JSON");
    let entry = listed
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert_eq!(entry["status"], "running", "{entry}");
    assert_eq!(entry["pid"].as_i64(), Some(pid), "{entry}");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn leave_running_keeps_the_container_running_and_the_images_restore() {
    let Some(criu) = criu_or_skip() else { return };
    let (bundle, shared) = counter_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    let images = HostDir::new();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 3);
    let pid = pid_of(&rt, &id);

    let before = read_count(&shared);
    checkpoint(&rt, &criu, &id, images.path(), &["--leave-running"]).ok();
    let state = rt.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"].as_i64(), Some(pid), "{state}");
    let after = read_count(&shared);
    wait_count(&shared, after + 3);

    rt.kill_and_delete(&id, &bundle);
    restore(&rt, &criu, &id, &bundle, images.path(), &[]).ok();
    let restored = read_count(&shared);
    assert!(
        restored >= before,
        "restored at {restored}, dumped at {before} or later"
    );
    wait_count(&shared, restored + 3);
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_restored_container_checkpoints_again_and_restores_under_new_ids() {
    let Some(criu) = criu_or_skip() else { return };
    let (bundle, shared) = counter_bundle();
    let rt = Runtime::new();
    let first = rt.new_id();
    let second = rt.new_id();
    let third = rt.new_id();
    rt.run(&first, &bundle, &["-d"]).ok();
    wait_count(&shared, 3);

    let images = HostDir::new();
    checkpoint(&rt, &criu, &first, images.path(), &[]).ok();
    restore(&rt, &criu, &second, &bundle, images.path(), &[]).ok();
    let at = wait_count(&shared, read_count(&shared) + 2);
    // The restored container lives in its own id's cgroup, not the dumped one's.
    let pid = pid_of(&rt, &second);
    let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read cgroup");
    for line in cgroups.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.ends_with(&format!("/{second}")),
            "{second}'s init is outside its cgroup: {line}\n{cgroups}"
        );
    }
    assert!(
        berth_conformance::cgroups_named(&first).is_empty(),
        "the checkpointed container's cgroup is left"
    );

    let again = HostDir::new();
    checkpoint(&rt, &criu, &second, again.path(), &[]).ok();
    rt.cmd(&["state", &second]).fails_with("does not exist");
    restore(&rt, &criu, &third, &bundle, again.path(), &[]).ok();
    assert!(read_count(&shared) >= at);
    wait_count(&shared, at + 3);
    rt.kill_and_delete(&third, &bundle);
    rt.assert_nothing_left(&first, &bundle);
    rt.assert_nothing_left(&second, &bundle);
}

#[test]
fn tmpfs_and_bind_mount_contents_survive_a_restore() {
    let Some(criu) = criu_or_skip() else { return };
    let (mut bundle, shared) = counter_bundle();
    bundle.add_mount(tmpfs_mount("/scratch", &["rw", "nosuid"]));
    bundle.set_args(&[
        "sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; echo in-tmpfs > /scratch/kept; echo in-bind > /out/kept; \
         i=0; while :; do sleep 0.1; i=$((i+1)); echo $i > /out/count; done",
    ]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    assert!(berth_conformance::wait_until(
        berth_conformance::STATE_DEADLINE,
        || shared.join("kept").exists()
    ));
    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    restore(&rt, &criu, &id, &bundle, images.path(), &[]).ok();

    let out = rt.cmd(&["exec", &id, "cat", "/scratch/kept", "/out/kept"]);
    assert_eq!(out.ok().stdout, "in-tmpfs\nin-bind\n", "{}", out.describe());
    // The bind is the host's directory again, not a copy: a new file shows on both sides.
    rt.cmd(&["exec", &id, "sh", "-c", "echo after > /out/after"])
        .ok();
    assert_eq!(
        fs::read_to_string(shared.join("after")).unwrap_or_default(),
        "after\n"
    );
    let mounts = rt
        .cmd(&["exec", &id, "cat", "/proc/self/mounts"])
        .ok()
        .stdout
        .clone();
    assert!(
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/scratch")
                && l.split_whitespace().nth(2) == Some("tmpfs")),
        "no tmpfs at /scratch after restore:\n{mounts}"
    );
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_listening_tcp_socket_accepts_connections_after_restore() {
    let Some(criu) = criu_or_skip() else { return };
    let (mut bundle, shared) = counter_bundle();
    // A network namespace of its own (runc's default spec has one); lo comes up inside.
    bundle.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            if let Some(caps) = c["process"]["capabilities"][set].as_array_mut() {
                caps.push("CAP_NET_ADMIN".into());
            }
        }
    });
    bundle.set_args(&[
        "sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; ip link set lo up; \
         while :; do nc -l -p 7000 >> /out/received; done & \
         i=0; while :; do sleep 0.1; i=$((i+1)); echo $i > /out/count; done",
    ]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    read_count(&shared);
    let send = |what: &str| {
        rt.cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            &format!("echo {what} | nc -w 1 127.0.0.1 7000"),
        ])
    };
    let sent = berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        send("before").success()
    });
    assert!(sent, "nothing listens on port 7000 before the checkpoint");

    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &["--tcp-established"]).ok();
    restore(
        &rt,
        &criu,
        &id,
        &bundle,
        images.path(),
        &["--tcp-established"],
    )
    .ok();
    if !berth_only(
        "runc 1.1.5's restore brings the netns back with lo down: Network is unreachable",
    ) {
        rt.kill_and_delete(&id, &bundle);
        return;
    }
    let after = send("after");
    after.ok();
    let received = |path: &Path| fs::read_to_string(path).unwrap_or_default();
    assert!(
        berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || received(
            &shared.join("received")
        )
        .contains("after")),
        "the restored listener got: {:?}",
        received(&shared.join("received"))
    );
    rt.kill_and_delete(&id, &bundle);
}

/// Reads from the master until `want` shows up (or the deadline passes); returns what came.
fn read_until(master: &std::os::fd::OwnedFd, want: &str) -> String {
    use std::os::fd::AsRawFd;
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + berth_conformance::STATE_DEADLINE;
    while !seen.contains(want) && std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        // SAFETY: reads into a local buffer of the given length.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n as usize]));
    }
    seen
}

fn write_line(master: &std::os::fd::OwnedFd, line: &str) {
    use std::io::Write;
    let mut file = std::fs::File::from(master.try_clone().expect("dup master"));
    file.write_all(format!("{line}\n").as_bytes())
        .expect("write to the master");
}

#[test]
fn a_terminal_container_gets_its_terminal_through_the_restore_console_socket() {
    let Some(criu) = criu_or_skip() else { return };
    let mut bundle = berth_conformance::Bundle::busybox(&[
        "sh",
        "-c",
        "while read line; do echo \"got:$line\"; done",
    ]);
    bundle.edit(|c| c["process"]["terminal"] = serde_json::json!(true));
    let dir = HostDir::new();
    let socket = berth_conformance::ConsoleSocket::bind(dir.path());
    let rt = Runtime::new();
    let id = rt.new_id();
    let socket_path = socket.path().to_str().unwrap().to_string();
    rt.create(&id, &bundle, &["--console-socket", &socket_path])
        .ok();
    let first = socket.receive().expect("the master of create");
    rt.start(&id).ok();
    write_line(&first.master, "one");
    let echoed = read_until(&first.master, "got:one");
    assert!(echoed.contains("got:one"), "{echoed:?}");

    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    drop(first);
    let again = HostDir::new();
    let second_socket = berth_conformance::ConsoleSocket::bind(again.path());
    let second_path = second_socket.path().to_str().unwrap().to_string();
    restore(
        &rt,
        &criu,
        &id,
        &bundle,
        images.path(),
        &["--console-socket", &second_path],
    )
    .ok();
    let second = second_socket.receive().expect("the master of restore");
    write_line(&second.master, "two");
    let echoed = read_until(&second.master, "got:two");
    assert!(
        echoed.contains("got:two"),
        "the restored shell did not answer: {echoed:?}"
    );
    rt.kill_and_delete(&id, &bundle);
}

fn netns_of(pid: i64) -> std::path::PathBuf {
    fs::read_link(format!("/proc/{pid}/ns/net")).expect("read the netns link")
}

#[test]
fn a_network_namespace_joined_by_path_is_joined_again_on_restore() {
    let Some(criu) = criu_or_skip() else { return };
    let rt = Runtime::new();
    let holder_bundle = berth_conformance::Bundle::sleeper();
    let holder = rt.new_id();
    rt.run(&holder, &holder_bundle, &["-d"]).ok();
    let holder_pid = pid_of(&rt, &holder);

    let (mut bundle, shared) = counter_bundle();
    let path = format!("/proc/{holder_pid}/ns/net");
    bundle.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if ns["type"] == "network" {
                ns["path"] = serde_json::json!(path);
            }
        }
    });
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    assert_eq!(netns_of(pid_of(&rt, &id)), netns_of(holder_pid));

    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    restore(&rt, &criu, &id, &bundle, images.path(), &[]).ok();
    let restored = pid_of(&rt, &id);
    assert_eq!(
        netns_of(restored),
        netns_of(holder_pid),
        "the restored container is not in the network namespace its config joins"
    );
    wait_count(&shared, read_count(&shared) + 2);
    rt.kill_and_delete(&id, &bundle);
    rt.kill_and_delete(&holder, &holder_bundle);
}

/// Each line of a hook's log: the state it got on stdin.
fn hook_states(log: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn restore_runs_the_prestart_and_create_runtime_hooks_with_the_restored_pid() {
    let Some(criu) = criu_or_skip() else { return };
    let (mut bundle, shared) = counter_bundle();
    let logs = HostDir::new();
    let hook = |kind: &str| {
        let log = logs.path().join(format!("{kind}.log"));
        serde_json::json!({ "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >> {}; echo >> {}", log.display(), log.display())] })
    };
    let (prestart, create_runtime) = (hook("prestart"), hook("createRuntime"));
    bundle.edit(|c| {
        c["hooks"] =
            serde_json::json!({ "prestart": [prestart], "createRuntime": [create_runtime] })
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    restore(&rt, &criu, &id, &bundle, images.path(), &[]).ok();
    let pid = pid_of(&rt, &id);

    // runc 1.1.5 runs both there too.
    for kind in ["prestart", "createRuntime"] {
        let states = hook_states(&logs.path().join(format!("{kind}.log")));
        assert_eq!(
            states.len(),
            2,
            "{kind} ran {} times, not at run and at restore",
            states.len()
        );
        assert_eq!(states[1]["id"], id.as_str(), "{}", states[1]);
        assert_eq!(
            states[1]["pid"].as_i64(),
            Some(pid),
            "{kind} got another pid: {}",
            states[1]
        );
    }
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_foreground_restore_waits_exits_with_the_status_and_deletes() {
    let Some(criu) = criu_or_skip() else { return };
    let (mut bundle, shared) = counter_bundle();
    bundle.set_args(&[
        "sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; i=0; \
         while [ ! -e /out/stop ]; do i=$((i+1)); echo $i > /out/count; sleep 0.1; done; exit 3",
    ]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    let pid_file = images.path().join("restored.pid");
    let out = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let bundle_path = bundle.path().to_str().unwrap();
            rt.cmd(&[
                "--criu",
                &criu,
                "restore",
                "--bundle",
                bundle_path,
                "--image-path",
                images.path().to_str().unwrap(),
                "--pid-file",
                pid_file.to_str().unwrap(),
                &id,
            ])
        });
        let at = read_count(&shared);
        wait_count(&shared, at + 2);
        let recorded = fs::read_to_string(&pid_file).unwrap_or_default();
        assert_eq!(
            recorded.trim().parse::<i64>().ok(),
            Some(pid_of(&rt, &id)),
            "pid file {recorded:?}"
        );
        fs::write(shared.join("stop"), "").expect("write stop");
        waiter.join().expect("the restore thread")
    });
    assert_eq!(
        out.code,
        3,
        "the foreground restore did not exit with the container's status: {}",
        out.describe()
    );
    rt.cmd(&["state", &id]).fails_with("does not exist");
    rt.assert_nothing_left(&id, &bundle);
}
