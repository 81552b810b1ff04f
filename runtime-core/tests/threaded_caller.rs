//! `create`, `exec` and `restore` refuse a multi-threaded caller with
//! `Error::Threaded`, before anything exists (src/single_thread.rs).
//!
//! libtest runs every test on a thread of its own, so a test in its harness
//! is always in a threaded process. This file has no harness
//! (`harness = false`): `main` runs each case in a fresh copy of this
//! binary, which has exactly the threads the case starts.

use berth::{Container, CreateOptions, Error, StateError};
use std::path::Path;
use std::process::Command;

/// Set in the copy that runs one case: the case's name.
const CASE: &str = "BERTH_THREADED_CALLER_CASE";
/// Set in that copy too: its scratch directory.
const DIR: &str = "BERTH_THREADED_CALLER_DIR";

fn main() {
    if let (Ok(case), Some(dir)) = (std::env::var(CASE), std::env::var_os(DIR)) {
        std::process::exit(match run_case(&case, Path::new(&dir)) {
            Ok(()) => 0,
            Err(why) => {
                eprintln!("{case}: {why}");
                1
            }
        });
    }
    let cases = [
        "create-threaded",
        "exec-threaded",
        "restore-threaded",
        "create-single",
    ];
    let mut failed = 0;
    for case in cases {
        let scratch = std::env::temp_dir().join(format!(
            "berth-threaded-caller-{case}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).expect("make the scratch directory");
        let out = Command::new(std::env::current_exe().expect("this test's binary"))
            .env(CASE, case)
            .env(DIR, &scratch)
            .output()
            .expect("run a copy of this test");
        let _ = std::fs::remove_dir_all(&scratch);
        if out.status.success() {
            println!("test {case} ... ok");
        } else {
            failed += 1;
            println!(
                "test {case} ... FAILED\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The line scripts/test counts, as libtest prints it.
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        cases.len() - failed
    );
    std::process::exit(i32::from(failed > 0));
}

fn run_case(case: &str, scratch: &Path) -> Result<(), String> {
    let root = scratch.join("state");
    let threaded = case.ends_with("-threaded");
    // A second thread, parked for the whole case, as an engine's worker would be.
    let (_stop, parked) = std::sync::mpsc::channel::<()>();
    if threaded {
        std::thread::spawn(move || {
            let _ = parked.recv();
        });
    }
    let exec_target = match case {
        "exec-threaded" => Some(fake_container(&root)?),
        _ => None,
    };
    let result = match (case, &exec_target) {
        ("create-threaded", _) => {
            berth::create(&CreateOptions::new(&root, "c1", scratch.join("bundle"))).map(|_| ())
        }
        // A single-threaded caller gets past the thread check, and is
        // refused for its bad id instead: the count is not off by one.
        ("create-single", _) => {
            berth::create(&CreateOptions::new(&root, "../c1", scratch.join("bundle"))).map(|_| ())
        }
        ("exec-threaded", Some(container)) => {
            let options = berth::exec::ExecOptions::for_container(container, vec!["true".into()])
                .map_err(|e| format!("exec options: {e}"))?;
            berth::exec::exec(container, &options).map(|_| ())
        }
        ("restore-threaded", _) => berth::checkpoint::restore(&berth::checkpoint::RestoreOptions {
            root: root.clone(),
            id: "c1".into(),
            bundle: scratch.join("bundle"),
            ..Default::default()
        })
        .map(|_| ()),
        (other, _) => return Err(format!("no case {other}")),
    };
    match (threaded, result) {
        (true, Err(Error::Threaded { threads: 2 })) => {}
        (false, Err(Error::State(StateError::InvalidId(_)))) => {}
        (_, other) => return Err(format!("got {other:?}")),
    }
    // A refused create or restore made nothing: no container directory.
    if exec_target.is_none() && root.join("c1").exists() {
        return Err("a state directory was made".into());
    }
    Ok(())
}

/// A container's record on disk (a live pid: this process), for an exec
/// the thread check must refuse before it does anything with it.
fn fake_container(root: &Path) -> Result<Container, String> {
    let dir = root.join("c1");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let record = serde_json::json!({
        "id": "c1", "ociVersion": "1.2.0", "pid": std::process::id(),
        "pid_start_time": 0, "bundle": "/nonexistent", "rootfs": "/nonexistent",
        "created": "2026-01-01T00:00:00Z",
    });
    std::fs::write(dir.join("state.json"), record.to_string()).map_err(|e| e.to_string())?;
    let config =
        serde_json::to_string(&berth::spec::default_spec(false)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config.json"), config).map_err(|e| e.to_string())?;
    Container::load(root, "c1").map_err(|e| format!("load: {e}"))
}
