//! AppArmor profiles and SELinux labels for the container's process
//! (`process.apparmorProfile`, `process.selinuxLabel`), applied at its exec.
//!
//! Both are set by writing the process's `attr/.../exec` file, which the
//! kernel applies at the next execve. The write goes through a private
//! procfs (see sys/procfs.rs): the container's /proc may be a trap.
//! A host without the LSM gets a clear error, never a silently unconfined
//! container.

use crate::sys::procfs::PrivateProc;
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
    Procfs(#[from] crate::sys::procfs::ProcfsError),
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

/// As go-selinux decides it: selinuxfs is mounted (its `enforce` file
/// exists whether the mode is enforcing or permissive).
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

/// The label for `linux.mountLabel`'s mounts: `None` when unset, or when
/// the host has no SELinux. runc accepts the field and ignores it there, and
/// podman, CRI-O and docker set it on every SELinux-capable config, so a
/// host without SELinux must not refuse it (docs/cli.md).
pub fn mount_label(spec: &oci_spec::runtime::Spec) -> Option<String> {
    let label = spec.linux().as_ref()?.mount_label().as_ref()?;
    (!label.is_empty() && selinux_enabled()).then(|| label.clone())
}

/// The filesystem option that puts `label` on every file of a new
/// filesystem of type `fstype` (SELinux's `context=`), or `None` for the
/// types that keep their own labels: proc and sysfs carry the kernel's,
/// mqueue is labelled through its root directory, and binds and cgroup
/// trees show the host's files (as runc does). The value is not quoted:
/// fsconfig(2) takes it whole, where mount(2)'s comma-separated data needed
/// quotes around an MCS range such as `s0:c1,c2`.
pub fn mount_context_option(fstype: &str, label: &str) -> Option<String> {
    match fstype {
        "" | "bind" | "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" => None,
        _ if label.is_empty() => None,
        _ => Some(format!("context={label}")),
    }
}

/// Give the file `fd` (an O_PATH descriptor will do) the SELinux label
/// `label`, as setfilecon(3) does.
pub fn label_file(fd: std::os::fd::BorrowedFd, label: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // setxattr through the magic link: fsetxattr refuses O_PATH descriptors.
    let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let name = c"security.selinux";
    // SAFETY: both strings are NUL-terminated and outlive the call; the value
    // pointer and length describe `label`'s bytes.
    let ret = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Join the container's session keyring (`join`) with `process.selinuxLabel`
/// as the label of the keys this thread creates (SELinux's `keycreate`), as
/// runc does, so the keyring is labelled like the process that will use it.
/// Without SELinux or a label, `join` runs alone; afterwards the thread's
/// key label is put back to the default.
pub fn with_key_label(
    process: Option<&Process>,
    join: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let Some(label) = process
        .and_then(|p| non_empty(p.selinux_label()))
        .filter(|_| selinux_enabled())
    else {
        return join();
    };
    let proc = PrivateProc::open().map_err(|e| e.to_string())?;
    let keycreate = PathBuf::from(nix::unistd::getpid().to_string()).join("attr/keycreate");
    proc.write(&keycreate, label)
        .map_err(|e| applying("process.selinuxLabel (keycreate)", label, e).to_string())?;
    let joined = join();
    // An empty write restores the default; a failure here leaves only this
    // setup thread's later keys labelled, and it creates none.
    let _ = proc.write(&keycreate, "");
    joined
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

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "system_u:object_r:container_file_t:s0:c1,c2";

    #[test]
    fn new_filesystems_get_the_mount_label_whole() {
        for fstype in ["tmpfs", "devpts", "shm", "overlay", "ramfs"] {
            assert_eq!(
                mount_context_option(fstype, LABEL).as_deref(),
                Some("context=system_u:object_r:container_file_t:s0:c1,c2"),
                "{fstype}"
            );
        }
    }

    #[test]
    fn binds_and_kernel_filesystems_keep_their_labels() {
        for fstype in ["", "bind", "proc", "sysfs", "mqueue", "cgroup", "cgroup2"] {
            assert_eq!(mount_context_option(fstype, LABEL), None, "{fstype}");
        }
        assert_eq!(mount_context_option("tmpfs", ""), None);
    }

    #[test]
    fn mount_label_is_ignored_without_selinux() {
        let spec: oci_spec::runtime::Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0",
                "linux": {"mountLabel": LABEL}}))
            .unwrap();
        let expected = selinux_enabled().then(|| LABEL.to_string());
        assert_eq!(mount_label(&spec), expected);
        let empty: oci_spec::runtime::Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0",
                "linux": {"mountLabel": ""}}))
            .unwrap();
        assert_eq!(mount_label(&empty), None);
    }
}
