//! AppArmor profiles and SELinux labels for the container's process
//! (`process.apparmorProfile`, `process.selinuxLabel`), applied at its exec.
//!
//! Both are set by writing the process's `attr/.../exec` file, which the
//! kernel applies at the next execve. The write goes through a private
//! procfs (see procfs.rs): the container's /proc may be a trap.
//! A host without the LSM gets a clear error, never a silently unconfined
//! container.

use crate::procfs::PrivateProc;
use oci_spec::runtime::Process;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{field} {value:?} is set, but {lsm} is not enabled on this host")]
    NotEnabled {
        field: &'static str,
        value: String,
        lsm: &'static str,
    },
    #[error(transparent)]
    Procfs(#[from] crate::procfs::ProcfsError),
    #[error("apply {field} {value:?}: {source}")]
    Apply {
        field: &'static str,
        value: String,
        source: std::io::Error,
    },
}

fn apparmor_enabled() -> bool {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.starts_with('Y'));
    enabled && Path::new("/sys/kernel/security/apparmor").exists()
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// What `process` asks for, checked against the host: before anything is created.
pub fn check(process: &Process) -> Result<(), LsmError> {
    if let Some(profile) = non_empty(process.apparmor_profile()) {
        if !apparmor_enabled() {
            return Err(LsmError::NotEnabled {
                field: "process.apparmorProfile",
                value: profile.into(),
                lsm: "AppArmor",
            });
        }
    }
    if let Some(label) = non_empty(process.selinux_label()) {
        if !selinux_enabled() {
            return Err(LsmError::NotEnabled {
                field: "process.selinuxLabel",
                value: label.into(),
                lsm: "SELinux",
            });
        }
    }
    Ok(())
}

/// `linux.mountLabel` needs SELinux on the host.
pub fn check_mount_label(label: &str) -> Result<(), LsmError> {
    if selinux_enabled() {
        return Ok(());
    }
    Err(LsmError::NotEnabled {
        field: "linux.mountLabel",
        value: label.into(),
        lsm: "SELinux",
    })
}

/// Set the labels the calling process's next exec gets, after `check`
/// passed. Single-threaded callers only: the attr files are per thread, and
/// this writes the leader's.
pub fn apply_on_exec(process: &Process) -> Result<(), LsmError> {
    let profile = non_empty(process.apparmor_profile());
    let label = non_empty(process.selinux_label());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    let proc = PrivateProc::open()?;
    // Our pid as this procfs (made in our own pid namespace) numbers it.
    let own = PathBuf::from(nix::unistd::getpid().to_string()).join("attr");
    if let Some(profile) = profile {
        let text = format!("exec {profile}");
        proc.write(&own.join("apparmor/exec"), &text)
            .or_else(|_| proc.write(&own.join("exec"), &text))
            .map_err(|e| applying("process.apparmorProfile", profile, e))?;
    }
    if let Some(label) = label {
        proc.write(&own.join("exec"), label)
            .map_err(|e| applying("process.selinuxLabel", label, e))?;
    }
    Ok(())
}

fn applying(field: &'static str, value: &str, source: std::io::Error) -> LsmError {
    LsmError::Apply {
        field,
        value: value.into(),
        source,
    }
}
