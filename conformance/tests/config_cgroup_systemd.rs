//! runc's systemd cgroup driver (`--systemd-cgroup`, cgroupsPath `slice:prefix:name`)
//! against a real systemd: one of the test's own (`PrivateSystemd`), PID 1 of its own
//! namespaces, since our machines' init is not systemd. The runtime runs inside those
//! namespaces, so it finds that systemd's /run/systemd and its cgroup mounts.

use std::fs;

use berth_conformance::{skip, Bundle, Runtime};
use serde_json::json;

fn systemd_runtime() -> Option<Runtime> {
    let rt = Runtime::in_private_systemd();
    if rt.is_none() {
        skip("no /lib/systemd/systemd, or not a hybrid cgroup host");
    }
    rt
}

/// The container is a transient scope `<prefix>-<name>.scope` in the slice, nested as
/// systemd nests slices, with the limits in its cgroup; delete stops the unit.
#[test]
fn the_container_is_a_systemd_scope_with_its_limits() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("berth-test.slice:berth:{id}"));
        c["linux"]["resources"]["memory"] = json!({ "limit": 64 << 20 });
        c["linux"]["resources"]["pids"] = json!({ "limit": 50 });
    });
    bundle.write_config();
    let unit = format!("berth-{id}.scope");
    rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ])
    .ok();

    assert_eq!(
        systemd.unit_property(&unit, "ActiveState"),
        "active",
        "{}",
        systemd.systemctl(&["status", &unit])
    );
    assert_eq!(systemd.unit_property(&unit, "Slice"), "berth-test.slice");
    let inner = format!("berth.slice/berth-test.slice/{unit}");
    assert_eq!(
        systemd.unit_property(&unit, "ControlGroup"),
        format!("/{inner}")
    );
    let pid = rt.state(&id)["pid"].as_i64().expect("state has a pid");
    // Every hierarchy, also those systemd leaves alone (devices, freezer), holds the init
    // there. runc 1.1.5 leaves the init in the root of those two: no device cgroup of
    // its own (config-linux.md: the device rules MUST apply to the container).
    let hierarchies: &[&str] =
        if berth_conformance::berth_only("runc leaves devices and freezer alone") {
            &["memory", "pids", "devices", "freezer", "systemd", "unified"]
        } else {
            &["memory", "pids", "systemd", "unified"]
        };
    for &hierarchy in hierarchies {
        let procs = fs::read_to_string(systemd.cgroup_dir(hierarchy, &inner).join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("the scope's {hierarchy} cgroup: {e}"));
        assert_eq!(
            procs.lines().count(),
            1,
            "{hierarchy}: {procs:?} (init {pid} in systemd's numbering)"
        );
    }
    let memory = fs::read_to_string(
        systemd
            .cgroup_dir("memory", &inner)
            .join("memory.limit_in_bytes"),
    )
    .unwrap();
    assert_eq!(memory.trim(), (64 << 20).to_string());
    let pids = fs::read_to_string(systemd.cgroup_dir("pids", &inner).join("pids.max")).unwrap();
    assert_eq!(pids.trim(), "50");

    rt.start(&id).ok();
    rt.kill_and_delete(&id, &bundle);
    assert_eq!(
        systemd.unit_property(&unit, "LoadState"),
        "not-found",
        "the unit outlived delete"
    );
    assert!(
        systemd.cgroups_named(&unit).is_empty(),
        "cgroups left: {:?}",
        systemd.cgroups_named(&unit)
    );
    // The slice's directories the runtime made where systemd does not manage the
    // controller (runtime.md: delete removes what create made; runc 1.1.5 leaves them).
    let berth = berth_conformance::berth_only("runc leaves the slice directories it made");
    for hierarchy in ["devices", "freezer"] {
        let slice = systemd.cgroup_dir(hierarchy, "berth.slice");
        if berth {
            assert!(!slice.exists(), "{} was left", slice.display());
        } else {
            let _ = fs::remove_dir(&slice);
        }
    }
}

/// No cgroupsPath means `system.slice:runc:<id>`, as in runc.
#[test]
fn without_a_cgroups_path_the_scope_is_runc_id_in_system_slice() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    bundle.write_config();
    rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ])
    .ok();
    let unit = format!("runc-{id}.scope");
    assert_eq!(systemd.unit_property(&unit, "ActiveState"), "active");
    assert_eq!(
        systemd.unit_property(&unit, "ControlGroup"),
        format!("/system.slice/{unit}")
    );
    rt.kill_and_delete(&id, &bundle);
    assert_eq!(
        systemd.unit_property(&unit, "LoadState"),
        "not-found",
        "the unit outlived delete"
    );
}

/// A create that fails after systemd made the scope takes the scope back.
#[test]
fn a_failed_create_stops_its_scope() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!(":berth:{id}"));
        c["process"]["args"] = json!(["/no/such/program"]);
    });
    bundle.write_config();
    let out = rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    // The init's failure, so the scope existed by then.
    assert!(
        out.fails().contains("/no/such/program"),
        "{}",
        out.describe()
    );
    let unit = format!("berth-{id}.scope");
    assert_eq!(
        systemd.unit_property(&unit, "LoadState"),
        "not-found",
        "the unit outlived the failed create"
    );
    assert!(
        systemd.cgroups_named(&unit).is_empty(),
        "cgroups left: {:?}",
        systemd.cgroups_named(&unit)
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// systemd writes a unit's cgroup settings again on `daemon-reload`: the limits the
/// container was made with, and those `update` set later, must be what it writes.
#[test]
fn limits_survive_a_daemon_reload() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
        c["linux"]["resources"]["memory"] = json!({ "limit": 64 << 20 });
        c["linux"]["resources"]["pids"] = json!({ "limit": 50 });
        c["linux"]["resources"]["cpu"] = json!({ "shares": 512, "quota": 50000, "period": 100000 });
    });
    bundle.write_config();
    rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ])
    .ok();
    let inner = format!("system.slice/berth-{id}.scope");
    let read = |hierarchy: &str, file: &str| {
        fs::read_to_string(systemd.cgroup_dir(hierarchy, &inner).join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_string()
    };
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");

    rt.cmd(&[
        "--systemd-cgroup",
        "update",
        "--memory",
        "32M",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        &id,
    ])
    .ok();
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (32 << 20).to_string()
    );
    assert_eq!(read("pids", "pids.max"), "20");
    assert_eq!(read("cpu", "cpu.shares"), "256");
    rt.kill_and_delete(&id, &bundle);
}
