//! The CRIU the checkpoint tests hand the runtime with `--criu`:
//! `$BERTH_CRIU`, else what `scripts/build-criu` prints (it builds CRIU 4.2
//! once where the system's criu fails `criu check`). None, with the reason,
//! where no CRIU works on this host: the tests then skip with a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A criu binary that passes `criu check` here, or why there is none.
pub fn criu() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find).clone()
}

fn find() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os("BERTH_CRIU").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-criu");
            let out = Command::new(&script)
                .output()
                .map_err(|e| format!("{}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} failed: {}",
                    script.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(text.lines().last().unwrap_or("").trim())
        }
    };
    let check = Command::new(&candidate)
        .arg("check")
        .output()
        .map_err(|e| format!("{}: {e}", candidate.display()))?;
    if !check.status.success() {
        return Err(format!(
            "{} check fails: {}",
            candidate.display(),
            String::from_utf8_lossy(&check.stderr).trim()
        ));
    }
    Ok(candidate)
}

use crate::{skip, wait_until, Bundle, Output, Runtime, STATE_DEADLINE};
use std::time::Duration;

/// The CRIU to use, or None after a skip note naming why there is none.
pub fn criu_or_skip() -> Option<String> {
    match criu() {
        Ok(path) => Some(path.to_string_lossy().into_owned()),
        Err(why) => {
            skip(&format!("no working CRIU: {why}"));
            None
        }
    }
}

/// A busybox counter: it writes 1, 2, 3... to `/out/count` every 0.1 s.
/// Its stdio is the container's /dev/null: the harness's stdout files are
/// host files CRIU cannot reach (runc's dump fails on them too).
pub fn counter_bundle() -> (Bundle, PathBuf) {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "exec </dev/null >/dev/null 2>&1; i=0; \
         while :; do i=$((i+1)); echo $i > /out/count.tmp; mv /out/count.tmp /out/count; sleep 0.1; done",
    ]);
    let shared = bundle.share_dir("/out");
    (bundle, shared)
}

/// The counter the engine suites run (as a command, in the engine's image): writes
/// 1, 2, 3... to /out/count every 0.1 s (through a rename, so a reader never sees a
/// half-written number); exits 7 once /out/stop exists.
pub const STOPPABLE_COUNTER: &str = "i=0; while :; do [ -e /out/stop ] && exit 7; i=$((i+1)); \
                       echo $i > /out/count.tmp; mv /out/count.tmp /out/count; sleep 0.1; done";

/// Puts the working CRIU's directory first on this process's PATH, which the engines
/// (containerd and its shims, podman, and through them the runtime) inherit; false after
/// a skip note when this host has no working CRIU.
pub fn criu_on_path() -> bool {
    let Some(criu) = criu_or_skip() else {
        return false;
    };
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        let dir = Path::new(&criu)
            .parent()
            .expect("criu has a directory")
            .to_path_buf();
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&old));
        let path = std::env::join_paths(dirs).expect("PATH joins");
        // Once, before any test of this binary starts a process.
        std::env::set_var("PATH", path);
    });
    true
}

/// The counter's last value, once it has written one.
pub fn read_count(shared: &Path) -> u64 {
    let mut value = None;
    wait_until(STATE_DEADLINE, || {
        value = std::fs::read_to_string(shared.join("count"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        value.is_some()
    });
    value.unwrap_or_else(|| panic!("no count in {}", shared.display()))
}

/// Waits until the counter shows at least `at_least`; returns what it shows.
pub fn wait_count(shared: &Path, at_least: u64) -> u64 {
    let mut seen = 0;
    let reached = wait_until(STATE_DEADLINE, || {
        seen = read_count(shared);
        seen >= at_least
    });
    assert!(reached, "the counter stayed at {seen}, below {at_least}");
    seen
}

/// `--criu C checkpoint --image-path IMG [flags] id`.
pub fn checkpoint(rt: &Runtime, criu: &str, id: &str, images: &Path, flags: &[&str]) -> Output {
    let images = images.to_str().expect("utf-8 path");
    let mut args = vec!["--criu", criu, "checkpoint", "--image-path", images];
    args.extend_from_slice(flags);
    args.push(id);
    rt.cmd(&args)
}

/// `--criu C restore -d --bundle B --image-path IMG [flags] id`.
pub fn restore(
    rt: &Runtime,
    criu: &str,
    id: &str,
    bundle: &Bundle,
    images: &Path,
    flags: &[&str],
) -> Output {
    rt.track(id);
    let images = images.to_str().expect("utf-8 path");
    let bundle_path = bundle.path().to_str().expect("utf-8 path");
    let mut args = vec![
        "--criu",
        criu,
        "restore",
        "-d",
        "--bundle",
        bundle_path,
        "--image-path",
        images,
    ];
    args.extend_from_slice(flags);
    args.push(id);
    rt.cmd(&args)
}

/// A counter that stays put for a while: the dumped tree is gone, not running.
pub fn assert_counter_stopped(shared: &Path) {
    let before = read_count(shared);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        read_count(shared),
        before,
        "the counter went on after a checkpoint without --leave-running"
    );
}
