//! The runtime as uid 0 of a user namespace it did not make, as rootless
//! podman, rootless docker and buildah run it: `berth-rootless` makes the
//! namespace (`unshare --user --map-root-user`, with `--map-auto` for the
//! multi-id map podman writes through newuidmap), a process keeps it alive,
//! and each runtime command enters it (`nsenter --user`), as podman's
//! commands enter its pause process's.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::unprivileged_user::{
    give_subordinate_ids, run_as_user, runnable_runtime, user_ids, USER,
};
use crate::{
    cgroups_named, mounts_mentioning, processes_using, scratch_dir, skip, unique_name, wait_until,
    Bundle, Output,
};

/// The ids the namespace maps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdMap {
    /// `--map-root-user`: the user's own uid and gid, as 0.
    RootOnly,
    /// `--map-root-user --map-auto`: 0 as above, then 1..65535 from the
    /// user's subordinate ranges (/etc/subuid, /etc/subgid).
    WithSubordinates,
}

/// A user namespace of `berth-rootless`'s, and the runtime to run in it.
pub struct ForeignUserns {
    pub uid: u32,
    pub gid: u32,
    /// The runtime's $XDG_RUNTIME_DIR, the user's own.
    pub xdg: PathBuf,
    dir: PathBuf,
    bin: PathBuf,
    holder: Child,
    commands: AtomicUsize,
}

impl ForeignUserns {
    /// `None` (after a skip note) when the user cannot be made or the tools
    /// to make the namespace are missing.
    pub fn new(map: IdMap) -> Option<ForeignUserns> {
        let Some((uid, gid)) = user_ids() else {
            skip(&format!("cannot make the user {USER}"));
            return None;
        };
        let unshare_help = Command::new("unshare").arg("--help").output();
        let Ok(help) = unshare_help else {
            skip("unshare is not installed (util-linux)");
            return None;
        };
        let mut unshare: Vec<&str> = vec!["--user", "--map-root-user"];
        if map == IdMap::WithSubordinates {
            if !String::from_utf8_lossy(&help.stdout).contains("--map-auto") {
                skip("this unshare has no --map-auto (util-linux 2.38 or later)");
                return None;
            }
            if Command::new("newuidmap").output().is_err() {
                skip("newuidmap is not installed (the uidmap package)");
                return None;
            }
            give_subordinate_ids();
            unshare.push("--map-auto");
        }
        let dir = scratch_dir().join(format!("{}.userns", unique_name()));
        let xdg = dir.join("xdg");
        fs::create_dir_all(&xdg).expect("mkdir the runtime dir");
        fs::create_dir_all(dir.join("logs")).expect("mkdir the log dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        chown(&xdg, Some(uid), Some(gid)).expect("chown the runtime dir");
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod");
        let bin = runnable_runtime(&dir);
        let holder = Command::new("unshare")
            .args(&unshare)
            .args(["sleep", "100000"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(&dir)
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run unshare as the user");
        let userns = ForeignUserns {
            uid,
            gid,
            xdg,
            dir,
            bin,
            holder,
            commands: AtomicUsize::new(0),
        };
        // unshare writes the maps, then becomes sleep.
        let pid = userns.holder.id();
        let ready = wait_until(Duration::from_secs(10), || {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        assert!(ready, "unshare {unshare:?} did not make the user namespace");
        Some(userns)
    }

    /// The namespace's uid map, as the user's processes in it see it.
    pub fn uid_map(&self) -> String {
        fs::read_to_string(format!("/proc/{}/uid_map", self.holder.id())).expect("the uid map")
    }

    /// The runtime, as the namespace's root, with no `--root`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.in_userns(&self.bin, args)
    }

    /// `program args...` as the namespace's root, as podman's commands are
    /// in its namespace. The user's own ids are 0 there: nsenter keeps them
    /// rather than setting them, which would call setgroups, and a map the
    /// user wrote itself denies that.
    pub fn in_userns(&self, program: &Path, args: &[&str]) -> Output {
        let mut full = vec![
            "--user".to_owned(),
            "--preserve-credentials".to_owned(),
            "--target".to_owned(),
            self.holder.id().to_string(),
            program.to_string_lossy().into_owned(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_as_user(
            Path::new("nsenter"),
            &full,
            &[("XDG_RUNTIME_DIR", &self.xdg)],
            &self.xdg,
            &self.dir.join("logs"),
            n,
        )
    }

    /// A busybox bundle with runc's default (rootful) config running `args`,
    /// owned by the namespace's root, as an engine's storage is.
    pub fn bundle(&self, args: &[&str]) -> Bundle {
        let bundle = Bundle::busybox(args);
        let status = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(bundle.path())
            .status()
            .expect("run chown");
        assert!(status.success(), "chown the bundle");
        bundle
    }

    /// Writes the bundle's config.json, and gives its path for `--bundle`.
    pub fn bundle_arg(bundle: &Bundle) -> &str {
        bundle.write_config();
        bundle.path().to_str().expect("a UTF-8 bundle path")
    }

    /// State directories of `id` under the runtime dir (`berth/`, `runc/`).
    pub fn state_dirs(&self, id: &str) -> Vec<PathBuf> {
        fs::read_dir(&self.xdg)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// No state directory, cgroup, process or mount of container `id`.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
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

impl Drop for ForeignUserns {
    fn drop(&mut self) {
        // Whatever a failed test left: delete --force every container.
        let listed = self.cmd(&["list", "-q"]);
        for id in listed.stdout.lines() {
            let _ = self.cmd(&["delete", "--force", id]);
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
