//! Hostile rootfs trees and ids: symlink loops and escapes on mount
//! destinations, masked and read-only paths and devices; a thousand mounts.
//! hostile_nodes_and_ids.rs has device nodes, fifos, /proc and ids. Every
//! case either works, confined to the rootfs and the state root, or fails
//! with an error naming what it refused, and leaves nothing behind.

use std::fs;
use std::os::unix::fs::symlink;

use berth_conformance::hostile_tree::{
    chain, confined, host_probe, inside, own_dev, plant_link, refused, Kind, UP,
};
use berth_conformance::{
    berth_only, bind_mount, mounts_mentioning, tmpfs_mount, unique_name, Bundle, HostDir, Runtime,
};
use serde_json::json;

// ---- symlink loops ----------------------------------------------------------

#[test]
fn a_two_link_loop_on_a_mount_destination_is_refused() {
    let mut bundle = Bundle::busybox(&["true"]);
    plant_link(&bundle, "/loop-a", "loop-b");
    plant_link(&bundle, "/loop-b", "/loop-a");
    bundle.add_mount(tmpfs_mount("/loop-a", &[]));
    refused(&Runtime::new(), &bundle, "/loop-a");
}

#[test]
fn a_link_to_itself_on_a_mount_destination_is_refused() {
    let mut bundle = Bundle::busybox(&["true"]);
    plant_link(&bundle, "/self-loop", "self-loop");
    bundle.add_mount(bind_mount(
        &bundle.path().join("config.json"),
        "/self-loop/x",
        &["bind"],
    ));
    refused(&Runtime::new(), &bundle, "/self-loop/x");
}

/// A masked or read-only path that loops cannot be resolved, let alone
/// covered: refused by name rather than skipped.
#[test]
fn a_looping_masked_or_readonly_path_is_refused() {
    for key in ["maskedPaths", "readonlyPaths"] {
        let mut bundle = Bundle::busybox(&["true"]);
        plant_link(&bundle, "/loop-a", "loop-b");
        plant_link(&bundle, "/loop-b", "loop-a");
        bundle.edit(|c| {
            c["linux"][key]
                .as_array_mut()
                .unwrap()
                .push(json!("/loop-a/x"))
        });
        refused(&Runtime::new(), &bundle, "/loop-a/x");
    }
}

/// Linux follows at most 40 links in one lookup, and so does Berth in the
/// rootfs; runc's securejoin follows up to 255 and mounts at the end of the chain.
#[test]
fn a_chain_of_fifty_links_on_a_mount_destination() {
    let mut bundle = Bundle::busybox(&["stat", "-f", "-c", "%T", "/end"]);
    let head = chain(&bundle, 50);
    bundle.add_mount(tmpfs_mount(&head, &[]));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    if out.success() {
        assert_eq!(
            out.stdout,
            "tmpfs\n",
            "the mount is not at the chain's end: {}",
            out.describe()
        );
    }
    if berth_only("runc 1.1.5 follows up to 255 links, the kernel 40") {
        out.fails_with("/hop0");
        out.fails_with("symbolic links");
    }
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_chain_of_three_hundred_links_on_a_mount_destination_is_refused() {
    let mut bundle = Bundle::busybox(&["true"]);
    let head = chain(&bundle, 300);
    bundle.add_mount(tmpfs_mount(&format!("{head}/x"), &[]));
    refused(&Runtime::new(), &bundle, "/hop0/x");
}

// ---- escapes: absolute links and `..` ---------------------------------------

#[test]
fn an_absolute_symlink_on_a_mount_destination_resolves_inside_the_rootfs() {
    for kind in [Kind::Tmpfs, Kind::Bind] {
        let host = HostDir::new();
        let target = host.path().to_owned();
        confined(
            kind,
            |b| plant_link(b, "/data", &target),
            "/data",
            target.to_str().unwrap(),
            &host,
        );
    }
}

#[test]
fn a_symlink_up_to_the_host_root_on_a_mount_destination_stays_in_the_rootfs() {
    for kind in [Kind::Tmpfs, Kind::Bind] {
        let probe = host_probe();
        let name = probe.file_name().unwrap().to_str().unwrap().to_owned();
        // From rootfs/up, `UP/tmp` on the host is /tmp; in the rootfs, /tmp.
        let dest = format!("/up/tmp/{name}");
        confined(
            kind,
            |b| plant_link(b, "/up", UP),
            &dest,
            &format!("/tmp/{name}"),
            &probe,
        );
        assert!(
            !probe.exists(),
            "{kind:?}: {} was made on the host",
            probe.display()
        );
    }
}

#[test]
fn dot_dot_in_an_absolute_mount_destination_is_clamped_at_the_rootfs() {
    for kind in [Kind::Tmpfs, Kind::Bind] {
        let probe = host_probe();
        let name = probe.file_name().unwrap().to_str().unwrap().to_owned();
        confined(
            kind,
            |_| {},
            &format!("/{UP}/tmp/{name}"),
            &format!("/tmp/{name}"),
            &probe,
        );
        assert!(
            !probe.exists(),
            "{kind:?}: {} was made on the host",
            probe.display()
        );
    }
}

/// Destinations through procfs's magic links (/proc/self/root, /proc/1/cwd,
/// /proc/self/fd/N), reachable once /proc is mounted: Berth refuses them
/// (`RESOLVE_NO_MAGICLINKS`), runc 1.1.5 reads the link and resolves its
/// text inside the rootfs. Neither reaches the host.
#[test]
fn a_mount_destination_through_a_proc_magic_link() {
    for through in ["/proc/self/root", "/proc/1/cwd"] {
        let probe = host_probe();
        let dest = format!("{through}{}", probe.display());
        let mut bundle = Bundle::busybox(&["true"]);
        bundle.add_mount(tmpfs_mount(&dest, &[]));
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.run(&id, &bundle, &[]);
        assert!(
            !probe.exists(),
            "{} was made on the host: {}",
            probe.display(),
            out.describe()
        );
        if berth_only("runc 1.1.5 resolves the magic link's text inside the rootfs") {
            out.fails_with(&dest);
        }
        rt.cmd(&["delete", "--force", &id]);
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// config.md "Mounts" (spec 1.3): a relative destination is relative to "/",
/// so one that climbs with `..` stays in the rootfs as any absolute one does:
/// the tmpfs lands at the container's /tmp/<name>, never on the host
/// (runc 1.1.5 too, with a warning).
#[test]
fn a_relative_mount_destination_climbing_out_never_reaches_the_host() {
    let probe = host_probe();
    let name = probe.file_name().unwrap().to_str().unwrap().to_owned();
    let inside = format!("grep -c ' /tmp/{name} ' /proc/self/mountinfo");
    let mut bundle = Bundle::busybox(&["sh", "-c", &inside]);
    bundle.add_mount(tmpfs_mount(&format!("{UP}/tmp/{name}"), &[]));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(
        !probe.exists(),
        "{} was made on the host: {}",
        probe.display(),
        out.describe()
    );
    assert_eq!(out.ok().stdout.trim(), "1", "{}", out.describe());
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// CVE-2019-19921 family for masked and read-only paths: each leads out of the
/// rootfs (an absolute link, a link up, `..` in the path) to a host directory
/// with a file; the same tree exists inside the rootfs, and that is what gets
/// masked or made read-only, never the host's.
#[test]
fn masked_and_readonly_paths_leading_out_are_applied_inside_the_rootfs() {
    let host = HostDir::new();
    fs::write(host.join("secret"), "host\n").unwrap();
    fs::create_dir_all(host.join("ro")).unwrap();
    let hp = host.path().to_str().unwrap().to_owned();
    let mut bundle = Bundle::busybox(&[]);
    let mirror = inside(&bundle, host.path());
    fs::create_dir_all(mirror.join("ro")).unwrap();
    fs::create_dir_all(mirror.join("ro2")).unwrap();
    fs::write(mirror.join("secret"), "inner\n").unwrap();
    fs::write(mirror.join("secret2"), "inner\n").unwrap();
    plant_link(&bundle, "/abs-secret", host.join("secret"));
    plant_link(&bundle, "/up", UP);
    plant_link(&bundle, "/abs-ro", host.join("ro"));
    bundle.edit(|c| {
        let masked = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        masked.push(json!("/abs-secret"));
        masked.push(json!(format!("/up{hp}/secret2")));
        let ro = c["linux"]["readonlyPaths"].as_array_mut().unwrap();
        ro.push(json!("/abs-ro"));
        ro.push(json!(format!("/{UP}{hp}/ro2")));
    });
    let script = format!(
        "cat /abs-secret {hp}/secret2; echo end; \
         touch /abs-ro/f 2>/dev/null || echo ro1; touch {hp}/ro2/f 2>/dev/null || echo ro2"
    );
    bundle.set_args(&["sh", "-c", &script]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    assert_eq!(
        out, "end\nro1\nro2\n",
        "a path was not masked or made read-only inside the rootfs"
    );
    assert_eq!(fs::read_to_string(host.join("secret")).unwrap(), "host\n");
    fs::write(host.join("ro/f"), "").expect("the host directory stays writable");
    assert!(
        mounts_mentioning(&host).is_empty(),
        "{:?}",
        mounts_mentioning(&host)
    );
}

/// A listed device whose path the rootfs made a symlink out of it: config-linux.md
/// says a file at the path that is not the device is an error; runc 1.1.5 follows
/// the link inside the rootfs and makes the node there. Neither touches the host.
#[test]
fn a_device_path_that_is_a_symlink_out_of_the_rootfs() {
    let probe = host_probe();
    let mut bundle = Bundle::busybox(&["stat", "-L", "-c", "%F %t:%T", "/dev/evil"]);
    fs::create_dir_all(bundle.rootfs().join("dev")).unwrap();
    plant_link(&bundle, "/dev/evil", probe.join("node"));
    plant_link(&bundle, "/dev/up", format!("{UP}{}", probe.display()));
    bundle.edit(|c| {
        own_dev(c);
        // A link in the parent is followed inside the rootfs (as any path is);
        // the link at the path itself is what the spec calls an error.
        c["linux"]["devices"] = json!([
            { "path": "/dev/up/node", "type": "c", "major": 1, "minor": 3 },
            { "path": "/dev/evil", "type": "c", "major": 1, "minor": 3 },
        ]);
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(
        !probe.exists(),
        "{} was made on the host: {}",
        probe.display(),
        out.describe()
    );
    if out.success() {
        assert_eq!(
            out.stdout,
            "character special file 1:3\n",
            "{}",
            out.describe()
        );
    }
    if berth_only("runc 1.1.5 makes the node where the link leads, inside the rootfs") {
        out.fails_with("/dev/evil");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// The bundle's rootfs may itself be a symlink (the host's choice, trusted):
/// Berth runs the container on its target, runc 1.1.5 refuses it ("invalid
/// rootfs: not an absolute path, or a symlink"); the spec says neither. Either
/// way nothing is left on the link or its target.
#[test]
fn a_rootfs_that_is_a_symlink_is_followed_and_left_clean() {
    let real = HostDir::new();
    let mut bundle = Bundle::busybox(&["sh", "-c", "echo hi > /tmp/f; cat /tmp/f"]);
    fs::rename(bundle.rootfs(), real.join("rootfs")).unwrap();
    symlink(real.join("rootfs"), bundle.rootfs()).unwrap();
    bundle.edit(|c| c["root"]["readonly"] = json!(false));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    if berth_only("runc 1.1.5 refuses a rootfs that is a symlink") {
        assert_eq!(out.ok().stdout, "hi\n");
        assert!(
            real.join("rootfs/tmp/f").exists(),
            "the container did not run on the link's target"
        );
    } else {
        out.fails_with("rootfs");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
    assert!(
        mounts_mentioning(&real).is_empty(),
        "{:?}",
        mounts_mentioning(&real)
    );
}

// ---- a thousand mounts -------------------------------------------------------

/// 600 tmpfs and 400 bind mounts, each tagged by a source name of its own in
/// the mount table: all present in the container, none ever on the host's table.
#[test]
fn a_thousand_mounts_work_and_leave_nothing() {
    let tag = format!("hostile-{}", unique_name());
    let shared = HostDir::new();
    fs::write(shared.join("f"), "x").unwrap();
    let mut bundle = Bundle::busybox(&[]);
    for i in 0..600 {
        bundle.add_mount(json!({ "destination": format!("/m/t{i}"), "type": "tmpfs", "source": tag, "options": ["size=64k"] }));
    }
    for i in 0..400 {
        bundle.add_mount(bind_mount(
            shared.path(),
            &format!("/m/b{i}"),
            &["bind", "ro"],
        ));
    }
    let host_tagged = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&tag))
            .count()
    };
    let rt = Runtime::new();
    let id = rt.new_id();
    let script = format!("grep -c ' {tag} ' /proc/self/mountinfo; grep -c ' /m/b[0-9]* ' /proc/self/mountinfo; cat /m/b399/f; echo");
    bundle.set_args(&["sh", "-c", &script]);
    let created = rt.create(&id, &bundle, &[]);
    created.ok();
    assert_eq!(
        host_tagged(),
        0,
        "the container's mounts reached the host's table"
    );
    rt.start(&id).ok();
    rt.wait_status(&id, "stopped");
    let printed = created.stdout_now();
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
    assert_eq!(host_tagged(), 0);
    assert!(mounts_mentioning(&shared).is_empty());
    assert_eq!(printed, "600\n400\nx\n", "not every mount was made");
}

// ---- device nodes, fifos and sockets in odd places --------------------------
