//! The simple floor: the namespaces, the rootfs and /proc, nothing else.
//!
//! `berth-floor ROOTFS [PROGRAM]` clones a child into new pid, mount, uts, ipc
//! and net namespaces; the child makes every mount private, binds ROOTFS onto
//! itself, pivots into it, mounts /proc and execs PROGRAM (default /bin/true).
//! The parent waits and exits with the child's status. No config, no state,
//! no cgroups, no synchronisation: a runtime can only be slower than this.

use std::convert::Infallible;
use std::ffi::CString;
use std::process::ExitCode;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, execv, pivot_root};

use crate::{clone_container, NAMESPACES};

pub fn main(rootfs: &str, program: &str) -> ExitCode {
    clone_container(NAMESPACES, None, || container(rootfs, program))
}

/// The child's side: the mount work every runtime does, then exec.
fn container(rootfs: &str, program: &str) -> Result<Infallible, String> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("make / private: {e}"))?;
    mount(
        Some(rootfs),
        rootfs,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| format!("bind {rootfs}: {e}"))?;
    chdir(rootfs).map_err(|e| format!("chdir {rootfs}: {e}"))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching
    // it leaves only the rootfs (runc does the same).
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), nosuid, none)
        .map_err(|e| format!("mount /proc: {e}"))?;
    let path = CString::new(program).map_err(|_| "program has a NUL byte".to_string())?;
    execv(&path, &[&path]).map_err(|e| format!("exec {program}: {e}"))
}
