//! The exec floor: what `exec` into a running container costs the kernel.
//!
//! `berth-floor --exec PID PROGRAM...` enters the ipc, uts, net, pid and mount namespaces
//! of process PID, forks (the pid namespace applies to children), execs PROGRAM in the
//! child and waits. With `--full` it also does what an exec of runc's default config is
//! asked beyond that: the process joins the container's cgroup in every hierarchy and
//! gets the config's rlimit, capabilities and no_new_privs (process.rs).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use crate::{cgroups, clone_container, process};

pub fn main(pid: &str, program: &[&str], full: bool) -> ExitCode {
    match enter(pid, full) {
        Ok(unified) => clone_container(0, unified.as_ref(), || {
            if full {
                process::limit_and_exec(program)
            } else {
                plain_exec(program)
            }
        }),
        Err(e) => {
            eprintln!("berth-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Joins the v1 cgroups (with `full`, while the host's /sys/fs/cgroup is still in view;
/// the child inherits them, and enters the cgroup2 one, whose directory this returns, at
/// clone), then the namespaces, mount last (its /proc is not the host's).
fn enter(pid: &str, full: bool) -> Result<Option<File>, String> {
    let open = |ns: &str| {
        let path = format!("/proc/{pid}/ns/{ns}");
        File::open(&path).map_err(|e| format!("open {path}: {e}"))
    };
    let namespaces = [
        (open("ipc")?, libc::CLONE_NEWIPC),
        (open("uts")?, libc::CLONE_NEWUTS),
        (open("net")?, libc::CLONE_NEWNET),
        (open("pid")?, libc::CLONE_NEWPID),
        (open("mnt")?, libc::CLONE_NEWNS),
    ];
    let mut unified = None;
    if full {
        let hierarchies = cgroups::hierarchies(pid, "")?;
        cgroups::join_v1(&hierarchies)?;
        unified = cgroups::unified_dir(&hierarchies)?;
    }
    for (file, kind) in &namespaces {
        // SAFETY: setns on a namespace file this process holds open.
        process::check(unsafe { libc::setns(file.as_raw_fd(), *kind) }, "setns")?;
    }
    Ok(unified)
}

fn plain_exec(program: &[&str]) -> Result<std::convert::Infallible, String> {
    let argv: Vec<std::ffi::CString> = program
        .iter()
        .map(|w| std::ffi::CString::new(*w).map_err(|_| format!("{w:?} has a NUL byte")))
        .collect::<Result<_, _>>()?;
    nix::unistd::execv(&argv[0], &argv).map_err(|e| format!("exec {}: {e}", program[0]))
}
