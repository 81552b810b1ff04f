//! Podman for one test, with the runtime under test as its OCI runtime (`--runtime PATH`)
//! and storage, run and temporary directories of its own under the scratch directory.
//! Containers run from a busybox rootfs directory (`--rootfs`), so no image is needed.
//! Dropping it force-removes every container and removes the directory.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine::{
    engine_installed, in_terminal, processes_with_args, remove_scratch, run_program,
};
use crate::{cgroups_named, mounts_mentioning, pid_alive, runtime, scratch_dir, Bundle, Output};

/// `podman run` flags every container needs here: the machine lacks CAP_SYS_RESOURCE, so
/// podman's default rlimits (above the hard limits it has) cannot be set; no network, so
/// no netavark.
pub const RUN_FLAGS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network",
    "none",
];

pub struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
    rootfs_bundle: Bundle,
    commands: AtomicUsize,
}

impl Podman {
    /// `None` (after a skip note) when podman or conmon is not installed.
    pub fn new() -> Option<Podman> {
        if !engine_installed("podman", &["podman", "conmon"]) {
            return None;
        }
        // Podman refuses a --runroot longer than 50 characters: a short name, not the test's.
        static PODMEN: AtomicUsize = AtomicUsize::new(0);
        let n = PODMEN.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_dir().join(format!("pm-{}-{n}", std::process::id()));
        fs::create_dir_all(dir.join("logs"))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let runtime = runtime();
        fs::write(dir.join("containers.conf"), containers_conf(&runtime))
            .expect("write containers.conf");
        Some(Podman {
            dir,
            runtime,
            rootfs_bundle: Bundle::busybox(&["sh"]),
            commands: AtomicUsize::new(0),
        })
    }

    /// The busybox root filesystem containers run from.
    pub fn rootfs(&self) -> String {
        self.rootfs_bundle.rootfs().to_string_lossy().into_owned()
    }

    /// `podman GLOBAL... args...`.
    pub fn podman(&self, args: &[&str]) -> Output {
        let full = self.full_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program("podman", &full, &self.env(), &self.dir.join("logs"), n)
    }

    /// Like `podman`, with `NOTIFY_SOCKET` set to `socket`, as systemd runs a
    /// `Type=notify` unit (Quadlet, `--sdnotify=container`).
    pub fn podman_notifying(&self, args: &[&str], socket: &std::path::Path) -> Output {
        let full = self.full_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        let [conf] = self.env();
        let env = [conf, ("NOTIFY_SOCKET", socket.to_path_buf())];
        run_program("podman", &full, &env, &self.dir.join("logs"), n)
    }

    /// Like `podman`, inside a pseudo-terminal (`script`), for `-t`.
    pub fn podman_in_terminal(&self, args: &[&str]) -> Output {
        let full = self.full_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program(
            "script",
            &in_terminal("podman", &full),
            &self.env(),
            &self.dir.join("logs"),
            n,
        )
    }

    /// `run [flags] RUN_FLAGS --rootfs ROOTFS command...` (flags such as `-d`, `--name`, `-t`).
    pub fn run_args(&self, flags: &[&str], command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into()];
        args.extend(flags.iter().chain(RUN_FLAGS).map(|f| f.to_string()));
        args.push("--rootfs".into());
        args.push(self.rootfs());
        args.extend(command.iter().map(|c| c.to_string()));
        args
    }

    /// CONTAINERS_CONF names this podman's containers.conf.
    fn env(&self) -> [(&'static str, PathBuf); 1] {
        [("CONTAINERS_CONF", self.dir.join("containers.conf"))]
    }

    fn full_args(&self, args: &[&str]) -> Vec<String> {
        let mut full: Vec<String> = vec![
            "--root".into(),
            self.dir.join("root").to_string_lossy().into_owned(),
            "--runroot".into(),
            self.dir.join("rr").to_string_lossy().into_owned(),
            "--tmpdir".into(),
            self.dir.join("tmp").to_string_lossy().into_owned(),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            // Before the command: `podman run --runtime` is another flag.
            "--runtime".into(),
            self.runtime.to_string_lossy().into_owned(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        full
    }

    /// `podman inspect --format FORMAT name`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.podman(&["inspect", "--format", format, name]);
        out.ok();
        out.stdout.trim().to_owned()
    }

    /// What container `id` left behind: the runtime's state dir (podman runs it as root
    /// with its default `--root`), a cgroup, the init or conmon, a
    /// mount or process in the rootfs.
    pub fn leftovers(&self, id: &str, pids: &[i64]) -> Vec<String> {
        let mut found = Vec::new();
        let name = self
            .runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The runtime's default root: /run/<its name>, and /run/berth for Berth under
        // another name (a wrapper script, say).
        let mut roots = vec![PathBuf::from("/run").join(name)];
        if crate::is_berth() {
            roots.push(PathBuf::from("/run/berth"));
        }
        for root in roots {
            let state = root.join(id);
            if state.exists() {
                found.push(format!("runtime state dir {}", state.display()));
            }
        }
        found.extend(
            cgroups_named(&format!("libpod-{id}"))
                .into_iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        found.extend(
            pids.iter()
                .filter(|p| **p > 0 && pid_alive(**p))
                .map(|p| format!("process {p}")),
        );
        let userdata = self.dir.join("rr/vfs-containers").join(id);
        found.extend(
            mounts_mentioning(&userdata)
                .into_iter()
                .map(|m| format!("mount: {m}")),
        );
        found.extend(crate::processes_using(&self.rootfs_bundle.rootfs()));
        found.extend(
            processes_with_args(&["-c", id])
                .into_iter()
                .filter(|p| p.contains("conmon")),
        );
        found
    }

    /// Nothing of the container is left once podman is done with it; conmon
    /// and the container's processes exit after `rm -f` returns, so they
    /// get a few seconds to go.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, pids: &[i64]) {
        crate::wait_until(std::time::Duration::from_secs(10), || {
            self.leftovers(id, pids).is_empty()
        });
        let found = self.leftovers(id, pids);
        assert!(
            found.is_empty(),
            "container {id} left things behind:\n  {}",
            found.join("\n  ")
        );
    }
}

/// The runtime's name joins podman's list of runtimes that take `--log-format=json`
/// (as docs/podman.md says to do): podman then gives it `--log FILE` and shows the
/// error message from that log, rather than the whole logrus line from its stderr.
pub(crate) fn containers_conf(runtime: &std::path::Path) -> String {
    let name = runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "[engine]\nruntime_supports_json = [\"crun\", \"runc\", \"kata\", \"runsc\", \"youki\", \"krun\", {name:?}]\n"
    )
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.podman(&["rm", "--all", "--force", "--time", "0"]);
        remove_scratch(&self.dir);
    }
}
