//! config-linux.md "User namespace mappings": a new user namespace with the config's
//! uid/gid maps, one joined by path, devices bound from the host (a user namespace may
//! not mknod), and exec into such a container.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt};

use berth_conformance::{parse_mountinfo, Bundle, Runtime};
use serde_json::{json, Value};

/// Container ids 0..65536 are host ids 100000..165536.
const HOST_BASE: u32 = 100_000;
const MAP_LINE: &str = "0 100000 65536";

fn with_user_namespace(config: &mut Value) {
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "user" }));
    let mapping = json!([{ "containerID": 0, "hostID": HOST_BASE, "size": 65536 }]);
    config["linux"]["uidMappings"] = mapping.clone();
    config["linux"]["gidMappings"] = mapping;
}

/// `/proc/self/uid_map` with its column padding squeezed out.
fn squeeze(map: &str) -> String {
    map.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_field(pid: i64, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in status"));
    line[field.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_new_user_namespace_gets_the_config_mappings() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
    ]);
    bundle.edit(with_user_namespace);
    let out = Runtime::new().run_to_completion(&bundle);
    assert_eq!(squeeze(&out), format!("{MAP_LINE}\n{MAP_LINE}\n0\n0"));
}

#[test]
fn container_root_is_the_mapped_host_id_outside() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(with_user_namespace);
    // oomScoreAdj too: the init's /proc files belong to the host's root, so the runtime
    // must set it from outside.
    bundle.config_mut()["process"]["oomScoreAdj"] = json!(123);
    let host_dir = bundle.share_dir("/tmp");
    chown(&host_dir, Some(HOST_BASE), Some(HOST_BASE)).unwrap();
    bundle.set_args(&["sh", "-c", "touch /tmp/made-inside; exec sleep 1000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(berth_conformance::wait_until(
        std::time::Duration::from_secs(5),
        || host_dir.join("made-inside").exists()
    ));
    assert_eq!(status_field(pid, "Uid:"), HOST_BASE.to_string());
    assert_eq!(status_field(pid, "Gid:"), HOST_BASE.to_string());
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "123"
    );
    let made = fs::metadata(host_dir.join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (HOST_BASE, HOST_BASE));
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn devices_are_bound_from_the_host_in_a_user_namespace() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.edit(with_user_namespace);
    bundle.edit(|c| {
        c["linux"]["devices"] = json!([{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666 }]);
        c["linux"]["resources"]["devices"].as_array_mut().unwrap().push(json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm" }));
    });
    let shared = bundle.share_dir("/tmp");
    chown(&shared, Some(HOST_BASE), Some(HOST_BASE)).unwrap();
    let args = ["sh", "-c", "echo x > /dev/null && echo null-writable; head -c 4 /dev/zero | wc -c; stat -c '%t:%T' /dev/fuse; cat /proc/self/mountinfo > /tmp/mountinfo"];
    bundle.set_args(&args);
    // Kept alive until the end: dropping a Runtime removes the bundles it ran.
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    assert_eq!(out, "null-writable\n4\na:e5\n");
    let mounts = parse_mountinfo(&fs::read_to_string(shared.join("mountinfo")).unwrap());
    for dev in ["/dev/null", "/dev/zero", "/dev/fuse"] {
        assert!(
            mounts.iter().any(|m| m.mount_point == dev),
            "{dev} is not a bind mount: {mounts:?}"
        );
    }
}

#[test]
fn exec_joins_the_user_namespace() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(with_user_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let init_ns = fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let out = rt.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; readlink /proc/self/ns/user; id -u",
    ]);
    out.ok();
    assert_eq!(
        squeeze(&out.stdout),
        format!("{MAP_LINE}\n{}\n0", init_ns.display())
    );
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_user_namespace_is_joined_by_path_and_owns_the_new_ones() {
    let mut holder = Bundle::sleeper();
    holder.edit(with_user_namespace);
    let rt = Runtime::new();
    let holder_id = rt.new_id();
    rt.create_and_start(&holder_id, &holder);
    let holder_pid = rt.state(&holder_id)["pid"].as_i64().unwrap();
    let user_ns = format!("/proc/{holder_pid}/ns/user");

    let mut joiner = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map; readlink /proc/self/ns/user; id -u; hostname",
    ]);
    joiner.edit(|c| {
        // The mappings describe the joined namespace; runc requires them even then.
        with_user_namespace(c);
        let namespaces = c["linux"]["namespaces"].as_array_mut().unwrap();
        namespaces.last_mut().unwrap()["path"] = json!(user_ns);
        c["hostname"] = json!("joiner");
    });
    let out = rt.run_to_completion(&joiner);
    let expected = fs::read_link(&user_ns).unwrap();
    // sethostname only works in a UTS namespace owned by the joined user namespace.
    assert_eq!(
        squeeze(&out),
        format!("{MAP_LINE}\n{}\n0\njoiner", expected.display())
    );

    rt.kill_and_delete(&holder_id, &holder);
}

/// config.md "idmap": a bind with `idmap` and no mappings of its own takes the
/// container's; host files owned by root are the container root's to write, and
/// what it writes is owned by the host's root on disk.
#[test]
fn an_idmapped_bind_takes_the_container_mappings() {
    if !berth_conformance::berth_only("runc 1.1 ignores idmap options") {
        return;
    }
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c %u /tmp; touch /tmp/made-inside && echo written",
    ]);
    bundle.edit(with_user_namespace);
    let host_dir = bundle.share_dir("/tmp");
    // share_dir's bind is rbind,rw; `idmap` makes it an idmapped one.
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.last_mut().unwrap()["options"]
            .as_array_mut()
            .unwrap()
            .push(json!("idmap"));
    });
    let rt = Runtime::new();
    assert_eq!(rt.run_to_completion(&bundle), "0\nwritten\n");
    let made = fs::metadata(host_dir.join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (0, 0));
}

/// Without a network namespace of its own, a user namespace may not mount sysfs:
/// the host's /sys is bound instead (as crun does), read-only down to its submounts.
#[test]
fn sysfs_without_a_network_namespace_is_the_hosts_bound_read_only() {
    if !berth_conformance::berth_only(
        "runc 1.1 fails with EPERM here; crun and Berth bind the host's /sys",
    ) {
        return;
    }
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "test -d /sys/class/net && echo sys-visible; touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-readonly; grep -c ' /sys' /proc/self/mountinfo",
    ]);
    bundle.edit(with_user_namespace);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|ns| ns["type"] != "network")
    });
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["sys-visible", "cgroup-readonly"], "{out}");
    // The host's /sys has submounts (its cgroup trees); a bind of it brings them along.
    assert!(lines[2].parse::<u32>().unwrap() > 1, "{out}");
}
