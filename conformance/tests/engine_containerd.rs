//! containerd with the runtime under test as the runc of its runc shim
//! (`io.containerd.runc.v2`, `ctr run --runc-binary`): each test starts a private
//! containerd (own socket, root, state, config.toml), imports a busybox OCI image built
//! offline with umoci, and drives it with `ctr` as a user would.

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_cases as cases;
use berth_conformance::{berth_only, unique_name, SLEEPER};

/// `ctr run -d` of the sleeper; returns the init's pid.
#[track_caller]
fn run_detached(containerd: &Containerd, id: &str) -> i64 {
    containerd.run(id, &["-d"], SLEEPER).ok();
    containerd.running_pid(id)
}

#[test]
fn run_returns_the_exit_code_and_output() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &[], &["sh", "-c", "echo out-$((6*7)); exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert!(out.stdout.contains("out-42"), "{}", out.describe());
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.assert_nothing_left(&id, 0);
}

#[test]
fn run_rm_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    containerd.run(&id, &["--rm"], &["true"]).ok();
    let listed = containerd.ctr(&["container", "ls", "-q"]);
    assert!(!listed.stdout.contains(&id), "{}", listed.describe());
    containerd.assert_nothing_left(&id, 0);
}

#[test]
fn exec_runs_in_the_container_with_its_exit_code() {
    cases::exec_runs_in_the_container_with_its_exit_code(Containerd::run);
}

#[test]
fn kill_delivers_the_signal_and_delete_cleans_up() {
    cases::kill_delivers_the_signal_and_delete_reports_the_exit(Containerd::run);
}

#[test]
fn pause_and_resume() {
    cases::pause_and_resume(Containerd::run);
}

/// The runc shim reads a task's metrics from its cgroup itself (containerd 1.6); it does
/// not call `runc events --stats`, so this does not wait for Berth's `events`.
#[test]
fn metrics_come_from_the_containers_cgroup() {
    cases::metrics_come_from_the_containers_cgroup(Containerd::run);
}

#[test]
fn tty_run_gets_a_terminal() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    // The short sleep lets the shim copy the output before the exit closes the console.
    let out = containerd.run_in_terminal(
        &id,
        &["-t", "--rm"],
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; tty; sleep 1; exit 5",
        ],
    );
    assert_eq!(out.code, 5, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/"), "{}", out.describe());
    containerd.assert_nothing_left(&id, 0);
}

/// A process that cannot be started: the runtime's error text reaches the ctr user.
#[test]
fn runtime_errors_reach_the_ctr_user() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &["--rm"], &["/no/such/binary"]);
    let text = out.fails();
    assert!(
        text.contains("OCI runtime create failed") && text.contains("/no/such/binary"),
        "{}",
        out.describe()
    );
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// A config Berth refuses (runc 1.1 only warns about an unknown capability): Berth's own
/// message, naming the field, is what ctr prints.
#[test]
fn a_refused_config_shows_berths_message() {
    if !berth_only("runc 1.1 runs with an unknown capability") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = containerd.run(&id, &["--rm", "--cap-add", "CAP_BOGUS"], &["true"]);
    out.fails_with("unknown capability \"CAP_BOGUS\" in process.capabilities");
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// Two tasks of one namespace share the cgroup parent `/<namespace>`, which the runtime
/// created for the first. Deleting the first task while the second runs must succeed
/// (runc removes only the container's own directory) and leave the second one working.
#[test]
fn deleting_one_task_leaves_a_sibling_sharing_its_parent_cgroup() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let first = unique_name();
    let second = unique_name();
    let first_pid = run_detached(&containerd, &first);
    let second_pid = run_detached(&containerd, &second);
    containerd
        .ctr(&["task", "kill", "-s", "SIGKILL", &first])
        .ok();
    containerd.wait_task_status(&first, "STOPPED");
    containerd.delete_and_check(&first, first_pid);
    containerd
        .ctr(&["task", "exec", "--exec-id", "still-there", &second, "true"])
        .ok();
    containerd
        .ctr(&["task", "kill", "-s", "SIGKILL", &second])
        .ok();
    containerd.wait_task_status(&second, "STOPPED");
    containerd.delete_and_check(&second, second_pid);
}

/// What a container sees of itself, one fact per line: identity, capabilities and
/// other process attributes, its mount table (mount point, fstype, per-mount
/// options; sources and superblock options name host paths that differ by id),
/// its devices, and its cgroup memory limit read from inside.
const SELF_REPORT: &str = "\
echo hostname=$(hostname); echo id=$(id); echo cwd=$(pwd); echo umask=$(umask); \
grep -E '^(Cap|NoNewPrivs|Seccomp|Groups)' /proc/self/status; \
echo oom_score_adj=$(cat /proc/self/oom_score_adj); \
echo limits; cat /proc/self/limits; \
echo env; env | sort; \
echo mounts; awk '{ for (i = 7; $i != \"-\"; i++); print $5, $(i+1), $6 }' /proc/self/mountinfo; \
echo masked: keys=$(wc -c < /proc/keys) acpi=$(ls -A /proc/acpi | wc -l); \
echo devices; for f in /dev/* /dev/pts/*; do stat -c '%A %u %g %t:%T %n' $f; done; \
echo memory.limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1); \
echo cgroups; sed 's/[^:/]*$/ID/' /proc/self/cgroup; \
echo ns; ls /proc/self/ns; \
exit 7";

/// The same workload under the runtime under test and under runc, in one containerd:
/// exit code, output and what the process sees of itself must be equal, ids aside.
#[test]
fn the_same_workload_looks_the_same_under_runc() {
    let runc = std::path::Path::new(berth_conformance::RUNC);
    if !runc.exists() {
        return berth_conformance::skip("runc is not installed at /usr/sbin/runc");
    }
    // The normalisation knows which side is Berth: under RUNTIME=runc both are runc.
    if !berth_conformance::berth_only("compares Berth with runc") {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let flags = [
        "--rm",
        "--memory-limit",
        "67108864",
        "--env",
        "GREETING=hello",
        "--mount",
        "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec",
    ];
    let report = |binary: &std::path::Path| {
        let id = unique_name();
        let out = containerd.run_with(binary, &id, &flags, &["sh", "-c", SELF_REPORT]);
        containerd.assert_nothing_left(&id, 0);
        (
            out.code,
            out.stdout.replace(&id, "ID"),
            out.stderr.replace(&id, "ID"),
        )
    };
    let ours = report(&berth_conformance::runtime());
    let theirs = report(runc);
    assert_eq!(ours.0, 7, "stderr: {}", ours.2);
    let (ours_view, theirs_view) = (normalise(&ours.1, false), normalise(&theirs.1, true));
    let (ours_lines, theirs_lines): (Vec<&str>, Vec<&str>) =
        (ours_view.lines().collect(), theirs_view.lines().collect());
    let differ: Vec<String> = ours_lines
        .iter()
        .filter(|l| !theirs_lines.contains(l))
        .map(|l| format!("  ours only:   {l}"))
        .chain(
            theirs_lines
                .iter()
                .filter(|l| !ours_lines.contains(l))
                .map(|l| format!("  runc's only: {l}")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "the workload's view differs from runc's:\n{}\n--- ours ---\n{}{}\n--- runc ---\n{}{}",
        differ.join("\n"),
        ours.1,
        ours.2,
        theirs.1,
        theirs.2
    );
    assert_eq!(
        (ours.0, ours_view, ours.2),
        (theirs.0, theirs_view, theirs.2)
    );
}

/// What legitimately differs between Berth's and runc 1.1's view, made equal.
/// Each rule says why; anything else that differs is a difference to fix.
fn normalise(report: &str, is_runc: bool) -> String {
    let mut out = Vec::new();
    let mut mounts = Vec::new();
    let mut in_mounts = false;
    for line in report.lines() {
        if line == "mounts" {
            in_mounts = true;
            out.push(line.to_owned());
            continue;
        }
        if in_mounts && line.starts_with("masked:") {
            in_mounts = false;
            // config-linux.md gives maskedPaths and readonlyPaths no order between
            // them (runc masks after the read-only binds, Berth before).
            mounts.sort();
            out.append(&mut mounts);
        }
        if !in_mounts {
            out.push(line.to_owned());
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [point, fstype, options] = fields[..] else {
            mounts.push(line.to_owned());
            continue;
        };
        let masking = (point.starts_with("/proc/") || point.starts_with("/sys/"))
            && !point.starts_with("/sys/fs/cgroup")
            && matches!(fstype, "tmpfs" | "devtmpfs");
        if masking {
            // config-linux.md "Masked Paths" asks only that the path cannot be read
            // (checked by the `masked:` line). Berth masks a file with the host's
            // /dev/null (devtmpfs), never the container's (CVE-2025-31133, which
            // runc 1.1 has: its mask is a bind of the container's /dev/null, so it
            // reads as the container's /dev tmpfs), and a directory with a tmpfs
            // that is also nosuid,nodev,noexec.
            mounts.push(format!("{point} masked"));
        } else if point == "/sys/fs/cgroup" && fstype == "tmpfs" && is_runc {
            // config.md "Mounts": the options are those of the mount at the
            // destination, and the test asks for `ro`. runc 1.1 leaves the tmpfs
            // that holds the hierarchies writable; Berth makes it read-only.
            mounts.push(format!(
                "{point} {fstype} {}",
                options.replacen("rw", "ro", 1)
            ));
        } else if point == "/sys/fs/cgroup/unified" && !is_runc {
            // The spec does not lay out a `cgroup` mount. Both bind the container's
            // own cgroup of every v1 hierarchy; on a hybrid host Berth also binds its
            // directory of the cgroup2 hierarchy, which runc 1.1 leaves out.
        } else {
            mounts.push(line.to_owned());
        }
    }
    out.join("\n")
}
