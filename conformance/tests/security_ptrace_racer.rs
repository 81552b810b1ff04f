//! docs/security.md, section 1 (CVE-2019-5736 and its siblings): a container holding
//! CAP_SYS_PTRACE over the host's user namespace (no user namespace of its
//! own) passes every ptrace check, non-dumpable or not. A racer inside it
//! (testdata/racer.c) polls /proc for every process it can see and reports
//! what it reaches through each: the file behind /proc/PID/exe, a root or
//! cwd outside the container, an open directory. Whatever the runtime does
//! meanwhile, none of it may be the runtime's binary or the host's tree.

use berth_conformance::{berth_only, runtime, Bundle, Runtime};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long each racer polls; the runtime's work is done well within it.
const RACE_SECONDS: u64 = 6;

/// The racer, built once from testdata/racer.c as a static binary.
fn racer() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| berth_conformance::build_static_program("racer"))
}

/// A container running the racer (under a shell that stays its pid 1), with CAP_SYS_PTRACE in every
/// set and no user namespace; its report lands in the returned host dir.
fn racing_container(edit: impl FnOnce(&mut Value)) -> (Bundle, PathBuf) {
    // The racer is not pid 1: the namespace outlives it, for the containers
    // that join it (a new process in a pid namespace whose init is gone
    // fails with ENOMEM).
    let script = format!("/racer {RACE_SECONDS} /report/out; exec sleep 100000");
    let mut bundle = Bundle::busybox(&["sh", "-c", &script]);
    std::fs::copy(racer(), bundle.rootfs().join("racer")).expect("copy the racer");
    let report = bundle.share_dir("/report");
    bundle.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability list");
            list.push(json!("CAP_SYS_PTRACE"));
        }
        edit(c);
    });
    (bundle, report.join("out"))
}

/// A directory's (device, inode), as the racer prints them.
fn dev_ino(path: &Path) -> String {
    let meta = std::fs::metadata(path).expect("stat");
    format!("{} {}", meta.dev(), meta.ino())
}

/// Wait for the racer's last line and return its findings about the
/// runtime: its binary, a directory descriptor, or a root or cwd that is
/// none of `roots` (the containers' own, whose processes it may well see,
/// as [`dev_ino`] gives them).
fn findings(report: &Path, roots: &[String]) -> (Vec<String>, String) {
    let deadline = Instant::now() + Duration::from_secs(RACE_SECONDS + 20);
    let text = loop {
        let text = std::fs::read_to_string(report).unwrap_or_default();
        if text.lines().any(|l| l.starts_with("done ")) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let binary = dev_ino(&runtime());
    let outside = |l: &str| !roots.iter().any(|c| l.ends_with(&format!(" {c}")));
    let bad = text
        .lines()
        .filter(|l| {
            (l.starts_with("exe ") && l.ends_with(&format!(" {binary}")))
                || ((l.starts_with("root ") || l.starts_with("cwd ")) && outside(l))
                || l.starts_with("dirfd ")
        })
        .map(str::to_string)
        .collect();
    (bad, text)
}

fn assert_nothing_reached(report: &Path, roots: &[String], what: &str) {
    let (bad, text) = findings(report, roots);
    assert!(text.contains("done "), "the racer never finished: {text}");
    assert!(
        bad.is_empty(),
        "{what}: the container reached the runtime ({} findings, the first: {:?})",
        bad.len(),
        &bad[..bad.len().min(12)]
    );
}

/// Every `exec` into the racer's container (plain, and under a seccomp
/// filter without no_new_privs, which loads before the process is spawned).
fn execs_stay_out_of_reach(edit: impl FnOnce(&mut Value), what: &str) {
    let (bundle, report) = racing_container(edit);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let until = Instant::now() + Duration::from_secs(RACE_SECONDS - 2);
    let mut execs = 0;
    while Instant::now() < until {
        rt.cmd(&["exec", &id, "/bin/true"]).ok();
        execs += 1;
    }
    assert_nothing_reached(&report, &[], &format!("{what} ({execs} execs)"));
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn exec_never_shows_the_runtime_to_a_container_with_cap_sys_ptrace() {
    execs_stay_out_of_reach(|_| {}, "exec");
}

#[test]
fn exec_under_a_filter_without_no_new_privs_never_shows_the_runtime() {
    execs_stay_out_of_reach(
        |c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }],
            });
        },
        "exec under a filter",
    );
}

/// A created container's init (and `run`'s, until its program runs) is seen
/// by a racer exec'd into it: it must be the waiter, never the runtime.
#[test]
fn a_created_containers_init_is_never_the_runtime_to_a_racer_inside() {
    for no_new_privileges in [true, false] {
        let (mut bundle, report) = racing_container(|c| {
            c["process"]["noNewPrivileges"] = json!(no_new_privileges);
            // The docker-like case: a filter without no_new_privs.
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }],
            });
        });
        bundle.set_args(&["sleep", "1000"]);
        let rt = Runtime::new();
        let id = rt.new_id();
        rt.create(&id, &bundle, &[]).ok();
        let racer = format!("/racer {RACE_SECONDS} /report/out");
        rt.cmd(&["exec", &id, "sh", "-c", &racer]).ok();
        assert_nothing_reached(
            &report,
            &[],
            &format!("created, noNewPrivileges {no_new_privileges}"),
        );
        if berth_only("runc's init is a sealed copy of runc") {
            let (_, text) = findings(&report, &[]);
            assert!(
                text.lines().any(|l| l.starts_with("see 1 ")),
                "the racer did not see the init: {text}"
            );
        }
        rt.kill_and_delete(&id, &bundle);
    }
}

/// Kubernetes pods: a container that joins another's pid namespace by path.
/// Its init sets up outside that namespace and is forked into it at the end,
/// from the waiter, so the racer (already in the namespace) never sees the
/// runtime: not during `create`, `start` or `run`. The joined container's
/// /proc shows the namespace it joined.
#[test]
fn a_container_joining_the_racers_pid_namespace_never_shows_the_runtime() {
    let (bundle, report) = racing_container(|_| {});
    let rt = Runtime::new();
    let racer_id = rt.new_id();
    rt.create_and_start(&racer_id, &bundle);
    let racer_pid = rt.state(&racer_id)["pid"].as_i64().expect("pid");
    let joining = |args: &[&str], no_new_privileges: bool| {
        let mut joiner = Bundle::busybox(args);
        joiner.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(no_new_privileges);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }],
            });
        });
        joiner.join_pid_namespace_of(racer_pid);
        joiner
    };
    let until = Instant::now() + Duration::from_secs(RACE_SECONDS - 2);
    let mut rounds = 0;
    let mut roots = Vec::new();
    while Instant::now() < until {
        for no_new_privileges in [true, false] {
            // run: the program sees the racer as pid 1 of its /proc: its `sh`,
            // or the `sleep` that shell execs once the race is over (a slow
            // machine's last round can come after it).
            let joiner = joining(&["cat", "/proc/1/cmdline"], no_new_privileges);
            roots.push(dev_ino(&joiner.rootfs()));
            let id = rt.new_id();
            let out = rt.run(&id, &joiner, &[]);
            assert!(
                out.success()
                    && (out.stdout.starts_with("sh") || out.stdout.starts_with("sleep\u{0}100000")),
                "pid 1 of its /proc is the racer's container's: {}",
                out.describe()
            );
            rt.assert_nothing_left(&id, &joiner);
            // create, start, delete.
            let joiner = joining(&["sleep", "1000"], no_new_privileges);
            roots.push(dev_ino(&joiner.rootfs()));
            let id = rt.new_id();
            rt.create_and_start(&id, &joiner);
            rt.kill_and_delete(&id, &joiner);
        }
        rounds += 1;
    }
    assert_nothing_reached(
        &report,
        &roots,
        &format!("joining the pid namespace ({rounds} rounds)"),
    );
    let (_, text) = findings(&report, &roots);
    assert!(
        text.lines()
            .any(|l| l.starts_with("see ") && !l.starts_with("see 1 ")),
        "the racer never saw a joining container: {text}"
    );
    rt.cmd(&["delete", "--force", &racer_id]).ok();
    rt.assert_nothing_left(&racer_id, &bundle);
}
