//! `exec` goes by the config the container was created from, never the
//! bundle's config.json as it is at exec time: a bundle removed or edited
//! after create changes nothing for a later exec, which still gets the
//! container's seccomp profile and no_new_privileges (runc keeps its config
//! in its state for this reason).

use std::fs;

use berth_conformance::{Bundle, HostDir, Runtime};
use serde_json::{json, Value};

/// Seen from inside the exec'd process: its seccomp mode, its
/// no_new_privs bit, and a mkdir the container's profile refuses.
const PROBE: &str = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                     mkdir /dev/shm/probe 2>&1 || echo mkdir-refused";

fn confined(config: &mut Value) {
    config["process"]["noNewPrivileges"] = json!(true);
    config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]
    });
}

#[track_caller]
fn assert_confined(out: &berth_conformance::Output) {
    assert_eq!(out.code, 0, "{}", out.describe());
    let text = &out.stdout;
    assert!(text.contains("Seccomp:\t2"), "no seccomp filter: {text}");
    assert!(text.contains("NoNewPrivs:\t1"), "no no_new_privs: {text}");
    assert!(
        text.contains("Operation not permitted") && text.contains("mkdir-refused"),
        "the container's profile did not refuse mkdir: {text}"
    );
}

#[test]
fn exec_after_the_bundle_directory_is_removed_keeps_the_containers_seccomp_and_no_new_privs() {
    // The rootfs lives apart from the bundle (root.path is absolute), so
    // removing the bundle removes the config alone, as an engine that
    // unpacks a bundle per container and cleans it up early would.
    let mut rootfs_holder = Bundle::sleeper();
    rootfs_holder.edit(confined);
    let rootfs = rootfs_holder.rootfs();
    let bundle = HostDir::new();
    let mut config = rootfs_holder.config().clone();
    config["root"]["path"] = json!(rootfs);
    fs::write(bundle.join("config.json"), config.to_string()).unwrap();

    let rt = Runtime::new();
    let id = rt.new_id();
    rt.cmd(&["create", "--bundle", bundle.to_str().unwrap(), &id])
        .ok();
    rt.start(&id).ok();
    fs::remove_dir_all(bundle.path()).unwrap();

    let out = rt.cmd(&["exec", &id, "sh", "-c", PROBE]);
    assert_confined(&out);
    rt.kill_and_delete(&id, &rootfs_holder);
}

#[test]
fn exec_after_the_bundles_config_is_edited_keeps_the_containers_seccomp_and_no_new_privs() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(confined);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    // Someone drops the profile and no_new_privs from the bundle now.
    bundle.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"].as_object_mut().unwrap().remove("seccomp");
    });
    bundle.write_config();

    let out = rt.cmd(&["exec", &id, "sh", "-c", PROBE]);
    assert_confined(&out);
    rt.kill_and_delete(&id, &bundle);
}
