//! Rootless podman: `berth-rootless` runs podman, which makes its own user
//! namespace (newuidmap, the user's subordinate ids) and runs the runtime
//! under test inside it as that namespace's root. Storage, run and
//! temporary directories and $HOME are the test's own; cgroupfs, since
//! there is no systemd user manager here. Containers run from a busybox
//! rootfs directory the user owns (`--rootfs`), so no image is needed.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine::{engine_installed, find_program};
use crate::unprivileged_user::{
    give_subordinate_ids, run_as_user, runnable_runtime, user_ids, USER,
};
use crate::{processes_using, scratch_dir, skip, Bundle, Output};

pub struct RootlessPodman {
    dir: PathBuf,
    podman: PathBuf,
    runtime: PathBuf,
    rootfs_bundle: Bundle,
    commands: AtomicUsize,
}

impl RootlessPodman {
    /// `None` (after a skip note) when podman, conmon or newuidmap is
    /// missing, or the user cannot be made.
    pub fn new() -> Option<RootlessPodman> {
        if !engine_installed("podman", &["podman", "conmon"]) {
            return None;
        }
        let podman = find_program("podman")?;
        if find_program("newuidmap").is_none() {
            skip("newuidmap is not installed (the uidmap package): rootless podman needs it");
            return None;
        }
        let Some((uid, gid)) = user_ids() else {
            skip(&format!("cannot make the user {USER}"));
            return None;
        };
        give_subordinate_ids();
        // Podman refuses a --runroot longer than 50 characters: a short name.
        static PODMEN: AtomicUsize = AtomicUsize::new(0);
        let n = PODMEN.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_dir().join(format!("rpm-{}-{n}", std::process::id()));
        fs::create_dir_all(dir.join("logs")).expect("mkdir the podman dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        for own in ["home", "xdg", "root", "rr", "tmp"] {
            let path = dir.join(own);
            fs::create_dir_all(&path).expect("mkdir");
            chown(&path, Some(uid), Some(gid)).expect("chown");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let runtime = runnable_runtime(&dir);
        fs::write(
            dir.join("containers.conf"),
            crate::podman::containers_conf(&runtime),
        )
        .expect("write containers.conf");
        let rootfs_bundle = Bundle::busybox(&["sh"]);
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(rootfs_bundle.path())
            .status()
            .expect("run chown");
        assert!(status.success(), "chown the rootfs");
        Some(RootlessPodman {
            dir,
            podman,
            runtime,
            rootfs_bundle,
            commands: AtomicUsize::new(0),
        })
    }

    /// The busybox root filesystem containers run from.
    pub fn rootfs(&self) -> PathBuf {
        self.rootfs_bundle.rootfs()
    }

    /// The user's $XDG_RUNTIME_DIR, where the runtime keeps its state.
    pub fn xdg_runtime_dir(&self) -> PathBuf {
        self.dir.join("xdg")
    }

    /// `podman GLOBAL... args...` as the user.
    pub fn podman(&self, args: &[&str]) -> Output {
        let path = |p: &str| self.dir.join(p).to_string_lossy().into_owned();
        let mut full: Vec<String> = vec![
            "--root".into(),
            path("root"),
            "--runroot".into(),
            path("rr"),
            "--tmpdir".into(),
            path("tmp"),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--runtime".into(),
            self.runtime.to_string_lossy().into_owned(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let (home, xdg, conf) = (
            self.dir.join("home"),
            self.xdg_runtime_dir(),
            self.dir.join("containers.conf"),
        );
        let env: [(&str, &Path); 3] = [
            ("HOME", &home),
            ("XDG_RUNTIME_DIR", &xdg),
            ("CONTAINERS_CONF", &conf),
        ];
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_as_user(&self.podman, &full, &env, &home, &self.dir.join("logs"), n)
    }

    /// Processes still in the rootfs, and any container state the runtime
    /// keeps under $XDG_RUNTIME_DIR (`<its name>/`, `berth/`): this podman
    /// is the test's own, so every container there was the test's.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = processes_using(&self.rootfs());
        let name = self.runtime.file_name().unwrap_or_default();
        for root in [Path::new(name), Path::new("berth")] {
            let dir = self.xdg_runtime_dir().join(root);
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                found.push(format!("runtime state {}", entry.path().display()));
            }
        }
        found
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        self.podman(&["rm", "--all", "--force", "--time", "0"]);
        // The pause process podman keeps its user namespace alive with.
        if let Ok(pid) = fs::read_to_string(self.dir.join("tmp/pause.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: kill(2) on the pid podman recorded for this test's own pause process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        crate::engine::remove_scratch(&self.dir);
    }
}
