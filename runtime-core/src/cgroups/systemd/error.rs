//! What can go wrong with the systemd cgroup driver, in runc's words where
//! runc has some.

use std::io;
use std::path::PathBuf;

/// Exists when systemd is the host's init (sd_booted(3)).
pub(super) const BOOTED_MARKER: &str = "/run/systemd/system";
/// A user's own systemd's (`systemd --user`) private socket, under $XDG_RUNTIME_DIR.
pub(super) const USER_SOCKET: &str = "systemd/private";

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {0:?} instead")]
    PathFormat(String),
    #[error("invalid slice name: {0}")]
    InvalidSlice(String),
    #[error("invalid systemd unit name {0:?} from cgroupsPath: only ASCII letters, digits and \":-_.\\\" are allowed")]
    InvalidUnit(String),
    #[error("cgroupsPath name {name:?} is a slice outside {parent:?}: systemd places a slice by its name, so {name} would not be below {parent}")]
    SliceOutsideParent { name: String, parent: String },
    #[error("the systemd cgroup driver needs systemd as the host's init, and systemd is not running here (no {BOOTED_MARKER})")]
    NotRunning,
    #[error("cannot use rootless systemd cgroups manager on cgroup v1")]
    RootlessOnV1,
    #[error("the systemd cgroup driver without root talks to the user's own systemd at $XDG_RUNTIME_DIR/{USER_SOCKET}, and XDG_RUNTIME_DIR is not set")]
    NoRuntimeDir,
    #[error("talk to systemd over {socket}: {source}", socket = .socket.display())]
    Bus { socket: PathBuf, source: io::Error },
    #[error("systemd refused to {action} unit {unit}: {name}: {message}")]
    Refused {
        action: &'static str,
        unit: String,
        name: String,
        message: String,
    },
    #[error("systemd's job to {action} unit {unit} ended with {result:?}")]
    Job {
        action: &'static str,
        unit: String,
        result: String,
    },
    #[error("resources.CPU.{field}={value:?} conversion error: {why}")]
    Cpuset {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("unified resource {key:?}={value:?} conversion error: {why}")]
    Unified {
        key: String,
        value: String,
        why: &'static str,
    },
    #[error("annotation {key} name incorrect: {why}")]
    AnnotationName { key: String, why: &'static str },
    #[error("annotation {key}={value} value parse error: {why}")]
    AnnotationValue {
        key: String,
        value: String,
        why: String,
    },
    #[error("systemd's manager has no {0} to read")]
    NoManagerProperty(&'static str),
}
