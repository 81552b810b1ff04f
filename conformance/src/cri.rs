//! Kubernetes' path to a runtime without a cluster: a private containerd (own socket,
//! root, state, config.toml under the scratch directory) with its CRI plugin enabled and
//! the runtime handlers `berth` (the runtime under test, configured as
//! docs/containerd.md says), `berth-shim` (Berth's own shim, likewise) and `runc`, driven
//! by `crictl` as the kubelet drives it.
//! Pods use the host's network, so no CNI plugin is needed; the sandbox ("pause") image
//! is the busybox rootfs, built offline with umoci and imported into the `k8s.io`
//! namespace. Dropping it removes every pod, stops containerd and its shims, and removes
//! the directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::containerd::{build_image, shim_path};
use crate::cri_config::{cri_config_toml, CriPaths, SHIM_HANDLER};
use crate::engine::{
    engine_installed, find_program, in_terminal, processes_with_args, remove_scratch, run_program,
    shim_socket_in,
};
use crate::leftovers::processes_working_under;
use crate::{cgroups_named, is_berth, mounts_mentioning, pid_alive, runtime, scratch_dir};
use crate::{skip, wait_until, Output, RUNC};

mod options;

/// The one image: busybox whose default command idles until SIGTERM, so it is also the
/// sandbox image (the pod's "pause" process).
pub const IMAGE: &str = "berth.test/busybox:latest";
/// A container's command in the CRI suites: prints a line (for `crictl logs`), then idles
/// until SIGTERM (then exits 0).
pub const GREETING_SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "echo hello-from-$((6*7)); trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
];
const IMAGE_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// CRI's NamespaceMode: one namespace for the pod (Kubernetes' shareProcessNamespace).
pub const PID_POD: i64 = 0;
/// CRI's NamespaceMode: a namespace of the container's own (Kubernetes' default pid mode).
pub const PID_CONTAINER: i64 = 1;
/// CRI's NamespaceMode: the host's namespace (pods here use the host's network).
const NODE: i64 = 2;
/// The containerd namespace of the CRI plugin.
const NAMESPACE: &str = "k8s.io";
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Where scripts/build-crictl leaves crictl, unless `CRICTL` names it.
pub fn crictl_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CRICTL").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let cache = std::env::var_os("BERTH_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/berth"));
    let built = cache.join("cri-tools-1.26.1/crictl");
    if built.is_file() {
        return Some(built);
    }
    find_program("crictl")
}

pub struct Cri {
    dir: PathBuf,
    socket: String,
    daemon: Option<Child>,
    crictl: PathBuf,
    /// The runtime handler the pods ask for, whose binary is the runtime under test:
    /// `berth` (or `berth-shim`, Berth's own shim) for Berth, `runc` for another
    /// (RUNTIME=/usr/sbin/runc).
    handler: &'static str,
    /// The cgroup parent of this containerd's pods (`/<name>`), unique to it.
    cgroup_parent: String,
    /// Where the handlers keep container state (`<root>/<namespace>/<id>`): as
    /// handler `berth`'s and `runc`'s `Root`, Berth's shim's default here
    /// (`BERTH_SHIM_ROOT`), and a `Root` of the test's options.
    roots: Vec<PathBuf>,
    commands: AtomicUsize,
}

impl Cri {
    /// Starts containerd with the CRI plugin and imports the image; `None` (after a skip
    /// note) when containerd, umoci or crictl is missing. Pods run under the handler
    /// `berth` (the runc shim with Berth as its runc), or `runc` under another runtime.
    pub fn start() -> Option<Cri> {
        Cri::start_with(false, &[])
    }

    /// Like `start`, with pods under the handler `berth-shim`, Berth's own shim
    /// (`target/debug/containerd-shim-berth-v2`), or `runc` under another runtime.
    pub fn start_shim() -> Option<Cri> {
        Cri::start_with(true, &[])
    }

    /// Like `start` (or `start_shim`), with runc's `options` (name, TOML value) in
    /// handler `berth-shim`'s options file and, under another runtime, in handler
    /// `runc`'s `options` table.
    fn start_with(own_shim: bool, options: &[(&str, String)]) -> Option<Cri> {
        if !engine_installed(
            "containerd",
            &["containerd", "ctr", "umoci", "containerd-shim-runc-v2"],
        ) {
            return None;
        }
        let Some(crictl) = crictl_path() else {
            skip("crictl is not built; scripts/build-crictl builds it (scripts/install-deps runs it)");
            return None;
        };
        // Berth runs as the handler `berth`, as docs/containerd.md configures it; another
        // runtime under test (RUNTIME=/usr/sbin/runc) as the handler `runc`, which is
        // /usr/sbin/runc otherwise.
        let under_test = runtime();
        let (handler, runc) = if is_berth() {
            let handler = if own_shim { SHIM_HANDLER } else { "berth" };
            (handler, PathBuf::from(RUNC))
        } else {
            ("runc", under_test.clone())
        };
        // A short name: a unix socket path has at most 107 bytes.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let name = format!("cri-{}-{n}", std::process::id());
        let dir = scratch_dir().join(&name);
        let socket = dir.join("containerd.sock").to_string_lossy().into_owned();
        let config = dir.join("config.toml");
        let shim_options_file = dir.join("berth-shim.toml");
        let runc_options = if handler == "runc" { options } else { &[] };
        // Before anything exists: this panics when docs/containerd.md lacks the handler.
        let toml = cri_config_toml(&CriPaths {
            dir: &dir,
            socket: &socket,
            sandbox_image: IMAGE,
            berth: &under_test,
            runc: &runc,
            shim_options_file: &shim_options_file,
            runc_options,
        });
        for sub in ["logs", "cni/net.d", "cni/bin", "pods"] {
            fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        }
        fs::write(&config, toml).expect("write config.toml");
        fs::write(&shim_options_file, options::file_text(options)).expect("write the options file");
        let mut roots = vec![dir.join("berth"), dir.join("runc")];
        roots.extend(options::root(options));
        let log = fs::File::create(dir.join("containerd.log")).expect("create containerd.log");
        if handler == SHIM_HANDLER {
            let shim = crate::containerd::built_shim();
            assert!(
                shim.exists(),
                "{} does not exist: cargo build -p containerd-shim-berth-v2",
                shim.display()
            );
        }
        let daemon = Command::new("containerd")
            // Berth's shim from target/debug, and where it keeps state: as the
            // handler `berth`'s `Root`, which the leftover checks look in.
            .env("PATH", shim_path(&dir))
            .env("BERTH_SHIM_ROOT", dir.join("berth"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
        let mut cri = Cri {
            dir,
            socket,
            daemon: Some(daemon),
            crictl,
            handler,
            cgroup_parent: format!("/berth-{name}"),
            roots,
            commands: AtomicUsize::new(0),
        };
        let up = wait_until(START_DEADLINE, || {
            cri.daemon_exited() || cri.crictl(&["version"]).success()
        }) && !cri.daemon_exited();
        assert!(up, "containerd's CRI did not come up: {}", cri.log());
        // The CRI plugin gives a sandbox only its image's environment, and runc finds
        // `sh` only through a PATH in it (Berth falls back to a default PATH).
        let image = build_image(&cri.dir, crate::SLEEPER, &[IMAGE_PATH], &cri.commands);
        cri.ctr(&[
            "image",
            "import",
            "--base-name",
            "berth.test/busybox",
            &image,
        ])
        .ok();
        // The CRI plugin learns of the image from containerd's events.
        let known = wait_until(START_DEADLINE, || {
            cri.crictl(&["inspecti", IMAGE]).success()
        });
        assert!(known, "the CRI plugin does not see {IMAGE}: {}", cri.log());
        Some(cri)
    }

    fn daemon_exited(&mut self) -> bool {
        self.daemon
            .as_mut()
            .is_some_and(|d| d.try_wait().ok().flatten().is_some())
    }

    /// The runtime handler pods of this suite use (`berth`, or `runc` under runc).
    pub fn handler(&self) -> &'static str {
        self.handler
    }

    /// `crictl -r SOCKET -i SOCKET -t 60s args...`.
    pub fn crictl(&self, args: &[&str]) -> Output {
        let full = self.crictl_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program(
            &self.crictl.to_string_lossy(),
            &full,
            &[],
            &self.dir.join("logs"),
            n,
        )
    }

    /// Like `crictl`, inside a pseudo-terminal (`script`), for `exec -it`. The output
    /// comes with the terminal's "\r\n" line ends, stderr included.
    pub fn crictl_in_terminal(&self, args: &[&str]) -> Output {
        let full = self.crictl_args(args);
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program(
            "script",
            &in_terminal(&self.crictl.to_string_lossy(), &full),
            &[],
            &self.dir.join("logs"),
            n,
        )
    }

    /// This containerd's endpoints and a timeout long enough for a loaded machine (the
    /// default is 2 s), then `args`.
    fn crictl_args(&self, args: &[&str]) -> Vec<String> {
        let endpoint = format!("unix://{}", self.socket);
        let mut full: Vec<String> = vec![
            "--runtime-endpoint".into(),
            endpoint.clone(),
            "--image-endpoint".into(),
            endpoint,
            "--timeout".into(),
            "60s".into(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        full
    }

    /// `ctr -a SOCKET -n k8s.io args...`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        let mut full: Vec<String> = vec![
            "-a".into(),
            self.socket.clone(),
            "-n".into(),
            NAMESPACE.into(),
        ];
        full.extend(args.iter().map(|a| a.to_string()));
        let n = self.commands.fetch_add(1, Ordering::Relaxed);
        run_program("ctr", &full, &[], &self.dir.join("logs"), n)
    }

    /// Writes a pod sandbox config for pod `name` on the host's network, with the pid
    /// namespace mode `pid` (`PID_POD` or `PID_CONTAINER`), its containers' cgroups under
    /// this containerd's cgroup parent; returns its path.
    fn pod_config(&self, name: &str, pid: i64) -> PathBuf {
        self.pod_config_in(name, pid, &self.cgroup_parent)
    }

    /// Like `pod_config`, under cgroup parent `parent`.
    fn pod_config_in(&self, name: &str, pid: i64, parent: &str) -> PathBuf {
        let logs = self.dir.join("pods").join(name);
        fs::create_dir_all(&logs).expect("mkdir pod log dir");
        let config = serde_json::json!({
            "metadata": { "name": name, "namespace": "berth-test", "uid": name, "attempt": 0 },
            "log_directory": logs,
            "linux": {
                "cgroup_parent": parent,
                // The host's network: no network namespace of the pod's own, so no CNI.
                "security_context": { "namespace_options": { "network": NODE, "pid": pid } }
            }
        });
        let path = self.dir.join(format!("{name}.pod.json"));
        fs::write(&path, config.to_string()).expect("write pod config");
        path
    }

    /// `crictl runp --runtime HANDLER`: runs pod `name` with pid namespace mode `pid`
    /// under this suite's handler; returns its config's path and the sandbox id.
    pub fn run_pod(&self, name: &str, pid: i64) -> (PathBuf, String) {
        self.run_pod_with(self.handler, name, pid)
    }

    /// Like `run_pod`, under runtime handler `handler` (`berth` or `runc`).
    pub fn run_pod_with(&self, handler: &str, name: &str, pid: i64) -> (PathBuf, String) {
        let config = self.pod_config(name, pid);
        let out = self.crictl(&["runp", "--runtime", handler, &config.to_string_lossy()]);
        out.ok();
        (config, out.stdout.trim().to_owned())
    }

    /// `crictl create POD CONTAINER.json POD.json`: a container named `name` running
    /// `command`, with `linux` as its LinuxContainerConfig (resources); returns its id.
    pub fn create_container(
        &self,
        pod: &str,
        pod_config: &Path,
        name: &str,
        command: &[&str],
        linux: serde_json::Value,
    ) -> String {
        let config = serde_json::json!({
            "metadata": { "name": name },
            "image": { "image": IMAGE },
            "command": command,
            "log_path": format!("{name}.log"),
            "linux": linux,
        });
        let path = self.dir.join(format!("{name}.{pod}.json"));
        fs::write(&path, config.to_string()).expect("write container config");
        let out = self.crictl(&[
            "create",
            "--no-pull",
            pod,
            &path.to_string_lossy(),
            &pod_config.to_string_lossy(),
        ]);
        out.ok();
        out.stdout.trim().to_owned()
    }

    /// `crictl inspect[p] ID` as JSON.
    pub fn inspect(&self, what: &str, id: &str) -> serde_json::Value {
        let out = self.crictl(&[what, "-o", "json", id]);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{what} output is not JSON ({e}): {}", out.describe()))
    }

    /// The host pid of a container's (or a sandbox's) init, from `crictl inspect[p]`.
    pub fn pid(&self, what: &str, id: &str) -> i64 {
        let info = self.inspect(what, id);
        info["info"]["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("no info.pid in {what} {id}: {info}"))
    }

    /// Polls until container `id`'s state is `state` (e.g. CONTAINER_EXITED); returns its
    /// `status` object.
    #[track_caller]
    pub fn wait_container_state(&self, id: &str, state: &str) -> serde_json::Value {
        let mut status = serde_json::Value::Null;
        let reached = wait_until(crate::STATE_DEADLINE, || {
            status = self.inspect("inspect", id)["status"].clone();
            status["state"] == state
        });
        assert!(reached, "container {id} never became {state}: {status}");
        status
    }

    /// The status of exited container `id` once its reason is `reason`, or when the
    /// deadline passes. The runc shim may publish an OOM event after the exit (its OOM
    /// watcher and its reaper are separate): the CRI plugin then corrects the reason a
    /// moment later.
    pub fn wait_container_reason(&self, id: &str, reason: &str) -> serde_json::Value {
        let mut status = self.wait_container_state(id, "CONTAINER_EXITED");
        wait_until(crate::STATE_DEADLINE, || {
            status = self.inspect("inspect", id)["status"].clone();
            status["reason"] == reason
        });
        status
    }

    /// The directory of cgroup `id` (a container or sandbox) in the v1 hierarchy
    /// `controller`, under this containerd's cgroup parent.
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_parent.trim_start_matches('/'))
            .join(id)
    }

    /// What is known of a running container or sandbox, to check for leftovers once it
    /// is removed: its init's pid and its shim's socket. Panics unless what the check
    /// looks for is there now (so that its absence later means something): the init, the
    /// runtime's state dir, the bundle, the shim socket and a cgroup.
    #[track_caller]
    pub fn traces(&self, what: &str, id: &str) -> Traces {
        let traces = Traces {
            id: id.to_owned(),
            pid: self.pid(what, id),
            shim_socket: self.shim_socket(id),
        };
        assert!(
            pid_alive(traces.pid),
            "{id}'s init {} is not running",
            traces.pid
        );
        assert!(
            traces.shim_socket.as_ref().is_some_and(|s| s.exists()),
            "no shim socket for {id} (its address file in {})",
            self.bundle(id).display()
        );
        let state = self.runtime_states(id);
        assert!(
            state.iter().any(|dir| dir.is_dir()),
            "{id} has no runtime state dir ({state:?})"
        );
        let bundle = self.bundle(id);
        assert!(bundle.is_dir(), "{id} has no {}", bundle.display());
        assert!(!cgroups_named(id).is_empty(), "{id} has no cgroup");
        traces
    }

    /// Where the runtime keeps container `id`'s state: a root, the namespace, the id;
    /// for each root.
    fn runtime_states(&self, id: &str) -> Vec<PathBuf> {
        self.roots
            .iter()
            .map(|root| root.join(NAMESPACE).join(id))
            .collect()
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(NAMESPACE)
            .join(id)
    }

    /// What the removed containers and sandboxes of `traces` left behind: their inits,
    /// shims and shim sockets, the runtime's state dirs, bundles and CRI dirs, mounts of
    /// them, and their cgroups.
    pub fn leftovers(&self, traces: &[Traces]) -> Vec<String> {
        let mut found = Vec::new();
        for t in traces {
            if t.pid > 0 && pid_alive(t.pid) {
                found.push(format!("init {} of {}", t.pid, t.id));
            }
            if let Some(socket) = t.shim_socket.as_ref().filter(|s| s.exists()) {
                found.push(format!("shim socket {}", socket.display()));
            }
            let mut dirs = self.runtime_states(&t.id);
            dirs.extend([
                self.bundle(&t.id),
                self.dir
                    .join("state/io.containerd.grpc.v1.cri/sandboxes")
                    .join(&t.id),
                self.dir
                    .join("state/io.containerd.grpc.v1.cri/containers")
                    .join(&t.id),
                self.dir
                    .join("root/io.containerd.grpc.v1.cri/sandboxes")
                    .join(&t.id),
                self.dir
                    .join("root/io.containerd.grpc.v1.cri/containers")
                    .join(&t.id),
            ]);
            found.extend(
                dirs.iter()
                    .filter(|d| d.exists())
                    .map(|d| format!("dir {}", d.display())),
            );
            found.extend(
                cgroups_named(&t.id)
                    .into_iter()
                    .map(|c| format!("cgroup {}", c.display())),
            );
            found.extend(processes_with_args(&["-id", &t.id, &self.socket]));
        }
        // A shim of a group (a pod) names only its first container in its arguments;
        // it and its helpers (Berth's forker) work in a bundle. A shim told to shut down
        // may take a moment to exit.
        let state = self.dir.join("state");
        wait_until(Duration::from_secs(5), || {
            processes_working_under(&state).is_empty()
        });
        found.extend(processes_working_under(&state));
        found.extend(
            mounts_mentioning(&self.dir.join("state"))
                .into_iter()
                .chain(mounts_mentioning(&self.dir.join("root")))
                .map(|m| format!("mount: {m}")),
        );
        found
    }

    #[track_caller]
    pub fn assert_nothing_left(&self, traces: &[Traces]) {
        let found = self.leftovers(traces);
        assert!(
            found.is_empty(),
            "the pod left things behind:\n  {}",
            found.join("\n  ")
        );
    }

    /// containerd's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// The shim processes this containerd started (whatever the handler): the processes
    /// whose arguments include `-address SOCKET`.
    pub fn shims(&self) -> Vec<String> {
        processes_with_args(&["-address", &self.socket])
    }

    /// The forkers of Berth's shims (`containerd-shim-berth-v2 berth-forker`) of this
    /// containerd: they work in a bundle, as their shim.
    pub fn forkers(&self) -> Vec<String> {
        processes_working_under(&self.dir.join("state"))
            .into_iter()
            .filter(|p| p.contains(" berth-forker"))
            .collect()
    }

    /// The shim socket (its path) of a container or sandbox, from the `address` file
    /// containerd keeps in its bundle.
    pub fn shim_socket(&self, id: &str) -> Option<PathBuf> {
        shim_socket_in(&self.bundle(id))
    }
}

/// A container's or sandbox's id, init pid and shim socket, kept for the leftover check.
pub struct Traces {
    pub id: String,
    pub pid: i64,
    pub shim_socket: Option<PathBuf>,
}

impl Drop for Cri {
    fn drop(&mut self) {
        // A shim killed below leaves its socket (in containerd's global
        // /run/containerd/s), named in the bundles of its containers, which `rmp` removes.
        let shim_sockets: Vec<PathBuf> = fs::read_dir(self.bundle(""))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|bundle| fs::read_to_string(bundle.path().join("address")).ok())
            .filter_map(|a| a.trim().strip_prefix("unix://").map(PathBuf::from))
            .collect();
        if self.daemon.is_some() {
            self.crictl(&["rm", "--all", "--force"]);
            self.crictl(&["rmp", "--all", "--force"]);
        }
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        crate::engine::kill_shims_of(&self.socket);
        for socket in shim_sockets {
            let _ = fs::remove_file(socket);
        }
        // The pods' cgroup parent, which the runtime made and leaves (as runc does), and
        // what a failed test left in it: processes its pods' shims no longer reap, then
        // the directories (rmdir only removes a cgroup without processes).
        let parent = self.cgroup_parent.trim_start_matches('/').to_owned();
        let parents = cgroups_named(&parent);
        let pods: Vec<PathBuf> = parents
            .iter()
            .filter_map(|dir| fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        let mut killed = false;
        for pod in &pods {
            let procs = fs::read_to_string(pod.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) on a process in this test's own cgroup parent.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = true;
            }
        }
        if killed {
            wait_until(Duration::from_secs(5), || {
                pods.iter().all(|pod| {
                    fs::read_to_string(pod.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
                })
            });
        }
        for dir in pods.iter().chain(&parents) {
            let _ = fs::remove_dir(dir);
        }
        remove_scratch(&self.dir);
    }
}
