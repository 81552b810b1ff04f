//! A private containerd for one test: its own socket, root, state and config.toml under
//! the scratch directory, a busybox OCI image imported offline (built with umoci), and
//! `ctr` driving the runc shim (`io.containerd.runc.v2`) with the runtime under test as
//! its runc binary. Dropping it deletes every container, stops containerd and its shims,
//! and removes the directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::engine::{
    engine_installed, in_terminal, processes_with_args, remove_scratch, run_program, shim_socket_in,
};
use crate::{
    cgroups_named, mounts_mentioning, pid_alive, runtime, scratch_dir, wait_until, Bundle, Output,
};

/// The image imported into every private containerd.
pub const IMAGE: &str = "berth.test/busybox:latest";
const START_DEADLINE: Duration = Duration::from_secs(30);

pub struct Containerd {
    dir: PathBuf,
    /// The containerd namespace of this test's containers, unique to it: the shim adds it
    /// to the runc root, and ctr to the cgroup path (`/<namespace>/<id>`).
    namespace: String,
    socket: String,
    daemon: Option<Child>,
    runtime: PathBuf,
    commands: AtomicUsize,
}

impl Containerd {
    /// Starts containerd and imports the image; `None` (after a skip note) when containerd,
    /// ctr or umoci is not installed.
    pub fn start() -> Option<Containerd> {
        Containerd::start_with_env(&[])
    }

    /// Like `start`, with `env` added to containerd's environment (its shims inherit it).
    pub fn start_with_env(env: &[(&str, &str)]) -> Option<Containerd> {
        if !engine_installed(
            "containerd",
            &["containerd", "ctr", "umoci", "containerd-shim-runc-v2"],
        ) {
            return None;
        }
        // A short name, not the test's: a unix socket path has at most 107 bytes, and
        // containerd refuses more than 104.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_dir().join(format!("cd-{}-{n}", std::process::id()));
        fs::create_dir_all(dir.join("logs"))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let socket = dir.join("containerd.sock").to_string_lossy().into_owned();
        let config = dir.join("config.toml");
        fs::write(&config, config_toml(&dir, &socket)).expect("write config.toml");
        let log = fs::File::create(dir.join("containerd.log")).expect("create containerd.log");
        let daemon = Command::new("containerd")
            .env("PATH", shim_path(&dir))
            // Where Berth's shim keeps state: the runc shim's root (`run_args`).
            .env("BERTH_SHIM_ROOT", dir.join("runc"))
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config)
            .args(["--address", &socket])
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("state"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
        let namespace = format!("berth-{}-{n}", std::process::id());
        let mut containerd = Containerd {
            dir,
            namespace,
            socket,
            daemon: Some(daemon),
            runtime: runtime(),
            commands: AtomicUsize::new(0),
        };
        let up = wait_until(START_DEADLINE, || {
            let exited = containerd
                .daemon
                .as_mut()
                .is_some_and(|d| d.try_wait().ok().flatten().is_some());
            exited || containerd.ctr(&["version"]).success()
        }) && containerd
            .daemon
            .as_mut()
            .is_some_and(|d| d.try_wait().ok().flatten().is_none());
        assert!(up, "containerd did not come up: {}", containerd.log());
        let image = build_image(&containerd.dir, &["sh"], &[], &containerd.commands);
        containerd
            .ctr(&[
                "image",
                "import",
                "--base-name",
                "berth.test/busybox",
                &image,
            ])
            .ok();
        if let Some(child) = containerd.daemon.as_mut() {
            assert!(
                child.try_wait().ok().flatten().is_none(),
                "containerd exited: {}",
                containerd.log()
            );
        }
        Some(containerd)
    }

    /// `ctr -a SOCKET -n NAMESPACE args...`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut full: Vec<String> = vec![
            "-a".into(),
            self.socket.clone(),
            "-n".into(),
            self.namespace.clone(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program("ctr", &full, &[], &self.dir.join("logs"), n)
    }

    /// A `ctr -a SOCKET -n NAMESPACE args...` command to spawn, for one that runs until
    /// killed (`ctr events`).
    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("ctr");
        command
            .args(["-a", &self.socket, "-n", &self.namespace])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// `ctr run --runc-binary RUNTIME --runc-root R flags... IMAGE id command...`.
    pub fn run(&self, id: &str, flags: &[&str], command: &[&str]) -> Output {
        self.run_with(&self.runtime, id, flags, command)
    }

    /// Like `run`, with `binary` as the shim's runc instead of the runtime under test
    /// (to compare the two under one containerd).
    pub fn run_with(&self, binary: &Path, id: &str, flags: &[&str], command: &[&str]) -> Output {
        let args = self.run_args(binary, id, flags, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&args)
    }

    /// Like `run`, inside a pseudo-terminal (`script`), for `ctr run -t`.
    pub fn run_in_terminal(&self, id: &str, flags: &[&str], command: &[&str]) -> Output {
        self.ctr_in_terminal(&self.run_args(&self.runtime, id, flags, command))
    }

    /// `ctr -a SOCKET -n NAMESPACE args...` inside a pseudo-terminal (`script`).
    pub fn ctr_in_terminal(&self, args: &[String]) -> Output {
        let mut ctr: Vec<String> = vec![
            "-a".into(),
            self.socket.clone(),
            "-n".into(),
            self.namespace.clone(),
        ];
        ctr.extend(args.iter().cloned());
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program(
            "script",
            &in_terminal("ctr", &ctr),
            &[],
            &self.dir.join("logs"),
            n,
        )
    }

    fn run_args(&self, binary: &Path, id: &str, flags: &[&str], command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--runc-binary".into(),
            binary.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runc_root().to_string_lossy().into_owned(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(IMAGE.into());
        args.push(id.into());
        args.extend(command.iter().map(|c| c.to_string()));
        args
    }

    /// The `--runc-root` given to the shim; it keeps a container's state in
    /// `<root>/<namespace>/<id>`.
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc")
    }

    /// The bundle containerd made for task `id` (where the shim writes its
    /// `address` file).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// The socket of the shim serving task `id` (from the `address` file in its bundle).
    pub fn shim_socket(&self, id: &str) -> Option<PathBuf> {
        shim_socket_in(&self.bundle(id))
    }

    /// The containerd namespace of this test's containers.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The task's (pid, status) from `ctr task ls`, if it has a task.
    pub fn task(&self, id: &str) -> Option<(i64, String)> {
        let out = self.ctr(&["task", "ls"]);
        out.ok();
        out.stdout.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [task, pid, status] if *task == id => Some((pid.parse().ok()?, status.to_string())),
                _ => None,
            }
        })
    }

    /// Polls until the task's status is `status`; panics after the deadline.
    #[track_caller]
    pub fn wait_task_status(&self, id: &str, status: &str) {
        let reached = wait_until(crate::STATE_DEADLINE, || {
            self.task(id).is_some_and(|(_, s)| s == status)
        });
        assert!(
            reached,
            "task {id} never became {status}: {:?}",
            self.task(id)
        );
    }

    /// Waits until task `id` runs; returns its init's pid.
    #[track_caller]
    pub fn running_pid(&self, id: &str) -> i64 {
        self.wait_task_status(id, "RUNNING");
        self.task(id)
            .map(|(pid, _)| pid)
            .expect("a running task has a pid")
    }

    /// Deletes the (stopped) task and the container, and checks that nothing of
    /// container `id`, whose init had `pid`, is left.
    #[track_caller]
    pub fn delete_and_check(&self, id: &str, pid: i64) {
        self.ctr(&["task", "delete", id]).ok();
        self.ctr(&["container", "rm", id]).ok();
        self.assert_nothing_left(id, pid);
    }

    /// What container `id` (whose init had `pid`) left behind: a state dir under the
    /// shim's runc root, its bundle or a mount of it, a cgroup, the init, its shim.
    pub fn leftovers(&self, id: &str, pid: i64) -> Vec<String> {
        let mut found = Vec::new();
        let state = self.runc_root().join(&self.namespace).join(id);
        if state.exists() {
            found.push(format!("runc state dir {}", state.display()));
        }
        let bundle = self.bundle(id);
        if bundle.exists() {
            found.push(format!("bundle {}", bundle.display()));
        }
        found.extend(
            mounts_mentioning(&bundle)
                .into_iter()
                .map(|m| format!("mount: {m}")),
        );
        found.extend(
            cgroups_named(id)
                .into_iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        if pid > 0 && pid_alive(pid) {
            found.push(format!("container init {pid}"));
        }
        found.extend(processes_with_args(&["-id", id, &self.socket]));
        found
    }

    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, pid: i64) {
        let found = self.leftovers(id, pid);
        assert!(
            found.is_empty(),
            "container {id} left things behind:\n  {}",
            found.join("\n  ")
        );
    }

    /// The cgroup directories of this containerd's namespace (`/<namespace>` in every
    /// hierarchy), which the runtime creates for the first container and may remove.
    pub fn namespace_cgroups(&self) -> Vec<PathBuf> {
        cgroups_named(&self.namespace)
    }

    /// containerd's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let listed = self.ctr(&["container", "ls", "-q"]);
            for id in listed.stdout.split_whitespace() {
                self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
                self.ctr(&["task", "delete", "-f", id]);
                self.ctr(&["container", "rm", id]);
            }
        }
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        crate::engine::kill_shims_of(&self.socket);
        // The namespace's cgroup parents, if the runtime left them.
        crate::engine::remove_cgroup_parent(&self.namespace);
        remove_scratch(&self.dir);
    }
}

/// A one-layer OCI image of the busybox rootfs whose default command is `cmd` (with
/// `env`, e.g. `PATH=...`, in its config), as a tar of an OCI layout (umoci) in `dir`,
/// ready for `ctr image import`. `commands` numbers the log files of the steps under
/// `dir/logs`.
pub(crate) fn build_image(
    dir: &Path,
    cmd: &[&str],
    env: &[&str],
    commands: &AtomicUsize,
) -> String {
    let source = Bundle::busybox(&["sh"]);
    let layout = dir.join("image");
    let layout_ref = format!("{}:latest", layout.display());
    let rootfs = source.rootfs().to_string_lossy().into_owned();
    let layout_str = layout.to_string_lossy().into_owned();
    let mut config = vec!["config", "--image", &layout_ref];
    config.extend(cmd.iter().flat_map(|word| ["--config.cmd", word]));
    config.extend(env.iter().flat_map(|var| ["--config.env", var]));
    let steps: [Vec<&str>; 4] = [
        vec!["init", "--layout", &layout_str],
        vec!["new", "--image", &layout_ref],
        vec!["insert", "--image", &layout_ref, &rootfs, "/"],
        config,
    ];
    for step in steps {
        let args: Vec<String> = step.iter().map(|s| s.to_string()).collect();
        let n = commands.fetch_add(1, Ordering::Relaxed);
        run_program("umoci", &args, &[], &dir.join("logs"), n).ok();
    }
    let tar = dir.join("image.tar").to_string_lossy().into_owned();
    let args: Vec<String> = ["-C", &layout_str, "-cf", &tar, "."]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let n = commands.fetch_add(1, Ordering::Relaxed);
    run_program("tar", &args, &[], &dir.join("logs"), n).ok();
    tar
}

/// Berth's shim as built by `cargo build -p containerd-shim-berth-v2`, or the binary
/// `BERTH_SHIM` names (scripts/test runs the shim suites again with the release build,
/// linked in its code order by scripts/link-in-order).
pub fn built_shim() -> PathBuf {
    if let Some(shim) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(shim);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/containerd-shim-berth-v2")
}

/// containerd's PATH: `dir/bin`, holding Berth's shim (`containerd-shim-berth-v2`,
/// `io.containerd.berth.v2`) when it is built, then the test's own.
pub(crate) fn shim_path(dir: &Path) -> std::ffi::OsString {
    let bin = dir.join("bin");
    let shim = built_shim();
    if fs::create_dir_all(&bin).is_ok() && shim.exists() {
        let _ = std::os::unix::fs::symlink(&shim, bin.join("containerd-shim-berth-v2"));
    }
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// containerd's config: private paths, and no plugin that reaches outside (CRI, the
/// snapshotters this machine lacks, tracing).
fn config_toml(dir: &Path, socket: &str) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
    )
}
