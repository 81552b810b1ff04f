//! One hook's process, started so that it can always be stopped:
//!
//! - with every signal at its default action and none blocked, whatever the
//!   runtime's own are (a foreground `run` blocks them all, a shell may have
//!   left SIGINT ignored, glibc's posix_spawn leaves 32 and 33 ignored);
//! - with SIGKILL as its parent-death signal, so it dies with the process
//!   that started it (the runtime, or the container's init);
//! - in a process group of its own, led by a watchdog: a fork of the runtime
//!   that holds the read end of a pipe only the runtime writes to. When the
//!   runtime dies before it is done with the hook, the pipe reads end-of-file
//!   and the watchdog SIGKILLs the group: the hook and whatever it started
//!   that stayed in its group (a shell script's children), which the
//!   parent-death signal alone would leave running. The runtime kills the
//!   same group itself on a timeout or a stop signal.
//!
//! A hook that leaves the group (setsid, setpgid) escapes both; only a cgroup
//! would hold it, and prestart, createRuntime, poststart and poststop hooks
//! run in the runtime's cgroup. The parent-death signal is cleared by the
//! exec of a set-user-ID or file-capability program (credentials(7)).

use oci_spec::runtime::Hook;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A started hook and its process group.
pub(super) struct HookProcess {
    pub(super) child: Child,
    /// `None` where no watchdog could be started (a seccomp profile that
    /// denies setpgid, for a startContainer hook): the hook then runs in its
    /// starter's group, and only it is killed.
    group: Option<Group>,
}

impl HookProcess {
    pub(super) fn spawn(hook: &Hook) -> io::Result<HookProcess> {
        let group = Group::start().ok();
        let mut cmd = command(hook);
        if let Some(group) = &group {
            cmd.process_group(group.pgid());
        }
        crate::sys::default_signals::with_default_signals(&mut cmd);
        // SAFETY: getpid is async-signal-safe; it runs before the fork.
        let starter = unsafe { libc::getpid() };
        // SAFETY: the closure makes raw, async-signal-safe syscalls only.
        unsafe { cmd.pre_exec(move || die_with(starter)) };
        // A failed spawn drops the group, whose watchdog is killed and reaped.
        let child = cmd.spawn()?;
        Ok(HookProcess { child, group })
    }

    /// SIGKILL the hook and everything left in its group, and reap the hook.
    pub(super) fn kill_and_reap(&mut self) -> io::Result<ExitStatus> {
        match &self.group {
            Some(group) => group.kill(),
            None => {
                let _ = self.child.kill();
            }
        }
        self.child.wait()
    }
}

fn command(hook: &Hook) -> Command {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(<[String]>::split_first) {
        cmd.arg0(argv0).args(rest);
    }
    // The spec makes env the hook's whole environment, not an addition to ours.
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        // Command cannot pass an entry without "=" (or with an empty name); execve
        // would hand it over, but no getenv can find it, so dropping it is harmless.
        if let Some((name, value)) = entry.split_once('=').filter(|(name, _)| !name.is_empty()) {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// In the hook's child, before its exec: SIGKILL it when `starter` dies.
/// The death signal follows the starting *thread*: the runtime starts hooks
/// from the thread that waits for them, which outlives them.
fn die_with(starter: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid with integer arguments.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } == 0;
    // The starter may have died before the death signal was set: then no
    // signal comes, and we have been reparented already.
    // SAFETY: see above.
    if set && unsafe { libc::getppid() } != starter {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// A process group for one hook, led by its watchdog (see the module notes).
struct Group {
    watchdog: libc::pid_t,
    /// Our end of the watchdog's pipe: closing it, or dying, is the signal.
    /// Never closed while the watchdog lives, except by our death.
    _lifeline: OwnedFd,
}

impl Group {
    fn start() -> io::Result<Group> {
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // The watchdog must not die of a signal meant for the runtime (a
        // terminal's ^C reaches the whole foreground group): it is born with
        // every signal blocked, and only SIGKILL ends it.
        let all: u64 = u64::MAX;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask reads and writes 8-byte masks we own.
        let blocked = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &all,
                &mut old,
                8usize,
            )
        };
        if blocked != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the child makes only raw, async-signal-safe syscalls and
        // never returns into code the parent also runs (see `watch`).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            watch(read_end.as_raw_fd(), write_end.as_raw_fd());
        }
        let forked = io::Error::last_os_error();
        // SAFETY: as above; puts back the mask we had.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &old,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        if pid < 0 {
            return Err(forked);
        }
        drop(read_end);
        let group = Group {
            watchdog: pid,
            _lifeline: write_end,
        };
        // The watchdog makes the group too; whichever runs first, it exists
        // before the hook joins it.
        // SAFETY: setpgid on our own child, which never execs.
        if unsafe { libc::setpgid(pid, pid) } != 0 {
            return Err(io::Error::last_os_error()); // the drop kills and reaps it
        }
        Ok(group)
    }

    fn pgid(&self) -> libc::pid_t {
        self.watchdog
    }

    /// SIGKILL every process in the group, the watchdog included.
    fn kill(&self) {
        // SAFETY: kill(2) of a process group whose leader, our child, is not
        // reaped yet: the id cannot have been reused.
        unsafe { libc::kill(-self.watchdog, libc::SIGKILL) };
    }
}

impl Drop for Group {
    /// The hook is done with: the watchdog goes first (by pid, not the
    /// group: what a finished hook left running is not ours to kill), so
    /// closing the lifeline afterwards triggers nothing.
    fn drop(&mut self) {
        // SAFETY: kill and waitpid on our own unreaped child.
        unsafe {
            libc::kill(self.watchdog, libc::SIGKILL);
            while libc::waitpid(self.watchdog, std::ptr::null_mut(), 0) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
        }
    }
}

/// The watchdog's whole life: wait for end-of-file on the lifeline, then
/// SIGKILL its own process group (itself included).
fn watch(lifeline: RawFd, other_end: RawFd) -> ! {
    // SAFETY: raw syscalls on our own descriptors and buffers; this copy of
    // the runtime never returns into Rust code that the parent also runs.
    unsafe {
        // Our copy of the write end would keep end-of-file from ever coming.
        libc::close(other_end);
        libc::setpgid(0, 0);
        // Nothing else of the runtime's stays open here: its state lock, its
        // channel to the init, its stdio.
        if lifeline > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (lifeline - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (lifeline + 1) as u32, u32::MAX, 0u32);
        let mut byte = 0u8;
        loop {
            let n = libc::read(lifeline, (&mut byte as *mut u8).cast(), 1);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if n == 0 {
                libc::kill(0, libc::SIGKILL);
            }
            libc::_exit(0);
        }
    }
}
