//! The same cgroup work on the layouts this host is not: pure cgroup v1 and
//! pure (unified) cgroup v2. Each test's runtime runs in a mount namespace
//! of its own where /sys/fs/cgroup is rearranged (see `CgroupLayout`), so
//! every layout is exercised on every machine.
//!
//! On a hybrid host every controller but those no v1 hierarchy holds (here
//! hugetlb) is bound to v1, so the v2 layout has few controllers: its tests
//! use hugetlb for limits, and the device program and cgroup.freeze, which
//! need no controller.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_conformance::{
    berth_only, cgroups_named, host_cgroup2_mount, skip, unique_name, Bundle, CgroupLayout, Runtime,
};
use serde_json::{json, Value};

/// The v2 layout, with where the host sees its hierarchy, if the host can
/// show it with the hugetlb controller free for limits.
fn v2_layout() -> Option<(Runtime, PathBuf)> {
    let host = host_cgroup2_mount()?;
    let root_controllers = fs::read_to_string(host.join("cgroup.controllers")).unwrap_or_default();
    if !root_controllers.split_whitespace().any(|c| c == "hugetlb") {
        skip("the host's cgroup2 hierarchy has no hugetlb controller free of v1");
        return None;
    }
    Some((Runtime::in_layout(CgroupLayout::V2)?, host))
}

fn v1_layout() -> Option<Runtime> {
    let rt = Runtime::in_layout(CgroupLayout::V1);
    if rt.is_none() {
        skip("the host has no cgroup v1 hierarchy");
    }
    rt
}

fn mknod(bundle: &Bundle, path: &str, kind: &str, major: u32, minor: u32) {
    let node = bundle.rootfs().join(path.trim_start_matches('/'));
    let status = Command::new("mknod")
        .arg(&node)
        .args([kind, &major.to_string(), &minor.to_string()])
        .status()
        .expect("run mknod");
    assert!(status.success(), "mknod {}", node.display());
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The one directory named `id` under `hierarchy` on the host.
fn host_dir(hierarchy: &Path, id: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = cgroups_named(id)
        .into_iter()
        .filter(|d| d.starts_with(hierarchy))
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "{id} under {}: {dirs:?}",
        hierarchy.display()
    );
    dirs.into_iter().next().unwrap()
}

fn exec_sh(rt: &Runtime, id: &str, script: &str) -> String {
    let out = rt.cmd(&["exec", id, "sh", "-c", script]);
    out.ok();
    out.stdout
}

#[test]
fn v2_layout_sets_limits_in_a_nested_path_enforces_device_rules_and_freezes() {
    let Some((rt, host_unified)) = v2_layout() else {
        return;
    };
    let id = rt.new_id();
    // A parent the runtime makes itself: it must hand hugetlb down to the
    // container through the parent's cgroup.subtree_control.
    let parent = format!("layout-{}", unique_name());
    let mut bundle = Bundle::sleeper();
    mknod(&bundle, "/tmp/fuse", "c", 10, 229);
    mknod(&bundle, "/tmp/loop-control", "c", 10, 237);
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}"));
        // As engines set up v2 containers: /sys/fs/cgroup inside is then the
        // container's own cgroup under every runtime (without one, runc
        // mounts the whole hierarchy there).
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "cgroup" }));
        let resources = &mut c["linux"]["resources"];
        resources["hugepageLimits"] = json!([{ "pageSize": "2MB", "limit": 4194304 }]);
        resources["devices"]
            .as_array_mut()
            .expect("runc's default device rules")
            .push(json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "r" }));
    });
    rt.create_and_start(&id, &bundle);

    let dir = host_dir(&host_unified, &id);
    assert_eq!(dir, host_unified.join(&parent).join(&id));
    assert!(
        cgroups_named(&id)
            .iter()
            .all(|d| d.starts_with(&host_unified)),
        "a v1 hierarchy got a directory"
    );
    let init = rt.state(&id)["pid"].as_i64().expect("state has a pid");
    let procs = read(&dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|p| p == init.to_string()),
        "the init {init} is not in {}: {procs}",
        dir.display()
    );
    assert_eq!(read(&dir.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(
        exec_sh(&rt, &id, "cat /sys/fs/cgroup/hugetlb.2MB.max").trim(),
        "4194304"
    );

    // The rules: /dev/fuse for reading only, loop-control not at all, /dev/null as runc allows it.
    let opened = exec_sh(
        &rt,
        &id,
        "(: </tmp/fuse) 2>/dev/null && echo fuse-read;\
         (: >/tmp/fuse) 2>/dev/null || echo fuse-write-denied;\
         (: </tmp/loop-control) 2>/dev/null || echo loop-control-denied;\
         echo x >/dev/null && echo null-written",
    );
    assert_eq!(
        opened.lines().collect::<Vec<_>>(),
        [
            "fuse-read",
            "fuse-write-denied",
            "loop-control-denied",
            "null-written"
        ]
    );

    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "running");
    assert_eq!(read(&dir.join("cgroup.freeze")), "0");

    let stats = rt.cmd(&["events", "--stats", &id]);
    stats.ok();
    let stats: Value = serde_json::from_str(&stats.stdout).expect("events --stats prints JSON");
    assert_eq!(stats["type"], "stats");
    assert!(
        stats["data"]["hugetlb"]["2MB"].is_object(),
        "no 2MB hugetlb stats: {stats}"
    );

    rt.kill_and_delete(&id, &bundle);
    let left = cgroups_named(&parent);
    for dir in &left {
        let _ = fs::remove_dir(dir);
    }
    // runtime.md "delete": the resources created during `create` MUST be
    // deleted, and the runtime made this parent. runc 1.1.5 leaves it.
    if berth_only("delete removes a parent cgroup the runtime created") {
        assert!(left.is_empty(), "the parent cgroup {parent} was left");
    }
}

#[test]
fn v2_layout_refuses_a_limit_whose_controller_it_lacks() {
    let Some((rt, _)) = v2_layout() else { return };
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 33554432 }));
    let err = rt.create(&id, &bundle, &[]).fails();
    if berth_only("the error names the field and the controller") {
        assert!(
            err.contains("linux.resources.memory.limit") && err.contains("memory controller"),
            "{err}"
        );
    }
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn v1_layout_sets_limits_only_in_v1_hierarchies_and_freezes() {
    let Some(rt) = v1_layout() else { return };
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        let resources = &mut c["linux"]["resources"];
        resources["memory"] = json!({ "limit": 33554432 });
        resources["pids"] = json!({ "limit": 42 });
    });
    rt.create_and_start(&id, &bundle);

    let dirs = cgroups_named(&id);
    if let Some(host_unified) = host_cgroup2_mount() {
        assert!(
            !dirs.iter().any(|d| d.starts_with(&host_unified)),
            "the v1 layout has no cgroup2 mount: {dirs:?}"
        );
    }
    assert_eq!(
        read(&host_dir(Path::new("/sys/fs/cgroup/memory"), &id).join("memory.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(
        read(&host_dir(Path::new("/sys/fs/cgroup/pids"), &id).join("pids.max")),
        "42"
    );
    let inside = exec_sh(
        &rt,
        &id,
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
    );
    assert_eq!(inside.lines().collect::<Vec<_>>(), ["33554432", "42"]);

    let freezer = host_dir(Path::new("/sys/fs/cgroup/freezer"), &id).join("freezer.state");
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(read(&freezer), "FROZEN");
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(read(&freezer), "THAWED");

    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn v1_layout_refuses_cgroup_v2_keys() {
    let Some(rt) = v1_layout() else { return };
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["resources"]["unified"] = json!({ "pids.max": "10" }));
    let err = rt.create(&id, &bundle, &[]).fails();
    if berth_only("the error names the key and cgroup v2") {
        assert!(
            err.contains("unified") && err.contains("cgroup v2"),
            "{err}"
        );
    }
    rt.assert_nothing_left(&id, &bundle);
}
