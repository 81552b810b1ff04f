//! How a checkpoint or restore fails.

use crate::state::Status;
use std::path::PathBuf;

/// A checkpoint or restore that failed, with CRIU's own log where there is one.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The criu binary could not be started.
    #[error("cannot run criu {}: {source} (install CRIU or pass --criu PATH)", criu.display())]
    CriuNotRun {
        /// The binary tried.
        criu: PathBuf,
        /// Why it could not be run.
        #[source]
        source: std::io::Error,
    },
    /// Talking to `criu swrk` failed (it died, or answered nonsense).
    #[error("criu swrk: {0}")]
    Swrk(String),
    /// CRIU refused or failed the request; its log says why.
    #[error("criu failed: {what}: {message} (errno {errno}); log file: {}", log.display())]
    Criu {
        /// The request (dump, restore, ...).
        what: &'static str,
        /// CRIU's reason.
        message: String,
        /// CRIU's errno.
        errno: i32,
        /// CRIU's log file.
        log: PathBuf,
    },
    /// The kernel (or this CRIU) lacks what the request needs.
    #[error("{what} is not possible here: {missing}")]
    KernelFeature {
        /// What was asked for.
        what: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// Only a running or paused container can be dumped.
    #[error("cannot checkpoint a container that is {0}: only a running or paused one")]
    NotRunning(Status),
    /// The image directory (or work directory) cannot be made or opened.
    #[error("{what} {}: {source}", path.display())]
    Dir {
        /// Which directory.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it could not be made or opened.
        #[source]
        source: std::io::Error,
    },
    /// A restore's image directory holds no checkpoint.
    #[error("no checkpoint in {}: {reason}", path.display())]
    NoImage {
        /// The image directory.
        path: PathBuf,
        /// What is missing from it.
        reason: String,
    },
    /// A flag value CRIU cannot take.
    #[error("{0}")]
    Invalid(String),
    /// The runtime was asked to stop (SIGTERM, SIGINT, SIGHUP) while CRIU
    /// worked; CRIU was killed and the request undone.
    #[error("{0}; criu was stopped")]
    Stopped(String),
    /// A hook the restore runs failed.
    #[error("restore hook: {0}")]
    Hook(String),
}
