//! A private dockerd for one test: Debian's docker.io (the daemon /usr/sbin/dockerd
//! and the client /usr/bin/docker from the same package, never another docker on
//! PATH), configured by the daemon.json docs/docker.md shows, which registers the
//! runtime under test as `berth` (made the default here), plus its own socket, data
//! root, exec root, pidfile and cgroup parent, the containerd it starts under its exec
//! root, and no hand on the host's network (no bridge, no iptables). The image is a
//! busybox rootfs imported offline with `docker import`. Dropping it removes every
//! container, stops dockerd (which stops its containerd), kills any shim left, and
//! removes its cgroup parent and its directory.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::engine::{
    engine_installed, in_terminal, processes_with_args, remove_scratch, run_program,
};
use crate::{
    build_static_program, capability_name, cgroups_named, mounts_mentioning, pid_alive, runtime,
    scratch_dir, skip, wait_until, Bundle, Output,
};

/// The docker client of Debian's docker.io, the same version as its daemon.
pub const DOCKER: &str = "/usr/bin/docker";
/// The daemon of Debian's docker.io.
pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The image imported into every private dockerd.
pub const IMAGE: &str = "berth.test/busybox:latest";
/// The name the runtime under test is registered under: the one docs/docker.md's
/// daemon.json gives Berth (even when the runtime under test is runc).
pub const RUNTIME_NAME: &str = "berth";
/// The runtime under test behind a wrapper that drops, from a container's config, the
/// capabilities this host's bounding set lacks; registered only on such a host (where
/// `--privileged` asks for every capability and fails with runc as with Berth).
pub const CAPPED_RUNTIME_NAME: &str = "berth-capped";
/// Where the image holds a small program that prints its real and effective uid,
/// installed setuid root.
pub const SETUID_IDS: &str = "/bin/setuid-ids";

const START_DEADLINE: Duration = Duration::from_secs(60);
const STOP_DEADLINE: Duration = Duration::from_secs(30);

pub struct Docker {
    dir: PathBuf,
    /// `unix://<dir>/docker.sock`.
    host: String,
    daemon: Option<Child>,
    /// The cgroup parent of this dockerd's containers (`/<name>` in every hierarchy).
    cgroup_parent: String,
    /// The capabilities the host's bounding set lacks, dropped by the capped runtime.
    missing_caps: Vec<&'static str>,
    commands: AtomicUsize,
}

impl Docker {
    /// Starts dockerd, the runtime registered in its daemon.json, and imports the image;
    /// `None` (after a skip note) when docker.io, containerd or jq is not installed.
    pub fn start() -> Option<Docker> {
        Docker::start_registering(Registration::DaemonJson)
    }

    /// Like `start`, with the runtime registered by `dockerd --add-runtime` instead (the
    /// daemon.json then has no `runtimes`).
    pub fn start_with_add_runtime() -> Option<Docker> {
        Docker::start_registering(Registration::AddRuntimeFlag)
    }

    fn start_registering(registration: Registration) -> Option<Docker> {
        for program in [DOCKER, DOCKERD] {
            if !Path::new(program).is_file() {
                skip(&format!(
                    "docker is not installed (no {program}; Debian's docker.io, which \
                     scripts/install-deps installs)"
                ));
                return None;
            }
        }
        if !engine_installed("docker", &["containerd", "containerd-shim-runc-v2", "jq"]) {
            return None;
        }
        // A short name: containerd's socket goes under the exec root, and a unix socket
        // path has at most 107 bytes.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let name = format!("dk-{}-{n}", std::process::id());
        let dir = scratch_dir().join(&name);
        fs::create_dir_all(dir.join("logs"))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut docker = Docker {
            host: format!("unix://{}", dir.join("docker.sock").display()),
            dir,
            daemon: None,
            cgroup_parent: format!("berth-{name}"),
            missing_caps: caps_missing_from_bounding_set(),
            commands: AtomicUsize::new(0),
        };
        let mut runtimes = vec![(RUNTIME_NAME, runtime())];
        runtimes.extend(
            docker
                .write_capped_runtime()
                .map(|capped| (CAPPED_RUNTIME_NAME, capped)),
        );
        let mut config = docker.daemon_json(&runtimes);
        let mut flags = Vec::new();
        if registration == Registration::AddRuntimeFlag {
            // As docs/docker.md shows it; dockerd checks a default-runtime in the file
            // against the file's runtimes alone, so that moves to a flag as well.
            let file = config.as_object_mut().expect("an object");
            file.remove("runtimes");
            file.remove("default-runtime");
            for (name, path) in &runtimes {
                flags.push("--add-runtime".to_owned());
                flags.push(format!("{name}={}", path.display()));
            }
            flags.extend(["--default-runtime".to_owned(), RUNTIME_NAME.to_owned()]);
        }
        let config = serde_json::to_string_pretty(&config).expect("daemon.json serializes");
        fs::write(docker.daemon_json_path(), config).expect("write daemon.json");
        let log = fs::File::create(docker.dir.join("dockerd.log")).expect("create dockerd.log");
        // One dockerd comes up at a time: each writes /etc/docker/key.json if it is
        // missing, not atomically, and a second one reading it half-written would fail.
        let _starting = StartLock::take();
        docker.daemon = Some(
            Command::new(DOCKERD)
                .arg("--config-file")
                .arg(docker.daemon_json_path())
                .args(&flags)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {DOCKERD}: {e}")),
        );
        let up = wait_until(START_DEADLINE, || {
            !docker.daemon_running() || docker.docker(&["version"]).success()
        }) && docker.daemon_running();
        assert!(up, "dockerd did not come up: {}", docker.log());
        docker.import_image();
        Some(docker)
    }

    /// `docker -H HOST args...`, with the client of the daemon's package.
    pub fn docker(&self, args: &[&str]) -> Output {
        let full = self.full_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program(DOCKER, &full, &[], &self.dir.join("logs"), n)
    }

    /// Like `docker`, inside a pseudo-terminal (`script`), for `-t`.
    pub fn docker_in_terminal(&self, args: &[&str]) -> Output {
        let full = self.full_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        let script = in_terminal(DOCKER, &full);
        run_program("script", &script, &[], &self.dir.join("logs"), n)
    }

    fn full_args(&self, args: &[&str]) -> Vec<String> {
        let mut full = vec!["-H".to_owned(), self.host.clone()];
        full.extend(args.iter().map(|a| a.to_string()));
        full
    }

    /// `run --runtime berth flags... IMAGE command...` (flags such as `-d`, `--name`).
    pub fn run_args(&self, flags: &[&str], command: &[&str]) -> Vec<String> {
        self.run_args_with(RUNTIME_NAME, flags, command)
    }

    /// Like `run_args`, with the runtime registered as `runtime_name`.
    pub fn run_args_with(
        &self,
        runtime_name: &str,
        flags: &[&str],
        command: &[&str],
    ) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "--runtime".into(), runtime_name.into()];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(IMAGE.into());
        args.extend(command.iter().map(|c| c.to_string()));
        args
    }

    /// The runtime name `--privileged` can run under on this host: the runtime under
    /// test, or (after a note) its capped wrapper when the host's bounding set lacks a
    /// capability docker asks for.
    pub fn privileged_runtime_name(&self) -> &'static str {
        if self.missing_caps.is_empty() {
            return RUNTIME_NAME;
        }
        skip(&format!(
            "this host's bounding set lacks {}, which --privileged asks for (runc fails the \
             same way): the privileged checks run the runtime under test behind a wrapper \
             that drops them from the config",
            self.missing_caps.join(", ")
        ));
        CAPPED_RUNTIME_NAME
    }

    /// `docker inspect --format FORMAT name`, trimmed; panics if inspect fails.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.docker(&["inspect", "--format", format, name]);
        out.ok();
        out.stdout.trim().to_owned()
    }

    /// The container's init pid on the host (0 once it has stopped).
    pub fn pid(&self, name: &str) -> i64 {
        self.inspect(name, "{{.State.Pid}}").parse().unwrap_or(0)
    }

    /// The runtime root dockerd 20.10 gives every runtime it registers, `runc` or not:
    /// `<exec-root>/runtime-runc`, to which the shim adds its containerd namespace.
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root().join("runtime-runc/moby")
    }

    /// `RUNTIME --root <runtime root> state ID`: the runtime under test's own view of a
    /// container dockerd made with it.
    pub fn runtime_state(&self, id: &str) -> Output {
        let args: Vec<String> = vec![
            "--root".into(),
            self.runtime_root().to_string_lossy().into_owned(),
            "state".into(),
            id.into(),
        ];
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        let binary = runtime().to_string_lossy().into_owned();
        run_program(&binary, &args, &[], &self.dir.join("logs"), n)
    }

    /// What container `id` (whose processes had `pids`) left behind: a runtime state
    /// dir, its bundle or a mount of it, its rootfs mount, a cgroup, a process, its shim.
    pub fn leftovers(&self, id: &str, pids: &[i64]) -> Vec<String> {
        let mut found = Vec::new();
        let state = self.runtime_root().join(id);
        if state.exists() {
            found.push(format!("runtime state dir {}", state.display()));
        }
        let bundle = self
            .exec_root()
            .join("containerd/daemon/io.containerd.runtime.v2.task/moby")
            .join(id);
        if bundle.exists() {
            found.push(format!("bundle {}", bundle.display()));
        }
        for dir in [bundle, self.dir.join("data/containers").join(id)] {
            found.extend(
                mounts_mentioning(&dir)
                    .into_iter()
                    .map(|m| format!("mount: {m}")),
            );
        }
        found.extend(
            cgroups_named(id)
                .into_iter()
                .map(|c| format!("cgroup {}", c.display())),
        );
        found.extend(
            pids.iter()
                .filter(|p| **p > 0 && pid_alive(**p))
                .map(|p| format!("process {p}")),
        );
        found.extend(processes_with_args(&[
            "-id",
            id,
            "-address",
            &self.containerd_socket(),
        ]));
        found
    }

    /// Nothing of the container is left once docker is done with it; the shim exits
    /// after `rm` returns, so it gets a few seconds to go.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, pids: &[i64]) {
        wait_until(Duration::from_secs(10), || {
            self.leftovers(id, pids).is_empty()
        });
        let found = self.leftovers(id, pids);
        assert!(
            found.is_empty(),
            "container {id} left things behind:\n  {}",
            found.join("\n  ")
        );
    }

    /// The pids of dockerd and of the containerd it started.
    pub fn daemon_pids(&self) -> Vec<i64> {
        let mut pids: Vec<i64> = self.daemon.iter().map(|d| i64::from(d.id())).collect();
        let containerd_pid = fs::read_to_string(self.exec_root().join("containerd/containerd.pid"));
        pids.extend(
            containerd_pid
                .ok()
                .and_then(|p| p.trim().parse::<i64>().ok()),
        );
        pids
    }

    /// The pids of the shims of this dockerd's containerd.
    pub fn shim_pids(&self) -> Vec<i64> {
        processes_with_args(&["-address", &self.containerd_socket()])
            .iter()
            .filter_map(|p| p.split_whitespace().nth(1)?.parse::<i64>().ok())
            .collect()
    }

    /// This dockerd's directory (data root, exec root, socket, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup parent's name (a directory at the top of every hierarchy).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// containerd's socket: every shim of this dockerd names it in its arguments.
    pub fn containerd_socket(&self) -> String {
        self.exec_root()
            .join("containerd/containerd.sock")
            .to_string_lossy()
            .into_owned()
    }

    /// dockerd's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    pub fn daemon_json_path(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }

    fn exec_root(&self) -> PathBuf {
        self.dir.join("exec")
    }

    fn daemon_running(&mut self) -> bool {
        self.daemon
            .as_mut()
            .is_some_and(|d| d.try_wait().ok().flatten().is_none())
    }

    /// daemon.json: docs/docker.md's, with `runtimes` (the runtime under test at
    /// Berth's name) made the default; private paths; vfs storage (it works on any
    /// backing filesystem); no bridge, NAT or iptables rules on the host.
    fn daemon_json(&self, runtimes: &[(&str, PathBuf)]) -> serde_json::Value {
        let mut config = documented_daemon_json();
        assert!(
            config["runtimes"][RUNTIME_NAME]["path"].is_string(),
            "docs/docker.md's daemon.json registers no runtime {RUNTIME_NAME:?}"
        );
        for (name, path) in runtimes {
            config["runtimes"][*name] = serde_json::json!({ "path": path });
        }
        let private = serde_json::json!({
            "hosts": [self.host],
            "data-root": self.dir.join("data"),
            "exec-root": self.exec_root(),
            "pidfile": self.dir.join("docker.pid"),
            "default-runtime": RUNTIME_NAME,
            "cgroup-parent": format!("/{}", self.cgroup_parent),
            "storage-driver": "vfs",
            "bridge": "none",
            "iptables": false,
            "ip-masq": false,
            "ip-forward": false,
            "userland-proxy": false,
            "features": { "buildkit": false },
        });
        for (key, value) in private.as_object().expect("an object") {
            config[key] = value.clone();
        }
        config
    }

    /// On a host whose bounding set lacks a capability, a wrapper script that deletes
    /// those from the bundle's config.json before `create`, then runs the runtime.
    fn write_capped_runtime(&self) -> Option<PathBuf> {
        if self.missing_caps.is_empty() {
            return None;
        }
        let drop = serde_json::to_string(&self.missing_caps).expect("names serialize");
        let script = format!(
            "#!/bin/sh\n\
             prev=\n\
             for arg; do [ \"$prev\" = --bundle ] && bundle=$arg; prev=$arg; done\n\
             if [ -n \"$bundle\" ] && [ -f \"$bundle/config.json\" ]; then\n  \
               jq --argjson drop '{drop}' \
               '.process.capabilities |= (if . then map_values(map(select(. as $c | $drop | index($c) | not))) else . end)' \
               \"$bundle/config.json\" >\"$bundle/config.json.capped\" || exit 1\n  \
               mv \"$bundle/config.json.capped\" \"$bundle/config.json\" || exit 1\n\
             fi\n\
             exec '{}' \"$@\"\n",
            runtime().display()
        );
        let path = self.dir.join("capped-runtime");
        fs::write(&path, script).expect("write the capped runtime");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        Some(path)
    }

    /// `docker import` of the busybox rootfs, with the setuid program added, as IMAGE.
    fn import_image(&self) {
        let source = Bundle::busybox(&["sh"]);
        let rootfs = source.rootfs();
        let setuid = rootfs.join(SETUID_IDS.trim_start_matches('/'));
        fs::copy(setuid_ids_program(), &setuid).expect("copy the setuid program");
        fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
        let tar = self.dir.join("rootfs.tar").to_string_lossy().into_owned();
        let rootfs = rootfs.to_string_lossy().into_owned();
        let args: Vec<String> = ["-C", &rootfs, "-cf", &tar, "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program("tar", &args, &[], &self.dir.join("logs"), n).ok();
        self.docker(&["import", "--change", "CMD [\"sh\"]", &tar, IMAGE])
            .ok();
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let containerd = self.daemon_pids().get(1).copied();
        if self.daemon_running() {
            let listed = self.docker(&["ps", "--all", "--quiet"]);
            let ids: Vec<&str> = listed.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "--force"];
                args.extend(ids);
                self.docker(&args);
            }
        }
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let stopped = wait_until(STOP_DEADLINE, || child.try_wait().ok().flatten().is_some());
            if !stopped {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // dockerd stops its containerd as it exits; shims outlive containerd by design.
        let mut strays: Vec<i64> = containerd.into_iter().filter(|p| pid_alive(*p)).collect();
        strays.extend(self.shim_pids());
        for pid in strays {
            // SAFETY: kill(2) on a containerd or shim this test's dockerd started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        crate::engine::remove_cgroup_parent(&self.cgroup_parent);
        remove_scratch(&self.dir);
    }
}

/// How dockerd learns of the runtime under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Registration {
    DaemonJson,
    AddRuntimeFlag,
}

/// An exclusive flock(2) on a file in the scratch directory, across threads and test
/// processes, released when dropped (the descriptor closes).
struct StartLock {
    /// Held, not read: closing it releases the lock.
    _file: fs::File,
}

impl StartLock {
    fn take() -> StartLock {
        let file = fs::File::create(scratch_dir().join("dockerd-start.lock"))
            .expect("create the dockerd start lock");
        // SAFETY: flock(2) on a descriptor this struct owns.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
        StartLock { _file: file }
    }
}

/// The daemon.json docs/docker.md shows (its first `json` block): the suite starts from
/// it, so the doc stays what is tested.
pub fn documented_daemon_json() -> serde_json::Value {
    let doc = include_str!("../../docs/docker.md");
    let block = doc
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/docker.md shows a daemon.json in a json block");
    serde_json::from_str(block).expect("docs/docker.md's daemon.json is JSON")
}

/// The capabilities the kernel has (up to cap_last_cap) that this process's bounding
/// set lacks: a container cannot be given them.
fn caps_missing_from_bounding_set() -> Vec<&'static str> {
    let last: usize = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    (0..=last)
        .filter(|bit| bounding & (1 << bit) == 0)
        .filter_map(capability_name)
        .collect()
}

/// `testdata/setuid_ids.c`, built once per test process.
fn setuid_ids_program() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_static_program("setuid_ids"))
        .clone()
}
