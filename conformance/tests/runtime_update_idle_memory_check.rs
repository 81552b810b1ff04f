//! Two `update` settings of runtime-spec 1.2 that runc 1.2 has: `--cpu-idle`
//! (`linux.resources.cpu.idle`, the cgroup's SCHED_IDLE switch, `cpu.idle` on
//! v2 and on a v1 cpu hierarchy of kernel 5.15 or later) and
//! `linux.resources.memory.checkBeforeUpdate` (an update that would put the
//! memory limit at or below current use is refused, with runc's words, and the
//! limit stays). runc 1.1.5, the one here, has neither: these checks are Berth's.

use std::fs;
use std::path::{Path, PathBuf};

use berth_conformance::{berth_only, skip, Bundle, HostDir, Runtime};
use serde_json::{json, Value};

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

/// A running sleeper with `memory` as linux.resources.memory (if any).
fn running(rt: &Runtime, memory: Option<Value>) -> (Bundle, String, i64) {
    let mut bundle = Bundle::sleeper();
    if let Some(memory) = memory {
        bundle.edit(|c| c["linux"]["resources"]["memory"] = memory);
    }
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    (bundle, id, pid)
}

#[test]
fn update_cpu_idle_sets_the_cgroups_idle_switch() {
    if !berth_only("runc 1.1.5 has no update --cpu-idle") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, None);
    let idle = host_cgroup_file(pid, "cpu", "cpu.idle", "cpu.idle");
    if !idle.exists() {
        skip("no cpu.idle here (kernel before 5.15)");
        rt.cmd(&["delete", "--force", &id]).ok();
        return;
    }
    assert_eq!(read_trimmed(&idle), "0");
    rt.cmd(&["update", "--cpu-idle", "1", &id]).ok();
    assert_eq!(read_trimmed(&idle), "1");
    rt.cmd(&["update", "--cpu-idle", "0", &id]).ok();
    assert_eq!(read_trimmed(&idle), "0");
    // runc's parse error, and the kernel's refusal of anything but 0 and 1.
    rt.cmd(&["update", "--cpu-idle", "yes", &id])
        .fails_with("invalid value for cpu-idle");
    rt.cmd(&["update", "--cpu-idle", "2", &id])
        .fails_with("cpu.idle");
    assert_eq!(read_trimmed(&idle), "0");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// The memory file the limit is in, and what the container uses now.
fn memory_files(pid: i64) -> (PathBuf, PathBuf) {
    (
        host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max"),
        host_cgroup_file(pid, "memory", "memory.usage_in_bytes", "memory.current"),
    )
}

#[test]
fn check_before_update_refuses_a_limit_below_usage_and_keeps_the_old_one() {
    if !berth_only("runc 1.1.5 has no checkBeforeUpdate (runc 1.2 checks on cgroup v2 only)") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, pid) = running(&rt, Some(json!({ "limit": 256 << 20 })));
    let (limit_file, usage_file) = memory_files(pid);
    let usage: u64 = read_trimmed(&usage_file).parse().unwrap();
    assert!(usage > 4096, "the sleeper uses {usage} bytes");
    let dir = HostDir::new();
    let doc = dir.join("resources.json");
    fs::write(
        &doc,
        r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#,
    )
    .unwrap();
    let out = rt.cmd(&["update", "-r", doc.to_str().unwrap(), &id]);
    let err = out.fails();
    assert!(
        err.contains("rejecting memory limit 4096 <= usage "),
        "{}",
        out.describe()
    );
    assert_eq!(read_trimmed(&limit_file), (256 << 20).to_string());
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "the update OOM-killed it"
    );
    // Above usage it goes through.
    fs::write(
        &doc,
        r#"{"memory":{"limit":134217728,"checkBeforeUpdate":true}}"#,
    )
    .unwrap();
    rt.cmd(&["update", "-r", doc.to_str().unwrap(), &id]).ok();
    assert_eq!(read_trimmed(&limit_file), (128 << 20).to_string());
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}

/// Set in the config at create, the check holds for a later `update --memory`.
#[test]
fn check_before_update_in_the_config_holds_for_later_updates() {
    if !berth_only("runc 1.1.5 has no checkBeforeUpdate (runc 1.2 checks on cgroup v2 only)") {
        return;
    }
    let rt = Runtime::new();
    let (bundle, id, pid) = running(
        &rt,
        Some(json!({ "limit": 256 << 20, "checkBeforeUpdate": true })),
    );
    let (limit_file, _) = memory_files(pid);
    rt.cmd(&["update", "--memory", "4096", &id])
        .fails_with("rejecting memory limit 4096 <= usage ");
    assert_eq!(read_trimmed(&limit_file), (256 << 20).to_string());
    assert_eq!(rt.state(&id)["status"], "running");
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
}
