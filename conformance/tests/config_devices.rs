//! config-linux.md "Devices": every listed node made with its type, numbers,
//! mode and owner (checked from inside the container), and the device cgroup
//! letting the container open a listed device that `resources.devices` allows;
//! devices listed where the runtime makes its /dev links (/dev/ptmx, /dev/stdin),
//! and where the rootfs has a link of its own.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_conformance::hostile_tree::{host_probe, own_dev, plant_link};
use berth_conformance::{berth_only, skip, Bundle, Runtime};
use serde_json::{json, Value};

fn run_script(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(edit);
    Runtime::new().run_to_completion(&bundle)
}

/// busybox stat: name, file type, major:minor (hex), mode (octal), uid:gid.
const DESCRIBE: &str = "stat -c '%n|%F|%t:%T|%a|%u:%g'";

#[test]
fn devices_have_their_type_numbers_mode_and_owner() {
    let devices = json!([
        { "path": "/dev/mychar", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 1000, "gid": 1000 },
        { "path": "/dev/unbuffered", "type": "u", "major": 1, "minor": 9, "fileMode": 0o600, "uid": 0, "gid": 1000 },
        { "path": "/dev/disks/myblk", "type": "b", "major": 7, "minor": 3, "fileMode": 0o660, "uid": 0, "gid": 6 },
        { "path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 1000, "gid": 0 },
        { "path": "/dev/plain", "type": "c", "major": 1, "minor": 7 },
    ]);
    let paths = "/dev/mychar /dev/unbuffered /dev/disks/myblk /dev/myfifo /dev/plain";
    let out = run_script(&format!("{DESCRIBE} {paths}"), |c| {
        c["linux"]["devices"] = devices
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/mychar|character special file|1:5|640|1000:1000",
            "/dev/unbuffered|character special file|1:9|600|0:1000",
            "/dev/disks/myblk|block special file|7:3|660|0:6",
            "/dev/myfifo|fifo|0:0|620|1000:0",
            // Without fileMode, uid and gid: 0666 and root, as runc makes them.
            "/dev/plain|character special file|1:7|666|0:0",
        ],
        "{out}"
    );
}

/// A char device with a driver behind it that no default rule allows: the
/// host's /dev/fuse (10:229), when the host has one.
fn host_has_fuse() -> bool {
    std::fs::metadata("/dev/fuse").is_ok_and(|m| {
        m.file_type().is_char_device()
            && (libc::major(m.rdev()), libc::minor(m.rdev())) == (10, 229)
    })
}

/// Opens /dev/fuse read-write and closes it at once; says why if it cannot.
const OPEN_FUSE: &str = "if (: <> /dev/fuse) 2>/dev/null; then echo opened; else echo refused; fi";

fn list_fuse(c: &mut Value) {
    c["linux"]["devices"] =
        json!([{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229 }]);
}

#[test]
fn a_listed_device_opens_when_resources_devices_allow_it() {
    if !host_has_fuse() {
        skip("the host has no /dev/fuse to open");
        return;
    }
    let out = run_script(OPEN_FUSE, |c| {
        list_fuse(c);
        let rule = json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw" });
        c["linux"]["resources"]["devices"]
            .as_array_mut()
            .unwrap()
            .push(rule);
    });
    assert_eq!(out, "opened\n");
}

/// config-linux.md "Devices": the listed devices "MUST be available in the
/// container", so Berth allows each in the device cgroup. runc 1.1.5 makes
/// the node but leaves it to `resources.devices`: behind runc's default
/// deny-all rule, opening it fails with EPERM.
#[test]
fn a_listed_device_opens_without_a_rule_of_its_own_berth_only() {
    if !berth_only("runc 1.1.5 does not allow listed devices in the device cgroup") {
        return;
    }
    if !host_has_fuse() {
        skip("the host has no /dev/fuse to open");
        return;
    }
    assert_eq!(run_script(OPEN_FUSE, list_fuse), "opened\n");
}

/// What the tests below print: /dev/ptmx's link and the node behind it,
/// /dev/stdin as a node, /dev/stdout still the runtime's link.
const AT_LINK_PATHS: &str =
    "readlink /dev/ptmx; stat -L -c '%F %t:%T' /dev/ptmx /dev/stdin; readlink /dev/stdout";

/// Podman `--privileged` and `--device /dev/ptmx` list the host's /dev/ptmx
/// (5:2), and a config may list a node at /dev/stdin: paths where the runtime
/// makes links of its own. As runc does, /dev/ptmx stays the link into the
/// container's devpts and a node listed at /dev/stdin replaces the link.
#[test]
fn devices_listed_where_the_runtime_makes_its_dev_links() {
    let out = run_script(AT_LINK_PATHS, |c| {
        c["linux"]["devices"] = json!([
            { "path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2 },
            { "path": "/dev/stdin", "type": "c", "major": 1, "minor": 3 },
        ])
    });
    assert_eq!(
        out,
        "pts/ptmx\ncharacter special file 5:2\ncharacter special file 1:3\n/proc/self/fd/1\n"
    );
}

/// A rootfs with its own /dev (no tmpfs over it) that already holds the
/// runtime's links, from the image or an earlier run: a device listed at
/// /dev/stdin replaces the link /dev/stdin -> /proc/self/fd/0, the same link
/// the runtime makes. runc 1.1.5 follows that link through /proc and fails.
#[test]
fn devices_listed_over_the_runtimes_own_links_in_the_rootfs() {
    let mut bundle = Bundle::busybox(&["sh", "-c", AT_LINK_PATHS]);
    plant_link(&bundle, "/dev/ptmx", "pts/ptmx");
    plant_link(&bundle, "/dev/stdin", "/proc/self/fd/0");
    bundle.edit(|c| {
        own_dev(c);
        c["linux"]["devices"] = json!([
            { "path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2 },
            { "path": "/dev/stdin", "type": "c", "major": 1, "minor": 3 },
        ]);
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    if berth_only("runc 1.1.5 follows /dev/stdin through /proc and fails") {
        assert_eq!(
            out.ok().stdout,
            "pts/ptmx\ncharacter special file 5:2\ncharacter special file 1:3\n/proc/self/fd/1\n",
        );
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// Only the runtime's own link gives way: the rootfs's /dev/stdout leading
/// out of the rootfs, with a device listed there, is never followed. Berth
/// refuses it by name (config-linux.md: a file there that does not match is
/// an error); runc 1.1.5 makes the node where the link leads, in the rootfs.
/// Either way nothing appears on the host.
#[test]
fn a_device_listed_over_a_dev_link_out_of_the_rootfs() {
    let probe = host_probe();
    let mut bundle = Bundle::busybox(&["stat", "-L", "-c", "%F %t:%T", "/dev/stdout"]);
    plant_link(&bundle, "/dev/stdout", &probe);
    bundle.edit(|c| {
        own_dev(c);
        c["linux"]["devices"] =
            json!([{ "path": "/dev/stdout", "type": "c", "major": 1, "minor": 3 }]);
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(!probe.exists(), "{} was made on the host", probe.display());
    if berth_only("runc 1.1.5 makes the node where the link leads, inside the rootfs") {
        out.fails_with("device /dev/stdout: the rootfs has a symlink there");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// In a user namespace the host's node at the listed path is bound instead of
/// mknod, once checked to be that device: the host's /dev/stdin is a link to
/// the init's own stdin, not a 1:3 node, and is refused by name. runc 1.1.5
/// binds whatever the link leads to. /dev/ptmx is the link there too.
#[test]
fn in_a_user_namespace_a_listed_device_binds_only_the_hosts_node() {
    let userns = |c: &mut Value, devices: Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        let mapping = json!([{ "containerID": 0, "hostID": 100_000, "size": 65536 }]);
        c["linux"]["uidMappings"] = mapping.clone();
        c["linux"]["gidMappings"] = mapping;
        c["linux"]["devices"] = devices;
    };
    let out = run_script("readlink /dev/ptmx; stat -L -c '%F %t:%T' /dev/ptmx", |c| {
        userns(
            c,
            json!([{ "path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2 }]),
        )
    });
    assert_eq!(out, "pts/ptmx\ncharacter special file 5:2\n");
    if !berth_only("runc 1.1.5 binds what the host's /dev/stdin leads to") {
        return;
    }
    let mut bundle = Bundle::busybox(&["true"]);
    bundle.edit(|c| {
        userns(
            c,
            json!([{ "path": "/dev/stdin", "type": "c", "major": 1, "minor": 3 }]),
        )
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &[])
        .fails_with("the host's /dev/stdin to bind is a symlink, not the device");
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// A mount of the config at a device path (docker's `-v /dev/urandom:/dev/random`)
/// stays, over a default device and over a listed one: no node is made over it.
#[test]
fn a_mount_at_a_device_path_stays() {
    let out = run_script(
        "stat -c '%n|%t:%T' /dev/random /dev/mychar; head -c 4 /dev/random | wc -c",
        |c| {
            c["linux"]["devices"] = json!([
                { "path": "/dev/mychar", "type": "c", "major": 1, "minor": 5 },
            ]);
            let mounts = c["mounts"].as_array_mut().expect("mounts");
            for (source, destination) in [
                ("/dev/urandom", "/dev/random"),
                ("/dev/null", "/dev/mychar"),
            ] {
                mounts.push(json!({
                    "destination": destination, "type": "bind", "source": source,
                    "options": ["bind"],
                }));
            }
        },
    );
    assert_eq!(out, "/dev/random|1:9\n/dev/mychar|1:3\n4\n", "{out}");
}
