//! config-linux.md "Control groups": linux.resources limits (memory, cpu, pids, blockIO),
//! read back from inside a real container through its own cgroup at /sys/fs/cgroup, and
//! enforced: a memory limit OOM-kills, a pids limit stops forks, an impossible cpuset
//! fails `create` and leaves nothing behind.
//!
//! The container sees its own cgroup directories (runc's layout for the `cgroup` mount):
//! `/sys/fs/cgroup/<controller>/` on a v1 or hybrid host, `/sys/fs/cgroup/` on a unified
//! one, where the v2 files and runc's conversions apply.

use std::path::Path;

use berth_conformance::{berth_only, skip, unique_name, Bundle, Runtime};
use serde_json::{json, Value};

/// Whether the host has one cgroup v2 hierarchy at /sys/fs/cgroup (no v1 controllers).
fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Where the container sees `file` of `v1_controller` (v1/hybrid), or `v2_file` (unified).
fn cgroup_file(v1_controller: &str, v1_file: &str, v2_file: &str) -> String {
    if unified_host() {
        format!("/sys/fs/cgroup/{v2_file}")
    } else {
        format!("/sys/fs/cgroup/{v1_controller}/{v1_file}")
    }
}

/// Runs `cat <files>` in a container with `resources` and returns one trimmed line each.
fn read_in_container(resources: Value, files: &[&str]) -> Vec<String> {
    let mut args = vec!["cat"];
    args.extend_from_slice(files);
    let mut bundle = Bundle::busybox(&args);
    bundle.edit(|c| merge_resources(c, resources));
    let out = Runtime::new().run_to_completion(&bundle);
    out.lines().map(|l| l.trim().to_owned()).collect()
}

/// Adds `resources` to the config's linux.resources, keeping runc's default device rules.
fn merge_resources(config: &mut Value, resources: Value) {
    let target = config["linux"]["resources"]
        .as_object_mut()
        .expect("linux.resources is an object");
    for (key, value) in resources.as_object().expect("resources is an object") {
        target.insert(key.clone(), value.clone());
    }
}

#[test]
fn memory_limit_is_set() {
    let file = cgroup_file("memory", "memory.limit_in_bytes", "memory.max");
    let got = read_in_container(json!({ "memory": { "limit": 33554432 } }), &[&file]);
    assert_eq!(got, ["33554432"]);
}

#[test]
fn memory_reservation_is_set() {
    let file = cgroup_file("memory", "memory.soft_limit_in_bytes", "memory.low");
    let got = read_in_container(json!({ "memory": { "reservation": 16777216 } }), &[&file]);
    assert_eq!(got, ["16777216"]);
}

#[test]
fn cpu_shares_are_set() {
    let file = cgroup_file("cpu", "cpu.shares", "cpu.weight");
    let got = read_in_container(json!({ "cpu": { "shares": 512 } }), &[&file]);
    // cgroup v2: runc's conversion, 1 + ((512 - 2) * 9999) / 262142.
    let expected = if unified_host() { "20" } else { "512" };
    assert_eq!(got, [expected]);
}

#[test]
fn cpu_quota_and_period_are_set() {
    let resources = json!({ "cpu": { "quota": 50000, "period": 100000 } });
    if unified_host() {
        let got = read_in_container(resources, &["/sys/fs/cgroup/cpu.max"]);
        assert_eq!(got, ["50000 100000"]);
        return;
    }
    let got = read_in_container(
        resources,
        &[
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        ],
    );
    assert_eq!(got, ["50000", "100000"]);
}

#[test]
fn cpuset_cpus_are_set() {
    let file = cgroup_file("cpuset", "cpuset.cpus", "cpuset.cpus");
    let got = read_in_container(json!({ "cpu": { "cpus": "0" } }), &[&file]);
    assert_eq!(got, ["0"]);
}

#[test]
fn pids_limit_is_set() {
    let file = cgroup_file("pids", "pids.max", "pids.max");
    let got = read_in_container(json!({ "pids": { "limit": 10 } }), &[&file]);
    assert_eq!(got, ["10"]);
}

/// config-linux.md "PIDs" (spec 1.3): 0 is a real limit, not "no limit"
/// (runc < 1.4 wrote "max"); a `pids` without `limit` (optional since 1.3)
/// sets nothing, so the file keeps the kernel's "max".
#[test]
fn pids_limit_zero_is_a_limit_and_no_limit_sets_nothing() {
    if !berth_only("runc 1.1.5 reads pids.limit 0 as no limit (spec < 1.3)") {
        return;
    }
    let file = cgroup_file("pids", "pids.max", "pids.max");
    // `cat` runs in the init's own process: exec needs no fork.
    let got = read_in_container(json!({ "pids": { "limit": 0 } }), &[&file]);
    assert_eq!(got, ["0"]);
    let got = read_in_container(json!({ "pids": {} }), &[&file]);
    assert_eq!(got, ["max"]);
}

/// The weight file this host's kernel offers a new cgroup: blkio.weight (CFQ, gone since
/// 5.0) or blkio.bfq.weight (BFQ); io.bfq.weight or io.weight on a unified host. The root
/// cgroup lacks some of them, so a probe cgroup is made and removed.
fn block_weight_file() -> Option<String> {
    let (dir, candidates) = if unified_host() {
        (Path::new("/sys/fs/cgroup"), ["io.bfq.weight", "io.weight"])
    } else {
        (
            Path::new("/sys/fs/cgroup/blkio"),
            ["blkio.weight", "blkio.bfq.weight"],
        )
    };
    if !dir.is_dir() {
        return None;
    }
    let probe = dir.join(format!("berth-weight-probe-{}", unique_name()));
    std::fs::create_dir(&probe).ok()?;
    let found = candidates
        .iter()
        .find(|f| probe.join(f).exists())
        .map(|f| f.to_string());
    let _ = std::fs::remove_dir(&probe);
    found
}

#[test]
fn block_io_weight_is_set() {
    let Some(file) = block_weight_file() else {
        skip("this kernel offers no block I/O weight file (no CFQ or BFQ, or no blkio controller)");
        return;
    };
    let path = cgroup_file("blkio", &file, &file);
    let got = read_in_container(json!({ "blockIO": { "weight": 500 } }), &[&path]);
    // BFQ takes the weight as is; io.weight gets runc's conversion, 1 + (500-10)*9999/990.
    let expected = if file == "io.weight" { "4950" } else { "500" };
    // v2 weight files print the default weight as "default N".
    let got = got.join(" ");
    assert!(
        got == expected || got == format!("default {expected}"),
        "{path}: expected {expected:?}, got {got:?}"
    );
}

/// A process that touches more memory than the limit is killed by the kernel's OOM
/// killer. busybox `dd` allocates its block as one buffer and fills it from /dev/zero.
#[test]
fn memory_limit_oom_kills_a_process_that_allocates_past_it() {
    let oom_control = cgroup_file("memory", "memory.oom_control", "memory.events");
    let script = format!(
        "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && echo survived; \
         status=$?; grep '^oom_kill ' {oom_control}; exit $status"
    );
    let mut bundle = Bundle::busybox(&["sh", "-c", &script]);
    bundle.edit(|c| merge_resources(c, json!({ "memory": { "limit": 33554432 } })));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(
        !out.stdout.contains("survived"),
        "64 MiB fit under a 32 MiB limit: {}",
        out.describe()
    );
    assert_ne!(out.code, 0, "{}", out.describe());
    let kills: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no oom_kill count in {}", out.describe()));
    assert!(kills >= 1, "no OOM kill recorded: {}", out.describe());
    rt.assert_nothing_left(&id, &bundle);
}

/// With pids.limit 10 the shell cannot start 30 background sleeps: a fork fails (EAGAIN),
/// and busybox sh gives up with "can't fork".
#[test]
fn pids_limit_stops_a_fork_loop() {
    let script = "for i in $(seq 30); do sleep 5 & done; echo all-forked";
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(|c| merge_resources(c, json!({ "pids": { "limit": 10 } })));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(
        !out.stdout.contains("all-forked"),
        "30 processes started under pids.limit 10: {}",
        out.describe()
    );
    assert!(
        out.combined().contains("can't fork"),
        "expected busybox's \"can't fork\": {}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// A cpu index past every cpu this host can have: at least 7, as on small test machines.
fn impossible_cpu() -> u32 {
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    let highest = possible
        .trim()
        .split([',', '-'])
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    (highest + 1).max(7)
}

/// The kernel refuses the write (ERANGE or EINVAL); `create` must fail, say which field,
/// and take back the cgroups and state it made.
#[test]
fn impossible_cpuset_fails_create_and_leaves_nothing() {
    let cpus = impossible_cpu().to_string();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| merge_resources(c, json!({ "cpu": { "cpus": cpus } })));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle, &[]);
    out.fails_with("cpus");
    if berth_only("runc names the file, not the config field") {
        out.fails_with("linux.resources.cpu.cpus");
    }
    rt.assert_nothing_left(&id, &bundle);
}

/// A hybrid host's `unified` keys go to the container's directory in the cgroup2
/// hierarchy (runc 1.1 refuses them on any host with v1 controllers).
#[test]
fn unified_keys_go_to_the_cgroup2_directory() {
    let dir = if unified_host() {
        "/sys/fs/cgroup"
    } else if Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        skip("no cgroup2 hierarchy on this host");
        return;
    };
    if !berth_only("runc 1.1 refuses linux.resources.unified unless the host is unified") {
        return;
    }
    let file = format!("{dir}/cgroup.max.descendants");
    let got = read_in_container(
        json!({ "unified": { "cgroup.max.descendants": "3" } }),
        &[&file],
    );
    assert_eq!(got, ["3"]);
}

/// A key naming a file the cgroup does not have fails `create`, naming the key.
#[test]
fn unified_key_without_its_file_fails_create() {
    if !berth_only("runc 1.1 refuses linux.resources.unified unless the host is unified") {
        return;
    }
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        merge_resources(c, json!({ "unified": { "berth.no_such_file": "1" } }));
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    // Not the quotes around the key: runc's log format escapes them.
    rt.create(&id, &bundle, &[])
        .fails_with("linux.resources.unified[")
        .fails_with("berth.no_such_file");
    rt.assert_nothing_left(&id, &bundle);
}
