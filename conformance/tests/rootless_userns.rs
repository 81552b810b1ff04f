//! The runtime as uid 0 of a user namespace someone else made: rootless
//! podman and docker, buildah, a runtime nested in a container. The config
//! is often the rootful default (no user namespace of its own); the
//! runtime's root may not mknod, nor make cgroups the host's root owns.
//! runc then takes `--rootless auto` as true, keeps its state under
//! $XDG_RUNTIME_DIR, binds the host's device nodes, and runs a container
//! without limits without a cgroup of its own.
//!
//! The user `berth-rootless` makes the namespace (`foreign_userns`); each
//! runtime command enters it, as an engine's do.

use berth_conformance::foreign_userns::{ForeignUserns, IdMap};
use berth_conformance::rootless_podman::RootlessPodman;
use berth_conformance::{berth_only, unique_name, wait_until, Bundle, SLEEPER};
use serde_json::{json, Value};
use std::time::Duration;

/// Devices usable, the exit code passed on: one line per check.
const DEVICE_SCRIPT: &str = "echo gone > /dev/null && echo null-ok; \
     head -c 5 /dev/zero | wc -c; \
     stat -c 'tty %t,%T %F' /dev/tty; \
     exit 7";

const DEVICE_OUTPUT: &str = "null-ok\n5\ntty 5,0 character special file\n";

/// `run` of `bundle` in `userns`: exit 7 and working devices, nothing left.
fn runs_with_devices(userns: &ForeignUserns, bundle: &Bundle) {
    let id = unique_name();
    let out = userns.cmd(&["run", "--bundle", ForeignUserns::bundle_arg(bundle), &id]);
    assert_eq!(out.code, 7, "{}", out.describe());
    assert_eq!(out.stdout, DEVICE_OUTPUT, "{}", out.describe());
    userns.assert_nothing_left(&id, bundle);
}

/// runc's default config as it is, in a namespace with podman's kind of
/// map (gid 5, which devpts is mounted with, is mapped).
#[test]
fn the_default_config_runs_in_a_multi_id_user_namespace() {
    let Some(userns) = ForeignUserns::new(IdMap::WithSubordinates) else {
        return;
    };
    assert_eq!(userns.uid_map().lines().count(), 2, "{}", userns.uid_map());
    let bundle = userns.bundle(&["sh", "-c", DEVICE_SCRIPT]);
    runs_with_devices(&userns, &bundle);
}

/// A namespace mapping only the user: the config cannot ask for gid 5 on
/// devpts (no such group there; runc refuses it too), as podman leaves it
/// out when gid 5 is not mapped.
#[test]
fn the_default_config_runs_in_a_single_id_user_namespace() {
    let Some(userns) = ForeignUserns::new(IdMap::RootOnly) else {
        return;
    };
    let mut bundle = userns.bundle(&["sh", "-c", DEVICE_SCRIPT]);
    bundle.edit(|c| {
        for mount in c["mounts"].as_array_mut().expect("mounts") {
            if mount["type"] == "devpts" {
                let options = mount["options"].as_array_mut().expect("devpts options");
                options.retain(|o| o != "gid=5");
            }
        }
    });
    runs_with_devices(&userns, &bundle);
}

/// A config with a user namespace of its own: made inside the foreign one,
/// mapping ids of that one (one range per range of the foreign map: the
/// kernel maps each through a single one).
#[test]
fn a_config_with_its_own_user_namespace_nests_in_the_foreign_one() {
    let Some(userns) = ForeignUserns::new(IdMap::WithSubordinates) else {
        return;
    };
    let script = format!("cat /proc/self/uid_map; {DEVICE_SCRIPT}");
    let mut bundle = userns.bundle(&["sh", "-c", &script]);
    bundle.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "user" }));
        let map = json!([
            { "containerID": 0, "hostID": 0, "size": 1 },
            { "containerID": 1, "hostID": 1, "size": 65535 }
        ]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    let id = unique_name();
    let out = userns.cmd(&["run", "--bundle", ForeignUserns::bundle_arg(&bundle), &id]);
    assert_eq!(out.code, 7, "{}", out.describe());
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[..2], ["0 0 1", "1 1 65535"], "{}", out.describe());
    let devices = out
        .stdout
        .lines()
        .skip(2)
        .fold(String::new(), |s, l| s + l + "\n");
    assert_eq!(devices, DEVICE_OUTPUT, "{}", out.describe());
    userns.assert_nothing_left(&id, &bundle);
}

/// The whole lifecycle, each step a command of its own in the namespace:
/// the state lives under $XDG_RUNTIME_DIR, the init runs as the user on the
/// host, `exec` joins it, and `delete` leaves nothing.
#[test]
fn create_start_kill_delete_leave_nothing() {
    let Some(userns) = ForeignUserns::new(IdMap::WithSubordinates) else {
        return;
    };
    let bundle = userns.bundle(SLEEPER);
    let id = unique_name();
    let create = userns.cmd(&[
        "create",
        "--bundle",
        ForeignUserns::bundle_arg(&bundle),
        &id,
    ]);
    create.ok();
    assert_eq!(
        userns.state_dirs(&id).len(),
        1,
        "the state lives under $XDG_RUNTIME_DIR"
    );
    userns.cmd(&["start", &id]).ok();
    let state: Value =
        serde_json::from_str(&userns.cmd(&["state", &id]).ok().stdout).expect("state is JSON");
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().expect("a pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the status");
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(host_uid, Some(vec![userns.uid.to_string(); 4]), "{status}");

    let exec = userns.cmd(&["exec", &id, "sh", "-c", "id -u > /dev/null && id -u"]);
    assert_eq!(exec.ok().stdout, "0\n");

    userns.cmd(&["kill", &id, "KILL"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || userns
            .cmd(&["state", &id])
            .stdout
            .contains("\"stopped\"")),
        "the container did not stop"
    );
    userns.cmd(&["delete", &id]).ok();
    userns.assert_nothing_left(&id, &bundle);
}

/// No cgroup can be made here, so a memory limit cannot be kept: refused,
/// and nothing is left.
#[test]
fn a_memory_limit_without_a_cgroup_is_refused_and_leaves_nothing() {
    let Some(userns) = ForeignUserns::new(IdMap::WithSubordinates) else {
        return;
    };
    let mut bundle = userns.bundle(&["true"]);
    bundle.edit(|c| c["linux"]["resources"]["memory"] = json!({ "limit": 33554432 }));
    let id = unique_name();
    let out = userns.cmd(&["run", "--bundle", ForeignUserns::bundle_arg(&bundle), &id]);
    assert!(!out.success(), "a memory limit ran without a cgroup");
    if berth_only("the error names the resources and the missing cgroup") {
        assert!(
            out.stderr.contains("linux.resources") && out.stderr.contains("cgroup"),
            "{}",
            out.describe()
        );
    }
    userns.assert_nothing_left(&id, &bundle);
}

/// Rootless podman runs the runtime in the user namespace it made, with no
/// `--root` and no cgroup it may make (cgroupfs): the exit code, the devices
/// and the user's ids come through, `exec` and `stop` work, and `--rm` and
/// `rm` leave nothing.
#[test]
fn rootless_podman_runs_a_container() {
    let Some(podman) = RootlessPodman::new() else {
        return;
    };
    let name = unique_name();
    let rootfs = podman.rootfs();
    let script = format!("cat /proc/self/uid_map; {DEVICE_SCRIPT}");
    let out = podman.podman(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        "--rootfs",
        rootfs.to_str().expect("UTF-8"),
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(out.code, 7, "{}", out.describe());
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let (uid, _) = berth_conformance::unprivileged_user::user_ids().expect("the user");
    assert_eq!(lines[0], format!("0 {uid} 1"), "{}", out.describe());
    let devices = out
        .stdout
        .lines()
        .skip(2)
        .fold(String::new(), |s, l| s + l + "\n");
    assert_eq!(devices, DEVICE_OUTPUT, "{}", out.describe());
    assert!(
        wait_until(Duration::from_secs(10), || podman.leftovers().is_empty()),
        "left behind: {:?}",
        podman.leftovers()
    );

    // Detached, then exec, stop and rm.
    let name = unique_name();
    let mut run = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--rootfs",
    ];
    run.push(rootfs.to_str().expect("UTF-8"));
    run.extend(SLEEPER);
    podman.podman(&run).ok();
    assert!(
        podman
            .leftovers()
            .iter()
            .any(|l| l.contains("runtime state")),
        "the running container's state is not under $XDG_RUNTIME_DIR: {:?}",
        podman.leftovers()
    );
    let exec = podman.podman(&["exec", &name, "sh", "-c", "echo x > /dev/null; exit 4"]);
    assert_eq!(exec.code, 4, "{}", exec.describe());
    podman.podman(&["stop", "--time", "30", &name]).ok();
    podman.podman(&["rm", &name]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || podman.leftovers().is_empty()),
        "left behind: {:?}",
        podman.leftovers()
    );
}

/// A host mount the test makes, unmounted however the test ends.
struct HostTmpfs(std::path::PathBuf);

impl HostTmpfs {
    fn new(options: &str) -> HostTmpfs {
        let dir = berth_conformance::scratch_dir().join(format!("{}.locked", unique_name()));
        std::fs::create_dir_all(&dir).expect("mkdir the mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs at {}", dir.display());
        HostTmpfs(dir)
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Mounts the runtime copies into the container's mount namespace, which
/// its foreign user namespace owns, come with their nosuid, nodev, noexec
/// and atime flags locked: a read-only bind of one keeps them (clearing
/// them would be refused), and a bind asking to clear one fails cleanly.
#[test]
fn a_bind_of_a_mount_with_locked_flags_keeps_them() {
    let Some(userns) = ForeignUserns::new(IdMap::WithSubordinates) else {
        return;
    };
    let host = HostTmpfs::new("nosuid,nodev,noexec,mode=755");
    if berth_only(
        "runc 1.1.5 remounts the bind without the locked flags: EPERM (runc 1.2 keeps them)",
    ) {
        read_only_bind_keeps_locked_flags(&userns, &host);
    }

    // `exec` clears the locked noexec: refused, nothing left.
    let mut bundle = userns.bundle(&["true"]);
    bundle.add_mount(berth_conformance::bind_mount(
        &host.0,
        "/locked",
        &["rbind", "ro", "exec"],
    ));
    let id = unique_name();
    let out = userns.cmd(&["run", "--bundle", ForeignUserns::bundle_arg(&bundle), &id]);
    assert!(
        !out.success(),
        "a locked noexec was cleared: {}",
        out.describe()
    );
    if berth_only("the error names the mount and the locked flags") {
        let err = &out.stderr;
        assert!(
            err.contains("mount /locked") && err.contains("has locked"),
            "{}",
            out.describe()
        );
    }
    userns.assert_nothing_left(&id, &bundle);
}

fn read_only_bind_keeps_locked_flags(userns: &ForeignUserns, host: &HostTmpfs) {
    let script = "grep ' /locked ' /proc/self/mountinfo | cut -d' ' -f6; \
                  touch /locked/file 2>/dev/null || echo read-only";
    let mut bundle = userns.bundle(&["sh", "-c", script]);
    bundle.add_mount(berth_conformance::bind_mount(
        &host.0,
        "/locked",
        &["rbind", "ro"],
    ));
    let id = unique_name();
    let out = userns.cmd(&["run", "--bundle", ForeignUserns::bundle_arg(&bundle), &id]);
    out.ok();
    let mut lines = out.stdout.lines();
    let mut flags: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    flags.sort();
    assert_eq!(
        flags,
        ["nodev", "noexec", "nosuid", "relatime", "ro"],
        "{}",
        out.describe()
    );
    assert_eq!(lines.next(), Some("read-only"), "{}", out.describe());
    userns.assert_nothing_left(&id, &bundle);
}
