//! The library embedded as an engine embeds it: `runtime-core/examples/embed.rs`
//! gives a container's init and an exec'd process pipes for their stdio,
//! execs with the container's recorded settings (its seccomp profile and
//! no_new_privs, seen from inside), waits on pidfds, deletes, and does the
//! same again with `berth::run`, all through the `berth` crate.
//!
//! The example links Berth's library, so these tests are Berth's only: another
//! runtime under test (`RUNTIME=...`) has no library to link.

use berth_conformance::{assert_nothing_left, berth_only, unique_name, HostDir};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Only guards against a hang (a pipe whose writer was never closed reads
/// forever); the whole run takes about a second.
const EXAMPLE_DEADLINE: Duration = Duration::from_secs(120);

/// The example, built now (`library_examples::build`).
fn build_example() -> PathBuf {
    berth_conformance::library_examples::build("embed")
}

/// The example's exit code and stdout, its stdout and stderr in files
/// (a pipe would test nothing of ours and could fill up).
fn run_example(dir: &Path, id: &str) -> (Option<i32>, String, String) {
    let stdout = dir.join("example.stdout");
    let stderr = dir.join("example.stderr");
    let mut child = Command::new(build_example())
        .args([
            "--work".as_ref(),
            dir.as_os_str(),
            "--id".as_ref(),
            id.as_ref(),
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("create stdout file"))
        .stderr(File::create(&stderr).expect("create stderr file"))
        .spawn()
        .expect("run the embed example");
    let deadline = Instant::now() + EXAMPLE_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the embed example hung:\n{}",
                fs::read_to_string(&stdout).unwrap_or_default()
            );
        }
        sleep(Duration::from_millis(5));
    };
    (
        status.code(),
        fs::read_to_string(&stdout).unwrap_or_default(),
        fs::read_to_string(&stderr).unwrap_or_default(),
    )
}

#[test]
fn example_embeds_a_container_with_piped_stdio_exec_and_pidfd_waits() {
    if !berth_only("the example links Berth's library") {
        return;
    }
    let host = HostDir::new();
    let id = unique_name();
    let (code, stdout, stderr) = run_example(&host, &id);
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |line: &str| {
        assert!(
            lines.contains(&line),
            "no line {line:?} in the example's output:\n{stdout}\nstderr:\n{stderr}"
        )
    };

    assert_eq!(code, Some(0), "the example failed:\n{stdout}\n{stderr}");
    // The init's stdout and stderr reached this side's pipes, and its stdin
    // came from one: the line written to it is read back.
    has("started: status running");
    has("init stdout: hello from embed-example");
    has("init stderr: a line to stderr");
    has("init stdout: read bye");
    // The exec'd process: the container's seccomp profile (mode 2, its
    // mkdir refused) and no_new_privs, as create recorded them.
    has("exec stdout: Seccomp: 2");
    has("exec stdout: NoNewPrivs: 1");
    has("exec stderr: mkdir: can't create directory '/dev/shm/probe': Operation not permitted");
    // Waited for through pidfds: the exec'd process's code, then the init's,
    // which was still running in between.
    has("exec exited: code 1");
    has("init running: true");
    has("init exited: code 3, status stopped");
    // Only 0, 1 and 2 (and `ls`'s own directory, 3): none of the pipes'
    // original descriptors reached the container.
    has("exec stdout: descriptors: 0 1 2 3");
    has("init stdout: descriptors: 0 1 2 3");
    has("deleted");
    // berth::run: the init's exit code, its stdin, stdout and stderr on pipes.
    has("run: exit code 3");
    has("run output: hello from embed-example");
    has("run output: a line to stderr");
    has("run output: read from run");
    has("run output: descriptors: 0 1 2 3");
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "left: 0 container(s)")
            .count(),
        2,
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let bundle = host.join("bundle");
    assert_nothing_left(&host.join("state"), &id, &bundle);
    assert_nothing_left(&host.join("state"), &format!("{id}-run"), &bundle);
}
