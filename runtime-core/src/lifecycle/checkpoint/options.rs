//! What `checkpoint` and `restore` are asked to do: runc's flags, typed.

use std::path::PathBuf;

/// `--manage-cgroups-mode`: how CRIU treats the container's cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Dump the cgroup; on restore, set its properties only in cgroups CRIU makes (runc's default).
    Soft,
    /// Restore every property, making what is missing.
    Full,
    /// Like full, but fail if anything is missing or differs.
    Strict,
    /// Leave cgroups alone: the restored tree inherits the cgroup CRIU runs in.
    Ignore,
}

impl CgroupMode {
    /// runc's names: soft, full, strict, ignore.
    pub fn parse(name: &str) -> Option<CgroupMode> {
        Some(match name {
            "soft" => CgroupMode::Soft,
            "full" => CgroupMode::Full,
            "strict" => CgroupMode::Strict,
            "ignore" => CgroupMode::Ignore,
            _ => return None,
        })
    }

    /// criu_cg_mode in images/rpc.proto.
    pub(crate) fn rpc_value(self) -> i64 {
        match self {
            CgroupMode::Ignore => 0,
            CgroupMode::Soft => 3,
            CgroupMode::Full => 4,
            CgroupMode::Strict => 5,
        }
    }
}

/// The options CRIU shares between dump and restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriuOptions {
    /// The criu binary (runc's `--criu`); "criu" is looked up on PATH.
    pub criu: PathBuf,
    /// Where the image files go (dump) or come from (restore).
    pub image_path: PathBuf,
    /// Where CRIU writes its log; the image directory when None.
    pub work_path: Option<PathBuf>,
    /// Dump and restore established TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Allow external unix sockets (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// The container's process is a shell job, its session and terminal
    /// outside it (`--shell-job`).
    pub shell_job: bool,
    /// Dump and restore file locks (`--file-locks`).
    pub file_locks: bool,
    /// Leave memory pages to be served later (`--lazy-pages`).
    pub lazy_pages: bool,
    /// Deduplicate memory against the parent image as it is written (`--auto-dedup`).
    pub auto_dedup: bool,
    /// None: CRIU's default, soft.
    pub manage_cgroups_mode: Option<CgroupMode>,
    /// Namespaces to create empty instead of restoring (runc: "network" only).
    pub empty_ns: Vec<String>,
}

/// `Container::checkpoint`'s options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// What dump and restore share.
    pub criu: CriuOptions,
    /// A previous (pre-)dump's image directory, relative to this one or absolute.
    pub parent_path: Option<PathBuf>,
    /// Keep the container running once dumped.
    pub leave_running: bool,
    /// A dump of memory only, for an iterative migration (needs soft-dirty tracking).
    pub pre_dump: bool,
    /// An fd of the caller's on which CRIU reports the lazy-pages server ready.
    pub status_fd: Option<i32>,
    /// `ADDRESS:PORT` of a CRIU page server to send the memory to.
    pub page_server: Option<String>,
}

/// `restore`'s options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// What dump and restore share.
    pub criu: CriuOptions,
    /// The state root.
    pub root: PathBuf,
    /// The restored container's id (need not be the dumped one's).
    pub id: String,
    /// The bundle whose config.json describes the container.
    pub bundle: PathBuf,
    /// Where the terminal's master goes, for a container with `process.terminal`.
    pub console_socket: Option<PathBuf>,
    /// Where to write the restored init's host pid.
    pub pid_file: Option<PathBuf>,
    /// An AppArmor profile or SELinux label for the restored processes.
    pub lsm_profile: Option<String>,
    /// An SELinux context for the restored mounts.
    pub lsm_mount_context: Option<String>,
    /// Use the systemd cgroup driver (`--systemd-cgroup`): not supported for restore.
    pub systemd_cgroup: bool,
}
