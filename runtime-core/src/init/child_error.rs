//! Why the container's process failed to set itself up, as a value.
//!
//! The init (create) and exec's setup child fail in a copy of the runtime,
//! on the far side of the sync channel; what they send back is a
//! [`ChildError`] (serialized as JSON in the `Failed` message), which the
//! caller gets in [`Error::Init`](crate::Error::Init): the step that
//! failed, the errno when a system call did, the config field and the path
//! involved when there is one. Its message is the text `berth` prints,
//! runc's where engines match on it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The step of the container process's setup that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ChildStep {
    /// Talking to the runtime: the sync channel, the report pipe, a
    /// runtime that went away.
    Sync,
    /// Putting the caller's descriptors on stdin, stdout and stderr
    /// ([`Stdio`](crate::Stdio)).
    Stdio,
    /// Entering the container's cgroup.
    Cgroup,
    /// Joining or making the container's namespaces.
    Namespaces,
    /// The session keyring.
    Keyring,
    /// The root filesystem: mounts, devices, pivot_root (the
    /// createContainer hooks run inside this step, and report as `Hooks`).
    Rootfs,
    /// A hook run by the container's process (createContainer, startContainer).
    Hooks,
    /// CPU affinity (`process.execCPUAffinity`, the cgroup's cpuset).
    Affinity,
    /// `linux.memoryPolicy`.
    MemoryPolicy,
    /// The terminal (`process.terminal`).
    Console,
    /// A session of its own, or the controlling terminal.
    Session,
    /// `hostname`.
    Hostname,
    /// `domainname`.
    Domainname,
    /// `linux.sysctl`.
    Sysctl,
    /// `linux.personality`.
    Personality,
    /// The AppArmor profile or SELinux label.
    Lsm,
    /// The process's attributes: user, groups, capabilities, rlimits,
    /// no_new_privileges, cwd, environment, scheduler, I/O priority.
    Process,
    /// Closing the runtime's descriptors.
    CloseFds,
    /// Loading `linux.seccomp`, or handing its listener over.
    Seccomp,
    /// Waiting for `start` on the start barrier.
    StartBarrier,
    /// Exec'ing the program (`process.args`).
    Exec,
    /// Anything else (the runtime's own bookkeeping).
    Other,
}

impl ChildStep {
    /// The config field a failure at this step is about, where one is.
    pub fn config_field(self) -> Option<&'static str> {
        Some(match self {
            ChildStep::Hostname => "hostname",
            ChildStep::Domainname => "domainname",
            ChildStep::Sysctl => "linux.sysctl",
            ChildStep::Personality => "linux.personality",
            ChildStep::MemoryPolicy => "linux.memoryPolicy",
            ChildStep::Seccomp => "linux.seccomp",
            ChildStep::Affinity => "process.execCPUAffinity",
            ChildStep::Console => "process.terminal",
            ChildStep::Exec => "process.args",
            _ => return None,
        })
    }
}

/// A failed step of the container process's setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ChildError {
    /// Which step failed.
    pub step: ChildStep,
    /// The errno of the system call that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// The config field the failure is about (`process.cwd`, `hostname`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The path involved (the cwd, the program), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// What `berth` prints after "unable to start container process: ".
    pub message: String,
}

impl ChildError {
    /// A failure at `step`, with the step's config field.
    pub fn new(step: ChildStep, message: impl Into<String>) -> ChildError {
        ChildError {
            step,
            errno: None,
            field: step.config_field().map(str::to_string),
            path: None,
            message: message.into(),
        }
    }

    /// The errno found in `error` or its sources.
    pub(crate) fn with_errno_of(mut self, error: &(dyn std::error::Error + 'static)) -> ChildError {
        self.errno = errno_of(error);
        self
    }

    /// With the config field `field`.
    pub(crate) fn with_field(mut self, field: &str) -> ChildError {
        self.field = Some(field.into());
        self
    }

    /// With how the process ended (its wait status) after the message.
    pub(crate) fn ended(mut self, status: nix::sys::wait::WaitStatus) -> ChildError {
        self.message = format!(
            "{} ({})",
            self.message,
            crate::init::waiter::describe_exit(status)
        );
        self
    }

    /// Bytes for the sync channel, at most `limit` of them: a longer
    /// message (a hook's output) is cut, so the JSON stays whole.
    pub(crate) fn encode(&self, limit: usize) -> Vec<u8> {
        let mut sent = self.clone();
        loop {
            let bytes = serde_json::to_vec(&sent).unwrap_or_default();
            if bytes.len() <= limit || sent.message.is_empty() {
                return bytes;
            }
            let mut keep = sent.message.len().saturating_sub(bytes.len() - limit + 3);
            while !sent.message.is_char_boundary(keep) {
                keep -= 1;
            }
            sent.message.truncate(keep);
            sent.message.push_str("...");
        }
    }

    /// From the sync channel; text that is not one (a peer of another
    /// version) is kept as the message.
    pub(crate) fn decode(bytes: &[u8]) -> ChildError {
        serde_json::from_slice(bytes).unwrap_or_else(|_| {
            ChildError::new(
                ChildStep::Other,
                String::from_utf8_lossy(bytes).into_owned(),
            )
        })
    }
}

impl From<crate::process::ProcessError> for ChildError {
    fn from(error: crate::process::ProcessError) -> ChildError {
        use crate::process::ProcessError as P;
        let step = match &error {
            P::Seccomp(_) => ChildStep::Seccomp,
            P::CloseFds(_) => ChildStep::CloseFds,
            P::NotFound { .. } | P::Stat { .. } | P::NotExecutable { .. } | P::Exec { .. } => {
                ChildStep::Exec
            }
            _ => ChildStep::Process,
        };
        let mut child = ChildError::new(step, error.to_string()).with_errno_of(&error);
        match &error {
            P::Cwd { path, .. } => {
                child.field = Some("process.cwd".into());
                child.path = Some(path.clone());
            }
            P::CwdOutsideRoot => child.field = Some("process.cwd".into()),
            P::Rlimit { .. } => child.field = Some("process.rlimits".into()),
            P::InvalidEnv { .. } => child.field = Some("process.env".into()),
            P::Capability(_) => child.field = Some("process.capabilities".into()),
            P::NoNewPrivs(_) => child.field = Some("process.noNewPrivileges".into()),
            P::Identity { .. } => child.field = Some("process.user".into()),
            P::NotFound { name } | P::NotExecutable { name } | P::Stat { name, .. } => {
                child.path = Some(name.into());
            }
            P::Exec { path, .. } => child.path = Some(path.into()),
            _ => {}
        }
        child
    }
}

/// A failure of `rootfs::prepare`, with `message` (the text the CLI
/// prints): the config field and path its variant names.
pub(crate) fn rootfs(error: &crate::isolation::rootfs::RootfsError, message: String) -> ChildError {
    use crate::isolation::rootfs::RootfsError as R;
    let mut child = ChildError::new(ChildStep::Rootfs, message).with_errno_of(error);
    let (field, path) = match error {
        R::Cgroup(late) => {
            child.step = late_cgroup_step(late);
            return child;
        }
        R::Propagation { .. } | R::PropagationWithoutNamespace(_) | R::UnknownPropagation(_) => {
            ("linux.rootfsPropagation", None)
        }
        R::BindRootfs { path, .. } | R::Pivot { path, .. } => ("root.path", Some(path)),
        R::Mount { destination, .. }
        | R::CopyUpNotTmpfs { destination, .. }
        | R::CopyUp { destination, .. } => ("mounts", Some(destination)),
        R::BindSource { source_path, .. } => ("mounts", Some(source_path)),
        R::MissingSource(path) | R::TargetNotDirectory(path) => ("mounts", Some(path)),
        R::Device { path, .. } | R::DeviceInTheWay { path, .. } => ("linux.devices", Some(path)),
        R::Cwd { path, .. } => ("process.cwd", Some(path)),
        R::Mask { path, .. } => ("linux.maskedPaths", Some(path)),
        R::ReadOnly { path, .. } => ("linux.readonlyPaths", Some(path)),
        _ => return child,
    };
    child.field = Some(field.into());
    child.path = path.cloned();
    child
}

/// The step a failure to enter the cgroup made late is reported at: the
/// cgroup's, or talking to the runtime.
fn late_cgroup_step(e: &crate::cgroups::LateEntryError) -> ChildStep {
    match e {
        crate::cgroups::LateEntryError::Join(_) => ChildStep::Cgroup,
        _ => ChildStep::Sync,
    }
}

impl From<crate::cgroups::LateEntryError> for ChildError {
    fn from(e: crate::cgroups::LateEntryError) -> ChildError {
        ChildError::new(late_cgroup_step(&e), e.to_string()).with_errno_of(&e)
    }
}

/// The errno of the first `io::Error` or `nix` errno in `error`'s chain.
pub(crate) fn errno_of(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        if let Some(errno) = e.downcast_ref::<nix::errno::Errno>() {
            return Some(*errno as i32);
        }
        next = e.source();
    }
    None
}

/// `.at(step)`: an error of a typed kind as a [`ChildError`] at `step`.
pub(crate) trait AtStep<T> {
    fn at(self, step: ChildStep) -> Result<T, ChildError>;
}

impl<T, E: std::error::Error + 'static> AtStep<T> for Result<T, E> {
    fn at(self, step: ChildStep) -> Result<T, ChildError> {
        self.map_err(|e| ChildError::new(step, e.to_string()).with_errno_of(&e))
    }
}

/// `.at_text(step)`: a reason given as text, at `step`.
pub(crate) trait AtStepText<T> {
    fn at_text(self, step: ChildStep) -> Result<T, ChildError>;
}

impl<T> AtStepText<T> for Result<T, String> {
    fn at_text(self, step: ChildStep) -> Result<T, ChildError> {
        self.map_err(|e| ChildError::new(step, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_made_late_fails_at_its_step_through_the_rootfs() {
        use crate::cgroups::LateEntryError;
        let join = LateEntryError::Join("join cgroup /x: Permission denied".into());
        let in_rootfs = crate::isolation::rootfs::RootfsError::from(join);
        let reported = rootfs(&in_rootfs, in_rootfs.to_string());
        assert_eq!(reported.step, ChildStep::Cgroup);
        assert_eq!(reported.message, "join cgroup /x: Permission denied");
        let recv = LateEntryError::Recv(std::io::Error::from_raw_os_error(libc::ECONNRESET));
        let in_rootfs = crate::isolation::rootfs::RootfsError::from(recv);
        let reported = rootfs(&in_rootfs, in_rootfs.to_string());
        assert_eq!(reported.step, ChildStep::Sync);
        assert_eq!(reported.errno, Some(libc::ECONNRESET));
        let gone = ChildError::from(LateEntryError::RuntimeGone);
        assert_eq!(gone.step, ChildStep::Sync);
    }

    #[test]
    fn a_child_error_crosses_the_channel_whole_and_text_stays_text() {
        let sent = ChildError {
            path: Some("/work".into()),
            ..ChildError::new(ChildStep::Process, "chdir to cwd")
        };
        assert_eq!(ChildError::decode(&sent.encode(8192)), sent);
        let long = ChildError::new(ChildStep::Hooks, "é\"".repeat(5000));
        let bytes = long.encode(8191);
        assert!(bytes.len() <= 8191, "{}", bytes.len());
        let cut = ChildError::decode(&bytes);
        assert_eq!(cut.step, ChildStep::Hooks);
        assert!(cut.message.ends_with("...") && cut.message.len() < long.message.len());
        let old = ChildError::decode(b"mount /proc: EPERM");
        assert_eq!(old.step, ChildStep::Other);
        assert_eq!(old.to_string(), "mount /proc: EPERM");
    }

    #[test]
    fn the_errno_is_found_in_the_chain_and_fields_follow_the_step() {
        let cwd = crate::process::ProcessError::Cwd {
            path: "/nope".into(),
            source: nix::errno::Errno::ENOENT,
        };
        let child = ChildError::from(cwd);
        assert_eq!(child.step, ChildStep::Process);
        assert_eq!(child.errno, Some(libc::ENOENT));
        assert_eq!(child.field.as_deref(), Some("process.cwd"));
        assert_eq!(child.path.as_deref(), Some(std::path::Path::new("/nope")));
        let io: Result<(), _> = Err(std::io::Error::from_raw_os_error(libc::EPERM));
        let at = io.at(ChildStep::Hostname).unwrap_err();
        assert_eq!(
            (at.errno, at.field.as_deref()),
            (Some(libc::EPERM), Some("hostname"))
        );
        let text: Result<(), String> = Err("no".into());
        assert_eq!(text.at_text(ChildStep::Cgroup).unwrap_err().errno, None);
    }
}
