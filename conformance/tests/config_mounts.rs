//! config.md "Mounts" and config-linux.md "Default Filesystems", "Default Devices",
//! "Masked Paths", "Readonly Paths": what the container's mount table holds.

use std::fs;
use std::path::Path;

use berth_conformance::{
    has_option as has, mount_at, mounts_mentioning, parse_mountinfo, tmpfs_mount, Bundle, HostDir,
    Mount, Runtime,
};
use serde_json::json;

/// The container's mount table when started from `bundle`.
fn container_mounts(mut bundle: Bundle) -> Vec<Mount> {
    bundle.set_args(&["cat", "/proc/self/mountinfo"]);
    let rt = Runtime::new();
    parse_mountinfo(&rt.run_to_completion(&bundle))
}

fn host_dir_with_file() -> HostDir {
    let dir = HostDir::new();
    fs::write(dir.join("file"), "from host").unwrap();
    dir
}

#[test]
fn default_filesystems_have_their_types() {
    let mounts = container_mounts(Bundle::busybox(&[]));
    for (path, fs_type) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        assert_eq!(mount_at(&mounts, path).fs_type, fs_type, "type of {path}");
    }
    // runc's default spec mounts /sys with "ro".
    assert!(
        has(&mount_at(&mounts, "/sys").options, "ro"),
        "/sys is not read-only"
    );
}

#[test]
fn bind_mount_read_only_rejects_writes() {
    let host = host_dir_with_file();
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /data/file; echo; touch /data/new 2>/dev/null && echo writable || echo read-only",
    ]);
    bundle.add_mount(json!({
        "destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]
    }));
    let rt = Runtime::new();
    assert_eq!(rt.run_to_completion(&bundle), "from host\nread-only\n");
    assert!(!host.join("new").exists());
}

#[test]
fn bind_mount_read_write_writes_reach_the_host() {
    let host = host_dir_with_file();
    let mut bundle = Bundle::busybox(&["sh", "-c", "echo from container > /data/new"]);
    bundle.add_mount(json!({
        "destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "rw"]
    }));
    let rt = Runtime::new();
    rt.run_to_completion(&bundle);
    assert_eq!(
        fs::read_to_string(host.join("new")).unwrap(),
        "from container\n"
    );
}

#[test]
fn mount_flags_show_in_mountinfo() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(json!({
        "destination": "/flagged", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec"]
    }));
    bundle.add_mount(json!({ "destination": "/plain", "type": "tmpfs", "source": "tmpfs" }));
    let mounts = container_mounts(bundle);
    let flagged = &mount_at(&mounts, "/flagged").options;
    let plain = &mount_at(&mounts, "/plain").options;
    for flag in ["nosuid", "nodev", "noexec"] {
        assert!(
            has(flagged, flag),
            "{flag} missing on /flagged: {flagged:?}"
        );
        assert!(
            !has(plain, flag),
            "{flag} set on /plain without being asked: {plain:?}"
        );
    }
}

#[test]
fn default_devices_exist() {
    let devices = [
        ("/dev/null", "1:3"),
        ("/dev/zero", "1:5"),
        ("/dev/full", "1:7"),
        ("/dev/random", "1:8"),
        ("/dev/urandom", "1:9"),
        ("/dev/tty", "5:0"),
    ];
    let paths: Vec<&str> = devices.iter().map(|(path, _)| *path).collect();
    let script = format!("stat -c '%n %F %t:%T' {}", paths.join(" "));
    let bundle = Bundle::busybox(&["sh", "-c", &script]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    let expected: String = devices
        .iter()
        .map(|(path, numbers)| format!("{path} character special file {numbers}\n"))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn dev_symlinks_and_ptmx() {
    let bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "for l in fd stdin stdout stderr; do readlink /dev/$l; done; \
         stat -L -c '%F %t:%T' /dev/ptmx",
    ]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    // config-linux.md: /dev/ptmx is "a bind-mount or symlink of the container's
    // /dev/pts/ptmx", i.e. the new devpts instance's multiplexer (5:2).
    assert_eq!(
        out,
        "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n\
         character special file 5:2\n"
    );
}

/// CVE-2021-30465 family: a rootfs symlink pointing at an absolute host path must be
/// resolved inside the rootfs, never followed onto the host.
#[test]
fn mount_through_a_rootfs_symlink_stays_in_the_rootfs() {
    let host = HostDir::new();
    let mut bundle = Bundle::busybox(&["stat", "-f", "-c", "%T", "/evil/x"]);
    std::os::unix::fs::symlink(host.path(), bundle.rootfs().join("evil")).unwrap();
    bundle.add_mount(json!({ "destination": "/evil/x", "type": "tmpfs", "source": "tmpfs" }));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    // Refusing the mount is as good as confining it; if the container ran, the tmpfs
    // must be where the container looks for it (runc puts it at rootfs/<host path>/x).
    if out.success() {
        assert_eq!(out.stdout, "tmpfs\n", "{}", out.describe());
    }

    let entries: Vec<_> = fs::read_dir(&host).unwrap().collect();
    assert!(
        entries.is_empty(),
        "the host dir was written to: {entries:?}\n{}",
        out.describe()
    );
    assert_eq!(mounts_mentioning(&host), Vec::<String>::new());
    rt.assert_nothing_left(&id, &bundle);
}

/// A masked path reads as empty (files) or lists nothing (directories); one absent on
/// the host stays absent.
#[test]
fn masked_paths_are_empty() {
    let mut masked: Vec<String> = Bundle::busybox(&[]).config()["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    // Always present, so the check does not depend on this kernel's /proc.
    masked.push("/proc/version".into());
    let mut bundle = Bundle::busybox(&[]);
    bundle.config_mut()["linux"]["maskedPaths"] = json!(masked);
    let script: String = masked
        .iter()
        .map(|p| {
            format!(
                "if [ -d {p} ]; then echo \"{p} dir $(ls -A {p} | wc -l)\"; \
                 elif [ -e {p} ]; then echo \"{p} file $(cat {p} 2>/dev/null | wc -c)\"; \
                 else echo \"{p} absent\"; fi; "
            )
        })
        .collect();
    bundle.set_args(&["sh", "-c", &script]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);

    let expected: String = masked
        .iter()
        .map(|p| {
            let host = Path::new(p);
            let what = if host.is_dir() {
                "dir 0"
            } else if host.exists() {
                "file 0"
            } else {
                "absent"
            };
            format!("{p} {what}\n")
        })
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn readonly_paths_reject_writes() {
    let bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "echo x 2>/dev/null > /proc/sys/kernel/hostname && echo writable || echo read-only; \
         grep ' /proc/sys ' /proc/self/mountinfo",
    ]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    let (first, mountinfo) = out.split_once('\n').unwrap();
    assert_eq!(first, "read-only");
    let proc_sys = mount_at(&parse_mountinfo(mountinfo), "/proc/sys").clone();
    assert!(has(&proc_sys.options, "ro"), "{proc_sys:?}");
}

/// config.md "Mounts" (spec 1.3): a relative destination MAY be given on
/// Linux and MUST be read as relative to "/".
#[test]
fn a_relative_destination_is_relative_to_the_root() {
    let mut bundle = Bundle::busybox(&[]);
    bundle.add_mount(json!({
        "destination": "relative/dir", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let mounts = container_mounts(bundle);
    let mount = mount_at(&mounts, "/relative/dir");
    assert_eq!(mount.fs_type, "tmpfs", "{mount:?}");
}

/// config-linux.md "Mount Label": on a host without SELinux the label has
/// nowhere to go; podman, CRI-O and docker set it on every SELinux-capable
/// config, so it is accepted and ignored (docs/cli.md), and no mount gets a
/// `context=` the kernel would refuse.
#[test]
fn a_mount_label_without_selinux_is_ignored() {
    if Path::new("/sys/fs/selinux/enforce").exists() {
        berth_conformance::skip("the host has SELinux: the label would be applied");
        return;
    }
    if !berth_conformance::berth_only(
        "runc 1.1.5 passes context= to tmpfs without SELinux, and the mount fails",
    ) {
        return;
    }
    let mut bundle = Bundle::busybox(&[]);
    bundle.edit(|c| {
        c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c715,c811")
    });
    bundle.add_mount(tmpfs_mount("/scratch", &[]));
    let mounts = container_mounts(bundle);
    for path in ["/scratch", "/dev", "/dev/shm"] {
        let mount = mount_at(&mounts, path);
        assert!(
            !(mount.options.iter())
                .chain(&mount.super_options)
                .any(|o| o.starts_with("context=")),
            "{path}: {mount:?}"
        );
    }
}
