//! Known runtime escapes, one test each (REFERENCE.md section 3): the container must not
//! reach the runtime's binary or any of its host descriptors or directories.

use std::fs;

use berth_conformance::{
    berth_only, read_until_closed, wait_until, Answer, Bundle, ConsoleSocket, HostDir, Runtime,
    SeccompAgent,
};
use serde_json::json;
use std::time::Duration;

/// CVE-2019-5736: while the init still runs the runtime's own code (created, before
/// `start`), a process exec'd into the container must not reach the runtime binary
/// through /proc/1/exe, to read or to overwrite it.
#[test]
fn the_runtime_binary_is_out_of_reach_of_the_container() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let script =
        "readlink /proc/1/exe >/dev/null 2>&1 && echo link-readable || echo link-refused; \
                  head -c 1 /proc/1/exe >/dev/null 2>&1 && echo readable || echo read-refused; \
                  (echo x >> /proc/1/exe) 2>/dev/null && echo WRITTEN || echo write-refused";
    let out = rt.cmd(&["exec", &id, "sh", "-c", script]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.get(2), Some(&"write-refused"), "{}", out.describe());
    // runc 1.1 runs its init from a sealed memfd copy of itself: reading that is harmless.
    if berth_only("runc's init is a sealed copy of runc, readable but not writable") {
        assert_eq!(
            lines[..2],
            ["link-refused", "read-refused"],
            "{}",
            out.describe()
        );
    }
    rt.kill_and_delete(&id, &bundle);
}

/// CVE-2019-5736 during `exec`: the process `exec` starts runs the runtime's
/// own code inside the container's namespaces until its execve. A seccomp
/// agent holds that execve (a notify rule on execve), and another process of
/// the container then tries the binary through /proc/<pid>/exe.
#[test]
fn the_runtime_binary_is_out_of_reach_while_exec_sets_up() {
    let agent = SeccompAgent::start(Answer::HoldFirstOf(1));
    let mut bundle = Bundle::busybox(&["sleep", "1000"]);
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
    // The container's processes whose parent is outside it: the init (1), the
    // probing shell, and the held one.
    let probe = "for s in /proc/[0-9]*/status; do p=${s%/status}; n=${p#/proc/}; \
                   { [ $n = 1 ] || [ $n = $$ ]; } && continue; \
                   grep -q '^PPid:[[:space:]]*0$' $s 2>/dev/null || continue; echo held; \
                   readlink $p/exe >/dev/null 2>&1 && echo link-readable || echo link-refused; \
                   head -c 1 $p/exe >/dev/null 2>&1 && echo readable || echo read-refused; \
                   (echo x >> $p/exe) 2>/dev/null && echo WRITTEN || echo write-refused; done";
    std::thread::scope(|scope| {
        let held_exec = scope.spawn(|| rt.cmd(&["exec", "-d", &id, "/bin/true"]));
        assert!(
            wait_until(Duration::from_secs(10), || agent.holding()),
            "the exec'd process never reached its execve"
        );
        let out = rt.cmd(&["exec", &id, "sh", "-c", probe]);
        agent.release();
        held_exec.join().expect("the held exec").ok();
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"held"),
            "the probe did not find the held process: {}",
            out.describe()
        );
        assert_eq!(lines.get(3), Some(&"write-refused"), "{}", out.describe());
        if berth_only("runc's exec runs a sealed copy of runc, readable but not writable") {
            assert_eq!(
                lines[1..3],
                ["link-refused", "read-refused"],
                "{}",
                out.describe()
            );
        }
    });
    rt.kill_and_delete(&id, &bundle);
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N would be a directory the runtime left open
/// (its state dir, a cgroup) if a descriptor leaked; from there `..` climbs the host.
/// Either the container refuses to start or its cwd is inside its own root.
#[test]
fn a_leaked_descriptor_cannot_become_the_working_directory() {
    let marker = format!("berth-escape-marker-{}", std::process::id());
    fs::write(format!("/{marker}"), "host").unwrap();
    for fd in 3..=9 {
        let climb = "../".repeat(16);
        let mut bundle = Bundle::busybox(&[
            "sh",
            "-c",
            &format!("cat {climb}{marker} 2>/dev/null && echo ESCAPED || echo confined"),
        ]);
        bundle.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.run(&id, &bundle, &[]);
        assert!(
            !out.stdout.contains("ESCAPED"),
            "cwd /proc/self/fd/{fd} reached the host: {}",
            out.describe()
        );
        if out.success() {
            assert_eq!(out.stdout, "confined\n");
        }
        rt.cmd(&["delete", "--force", &id]);
        rt.assert_nothing_left(&id, &bundle);
    }
    let _ = fs::remove_file(format!("/{marker}"));
}

/// CVE-2025-31133 and CVE-2019-19921: a maskedPath the rootfs made a symlink to a host
/// file must not mask (or expose) the host file; the runtime masks inside the rootfs.
#[test]
fn a_masked_path_planted_as_a_symlink_stays_in_the_rootfs() {
    let mut bundle = Bundle::busybox(&["sh", "-c", "cat /etc/planted 2>/dev/null; echo done"]);
    let host_file = bundle.path().join("host-secret");
    fs::write(&host_file, "secret").unwrap();
    // Absolute symlink: resolved in the rootfs it names /<bundle>/host-secret, which
    // does not exist there; followed on the host it would hit the real file.
    std::os::unix::fs::symlink(&host_file, bundle.rootfs().join("etc/planted")).unwrap();
    bundle.edit(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/etc/planted"))
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(!out.stdout.contains("secret"), "{}", out.describe());
    assert_eq!(
        fs::read_to_string(&host_file).unwrap(),
        "secret",
        "the host file changed"
    );
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
    assert!(
        berth_conformance::mounts_mentioning(&host_file).is_empty(),
        "a mount landed on the host file"
    );
}

/// CVE-2022-29162 for `exec`: `--cap` adds to the bounding, effective and
/// permitted sets only; inheritable (and so ambient) stays as the config
/// has it. CVE-2016-9962 / CVE-2024-21626 for `exec`: the process gets no
/// descriptor of the runtime, only 0, 1 and 2.
#[test]
fn an_exec_d_process_gets_no_inheritable_caps_and_no_runtime_descriptor() {
    let bundle = Bundle::busybox(&["sleep", "1000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    // Read from the host: the process's own view of its descriptors would
    // include the one it lists them with.
    let pid_file = rt.root().with_extension("exec.pid");
    rt.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--cap",
        "CAP_NET_RAW",
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    let pid = fs::read_to_string(&pid_file)
        .expect("the exec pid file")
        .trim()
        .to_owned();
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).expect("the exec'd process's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:\t")))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    let net_raw = 1u64 << 13;
    assert_ne!(
        field("CapEff") & net_raw,
        0,
        "--cap did not reach the effective set"
    );
    assert_eq!(field("CapInh"), 0, "inheritable capabilities were granted");
    assert_eq!(field("CapAmb"), 0, "ambient capabilities were granted");
    let mut fds: Vec<u32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the exec'd process's descriptors")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2], "the exec'd process holds more than stdio");
    rt.kill_and_delete(&id, &bundle);
}

/// CVE-2025-52881: a mount in the container's /proc (here a host file bound
/// over the sysctl's file) must not redirect the runtime's own procfs writes.
/// Berth writes sysctls through a procfs instance of its own, which no
/// container mount covers.
#[test]
fn a_mount_over_a_proc_file_does_not_redirect_a_sysctl_write() {
    let mut bundle = Bundle::busybox(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let decoy = bundle.path().join("decoy");
    fs::write(&decoy, "untouched\n").unwrap();
    bundle.add_mount(json!({ "destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind", "source": decoy, "options": ["bind"] }));
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
        // With /proc/sys read-only the redirected write would fail rather than land.
        c["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/sys");
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert_eq!(
        fs::read_to_string(&decoy).unwrap(),
        "untouched\n",
        "the sysctl write went through the container's mount: {}",
        out.describe()
    );
    if berth_only("runc 1.1 refuses a mount inside /proc instead") {
        assert_eq!(out.stdout, "untouched\n", "{}", out.describe());
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// CVE-2025-52565: the console is bound onto /dev/console, and a rootfs
/// whose /dev is its own (no tmpfs from the config) may make that a symlink
/// to a procfs file such as /proc/sys/kernel/core_pattern (host-wide): the
/// console must not be bound over it, which would hand the container a
/// writable mount of a file that masks and read-only paths protect.
#[test]
fn a_dev_console_planted_as_a_symlink_is_not_followed() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "grep -c core_pattern /proc/self/mountinfo; echo ran",
    ]);
    fs::create_dir_all(bundle.rootfs().join("dev")).unwrap();
    let _ = fs::remove_file(bundle.rootfs().join("dev/console"));
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/core_pattern",
        bundle.rootfs().join("dev/console"),
    )
    .unwrap();
    bundle.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    let rt = Runtime::new();
    let id = rt.new_id();
    let created = rt.create(
        &id,
        &bundle,
        &["--console-socket", socket.path().to_str().unwrap()],
    );
    if created.success() {
        let received = socket.receive().expect("the master");
        rt.start(&id).ok();
        let out = read_until_closed(&received.master);
        assert!(out.contains("ran"), "{out:?}");
        // runc 1.1.5 predates the fix (runc 1.2.8) and binds over core_pattern.
        if berth_only("runc 1.1.5 is vulnerable to CVE-2025-52565") {
            assert!(
                out.lines().next().is_some_and(|l| l.trim() == "0"),
                "the console was bound over core_pattern: {out:?}"
            );
        }
        rt.wait_status(&id, "stopped");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// CVE-2026-41579 (runc 1.3.6 / 1.4.3): the rootfs's /dev a symlink to a host
/// directory, so that the runtime's /dev setup before pivot_root (the tmpfs,
/// the device nodes, the /dev/fd links, the console) lands on the host. The
/// link must be resolved inside the rootfs: the host directory stays empty.
#[test]
fn a_dev_planted_as_a_symlink_to_the_host_is_set_up_inside_the_rootfs() {
    let target = HostDir::new();
    let mut bundle = Bundle::busybox(&["sh", "-c", "ls /dev/null /dev/fd >/dev/null && echo ran"]);
    let dev = bundle.rootfs().join("dev");
    let _ = fs::remove_dir_all(&dev);
    std::os::unix::fs::symlink(target.path(), &dev).unwrap();
    bundle.edit(|c| c["process"]["terminal"] = json!(false));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    let left: Vec<_> = fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // runc 1.1.5 makes stdin, stdout, stderr, fd and ptmx there.
    if berth_only("runc 1.1.5 predates the fix for CVE-2026-41579 (runc 1.3.6)") {
        assert!(left.is_empty(), "the runtime wrote on the host: {left:?}");
        assert!(
            host_dir_has_no_mounts(target.path()),
            "a mount landed on the host directory"
        );
    }
    if out.success() {
        assert_eq!(out.stdout.trim(), "ran", "{}", out.describe());
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// Nothing is mounted at or below `dir` in the host's mount table.
fn host_dir_has_no_mounts(dir: &std::path::Path) -> bool {
    berth_conformance::mounts_mentioning(dir).is_empty()
}
