//! Invalid bundles and ids. runtime.md "Errors": an error MUST leave the environment as it
//! was before the operation. Each case must fail with exit 1 (runc's code), say what is
//! wrong, and leave nothing behind.
//!
//! Messages are matched on a key substring both runc and Berth contain (the field, path or
//! value at fault), case-insensitively, not on runc's exact wording. Checks where Berth is
//! stricter than runc are gated by `berth_only`.

use std::fs;

use std::path::Path;

use berth_conformance::{berth_only, cgroups_named, skip, Bundle, Output, Runtime};
use serde_json::{json, Value};

/// Creates a container from `bundle` as given (its config.json is not rewritten), and
/// requires a failure naming `key` that leaves nothing behind. Returns the output.
fn rejected_as_is(bundle: &Bundle, key: &str) -> Output {
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.cmd(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    check_rejection(&out, key);
    rt.assert_nothing_left(&id, bundle);
    out
}

/// Like `rejected_as_is` for a bundle whose config is first edited by `edit`.
fn rejected(edit: impl FnOnce(&mut Value), key: &str) -> Output {
    let mut bundle = Bundle::sleeper();
    bundle.edit(edit);
    bundle.write_config();
    rejected_as_is(&bundle, key)
}

#[track_caller]
fn check_rejection(out: &Output, key: &str) {
    let text = out.fails();
    assert_eq!(out.code, 1, "{}", out.describe());
    assert!(
        text.to_lowercase().contains(&key.to_lowercase()),
        "the error does not name {key:?}: {}",
        out.describe()
    );
}

fn namespaces(c: &mut Value) -> &mut Vec<Value> {
    c["linux"]["namespaces"].as_array_mut().unwrap()
}

fn push_mount(c: &mut Value, mount: Value) {
    c["mounts"].as_array_mut().unwrap().push(mount);
}

/// runc reports most of these only when the step fails inside the container
/// (then cleans up); Berth refuses them by field before anything exists.
const RUNC_NAMES_NO_FIELD: &str = "runc's error does not name the config field";

#[test]
fn config_json_missing() {
    let bundle = Bundle::sleeper();
    rejected_as_is(&bundle, "config.json");
}

fn broken_json_bundle() -> Bundle {
    let bundle = Bundle::sleeper();
    fs::write(
        bundle.path().join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  oops\n}\n",
    )
    .unwrap();
    bundle
}

#[test]
fn config_json_syntax_error() {
    // runc: "invalid character 'o' looking for beginning of object key string".
    let out = rejected_as_is(&broken_json_bundle(), "");
    assert!(!out.combined().trim().is_empty(), "no error message at all");
}

#[test]
fn config_json_syntax_error_names_line_and_column_berth_only() {
    if !berth_only("runc's JSON errors give no position") {
        return;
    }
    let out = rejected_as_is(&broken_json_bundle(), "config.json");
    let text = out.combined().to_lowercase();
    assert!(
        text.contains("line 3") && text.contains("column"),
        "{}",
        out.describe()
    );
}

#[test]
fn unknown_namespace_type() {
    rejected(|c| namespaces(c).push(json!({ "type": "bogus" })), "bogus");
}

#[test]
fn duplicate_namespace() {
    // runc: `malformed spec file: duplicated ns {"pid" ""}`.
    let out = rejected(
        |c| namespaces(c).push(json!({ "type": "pid" })),
        "duplicate",
    );
    check_rejection(&out, "pid");
}

#[test]
fn missing_rootfs_dir() {
    rejected(
        |c| c["root"]["path"] = json!("no-such-rootfs"),
        "no-such-rootfs",
    );
}

#[test]
fn empty_args() {
    rejected(|c| c["process"]["args"] = json!([]), "args");
}

#[test]
fn nonexistent_executable_fails_at_create() {
    let out = rejected(|c| c["process"]["args"] = json!(["/bin/nope"]), "/bin/nope");
    // Engines match runc's exact words to map this to exit 127 (docker, podman).
    check_rejection(&out, "stat /bin/nope: no such file or directory");
}

/// config.md "Specification version": compatibility holds only within a major version,
/// so a 1.x runtime cannot honour a 2.0.0 config. runc 1.1.5 does not check.
#[test]
fn unsupported_oci_version_major_berth_only() {
    if !berth_only("runc 1.1.5 does not check ociVersion") {
        return;
    }
    rejected(|c| c["ociVersion"] = json!("2.0.0"), "2.0.0");
}

#[test]
fn hostname_without_uts_namespace() {
    // runc: "unable to set hostname without a private UTS namespace".
    let out = rejected(
        |c| namespaces(c).retain(|ns| ns["type"] != "uts"),
        "hostname",
    );
    check_rejection(&out, "uts");
}

#[test]
fn invalid_container_ids() {
    let bundle = Bundle::sleeper();
    bundle.write_config();
    let rt = Runtime::new();
    // runc: "invalid container ID format", "container id cannot be empty".
    for id in ["a/b", "..", ""] {
        let out = rt.cmd(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
        check_rejection(&out, "container id");
        let root = rt.root();
        let entries: Vec<_> = fs::read_dir(&root)
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        assert!(
            entries.is_empty(),
            "create with id {id:?} left {entries:?} in {}",
            root.display()
        );
        rt.assert_nothing_left("nonexistent-id", &bundle);
    }
}

#[test]
fn duplicate_id_fails_and_leaves_the_first_alone() {
    let first = Bundle::sleeper();
    let second = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &first);
    let before = rt.state(&id);

    let out = rt.create(&id, &second, &[]);
    check_rejection(&out, "already exists");
    assert_eq!(rt.state(&id), before);
    // Nothing of the second attempt may remain: only its bundle is its own.
    let second_leftovers = berth_conformance::leftovers(&rt.root(), "unused-id", second.path());
    assert!(second_leftovers.is_empty(), "{second_leftovers:?}");
}

/// A step that fails inside the container's setup, after namespaces, cgroup and
/// some mounts exist, must still leave nothing behind.
#[test]
fn a_mount_that_fails_midway_leaves_nothing() {
    rejected(
        |c| {
            push_mount(
                c,
                json!({ "destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=bogus"] }),
            )
        },
        "/mnt/x",
    );
}

#[test]
fn a_bind_mount_of_a_missing_host_path_is_refused() {
    rejected(
        |c| {
            let mount = json!({ "destination": "/data", "type": "bind", "source": "/no/such/host/dir", "options": ["rbind"] });
            c["mounts"].as_array_mut().unwrap().push(mount);
        },
        "/no/such/host/dir",
    );
}

/// What this version of Berth cannot apply yet is refused by name, never run
/// with less isolation than asked (runc supports these, hence berth_only).
#[test]
fn unsupported_fields_are_refused_berth_only() {
    if !berth_only("runc applies these fields") {
        return;
    }
    rejected(
        |c| c["linux"]["intelRdt"] = json!({ "closID": "x" }),
        "intelRdt",
    );
}

fn host_has_apparmor() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with('Y'))
}

fn host_has_selinux() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// config.md "apparmorProfile"/"selinuxLabel": a label the host cannot apply is an
/// error naming the field, never a silently unconfined container (runc errors too).
#[test]
fn security_labels_the_host_cannot_apply_are_refused() {
    if host_has_apparmor() {
        skip("the host has AppArmor: a profile here would be applied");
    } else {
        rejected(
            |c| c["process"]["apparmorProfile"] = json!("berth-test"),
            "apparmor",
        );
    }
    if host_has_selinux() {
        skip("the host has SELinux: a label here would be applied");
    } else {
        rejected(
            |c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
            "selinux",
        );
    }
}

/// The same for `exec --apparmor` and `--process-label`: refused, the container untouched.
#[test]
fn exec_security_labels_the_host_cannot_apply_are_refused() {
    if host_has_apparmor() || host_has_selinux() {
        skip("the host has an LSM that would apply the label");
        return;
    }
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    for (flag, key) in [("--apparmor", "apparmor"), ("--process-label", "selinux")] {
        let out = rt.cmd(&["exec", flag, "berth-test", &id, "true"]);
        let text = out.fails();
        assert!(
            text.to_lowercase().contains(key),
            "the error does not name {key}: {}",
            out.describe()
        );
    }
    assert_eq!(rt.state(&id)["status"], "running");
    rt.kill_and_delete(&id, &bundle);
}

/// `--systemd-cgroup` where systemd is not the init (our machines and CI): a clear
/// error naming the flag, before anything exists.
#[test]
fn systemd_cgroup_without_systemd_is_refused_berth_only() {
    if Path::new("/run/systemd/system").exists() {
        skip("systemd is this host's init");
        return;
    }
    if !berth_only("runc's error there is its D-Bus client's") {
        return;
    }
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:berth:x"));
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.cmd(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    let text = out.fails();
    assert_eq!(out.code, 1, "{}", out.describe());
    assert!(
        text.contains("--systemd-cgroup") && text.contains("systemd is not running"),
        "unclear error: {}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
    assert!(
        cgroups_named("berth-x.scope").is_empty(),
        "a cgroup was left: {:?}",
        cgroups_named("berth-x.scope")
    );
}

/// runc's systemd driver takes only `slice:prefix:name`, and says so before it asks systemd.
#[test]
fn systemd_cgroups_path_must_be_slice_prefix_name() {
    for path in ["/plain/path", "system.slice:only-two", "a:b:c:d"] {
        let mut bundle = Bundle::sleeper();
        bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
        bundle.write_config();
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.cmd(&[
            "--systemd-cgroup",
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ]);
        // logrus's text form escapes the quotes: match the words around them.
        let text = out.fails();
        for words in [
            "expected cgroupsPath to be of format",
            "slice:prefix:name",
            "for systemd cgroups, got",
            path,
        ] {
            assert!(
                text.contains(words),
                "{words:?} missing: {}",
                out.describe()
            );
        }
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// config-linux.md "User namespace mappings": a new user namespace with no mappings
/// would leave the container's root unmapped (runc refuses it too).
#[test]
fn a_new_user_namespace_without_mappings_is_refused() {
    rejected(
        |c| namespaces(c).push(json!({ "type": "user" })),
        "mappings",
    );
}

/// config-linux.md "Sysctl": only namespaced keys can be set for one container;
/// a host-wide one would change the host (runc refuses it too).
#[test]
fn a_host_wide_sysctl_is_refused() {
    // The host's own value: should a runtime wrongly write it, the host is unchanged.
    let current = fs::read_to_string("/proc/sys/kernel/panic")
        .unwrap()
        .trim()
        .to_string();
    rejected(
        |c| c["linux"]["sysctl"] = json!({ "kernel.panic": current }),
        "kernel.panic",
    );
}

/// config.md "POSIX-platform Mounts": the type is one "supported by the kernel
/// as listed in /proc/filesystems" unless the mount is a bind mount. runc finds
/// out when the mount fails in the container ("no such device").
#[test]
fn a_mount_of_an_unknown_filesystem_type() {
    let mount = json!({ "destination": "/mnt/x", "type": "no-such-fs", "source": "none" });
    let out = rejected(|c| push_mount(c, mount), "/mnt/x");
    if berth_only(RUNC_NAMES_NO_FIELD) {
        check_rejection(&out, "mounts[7].type");
        check_rejection(&out, "no-such-fs");
    }
}

fn one_device(device: Value) -> impl FnOnce(&mut Value) {
    move |c| c["linux"]["devices"] = json!([device])
}

#[test]
fn a_device_with_a_negative_major() {
    // runc: "error creating device nodes: cannot mkdev() device with wildcards".
    let device = json!({ "path": "/dev/bad", "type": "c", "major": -1, "minor": 1 });
    let out = rejected(one_device(device), "device");
    if berth_only(RUNC_NAMES_NO_FIELD) {
        check_rejection(&out, "linux.devices[0].major -1");
    }
}

/// mknod(2) takes 12 bits of major: 5000 would become another device (904).
#[test]
fn a_device_major_mknod_cannot_take_berth_only() {
    if !berth_only("runc 1.1.5 truncates the number and creates device 904:1") {
        return;
    }
    let device = json!({ "path": "/dev/bad", "type": "c", "major": 5000, "minor": 1 });
    rejected(one_device(device), "linux.devices[0].major 5000");
}

#[test]
fn a_device_of_an_unknown_type() {
    // runc: `invalid device type "weird"`.
    let device = json!({ "path": "/dev/bad", "type": "weird", "major": 1, "minor": 1 });
    let out = rejected(one_device(device), "weird");
    if berth_only(RUNC_NAMES_NO_FIELD) {
        check_rejection(&out, "linux.devices[0].type");
    }
}

/// config.md "POSIX process": the runtime MUST generate an error for an rlimit
/// type that cannot be mapped to a kernel interface.
#[test]
fn an_rlimit_that_does_not_exist() {
    // runc: "wrong rlimit value: RLIMIT_FOO".
    let rlimit = json!({ "type": "RLIMIT_FOO", "hard": 1, "soft": 1 });
    let out = rejected(
        |c| c["process"]["rlimits"].as_array_mut().unwrap().push(rlimit),
        "RLIMIT_FOO",
    );
    if berth_only(RUNC_NAMES_NO_FIELD) {
        check_rejection(&out, "process.rlimits[1].type");
    }
}

/// config.md "Linux Process" since runtime-spec 1.1: an unknown capability
/// "MUST be logged as a warning", and runtimes "SHOULD NOT fail". runc 1.1.5
/// warns and runs without it; Berth refuses, by name, to run a process with
/// other capabilities than its config lists (SHOULD NOT allows that).
#[test]
fn an_unknown_capability_berth_only() {
    if !berth_only("runc 1.1.5 warns about an unknown capability and runs without it") {
        return;
    }
    let caps = |c: &mut Value| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_FLY"))
    };
    let out = rejected(caps, "CAP_FLY");
    check_rejection(&out, "process.capabilities.bounding[3]");
}

/// config.md "POSIX-platform Hooks": a hook's path MUST be absolute.
#[test]
fn a_relative_hook_path() {
    // runc: "error running hook #0: fork/exec hooks/true: no such file or directory".
    let hooks = json!({ "createRuntime": [{ "path": "hooks/true" }] });
    let out = rejected(|c| c["hooks"] = hooks, "hooks/true");
    if berth_only(RUNC_NAMES_NO_FIELD) {
        check_rejection(&out, "hooks.createRuntime[0].path");
    }
}

/// config.md "POSIX-platform Hooks": "If set, timeout MUST be greater than zero."
#[test]
fn a_hook_timeout_that_is_not_positive_berth_only() {
    // runc only finds out when its 0s timer beats the hook ("hook ran past specified
    // timeout of 0.0s"), which is a race: sometimes the hook wins and create succeeds.
    if !berth_only("runc's refusal races its timer against the hook") {
        return;
    }
    for timeout in [0, -1] {
        let hooks = json!({ "createRuntime": [{ "path": "/bin/true", "timeout": timeout }] });
        let out = rejected(|c| c["hooks"] = hooks, "timeout");
        check_rejection(
            &out,
            &format!("hooks.createRuntime[0].timeout must be greater than zero, got {timeout}"),
        );
    }
}

/// A `--pidfd-socket` nobody listens on fails create and exec before anything
/// exists, naming the socket, and leaves nothing behind.
#[test]
fn a_pidfd_socket_nobody_listens_on_berth_only() {
    if !berth_only("runc 1.1 has no --pidfd-socket") {
        return;
    }
    // An init that never forks, so its process list only changes if exec leaves one.
    let bundle = Bundle::busybox(&["sleep", "1000000"]);
    let rt = Runtime::new();
    let refused_id = rt.new_id();
    let out = rt.create(
        &refused_id,
        &bundle,
        &["--pidfd-socket", "/tmp/berth-no-such.sock"],
    );
    check_rejection(&out, "pidfd socket /tmp/berth-no-such.sock");
    rt.assert_nothing_left(&refused_id, &bundle);

    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let before = rt.cmd(&["ps", "--format", "json", &id]).ok().stdout.clone();
    let out = rt.cmd(&[
        "exec",
        "--pidfd-socket",
        "/tmp/berth-no-such.sock",
        &id,
        "true",
    ]);
    assert!(
        out.fails().contains("pidfd socket /tmp/berth-no-such.sock"),
        "{}",
        out.describe()
    );
    assert_eq!(
        rt.cmd(&["ps", "--format", "json", &id]).ok().stdout,
        before,
        "a refused exec left a process"
    );
    rt.kill_and_delete(&id, &bundle);
}

/// The pid file is written while the init sets itself up; a create that
/// fails there leaves neither the pid file nor its temporary twin.
#[test]
fn a_failed_create_leaves_no_pid_file() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["process"]["args"] = json!(["/bin/nope"]));
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let dir = berth_conformance::HostDir::new();
    let pid_file = dir.path().join("init.pid");
    let out = rt.cmd(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    check_rejection(&out, "/bin/nope");
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "files left beside the pid file: {left:?}");
    rt.assert_nothing_left(&id, &bundle);
}
