//! The library's error: one variant per module's error, plus the lifecycle's
//! own refusals, worded as runc words them (engines match on some of these).

use crate::barrier::BarrierError;
use crate::cgroups::CgroupError;
use crate::namespaces::NamespaceError;
use crate::spec::SpecError;
use crate::state::{StateError, Status};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Resource(#[from] crate::cgroups::ResourceError),
    #[error(transparent)]
    Stats(#[from] crate::cgroups::StatsError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
    #[error(transparent)]
    Pidfd(#[from] crate::pidfd::PidfdError),
    #[error("bundle {path}: {source}")]
    Bundle { path: PathBuf, source: std::io::Error },
    /// The init reported a failed setup step, or died during setup.
    #[error("unable to start container process: {0}")]
    Init(String),
    #[error("sync with the container init: {0}")]
    Sync(std::io::Error),
    #[error("container not running")]
    NotRunning,
    /// runc's `events` wording for a stopped container.
    #[error("container with id {0} is not running")]
    EventsStopped(String),
    #[error("container not paused")]
    NotPaused,
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecPaused,
    #[error("cannot exec in a container in the {0} state")]
    ExecInState(Status),
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already running container")]
    StartRunning,
    #[error("cannot start a container in the {0} state")]
    StartInState(Status),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    DeleteNotStopped { id: String, status: Status },
    #[error("send signal {signal} to pid {pid}: {source}")]
    Signal { signal: i32, pid: i32, source: nix::Error },
    #[error("write pid file {path}: {source}")]
    PidFile { path: PathBuf, source: std::io::Error },
    #[error("cannot allocate tty if runc will detach without setting console socket")]
    TerminalWithoutSocket,
    #[error("cannot use console socket if runc will not detach or allocate tty")]
    SocketWithoutTerminal,
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    #[error("rootless container: linux.resources asks for limits, and this user cannot make a cgroup for them ({0}); run it with a delegated cgroup, or without limits")]
    RootlessLimits(String),
    #[error("wait for the container process: {0}")]
    Wait(nix::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Go prints errno texts in lower case ("no such file or directory") and without "(os error N)".
pub fn go_errno_text(err: &std::io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    // SAFETY: strerror returns a pointer to a NUL-terminated static or thread-local string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
    let text = text.to_string_lossy();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
