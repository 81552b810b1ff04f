//! Hostile rootfs trees, continued (hostile_input.rs has the mount
//! destinations and paths): device nodes, fifos and sockets where the
//! runtime puts its own; /proc and /sys that are not directories; a cwd
//! leading out; container ids of every odd shape. Every case works, confined
//! to the rootfs and the state root, or fails naming what it refused, and
//! leaves nothing behind.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use berth_conformance::hostile_tree::{
    entries, host_probe, inside, mknod, own_dev, plant_link, refused, socket_file, UP,
};
use berth_conformance::{
    berth_only, bind_mount, tmpfs_mount, unique_name, Bundle, HostDir, Runtime, STATE_DEADLINE,
};
use serde_json::{json, Value};

// ---- symlink loops ----------------------------------------------------------

/// The rootfs ships /dev (no tmpfs over it) with its own idea of the default
/// nodes: /dev/null as sda's block device, /dev/zero a symlink out, /dev/tty a
/// fifo. The spec's default devices are what the container must get.
#[test]
fn default_device_paths_the_rootfs_filled_with_impostors() {
    let probe = host_probe();
    let mut bundle = Bundle::busybox(&[
        "stat",
        "-c",
        "%n %F %t:%T",
        "/dev/null",
        "/dev/zero",
        "/dev/tty",
    ]);
    let dev = bundle.rootfs().join("dev");
    mknod(&dev.join("null"), libc::S_IFBLK, 8, 0);
    symlink(&probe, dev.join("zero")).unwrap();
    mknod(&dev.join("tty"), libc::S_IFIFO, 0, 0);
    bundle.edit(own_dev);
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(!probe.exists(), "{} was made on the host", probe.display());
    if berth_only("runc 1.1.5 keeps whatever is at a default device's path") {
        out.ok();
        assert_eq!(
            out.stdout,
            "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n/dev/tty character special file 5:0\n",
            "{}",
            out.describe()
        );
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// In a user namespace the host's nodes are bound over files instead of
/// mknod: an impostor there (a symlink out, a fifo) is replaced by a file
/// first, never followed or opened. The rootfs's /dev belongs to the
/// container's root, as a user namespace needs.
#[test]
fn default_device_paths_with_impostors_in_a_user_namespace() {
    let probe = host_probe();
    let mut bundle = Bundle::busybox(&["stat", "-c", "%n %F %t:%T", "/dev/null", "/dev/zero"]);
    let dev = bundle.rootfs().join("dev");
    symlink(&probe, dev.join("null")).unwrap();
    mknod(&dev.join("zero"), libc::S_IFIFO, 0, 0);
    std::os::unix::fs::chown(&dev, Some(100_000), Some(100_000)).unwrap();
    bundle.edit(|c| {
        own_dev(c);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        let mapping = json!([{ "containerID": 0, "hostID": 100_000, "size": 65536 }]);
        c["linux"]["uidMappings"] = mapping.clone();
        c["linux"]["gidMappings"] = mapping;
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(!probe.exists(), "{} was made on the host", probe.display());
    if berth_only("runc 1.1.5 keeps whatever is at a default device's path") {
        assert_eq!(
            out.ok().stdout,
            "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n",
            "{}",
            out.describe()
        );
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

/// config-linux.md, devices: "If a file already exists at path that does not
/// match the requested device, the runtime MUST generate an error." runc 1.1.5
/// keeps the file; a matching node is accepted by both.
#[test]
fn a_listed_device_whose_path_holds_another_node() {
    let mut bundle = Bundle::busybox(&["stat", "-c", "%F %t:%T", "/dev/mydev", "/dev/same"]);
    let dev = bundle.rootfs().join("dev");
    mknod(&dev.join("mydev"), libc::S_IFBLK, 8, 0);
    mknod(&dev.join("same"), libc::S_IFCHR, 1, 5);
    bundle.edit(|c| {
        own_dev(c);
        c["linux"]["devices"] = json!([
            { "path": "/dev/mydev", "type": "c", "major": 1, "minor": 3 },
            { "path": "/dev/same", "type": "c", "major": 1, "minor": 5 },
        ]);
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    if berth_only("runc 1.1.5 keeps a mismatched node") {
        out.fails_with("/dev/mydev");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
    let mut bundle = Bundle::busybox(&["stat", "-c", "%F %t:%T", "/dev/same"]);
    mknod(&bundle.rootfs().join("dev/same"), libc::S_IFCHR, 1, 5);
    bundle.edit(|c| {
        own_dev(c);
        c["linux"]["devices"] =
            json!([{ "path": "/dev/same", "type": "c", "major": 1, "minor": 5 }]);
    });
    assert_eq!(
        rt.run_to_completion(&bundle),
        "character special file 1:5\n"
    );
}

/// The spec allows a device anywhere; outside /dev it is made like any other.
#[test]
fn a_listed_device_outside_dev() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c '%F %t:%T' /opt/deep/mynull && echo x > /opt/deep/mynull && echo wrote",
    ]);
    bundle.edit(|c| {
        c["linux"]["devices"] =
            json!([{ "path": "/opt/deep/mynull", "type": "c", "major": 1, "minor": 3 }])
    });
    assert_eq!(
        Runtime::new().run_to_completion(&bundle),
        "character special file 1:3\nwrote\n"
    );
}

/// A mount destination the rootfs holds as a device node (sda's numbers) or a
/// fifo: a directory mount on it is refused by name, a file bind covers it.
/// Opening the fifo would hang the runtime, so a runtime that opens it fails here.
#[test]
fn device_nodes_and_fifos_at_mount_destinations() {
    let source = HostDir::new();
    fs::write(source.join("f"), "bound\n").unwrap();
    for (name, kind) in [
        ("blk", libc::S_IFBLK),
        ("chr", libc::S_IFCHR),
        ("fifo", libc::S_IFIFO),
    ] {
        let mut bundle = Bundle::busybox(&["cat", &format!("/mnt/{name}")]);
        fs::create_dir_all(bundle.rootfs().join("mnt")).unwrap();
        mknod(&bundle.rootfs().join("mnt").join(name), kind, 8, 0);
        bundle.add_mount(bind_mount(
            &source.join("f"),
            &format!("/mnt/{name}"),
            &["bind"],
        ));
        let rt = Runtime::new();
        assert_eq!(rt.run_to_completion(&bundle), "bound\n", "{name}");

        let mut bundle = Bundle::busybox(&["true"]);
        fs::create_dir_all(bundle.rootfs().join("mnt")).unwrap();
        mknod(&bundle.rootfs().join("mnt").join(name), kind, 8, 0);
        bundle.add_mount(tmpfs_mount(&format!("/mnt/{name}"), &[]));
        refused(&rt, &bundle, &format!("/mnt/{name}"));
    }
}

/// With a terminal, the runtime binds the pty onto /dev/console: a fifo or a
/// socket there is never opened for writing (a fifo would hang the runtime).
/// Berth replaces it, or with a read-only rootfs refuses it by name.
#[test]
fn a_fifo_or_socket_at_dev_console() {
    for (kind, readonly) in [
        ("fifo", false),
        ("socket", false),
        ("fifo", true),
        ("socket", true),
    ] {
        let mut bundle = Bundle::busybox(&["true"]);
        let console = bundle.rootfs().join("dev/console");
        if kind == "fifo" {
            mknod(&console, libc::S_IFIFO, 0, 0)
        } else {
            socket_file(&console)
        }
        bundle.edit(|c| {
            own_dev(c);
            c["process"]["terminal"] = json!(true);
            c["root"]["readonly"] = json!(readonly);
        });
        let dir = HostDir::new();
        let socket = berth_conformance::ConsoleSocket::bind(dir.path());
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.create(
            &id,
            &bundle,
            &["--console-socket", socket.path().to_str().unwrap()],
        );
        if out.success() {
            let received = socket.receive().expect("the console master");
            rt.start(&id).ok();
            berth_conformance::read_until_closed(&received.master);
            rt.wait_status(&id, "stopped");
        } else if berth_only("runc's errors differ") {
            assert!(
                readonly,
                "{kind} in a writable rootfs not replaced: {}",
                out.describe()
            );
            out.fails_with(&format!("/dev/console: a {kind} is there"));
        }
        rt.cmd(&["delete", "--force", &id]);
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// A rootfs's own /dev/ptmx as a node (the host's 5:2) would hand out ptys of
/// the host's devpts: it is replaced by the link into the container's devpts.
#[test]
fn a_dev_ptmx_node_in_the_rootfs_is_replaced_by_the_link() {
    let mut bundle = Bundle::busybox(&["readlink", "/dev/ptmx"]);
    mknod(&bundle.rootfs().join("dev/ptmx"), libc::S_IFCHR, 5, 2);
    bundle.edit(own_dev);
    assert_eq!(Runtime::new().run_to_completion(&bundle), "pts/ptmx\n");
}

// ---- /proc and the cwd -------------------------------------------------------

/// CVE-2019-16884 / CVE-2019-19921: procfs and sysfs must land on a real
/// directory. The rootfs's /proc or /sys as a link to its own root, as a link
/// climbing out, as a file, a fifo or a socket: each refused, by name.
#[test]
fn proc_or_sys_that_is_not_a_directory_is_refused() {
    for dir in ["proc", "sys"] {
        for kind in ["link-root", "link-up", "file", "fifo", "socket"] {
            let bundle = Bundle::busybox(&["true"]);
            let at = bundle.rootfs().join(dir);
            fs::remove_dir(&at).unwrap();
            match kind {
                "link-root" => symlink("/", &at).unwrap(),
                "link-up" => symlink(format!("{UP}/{dir}"), &at).unwrap(),
                "file" => fs::write(&at, "").unwrap(),
                "fifo" => mknod(&at, libc::S_IFIFO, 0, 0),
                _ => socket_file(&at),
            }
            let rt = Runtime::new();
            let out = refused(&rt, &bundle, &format!("/{dir}"));
            let meta = fs::symlink_metadata(&at).unwrap();
            assert!(
                !meta.is_dir(),
                "{dir} {kind}: replaced by a directory: {}",
                out.describe()
            );
        }
    }
}

/// The process's cwd planted as an absolute link out and as a link up: the
/// container starts in the rootfs's own directories, nothing is made on the
/// host. runc 1.1.5 refuses such a cwd ("mkdir /work: file exists"); the
/// spec asks only that cwd be absolute, and a link in the rootfs resolves in it.
#[test]
fn a_cwd_that_is_a_symlink_out_of_the_rootfs_stays_inside() {
    let probe = host_probe();
    let mut bundle = Bundle::busybox(&["sh", "-c", "pwd -P; touch here"]);
    plant_link(&bundle, "/work", &probe);
    bundle.edit(|c| {
        c["process"]["cwd"] = json!("/work");
        c["root"]["readonly"] = json!(false);
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    assert!(!probe.exists(), "{} was made on the host", probe.display());
    if berth_only("runc 1.1.5 refuses a cwd that is a symlink") {
        out.ok();
        assert_eq!(out.stdout, format!("{}\n", probe.display()));
        assert!(inside(&bundle, &probe).join("here").exists());
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);

    let mut bundle = Bundle::busybox(&["pwd", "-P"]);
    plant_link(&bundle, "/work", UP);
    bundle.edit(|c| c["process"]["cwd"] = json!("/work"));
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    if berth_only("runc 1.1.5 refuses a cwd that is a symlink") {
        assert_eq!(out.ok().stdout, "/\n");
    }
    rt.cmd(&["delete", "--force", &id]);
    rt.assert_nothing_left(&id, &bundle);
}

// ---- container ids -----------------------------------------------------------

/// runc's rule: `^[\w+\-.]+$` (ASCII word characters), never `.` or `..`.
/// A rejected id fails naming it and makes nothing in or beside the state
/// root, nor a cgroup; no other command accepts it either.
#[test]
fn ids_outside_runcs_rule_are_refused() {
    let bundle = Bundle::sleeper();
    bundle.write_config();
    let escape = format!("hostile-escape-{}", unique_name());
    let long = |n| "x".repeat(n);
    let bad = [
        String::new(),
        ".".into(),
        "..".into(),
        format!("a/{escape}"),
        format!("../{escape}"),
        format!("/{escape}"),
        "a\nb".into(),
        "a b".into(),
        " a".into(),
        "ünï".into(),
        "日本".into(),
        "a:b".into(),
        "a*".into(),
        long(256),
        long(1024),
        long(4097),
        long(100_000),
    ];
    let rt = Runtime::new();
    let rt_dir = rt.root().parent().unwrap().to_owned();
    for id in &bad {
        let shown: String = id.chars().take(40).collect();
        let out = rt.cmd(&[
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--",
            id,
        ]);
        let text = out.fails();
        // runc 1.1.5 has no length rule: the kernel's ENAMETOOLONG is its error.
        if id.len() <= 255 || berth_only("runc 1.1.5 reports a long id as a file name too long") {
            assert!(
                text.to_lowercase().contains("container id"),
                "{shown:?}: {}",
                out.describe()
            );
        }
        // Log lines escape control characters and quotes: look for printable ids only.
        if !id.is_empty() && !id.contains('\n') && berth_only("runc's message does not name the id")
        {
            let named = if id.len() <= 255 {
                id.as_str()
            } else {
                &id[..32]
            };
            assert!(
                text.contains(named),
                "{shown:?} not named: {}",
                out.describe()
            );
        }
        assert_eq!(
            entries(&rt.root()),
            Vec::<String>::new(),
            "{shown:?} left something in the state root"
        );
        for cmd in ["state", "start", "kill", "delete"] {
            let out = rt.cmd(&[cmd, "--", id]);
            assert!(
                !out.success(),
                "{cmd} {shown:?} succeeded: {}",
                out.describe()
            );
        }
    }
    for dir in [
        rt_dir.join(&escape),
        rt_dir.parent().unwrap().join(&escape),
        PathBuf::from("/").join(&escape),
    ] {
        assert!(!dir.exists(), "{} was made", dir.display());
    }
    assert!(berth_conformance::cgroups_named(&escape).is_empty());
}

/// Ids at the edges of the rule, each fully usable: create, state, list,
/// start, kill, delete, and nothing left.
#[test]
fn ids_at_the_edges_of_runcs_rule_are_fully_usable() {
    let long = "y".repeat(255);
    let dash = format!("-{}", unique_name());
    let plus = format!("a+b.c_{}", unique_name());
    let rt = Runtime::new();
    for id in ["z", &dash, &plus, &long] {
        let bundle = Bundle::sleeper();
        bundle.write_config();
        rt.track(id);
        let shown: String = id.chars().take(40).collect();
        rt.cmd(&[
            "create",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--",
            id,
        ])
        .ok();
        let state = rt.cmd(&["state", "--", id]);
        let state: Value = serde_json::from_str(&state.ok().stdout).unwrap();
        assert_eq!(state["id"], *id, "{shown}");
        assert_eq!(state["status"], "created", "{shown}");
        let list = rt.cmd(&["list", "-q"]);
        assert!(
            list.ok().stdout.lines().any(|l| l == id),
            "{shown} not listed: {}",
            list.describe()
        );
        rt.cmd(&["start", "--", id]).ok();
        rt.cmd(&["kill", "--", id, "KILL"]).ok();
        let stopped = || {
            serde_json::from_str::<Value>(&rt.cmd(&["state", "--", id]).stdout)
                .is_ok_and(|s| s["status"] == "stopped")
        };
        assert!(
            berth_conformance::wait_until(STATE_DEADLINE, stopped),
            "{shown} never stopped"
        );
        rt.cmd(&["delete", "--", id]).ok();
        rt.assert_nothing_left(id, &bundle);
        assert_eq!(entries(&rt.root()), Vec::<String>::new(), "{shown}");
    }
}
