//! More of runc's systemd cgroup driver, against a systemd of the test's own
//! (`PrivateSystemd`): a `name` ending in `.slice` makes that slice (kubelet's pod
//! slices) and kubelet's `<pod slice>:cri-containerd:<id>` is a scope in it; every
//! limit and the device rules are unit properties, so systemd's `daemon-reload`
//! writes the container's limits and not its defaults (also after an `update` of
//! one half of the CPU quota); `org.systemd.property.*` annotations become unit
//! properties, with runc's refusals of bad ones before anything exists; without
//! root the driver refuses v1 hierarchies in runc's words.

use std::fs;

use berth_conformance::{berth_only, skip, Bundle, Runtime};
use serde_json::json;

fn systemd_runtime() -> Option<Runtime> {
    let rt = Runtime::in_private_systemd();
    if rt.is_none() {
        skip("no /lib/systemd/systemd, or not a hybrid cgroup host");
    }
    rt
}

fn create(rt: &Runtime, bundle: &Bundle, id: &str) -> berth_conformance::Output {
    rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        id,
    ])
}

/// `id` as one slice name component: systemd reads '-' in a slice name as nesting.
fn slice_part(id: &str) -> String {
    id.replace('-', "_")
}

#[test]
fn a_cpu_quota_updated_alone_survives_a_daemon_reload() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
        c["linux"]["resources"]["cpu"] =
            json!({ "quota": 25000, "period": 50000, "cpus": "0", "mems": "0" });
    });
    bundle.write_config();
    create(&rt, &bundle, &id).ok();
    let inner = format!("system.slice/berth-{id}.scope");
    let read = |file: &str| {
        fs::read_to_string(systemd.cgroup_dir("cpu", &inner).join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_string()
    };
    // The cpuset as systemd's masks (systemd applies them on cgroup v2 only).
    let unit = format!("berth-{id}.scope");
    assert_eq!(systemd.unit_property(&unit, "AllowedCPUs"), "0");
    assert_eq!(systemd.unit_property(&unit, "AllowedMemoryNodes"), "0");
    // The quota alone: systemd must learn 20 ms per 50 ms (400 ms a second),
    // not keep 500 ms, nor assume the default period.
    rt.cmd(&["--systemd-cgroup", "update", "--cpu-quota", "20000", &id])
        .ok();
    assert_eq!(read("cpu.cfs_quota_us"), "20000");
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(read("cpu.cfs_quota_us"), "20000", "daemon-reload undid it");
    assert_eq!(read("cpu.cfs_period_us"), "50000");
    assert_eq!(systemd.unit_property(&unit, "CPUQuotaPerSecUSec"), "400ms");
    // The period alone keeps the quota (20 ms per 100 ms now).
    rt.cmd(&["--systemd-cgroup", "update", "--cpu-period", "100000", &id])
        .ok();
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(read("cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu.cfs_quota_us"), "20000");
    rt.kill_and_delete(&id, &bundle);
}

/// systemd holds a quota as a percentage with two decimals: runc rounds the quota
/// up to the next 10 ms per second and writes the rounded one, so the file and
/// what systemd writes on daemon-reload agree.
#[test]
fn a_cpu_quota_is_rounded_as_systemd_holds_it() {
    if !berth_only("runc 1.1.5 writes 33333, which daemon-reload turns into 34000") {
        return;
    }
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
        c["linux"]["resources"]["cpu"] = json!({ "quota": 33333, "period": 100000 });
    });
    bundle.write_config();
    create(&rt, &bundle, &id).ok();
    let quota = systemd
        .cgroup_dir("cpu", &format!("system.slice/berth-{id}.scope"))
        .join("cpu.cfs_quota_us");
    let read = || fs::read_to_string(&quota).unwrap().trim().to_string();
    assert_eq!(read(), "34000");
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(read(), "34000", "daemon-reload changed the quota");
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn systemd_property_annotations_reach_the_unit() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
        c["annotations"] = json!({
            "org.systemd.property.CollectMode": "'inactive-or-failed'",
            // A ...Sec name is the ...USec property, in seconds.
            "org.systemd.property.TimeoutStopSec": "uint64 7",
            "org.systemd.property.RuntimeMaxUSec": "uint64 123456789",
        });
    });
    bundle.write_config();
    create(&rt, &bundle, &id).ok();
    let unit = format!("berth-{id}.scope");
    assert_eq!(
        systemd.unit_property(&unit, "CollectMode"),
        "inactive-or-failed"
    );
    assert_eq!(systemd.unit_property(&unit, "TimeoutStopUSec"), "7s");
    assert_eq!(
        systemd.unit_property(&unit, "RuntimeMaxUSec"),
        "2min 3.456789s"
    );
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn bad_systemd_property_annotations_are_refused_before_anything_exists() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    for (key, value, error) in [
        (
            "org.systemd.property.ab",
            "true",
            "annotation org.systemd.property.ab name incorrect: too short",
        ),
        (
            "org.systemd.property.Cpu2",
            "true",
            "annotation org.systemd.property.Cpu2 name incorrect: contains non-alphabetic character",
        ),
        (
            "org.systemd.property.CollectMode",
            "inactive",
            "annotation org.systemd.property.CollectMode=inactive value parse error",
        ),
    ] {
        let id = rt.new_id();
        let mut bundle = Bundle::sleeper();
        bundle.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}"));
            c["annotations"] = json!({ key: value });
        });
        bundle.write_config();
        create(&rt, &bundle, &id).fails_with(error);
        assert_eq!(
            systemd.unit_property(&format!("berth-{id}.scope"), "LoadState"),
            "not-found"
        );
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// kubelet's systemd driver: each container of a pod is a scope in the pod's slice
/// (`kubepods-<qos>-pod<uid>.slice:cri-containerd:<id>`), nested as systemd nests slices.
#[test]
fn kubelets_containers_are_scopes_in_the_pod_slice() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let pod = format!("kubepods-besteffort-pod{}.slice", slice_part(&id));
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("{pod}:cri-containerd:{id}"));
    });
    bundle.write_config();
    create(&rt, &bundle, &id).ok();
    let unit = format!("cri-containerd-{id}.scope");
    let group = format!("kubepods.slice/kubepods-besteffort.slice/{pod}/{unit}");
    assert_eq!(systemd.unit_property(&unit, "Slice"), pod);
    assert_eq!(
        systemd.unit_property(&unit, "ControlGroup"),
        format!("/{group}")
    );
    let procs =
        fs::read_to_string(systemd.cgroup_dir("memory", &group).join("cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 1, "{procs:?}");
    rt.kill_and_delete(&id, &bundle);
    assert_eq!(systemd.unit_property(&unit, "LoadState"), "not-found");
}

/// A cgroupsPath whose name ends in `.slice` makes that slice, as in runc (kubelet
/// makes its pod slices so); a container then goes in it as in any other unit.
#[test]
fn a_slice_name_makes_that_slice() {
    if !berth_only("runc 1.1.5 asks for the slice with the init's pid, which systemd refuses") {
        return;
    }
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let pod_id = rt.new_id();
    let pod = format!("kubepods-besteffort-pod{}.slice", slice_part(&pod_id));
    let mut pod_bundle = Bundle::sleeper();
    pod_bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("kubepods-besteffort.slice:ignored:{pod}"));
        c["linux"]["resources"]["memory"] = json!({ "limit": 128 << 20 });
    });
    pod_bundle.write_config();
    create(&rt, &pod_bundle, &pod_id).ok();
    let pod_group = format!("kubepods.slice/kubepods-besteffort.slice/{pod}");
    assert_eq!(systemd.unit_property(&pod, "ActiveState"), "active");
    assert_eq!(
        systemd.unit_property(&pod, "ControlGroup"),
        format!("/{pod_group}")
    );
    let memory = systemd.cgroup_dir("memory", &pod_group);
    let procs = fs::read_to_string(memory.join("cgroup.procs")).unwrap();
    assert_eq!(procs.lines().count(), 1, "{procs:?}");
    let limit = || {
        fs::read_to_string(memory.join("memory.limit_in_bytes"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(limit(), (128 << 20).to_string());
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(limit(), (128 << 20).to_string(), "daemon-reload undid it");

    rt.kill_and_delete(&pod_id, &pod_bundle);
    assert_ne!(
        systemd.unit_property(&pod, "ActiveState"),
        "active",
        "the slice outlived delete"
    );
    assert!(
        systemd.cgroups_named(&pod).is_empty(),
        "cgroups left: {:?}",
        systemd.cgroups_named(&pod)
    );
}

#[test]
fn bad_slice_names_are_refused_before_anything_exists() {
    let Some(rt) = systemd_runtime() else { return };
    let mut cases = vec![
        ("sys--tem.slice:p:n", "invalid slice name: sys--tem.slice"),
        ("system:p:n", "invalid slice name: system"),
    ];
    // runc 1.1.5 passes a bad slice name on to systemd, which refuses it in its words.
    if berth_only("runc 1.1.5 leaves a name's slice to systemd") {
        cases.extend([
            (
                "system.slice:p:a--b.slice",
                "invalid slice name: a--b.slice",
            ),
            // A slice is placed by its name: one naming another parent is not below this one.
            ("system.slice:p:other-x.slice", "is a slice outside"),
        ]);
    }
    for (path, error) in cases {
        let id = rt.new_id();
        let mut bundle = Bundle::sleeper();
        bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        bundle.write_config();
        create(&rt, &bundle, &id).fails_with(error);
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// Without root the driver talks to the user's own systemd, which on a host with
/// v1 hierarchies (the only kind `PrivateSystemd` runs on) cannot delegate them:
/// refused in runc's words before anything exists. The socket it would use
/// ($XDG_RUNTIME_DIR/systemd/private) is checked by the library's unit tests only:
/// no user manager runs here.
#[test]
fn without_root_the_driver_refuses_v1_hierarchies() {
    if !berth_only("runc 1.1.5 first makes its --root, which this user may not") {
        return;
    }
    let Some(rt) = systemd_runtime() else { return };
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(format!(":berth:{id}")));
    bundle.write_config();
    let out = rt.cmd_in_shell(
        "exec env XDG_RUNTIME_DIR=/nonexistent setpriv --reuid 65534 --regid 65534 --clear-groups \"$0\" \"$@\";",
        &[
            "--systemd-cgroup",
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ],
    );
    out.fails_with("cannot use rootless systemd cgroups manager on cgroup v1");
    rt.assert_nothing_left(&id, &bundle);
}

/// Once any unit in its slice has device rules, systemd manages the devices
/// hierarchy for the whole slice and writes each unit's own device policy on
/// `daemon-reload`: the container's rules must be its unit's, or the reload opens
/// every device to it.
#[test]
fn device_rules_survive_a_daemon_reload() {
    let Some(rt) = systemd_runtime() else { return };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth:{id}")));
    bundle.write_config();
    create(&rt, &bundle, &id).ok();
    let list = systemd
        .cgroup_dir("devices", &format!("system.slice/berth-{id}.scope"))
        .join("devices.list");
    let read = || {
        let mut rules: Vec<String> = fs::read_to_string(&list)
            .unwrap_or_else(|e| panic!("{}: {e}", list.display()))
            .lines()
            .map(str::to_string)
            .collect();
        rules.sort();
        rules
    };
    let before = read();
    assert!(
        !before.contains(&"a *:* rwm".to_string()),
        "every device allowed from the start: {before:?}"
    );
    let sibling = format!("{}-sibling.service", slice_part(&id));
    let out = systemd
        .command(std::path::Path::new("systemd-run"))
        .args(["--unit", &sibling, "--slice", "system.slice"])
        .args(["-p", "DefaultDependencies=no", "-p", "DevicePolicy=closed"])
        .args(["/bin/sleep", "1000"])
        .output()
        .expect("run systemd-run");
    assert!(out.status.success(), "systemd-run: {out:?}");
    systemd.systemctl(&["daemon-reload"]);
    assert_eq!(read(), before, "daemon-reload changed the device rules");
    systemd.systemctl(&["stop", &sibling]);
    rt.kill_and_delete(&id, &bundle);
}
