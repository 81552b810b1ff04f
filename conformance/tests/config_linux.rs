//! config-linux.md: sysctl, the device cgroup (linux.resources.devices) and
//! process.oomScoreAdj, checked from inside a real container; and the
//! runtime's own file descriptors not reaching it.

use std::os::unix::fs::MetadataExt;

use berth_conformance::{berth_only, Bundle, Runtime};

/// runc 1.1.5 predates these runtime-spec 1.1/1.2 fields and ignores them.
const NEWER_THAN_RUNC_1_1: &str = "runc 1.1.5 ignores this runtime-spec 1.1/1.2 field";
use serde_json::{json, Value};

fn run_script(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(edit);
    Runtime::new().run_to_completion(&bundle)
}

#[test]
fn sysctl_is_written_in_the_container_only() {
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let flipped = if host_before.trim() == "1" { "0" } else { "1" };
    let out = run_script("cat /proc/sys/net/ipv4/ip_forward", |c| {
        c["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": flipped });
    });
    assert_eq!(out.trim(), flipped);
    let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(
        host_after, host_before,
        "the container's sysctl leaked to the host"
    );
}

#[test]
fn oom_score_adj_is_set() {
    let out = run_script("cat /proc/self/oom_score_adj", |c| {
        c["process"]["oomScoreAdj"] = json!(500)
    });
    assert_eq!(out.trim(), "500");
}

/// With CAP_MKNOD a container can make a node for the host's own disk; the
/// device cgroup (default deny in runc's spec) must still refuse to open it.
#[test]
fn device_cgroup_refuses_a_host_disk_made_with_mknod() {
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let script = format!(
        "mknod /dev/disk b {major} {minor} || exit 9; \
         if head -c 1 /dev/disk >/dev/null 2>&1; then echo opened; else echo refused; fi; \
         echo ok > /dev/null && echo null-works"
    );
    let out = run_script(&script, |c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    assert_eq!(out, "refused\nnull-works\n");
}

/// No descriptor of the runtime's own may reach the user's process
/// (CVE-2024-21626): only 0, 1 and 2 are open in it. The shell tests each
/// number with a builtin, which opens nothing itself (a pipeline or `ls`
/// would hold descriptors of their own while looking).
#[test]
fn only_stdio_reaches_the_container() {
    let script = "fd=3; while [ $fd -lt 256 ]; do [ -e /proc/$$/fd/$fd ] && echo \"fd $fd: $(readlink /proc/$$/fd/$fd)\"; fd=$((fd+1)); done; echo checked";
    let out = run_script(script, |_| {});
    assert_eq!(out, "checked\n");
}

/// config-linux.md "Personality": LINUX32 makes uname report a 32-bit machine.
#[test]
fn personality_linux32_is_applied_berth_only() {
    if !berth_only(NEWER_THAN_RUNC_1_1) {
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let out = run_script("uname -m", |c| {
        c["linux"]["personality"] = json!({ "domain": "LINUX32" })
    });
    assert_eq!(out.trim(), "i686");
}

/// config.md "process.scheduler": policy and nice as sched_setattr(2) sets them,
/// read back from /proc/self/stat (field 19 nice, field 41 policy; 3 = SCHED_BATCH).
#[test]
fn scheduler_policy_and_nice_are_applied_berth_only() {
    if !berth_only(NEWER_THAN_RUNC_1_1) {
        return;
    }
    let out = run_script("cut -d' ' -f19,41 /proc/self/stat", |c| {
        c["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 5 });
    });
    assert_eq!(out.trim(), "5 3");
}

/// config.md "process.ioPriority", read back with ionice.
#[test]
fn io_priority_is_applied_berth_only() {
    if !berth_only(NEWER_THAN_RUNC_1_1) {
        return;
    }
    let out = run_script("ionice -p $$", |c| {
        c["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
    });
    assert_eq!(out.trim(), "best-effort: prio 6");
}

/// config-linux.md "Time offsets": a new time namespace with a boottime offset
/// shifts the uptime seen inside (and only inside).
#[test]
fn time_namespace_offsets_shift_the_boot_clock_berth_only() {
    if !berth_only(NEWER_THAN_RUNC_1_1) {
        return;
    }
    let out = run_script("cut -d' ' -f1 /proc/uptime", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "time" }));
        c["linux"]["timeOffsets"] = json!({ "boottime": { "secs": 1000000, "nanosecs": 0 } });
    });
    let inside: f64 = out.trim().parse().unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= 1_000_000.0 && inside > host + 900_000.0,
        "inside {inside}, host {host}"
    );
}

/// The ucount limits (`user.*` sysctls, such as user.max_user_namespaces)
/// are each user namespace's own: with one of the container's they are set
/// there and the host's stay as they were (runc 1.4 allows them); without
/// one they would be the host's, and are refused, leaving nothing behind.
#[test]
fn user_sysctls_are_set_only_in_the_containers_own_user_namespace() {
    const KEY: &str = "/proc/sys/user/max_user_namespaces";
    let host_before = std::fs::read_to_string(KEY).unwrap();
    let mut bundle = Bundle::busybox(&["cat", KEY]);
    bundle.edit(|c| c["linux"]["sysctl"] = json!({ "user.max_user_namespaces": "7" }));
    let runtime = Runtime::new();
    let id = runtime.new_id();
    let err = runtime.run(&id, &bundle, &[]).fails();
    if berth_only("the error names the key and the missing user namespace") {
        assert!(
            err.contains("user.max_user_namespaces") && err.contains("user namespace"),
            "{err}"
        );
    }
    runtime.assert_nothing_left(&id, &bundle);

    if !berth_only("runc 1.1.5 predates user.* sysctls (runc 1.4 allows them)") {
        return;
    }
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        let map = json!([{ "containerID": 0, "hostID": 1_400_000, "size": 65536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    let out = runtime.run_to_completion(&bundle);
    assert_eq!(out.trim(), "7");
    assert_eq!(
        std::fs::read_to_string(KEY).unwrap(),
        host_before,
        "the container's limit leaked to the host"
    );
}

/// A network namespace made for the container has its loopback device up
/// (runc and crun set it up; programs, and engines running a container
/// with `--network none`, expect 127.0.0.1 to answer). One joined by path
/// is left as it is.
#[test]
fn a_new_network_namespace_has_loopback_up() {
    let out = run_script(
        "cat /sys/class/net/lo/flags; nc -l -p 5000 </dev/null >/dev/null & sleep 0.3; \
         echo hi | nc -w 2 127.0.0.1 5000 && echo reachable; kill $! 2>/dev/null; exit 0",
        |_| {},
    );
    let flags = out.lines().next().unwrap_or_default().trim();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("no flags for lo: {out}"));
    assert_ne!(flags & 1, 0, "lo is down in the container: {out}");
    assert!(
        out.contains("reachable"),
        "127.0.0.1 does not answer: {out}"
    );
}
