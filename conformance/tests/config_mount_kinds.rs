//! config.md "Mounts" and "Linux mount options", one mount form per test: what each
//! filesystem type, flag and propagation option looks like from inside a real container
//! (its mountinfo, stat, and whether writes go through), and from the host where the
//! effect should show there.
//!
//! Several tests build a tree with a submount out of config mounts themselves (a tmpfs and
//! a tmpfs inside it), then bind that tree by its host path under the bundle's rootfs: the
//! runtime resolves bind sources in the container's mount namespace before pivot_root,
//! where the rootfs, with the mounts made so far, sits at that path. This gives submounts
//! and shared peer groups without mounting anything on the host.
//!
//! Idmapped mounts are in config_mount_idmap.rs.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use berth_conformance::{
    berth_only, bind_mount as bind, has_option as has, mount_at, parse_mountinfo,
    read_until_closed, run_and_read_mounts, tmpfs_mount as tmpfs, unique_name, Bundle,
    ConsoleSocket, HostDir, Mount, Runtime,
};
use serde_json::json;

/// `echo "<dir> writable"` or `echo "<dir> read-only"` for each directory, by creating a file in it.
fn probe_writes(dirs: &[&str]) -> String {
    let dirs = dirs.join(" ");
    format!("for d in {dirs}; do if touch $d/probe 2>/dev/null; then echo \"$d writable\"; else echo \"$d read-only\"; fi; done")
}

/// A tmpfs at /tree with another tmpfs at /tree/sub, and the host path of /tree for binds.
fn tree_with_submount(bundle: &mut Bundle) -> std::path::PathBuf {
    bundle.add_mount(tmpfs("/tree", &[]));
    bundle.add_mount(tmpfs("/tree/sub", &[]));
    bundle.rootfs().join("tree")
}

#[test]
fn tmpfs_takes_size_mode_uid_and_gid() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(tmpfs(
        "/scratch",
        &["nosuid", "size=2m", "mode=1750", "uid=1000", "gid=1001"],
    ));
    let (out, mounts) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "stat -c '%a %u %g' /scratch\nstat -f -c '%b %S' /scratch",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "1750 1000 1001",
        "mode, owner and group of the tmpfs root"
    );
    let (blocks, block_size) = lines[1].split_once(' ').expect("blocks and block size");
    let bytes = blocks.parse::<u64>().unwrap() * block_size.parse::<u64>().unwrap();
    assert_eq!(bytes, 2 * 1024 * 1024, "size=2m");
    let scratch = mount_at(&mounts, "/scratch");
    assert_eq!(scratch.fs_type, "tmpfs");
    for option in ["size=2048k", "mode=1750", "uid=1000", "gid=1001"] {
        assert!(
            has(&scratch.super_options, option),
            "{option} missing: {scratch:?}"
        );
    }
    assert!(has(&scratch.options, "nosuid"), "{scratch:?}");
}

/// The container gets a devpts of its own (not the host's), and the options decide the
/// mode of ptmx and of a new pty's slave and its group. Checked through a real terminal.
#[test]
fn devpts_is_a_new_instance_with_its_ptmxmode_mode_and_gid() {
    let script = "stat -c '%a %g' $(tty); stat -c '%a' /dev/pts/ptmx; grep ' /dev/pts ' /proc/self/mountinfo";
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(|c| {
        c["process"]["terminal"] = json!(true);
        let mounts = c["mounts"].as_array_mut().unwrap();
        let devpts = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/dev/pts")
            .expect("a /dev/pts mount");
        devpts["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0600",
            "mode=0640",
            "gid=6"
        ]);
    });
    let dir = HostDir::new();
    let socket = ConsoleSocket::bind(dir.path());
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(
        &id,
        &bundle,
        &["--console-socket", socket.path().to_str().unwrap()],
    )
    .ok();
    let console = socket.receive().expect("the pty master");
    rt.start(&id).ok();
    let out = read_until_closed(&console.master);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);

    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(
        lines[0], "640 6",
        "the slave's mode and group come from mode= and gid="
    );
    assert_eq!(lines[1], "600", "ptmx's mode comes from ptmxmode=");
    let devpts = &parse_mountinfo(lines[2])[0];
    assert_eq!(devpts.fs_type, "devpts");
    for option in ["gid=6", "mode=640", "ptmxmode=600"] {
        assert!(
            has(&devpts.super_options, option),
            "{option} missing: {devpts:?}"
        );
    }
    let host = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let host_devpts: Vec<&str> = host
        .iter()
        .filter(|m| m.fs_type == "devpts")
        .map(|m| m.dev.as_str())
        .collect();
    assert!(
        !host_devpts.contains(&devpts.dev.as_str()),
        "the container's devpts {} is the host's ({host_devpts:?})",
        devpts.dev
    );
}

/// A queue made in the container's /dev/mqueue is a real POSIX message queue, and it lives
/// in the container's IPC namespace, not the host's.
#[test]
fn mqueue_belongs_to_the_container_ipc_namespace() {
    let queue = unique_name();
    let mut bundle = Bundle::busybox(&[]);
    let script = format!("touch /dev/mqueue/{queue} && head -c 7 /dev/mqueue/{queue}; echo");
    let (out, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, &script);
    assert_eq!(out, "QSIZE:0\n", "the file is a message queue's status");
    let mqueue = mount_at(&mounts, "/dev/mqueue");
    assert_eq!(mqueue.fs_type, "mqueue");
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(has(&mqueue.options, flag), "{flag} missing: {mqueue:?}");
    }
    let name = std::ffi::CString::new(format!("/{queue}")).unwrap();
    // SAFETY: a NUL-terminated name and plain flags; no mode or attr is read without O_CREAT.
    let fd = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDONLY) };
    let err = std::io::Error::last_os_error();
    if fd >= 0 {
        // SAFETY: fd was just returned by mq_open.
        unsafe {
            libc::mq_close(fd);
            libc::mq_unlink(name.as_ptr());
        }
    }
    assert_eq!(
        fd, -1,
        "the container's queue is in the host's IPC namespace"
    );
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

/// The container's own directory in a hierarchy, from /proc/self/cgroup text: "4:pids:/p",
/// "1:name=systemd:/p", and "0::/p" for the v2 one.
fn own_cgroup<'a>(proc_self_cgroup: &'a str, hierarchy: &Mount) -> &'a str {
    let name = Path::new(&hierarchy.mount_point)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    proc_self_cgroup
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            Some((fields.next()?, fields.next()?, fields.next()?))
        })
        .find(|(_, controllers, _)| match hierarchy.fs_type.as_str() {
            "cgroup2" => controllers.is_empty(),
            _ => controllers
                .split(',')
                .any(|c| c.trim_start_matches("name=") == name),
        })
        .map(|(_, _, path)| path)
        .unwrap_or_else(|| panic!("no {name} in /proc/self/cgroup: {proc_self_cgroup}"))
}

/// The `cgroup` type on a v1 or hybrid host: a read-only tmpfs holding one read-only bind
/// per hierarchy, each rooted at the container's own cgroup in it.
#[test]
fn cgroup_mount_shows_the_container_own_cgroups_read_only() {
    let host = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let under_cgroup = |m: &&Mount| m.mount_point.starts_with("/sys/fs/cgroup/");
    let v1: Vec<&Mount> = host
        .iter()
        .filter(under_cgroup)
        .filter(|m| m.fs_type == "cgroup")
        .collect();
    if v1.is_empty() {
        berth_conformance::skip("the host has no cgroup v1 hierarchies under /sys/fs/cgroup");
        return;
    }
    let mut expected = v1;
    // A hybrid host's cgroup2 (systemd puts it at /sys/fs/cgroup/unified).
    if berth_only("runc 1.1.5 binds only the v1 hierarchies of a hybrid host") {
        expected.extend(
            host.iter()
                .filter(under_cgroup)
                .filter(|m| m.fs_type == "cgroup2"),
        );
    }
    let mut bundle = Bundle::busybox(&[]);
    let (out, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, "cat /proc/self/cgroup");
    let top = mount_at(&mounts, "/sys/fs/cgroup");
    assert_eq!(top.fs_type, "tmpfs", "{top:?}");
    if berth_only("runc 1.1.5 leaves the tmpfs under a read-only cgroup mount writable") {
        assert!(has(&top.options, "ro"), "{top:?}");
    }
    for hierarchy in expected {
        let inside = mount_at(&mounts, &hierarchy.mount_point);
        assert_eq!(inside.fs_type, hierarchy.fs_type, "{inside:?}");
        assert_eq!(
            inside.dev, hierarchy.dev,
            "{inside:?} is not the host's {}",
            hierarchy.mount_point
        );
        assert_eq!(
            inside.root,
            own_cgroup(&out, hierarchy),
            "{inside:?} is not rooted at the container's cgroup"
        );
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(has(&inside.options, flag), "{flag} missing: {inside:?}");
        }
    }
}

/// A `cgroup2` mount (the v2 layout) in a cgroup namespace is rooted at the container's
/// own cgroup: it lists the container's processes and nothing above them.
#[test]
fn cgroup2_mount_in_a_cgroup_namespace_is_the_container_own() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "cgroup" }));
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(json!({ "destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2", "options": ["nosuid", "noexec", "nodev"] }));
    });
    let (out, mounts) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        "grep '^0::' /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.procs",
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("0::/"),
        "the container's cgroup namespace root"
    );
    let pids: Vec<&str> = lines.collect();
    assert!(
        pids.contains(&"1"),
        "the container's init is not in the mounted cgroup: {pids:?}"
    );
    let cgroup = mount_at(&mounts, "/sys/fs/cgroup");
    assert_eq!(
        (cgroup.fs_type.as_str(), cgroup.root.as_str()),
        ("cgroup2", "/"),
        "{cgroup:?}"
    );
}

#[test]
fn overlay_writes_land_in_upperdir() {
    let host = HostDir::new();
    let (lower, upper, work) = (host.join("lower"), host.join("upper"), host.join("work"));
    for dir in [&lower, &upper, &work] {
        fs::create_dir(dir).unwrap();
    }
    fs::write(lower.join("from-lower"), "lower\n").unwrap();
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(json!({
        "destination": "/merged", "type": "overlay", "source": "overlay",
        "options": [
            format!("lowerdir={}", lower.display()),
            format!("upperdir={}", upper.display()),
            format!("workdir={}", work.display()),
        ]
    }));
    let script =
        "cat /merged/from-lower; echo changed > /merged/from-lower; echo new > /merged/new";
    let (out, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, script);
    assert_eq!(out, "lower\n");
    assert_eq!(mount_at(&mounts, "/merged").fs_type, "overlay");
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "new\n");
    assert_eq!(
        fs::read_to_string(upper.join("from-lower")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        fs::read_to_string(lower.join("from-lower")).unwrap(),
        "lower\n",
        "the lower layer changed"
    );
    assert!(!lower.join("new").exists());
}

/// `bind` + `ro` makes this mount read-only (mount(8)'s bind-then-remount), not the
/// filesystem: the superblock stays rw and the host can still write to the source.
#[test]
fn bind_ro_is_a_per_mount_remount() {
    let host = HostDir::new();
    fs::write(host.join("file"), "from host\n").unwrap();
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(bind(
        &host,
        "/data",
        &["bind", "ro", "nosuid", "nodev", "noexec"],
    ));
    let (out, mounts) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        &format!("cat /data/file\n{}", probe_writes(&["/data"])),
    );
    assert_eq!(out, "from host\n/data read-only\n");
    let data = mount_at(&mounts, "/data");
    for flag in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(has(&data.options, flag), "{flag} missing: {data:?}");
    }
    assert_eq!(
        data.super_options[0], "rw",
        "the filesystem itself was made read-only: {data:?}"
    );
    fs::write(host.join("after"), "still writable").expect("the host source stays writable");
    assert!(!host.join("probe").exists());
}

/// `ro` on an rbind covers only the top mount; `rro` (mount_setattr AT_RECURSIVE) covers
/// the submounts too.
#[test]
fn rro_reaches_submounts_and_ro_does_not() {
    let mut bundle = Bundle::busybox(&[]);
    let tree = tree_with_submount(&mut bundle);
    bundle.add_mount(bind(&tree, "/ro", &["rbind", "ro"]));
    bundle.add_mount(bind(&tree, "/rro", &["rbind", "rro"]));
    let (out, mounts) = run_and_read_mounts(
        &Runtime::new(),
        &mut bundle,
        &probe_writes(&["/ro", "/ro/sub", "/rro", "/rro/sub"]),
    );
    assert_eq!(
        out,
        "/ro read-only\n/ro/sub writable\n/rro read-only\n/rro/sub read-only\n"
    );
    assert!(has(&mount_at(&mounts, "/ro/sub").options, "rw"));
    assert!(has(&mount_at(&mounts, "/rro/sub").options, "ro"));
}

#[test]
fn rnosuid_reaches_submounts_and_nosuid_does_not() {
    let mut bundle = Bundle::busybox(&[]);
    let tree = tree_with_submount(&mut bundle);
    bundle.add_mount(bind(&tree, "/nosuid", &["rbind", "nosuid"]));
    bundle.add_mount(bind(&tree, "/rnosuid", &["rbind", "rnosuid"]));
    let (_, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, "true");
    let nosuid = |path| has(&mount_at(&mounts, path).options, "nosuid");
    assert!(
        !nosuid("/tree/sub"),
        "the source submount already had nosuid: the test proves nothing"
    );
    assert!(nosuid("/nosuid"));
    assert!(!nosuid("/nosuid/sub"), "nosuid reached the submount");
    assert!(nosuid("/rnosuid"));
    assert!(nosuid("/rnosuid/sub"), "rnosuid missed the submount");
}

/// A bind of a shared mount starts in its peer group; the propagation option then makes
/// it a peer (`shared:N`), a slave (`master:N`), private or unbindable. A mount made
/// later under the source reaches peers and slaves only.
#[test]
fn bind_propagation_options_show_in_mountinfo() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(tmpfs("/src", &["shared"]));
    let src = bundle.rootfs().join("src");
    for (destination, option) in [
        ("/peer", "rshared"),
        ("/slave", "rslave"),
        ("/private", "rprivate"),
        ("/unbindable", "runbindable"),
    ] {
        bundle.add_mount(bind(&src, destination, &["rbind", option]));
    }
    bundle.add_mount(tmpfs("/src/late", &[]));
    let (_, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, "true");
    let group = mount_at(&mounts, "/src")
        .shared_group()
        .expect("/src is shared")
        .to_owned();
    let peer = mount_at(&mounts, "/peer");
    assert_eq!(
        peer.shared_group(),
        Some(group.as_str()),
        "rshared: {peer:?}"
    );
    let slave = mount_at(&mounts, "/slave");
    assert_eq!(
        (slave.master_group(), slave.shared_group()),
        (Some(group.as_str()), None),
        "rslave: {slave:?}"
    );
    let private = mount_at(&mounts, "/private");
    assert!(private.optional.is_empty(), "rprivate: {private:?}");
    let unbindable = mount_at(&mounts, "/unbindable");
    assert_eq!(
        unbindable.optional,
        ["unbindable"],
        "runbindable: {unbindable:?}"
    );

    let mounted = |path: &str| mounts.iter().any(|m| m.mount_point == path);
    assert!(
        mounted("/peer/late"),
        "a mount under the source did not reach its peer"
    );
    assert!(
        mounted("/slave/late"),
        "a mount under the source did not reach its slave"
    );
    assert!(
        !mounted("/private/late"),
        "a mount under the source reached a private copy"
    );
    assert!(
        !mounted("/unbindable/late"),
        "a mount under the source reached an unbindable copy"
    );
}

/// What mountinfo's optional fields say of a mount's propagation.
fn propagation_of(mount: &Mount) -> &'static str {
    match (
        mount.shared_group(),
        mount.master_group(),
        has(&mount.optional, "unbindable"),
    ) {
        (Some(_), Some(_), _) => "shared+slave",
        (Some(_), None, _) => "shared",
        (None, Some(_), _) => "slave",
        (None, None, true) => "unbindable",
        (None, None, false) => "private",
    }
}

/// config-linux.md "rootfsPropagation": the container's / gets that propagation; the
/// r-forms (a runc extension) reach its submounts (/proc) too.
#[test]
fn rootfs_propagation_applies_to_the_container_root() {
    let mut cases = vec![("private", "private", "private")];
    if berth_only(
        "runc 1.1.5 leaves / private whatever rootfsPropagation says, and cannot bind a rootfs on an unbindable /",
    ) {
        cases.extend([
            ("shared", "shared", "private"),
            ("rshared", "shared", "shared"),
            ("unbindable", "unbindable", "private"),
            ("runbindable", "unbindable", "unbindable"),
        ]);
    }
    for (propagation, root_expected, proc_expected) in cases {
        let mut bundle = Bundle::busybox(&[]);
        bundle.config_mut()["linux"]["rootfsPropagation"] = json!(propagation);
        let (_, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, "true");
        let (root, proc) = (mount_at(&mounts, "/"), mount_at(&mounts, "/proc"));
        assert_eq!(
            propagation_of(root),
            root_expected,
            "{propagation}: {root:?}"
        );
        assert_eq!(
            propagation_of(proc),
            proc_expected,
            "{propagation}: {proc:?}"
        );
    }
}

/// A file source binds onto a file: an existing one is covered, a missing one is created
/// (with its missing parent directories) inside the rootfs.
#[test]
fn file_binds_onto_a_file_created_when_missing() {
    let host = HostDir::new();
    fs::write(host.join("conf"), "host conf\n").unwrap();
    fs::write(host.join("group"), "host group\n").unwrap();
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(bind(
        &host.join("conf"),
        "/etc/berth/app.conf",
        &["bind", "ro"],
    ));
    bundle.add_mount(bind(&host.join("group"), "/etc/group", &["bind", "ro"]));
    let script = "cat /etc/berth/app.conf /etc/group; stat -c %F /etc/berth/app.conf";
    let rt = Runtime::new();
    let (out, mounts) = run_and_read_mounts(&rt, &mut bundle, script);
    assert_eq!(out, "host conf\nhost group\nregular file\n");
    assert!(has(&mount_at(&mounts, "/etc/berth/app.conf").options, "ro"));
    let created = fs::symlink_metadata(bundle.rootfs().join("etc/berth/app.conf"))
        .expect("the target was created");
    assert!(
        created.is_file(),
        "the target is not a regular file: {created:?}"
    );
    assert_eq!(created.len(), 0, "the target was written to");
    assert!(fs::read_to_string(bundle.rootfs().join("etc/group"))
        .unwrap()
        .starts_with("root:x:0:"));
    assert_eq!(
        fs::read_to_string(host.join("conf")).unwrap(),
        "host conf\n"
    );
}

#[test]
fn missing_nested_target_directories_are_created_inside_the_rootfs() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(tmpfs("/deep/er/still", &[]));
    let rt = Runtime::new();
    let (out, mounts) = run_and_read_mounts(&rt, &mut bundle, "stat -f -c %T /deep/er/still");
    assert_eq!(out, "tmpfs\n");
    assert_eq!(mount_at(&mounts, "/deep/er/still").fs_type, "tmpfs");
    for dir in ["deep", "deep/er", "deep/er/still"] {
        let meta = fs::symlink_metadata(bundle.rootfs().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(meta.is_dir(), "{dir} is not a directory");
        assert_eq!(meta.mode() & 0o7777, 0o755, "mode of {dir}");
    }
}

/// A relative symlink in the rootfs that climbs out of it must not take a bind mount, or
/// the target it creates, onto the host (CVE-2021-30465 family; config_mounts.rs has the
/// absolute-symlink case for a tmpfs).
#[test]
fn bind_targets_through_an_escaping_symlink_stay_in_the_rootfs() {
    let victim = HostDir::new();
    let source = HostDir::new();
    fs::write(source.join("file"), "source\n").unwrap();
    let mut bundle = Bundle::busybox(&["cat", "/escape/dir/file", "/escape/file"]);
    let climb = "../".repeat(Path::new(&bundle.rootfs()).components().count() + 2);
    symlink(
        format!("{climb}{}", victim.display()),
        bundle.rootfs().join("escape"),
    )
    .unwrap();
    bundle.add_mount(bind(&source, "/escape/dir", &["rbind"]));
    bundle.add_mount(bind(&source.join("file"), "/escape/file", &["bind"]));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    // Refusing is as good as confining; if it ran, the mounts are where the container looks.
    if out.success() {
        assert_eq!(out.stdout, "source\nsource\n", "{}", out.describe());
    }
    let entries: Vec<_> = fs::read_dir(&victim).unwrap().collect();
    assert!(
        entries.is_empty(),
        "the host dir was written to: {entries:?}\n{}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// sync and dirsync are superblock flags; the atime family are per-mount ones, and
/// strictatime shows as the absence of relatime and noatime. A new filesystem mounted `ro`
/// is read-only in its superblock too, as mount(8) makes it (bind_ro_is_a_per_mount_remount
/// has the bind case, where it is not).
#[test]
fn sync_dirsync_and_atime_flags_show_in_mountinfo() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(tmpfs("/synced", &["sync", "dirsync"]));
    bundle.add_mount(tmpfs("/strict", &["strictatime"]));
    bundle.add_mount(tmpfs("/noatime", &["noatime", "nodiratime"]));
    bundle.add_mount(tmpfs("/relatime", &["relatime"]));
    bundle.add_mount(tmpfs("/read-only", &["ro"]));
    let (_, mounts) = run_and_read_mounts(&Runtime::new(), &mut bundle, "true");
    let synced = mount_at(&mounts, "/synced");
    assert!(
        has(&synced.super_options, "sync") && has(&synced.super_options, "dirsync"),
        "{synced:?}"
    );
    let strict = mount_at(&mounts, "/strict");
    assert!(
        !has(&strict.options, "relatime") && !has(&strict.options, "noatime"),
        "{strict:?}"
    );
    let noatime = mount_at(&mounts, "/noatime");
    assert!(
        has(&noatime.options, "noatime") && has(&noatime.options, "nodiratime"),
        "{noatime:?}"
    );
    assert!(has(&mount_at(&mounts, "/relatime").options, "relatime"));
    let read_only = mount_at(&mounts, "/read-only");
    assert!(has(&read_only.options, "ro"), "{read_only:?}");
    if berth_only("runc 1.1.5 mounts a tmpfs rw and then makes only the mount read-only") {
        assert_eq!(read_only.super_options[0], "ro", "{read_only:?}");
    }
}
