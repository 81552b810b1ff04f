//! The `tmpcopyup` mount option (runc's extension, which podman adds to every tmpfs it
//! asks for: `--read-only`, `--tmpfs`, `--mount type=tmpfs`): the new tmpfs starts with
//! a copy of what the rootfs held at its destination.
//!
//! The rootfs is the container's, so hostile: its symlinks, absolute or climbing out with
//! `..`, must be copied as links, never followed to the host's files.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::Path;

use berth_conformance::hostile_tree::{mknod, socket_file, UP};
use berth_conformance::{
    berth_only, bind_mount, has_option, mount_at, run_and_read_mounts, tmpfs_mount, Bundle,
    HostDir, Runtime,
};

fn write(path: &Path, contents: &str, mode: u32, owner: (u32, u32)) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chown(path, Some(owner.0), Some(owner.1)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32, owner: (u32, u32)) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    chown(path, Some(owner.0), Some(owner.1)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A host directory with a secret in it, which the rootfs's links point at.
fn host_secret() -> HostDir {
    let host = HostDir::new();
    fs::write(host.join("secret"), "HOST-SECRET\n").unwrap();
    host
}

/// Fills `<rootfs>/data`: files with modes and owners, a subdirectory, a relative link, and
/// links to the host directory `host` (absolute, and up through `..`) and to /etc/shadow.
/// Everything is readable by others: the container's root has no CAP_DAC_OVERRIDE.
fn populate(rootfs: &Path, host: &Path) {
    let data = rootfs.join("data");
    mkdir(&data, 0o751, (1000, 1001));
    write(&data.join("file"), "hello\n", 0o604, (1000, 1001));
    write(&data.join("setuid"), "#!/bin/sh\n", 0o4755, (0, 0));
    mkdir(&data.join("sub"), 0o1755, (1000, 1000));
    write(&data.join("sub/inner"), "inner\n", 0o664, (1000, 1000));
    mkdir(&data.join("sub/empty"), 0o705, (0, 0));
    mkdir(&data.join("shared"), 0o777, (0, 0));
    symlink("file", data.join("rel")).unwrap();
    lchown(data.join("rel"), Some(1000), Some(1001)).unwrap();
    symlink(host.join("secret"), data.join("abs")).unwrap();
    symlink(host, data.join("hostdir")).unwrap();
    let up = format!("{UP}{}", host.display());
    symlink(&up, data.join("sub/up")).unwrap();
    symlink("/etc/shadow", data.join("shadow")).unwrap();
}

const LISTING: &str = "cd /data && for f in $(find . | sort); do \
    stat -c '%n %a %u:%g %F' $f; done; \
    for l in rel abs hostdir shadow sub/up; do echo \"$l -> $(readlink $l)\"; done; \
    cat file sub/inner; cat abs hostdir/secret sub/up/secret 2>&1 | grep -c HOST-SECRET; \
    stat -c 'root %a %u:%g' /data; touch /data/new && echo writable";

#[test]
fn tmpfs_starts_with_the_rootfs_directory_and_its_links_are_copied_as_links() {
    let host = host_secret();
    let rt = Runtime::new();
    let mut bundle = Bundle::busybox(&[]);
    populate(&bundle.rootfs(), host.path());
    bundle.add_mount(tmpfs_mount("/data", &["nosuid", "nodev", "tmpcopyup"]));
    let (out, mounts) = run_and_read_mounts(&rt, &mut bundle, LISTING);

    let host_dir = host.display().to_string();
    let shared = if berth_only("runc 1.1.5 applies its umask to a copied directory's mode") {
        "./shared 777 0:0 directory"
    } else {
        "./shared 755 0:0 directory"
    };
    let expected = [
        // The tmpfs root takes the directory's mode (any tmpfs does), not its owner.
        ". 751 0:0 directory".to_owned(),
        "./abs 777 0:0 symbolic link".to_owned(),
        "./file 604 1000:1001 regular file".to_owned(),
        "./hostdir 777 0:0 symbolic link".to_owned(),
        "./rel 777 1000:1001 symbolic link".to_owned(),
        "./setuid 4755 0:0 regular file".to_owned(),
        "./shadow 777 0:0 symbolic link".to_owned(),
        shared.to_owned(),
        "./sub 1755 1000:1000 directory".to_owned(),
        "./sub/empty 705 0:0 directory".to_owned(),
        "./sub/inner 664 1000:1000 regular file".to_owned(),
        "./sub/up 777 0:0 symbolic link".to_owned(),
        "rel -> file".to_owned(),
        format!("abs -> {host_dir}/secret"),
        format!("hostdir -> {host_dir}"),
        "shadow -> /etc/shadow".to_owned(),
        format!("sub/up -> {UP}{host_dir}"),
        "hello".to_owned(),
        "inner".to_owned(),
        "0".to_owned(),
        "root 751 0:0".to_owned(),
        "writable".to_owned(),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, want) in lines.iter().zip(&expected) {
        assert_eq!(line, want, "in\n{out}");
    }
    let data = mount_at(&mounts, "/data");
    assert_eq!(data.fs_type, "tmpfs", "{data:?}");
    assert!(has_option(&data.options, "nosuid"), "{data:?}");
    assert!(
        !has_option(&data.super_options, "tmpcopyup"),
        "tmpcopyup reached the kernel: {data:?}"
    );
    // The write went to the tmpfs, not to the rootfs; the host's directory is untouched.
    assert!(!bundle.rootfs().join("data/new").exists());
    let host_entries: Vec<_> = fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(host_entries, ["secret"], "the host directory changed");
    assert_eq!(
        fs::read_to_string(host.join("secret")).unwrap(),
        "HOST-SECRET\n"
    );
}

/// A missing destination is made, and its tmpfs starts empty; a tmpfs without the option
/// hides the directory's contents as before.
#[test]
fn tmpcopyup_of_a_missing_directory_is_empty_and_without_it_nothing_is_copied() {
    let host = host_secret();
    let mut bundle = Bundle::busybox(&[]);
    populate(&bundle.rootfs(), host.path());
    bundle.add_mount(tmpfs_mount("/fresh/dir", &["tmpcopyup"]));
    bundle.add_mount(tmpfs_mount("/data", &[]));
    let (out, _) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "ls -A /fresh/dir | wc -l; ls -A /data | wc -l",
    );
    assert_eq!(out, "0\n0\n");
}

/// `ro` with `tmpcopyup`: filled, then read-only (in Berth its superblock too, as a
/// plain `ro` tmpfs is).
#[test]
fn read_only_tmpfs_is_filled_then_made_read_only() {
    let host = host_secret();
    let mut bundle = Bundle::busybox(&[]);
    populate(&bundle.rootfs(), host.path());
    bundle.add_mount(tmpfs_mount("/data", &["ro", "tmpcopyup"]));
    let (out, mounts) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "cat /data/sub/inner; touch /data/new 2>/dev/null || echo read-only",
    );
    assert_eq!(out, "inner\nread-only\n");
    let data = mount_at(&mounts, "/data");
    assert!(has_option(&data.options, "ro"), "{data:?}");
    if berth_only("runc 1.1.5 makes only the mount read-only, not the tmpfs") {
        assert!(has_option(&data.super_options, "ro"), "{data:?}");
    }
}

/// Fifos and sockets are copied as the inert inodes they are; a device node stops the create, with the path in the error,
/// and nothing is left behind.
#[test]
fn fifos_are_copied_and_device_nodes_refused() {
    if !berth_only("runc 1.1.5 fails on a fifo or a socket (lchown: no such file)") {
        return;
    }
    let mut bundle = Bundle::busybox(&[]);
    let data = bundle.rootfs().join("data");
    mkdir(&data, 0o755, (0, 0));
    mknod(&data.join("fifo"), libc::S_IFIFO, 0, 0);
    fs::set_permissions(data.join("fifo"), fs::Permissions::from_mode(0o620)).unwrap();
    socket_file(&data.join("socket"));
    fs::set_permissions(data.join("socket"), fs::Permissions::from_mode(0o750)).unwrap();
    bundle.add_mount(tmpfs_mount("/data", &["tmpcopyup"]));
    let rt = Runtime::new();
    let (out, _) = run_and_read_mounts(&rt, &mut bundle, "stat -c '%a %F' /data/fifo /data/socket");
    assert_eq!(out, "620 fifo\n750 socket\n");

    mkdir(&data.join("sub"), 0o755, (0, 0));
    mknod(&data.join("sub/zero"), libc::S_IFCHR, 1, 5);
    let id = rt.new_id();
    rt.run(&id, &bundle, &[])
        .fails_with("tmpcopyup")
        .fails_with("sub/zero")
        .fails_with("a character device");
    rt.assert_nothing_left(&id, &bundle);
}

/// `tmpcopyup` belongs to tmpfs: on a bind or another filesystem it is refused by name
/// (runc 1.1.5 ignores it there).
#[test]
fn tmpcopyup_is_refused_on_other_mounts() {
    if !berth_only("runc 1.1.5 ignores tmpcopyup on mounts that are not tmpfs") {
        return;
    }
    let host = HostDir::new();
    let rt = Runtime::new();
    for (mount, kind) in [
        (
            bind_mount(host.path(), "/mnt", &["rbind", "tmpcopyup"]),
            "bind",
        ),
        (
            serde_json::json!({"destination": "/mq", "type": "mqueue", "source": "mqueue",
                "options": ["tmpcopyup"]}),
            "mqueue",
        ),
    ] {
        let mut bundle = Bundle::busybox(&["true"]);
        bundle.add_mount(mount);
        let id = rt.new_id();
        rt.run(&id, &bundle, &[])
            .fails_with(&format!("tmpcopyup is for tmpfs mounts only, not {kind}"));
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// Any tmpfs over a directory of the rootfs takes that directory's mode, unless it has a
/// `mode=` of its own (runc and crun do the same); over nothing it keeps tmpfs's 1777.
/// This is what a copied-up tmpfs's root gets too.
#[test]
fn a_tmpfs_over_a_directory_takes_its_mode_unless_it_has_a_mode() {
    let mut bundle = Bundle::busybox(&[]);
    mkdir(&bundle.rootfs().join("inherits"), 0o750, (1000, 1000));
    mkdir(&bundle.rootfs().join("explicit"), 0o750, (0, 0));
    bundle.add_mount(tmpfs_mount("/inherits", &["nosuid"]));
    bundle.add_mount(tmpfs_mount("/explicit", &["mode=1777"]));
    bundle.add_mount(tmpfs_mount("/missing", &[]));
    let (out, _) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "stat -c '%n %a %u' /inherits /explicit /missing",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "/inherits 750 0");
    assert_eq!(lines[2], "/missing 1777 0");
    if berth_only("runc 1.1.5 sets the directory's mode over mode= (runc 1.2 and crun do not)") {
        assert_eq!(lines[1], "/explicit 1777 0");
    }
}

/// The copy is made from inside the container's cgroup: its tmpfs pages stay charged to
/// the memory cgroup that wrote them, so they count against the container's limit, not
/// against the caller's cgroup.
#[test]
fn the_copy_is_charged_to_the_container_memory_cgroup() {
    const SIZE: usize = 32 << 20;
    let mut bundle = Bundle::busybox(&[]);
    mkdir(&bundle.rootfs().join("data"), 0o755, (0, 0));
    fs::write(bundle.rootfs().join("data/big"), vec![7u8; SIZE]).unwrap();
    bundle.add_mount(tmpfs_mount("/data", &["tmpcopyup"]));
    let script = "cat /sys/fs/cgroup/memory/memory.usage_in_bytes 2>/dev/null \
        || cat /sys/fs/cgroup/memory.current";
    let (out, _) = run_and_read_mounts(&Runtime::new(), &mut bundle, script);
    let usage: usize = out
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{out:?}: {e}"));
    assert!(
        usage >= SIZE,
        "the container's memory cgroup holds {usage} bytes, less than the {SIZE} copied"
    );
}
