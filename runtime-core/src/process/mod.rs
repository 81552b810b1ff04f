//! The container process's attributes, applied by the init in order:
//! rlimits, bounding set, groups and ids, capabilities, umask, working
//! directory, environment, executable lookup, no_new_privs; then exec.

pub(crate) mod affinity;
#[allow(missing_docs)]
pub(crate) mod capabilities;
pub(crate) mod console;
pub(crate) mod keyring;
#[allow(missing_docs)]
pub(crate) mod memory_policy;
#[allow(missing_docs)]
pub(crate) mod scheduling;
#[allow(missing_docs)]
pub(crate) mod seccomp;

use crate::process::capabilities::{CapabilityError, CapabilitySets};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};
use scheduling::SchedulingError;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum ProcessError {
    #[error("process.args is empty")]
    NoArgs,
    #[error("set rlimit {name} to soft={soft} hard={hard}: {source}")]
    Rlimit {
        name: String,
        soft: u64,
        hard: u64,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Scheduling(#[from] SchedulingError),
    #[error(transparent)]
    Seccomp(#[from] crate::process::seccomp::SeccompError),
    #[error("{op}: {source}")]
    Identity { op: String, source: nix::Error },
    #[error("chdir to cwd ({path:?}) set in config.json failed: {source}")]
    Cwd { path: PathBuf, source: nix::Error },
    #[error("current working directory is outside of the container's root (refusing to run)")]
    CwdOutsideRoot,
    #[error("exec: {name:?}: executable file not found in $PATH")]
    NotFound { name: String },
    #[error(
        "exec: {name:?}: stat {name}: {}",
        crate::sys::errno_text::go_errno_text(source)
    )]
    Stat {
        name: String,
        source: std::io::Error,
    },
    #[error("exec: {name:?}: permission denied")]
    NotExecutable { name: String },
    #[error("process.env[{index}]: invalid environment variable: {reason}")]
    InvalidEnv { index: usize, reason: &'static str },
    #[error("a string in process.args or process.env contains a NUL byte")]
    NulByte,
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
    #[error("close the runtime's file descriptors: {0}")]
    CloseFds(std::io::Error),
    #[error("exec {path}: {source}")]
    Exec { path: String, source: nix::Error },
    #[error("set the parent death signal: {0}")]
    DeathSignal(nix::Error),
    #[error("the runtime that runs this container in the foreground has exited")]
    RuntimeGone,
}

/// What `execve` will be called with, resolved before the start barrier so a
/// missing binary fails `create`, as it does with runc.
#[derive(Debug)]
pub struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// The process's capability sets, when they wait for a seccomp filter
    /// that loads without no_new_privs (and so needs CAP_SYS_ADMIN).
    caps_after_seccomp: Option<CapabilitySets>,
}

fn cstring(s: &str) -> Result<CString, ProcessError> {
    CString::new(s).map_err(|_| ProcessError::NulByte)
}

/// Apply everything about the process except its seccomp filter and exec.
///
/// A filter is the user's, and may deny any syscall the runtime would make
/// after it (close_range, getcwd, poll...): everything that can come before
/// it does, and [`Exec::load_seccomp`] then follows with as little as it can.
/// `seccomp_without_nnp` says a filter will load without no_new_privs: the
/// capability sets then wait for it, as loading it needs CAP_SYS_ADMIN
/// (kept in the permitted set across the uid change).
pub fn apply(process: &Process, seccomp_without_nnp: bool) -> Result<Exec, ProcessError> {
    let args = process.args().as_deref().unwrap_or_default();
    let program = args.first().ok_or(ProcessError::NoArgs)?;
    apply_rlimits(process)?;
    if let Some(scheduler) = process.scheduler() {
        scheduling::apply_scheduler(scheduler)?;
    }
    if let Some(priority) = process.io_priority() {
        scheduling::apply_io_priority(priority)?;
    }

    let caps = CapabilitySets::from_spec(process.capabilities().as_ref())?;
    // The cwd is entered as the runtime first, as runc does: a directory the
    // container's user may not search on the way is then still reachable;
    // one the runtime may not enter is tried again as the user.
    let cwd = process.cwd();
    let chdir = || {
        nix::unistd::chdir(cwd.as_path()).map_err(|source| ProcessError::Cwd {
            path: cwd.clone(),
            source,
        })
    };
    let in_cwd = match chdir() {
        Ok(()) => true,
        Err(ProcessError::Cwd {
            source: nix::errno::Errno::EACCES | nix::errno::Errno::EPERM,
            ..
        }) => false,
        Err(e) => return Err(e),
    };
    caps.apply_bounding()?;
    let user = process.user();
    let identity = |op: &str| {
        let op = op.to_string();
        move |source| ProcessError::Identity {
            op: op.clone(),
            source,
        }
    };
    nix::sys::prctl::set_keepcaps(true).map_err(identity("keep capabilities across setuid"))?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // A user namespace mapped by a user without privilege denies setgroups
    // (runc's rootless containers): the process keeps the groups it has.
    if !setgroups_denied() {
        nix::unistd::setgroups(&groups).map_err(identity("setgroups"))?;
    } else if !groups.is_empty() {
        return Err(ProcessError::Identity { op: "set process.user.additionalGids (this user namespace denies setgroups: its gid map was written without privilege)".into(), source: nix::Error::EPERM });
    }
    let (uid, gid) = (Uid::from_raw(user.uid()), Gid::from_raw(user.gid()));
    nix::unistd::setresgid(gid, gid, gid).map_err(identity(&format!("setgid {gid}")))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(identity(&format!("setuid {uid}")))?;
    nix::sys::prctl::set_keepcaps(false).map_err(identity("clear keepcaps"))?;
    if !in_cwd {
        chdir()?;
    }
    verify_cwd()?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022),
    ));

    let env = environment(process.env().as_deref().unwrap_or_default(), user.uid())?;
    let path = find_executable(program, &env)?;
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().map_err(ProcessError::NoNewPrivs)?;
    }
    CapabilitySets::clear_ambient()?;
    let caps_after_seccomp = match seccomp_without_nnp {
        true => Some(caps),
        false => {
            caps.apply_process_sets()?;
            None
        }
    };
    // Narrowing the capabilities later does not clear it (only a change of
    // ids or a grown permitted set does).
    die_with_runtime()?;
    Ok(Exec {
        path: CString::new(path.as_os_str().as_bytes()).map_err(|_| ProcessError::NulByte)?,
        args: args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cstring(e)).collect::<Result<_, _>>()?,
        caps_after_seccomp,
    })
}

/// What this process's user namespace says of setgroups, when the caller
/// knows better than its /proc: 0 unknown, 1 allowed, 2 denied.
static SETGROUPS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Tell [`apply`] whether setgroups is denied here, for a process whose
/// mounted /proc is not its own (exec's setup child, outside the
/// container's pid namespace, where /proc/self resolves to nothing).
pub fn assume_setgroups_denied(denied: bool) {
    SETGROUPS.store(
        if denied { 2 } else { 1 },
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Whether a user namespace mapped without privilege denies setgroups here.
pub fn setgroups_denied_in(setgroups_file: &std::path::Path) -> bool {
    std::fs::read_to_string(setgroups_file).is_ok_and(|s| s.trim() == "deny")
}

fn setgroups_denied() -> bool {
    match SETGROUPS.load(std::sync::atomic::Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => setgroups_denied_in(std::path::Path::new("/proc/self/setgroups")),
    }
}

/// For a foreground `run` (`CreateOptions::die_with_caller`): SIGKILL
/// this process when the runtime dies. Set after the last change of ids or
/// capabilities, which clears it (credentials(7)); an exec of a set-user-ID
/// or file-capability program clears it again, as it does for runc.
pub(crate) fn die_with_runtime() -> Result<(), ProcessError> {
    let Some(runtime) = crate::sys::caller_death::runtime_to_die_with() else {
        return Ok(());
    };
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(ProcessError::DeathSignal)?;
    // The runtime may have died before that, and then no signal comes.
    // getppid cannot tell (it reads 0 in a new pid namespace whoever the
    // parent is); the runtime's pidfd can. waitid takes the task list lock
    // that an exiting runtime holds from reparenting us to marking itself
    // exited, so the pidfd is read after both or neither: a runtime that
    // missed our death signal shows as exited.
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info = unsafe { std::mem::zeroed::<libc::siginfo_t>() };
    // SAFETY: waitid writes a siginfo we own; WNOWAIT reaps nothing, and ECHILD is the usual answer.
    unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    let mut fds = [nix::poll::PollFd::new(
        runtime,
        nix::poll::PollFlags::POLLIN,
    )];
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
        Ok(0) => Ok(()),
        Ok(_) => Err(ProcessError::RuntimeGone),
        Err(e) => Err(ProcessError::DeathSignal(e)),
    }
}

fn rlimit_resource(kind: PosixRlimitType) -> libc::__rlimit_resource_t {
    match kind {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

fn apply_rlimits(process: &Process) -> Result<(), ProcessError> {
    for limit in process.rlimits().iter().flatten() {
        let value = libc::rlimit {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: setrlimit reads a valid struct we own; the resource id comes from a closed enum.
        if unsafe { libc::setrlimit(rlimit_resource(limit.typ()), &value) } != 0 {
            return Err(ProcessError::Rlimit {
                name: limit.typ().to_string(),
                soft: limit.soft(),
                hard: limit.hard(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// A cwd reached through a leaked host descriptor shows as unreachable or
/// fails outright (CVE-2024-21626); refuse to run there.
fn verify_cwd() -> Result<(), ProcessError> {
    match nix::unistd::getcwd() {
        Ok(path) if path.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdOutsideRoot),
    }
}

/// The process's environment as runc gives it: each name once, with its
/// last value (so `exec -e NAME=...` overrides the config's), and HOME from
/// /etc/passwd when absent or empty. A malformed entry is an error; its text
/// stays out of the message, as an environment may hold secrets.
fn environment(config_env: &[String], uid: u32) -> Result<Vec<String>, ProcessError> {
    let mut seen = std::collections::HashSet::new();
    let mut env = Vec::with_capacity(config_env.len() + 1);
    let mut has_home = false;
    for (index, entry) in config_env.iter().enumerate().rev() {
        let invalid = |reason| ProcessError::InvalidEnv { index, reason };
        let (name, value) = entry
            .split_once('=')
            .ok_or_else(|| invalid("missing '='"))?;
        if name.is_empty() {
            return Err(invalid("name cannot be empty"));
        }
        if !seen.insert(name) || (name == "HOME" && value.is_empty()) {
            continue;
        }
        has_home |= name == "HOME";
        env.push(entry.clone());
    }
    env.reverse();
    if !has_home {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        env.push(format!("HOME={}", home_of(&passwd, uid).unwrap_or("/")));
    }
    Ok(env)
}

fn home_of(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then_some(fields[5])
    })
}

/// Resolve `program` the way execvp would, with the container's PATH.
fn find_executable(program: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        check_executable(&path, program)?;
        return Ok(path);
    }
    let search = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in search.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if check_executable(&candidate, program).is_ok() {
            return Ok(candidate);
        }
    }
    Err(ProcessError::NotFound {
        name: program.to_string(),
    })
}

fn check_executable(path: &Path, name: &str) -> Result<(), ProcessError> {
    let stat = nix::sys::stat::stat(path).map_err(|e| ProcessError::Stat {
        name: name.to_string(),
        source: e.into(),
    })?;
    let regular = stat.st_mode & libc::S_IFMT == libc::S_IFREG;
    let executable = nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    if regular && executable {
        Ok(())
    } else {
        Err(ProcessError::NotExecutable {
            name: name.to_string(),
        })
    }
}

/// Mark every descriptor above stderr (and the preserved ones) close-on-exec,
/// so nothing of the runtime reaches the container (CVE-2024-21626).
pub fn close_runtime_fds(preserve_fds: u32) -> Result<(), ProcessError> {
    let first = 3 + preserve_fds;
    // SAFETY: close_range only flags descriptors; CLOEXEC keeps ours usable until exec.
    if unsafe { libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) } != 0
    {
        return Err(ProcessError::CloseFds(std::io::Error::last_os_error()));
    }
    for fd in 3..first {
        // Preserved descriptors were inherited from the caller and must survive exec.
        // SAFETY: fcntl on a descriptor number; failure (not open) is ignored on purpose.
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) };
    }
    Ok(())
}

impl Exec {
    /// The path, argv and envp `run` passes to execve (for the waiter, which execs them later).
    pub(crate) fn parts(&self) -> (&CString, &[CString], &[CString]) {
        (&self.path, &self.args, &self.env)
    }

    /// Load the process's seccomp filter: the last thing before exec (or
    /// before handing a listener its descriptor), so the runtime's own steps
    /// do not depend on what the filter allows. Without no_new_privs the
    /// load borrows CAP_SYS_ADMIN from the permitted set, and the process's
    /// capability sets follow it: capset is then the one syscall the
    /// runtime still makes under the filter.
    pub fn load_seccomp(
        &mut self,
        filter: &libseccomp::ScmpFilterContext,
    ) -> Result<(), ProcessError> {
        match self.caps_after_seccomp.take() {
            Some(caps) => {
                crate::process::capabilities::raise_for_seccomp_load()?;
                crate::process::seccomp::load(filter)?;
                caps.apply_process_sets()?;
            }
            None => crate::process::seccomp::load(filter)?,
        }
        Ok(())
    }

    pub fn run(mut self) -> ProcessError {
        // A filter that never came still leaves the process its own capabilities.
        if let Some(caps) = self.caps_after_seccomp.take() {
            if let Err(e) = caps.apply_process_sets() {
                return e.into();
            }
        }
        let path = self.path.to_string_lossy().into_owned();
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Err(source) => ProcessError::Exec { path, source },
            Ok(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
        assert_eq!(home_of(passwd, 1000), Some("/home/user"));
        assert_eq!(home_of(passwd, 7), None);
    }

    #[test]
    fn environment_keeps_the_last_value_and_fills_an_empty_home() {
        let env = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|e| e.to_string()).collect();
            environment(&list, 0)
        };
        let got = env(&["A=1", "B=2", "A=3", "HOME=", "C="]).unwrap();
        assert_eq!(got[..3], ["B=2", "A=3", "C="]);
        assert!(got[3].starts_with("HOME=") && got[3] != "HOME=", "{got:?}");
        assert_eq!(env(&["HOME=/x", "HOME=/y"]).unwrap(), ["HOME=/y"]);
        for (bad, reason) in [("NOEQ", "missing '='"), ("=x", "name cannot be empty")] {
            let err = env(&["A=1", bad]).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("process.env[1]: invalid environment variable: {reason}")
            );
        }
    }

    #[test]
    fn path_lookup_uses_the_last_path_entry() {
        let env = vec![
            "PATH=/nonexistent".to_string(),
            "PATH=/bin:/usr/bin".to_string(),
        ];
        assert!(find_executable("sh", &env).is_ok());
        assert!(matches!(
            find_executable("no-such-program-xyz", &env),
            Err(ProcessError::NotFound { .. })
        ));
    }
}
