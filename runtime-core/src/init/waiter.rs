//! The light wait of a created container (docs/waiter.md): instead of
//! blocking on the start barrier as a copy of the whole runtime, the init
//! execs a tiny static program (waiter/waiter.c) from a sealed memfd. It
//! waits on the barrier, loads a late seccomp filter, and execs the user's
//! program, so the created container costs a few pages instead of the
//! runtime's address space.
//!
//! Anything this module cannot do exactly as the init would is refused with
//! an error, and the init then waits itself: the waiter changes what a
//! created container costs, never what its program sees.

use crate::process::seccomp::{self, Call};
use crate::process::Exec;
use libseccomp::ScmpFilterContext;
use oci_spec::runtime::{LinuxSeccomp, Process};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

#[cfg(berth_waiter)]
const PROGRAM: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/berth-waiter")));
#[cfg(not(berth_waiter))]
const PROGRAM: Option<&[u8]> = None;

/// memfd_create's MFD_EXEC (Linux 6.3): asked for explicitly, so a host
/// with vm.memfd_noexec=1 does not make the memfd non-executable.
const MFD_EXEC: libc::c_uint = 0x10;

// The kernel's SECCOMP_FILTER_FLAG_* bits, passed as libseccomp's load would.
const FILTER_FLAG_TSYNC: u32 = 1;
const FILTER_FLAG_LOG: u32 = 2;
const FILTER_FLAG_SPEC_ALLOW: u32 = 4;

const AT_EMPTY_PATH: u64 = 0x1000;
const CLONE_PARENT: u64 = 0x8000;
const F_SETFD: u64 = 2;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_SET_PDEATHSIG: u64 = 1;
const SIGKILL: u64 = 9;
const TIOCSCTTY: u64 = 0x540E;
const ANY: Option<u64> = None;

/// The syscalls of the waiter's exec and of waiter/waiter.c up to its
/// report (the pid of the process that runs the program), with the
/// arguments known in advance.
const BEFORE_REPORT: [Call; 6] = [
    ("execveat", [ANY, ANY, ANY, ANY, Some(AT_EMPTY_PATH), ANY]),
    (
        "prctl",
        [Some(PR_SET_DUMPABLE), Some(0), ANY, ANY, ANY, ANY],
    ),
    ("prctl", [Some(PR_SET_NAME), ANY, ANY, ANY, ANY, ANY]),
    ("fcntl", [ANY, Some(F_SETFD), Some(1), ANY, ANY, ANY]),
    (
        "clone",
        [Some(CLONE_PARENT), Some(0), Some(0), Some(0), Some(0), ANY],
    ),
    ("write", [ANY, ANY, Some(4), ANY, ANY, ANY]),
];

/// Its syscalls after the report, to the user's execve.
const AFTER_REPORT: [Call; 10] = [
    ("read", [ANY, ANY, Some(1), ANY, ANY, ANY]),
    ("close", [ANY, ANY, ANY, ANY, ANY, ANY]),
    (
        "prctl",
        [Some(PR_SET_PDEATHSIG), Some(SIGKILL), ANY, ANY, ANY, ANY],
    ),
    ("waitid", [ANY, ANY, ANY, ANY, ANY, ANY]),
    ("poll", [ANY, Some(1), Some(0), ANY, ANY, ANY]),
    ("setsid", [ANY, ANY, ANY, ANY, ANY, ANY]),
    ("ioctl", [Some(0), Some(TIOCSCTTY), Some(0), ANY, ANY, ANY]),
    ("write", [ANY, ANY, Some(4), ANY, ANY, ANY]),
    ("execve", [ANY, ANY, ANY, ANY, ANY, ANY]),
    ("exit_group", [ANY, ANY, ANY, ANY, ANY, ANY]),
];

/// Whether `profile`, loaded before the waiter runs, surely lets the
/// waiter's own syscalls through: allowed or logged, or sent to a listener
/// that has its descriptor by then.
pub fn runs_under(profile: &LinuxSeccomp) -> bool {
    seccomp::lets_through(profile, &BEFORE_REPORT, true)
        && seccomp::lets_through(profile, &AFTER_REPORT, true)
}

/// Whether `profile` may send a syscall of the waiter's before its report
/// to a listener: the listener must then have its descriptor before the
/// runtime knows the pid of the process that runs the program.
pub fn may_notify_before_report(profile: &LinuxSeccomp) -> bool {
    !seccomp::lets_through(profile, &BEFORE_REPORT, false)
}

#[derive(Debug, thiserror::Error)]
pub enum WaiterError {
    #[error("this build of berth has no waiter (not x86_64)")]
    Unavailable,
    #[error("{0}: the init waits itself")]
    NotExact(&'static str),
    #[error("make the waiter's memfd: {0}")]
    Memfd(std::io::Error),
    #[error("export the seccomp program: {0}")]
    Seccomp(libseccomp::error::SeccompError),
    #[error("capabilities: {0}")]
    Capabilities(caps::errors::CapsError),
    #[error("a string in process.args or process.env contains a NUL byte")]
    NulByte,
    #[error("exec the waiter: {0}")]
    Exec(std::io::Error),
}

/// How the waiter (or the init) ended before its report, for the error:
/// the waiter's exit statuses name the step that failed (waiter.c).
pub fn describe_exit(status: nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, 121) => "the waiter got bad arguments".into(),
        WaitStatus::Exited(_, 122) => "the waiter could not keep its report pipe".into(),
        WaitStatus::Exited(_, 123) => "the waiter could not fork the container's process".into(),
        WaitStatus::Exited(_, 124) => "the waiter could not write its report".into(),
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        other => format!("{other:?}"),
    }
}

/// What the waiter does with the process it runs (waiter/waiter.c's argv).
#[derive(Default)]
pub struct Handoff<'a> {
    /// Where to write the pid of the process that runs the program (0: the
    /// waiter's own); a forked one writes its errno there if its exec fails.
    pub report: Option<BorrowedFd<'a>>,
    /// Fork the process into the pid namespace set for children, as a
    /// child of the caller's parent, instead of running it in place.
    pub spawn: bool,
    /// The runtime's socket: wait for its go-ahead (a byte) after the report.
    pub go: Option<BorrowedFd<'a>>,
    /// The runtime's pidfd: a forked process dies with the runtime.
    pub die_with: Option<BorrowedFd<'a>>,
    /// A forked process takes its stdin, a terminal, as its controlling one.
    pub session: bool,
    /// The start barrier to wait on.
    pub barrier: Option<BorrowedFd<'a>>,
}

/// The waiter, ready to exec: its program and the late seccomp filter's, each in a sealed memfd.
pub struct Waiter {
    program: OwnedFd,
    filter: Option<Filter>,
}

struct Filter {
    fd: OwnedFd,
    instructions: usize,
    flags: u32,
}

/// Make the waiter for `process`, whose attributes the init has applied;
/// `late_seccomp` is the filter to load after the barrier (no_new_privs).
/// Called in the init, after the process's user and capabilities are set,
/// so the memfd belongs to the container's user.
pub fn prepare(
    process: &Process,
    late_seccomp: Option<&ScmpFilterContext>,
) -> Result<Waiter, WaiterError> {
    let bytes = PROGRAM.ok_or(WaiterError::Unavailable)?;
    check_exact(process)?;
    // Execute-only: exec'ing a file its caller cannot read makes the kernel
    // start the process non-dumpable (would_dump), so there is no window
    // before the waiter's own PR_SET_DUMPABLE. `exec` drops the effective
    // capabilities that would let root read it anyway.
    let program = sealed_memfd(c"berth-waiter", bytes, 0o111)?;
    let filter = match late_seccomp {
        None => None,
        Some(filter) => {
            // libseccomp before 2.6 cannot tell, and could not have set it either.
            if filter.get_ctl_waitkill().unwrap_or(false) {
                return Err(WaiterError::NotExact(
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without a listener",
                ));
            }
            let flag = |on: Result<bool, _>, bit: u32| {
                on.map(|on| if on { bit } else { 0 })
                    .map_err(WaiterError::Seccomp)
            };
            let flags = flag(filter.get_ctl_tsync(), FILTER_FLAG_TSYNC)?
                | flag(filter.get_ctl_log(), FILTER_FLAG_LOG)?
                | flag(filter.get_ctl_ssb(), FILTER_FLAG_SPEC_ALLOW)?;
            let fd = memfd(c"berth-seccomp")?;
            filter.export_bpf(&fd).map_err(WaiterError::Seccomp)?;
            let size = nix::sys::stat::fstat(&fd)
                .map_err(|e| WaiterError::Memfd(e.into()))?
                .st_size as usize;
            let instructions = size / 8;
            if size == 0 || !size.is_multiple_of(8) || instructions > u16::MAX as usize {
                return Err(WaiterError::NotExact(
                    "an unexpected seccomp program from libseccomp",
                ));
            }
            seal(&fd, 0o400)?;
            Some(Filter {
                fd,
                instructions,
                flags,
            })
        }
    };
    Ok(Waiter { program, filter })
}

/// Refuse what would differ through one more exec (docs/waiter.md).
fn check_exact(process: &Process) -> Result<(), WaiterError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    // The kernel applies the label at the next exec, which would be the
    // waiter's. The LSM also confines ptrace, so the runtime's copy that
    // waits instead is out of the container's reach (docs/security.md).
    if set(process.apparmor_profile()) || set(process.selinux_label()) {
        return Err(WaiterError::NotExact(
            "an LSM label applies at the next exec",
        ));
    }
    Ok(())
}

fn sealed_memfd(name: &CStr, bytes: &[u8], mode: libc::mode_t) -> Result<OwnedFd, WaiterError> {
    let fd = memfd(name)?;
    let mut written = 0;
    while written < bytes.len() {
        match nix::unistd::write(&fd, &bytes[written..]) {
            Ok(n) => written += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(WaiterError::Memfd(e.into())),
        }
    }
    seal(&fd, mode)?;
    Ok(fd)
}

fn memfd(name: &CStr) -> Result<OwnedFd, WaiterError> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create reads a NUL-terminated name we own.
    let mut raw = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if raw < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above; kernels before 6.3 know no MFD_EXEC and make memfds executable.
        raw = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if raw < 0 {
        return Err(WaiterError::Memfd(std::io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Set `mode` and seal: nothing may change the bytes that will run
/// (CVE-2019-5736), nor their modes.
fn seal(fd: &OwnedFd, mode: libc::mode_t) -> Result<(), WaiterError> {
    let fail = || WaiterError::Memfd(std::io::Error::last_os_error());
    // SAFETY: fchmod on a descriptor we own.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode) } != 0 {
        return Err(fail());
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl F_ADD_SEALS on a memfd we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals | libc::F_SEAL_EXEC) } != 0 {
        // SAFETY: as above; kernels before 6.3 know no F_SEAL_EXEC.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(fail());
        }
    }
    Ok(())
}

impl Waiter {
    /// Exec the waiter, which hands `exec` over as `handoff` says (see
    /// waiter/waiter.c). Returns only if the exec failed, with everything as
    /// it was, so the caller can go on without it.
    pub fn exec(self, handoff: &Handoff, exec: &Exec) -> WaiterError {
        let (path, args, env) = exec.parts();
        let filter = self.filter.as_ref();
        let fd_or_none =
            |fd: Option<BorrowedFd>| fd.map_or("-1".into(), |f| f.as_raw_fd().to_string());
        let numbers = [
            fd_or_none(handoff.report),
            u8::from(handoff.spawn).to_string(),
            fd_or_none(handoff.go),
            fd_or_none(handoff.die_with),
            u8::from(handoff.session).to_string(),
            fd_or_none(handoff.barrier),
            fd_or_none(filter.map(|f| f.fd.as_fd())),
            filter.map_or(0, |f| f.instructions).to_string(),
            filter.map_or(0, |f| f.flags).to_string(),
        ];
        let mut argv: Vec<CString> = vec![c"berth-waiter".into()];
        for number in numbers {
            match CString::new(number) {
                Ok(s) => argv.push(s),
                Err(_) => return WaiterError::NulByte,
            }
        }
        argv.push(path.clone());
        argv.extend(args.iter().cloned());
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());

        let inherited: Vec<i32> = [
            handoff.report,
            handoff.go,
            handoff.die_with,
            handoff.barrier,
            filter.map(|f| f.fd.as_fd()),
        ]
        .into_iter()
        .flatten()
        .map(|fd| fd.as_raw_fd())
        .collect();
        let effective = match caps::read(None, caps::CapSet::Effective) {
            Ok(set) => set,
            Err(e) => return WaiterError::Capabilities(e),
        };
        // Without DAC capabilities the execute-only memfd is unreadable, and
        // the kernel starts the waiter non-dumpable. The effective set plays
        // no part in the capabilities the exec computes.
        if let Err(e) = caps::clear(None, caps::CapSet::Effective) {
            return WaiterError::Capabilities(e);
        }
        for fd in &inherited {
            // SAFETY: fcntl on descriptors we hold; the waiter needs them across its exec.
            unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) };
        }
        // SAFETY: execveat reads NUL-terminated strings and NULL-terminated arrays that live until it returns.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                self.program.as_raw_fd(),
                c"".as_ptr(),
                argv_ptrs.as_ptr(),
                env_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        let error = std::io::Error::last_os_error();
        for fd in &inherited {
            // SAFETY: as above; the init's own exec must not pass them on.
            unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        if let Err(e) = caps::set(None, caps::CapSet::Effective, &effective) {
            return WaiterError::Capabilities(e);
        }
        WaiterError::Exec(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point of the waiter is its size: a static program without an
    /// interpreter (no libc, no ld.so mapped while it waits), a few pages.
    #[cfg(berth_waiter)]
    #[test]
    fn the_waiter_is_a_small_static_executable() {
        let bytes = PROGRAM.unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF");
        assert_eq!(
            u16::from_le_bytes([bytes[16], bytes[17]]),
            2,
            "ET_EXEC: no relocation to dirty a page"
        );
        let (phoff, phentsize, phnum) = (
            u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize,
            u16::from_le_bytes([bytes[54], bytes[55]]) as usize,
            u16::from_le_bytes([bytes[56], bytes[57]]) as usize,
        );
        let interp = (0..phnum).any(|i| {
            u32::from_le_bytes(bytes[phoff + i * phentsize..][..4].try_into().unwrap()) == 3
        });
        assert!(!interp, "the waiter has a PT_INTERP");
        assert!(bytes.len() < 16 * 1024, "{} bytes", bytes.len());
    }

    #[test]
    fn only_an_lsm_label_keeps_the_runtime_waiting() {
        let process = |json: &str| serde_json::from_str::<Process>(json).unwrap();
        let labelled =
            process(r#"{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},"apparmorProfile":"p"}"#);
        assert!(matches!(
            check_exact(&labelled),
            Err(WaiterError::NotExact(_))
        ));
        let limited = process(
            r#"{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NPROC","soft":1,"hard":1}]}"#,
        );
        assert!(check_exact(&limited).is_ok());
    }
}
