//! The library used by another program: `runtime-core/examples/lifecycle.rs`
//! creates, starts, inspects, waits for or kills, and deletes a container
//! through the `berth` crate alone (no `berth` binary), on real busybox bundles.
//!
//! The example links Berth's library, so these tests are Berth's only: another
//! runtime under test (`RUNTIME=...`) has no library to link.

use berth_conformance::{assert_nothing_left, berth_only, unique_name, Bundle, HostDir};
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Only guards against a hang; a container's lifecycle takes well under a second.
const EXAMPLE_DEADLINE: Duration = Duration::from_secs(120);

/// The example, built once per test binary (`library_examples::build`).
fn example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| berth_conformance::library_examples::build("lifecycle"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the example with `args` to its end, stdout and stderr in files (the
/// container inherits them; a pipe would stay open as long as it runs).
fn run_example(dir: &Path, args: &[&str]) -> Run {
    let stdout = dir.join("example.stdout");
    let stderr = dir.join("example.stderr");
    let mut child = Command::new(example())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("create stdout file"))
        .stderr(File::create(&stderr).expect("create stderr file"))
        .spawn()
        .expect("run the lifecycle example");
    let deadline = Instant::now() + EXAMPLE_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            // It blocks every signal but SIGKILL while its container runs.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "lifecycle {} hung: {}",
                args.join(" "),
                fs::read_to_string(&stdout).unwrap_or_default()
            );
        }
        sleep(Duration::from_millis(5));
    };
    Run {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: fs::read_to_string(&stdout).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr).unwrap_or_default(),
    }
}

impl Run {
    #[track_caller]
    fn has_line(&self, line: &str) -> &Self {
        assert!(
            self.stdout.lines().any(|l| l == line),
            "no line {line:?} in the example's output:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

#[test]
fn example_runs_a_container_to_its_exit_and_deletes_it() {
    if !berth_only("the example links Berth's library") {
        return;
    }
    let mut bundle = Bundle::busybox(&["sh", "-c", "echo hello from $(hostname); exit 3"]);
    bundle.edit(|c| c["hostname"] = "library-example".into());
    bundle.write_config();
    let host = HostDir::new();
    let root = host.join("root");
    let id = unique_name();
    let run = run_example(
        &host,
        &[path_str(bundle.path()), path_str(&root), "--id", &id],
    );

    assert_eq!(
        run.code, 0,
        "the example failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.has_line(&format!("create: {id} from {}", bundle.path().display()))
        .has_line("hello from library-example")
        .has_line("exited: code 3, status stopped")
        .has_line(&format!(
            "deleted: 0 container(s) left in {}",
            root.display()
        ));
    let created = run
        .stdout
        .lines()
        .find(|l| l.starts_with("created: "))
        .unwrap_or_default();
    assert!(created.ends_with(", status created"), "{created:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_nothing_left(&root, &id, bundle.path());
}

#[test]
fn example_inspects_and_kills_a_running_container() {
    if !berth_only("the example links Berth's library") {
        return;
    }
    let bundle = Bundle::sleeper();
    bundle.write_config();
    let host = HostDir::new();
    let root = host.join("root");
    let id = unique_name();
    let run = run_example(
        &host,
        &[
            path_str(bundle.path()),
            path_str(&root),
            "--id",
            &id,
            "--kill",
        ],
    );

    assert_eq!(
        run.code, 0,
        "the example failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    // The sleeper never exits by itself: each of these saw it running.
    run.has_line("started: status running")
        .has_line(&format!("list: {id} running"))
        .has_line("kill: SIGKILL")
        .has_line("exited: code 137, status stopped");
    let state = run
        .stdout
        .lines()
        .find(|l| l.starts_with("state: "))
        .unwrap_or_default();
    assert!(
        state.starts_with(&format!("state: id {id}, status running, pid ")),
        "{state:?}"
    );
    assert!(
        state.ends_with(&format!(", bundle {}", bundle.path().display())),
        "{state:?}"
    );
    let pids = run
        .stdout
        .lines()
        .find(|l| l.starts_with("pids: "))
        .unwrap_or_default();
    assert!(pids.ends_with("init included: true"), "{pids:?}");
    assert_nothing_left(&root, &id, bundle.path());
}

#[test]
fn example_reports_bad_input_as_typed_errors_without_panicking() {
    if !berth_only("the example links Berth's library") {
        return;
    }
    let host = HostDir::new();
    let root = host.join("root");
    let id = unique_name();
    // The example names the failed step after the Error variant it got.
    let fails_with = |bundle: &Path, id: &str, message: &str| {
        let run = run_example(&host, &[path_str(bundle), path_str(&root), "--id", id]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(message),
            "expected {message:?} in:\n{}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    };

    // No bundle at all: Error::Spec(SpecError::ConfigNotFound).
    fails_with(
        &host.join("no-such-bundle"),
        &id,
        "lifecycle: reading the bundle failed: JSON specification file config.json not found",
    );
    assert!(
        !root.join(&id).exists(),
        "a state dir was left for a bundle that does not exist"
    );

    // A config that is not JSON: Error::Spec(SpecError::Syntax).
    let bundle = Bundle::busybox(&["true"]);
    fs::write(bundle.path().join("config.json"), "{\"ociVersion\": ").expect("write config");
    fails_with(
        bundle.path(),
        &id,
        "lifecycle: reading the bundle failed: parse ",
    );

    // An id that would escape the state root: Error::State(StateError::InvalidId).
    bundle.write_config();
    fails_with(
        bundle.path(),
        "../escape",
        "lifecycle: the state store failed: invalid container ID format",
    );
    assert!(!host.join("escape").exists());
    assert_nothing_left(&root, &id, bundle.path());
}

#[test]
fn example_leaves_a_container_it_did_not_make_alone() {
    if !berth_only("the example links Berth's library") {
        return;
    }
    // The first run's container still runs when the second asks for its id:
    // create fails (Error::State(Exists)) and the example must not clean up
    // a container that is not its own.
    let host = HostDir::new();
    let root = host.join("root");
    let id = unique_name();
    let first = Bundle::sleeper();
    first.write_config();
    let mut holder = Command::new(example())
        .args([path_str(first.path()), path_str(&root), "--id", &id])
        .stdin(Stdio::null())
        .stdout(File::create(host.join("first.stdout")).expect("create stdout file"))
        .stderr(File::create(host.join("first.stderr")).expect("create stderr file"))
        .spawn()
        .expect("run the lifecycle example");
    let waited = berth_conformance::wait_until(EXAMPLE_DEADLINE, || {
        fs::read_to_string(host.join("first.stdout"))
            .unwrap_or_default()
            .contains("wait: for pid")
    });
    let second = Bundle::busybox(&["true"]);
    second.write_config();
    let run = waited.then(|| {
        run_example(
            &host,
            &[path_str(second.path()), path_str(&root), "--id", &id],
        )
    });
    let still_there = root.join(&id).join("state.json").exists();

    // The first run waits for its container: stop it the way a caller would.
    let state = fs::read_to_string(root.join(&id).join("state.json")).unwrap_or_default();
    let pid = serde_json::from_str::<serde_json::Value>(&state)
        .ok()
        .and_then(|v| v["pid"].as_i64());
    if let Some(pid) = pid {
        // SAFETY: kill(2) with plain integers, on the container's init.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let first_done = berth_conformance::wait_until(EXAMPLE_DEADLINE, || {
        holder.try_wait().ok().flatten().is_some()
    });
    if !first_done {
        let _ = holder.kill();
    }
    let _ = holder.wait();

    assert!(waited, "the first example never started its container");
    let run = run.expect("second run");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the state store failed: container with given ID already exists"),
        "{}",
        run.stderr
    );
    assert!(
        still_there,
        "the second run deleted the first run's container"
    );
    assert!(
        first_done,
        "the first example did not finish after its container was killed"
    );
    assert_nothing_left(&root, &id, first.path());
}
