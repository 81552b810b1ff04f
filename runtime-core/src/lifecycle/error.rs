//! The library's error: one variant per module's error, plus the lifecycle's
//! own refusals, worded as runc words them (engines match on some of these).

use crate::cgroups::CgroupError;
use crate::isolation::namespaces::NamespaceError;
use crate::spec::SpecError;
use crate::state::barrier::BarrierError;
use crate::state::{StateError, Status};
use std::path::PathBuf;

/// Every failure of the library. Variants that wrap a module's error say
/// which concern failed; the others are refusals of the lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json is missing, malformed or invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The state store: an unknown or taken id, a bad id, an unwritable root.
    #[error(transparent)]
    State(#[from] StateError),
    /// Making, joining, freezing or removing the container's cgroup.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A `linux.resources` limit could not be applied.
    #[error(transparent)]
    Resource(#[from] crate::cgroups::ResourceError),
    /// Reading the cgroup's usage counters.
    #[error(transparent)]
    Stats(#[from] crate::cgroups::StatsError),
    /// Making the descriptor that wakes on the memory cgroup's OOM events.
    #[error(transparent)]
    OomNotifier(#[from] crate::cgroups::OomNotifierError),
    /// Making or joining namespaces, or writing user namespace id maps.
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    /// The start barrier (the FIFO the init waits on until `start`).
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// A hook that must succeed failed (prestart, createRuntime, ...).
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The seccomp profile could not be built or handed to its listener.
    #[error(transparent)]
    Seccomp(#[from] crate::process::seccomp::SeccompError),
    /// Preparing the root filesystem: mounts, devices, pivot_root.
    #[error(transparent)]
    Rootfs(#[from] crate::isolation::rootfs::RootfsError),
    /// An AppArmor profile or SELinux label the host cannot apply.
    #[error(transparent)]
    Lsm(#[from] crate::isolation::lsm::LsmError),
    /// A `linux.netDevices` entry that cannot be moved into the container.
    #[error(transparent)]
    NetDevice(#[from] crate::isolation::net_devices::NetDeviceError),
    /// A `linux.memoryPolicy` the host cannot apply.
    #[error(transparent)]
    MemoryPolicy(#[from] crate::process::memory_policy::MemoryPolicyError),
    /// Opening a pidfd, or sending it to `--pidfd-socket`.
    #[error(transparent)]
    Pidfd(#[from] crate::sys::pidfd::PidfdError),
    /// The sd_notify socket (`NOTIFY_SOCKET`).
    #[error(transparent)]
    Notify(#[from] crate::lifecycle::notify::NotifyError),
    /// A checkpoint or restore failed (CRIU's log path is in the message).
    #[error(transparent)]
    Checkpoint(Box<crate::lifecycle::checkpoint::error::CheckpointError>),
    /// The bundle path cannot be made absolute.
    #[error("bundle {path}: {source}")]
    Bundle {
        /// The bundle as given.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The container's process (create's init, exec's) reported a failed
    /// setup step, or died during setup: which step, the errno, the field.
    #[error("unable to start container process: {0}")]
    Init(crate::init::child_error::ChildError),
    /// The runtime was told to stop (SIGTERM, SIGINT or SIGHUP) while it
    /// waited for the container's process to set itself up (`create`'s
    /// init, `exec`'s child): that process is killed and what the
    /// operation had made is undone.
    #[error("stopped by {} to the runtime while {during}", crate::sys::stop_signals::name(*signal))]
    Interrupted {
        /// What the runtime was waiting for.
        during: &'static str,
        /// The signal's number.
        signal: i32,
    },
    /// The channel between the parent and the init broke.
    #[error("sync with the container init: {0}")]
    Sync(std::io::Error),
    /// The container (or the process to signal) is not running.
    #[error("container not running")]
    NotRunning,
    /// runc's `events` wording for a stopped container.
    #[error("container with id {0} is not running")]
    EventsStopped(String),
    /// `resume` of a container that is not paused.
    #[error("container not paused")]
    NotPaused,
    /// `exec` into a stopped container.
    #[error("cannot exec in a stopped container")]
    ExecStopped,
    /// `exec` into a paused container without `ignore_paused`.
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    ExecPaused,
    /// `exec` into a container in another state (e.g. `creating`).
    #[error("cannot exec in a container in the {0} state")]
    ExecInState(Status),
    /// `start` of a container whose init is gone.
    #[error("cannot start a container that has stopped")]
    StartStopped,
    /// `start` of a container that was started already.
    #[error("cannot start an already running container")]
    StartRunning,
    /// `start` of a container in another state (e.g. `paused`).
    #[error("cannot start a container in the {0} state")]
    StartInState(Status),
    /// `delete` without `force` of a container that still runs.
    #[error("cannot delete container {id} that is not stopped: {status}")]
    DeleteNotStopped {
        /// The container's id.
        id: String,
        /// Its status when `delete` looked.
        status: Status,
    },
    /// `kill(2)` failed for a reason other than the process being gone.
    #[error("send signal {} to pid {pid}: {source}", signal.as_raw())]
    Signal {
        /// The signal.
        signal: crate::Signal,
        /// The host pid it was sent to.
        pid: crate::Pid,
        /// Why `kill(2)` failed.
        source: nix::Error,
    },
    /// The pid file could not be written.
    #[error("pid file {path}: {source}")]
    PidFile {
        /// The pid file's path.
        path: PathBuf,
        /// Why it could not be written (the message names the file it is about).
        source: crate::sys::host_file::HostFileError,
    },
    /// `process.terminal` is set, the caller detaches and gave no console socket.
    #[error("cannot allocate tty if runc will detach without setting console socket")]
    TerminalWithoutSocket,
    /// A console socket was given without `process.terminal`, or in the foreground.
    #[error("cannot use console socket if runc will not detach or allocate tty")]
    SocketWithoutTerminal,
    /// A config field this version cannot honour (named), refused rather than ignored.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// A rootless container asks for limits, and this user cannot make a cgroup.
    #[error("rootless container: linux.resources asks for limits, and this user cannot make a cgroup for them ({0}); run it with a delegated cgroup, or without limits")]
    RootlessLimits(String),
    /// Without a mount namespace of its own, the container's rootfs mount
    /// in the host's namespace could not be found or taken down.
    #[error("the container's rootfs mount {path} in the host's mount namespace: {source}")]
    HostMount {
        /// The rootfs on the host.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Waiting for the container's process, or blocking signals for it.
    #[error("wait for the container process: {0}")]
    Wait(nix::Error),
    /// `create`, `exec` or `restore` called from a process with more than
    /// one thread: their child, a fork, could deadlock on a lock another
    /// thread held. Nothing was done.
    #[error("the calling process has {threads} threads: create, exec and restore fork, and must be called from a single-threaded process")]
    Threaded {
        /// How many threads the caller had.
        threads: usize,
    },
    /// The descriptors given for the process's stdin, stdout and stderr
    /// ([`Stdio`](crate::Stdio)) cannot be used. Nothing was done.
    #[error(transparent)]
    Stdio(#[from] crate::init::stdio::StdioError),
    /// A wait for a process's exit status by a process that is not its
    /// parent (only the caller of `create` or `exec` is), or after it was
    /// reaped already. Polling its pidfd still tells when it exits.
    #[error("process {pid} is not a child of this process, or was reaped already: only its parent can wait for its exit status")]
    NotChild {
        /// The host pid waited for.
        pid: crate::Pid,
    },
}

impl From<crate::lifecycle::checkpoint::error::CheckpointError> for Error {
    fn from(e: crate::lifecycle::checkpoint::error::CheckpointError) -> Error {
        Error::Checkpoint(Box::new(e))
    }
}

impl From<crate::sys::stop_signals::Interrupted> for Error {
    fn from(stopped: crate::sys::stop_signals::Interrupted) -> Error {
        Error::Interrupted {
            during: stopped.during,
            signal: stopped.signal,
        }
    }
}

impl From<crate::init::sync::RecvError> for Error {
    fn from(error: crate::init::sync::RecvError) -> Error {
        match error {
            crate::init::sync::RecvError::Stopped(stopped) => stopped.into(),
            crate::init::sync::RecvError::Io(source) => Error::Sync(source),
        }
    }
}

impl Error {
    /// A failure of the container process's setup at `step`, seen by the runtime.
    pub(crate) fn init(
        step: crate::init::child_error::ChildStep,
        message: impl Into<String>,
    ) -> Error {
        Error::Init(crate::init::child_error::ChildError::new(step, message))
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

pub use crate::sys::errno_text::go_errno_text;
