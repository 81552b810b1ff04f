//! The light wait of `create` (docs/waiter.md): a created container's init waits for
//! `start` as a tiny program from a sealed memfd, not as a copy of the runtime. It must
//! cost little, hold nothing of the runtime, and change nothing the program sees: each
//! program here runs once through `create` + `start` (the waiter) and once through `run`
//! (which waits as before), and the two must print the same.

use berth_conformance::{
    berth_only, cap_mask, is_berth, pid_alive, wait_until, Bundle, Runtime, STATE_DEADLINE,
};
use serde_json::{json, Value};

/// What the program reports: its ids, capabilities, no_new_privs and seccomp state, and
/// its args, environment, cwd and umask. Pids and memory differ from run to run.
const REPORT: &str = "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; \
                      echo \"args: $0 $*\"; env | sort; pwd; umask; \
                      mkdir /tmp/made 2>&1 || true; cat /proc/self/personality 2>/dev/null || true";

/// A bundle whose program writes `REPORT` to /shared/report, and the host dir it lands in.
fn reporting_bundle(edit: impl FnOnce(&mut Value)) -> (Bundle, std::path::PathBuf) {
    let script =
        format!("({REPORT}) > /shared/report.tmp 2>&1; mv /shared/report.tmp /shared/report");
    let mut bundle = Bundle::busybox(&["sh", "-c", &script, "zero", "one two", "three"]);
    bundle.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("WAITER_CHECK=a b=c"))
    });
    bundle.edit(edit);
    let shared = bundle.share_dir("/shared");
    // Writable by the non-root users some tests run as.
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    (bundle, shared)
}

fn read_report(shared: &std::path::Path) -> String {
    let path = shared.join("report");
    assert!(
        wait_until(STATE_DEADLINE, || path.exists()),
        "the program never wrote its report"
    );
    std::fs::read_to_string(&path).unwrap()
}

/// The report through `run`.
fn report_of_run(edit: impl FnOnce(&mut Value)) -> String {
    let (bundle, shared) = reporting_bundle(edit);
    let rt = Runtime::new();
    rt.run_to_completion(&bundle);
    read_report(&shared)
}

/// The report through `create` then `start`, and the init's exe link while it waited.
fn report_of_create_start(edit: impl FnOnce(&mut Value)) -> (String, String) {
    let (bundle, shared) = reporting_bundle(edit);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    rt.start(&id).ok();
    let report = read_report(&shared);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
    (report, exe)
}

/// `(run's report, create+start's report, the init's exe while created)`, asserting that
/// the two reports are equal.
fn same_through_create_and_run(edit: impl Fn(&mut Value)) -> (String, String) {
    let through_run = report_of_run(&edit);
    let (through_create, exe) = report_of_create_start(&edit);
    assert_eq!(
        through_create, through_run,
        "create+start and run gave the program different things"
    );
    (through_create, exe)
}

fn is_waiter(exe: &str) -> bool {
    exe.starts_with("/memfd:berth-waiter")
}

/// `Name:\tvalue` from /proc/<pid>/status or smaps_rollup, in kB.
fn kib(text: &str, name: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

const BOUNDING: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_RAW",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_AUDIT_WRITE",
];

#[test]
fn a_created_containers_init_is_the_waiter_and_costs_under_a_mebibyte() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    if berth_only("the waiter is Berth's") {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert!(
            is_waiter(&exe.to_string_lossy()),
            "the created init runs {exe:?}, not the waiter"
        );
        // The target (docs/benchmarks.md) is under 1 MiB RSS and 150 KiB private:
        // the waiter is a few pages.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(kib(&status, "VmRSS:") < 1024, "{status}");
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
        assert!(
            kib(&rollup, "Private_Dirty:") + kib(&rollup, "Private_Clean:") < 150,
            "{rollup}"
        );
        // Only stdio and the start barrier: no descriptor of the runtime's reaches it.
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| {
                std::fs::read_link(e.unwrap().path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|target| {
                !target.starts_with("/dev/null")
                    && !target.contains(".stdout")
                    && !target.contains(".stderr")
            })
            .collect();
        assert_eq!(fds.len(), 1, "{fds:?}");
        assert!(fds[0].ends_with("/exec.fifo"), "{fds:?}");
    }
    rt.start(&id).ok();
    rt.wait_status(&id, "running");
    rt.kill_and_delete(&id, &bundle);
}

/// While it waits, nothing in the container may read the init's memory or descriptors:
/// a process `exec`'d into the created container, with the same uid and no capabilities,
/// cannot read its environ (PTRACE_MODE_READ), as it could a dumpable process's.
#[test]
fn the_waiting_init_is_not_dumpable() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        c["process"]["capabilities"] = json!({});
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    // A non-dumpable process's /proc files belong to root, whatever its uid.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(format!("/proc/{pid}/environ")).unwrap(),
    );
    assert_eq!(owner, 0, "the created init is dumpable");
    let probe = rt.cmd(&[
        "exec",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "cat /proc/1/environ >/dev/null 2>&1 && echo readable || echo refused",
    ]);
    probe.ok();
    assert_eq!(probe.stdout.trim(), "refused", "{}", probe.describe());
    // The same probe on a dumpable process of that uid succeeds: the check can fail.
    let control = rt.cmd(&[
        "exec",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "cat /proc/self/environ >/dev/null 2>&1 && echo readable || echo refused",
    ]);
    assert_eq!(control.stdout.trim(), "readable", "{}", control.describe());
    rt.kill_and_delete(&id, &bundle);
}

/// Root with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (Docker's default set has the
/// first) could read an execute-only file, which would leave the waiter dumpable until its
/// first instruction: a root `exec` without CAP_SYS_PTRACE still cannot read its environ.
#[test]
fn the_waiting_init_of_root_with_dac_caps_is_not_dumpable() {
    let mut bundle = Bundle::sleeper();
    let caps = ["CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_KILL"];
    bundle.edit(|c| {
        c["process"]["capabilities"] =
            json!({ "bounding": caps, "effective": caps, "permitted": caps });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let probe = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/environ >/dev/null 2>&1 && echo readable || echo refused",
    ]);
    probe.ok();
    if berth_only("runc 1.1's waiting init is readable by the container's root") {
        assert_eq!(probe.stdout.trim(), "refused", "{}", probe.describe());
    }
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn start_of_a_dead_waiter_fails() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    rt.kill(&id, Some("KILL")).ok();
    assert!(
        wait_until(STATE_DEADLINE, || !pid_alive(pid)),
        "init {pid} survived SIGKILL"
    );
    rt.start(&id).fails();
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// The program is resolved at `create`; if it is gone by `start`, the final exec fails
/// after the barrier (in the waiter): `start` itself succeeds, as it does with runc,
/// and the init exits, so the container stops.
#[test]
fn a_program_removed_before_start_stops_the_container() {
    let mut bundle = Bundle::busybox(&["/prog", "true"]);
    std::fs::copy(
        bundle.rootfs().join("bin/busybox"),
        bundle.rootfs().join("prog"),
    )
    .unwrap();
    bundle.edit(|_| {});
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    std::fs::remove_file(bundle.rootfs().join("prog")).unwrap();
    rt.start(&id).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// Root with the default (reduced) bounding set: the program sees what `run` gives it.
#[test]
fn root_sees_the_same_through_the_waiter() {
    let (report, exe) = same_through_create_and_run(|_| {});
    assert!(report.contains("args: zero one two three"), "{report}");
    assert!(report.contains("WAITER_CHECK=a b=c"), "{report}");
    if berth_only("the waiter is Berth's") {
        assert!(is_waiter(&exe), "{exe}");
    }
}

/// A non-root user with ambient capabilities keeps exactly them (capabilities(7)), and
/// with a bounding set smaller than the default.
#[test]
fn a_non_root_user_with_ambient_caps_sees_the_same_through_the_waiter() {
    let (report, exe) = same_through_create_and_run(|c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10] });
        c["process"]["capabilities"] = json!({
            "bounding": BOUNDING, "effective": BOUNDING, "permitted": BOUNDING,
            "inheritable": ["CAP_NET_RAW", "CAP_KILL"], "ambient": ["CAP_NET_RAW"],
        });
    });
    let ambient = format!("{:016x}", cap_mask(&["CAP_NET_RAW"]));
    assert!(report.contains(&format!("CapAmb:\t{ambient}")), "{report}");
    assert!(report.contains(&format!("CapEff:\t{ambient}")), "{report}");
    if berth_only("the waiter is Berth's") {
        assert!(is_waiter(&exe), "{exe}");
    }
}

/// no_new_privs: the filter loads after the barrier, in the waiter; it must deny what it
/// denies under `run`, and the process must carry exactly one filter.
#[test]
fn a_late_seccomp_filter_loads_in_the_waiter() {
    let (report, exe) = same_through_create_and_run(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }],
        });
        // runc 1.1 refuses every filter flag; the waiter passes them as libseccomp would.
        if is_berth() {
            c["linux"]["seccomp"]["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]);
        }
    });
    assert!(report.contains("NoNewPrivs:\t1"), "{report}");
    assert!(report.contains("Seccomp:\t2"), "{report}");
    assert!(report.contains("Operation not permitted"), "{report}");
    if berth_only("the waiter is Berth's") {
        assert!(report.contains("Seccomp_filters:\t1"), "{report}");
        assert!(is_waiter(&exe), "{exe}");
    }
}

/// Root with no_new_privs and a bounding set wider than permitted: the exec may not gain
/// (no_new_privs caps it at the old permitted set), so the waiter is exact.
#[test]
fn root_with_no_new_privs_and_a_wide_bounding_set_sees_the_same_through_the_waiter() {
    let (_, exe) = same_through_create_and_run(|c| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["process"]["capabilities"] = json!({
            "bounding": BOUNDING, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        });
    });
    if berth_only("the waiter is Berth's") {
        assert!(is_waiter(&exe), "{exe}");
    }
}

/// Root whose exec gains capabilities (bounding wider than permitted, no
/// no_new_privs): the gain happens at the waiter's exec, and the program ends
/// with the same sets either way. The init no longer waits itself: a copy of
/// the runtime must never be what the container sees (docs/security.md).
#[test]
fn root_gaining_caps_at_exec_sees_the_same_through_the_waiter() {
    let (_, exe) = same_through_create_and_run(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["capabilities"] = json!({
            "bounding": BOUNDING, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        });
    });
    if berth_only("the waiter is Berth's") {
        assert!(is_waiter(&exe), "{exe}");
    }
}

/// A filter without no_new_privs loads before the waiter's exec (as runc's
/// loads before its exec FIFO), when it lets the waiter's own syscalls
/// through; the program sees the same filter.
#[test]
fn an_early_seccomp_filter_loads_before_the_waiter() {
    let (report, exe) = same_through_create_and_run(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }],
        });
    });
    assert!(report.contains("Operation not permitted"), "{report}");
    if berth_only("the waiter is Berth's") {
        assert!(report.contains("Seccomp_filters:\t1"), "{report}");
        assert!(is_waiter(&exe), "{exe}");
    }
}
