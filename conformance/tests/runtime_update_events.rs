//! runc's `update` and `events` (beyond the OCI lifecycle, used by containerd
//! and Docker): `update` changes the cgroup limits of a live container,
//! `events --stats` reports its usage once in runc's JSON, and plain `events`
//! streams stats plus an `oom` event whenever the memory cgroup runs out.
//! config-linux.md "Control groups" names the limits; runtime.md has no
//! operation for either, so runc's behaviour is the contract.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use berth_conformance::{
    berth_only, is_berth, runtime, skip, wait_until, Bundle, HostDir, Runtime, RUNC, SLEEPER,
};
use serde_json::{json, Value};

/// A hung runtime fails the test rather than the whole run.
const DEADLINE: Duration = Duration::from_secs(30);

fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The host path of `file` in the cgroup of `pid` that holds `v1_controller`
/// (a unified host has one directory for all).
fn host_cgroup_file(pid: i64, v1_controller: &str, v1_file: &str, v2_file: &str) -> PathBuf {
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = path.trim_start_matches('/');
        if unified_host() && controllers.is_empty() {
            return Path::new("/sys/fs/cgroup").join(path).join(v2_file);
        }
        if controllers.split(',').any(|c| c == v1_controller) {
            return Path::new("/sys/fs/cgroup")
                .join(v1_controller)
                .join(path)
                .join(v1_file);
        }
    }
    panic!("pid {pid} has no {v1_controller} cgroup: {own}");
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// A running sleeper with `resources` added to linux.resources.
fn running(rt: &Runtime, resources: Value) -> (Bundle, String, i64) {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        let target = c["linux"]["resources"].as_object_mut().unwrap();
        for (key, value) in resources.as_object().unwrap() {
            target.insert(key.clone(), value.clone());
        }
    });
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    (bundle, id, pid)
}

fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.cmd(&["events", "--stats", id]);
    serde_json::from_str(out.ok().stdout.trim())
        .unwrap_or_else(|e| panic!("events --stats is not JSON ({e}): {}", out.describe()))
}

#[test]
fn update_changes_a_live_memory_limit() {
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, json!({ "memory": { "limit": 67108864 } }));
    let file = host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trimmed(&file), "67108864");

    rt.cmd(&["update", "--memory", "32M", &id]).ok();
    assert_eq!(read_trimmed(&file), "33554432", "seen from the host");
    let inside = if unified_host() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let out = rt.cmd(&["exec", &id, "cat", inside]);
    assert_eq!(out.ok().stdout.trim(), "33554432", "seen from inside");
    assert_eq!(
        stats(&rt, &id)["data"]["memory"]["usage"]["limit"],
        33554432
    );

    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn update_sets_cpu_and_pids_flags() {
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, json!({}));
    rt.cmd(&[
        "update",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        &id,
    ])
    .ok();
    assert_eq!(
        read_trimmed(&host_cgroup_file(pid, "pids", "pids.max", "pids.max")),
        "20"
    );
    if unified_host() {
        assert_eq!(
            read_trimmed(&host_cgroup_file(pid, "cpu", "", "cpu.max")),
            "20000 100000"
        );
    } else {
        assert_eq!(
            read_trimmed(&host_cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "")),
            "20000"
        );
        assert_eq!(
            read_trimmed(&host_cgroup_file(pid, "cpu", "cpu.cfs_period_us", "")),
            "100000"
        );
    }
    // A pids limit of 0 (the flag's default) leaves the limit alone, as in runc.
    rt.cmd(&["update", "--memory-reservation", "1M", &id]).ok();
    assert_eq!(
        read_trimmed(&host_cgroup_file(pid, "pids", "pids.max", "pids.max")),
        "20"
    );
    rt.cmd(&["update", "--cpu-share", "x", &id])
        .fails_with("invalid value for cpu-share");
    rt.cmd(&["update", "--memory", "lots", &id])
        .fails_with("invalid value for memory");
    if berth_only("config-linux.md: blockIO.weight is a uint16; runc 1.1 wraps a larger flag value into another weight") {
        rt.cmd(&["update", "--blkio-weight", "70000", &id]).fails_with("invalid value for blkio-weight");
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn update_reads_resources_from_stdin() {
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, json!({}));
    let dir = HostDir::new();
    let doc = dir.join("resources.json");
    fs::write(&doc, r#"{"pids":{"limit":7},"memory":{"limit":50331648}}"#).unwrap();
    // Flags are ignored next to --resources.
    rt.cmd_in_shell(
        &format!("<{}", doc.display()),
        &["update", "--resources", "-", "--pids-limit", "9", &id],
    )
    .ok();
    assert_eq!(
        read_trimmed(&host_cgroup_file(pid, "pids", "pids.max", "pids.max")),
        "7"
    );
    assert_eq!(
        read_trimmed(&host_cgroup_file(
            pid,
            "memory",
            "memory.limit_in_bytes",
            "memory.max"
        )),
        "50331648"
    );

    fs::write(&doc, r#"{"pids":{"limit":8}}"#).unwrap();
    rt.cmd(&["update", "-r", doc.to_str().unwrap(), &id]).ok();
    assert_eq!(
        read_trimmed(&host_cgroup_file(pid, "pids", "pids.max", "pids.max")),
        "8"
    );
    assert_eq!(stats(&rt, &id)["data"]["pids"]["limit"], 8);

    rt.cmd(&[
        "update",
        "-r",
        dir.join("absent.json").to_str().unwrap(),
        &id,
    ])
    .fails_with("no such file or directory");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn update_with_a_value_the_host_refuses_fails() {
    let rt = Runtime::new();
    let (bundle, id, _) = running(&rt, json!({}));
    // No host has 4096 cpus online; the error must say which file refused it.
    rt.cmd(&["update", "--cpuset-cpus", "4095", &id])
        .fails_with("cpuset.cpus");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn update_and_events_of_a_stopped_container_fail() {
    let bundle = Bundle::busybox(&["true"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.wait_status(&id, "stopped");
    rt.cmd(&["update", "--memory", "32M", &id])
        .fails_with("container not running");
    rt.cmd(&["events", "--stats", &id])
        .fails_with(&format!("container with id {id} is not running"));
    rt.cmd(&["events", &id]).fails_with("is not running");
    rt.cmd(&["update", "--memory", "32M", "no-such-container"])
        .fails_with("container does not exist");
    rt.cmd(&["events", "--interval", "0s", &id])
        .fails_with("duration interval must be greater than 0");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn intel_rdt_schemas_are_refused() {
    let rt = Runtime::new();
    let (bundle, id, _) = running(&rt, json!({}));
    if Path::new("/sys/fs/resctrl/schemata").exists() {
        skip("this host has Intel RDT: runc would apply the schema");
    } else {
        rt.cmd(&["update", "--l3-cache-schema", "L3:0=f", &id])
            .fails_with("Intel RDT/CAT: l3 cache schema is not enabled");
        rt.cmd(&["update", "--mem-bw-schema", "MB:0=50", &id])
            .fails_with("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// Every key path of a JSON object, skipping the contents of `raw`
/// (memory.stat's lines, which vary by kernel) and of arrays.
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, inner) in object {
        let path = format!("{prefix}/{key}");
        out.insert(path.clone());
        if key != "raw" {
            key_paths(inner, &path, out);
        }
    }
}

/// Keys that appear only when their value is non-zero (Go's omitempty), so
/// two containers may differ in them by what they happened to do.
fn structural(paths: BTreeSet<String>) -> BTreeSet<String> {
    let data_dependent = [
        "/data/blkio/",
        "/data/memory/cache",
        "/data/cpu/throttling/",
        "/data/pids/limit",
        "/usage/usage",
        "/usage/max",
        "/swap/usage",
        "/swap/max",
        "/kernel/usage",
        "/kernel/max",
        "/kernelTCP/usage",
        "/kernelTCP/max",
    ];
    paths
        .into_iter()
        .filter(|p| !data_dependent.iter().any(|d| p.contains(d)))
        .collect()
}

#[test]
fn events_stats_has_runc_shape_and_counts_pids() {
    let mut bundle = Bundle::busybox(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    bundle.edit(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 67108864 }));
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let ps = || -> Vec<i64> {
        serde_json::from_str(rt.cmd(&["ps", "--format", "json", &id]).ok().stdout.trim()).unwrap()
    };
    assert!(
        wait_until(DEADLINE, || ps().len() == 3),
        "the shell and its two sleeps never ran: {:?}",
        ps()
    );

    let ours = stats(&rt, &id);
    assert_eq!(ours["type"], "stats");
    assert_eq!(ours["id"], id.as_str());
    assert_eq!(ours["data"]["pids"]["current"], 3, "{ours}");
    assert_eq!(ours["data"]["memory"]["usage"]["limit"], 67108864);
    let top: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["type", "id", "data"]);
    let data: Vec<&str> = ours["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        data,
        [
            "cpu",
            "cpuset",
            "memory",
            "pids",
            "blkio",
            "hugetlb",
            "intel_rdt",
            "network_interfaces"
        ]
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);

    if !is_berth() {
        return;
    }
    if !Path::new(RUNC).exists() {
        skip("runc is not installed: nothing to compare `events --stats` with");
        return;
    }
    let theirs = runc_stats(&bundle);
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    key_paths(&ours, "", &mut a);
    key_paths(&theirs, "", &mut b);
    assert_eq!(
        structural(a),
        structural(b),
        "berth:\n{ours}\nrunc:\n{theirs}"
    );
}

/// runc's `events --stats` for `bundle` (its config is already written), in a root of its own.
fn runc_stats(bundle: &Bundle) -> Value {
    struct Cleanup<'a>(&'a Path, &'a str);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = Command::new(RUNC)
                .arg("--root")
                .arg(self.0)
                .args(["delete", "--force", self.1])
                .status();
        }
    }
    let root = HostDir::new();
    let id = format!("runc-{}", std::process::id());
    let _cleanup = Cleanup(root.path(), &id);
    // The container inherits runc's stdio: a pipe would stay open as long as it runs.
    let run = Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args([
            "run",
            "-d",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(run.success(), "runc run -d failed");
    let out = Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args(["events", "--stats", &id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `<runtime> events --interval 1s ID`, its stdout lines sent over a channel.
fn stream_events(rt: &Runtime, id: &str) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(runtime())
        .arg("--root")
        .arg(rt.root())
        .args(["events", "--interval", "1s", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    (child, receive)
}

/// The next event of the stream that has `kind`; panics after `DEADLINE`.
fn next_event(events: &mpsc::Receiver<String>, kind: &str) -> Value {
    loop {
        let line = events
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no {kind} event ({e})"));
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if event["type"] == kind {
            return event;
        }
    }
}

#[test]
fn events_streams_stats_and_reports_an_oom() {
    let mut bundle = Bundle::busybox(&["sh", "-c", "while [ ! -e /shared/go ]; do sleep 0.1; done; dd if=/dev/zero of=/dev/null bs=64M count=1; exec sleep 1000"]);
    let shared = bundle.share_dir("/shared");
    // No swap allowance either, so the 64M buffer cannot be paged out.
    let memory = if unified_host() {
        json!({ "limit": 16777216, "swap": 16777216 })
    } else {
        json!({ "limit": 16777216 })
    };
    bundle.edit(|c| c["linux"]["resources"]["memory"] = memory);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);

    let (mut child, events) = stream_events(&rt, &id);
    // The first stats mean the stream is watching: only then may the OOM happen.
    let first = next_event(&events, "stats");
    assert_eq!(first["id"], id.as_str());
    assert!(
        first["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        "{first}"
    );
    fs::write(shared.join("go"), "").unwrap();
    let oom = next_event(&events, "oom");
    assert_eq!(oom, json!({ "type": "oom", "id": id }));

    if berth_only(
        "runc 1.1 streams until the container's cgroup is removed by delete, not when it stops",
    ) {
        rt.kill(&id, Some("KILL")).ok();
        rt.wait_status(&id, "stopped");
        assert!(
            wait_until(DEADLINE, || child.try_wait().ok().flatten().is_some()),
            "events went on after the container stopped"
        );
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    // The stream ends with the container.
    let ended = wait_until(DEADLINE, || child.try_wait().ok().flatten().is_some());
    if !ended {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(ended, "events went on after the container was deleted");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn events_refuses_a_non_positive_interval() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(SLEEPER);
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.cmd(&["events", "--interval", "-1s", &id])
        .fails_with("duration interval must be greater than 0");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}
