//! `checkpoint` and `restore`: their flags, as runc 1.1 reads them.

use super::goflag::Values;
use std::path::PathBuf;

/// The flags both commands share; empty strings count as absent, as in runc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriuArgs {
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub lazy_pages: bool,
    pub auto_dedup: bool,
    /// Unchecked: an unknown mode fails at run time with runc's wording.
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointArgs {
    pub id: String,
    pub criu: CriuArgs,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// runc's default is -1: none.
    pub status_fd: Option<i32>,
    pub page_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreArgs {
    pub id: String,
    pub criu: CriuArgs,
    pub bundle: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    /// Accepted as runc does; CRIU makes the root itself, so it changes nothing.
    pub no_pivot: bool,
    pub lsm_profile: Option<String>,
    pub lsm_mount_context: Option<String>,
}

fn criu_args(v: &Values) -> CriuArgs {
    CriuArgs {
        image_path: v.string("image-path").map(PathBuf::from),
        work_path: v.string("work-path").map(PathBuf::from),
        tcp_established: v.flag("tcp-established"),
        ext_unix_sk: v.flag("ext-unix-sk"),
        shell_job: v.flag("shell-job"),
        file_locks: v.flag("file-locks"),
        lazy_pages: v.flag("lazy-pages"),
        auto_dedup: v.flag("auto-dedup"),
        manage_cgroups_mode: v.string("manage-cgroups-mode"),
        empty_ns: v.list("empty-ns"),
    }
}

pub(super) fn checkpoint_args(v: &Values, id: String) -> CheckpointArgs {
    CheckpointArgs {
        id,
        criu: criu_args(v),
        parent_path: v.string("parent-path").map(PathBuf::from),
        leave_running: v.flag("leave-running"),
        pre_dump: v.flag("pre-dump"),
        status_fd: v
            .int("status-fd")
            .filter(|fd| *fd >= 0)
            .and_then(|fd| i32::try_from(fd).ok()),
        page_server: v.string("page-server"),
    }
}

pub(super) fn restore_args(v: &Values, id: String) -> RestoreArgs {
    RestoreArgs {
        id,
        criu: criu_args(v),
        bundle: v.string("bundle").map(PathBuf::from),
        console_socket: v.string("console-socket").map(PathBuf::from),
        detach: v.flag("detach"),
        pid_file: v.string("pid-file").map(PathBuf::from),
        no_subreaper: v.flag("no-subreaper"),
        no_pivot: v.flag("no-pivot"),
        lsm_profile: v.string("lsm-profile"),
        lsm_mount_context: v.string("lsm-mount-context"),
    }
}

#[cfg(test)]
#[path = "criu_tests.rs"]
mod tests;
