//! Docker's container flags with the runtime under test (see engine_docker.rs for the
//! private dockerd and docs/docker.md): `--privileged`, `--device`, `--read-only` with
//! `--tmpfs`, volumes at device paths and on the wrong kind of target, and a setuid
//! program under docker's default seccomp profile.

use std::fs;
use std::path::Path;

use berth_conformance::docker::{Docker, SETUID_IDS};
use berth_conformance::{cap_mask, unique_name};

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `--privileged`: every capability docker knows, the host's devices as nodes, all
/// devices allowed; /dev/ptmx stays the link into the container's own devpts, and a
/// terminal comes from there.
#[test]
fn privileged_gets_every_capability_and_the_hosts_devices() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let runtime_name = docker.privileged_runtime_name();
    // A host device outside docker's default set, if this host has one.
    let host_device = ["/dev/kmsg", "/dev/loop-control", "/dev/mem", "/dev/fuse"]
        .into_iter()
        .find(|d| Path::new(d).exists());
    let script = format!(
        "grep -E '^Cap(Eff|Bnd)' /proc/self/status; readlink /dev/ptmx; \
         stat -L -c '%F %t:%T' /dev/ptmx; {}",
        host_device
            .map(|d| format!("stat -c '%F %t:%T' {d}"))
            .unwrap_or_default()
    );
    let name = unique_name();
    let args = docker.run_args_with(
        runtime_name,
        &["--name", &name, "--privileged"],
        &["sh", "-c", &script],
    );
    let out = docker.docker(&strs(&args));
    let lines: Vec<&str> = out.ok().stdout.lines().collect();
    let mask = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0)
    };
    let (effective, bounding) = (mask("CapEff:"), mask("CapBnd:"));
    assert_eq!(effective, bounding, "{}", out.describe());
    let beyond_default = cap_mask(&[
        "CAP_SYS_ADMIN",
        "CAP_SYS_MODULE",
        "CAP_NET_ADMIN",
        "CAP_SYS_PTRACE",
    ]);
    assert_eq!(
        effective & beyond_default,
        beyond_default,
        "{}",
        out.describe()
    );
    assert_eq!(
        lines[2..4],
        ["pts/ptmx", "character special file 5:2"],
        "{}",
        out.describe()
    );
    if let Some(device) = host_device {
        let expected = std::process::Command::new("stat")
            .args(["-c", "%F %t:%T", device])
            .output()
            .expect("stat");
        assert_eq!(
            lines[4],
            String::from_utf8_lossy(&expected.stdout).trim(),
            "{device}"
        );
    }
    let id = docker.inspect(&name, "{{.Id}}");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[]);

    let args = docker.run_args_with(
        runtime_name,
        &["-t", "--rm", "--privileged"],
        &["sh", "-c", "tty; exit 7"],
    );
    let out = docker.docker_in_terminal(&strs(&args));
    assert_eq!(out.code, 7, "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/0"), "{}", out.describe());
}

/// `--device` makes the named nodes (at another path too), except /dev/ptmx, which
/// stays the link into the container's devpts, as runc leaves it.
#[test]
fn device_flags_add_the_named_nodes() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let args = docker.run_args(
        &[
            "--name",
            &name,
            "--device",
            "/dev/ptmx",
            "--device",
            "/dev/null:/dev/mynull",
        ],
        &[
            "sh",
            "-c",
            "readlink /dev/ptmx; stat -c '%F %t:%T' /dev/mynull; echo x >/dev/mynull && echo wrote",
        ],
    );
    let out = docker.docker(&strs(&args));
    assert_eq!(
        out.ok().stdout,
        "pts/ptmx\ncharacter special file 1:3\nwrote\n",
        "{}",
        out.describe()
    );
    let id = docker.inspect(&name, "{{.Id}}");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[]);
}

/// `--read-only` with `--tmpfs /x`: the rootfs refuses writes, the tmpfs takes them.
#[test]
fn read_only_rootfs_with_a_tmpfs() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let args = docker.run_args(
        &["--name", &name, "--read-only", "--tmpfs", "/x"],
        &[
            "sh",
            "-c",
            "touch /x/a && echo x-writable; touch /etc/a 2>/dev/null || echo rootfs-read-only; \
             grep ' /x ' /proc/self/mountinfo | cut -d' ' -f5,9; \
             awk '$5 == \"/\" {print $6}' /proc/self/mountinfo | grep -qw ro && echo root-mounted-ro",
        ],
    );
    let out = docker.docker(&strs(&args));
    assert_eq!(
        out.ok().stdout,
        "x-writable\nrootfs-read-only\n/x tmpfs\nroot-mounted-ro\n",
        "{}",
        out.describe()
    );
    let id = docker.inspect(&name, "{{.Id}}");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[]);
}

/// Under docker's default seccomp profile (filter mode 2), a setuid-root program run by
/// user 1000 gets euid 0; `--security-opt no-new-privileges` stops that.
#[test]
fn a_setuid_program_under_the_default_seccomp_profile() {
    let Some(docker) = Docker::start() else {
        return;
    };
    for (flags, expected) in [
        (&[][..], "NoNewPrivs:\t0\nSeccomp:\t2\nruid=1000 euid=0\n"),
        (
            &["--security-opt", "no-new-privileges"][..],
            "NoNewPrivs:\t1\nSeccomp:\t2\nruid=1000 euid=1000\n",
        ),
    ] {
        let name = unique_name();
        let mut all = vec!["--name", name.as_str(), "--user", "1000:1000"];
        all.extend(flags);
        let script =
            format!("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; exec {SETUID_IDS}");
        let args = docker.run_args(&all, &["sh", "-c", &script]);
        let out = docker.docker(&strs(&args));
        assert_eq!(out.ok().stdout, expected, "{flags:?}: {}", out.describe());
        let id = docker.inspect(&name, "{{.Id}}");
        docker.docker(&["rm", &name]).ok();
        docker.assert_nothing_left(&id, &[]);
    }
}

/// A volume over a device path (`-v /dev/urandom:/dev/random`, a common idiom) stays:
/// the runtime makes no device over a mount of the config.
#[test]
fn a_volume_over_a_device_path_stays() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let args = docker.run_args(
        &["--name", &name, "-v", "/dev/urandom:/dev/random"],
        &[
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/random; head -c 4 /dev/random | wc -c",
        ],
    );
    let out = docker.docker(&strs(&args));
    assert_eq!(out.ok().stdout, "1:9\n4\n", "{}", out.describe());
    let id = docker.inspect(&name, "{{.Id}}");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[]);
}

/// A file mounted on a directory of the image, or a directory or tmpfs on a file, fails
/// with "not a directory", which docker reads to add its hint about mixed-up paths.
#[test]
fn a_mount_on_the_wrong_kind_of_target_says_not_a_directory() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let file = docker.dir().join("a-file");
    fs::write(&file, "x").unwrap();
    let dir = docker.dir().join("a-dir");
    fs::create_dir_all(&dir).unwrap();
    let file_on_dir = format!("{}:/etc", file.display());
    let dir_on_file = format!("{}:/etc/passwd", dir.display());
    for flags in [
        ["-v", file_on_dir.as_str()],
        ["-v", dir_on_file.as_str()],
        ["--tmpfs", "/etc/passwd"],
    ] {
        let name = unique_name();
        let mut all = vec!["--name", name.as_str()];
        all.extend(flags);
        let args = docker.run_args(&all, &["true"]);
        let out = docker.docker(&strs(&args));
        let text = out.fails();
        assert!(
            text.contains(": not a directory"),
            "{flags:?}: {}",
            out.describe()
        );
        assert!(
            text.contains("Are you trying to mount a directory onto a file"),
            "{flags:?}: docker gave no hint: {}",
            out.describe()
        );
        let id = docker.inspect(&name, "{{.Id}}");
        docker.docker(&["rm", &name]).ok();
        docker.assert_nothing_left(&id, &[]);
    }
}
