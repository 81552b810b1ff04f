//! Default signal dispositions and an empty mask for a process about to
//! exec: the container's init, an exec'd process, a hook, a helper command.

/// Unblock every signal and restore default dispositions: the runtime may have
/// blocked some to forward them, and ignored ones (Rust ignores SIGPIPE; a
/// caller may ignore any, realtime ones included) would stay ignored across exec.
pub fn reset_signals() {
    for signo in 1..=64 {
        if signo != libc::SIGKILL && signo != libc::SIGSTOP {
            set_default_action(signo);
        }
    }
    let none: u64 = 0;
    // SAFETY: rt_sigprocmask reads an 8-byte mask we own. Raw, because glibc's
    // would leave 32 and 33 as they were (foreground::prepare blocks them).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// Make `cmd`'s program start as `reset_signals` leaves a process, whatever
/// this one's signal state is: std's spawn empties the mask but keeps every
/// ignored signal ignored (a shell's SIGINT for a background job, and the 32
/// and 33 glibc's posix_spawn ignores in its child), which an exec keeps.
pub(crate) fn with_default_signals(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: reset_signals makes raw, async-signal-safe syscalls only.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals();
            Ok(())
        })
    }
}

/// The kernel's `struct sigaction` (x86-64 and arm64 share this layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// SIG_DFL for `signo`, by raw rt_sigaction: glibc's refuses 32 and 33, which it keeps for itself.
fn set_default_action(signo: i32) {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads a struct we own; SIG_DFL runs no handler code.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signo,
            &default,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}
