//! With the `tracing` feature, `create` enters a span per phase, in order,
//! inside a `create` span; `start` and `delete` have theirs
//! (`cargo test -p berth --features tracing --test tracing_spans`).
//!
//! `create` forks, so this runs without libtest's harness (whose threads
//! it would refuse), as root on a busybox bundle; elsewhere it says why it
//! did not run. The subscriber is this file's: it records each span's name
//! as it is entered, with its parent's.

use berth::CreateOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

fn main() {
    let busybox = Path::new("/bin/busybox");
    if !nix::unistd::geteuid().is_root() || !busybox.exists() {
        println!("note: tracing_spans needs root and /bin/busybox; not run");
        println!("\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("berth-tracing-spans-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recorder = Recorder::default();
    let entered = recorder.entered.clone();
    let outcome = tracing::subscriber::with_default(recorder, || run(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    let entered = entered.lock().map(|e| e.clone()).unwrap_or_default();
    let expected: Vec<(String, String)> = [
        ("create", ""),
        ("validate", "create"),
        ("claim", "create"),
        ("prepare", "create"),
        ("spawn", "create"),
        ("handoff.let_go", "create"),
        ("commit.stage", "create"),
        ("handoff.until_ready", "create"),
        ("commit", "create"),
        ("start", ""),
        ("delete", ""),
    ]
    .iter()
    .map(|(name, parent)| (name.to_string(), parent.to_string()))
    .collect();
    let name = "create_start_and_delete_enter_a_span_per_phase";
    let failure = match outcome {
        Err(e) => Some(format!("the lifecycle failed: {e}")),
        Ok(()) if entered != expected => {
            Some(format!("entered {entered:?}\nexpected {expected:?}"))
        }
        Ok(()) => None,
    };
    match &failure {
        None => println!("test {name} ... ok"),
        Some(why) => println!("test {name} ... FAILED\n{why}"),
    }
    let (passed, failed) = if failure.is_none() { (1, 0) } else { (0, 1) };
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n");
    std::process::exit(failed);
}

fn run(dir: &Path) -> Result<(), String> {
    let bundle = bundle(&dir.join("bundle")).map_err(|e| format!("make the bundle: {e}"))?;
    let root = dir.join("state");
    let options = CreateOptions::new(&root, "tracing-spans", &bundle);
    let mut container = berth::create(&options).map_err(|e| e.to_string())?;
    container.start().map_err(|e| e.to_string())?;
    // `sh -c 'exit 0'`: wait for it to stop before the delete.
    for _ in 0..200 {
        if container.status() == berth::Status::Stopped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    container.delete(true).map_err(|e| e.to_string())?;
    Ok(())
}

/// Records (span name, parent span name) at each enter.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    names: Mutex<Vec<(&'static str, Option<u64>)>>,
    stack: Mutex<Vec<u64>>,
    entered: Arc<Mutex<Vec<(String, String)>>>,
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let parent = match span.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if span.is_contextual() => self.stack.lock().unwrap().last().copied(),
            None => None,
        };
        self.names
            .lock()
            .unwrap()
            .push((span.metadata().name(), parent));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        let names = self.names.lock().unwrap();
        let (name, parent) = names[span.into_u64() as usize - 1];
        let parent = parent.map(|p| names[p as usize - 1].0).unwrap_or("");
        self.entered
            .lock()
            .unwrap()
            .push((name.into(), parent.into()));
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.stack.lock().unwrap().pop();
    }
}

/// A busybox bundle running `sh -c 'exit 0'`.
fn bundle(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(path.join("rootfs/bin"))?;
    std::fs::copy("/bin/busybox", path.join("rootfs/bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", path.join("rootfs/bin/sh"))?;
    let mut config = serde_json::to_value(berth::spec::default_spec(false))?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", "exit 0"]);
    std::fs::write(path.join("config.json"), config.to_string())?;
    Ok(path.to_path_buf())
}
