//! `linux.seccomp` through libseccomp: the filter is built (names resolved,
//! rules checked) before the start barrier, so a bad profile fails `create`,
//! and loaded as late as the process model allows: just before exec when
//! no_new_privs is set, otherwise while the init still holds CAP_SYS_ADMIN.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall};
use std::collections::HashSet;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {what}: {source}")]
    Libseccomp { what: String, source: libseccomp::error::SeccompError },
    #[error("seccomp: unknown architecture {0}")]
    UnknownArch(String),
    #[error("seccomp: SCMP_ACT_NOTIFY (a seccomp listener) is not supported yet")]
    Notify,
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
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => return Err(SeccompError::Notify),
    })
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
            return ScmpArgCompare::new(arg.index() as u32, ScmpCompareOp::MaskedEqual(arg.value()), arg.value_two().unwrap_or(0));
        }
    };
    ScmpArgCompare::new(arg.index() as u32, op, arg.value())
}

/// Build the filter for `profile`. Syscall names this libseccomp does not
/// know are skipped, as runc does, so one profile serves several kernels.
pub fn build(profile: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut filter = ScmpFilterContext::new(default).map_err(fail("create a filter"))?;
    for arch in profile.architectures().iter().flatten() {
        let name = serde_json::to_value(arch).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let parsed = ScmpArch::from_str(&name).map_err(|_| SeccompError::UnknownArch(name.clone()))?;
        filter.add_arch(parsed).map_err(fail(format!("add architecture {name}")))?;
    }
    for flag in profile.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => filter.set_ctl_log(true).map_err(fail("set flag SECCOMP_FILTER_FLAG_LOG"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => filter.set_ctl_ssb(true).map_err(fail("set flag SECCOMP_FILTER_FLAG_SPEC_ALLOW"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => filter.set_ctl_tsync(true).map_err(fail("set flag SECCOMP_FILTER_FLAG_TSYNC"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                filter.set_ctl_waitkill(true).map_err(fail("set flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))?
            }
        };
    }
    for rule in profile.syscalls().iter().flatten() {
        add_rule(&mut filter, rule, default)?;
    }
    Ok(filter)
}

fn add_rule(filter: &mut ScmpFilterContext, rule: &LinuxSyscall, default: ScmpAction) -> Result<(), SeccompError> {
    let act = action(rule.action(), rule.errno_ret())?;
    // libseccomp refuses a rule that repeats the default action; it is a no-op anyway.
    if act == default {
        return Ok(());
    }
    let conditions: Vec<ScmpArgCompare> = rule.args().iter().flatten().map(compare).collect();
    let indices: HashSet<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
    for name in rule.names() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else { continue };
        let what = || format!("add the rule for {name}");
        if conditions.is_empty() {
            filter.add_rule(act, syscall).map_err(fail(what()))?;
        } else if indices.len() == conditions.len() {
            filter.add_rule_conditional(act, syscall, &conditions).map_err(fail(what()))?;
        } else {
            // Conditions on the same argument cannot share a rule: each becomes its own (an OR), as in runc.
            for condition in &conditions {
                filter.add_rule_conditional(act, syscall, std::slice::from_ref(condition)).map_err(fail(what()))?;
            }
        }
    }
    Ok(())
}

/// Load a built filter into the calling thread.
pub fn load(filter: &ScmpFilterContext) -> Result<(), SeccompError> {
    filter.load().map_err(fail("load the filter"))
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
        assert_eq!(action(LinuxSeccompAction::ScmpActKill, None).unwrap(), ScmpAction::KillThread);
        assert_eq!(action(LinuxSeccompAction::ScmpActErrno, None).unwrap(), ScmpAction::Errno(libc::EPERM));
        assert_eq!(action(LinuxSeccompAction::ScmpActErrno, Some(38)).unwrap(), ScmpAction::Errno(38));
        assert!(matches!(action(LinuxSeccompAction::ScmpActNotify, None), Err(SeccompError::Notify)));
    }

    #[test]
    fn the_containers_default_profile_builds() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/testdata/seccomp-default.oci.json");
        let text = std::fs::read_to_string(&path).unwrap();
        build(&serde_json::from_str(&text).unwrap()).unwrap();
    }
}
