//! config-linux.md "Devices": every listed node made with its type, numbers,
//! mode and owner (checked from inside the container), and the device cgroup
//! letting the container open a listed device that `resources.devices` allows.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

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
