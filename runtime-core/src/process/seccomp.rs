//! `linux.seccomp` through libseccomp: the filter is built (names resolved,
//! rules checked) before the start barrier, so a bad profile fails `create`,
//! and loaded last, right before exec (`process::Exec::load_seccomp`), so no
//! step of the runtime depends on what the user's profile allows. Without
//! no_new_privs the load borrows CAP_SYS_ADMIN, and capset follows it.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use std::collections::HashSet;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {what}: {source}")]
    Libseccomp {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("seccomp: unknown architecture {0}")]
    UnknownArch(String),
    #[error("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, the socket that gets the listener's descriptor")]
    NoListenerPath,
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be the defaultAction (every syscall of the runtime's own setup would wait on the listener)")]
    NotifyByDefault,
    #[error("seccomp: SCMP_ACT_NOTIFY cannot apply to {0}: the runtime hands the listener its descriptor with it")]
    NotifyOnOwnSyscall(String),
    #[error("seccomp: send the listener descriptor to {}: {source}", .path.display())]
    Listener {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp: listener socket {0}")]
    ListenerPath(crate::sys::host_file::HostFileError),
}

fn fail(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |source| SeccompError::Libseccomp { what, source }
}

/// The libseccomp action for an OCI action; `errno` is the rule's errnoRet.
fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, SeccompError> {
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match action {
        // runc's reading of the legacy SCMP_ACT_KILL: kill the thread.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

/// Syscalls the runtime itself makes after the filter is loaded and before
/// the listener has its descriptor: a notify on them could never be answered.
const RUNTIME_SYSCALLS_BEFORE_LISTENER: [&str; 1] = ["sendmsg"];

/// Whether `profile` sends syscalls to a listener (SCMP_ACT_NOTIFY), after
/// checking that it can: a listenerPath, not the default action, not on a
/// syscall the hand-over itself needs.
pub fn uses_notify(profile: &LinuxSeccomp) -> Result<bool, SeccompError> {
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyByDefault);
    }
    let notified = profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|rule| rule.action() == LinuxSeccompAction::ScmpActNotify);
    let mut any = false;
    for rule in notified {
        any = true;
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| RUNTIME_SYSCALLS_BEFORE_LISTENER.contains(&n.as_str()))
        {
            return Err(SeccompError::NotifyOnOwnSyscall(name.clone()));
        }
    }
    if any && profile.listener_path().is_none() {
        return Err(SeccompError::NoListenerPath);
    }
    Ok(any)
}

/// One syscall a runtime step makes under the filter: its name and the
/// arguments known in advance (`None` for a descriptor or a pointer).
pub type Call = (&'static str, [Option<u64>; 6]);

/// Whether `profile` surely lets each of `calls` through (SCMP_ACT_ALLOW or
/// SCMP_ACT_LOG, and SCMP_ACT_NOTIFY when `notify_answered`: its listener
/// has the descriptor by then): no rule that may match it acts otherwise,
/// and a rule that surely matches, or the default action, lets it through.
/// For the waiter's own syscalls when the filter is loaded before it runs.
pub fn lets_through(profile: &LinuxSeccomp, calls: &[Call], notify_answered: bool) -> bool {
    let passes = |action| match action {
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog => true,
        LinuxSeccompAction::ScmpActNotify => notify_answered,
        _ => false,
    };
    calls.iter().all(|(name, args)| {
        let mut allowed = passes(profile.default_action());
        for rule in profile.syscalls().iter().flatten() {
            if !rule.names().iter().any(|n| n == name) {
                continue;
            }
            match (rule_matches(rule, args), passes(rule.action())) {
                (Some(false), _) => {}
                (Some(true), true) => allowed = true,
                (_, true) => {}
                (_, false) => return false,
            }
        }
        allowed
    })
}

/// Whether every argument condition of `rule` holds: `None` when one
/// depends on an argument not known in advance.
fn rule_matches(rule: &oci_spec::runtime::LinuxSyscall, args: &[Option<u64>; 6]) -> Option<bool> {
    let mut all = Some(true);
    for cond in rule.args().iter().flatten() {
        let Some(value) = args.get(cond.index()).copied().flatten() else {
            all = None;
            continue;
        };
        let (v, v2) = (cond.value(), cond.value_two().unwrap_or(0));
        let holds = match cond.op() {
            LinuxSeccompOperator::ScmpCmpNe => value != v,
            LinuxSeccompOperator::ScmpCmpLt => value < v,
            LinuxSeccompOperator::ScmpCmpLe => value <= v,
            LinuxSeccompOperator::ScmpCmpEq => value == v,
            LinuxSeccompOperator::ScmpCmpGe => value >= v,
            LinuxSeccompOperator::ScmpCmpGt => value > v,
            LinuxSeccompOperator::ScmpCmpMaskedEq => value & v == v2,
        };
        if !holds {
            return Some(false);
        }
    }
    all
}

fn compare(arg: &oci_spec::runtime::LinuxSeccompArg) -> ScmpArgCompare {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // OCI puts the mask in `value` and the datum in `valueTwo`.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                arg.index() as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            );
        }
    };
    ScmpArgCompare::new(arg.index() as u32, op, arg.value())
}

/// Build the filter for `profile`. Syscall names this libseccomp does not
/// know are skipped, as runc does, so one profile serves several kernels.
pub fn build(profile: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    uses_notify(profile)?;
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut filter = ScmpFilterContext::new(default).map_err(fail("create a filter"))?;
    // libseccomp sets no_new_privs at load unless told not to: whether the
    // process gets it is process.noNewPrivileges' say alone (setuid programs
    // keep working under docker's default profile, as with runc).
    filter
        .set_ctl_nnp(false)
        .map_err(fail("leave no_new_privs to process.noNewPrivileges"))?;
    for arch in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let parsed =
            ScmpArch::from_str(&name).map_err(|_| SeccompError::UnknownArch(name.clone()))?;
        filter
            .add_arch(parsed)
            .map_err(fail(format!("add architecture {name}")))?;
    }
    for flag in profile.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => filter
                .set_ctl_log(true)
                .map_err(fail("set flag SECCOMP_FILTER_FLAG_LOG"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => filter
                .set_ctl_ssb(true)
                .map_err(fail("set flag SECCOMP_FILTER_FLAG_SPEC_ALLOW"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => filter
                .set_ctl_tsync(true)
                .map_err(fail("set flag SECCOMP_FILTER_FLAG_TSYNC"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => filter
                .set_ctl_waitkill(true)
                .map_err(fail("set flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))?,
        };
    }
    for rule in profile.syscalls().iter().flatten() {
        add_rule(&mut filter, rule, default)?;
    }
    Ok(filter)
}

fn add_rule(
    filter: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
) -> Result<(), SeccompError> {
    let act = action(rule.action(), rule.errno_ret())?;
    // libseccomp refuses a rule that repeats the default action; it is a no-op anyway.
    if act == default {
        return Ok(());
    }
    let conditions: Vec<ScmpArgCompare> = rule.args().iter().flatten().map(compare).collect();
    let indices: HashSet<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
    for name in rule.names() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let what = || format!("add the rule for {name}");
        if conditions.is_empty() {
            filter.add_rule(act, syscall).map_err(fail(what()))?;
        } else if indices.len() == conditions.len() {
            filter
                .add_rule_conditional(act, syscall, &conditions)
                .map_err(fail(what()))?;
        } else {
            // Conditions on the same argument cannot share a rule: each becomes its own (an OR), as in runc.
            for condition in &conditions {
                filter
                    .add_rule_conditional(act, syscall, std::slice::from_ref(condition))
                    .map_err(fail(what()))?;
            }
        }
    }
    Ok(())
}

/// What `berth features` says of seccomp (features-linux.md "Seccomp"): of
/// the names runtime-spec defines, those `build` takes (each is tried
/// through the same code), and the filter flags the running kernel accepts.
/// The library's [`Features`](crate::Features) carries it as `Seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Support {
    /// Seccomp is supported.
    pub enabled: bool,
    /// `SCMP_ACT_*` actions.
    pub actions: Vec<String>,
    /// `SCMP_CMP_*` operators.
    pub operators: Vec<String>,
    /// `SCMP_ARCH_*` architectures.
    pub archs: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` flags this build recognises.
    pub known_flags: Vec<String>,
    /// Of those, the flags the running kernel accepts.
    pub supported_flags: Vec<String>,
}

const SPEC_ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
const SPEC_OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
const SPEC_ARCHS: [&str; 19] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];
/// (spec name, the kernel's SECCOMP_FILTER_FLAG_* bit).
const SPEC_FLAGS: [(&str, libc::c_ulong); 4] = [
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32),
];

pub fn support() -> Support {
    let accepted = |names: &[&str], json_of: &dyn Fn(&str) -> String| -> Vec<String> {
        names
            .iter()
            .filter(|name| {
                serde_json::from_str::<LinuxSeccomp>(&json_of(name))
                    .is_ok_and(|p| build(&p).is_ok())
            })
            .map(|name| name.to_string())
            .collect()
    };
    let actions = accepted(&SPEC_ACTIONS, &|a| {
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/l","syscalls":[{{"names":["getpid"],"action":"{a}"}}]}}"#
        )
    });
    let operators = accepted(&SPEC_OPERATORS, &|op| {
        format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"SCMP_ACT_ERRNO","args":[{{"index":0,"value":1,"op":"{op}"}}]}}]}}"#
        )
    });
    let archs = accepted(&SPEC_ARCHS, &|arch| {
        format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["{arch}"]}}"#)
    });
    let known_flags = accepted(&SPEC_FLAGS.map(|(name, _)| name), &|flag| {
        format!(r#"{{"defaultAction":"SCMP_ACT_ALLOW","flags":["{flag}"]}}"#)
    });
    let supported_flags = SPEC_FLAGS
        .iter()
        .filter(|(name, bit)| known_flags.iter().any(|k| k == name) && kernel_takes_flag(*bit))
        .map(|(name, _)| name.to_string())
        .collect();
    Support {
        enabled: true,
        actions,
        operators,
        archs,
        known_flags,
        supported_flags,
    }
}

/// Whether this kernel knows a filter flag: with no program to read, it
/// fails EFAULT once the flags pass its check, EINVAL when they do not
/// (before any privilege check, so this loads nothing).
fn kernel_takes_flag(bit: libc::c_ulong) -> bool {
    // SAFETY: a null program pointer makes the kernel fail the call without loading anything.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1 as libc::c_ulong,
            bit,
            std::ptr::null::<libc::c_void>(),
        )
    };
    result == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Load a built filter into the calling thread.
pub fn load(filter: &ScmpFilterContext) -> Result<(), SeccompError> {
    filter.load().map_err(fail("load the filter"))
}

/// The listener descriptor of a loaded filter with SCMP_ACT_NOTIFY rules.
pub fn listener_fd(filter: &ScmpFilterContext) -> Result<BorrowedFd<'static>, SeccompError> {
    let raw = filter
        .get_notify_fd()
        .map_err(fail("get the listener descriptor"))?;
    // SAFETY: the kernel made this descriptor at load, close-on-exec; nothing
    // closes it before the caller has sent it on.
    Ok(unsafe { BorrowedFd::borrow_raw(raw) })
}

/// runtime-spec's "container process state" for a seccomp listener: which
/// descriptor comes with it, the process, the profile's listenerMetadata,
/// and the container's state (`state_json`).
fn listener_message(pid: i32, metadata: Option<&str>, state_json: &str) -> String {
    let state: serde_json::Value = serde_json::from_str(state_json).unwrap_or_default();
    let message = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata.unwrap_or_default(),
        "state": state,
    });
    message.to_string()
}

/// Hand `fd`, the listener descriptor of process `pid`, to `profile`'s
/// listenerPath with the container's state (`state_json`).
pub fn hand_to_listener(
    profile: &LinuxSeccomp,
    pid: i32,
    state_json: &str,
    fd: BorrowedFd,
) -> Result<(), SeccompError> {
    let path = profile.listener_path().clone().unwrap_or_default();
    let message = listener_message(pid, profile.listener_metadata().as_deref(), state_json);
    send_to_listener(&path, &message, fd)
}

/// Send `message` with `fd` to the listener at `path`, in one message as
/// runc does (SCM_RIGHTS), and close our end.
fn send_to_listener(path: &Path, message: &str, fd: BorrowedFd) -> Result<(), SeccompError> {
    let fail = |source| SeccompError::Listener {
        path: path.to_path_buf(),
        source,
    };
    // Not through a symlink someone else planted (sys/host_file.rs).
    let stream = crate::sys::host_file::connect_unix(path).map_err(SeccompError::ListenerPath)?;
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(message.as_bytes())];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| fail(e.into()))?;
    if sent != message.len() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "short write",
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_profile_with_unknown_syscalls_and_args_builds() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["read","write","no_such_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        );
        build(&p).unwrap();
    }

    #[test]
    fn actions_map_as_runc_reads_them() {
        assert_eq!(
            action(LinuxSeccompAction::ScmpActKill, None).unwrap(),
            ScmpAction::KillThread
        );
        assert_eq!(
            action(LinuxSeccompAction::ScmpActErrno, None).unwrap(),
            ScmpAction::Errno(libc::EPERM)
        );
        assert_eq!(
            action(LinuxSeccompAction::ScmpActErrno, Some(38)).unwrap(),
            ScmpAction::Errno(38)
        );
        assert_eq!(
            action(LinuxSeccompAction::ScmpActNotify, None).unwrap(),
            ScmpAction::Notify
        );
    }

    #[test]
    fn notify_needs_a_listener_and_stays_off_the_default_and_sendmsg() {
        let with = |extra: &str| {
            profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}}]{extra}}}"#
            ))
        };
        assert!(matches!(
            uses_notify(&with("")),
            Err(SeccompError::NoListenerPath)
        ));
        assert!(uses_notify(&with(r#","listenerPath":"/run/agent.sock""#)).unwrap());
        let default = profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}"#);
        assert!(matches!(
            uses_notify(&default),
            Err(SeccompError::NotifyByDefault)
        ));
        let own = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["mkdir","sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(
            matches!(uses_notify(&own), Err(SeccompError::NotifyOnOwnSyscall(name)) if name == "sendmsg")
        );
        assert!(!uses_notify(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)).unwrap());
    }

    #[test]
    fn the_listener_message_follows_the_spec() {
        let text = listener_message(
            42,
            Some("meta"),
            r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#,
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(value["pid"], 42);
        assert_eq!(value["metadata"], "meta");
        assert_eq!(value["state"]["id"], "c1");
    }

    #[test]
    fn the_containers_default_profile_builds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/testdata/seccomp-default.oci.json");
        let text = std::fs::read_to_string(&path).unwrap();
        build(&serde_json::from_str(&text).unwrap()).unwrap();
    }
}
