//! Driving the runtime binary: one `Runtime` per test, with a private `--root`, its own
//! container ids, and a Drop guard that force-deletes every container it handed out.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bundle::Bundle;
use crate::cgroup_layout::{CgroupLayout, LayoutNamespace};
use crate::leftovers::{assert_nothing_left, mounts_mentioning_in};
use crate::private_systemd::PrivateSystemd;
use crate::{runtime, scratch_dir, unique_name};

/// A runtime command that has not exited by then is hung: it is killed and the test fails.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);
/// How long `wait_status` waits for a container to reach a state.
pub const STATE_DEADLINE: Duration = Duration::from_secs(10);

/// What a runtime command did. Its stdout and stderr went to files rather than pipes: a
/// container started by `create` or `run -d` inherits them and may hold them open for as
/// long as it lives, and a pipe would then never reach EOF.
#[derive(Debug)]
pub struct Output {
    pub args: Vec<String>,
    /// The exit code, or 128+signal if the runtime itself was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Where the container's output keeps arriving after the command has returned.
    pub stdout_file: PathBuf,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "expected success, got {}", self.describe());
        self
    }

    /// Panics unless the command failed, and returns its stdout+stderr for inspection
    /// (go-runc reads error text from both streams combined).
    #[track_caller]
    pub fn fails(&self) -> String {
        assert!(!self.success(), "expected failure, got {}", self.describe());
        self.combined()
    }

    /// Panics unless the command failed with a message containing `needle`.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) -> &Self {
        let text = self.fails();
        assert!(
            text.contains(needle),
            "expected {needle:?} in the error, got {}",
            self.describe()
        );
        self
    }

    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The container's stdout so far (for `create`/`run -d`, output written after return).
    pub fn stdout_now(&self) -> String {
        fs::read_to_string(&self.stdout_file).unwrap_or_default()
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {} from `{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.args.join(" "),
            self.stdout,
            self.stderr
        )
    }
}

/// The runtime under test, with a root directory of its own.
pub struct Runtime {
    bin: PathBuf,
    dir: PathBuf,
    ids: Mutex<Vec<String>>,
    bundles: Mutex<Vec<PathBuf>>,
    commands_run: Mutex<usize>,
    /// Where every command runs when the test wants another cgroup layout.
    namespace: Option<LayoutNamespace>,
    /// Where every command runs when the test needs a systemd to talk to.
    systemd: Option<PrivateSystemd>,
}

impl Runtime {
    pub fn new() -> Runtime {
        let dir = scratch_dir().join(format!("{}.rt", unique_name()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Runtime {
            bin: runtime(),
            dir,
            ids: Mutex::new(Vec::new()),
            bundles: Mutex::new(Vec::new()),
            commands_run: Mutex::new(0),
            namespace: None,
            systemd: None,
        }
    }

    /// A runtime that runs `bin` rather than the one under test: for tests
    /// that compare the runtime under test with runc on the same input.
    pub fn with_binary(bin: &Path) -> Runtime {
        let mut runtime = Runtime::new();
        runtime.bin = bin.to_path_buf();
        runtime
    }

    /// A runtime whose every command runs in the namespaces of a systemd of its own
    /// (`None` where one cannot be started, see `PrivateSystemd::start`).
    pub fn in_private_systemd() -> Option<Runtime> {
        let mut runtime = Runtime::new();
        runtime.systemd = Some(PrivateSystemd::start()?);
        Some(runtime)
    }

    /// The systemd commands run under, if any.
    pub fn systemd(&self) -> Option<&PrivateSystemd> {
        self.systemd.as_ref()
    }

    /// A runtime whose every command sees the cgroup `layout` instead of the
    /// host's, or `None` where the host cannot show that layout.
    pub fn in_layout(layout: CgroupLayout) -> Option<Runtime> {
        let mut runtime = Runtime::new();
        runtime.namespace = Some(LayoutNamespace::new(layout)?);
        Some(runtime)
    }

    /// The mount namespace commands run in, when it is not the host's.
    pub fn namespace(&self) -> Option<&LayoutNamespace> {
        self.namespace.as_ref()
    }

    /// `program`, started inside this runtime's namespace if it has one.
    fn command(&self, program: &Path) -> Command {
        match (&self.namespace, &self.systemd) {
            (_, Some(systemd)) => systemd.command(program),
            (Some(ns), None) => ns.command(program),
            (None, None) => Command::new(program),
        }
    }

    /// The `--root` every command gets (the runtime creates it).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// A fresh container id, deleted with `--force` when this Runtime is dropped.
    pub fn new_id(&self) -> String {
        let id = unique_name();
        self.track(&id);
        id
    }

    /// Makes the guard delete `id` too (for ids a test made up itself).
    pub fn track(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_owned());
    }

    /// `<runtime> --root R args...`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let root = self.root();
        let mut full = vec!["--root", root.to_str().unwrap()];
        full.extend_from_slice(args);
        self.spawn(None, &full)
    }

    /// Like `cmd`, with `configure` applied to the command before it starts: an
    /// environment of its own, or a `pre_exec` step in the child.
    pub fn cmd_with(&self, args: &[&str], configure: impl FnOnce(&mut Command)) -> Output {
        let root = self.root();
        let mut full = vec!["--root", root.to_str().unwrap()];
        full.extend_from_slice(args);
        let mut command = self.command(&self.bin);
        command.args(&full);
        configure(&mut command);
        self.spawn_command(command, &full)
    }

    /// Like `cmd`, but started by `sh -c '<prelude> exec "$0" "$@"'`: the
    /// prelude's assignments and redirections (`LISTEN_PID=$$`, `3<file`,
    /// `4<&-`) apply to the runtime itself, whose pid is the shell's.
    pub fn cmd_in_shell(&self, prelude: &str, args: &[&str]) -> Output {
        let root = self.root();
        let mut full = vec!["--root", root.to_str().unwrap()];
        full.extend_from_slice(args);
        let mut command = self.command(Path::new("/bin/sh"));
        command
            .arg("-c")
            .arg(format!("{prelude} exec \"$0\" \"$@\""))
            .arg(&self.bin)
            .args(&full);
        self.spawn_command(command, &full)
    }

    /// `<runtime> args...` with no `--root`: for `spec`, `features`, `--version`, and for
    /// tests of how global flags are spelled.
    pub fn cmd_raw(&self, args: &[&str]) -> Output {
        self.spawn(None, args)
    }

    /// Like `cmd_raw`, from working directory `cwd`.
    pub fn cmd_raw_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.spawn(Some(cwd), args)
    }

    /// Like `cmd`, from working directory `cwd`.
    pub fn cmd_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let root = self.root();
        let mut full = vec!["--root", root.to_str().unwrap()];
        full.extend_from_slice(args);
        self.spawn(Some(cwd), &full)
    }

    /// Writes the bundle's config and runs `create --bundle B [flags] id`.
    pub fn create(&self, id: &str, bundle: &Bundle, flags: &[&str]) -> Output {
        self.with_bundle("create", id, bundle, flags)
    }

    /// Writes the bundle's config and runs `run --bundle B [flags] id`.
    pub fn run(&self, id: &str, bundle: &Bundle, flags: &[&str]) -> Output {
        self.with_bundle("run", id, bundle, flags)
    }

    pub fn start(&self, id: &str) -> Output {
        self.cmd(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: Option<&str>) -> Output {
        match signal {
            Some(sig) => self.cmd(&["kill", id, sig]),
            None => self.cmd(&["kill", id]),
        }
    }

    pub fn delete(&self, id: &str) -> Output {
        self.cmd(&["delete", id])
    }

    /// `state id`, parsed; panics if the command fails or prints anything but JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        out.ok();
        serde_json::from_str(&out.combined())
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", out.describe()))
    }

    /// Polls `state` until `status` is reached; panics after `STATE_DEADLINE`.
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + STATE_DEADLINE;
        loop {
            let state = self.state(id);
            if state["status"] == status {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never became {status}: last state {state}"
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// `create` then `start`, both required to succeed.
    #[track_caller]
    pub fn create_and_start(&self, id: &str, bundle: &Bundle) -> Output {
        let created = self.create(id, bundle, &[]);
        created.ok();
        self.start(id).ok();
        created
    }

    /// Runs `bundle` in the foreground under a fresh id, requires exit 0 and no leftovers,
    /// and returns what the container printed on stdout.
    #[track_caller]
    pub fn run_to_completion(&self, bundle: &Bundle) -> String {
        let id = self.new_id();
        let out = self.run(&id, bundle, &[]);
        out.ok();
        self.assert_nothing_left(&id, bundle);
        out.stdout
    }

    /// SIGKILL, wait for `stopped`, `delete` (each required to succeed), then
    /// assert that nothing is left.
    #[track_caller]
    pub fn kill_and_delete(&self, id: &str, bundle: &Bundle) {
        self.kill(id, Some("KILL")).ok();
        self.wait_status(id, "stopped");
        self.delete(id).ok();
        self.assert_nothing_left(id, bundle);
    }

    /// Asserts that container `id`, made from `bundle`, left nothing on the host.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
        assert_nothing_left(&self.root(), id, bundle.path());
        if let Some(ns) = &self.namespace {
            let mounts = mounts_mentioning_in(&ns.mountinfo(), bundle.path());
            assert!(
                mounts.is_empty(),
                "{id} left mounts in its layout's namespace: {mounts:?}"
            );
        }
    }

    fn with_bundle(&self, verb: &str, id: &str, bundle: &Bundle, flags: &[&str]) -> Output {
        bundle.write_config();
        self.bundles.lock().unwrap().push(bundle.path().to_owned());
        let bundle_path = bundle.path().to_str().unwrap();
        let mut args = vec![verb, "--bundle", bundle_path];
        args.extend_from_slice(flags);
        args.push(id);
        self.cmd(&args)
    }

    fn spawn(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        let mut command = self.command(&self.bin);
        command.args(args);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        self.spawn_command(command, args)
    }

    /// Runs `command` (the runtime, or a wrapper that execs it, given `args`) to the end.
    fn spawn_command(&self, mut command: Command, args: &[&str]) -> Output {
        let n = {
            let mut count = self.commands_run.lock().unwrap();
            *count += 1;
            *count
        };
        let stdout_file = self.dir.join(format!("cmd-{n}.stdout"));
        let stderr_file = self.dir.join(format!("cmd-{n}.stderr"));
        command
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_file).expect("create stdout file"))
            .stderr(File::create(&stderr_file).expect("create stderr file"));
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let deadline = Instant::now() + COMMAND_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for runtime") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{} {}` hung for {COMMAND_DEADLINE:?}",
                    self.bin.display(),
                    args.join(" ")
                );
            }
            sleep(Duration::from_millis(2));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Output {
            args: args.iter().map(|a| a.to_string()).collect(),
            code,
            stdout: fs::read_to_string(&stdout_file).unwrap_or_default(),
            stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
            stdout_file,
        }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap());
        for id in ids.iter().filter(|id| self.root().join(id).exists()) {
            let root = self.root();
            let out = self.spawn(
                None,
                &["--root", root.to_str().unwrap(), "delete", "--force", id],
            );
            if !out.success() {
                eprintln!("cleanup: delete --force {id} failed: {}", out.describe());
            }
        }
        for bundle in self.bundles.lock().unwrap().iter() {
            Bundle::remove_if_unused(bundle);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
