//! Bytes as a bundle's config.json, through what `berth create` does with it
//! before it touches the system: `spec::load`'s parse and validation, then
//! the checks create makes on the parsed spec (LSM fields, the seccomp
//! filter built in memory, the namespace plan, capability sets, a systemd
//! cgroupsPath). Nothing may panic; every rejection must say what is wrong.

use crate::Outcome;
use berth::fuzzing;
use berth::spec::{self, SpecError};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One input; panics where Berth would.
pub fn run(data: &[u8]) -> Outcome {
    // `load` reads the file with read_to_string: bytes that are not UTF-8
    // stop there, with the read error, before anything is parsed.
    let Ok(text) = std::str::from_utf8(data) else { return Outcome::Skipped };
    let bundle = bundle();
    let spec = match fuzzing::load_text(text, &bundle.join("config.json"), bundle, &kernel_listed) {
        Ok(spec) => spec,
        Err(e) => return check_rejection(&e),
    };
    match checks_before_create(&spec) {
        Ok(()) => {}
        Err(message) => {
            assert!(!message.trim().is_empty(), "empty message for {data:?}");
            return Outcome::Rejected(message);
        }
    }
    let linux = spec.linux().as_ref();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy().into_owned());
    // As root's system manager and as a user's own (whose default slice differs).
    for user in [false, true] {
        let _ = fuzzing::Scope::parse(cgroups_path.as_deref(), "fuzz", user);
    }
    let _ = spec::rootfs_path(&spec, bundle);
    Outcome::Accepted
}

/// What create checks next, in its order, with its errors' texts.
fn checks_before_create(spec: &spec::Spec) -> Result<(), String> {
    if let Some(process) = spec.process() {
        fuzzing::check_lsm(process).map_err(|e| e.to_string())?;
        fuzzing::CapabilitySets::from_spec(process.capabilities().as_ref()).map_err(|e| e.to_string())?;
    }
    let linux = spec.linux().as_ref();
    if let Some(profile) = linux.and_then(|l| l.seccomp().as_ref()) {
        fuzzing::seccomp_uses_notify(profile).map_err(|e| e.to_string())?;
        fuzzing::build_seccomp(profile).map_err(|e| e.to_string())?;
    }
    // A namespace path is opened, and opening a FIFO would block the fuzzer.
    let joins_by_path = linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|ns| ns.path().is_some()));
    if !joins_by_path {
        fuzzing::Namespaces::from_spec(spec).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A bundle with an empty rootfs, made once per fuzzing process.
fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).expect("make the fuzz bundle");
        dir
    })
}

/// The kernel's filesystem types as /proc/filesystems lists them: asking the
/// kernel itself (fsopen) would run modprobe for every name the fuzzer makes up.
fn kernel_listed(fstype: &str) -> Option<bool> {
    static LISTED: OnceLock<HashSet<String>> = OnceLock::new();
    let listed = LISTED.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        text.lines().filter_map(|l| l.split_whitespace().last()).map(str::to_owned).collect()
    });
    Some(listed.contains(fstype))
}

/// A rejection names what is wrong: never an empty message, and a serde
/// error always says where (a field path, or a line and column).
fn check_rejection(e: &SpecError) -> Outcome {
    let message = e.to_string();
    assert!(!message.trim().is_empty(), "empty message for {e:?}");
    match e {
        SpecError::Syntax { line, .. } => assert!(*line > 0, "no position: {message}"),
        SpecError::Field { field, .. } => assert!(!field.is_empty(), "no field path: {message}"),
        _ => {}
    }
    Outcome::Rejected(message)
}
