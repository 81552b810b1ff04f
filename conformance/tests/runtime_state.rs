//! runtime.md "State" and "Query State": the JSON `state` prints, as go-runc decodes it.

use std::time::Duration;

use berth_conformance::{is_rfc3339, top_level_keys, wait_until, Bundle, Runtime};
use serde_json::json;

#[test]
fn state_has_runc_fields_in_runc_order() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let out = rt.cmd(&["state", &id]);
    out.ok();
    // go-runc decodes stdout+stderr together, so a successful state writes nothing else.
    assert_eq!(out.stderr, "", "state wrote to stderr");
    assert_eq!(
        top_level_keys(&out.stdout),
        [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner"
        ],
        "{}",
        out.stdout
    );
    let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(state["id"], id.as_str());
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{state}"
    );
    assert!(state["owner"].is_string(), "{state}");
}

#[test]
fn state_lists_annotations_between_created_and_owner() {
    let mut bundle = Bundle::sleeper();
    bundle.config_mut()["annotations"] = json!({ "org.example.key": "value" });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let out = rt.cmd(&["state", &id]);
    let keys = top_level_keys(out.ok().stdout.as_str());
    assert_eq!(
        keys[6..],
        ["created", "annotations", "owner"],
        "{}",
        out.stdout
    );
    let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(state["annotations"], json!({ "org.example.key": "value" }));
}

#[test]
fn state_created_is_rfc3339_and_stable() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let created = rt.state(&id)["created"]
        .as_str()
        .expect("created is a string")
        .to_owned();
    assert!(is_rfc3339(&created), "created {created:?} is not RFC 3339");
    rt.start(&id).ok();
    assert_eq!(
        rt.state(&id)["created"],
        created.as_str(),
        "created changed on start"
    );
}

#[test]
fn state_bundle_and_rootfs_are_absolute_even_for_a_relative_bundle() {
    let bundle = Bundle::sleeper();
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let parent = bundle.path().parent().unwrap();
    let relative = bundle.path().file_name().unwrap().to_str().unwrap();
    rt.cmd_in(parent, &["create", "--bundle", relative, &id])
        .ok();

    let state = rt.state(&id);
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap(), "{state}");
    assert_eq!(
        state["rootfs"],
        bundle.rootfs().to_str().unwrap(),
        "{state}"
    );
}

#[test]
fn state_pid_is_the_init_host_pid_and_zero_once_stopped() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // `start` returns once the init may go on, not once it has exec'd (runc's too).
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || comm() == "sh\n"),
        "state pid {pid} is not the container's init: {:?}",
        comm()
    );

    rt.kill(&id, Some("KILL")).ok();
    let state = rt.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
}
