//! config-linux.md "Memory policy" (runtime-spec 1.3): `linux.memoryPolicy`
//! is the NUMA policy of the container's processes, its init's and those
//! `exec` starts (as runc 1.4 does). The policy shows in the second field
//! of /proc/self/numa_maps ("bind:0", "interleave=static:0", "default").
//! What the host cannot apply is refused at create, by name, leaving
//! nothing. runc 1.1.5 predates the field and ignores it: every check is
//! Berth's only.

use berth_conformance::{berth_only, skip, Bundle, Runtime};
use serde_json::{json, Value};

const NO_MEMORY_POLICY: &str = "runc 1.1.5 predates linux.memoryPolicy (runtime-spec 1.3)";

/// The policy of the first mapping of the process that runs the script.
const POLICY: &str = "head -n 1 /proc/self/numa_maps | cut -d ' ' -f 2";

fn bundle_with(policy: Value, args: &[&str]) -> Bundle {
    let mut bundle = Bundle::busybox(args);
    bundle.config_mut()["linux"]["memoryPolicy"] = policy;
    bundle
}

fn numa_maps_available() -> bool {
    if std::path::Path::new("/proc/self/numa_maps").exists() {
        return true;
    }
    skip("this kernel has no /proc/<pid>/numa_maps (CONFIG_NUMA off)");
    false
}

#[test]
fn the_policy_applies_to_the_container_and_its_exec_processes() {
    if !berth_only(NO_MEMORY_POLICY) || !numa_maps_available() {
        return;
    }
    let rt = Runtime::new();
    // The baseline: without the field, the default policy.
    let plain = Bundle::busybox(&["sh", "-c", POLICY]);
    assert_eq!(rt.run_to_completion(&plain), "default\n");

    let cases = [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "interleave=static:0",
        ),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
    ];
    for (policy, shown) in cases {
        let bundle = bundle_with(policy.clone(), &["sh", "-c", POLICY]);
        assert_eq!(
            rt.run_to_completion(&bundle),
            format!("{shown}\n"),
            "{policy}"
        );
    }

    let bundle = bundle_with(
        json!({"mode": "MPOL_BIND", "nodes": "0"}),
        &["sleep", "1000"],
    );
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let exec = rt.cmd(&["exec", &id, "sh", "-c", POLICY]);
    exec.ok();
    assert_eq!(exec.stdout, "bind:0\n", "the exec'd process's policy");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_policy_the_host_cannot_apply_is_refused_by_name_and_leaves_nothing() {
    if !berth_only(NO_MEMORY_POLICY) || !numa_maps_available() {
        return;
    }
    if std::path::Path::new("/sys/devices/system/node/node63").exists() {
        skip("this host has a NUMA node 63");
        return;
    }
    let rt = Runtime::new();
    let refused = |policy: Value, needle: &str| {
        let bundle = bundle_with(policy.clone(), &["true"]);
        let id = rt.new_id();
        let err = rt.create(&id, &bundle, &[]).fails();
        assert!(
            err.contains("linux.memoryPolicy") && err.contains(needle),
            "{policy}: {err}"
        );
        rt.assert_nothing_left(&id, &bundle);
    };
    refused(
        json!({"mode": "MPOL_BIND", "nodes": "63"}),
        "cannot be applied on this host",
    );
    refused(json!({"mode": "MPOL_FOO", "nodes": "0"}), "MPOL_FOO");
    refused(json!({"mode": "MPOL_BIND"}), "needs at least one node");
    refused(
        json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
        "takes no nodes",
    );
    refused(json!({"mode": "MPOL_BIND", "nodes": "0-x"}), "0-x");
    refused(
        json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
        "MPOL_F_RELATIVE_NODES",
    );
    refused(
        json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_BOGUS"]}),
        "MPOL_F_BOGUS",
    );
}
