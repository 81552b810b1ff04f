//! The floor: what one container costs the kernel, with no runtime around it.
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
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, execv, pivot_root, Pid};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(rootfs) = args.get(1) else {
        eprintln!("usage: berth-floor ROOTFS [PROGRAM]");
        return ExitCode::from(2);
    };
    let program = args.get(2).map_or("/bin/true", String::as_str);

    let flags = libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET;
    // SAFETY: with a null stack, clone behaves as fork; this process has one
    // thread, so the child may go on running ordinary Rust code.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) };
    match pid {
        -1 => {
            eprintln!("berth-floor: clone: {}", std::io::Error::last_os_error());
            ExitCode::FAILURE
        }
        0 => {
            let Err(err) = container(rootfs, program);
            eprintln!("berth-floor: {err}");
            // SAFETY: _exit only ends this child; skipping atexit handlers and
            // buffered output that belong to the parent is the point.
            unsafe { libc::_exit(127) }
        }
        child => wait_for(Pid::from_raw(child as libc::pid_t)),
    }
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
