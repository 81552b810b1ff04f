//! The library's example programs (`runtime-core/examples/`), which the suite runs as a
//! user would.

use crate::{scratch_dir, unique_name};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `cargo build --example NAME -p berth`, returning the program's path: the suite does
/// not build examples, and one left from an older build would test old code.
#[track_caller]
pub fn build(name: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log = scratch_dir().join(format!("{}.cargo-build.log", unique_name()));
    let status = Command::new(cargo)
        .args(["build", "--example", name, "-p", "berth"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .stdout(File::create(&log).expect("create build log"))
        .stderr(File::create(&log).expect("create build log"))
        .status()
        .expect("run cargo");
    assert!(
        status.success(),
        "cargo build --example {name} failed: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let _ = fs::remove_file(&log);
    target.join("debug/examples").join(name)
}
