//! Rootless containers, as runc runs them: a user without privilege runs
//! the runtime (no `--root`: the state goes under $XDG_RUNTIME_DIR), the
//! config from `spec --rootless` maps that user to root in a new user
//! namespace, and without a delegated cgroup the container has none.
//!
//! Each test runs the runtime as `berth-rootless`, a system user it makes
//! if missing, from a copy of the binary any user can run.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_conformance::unprivileged_user::{
    give_subordinate_ids, runnable_runtime, user_ids, SUBORDINATE_START, USER,
};
use berth_conformance::{
    berth_only, cgroups_named, mounts_mentioning, processes_using, scratch_dir, skip, unique_name,
    wait_until, Bundle, RUNC,
};
use serde_json::{json, Value};

static COMMANDS: AtomicUsize = AtomicUsize::new(0);

struct Rootless {
    uid: u32,
    gid: u32,
    bin: PathBuf,
    /// $XDG_RUNTIME_DIR for the runtime, the user's own.
    xdg: PathBuf,
}

/// The user (made once), a runnable copy of the runtime, a fresh runtime dir.
fn rootless() -> Option<Rootless> {
    let Some((uid, gid)) = user_ids() else {
        skip("cannot make the user berth-rootless");
        return None;
    };
    let dir = scratch_dir().join(format!("{}.rootless", unique_name()));
    let xdg = dir.join("xdg");
    fs::create_dir_all(&xdg).expect("mkdir the runtime dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    chown(&xdg, Some(uid), Some(gid)).expect("chown the runtime dir");
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod the runtime dir");
    let bin = runnable_runtime(&dir);
    Some(Rootless { uid, gid, bin, xdg })
}

impl Rootless {
    /// The runtime as the user, in `cwd`, with no `--root`. Output goes
    /// through files: a container `create` leaves behind inherits them, and
    /// would hold a pipe open for as long as it lives.
    fn cmd(&self, cwd: &Path, args: &[&str]) -> Output {
        let n = COMMANDS.fetch_add(1, Ordering::Relaxed);
        let (out_path, err_path) = (
            self.xdg.with_extension(format!("{n}.out")),
            self.xdg.with_extension(format!("{n}.err")),
        );
        let run = || {
            Command::new(&self.bin)
                .args(args)
                .current_dir(cwd)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("XDG_RUNTIME_DIR", &self.xdg)
                .uid(self.uid)
                .gid(self.gid)
                .stdin(Stdio::null())
                .stdout(fs::File::create(&out_path).expect("create the stdout file"))
                .stderr(fs::File::create(&err_path).expect("create the stderr file"))
                .status()
        };
        // The copy was written moments ago: a child another test forked
        // meanwhile holds the writing descriptor until it execs (ETXTBSY).
        let mut status = run();
        for _ in 0..100 {
            match &status {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => break,
            }
            status = run();
        }
        let status = status.expect("run the runtime as berth-rootless");
        Output {
            status,
            stdout: fs::read(&out_path).unwrap_or_default(),
            stderr: fs::read(&err_path).unwrap_or_default(),
        }
    }

    fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.cmd(cwd, args);
        assert!(
            out.status.success(),
            "{args:?} as {USER}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `spec --rootless`, made by the user in a directory of its own.
    fn spec(&self) -> Value {
        let dir = self.xdg.join(format!("spec-{}", unique_name()));
        fs::create_dir(&dir).expect("mkdir for spec");
        chown(&dir, Some(self.uid), Some(self.gid)).expect("chown");
        self.ok(&dir, &["spec", "--rootless"]);
        let text = fs::read_to_string(dir.join("config.json")).expect("spec wrote config.json");
        let _ = fs::remove_dir_all(&dir);
        serde_json::from_str(&text).expect("config.json is JSON")
    }

    /// A busybox bundle whose config is the rootless spec running `args`.
    fn bundle(&self, args: &[&str]) -> Bundle {
        let mut config = self.spec();
        let mut bundle = Bundle::busybox(args);
        config["process"]["args"] = json!(args);
        config["process"]["terminal"] = json!(false);
        config["root"]["path"] = json!(bundle.rootfs());
        bundle.edit(|c| *c = config);
        bundle.write_config();
        bundle
    }

    /// State directories of `id` under the user's runtime dir.
    fn state_dirs(&self, id: &str) -> Vec<PathBuf> {
        fs::read_dir(&self.xdg)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(id))
            .filter(|p| p.exists())
            .collect()
    }

    fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
        assert_eq!(self.state_dirs(id), Vec::<PathBuf>::new(), "state left");
        assert_eq!(cgroups_named(id), Vec::<PathBuf>::new(), "cgroups left");
        assert_eq!(
            processes_using(&bundle.rootfs()),
            Vec::<String>::new(),
            "processes left"
        );
        assert_eq!(
            mounts_mentioning(bundle.path()),
            Vec::<String>::new(),
            "mounts left"
        );
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        // Whatever a failed test left: delete --force every container of the user.
        let listed = self.cmd(&self.xdg, &["list", "-q"]);
        for id in String::from_utf8_lossy(&listed.stdout).lines() {
            let _ = self.cmd(&self.xdg, &["delete", "--force", id]);
        }
        if let Some(dir) = self.xdg.parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn spec_rootless_is_runcs() {
    let Some(user) = rootless() else { return };
    if !Path::new(RUNC).exists() {
        skip("runc is not installed");
        return;
    }
    let ours = user.spec();
    let dir = user.xdg.join("runc-spec");
    fs::create_dir(&dir).expect("mkdir");
    chown(&dir, Some(user.uid), Some(user.gid)).expect("chown");
    let out = Command::new(RUNC)
        .args(["spec", "--rootless"])
        .current_dir(&dir)
        .uid(user.uid)
        .gid(user.gid)
        .output()
        .expect("run runc spec");
    assert!(
        out.status.success(),
        "runc spec --rootless: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runcs: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).expect("runc's config"))
            .expect("JSON");
    assert_eq!(
        ours["linux"], runcs["linux"],
        "the user namespace, its maps, no network namespace, no resources"
    );
    assert_eq!(
        ours["mounts"], runcs["mounts"],
        "/sys bound, not mounted; devpts without gid=5"
    );
    assert_eq!(
        ours["linux"]["uidMappings"],
        json!([{ "containerID": 0, "hostID": user.uid, "size": 1 }])
    );
}

#[test]
fn a_user_runs_a_container_whose_root_is_that_user_on_the_host() {
    let Some(user) = rootless() else { return };
    let bundle = user.bundle(&["sleep", "1000"]);
    let id = unique_name();
    let bundle_dir = bundle.path().to_str().expect("UTF-8 path");
    user.ok(&user.xdg, &["create", "--bundle", bundle_dir, &id]);
    assert_eq!(
        user.state_dirs(&id).len(),
        1,
        "the state lives under $XDG_RUNTIME_DIR"
    );
    user.ok(&user.xdg, &["start", &id]);
    let state: Value =
        serde_json::from_str(&user.ok(&user.xdg, &["state", &id])).expect("state is JSON");
    assert_eq!(state["status"], "running");

    // The container's root is the user, seen from the host.
    let pid = state["pid"].as_i64().expect("a pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the init's status");
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(host_uid, Some(vec![user.uid.to_string(); 4]), "{status}");

    let inside = user.ok(
        &user.xdg,
        &[
            "exec",
            &id,
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; touch /proc/sysrq-trigger 2>/dev/null || echo ro",
        ],
    );
    let lines: Vec<String> = inside
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        ["0".to_string(), format!("0 {} 1", user.uid), "ro".into()]
    );

    user.ok(&user.xdg, &["kill", &id, "KILL"]);
    assert!(
        wait_until(Duration::from_secs(10), || user
            .cmd(&user.xdg, &["state", &id])
            .stdout
            .windows(9)
            .any(|w| w == b"\"stopped\"")),
        "the container did not stop"
    );
    user.ok(&user.xdg, &["delete", &id]);
    user.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_rootless_config_with_limits_and_no_delegated_cgroup_is_refused() {
    let Some(user) = rootless() else { return };
    let mut bundle = user.bundle(&["true"]);
    bundle.edit(|c| c["linux"]["resources"] = json!({ "memory": { "limit": 33554432 } }));
    bundle.write_config();
    let id = unique_name();
    let out = user.cmd(
        &user.xdg,
        &[
            "run",
            "--bundle",
            bundle.path().to_str().expect("UTF-8"),
            &id,
        ],
    );
    assert!(!out.status.success(), "a memory limit without a cgroup ran");
    if berth_only("the error names the resources and the missing cgroup") {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("linux.resources") && err.contains("cgroup"),
            "{err}"
        );
    }
    user.assert_nothing_left(&id, &bundle);
}

/// Mappings beyond the user's own id go through newuidmap/newgidmap, within
/// the ranges /etc/subuid and /etc/subgid give the user.
#[test]
fn subordinate_ranges_map_through_newuidmap_and_others_are_refused() {
    let Some(user) = rootless() else { return };
    if Command::new("newuidmap").arg("--help").output().is_err() {
        skip("newuidmap is not installed (the uidmap package)");
        return;
    }
    give_subordinate_ids();
    let with_maps = |host_start: u32| {
        let mut bundle = user.bundle(&["cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
        bundle.edit(|c| {
            c["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": user.uid, "size": 1 }, { "containerID": 1, "hostID": host_start, "size": 1000 }]);
            c["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": user.gid, "size": 1 }, { "containerID": 1, "hostID": host_start, "size": 1000 }]);
        });
        bundle.write_config();
        bundle
    };
    let bundle = with_maps(SUBORDINATE_START);
    let id = unique_name();
    let out = user.ok(
        &user.xdg,
        &[
            "run",
            "--bundle",
            bundle.path().to_str().expect("UTF-8"),
            &id,
        ],
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            format!("0 {} 1", user.uid),
            format!("1 {SUBORDINATE_START} 1000"),
            format!("0 {} 1", user.gid),
            format!("1 {SUBORDINATE_START} 1000")
        ]
    );
    user.assert_nothing_left(&id, &bundle);

    // A range the user was not given.
    let bundle = with_maps(2400000);
    let id = unique_name();
    let out = user.cmd(
        &user.xdg,
        &[
            "run",
            "--bundle",
            bundle.path().to_str().expect("UTF-8"),
            &id,
        ],
    );
    assert!(
        !out.status.success(),
        "a mapping outside /etc/subuid was written"
    );
    if berth_only("the error names newuidmap") {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("newuidmap"), "{err}");
    }
    user.assert_nothing_left(&id, &bundle);
}
