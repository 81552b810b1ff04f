//! The floors: what a container costs the kernel, with no runtime around it.
//!
//! ```text
//! berth-floor ROOTFS [PROGRAM]                          the simple floor (simple.rs)
//! berth-floor --full ROOTFS ID HOSTNAME PROGRAM [ARG..]  the true floor (full.rs)
//! berth-floor --exec [--full] PID PROGRAM [ARG..]       the exec floor (exec.rs)
//! ```
//!
//! Each exits with the container process's status. Benchmarks compare runtimes against
//! them (benches/harness); benches/floor/check shows the true floor's container is the
//! one a runtime makes of runc's default config.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

mod cgroups;
mod exec;
mod full;
mod process;
mod simple;

/// The namespaces of runc's default config: pid, network, ipc, uts, mount.
const NAMESPACES: libc::c_int = libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["--full", rootfs, id, hostname, program @ ..] if !program.is_empty() => {
            full::main(rootfs, id, hostname, program)
        }
        ["--exec", "--full", pid, program @ ..] if !program.is_empty() => {
            exec::main(pid, program, true)
        }
        ["--exec", pid, program @ ..] if !program.is_empty() => exec::main(pid, program, false),
        [rootfs] if !rootfs.starts_with('-') => simple::main(rootfs, "/bin/true"),
        [rootfs, program] if !rootfs.starts_with('-') => simple::main(rootfs, program),
        _ => {
            eprintln!(
                "usage: berth-floor ROOTFS [PROGRAM]\n       \
                 berth-floor --full ROOTFS ID HOSTNAME PROGRAM [ARG...]\n       \
                 berth-floor --exec [--full] PID PROGRAM [ARG...]"
            );
            ExitCode::from(2)
        }
    }
}

/// The arguments of clone3 up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks a child into `flags`' new namespaces (and into the cgroup2 directory `cgroup`,
/// if given) that runs `child` (which only returns on an error); waits for it and
/// returns its exit status.
fn clone_container(
    flags: libc::c_int,
    cgroup: Option<&File>,
    child: impl FnOnce() -> Result<Infallible, String>,
) -> ExitCode {
    let mut args = CloneArgs {
        flags: flags as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    // SAFETY: clone3 with no stack behaves as fork; this process has one thread, so the
    // child may go on running ordinary Rust code. args outlives the call.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        -1 => {
            eprintln!("berth-floor: clone3: {}", std::io::Error::last_os_error());
            ExitCode::FAILURE
        }
        0 => {
            let Err(err) = child();
            eprintln!("berth-floor: {err}");
            // SAFETY: _exit only ends this child; skipping atexit handlers and
            // buffered output that belong to the parent is the point.
            unsafe { libc::_exit(127) }
        }
        child => wait_for(Pid::from_raw(child as libc::pid_t)),
    }
}

fn wait_for(child: Pid) -> ExitCode {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return ExitCode::from(code as u8),
            Ok(WaitStatus::Signaled(..)) => return ExitCode::FAILURE,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("berth-floor: wait: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}
