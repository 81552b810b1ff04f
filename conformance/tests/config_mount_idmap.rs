//! config.md "POSIX-platform Mounts": `uidMappings`/`gidMappings` on a mount and the
//! `idmap`/`ridmap` options (runtime-spec 1.2), on real containers that have no user
//! namespace of their own: the mount's mapping alone decides the owners seen through it.

use std::fs;
use std::os::unix::fs::MetadataExt;

use berth_conformance::{
    berth_only, bind_mount as bind, run_and_read_mounts, tmpfs_mount as tmpfs, Bundle, HostDir,
    Runtime,
};
use serde_json::{json, Value};

/// Newer than runc 1.1: runc 1.1.5 ignores mounts' uidMappings/gidMappings.
const IDMAP: &str = "runc 1.1 has no idmapped mounts (runtime-spec 1.2)";

fn id_mapping(container_id: u32, host_id: u32) -> Value {
    json!([{ "containerID": container_id, "hostID": host_id, "size": 1 }])
}

/// An idmapped bind: files owned by 1000 on disk show as 2000 through the mount, and a
/// file a uid-2000 process creates there lands as 1000 on the host.
#[test]
fn idmapped_bind_maps_owners_both_ways() {
    if !berth_only(IDMAP) {
        return;
    }
    let host = HostDir::new();
    fs::write(host.join("file"), "owned by 1000\n").unwrap();
    for path in [host.path(), &host.join("file")] {
        std::os::unix::fs::chown(path, Some(1000), Some(1000)).unwrap();
    }
    let mut bundle = Bundle::busybox(&[]);
    let mut mount = bind(&host, "/data", &["rbind", "idmap"]);
    mount["uidMappings"] = id_mapping(1000, 2000);
    mount["gidMappings"] = id_mapping(1000, 2000);
    bundle.add_mount(mount);
    bundle.config_mut()["process"]["user"] = json!({ "uid": 2000, "gid": 2000 });
    let script =
        "stat -c '%u %g' /data /data/file; echo made > /data/made && stat -c '%u %g' /data/made";
    let (out, _) = run_and_read_mounts(&Runtime::new(), &mut bundle, script);
    assert_eq!(out, "2000 2000\n2000 2000\n2000 2000\n");
    let made = fs::metadata(host.join("made")).expect("the file reached the host");
    assert_eq!((made.uid(), made.gid()), (1000, 1000), "owner on the host");
    assert_eq!(fs::read_to_string(host.join("made")).unwrap(), "made\n");
}

/// `idmap` maps only the bind's top mount; `ridmap` maps its submounts too.
#[test]
fn ridmap_maps_submounts_and_idmap_does_not() {
    if !berth_only(IDMAP) {
        return;
    }
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(tmpfs("/tree", &["uid=1000", "gid=1000"]));
    bundle.add_mount(tmpfs("/tree/sub", &["uid=1000", "gid=1000"]));
    let tree = bundle.rootfs().join("tree");
    for (destination, option) in [("/idmap", "idmap"), ("/ridmap", "ridmap")] {
        let mut mount = bind(&tree, destination, &["rbind", option]);
        mount["uidMappings"] = id_mapping(1000, 2000);
        mount["gidMappings"] = id_mapping(1000, 2000);
        bundle.add_mount(mount);
    }
    let (out, _) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "stat -c '%n %u' /idmap /idmap/sub /ridmap /ridmap/sub",
    );
    assert_eq!(
        out,
        "/idmap 2000\n/idmap/sub 1000\n/ridmap 2000\n/ridmap/sub 2000\n"
    );
}

/// config.md: mappings are for bind mounts here, must come in pairs, and `idmap` without
/// mappings needs a user namespace to take them from; each is refused naming the field.
#[test]
fn idmap_misuse_is_refused_naming_the_field() {
    if !berth_only(IDMAP) {
        return;
    }
    let host = HostDir::new();
    let mut on_tmpfs = tmpfs("/t", &["idmap"]);
    on_tmpfs["uidMappings"] = id_mapping(0, 1000);
    on_tmpfs["gidMappings"] = id_mapping(0, 1000);
    let mut uid_only = bind(&host, "/d", &["rbind", "idmap"]);
    uid_only["uidMappings"] = id_mapping(0, 1000);
    let bare = bind(&host, "/d", &["rbind", "ridmap"]);
    for (mount, needle) in [
        (on_tmpfs, "uidMappings"),
        (uid_only, "gidMappings"),
        (bare, "ridmap"),
    ] {
        let mut bundle = Bundle::busybox(&["true"]);
        bundle.add_mount(mount);
        let index = bundle.config()["mounts"].as_array().unwrap().len() - 1;
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.run(&id, &bundle, &[]);
        out.fails_with(&format!("mounts[{index}]"))
            .fails_with(needle);
        rt.assert_nothing_left(&id, &bundle);
    }
}
