//! `ctr` with the shim under test, for the `engine_shim*` tests: Berth's own shim
//! (`containerd-shim-berth-v2`, `io.containerd.berth.v2`) when the runtime under test is
//! Berth, else the runc shim (`io.containerd.runc.v2`) with the runtime under test as its
//! runc (`RUNTIME=/usr/sbin/runc`), so that a difference between the two shims is a test
//! that passes on one side only. The private containerd finds Berth's shim in
//! `target/debug` through its PATH (`containerd::shim_path`): build it first,
//! `cargo build -p containerd-shim-berth-v2`.

use crate::containerd::{Containerd, IMAGE};
/// The idler the shim tests run (the crate's `SLEEPER`).
pub use crate::SLEEPER;
use crate::{is_berth, runtime, Output};

/// `ctr run` with the shim under test: Berth's for Berth, else the runc shim with the
/// runtime under test as its runc.
pub fn run(containerd: &Containerd, id: &str, flags: &[&str], command: &[&str]) -> Output {
    let args = run_args(containerd, id, flags, command);
    containerd.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The arguments of `run`, for a caller that runs ctr itself (in a terminal, with stdin).
pub fn run_args(
    containerd: &Containerd,
    id: &str,
    flags: &[&str],
    command: &[&str],
) -> Vec<String> {
    let runc_root = containerd.runc_root().to_string_lossy().into_owned();
    let binary = runtime().to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["run"];
    if is_berth() {
        let shim = crate::containerd::built_shim();
        assert!(
            shim.exists(),
            "{} does not exist: cargo build -p containerd-shim-berth-v2",
            shim.display()
        );
        args.extend(["--runtime", "io.containerd.berth.v2"]);
    } else {
        args.extend(["--runtime", "io.containerd.runc.v2"]);
        args.extend(["--runc-binary", &binary, "--runc-root", &runc_root]);
    }
    args.extend(flags);
    // With a whole spec (`--config`), ctr takes no image: the spec names the rootfs.
    if !flags.contains(&"--config") {
        args.push(IMAGE);
    }
    args.push(id);
    args.extend(command);
    args.into_iter().map(str::to_owned).collect()
}

/// `ctr run -d` of the sleeper; returns the init's pid.
#[track_caller]
pub fn run_detached(containerd: &Containerd, id: &str) -> i64 {
    run(containerd, id, &["-d"], SLEEPER).ok();
    containerd.running_pid(id)
}

#[track_caller]
/// SIGKILL, wait until stopped, delete the task and the container, and check that
/// nothing is left.
pub fn kill_delete_and_check(containerd: &Containerd, id: &str, pid: i64) {
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", id]).ok();
    containerd.wait_task_status(id, "STOPPED");
    containerd.delete_and_check(id, pid);
}
