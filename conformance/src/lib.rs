//! Conformance harness: drives an OCI runtime binary (berth, runc, crun) on real busybox
//! bundles and checks what it did.
//!
//! The binary comes from `RUNTIME`, or else the workspace's `target/debug/berth`. Tests
//! never fork in-process: every container is made by spawning the runtime with
//! `std::process::Command`. Each test uses its own `--root` and unique container ids, so
//! tests run in parallel threads, and `Runtime`'s Drop guard force-deletes whatever a test
//! created even when the test panics.
//!
//! A test reads: build a `Bundle`, edit its config, drive a `Runtime`, assert on `Output`,
//! then `assert_nothing_left`.

mod bundle;
mod cgroup_layout;
mod checks;
mod console;
pub mod containerd;
pub mod containerd_cases;
pub mod containerd_shim;
pub mod cri;
pub mod cri_config;
pub mod criu;
mod default_spec;
pub mod docker;
mod engine;
pub mod hostile_tree;
mod leftovers;
pub mod library_examples;
mod mount_table;
pub mod notify_socket;
mod pidfd;
pub mod podman;
mod private_systemd;
mod runtime;
mod seccomp_agent;
// The rootless suites: the user they run as, a user namespace it made.
pub mod foreign_userns;
pub mod rootless_podman;
pub mod unprivileged_user;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub use bundle::{Bundle, SLEEPER};
pub use cgroup_layout::{host_cgroup2_mount, CgroupLayout, LayoutNamespace};
pub use checks::{
    cap_mask, capability_name, has_option, is_rfc3339, mount_at, parse_mountinfo, top_level_keys,
    wait_until, Mount,
};
pub use console::{read_until_closed, ConsoleSocket, ReceivedConsole};
pub use default_spec::{bundle_spec, runc_default_spec};
pub use leftovers::{
    assert_nothing_left, cgroups_named, leftovers, mounts_mentioning, processes_using,
};
pub use mount_table::{bind_mount, run_and_read_mounts, tmpfs_mount};
pub use pidfd::{PidfdSocket, ReceivedPidfd};
pub use private_systemd::PrivateSystemd;
pub use runtime::{Output, Runtime, STATE_DEADLINE};
pub use seccomp_agent::{Answer, SeccompAgent};

/// Where bundles, runtime roots and the rootfs template live.
pub const SCRATCH: &str = "/tmp/berth-conformance";

/// Where runc is installed on Berth's machines; tests that compare against runc's own
/// output use it and skip (with a note) when it is absent.
pub const RUNC: &str = "/usr/sbin/runc";

/// Build `testdata/NAME.c` as a static program into the scratch directory
/// and return its path: for what a container must run that busybox has no
/// tool for. Callers keep the path in a `OnceLock` to build it once.
pub fn build_static_program(name: &str) -> PathBuf {
    let out = PathBuf::from(SCRATCH).join(name);
    std::fs::create_dir_all(SCRATCH).expect("scratch dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{name}.c"));
    let tmp = out.with_extension(format!("{}", std::process::id()));
    let status = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(&source)
        .status()
        .expect("run cc (scripts/install-deps installs gcc)");
    assert!(status.success(), "cc failed to build {}", source.display());
    std::fs::rename(&tmp, &out).expect("install the built program");
    out
}

/// The runtime binary under test: `$RUNTIME`, or the workspace's debug build of berth.
pub fn runtime() -> PathBuf {
    if let Some(bin) = std::env::var_os("RUNTIME").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let berth = target.join("debug/berth");
    assert!(
        berth.exists(),
        "no runtime to test: {} does not exist. Run `cargo build -p berth-cli` first, \
         or set RUNTIME to a runtime binary (e.g. RUNTIME=/usr/sbin/runc)",
        berth.display()
    );
    berth
}

/// Whether the runtime under test is Berth (its `--version` mentions berth).
pub fn is_berth() -> bool {
    static IS_BERTH: OnceLock<bool> = OnceLock::new();
    *IS_BERTH.get_or_init(|| {
        let version = Runtime::new().cmd_raw(&["--version"]);
        version.stdout.to_lowercase().contains("berth")
    })
}

/// Gate for checks where Berth is stricter than runc (or follows the spec where runc does
/// not). Returns true when the runtime is Berth; otherwise prints a skip note that shows
/// even under the test harness's output capture, and returns false.
pub fn berth_only(why: &str) -> bool {
    if is_berth() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(
        std::io::stderr(),
        "note: {test}: berth_only check skipped for {}: {why}",
        runtime().display()
    );
    false
}

/// Prints a skip note that the harness does not capture (see `berth_only`).
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "note: {test}: skipped: {why}");
}

/// `<test name>-<pid>-<n>`: unique across parallel tests and concurrent test processes,
/// and a valid container id.
pub fn unique_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let thread = std::thread::current();
    let test = thread
        .name()
        .unwrap_or("test")
        .rsplit("::")
        .next()
        .unwrap_or("test");
    let mut name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if name.is_empty() {
        name.push_str("test");
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{name}-{}-{n}", std::process::id())
}

/// The scratch directory, created on first use.
pub fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(SCRATCH);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {SCRATCH}: {e}"));
    dir
}

/// A scratch directory on the host for a test's own files, removed when dropped (even if
/// the test fails) unless something is still mounted on or under it.
pub struct HostDir(PathBuf);

impl HostDir {
    pub fn new() -> HostDir {
        let dir = scratch_dir().join(format!("{}.host", unique_name()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        HostDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for HostDir {
    fn default() -> Self {
        HostDir::new()
    }
}

impl std::ops::Deref for HostDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for HostDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        if mounts_mentioning(&self.0).is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The host's namespace link for `kind` (e.g. "pid" gives `pid:[4026531836]`).
pub fn host_namespace(kind: &str) -> String {
    let link = format!("/proc/self/ns/{kind}");
    std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("readlink {link}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn pid_alive(pid: i64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the ")" that closes the command name.
    let state = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.trim_start())
        .unwrap_or("");
    !state.starts_with('Z') && !state.starts_with('X')
}
