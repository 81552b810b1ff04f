//! Idmapped mounts: one rule per test, on a spec with a single mount.
use super::*;
use serde_json::json;

fn spec_with(mount: Value, linux: Value) -> Spec {
    let config = json!({
        "ociVersion": "1.2.1",
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}, mount],
        "linux": linux
    });
    serde_json::from_value(config).expect("a spec")
}

fn mapping() -> Value {
    json!([{"containerID": 1000, "hostID": 2000, "size": 1}])
}

fn bind(options: &[&str]) -> Value {
    json!({"destination": "/data", "type": "bind", "source": "/srv", "options": options})
}

fn no_user_namespace() -> Value {
    json!({"namespaces": [{"type": "mount"}]})
}

fn check(mount: Value, linux: Value) -> Result<(), String> {
    check_idmapped_mounts(&spec_with(mount, linux)).map_err(|e| e.to_string())
}

#[test]
fn bind_with_both_mappings_is_valid() {
    for options in [&["rbind", "idmap"][..], &["rbind", "ridmap"], &["bind"]] {
        let mut mount = bind(options);
        mount["uidMappings"] = mapping();
        mount["gidMappings"] = mapping();
        assert_eq!(check(mount, no_user_namespace()), Ok(()), "{options:?}");
    }
}

#[test]
fn mappings_come_in_pairs() {
    let mut uid_only = bind(&["rbind", "idmap"]);
    uid_only["uidMappings"] = mapping();
    let err = check(uid_only, no_user_namespace()).unwrap_err();
    assert!(
        err.starts_with(
            "mounts[1].gidMappings (destination \"/data\"): must be given along with uidMappings"
        ),
        "{err}"
    );

    let mut gid_only = bind(&["rbind", "idmap"]);
    gid_only["gidMappings"] = mapping();
    let err = check(gid_only, no_user_namespace()).unwrap_err();
    assert!(err.starts_with("mounts[1].uidMappings"), "{err}");
}

#[test]
fn mappings_on_a_non_bind_mount_are_refused() {
    let mut tmpfs =
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]});
    tmpfs["uidMappings"] = mapping();
    tmpfs["gidMappings"] = mapping();
    let err = check(tmpfs, no_user_namespace()).unwrap_err();
    assert_eq!(
        err,
        "mounts[1].uidMappings (destination \"/t\"): idmapped mounts are supported for bind mounts only"
    );
}

#[test]
fn idmap_option_on_a_non_bind_mount_is_refused() {
    let tmpfs =
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ridmap"]});
    let err = check(tmpfs, no_user_namespace()).unwrap_err();
    assert!(
        err.starts_with("mounts[1].options (destination \"/t\"): idmapped mounts"),
        "{err}"
    );
}

#[test]
fn idmap_without_mappings_needs_a_user_namespace_with_mappings() {
    let err = check(bind(&["rbind", "idmap"]), no_user_namespace()).unwrap_err();
    assert!(
        err.starts_with(
            "mounts[1].options (destination \"/data\"): idmap needs the mount's uidMappings"
        ),
        "{err}"
    );
    let err = check(
        bind(&["rbind", "ridmap"]),
        json!({"namespaces": [{"type": "user"}]}),
    )
    .unwrap_err();
    assert!(
        err.contains("ridmap needs"),
        "a user namespace without mappings has none to give: {err}"
    );

    let user_namespace = json!({
        "namespaces": [{"type": "user"}, {"type": "mount"}],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
    });
    assert_eq!(check(bind(&["rbind", "ridmap"]), user_namespace), Ok(()));
}

#[test]
fn empty_mappings_count_as_none() {
    let mut mount = bind(&["rbind"]);
    mount["uidMappings"] = json!([]);
    mount["gidMappings"] = json!([]);
    assert_eq!(check(mount, no_user_namespace()), Ok(()));
}

#[test]
fn plain_mounts_are_not_checked() {
    assert_eq!(check(bind(&["rbind", "ro"]), no_user_namespace()), Ok(()));
    let tmpfs = json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs"});
    assert_eq!(check(tmpfs, no_user_namespace()), Ok(()));
}
