//! The state store: one directory per container under the state root.

#[allow(missing_docs)]
pub(crate) mod barrier;
pub(crate) mod cgroup_intent;
pub(crate) mod list;
pub(crate) mod recorded_config;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// The OCI status of a container, always derived from the init process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is still setting the container up (the create-phase hooks see this).
    Creating,
    /// Set up, its init blocked before the user's program until `start`.
    Created,
    /// The user's program runs.
    Running,
    /// Its cgroup is frozen.
    Paused,
    /// Its init has exited (or its pid now names another process).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state` and `list` report, in runc's field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    /// The runtime-spec version of the bundle's config.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's id, unique in its state root.
    pub id: String,
    /// Host pid of the init; 0 once stopped.
    pub pid: i32,
    /// Derived from the init when the state was taken.
    pub status: Status,
    /// The bundle's absolute path.
    pub bundle: PathBuf,
    /// The root filesystem's path on the host (`root.path`, joined to the bundle).
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, in UTC.
    pub created: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// User name owning the state directory.
    pub owner: String,
}

use crate::cgroups::Cgroup;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The state record's file name in a container's directory.
pub const STATE_FILE: &str = "state.json";
const STAGED_FILE: &str = ".state.json.tmp";
/// The mode of the files in a container's directory, from their creation
/// (runc's too): they name the bundle and hold the annotations and hooks,
/// whose args and env may carry secrets, and a state root made by someone
/// else may let every user through (mode 755).
pub(crate) const PRIVATE_MODE: u32 = 0o600;

/// The state store's errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No container has this id.
    #[error("container does not exist")]
    NotExist,
    /// `create` with an id that is taken.
    #[error("container with given ID already exists")]
    Exists,
    /// The id breaks runc's rule (see [`validate_id`]); says why.
    #[error("invalid container ID format: {0}")]
    InvalidId(String),
    /// The state root cannot be created (read-only, no space, no permission).
    #[error("create state root {path}: {source}")]
    Root {
        /// The state root.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file operation on a container's directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "lock", ...).
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A state record that does not parse.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Container ids become directory names: runc's rule (letters, digits, `_+-.`),
/// and never `.` or `..`.
///
/// ```
/// use berth::state::{validate_id, StateError};
///
/// assert!(validate_id("web-1.v2_blue+green").is_ok());
/// for bad in ["", ".", "..", "../etc", "a/b", "with space", "\u{e9}t\u{e9}"] {
///     assert!(matches!(validate_id(bad), Err(StateError::InvalidId(_))), "{bad:?}");
/// }
/// assert!(validate_id(&"x".repeat(256)).is_err());
/// ```
pub fn validate_id(id: &str) -> Result<(), StateError> {
    if id.is_empty() {
        return Err(StateError::InvalidId("container ID cannot be empty".into()));
    }
    if id == "." || id == ".." {
        return Err(StateError::InvalidId(format!("{id:?} is not a valid ID")));
    }
    if id.len() > 255 {
        // The whole of a 100 KiB id would bury the message; its start names it.
        let start: String = id.chars().take(32).collect();
        return Err(StateError::InvalidId(format!(
            "{start:?}... is {} bytes long, more than 255",
            id.len()
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        return Err(StateError::InvalidId(format!(
            "{id:?} contains {bad:?}; allowed are letters, digits and _+-."
        )));
    }
    Ok(())
}

/// What Berth records about a container. Status is not in it: it is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The container's id.
    pub id: String,
    /// The config's runtime-spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The init's host pid.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`),
    /// so a recycled pid is not taken for the container.
    pub pid_start_time: u64,
    /// The init's pidfs inode (Linux 6.9 and later, see sys/pidfd.rs): when
    /// recorded, `state` and `list` compare it rather than read the start
    /// time, which costs more. Absent on older kernels and in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfs_inode: Option<u64>,
    /// The bundle's absolute path.
    pub bundle: PathBuf,
    /// The root filesystem's path on the host.
    pub rootfs: PathBuf,
    /// When `create` finished, RFC 3339 with nanoseconds, in UTC.
    pub created: String,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup directories (and systemd unit), for later commands.
    #[serde(default)]
    pub cgroup: Cgroup,
    /// For the poststart and poststop hooks, run by later commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// Created with `--no-new-keyring`: exec'd processes keep the caller's keyring too.
    #[serde(default)]
    pub no_new_keyring: bool,
    /// Set by `pause` before it freezes and cleared by `resume` after it
    /// thaws, so `list` reads the freezer only for these (see state/list.rs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Without a mount namespace of its own, the id of the rootfs bind the
    /// init made in the host's (isolation/rootfs/host_mount.rs), for `delete` to detach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rootfs_mount: Option<u64>,
    /// The creator's effective uid, which owns the state directory: `list`'s owner column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    /// The config's `linux.resources.memory.checkBeforeUpdate`: `update`
    /// refuses a memory limit below current use, unless it says otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub memory_check_before_update: bool,
}

impl Record {
    /// The record of a container `create` or `restore` just made from
    /// `spec`: its version, annotations, hooks and memory check, created now
    /// by this user, not paused, with a session keyring of its own.
    pub(crate) fn made_from(
        id: &str,
        spec: &oci_spec::runtime::Spec,
        init: InitId,
        bundle: PathBuf,
        rootfs: PathBuf,
        cgroup: Cgroup,
    ) -> Record {
        Record {
            id: id.to_string(),
            oci_version: spec.version().clone(),
            pid: init.pid,
            pid_start_time: init.start_time,
            pidfs_inode: init.pidfs_inode,
            bundle,
            rootfs,
            created: rfc3339_nanos(SystemTime::now()),
            annotations: spec.annotations().clone().unwrap_or_default(),
            cgroup,
            hooks: spec.hooks().clone(),
            no_new_keyring: false,
            paused: false,
            host_rootfs_mount: None,
            owner_uid: Some(nix::unistd::geteuid().as_raw()),
            memory_check_before_update: spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.check_before_update())
                .unwrap_or(false),
        }
    }
}

/// How a record names its init: the host pid, and what tells a recycled
/// pid from it (see the fields of the same names in [`Record`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitId {
    pub pid: i32,
    pub start_time: u64,
    pub pidfs_inode: Option<u64>,
}

/// The directory that holds every container's state.
#[derive(Debug, Clone)]
pub(crate) struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Open the root, creating it (mode 0700) if needed.
    pub fn open(path: &Path) -> Result<StateRoot, StateError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| StateError::Root {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(StateRoot {
            path: path.to_path_buf(),
        })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Claim `id` for a new container: the directory is created exclusively and locked.
    pub fn claim(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = self.path.join(id);
        use std::os::unix::fs::DirBuilderExt;
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(StateError::Exists),
            Err(source) => {
                return Err(StateError::Io {
                    op: "create state directory",
                    path,
                    source,
                })
            }
        }
        let mut dir = ContainerDir { path, lock: None };
        dir.lock()?;
        Ok(dir)
    }

    /// An existing container's directory, not yet locked.
    pub fn open_container(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let path = self.path.join(id);
        if !path.is_dir() {
            return Err(StateError::NotExist);
        }
        Ok(ContainerDir { path, lock: None })
    }
}

/// One container's state directory.
#[derive(Debug)]
pub(crate) struct ContainerDir {
    path: PathBuf,
    lock: Option<Flock<File>>,
}

impl ContainerDir {
    /// The directory's path, `<root>/<id>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the container's exclusive lock, so two commands on one container
    /// never interleave. Fails with NotExist if the container was deleted
    /// while this command waited.
    pub fn lock(&mut self) -> Result<(), StateError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let file = File::open(&self.path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StateError::NotExist,
            _ => StateError::Io {
                op: "open",
                path: self.path.clone(),
                source: e,
            },
        })?;
        let locked =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| StateError::Io {
                op: "lock",
                path: self.path.clone(),
                source: e.into(),
            })?;
        // A deleted directory keeps its inode alive through our descriptor: check the link count.
        let stat = nix::sys::stat::fstat(&*locked).map_err(|e| StateError::Io {
            op: "stat",
            path: self.path.clone(),
            source: e.into(),
        })?;
        if stat.st_nlink == 0 {
            return Err(StateError::NotExist);
        }
        self.lock = Some(locked);
        Ok(())
    }

    /// Release the lock (dropping the descriptor unlocks it).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// In a forked child: close this copy of the lock's descriptor without
    /// unlocking, so only the parent holds (and releases) the lock.
    pub fn close_lock_in_child(&mut self) {
        if let Some(lock) = self.lock.take() {
            // SAFETY: the descriptor is ours; closing a copy in the child leaves the
            // parent's lock in place, and forgetting skips the unlock on drop.
            unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(&*lock)) };
            std::mem::forget(lock);
        }
    }

    /// The record, or `None` while the container is still being created (or
    /// its create was killed before it wrote one).
    pub fn read(&self) -> Result<Option<Record>, StateError> {
        let path = self.path.join(STATE_FILE);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return if self.path.is_dir() {
                    Ok(None)
                } else {
                    Err(StateError::NotExist)
                };
            }
            Err(source) => {
                return Err(StateError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| StateError::Corrupt { path, source })
    }

    /// Write the record atomically: readers see the old file or the new one, never half of one.
    pub fn write(&self, record: &Record) -> Result<(), StateError> {
        self.stage(record)?;
        self.commit_staged()
    }

    /// Write the record beside its final name, where readers do not look;
    /// `commit_staged` puts it in place.
    pub fn stage(&self, record: &Record) -> Result<(), StateError> {
        let tmp = self.path.join(STAGED_FILE);
        let bytes = serde_json::to_vec(record).map_err(|source| StateError::Corrupt {
            path: tmp.clone(),
            source,
        })?;
        // A staged record a killed command left is replaced, not reused: its mode may be older.
        crate::sys::host_file::write_fresh_file(&tmp, &bytes, PRIVATE_MODE).map_err(|source| {
            StateError::Io {
                op: "write",
                path: tmp,
                source,
            }
        })
    }

    /// Make the staged record the state, atomically.
    pub fn commit_staged(&self) -> Result<(), StateError> {
        let path = self.path.join(STATE_FILE);
        crate::sys::fault::point("state-tmp-written");
        fs::rename(self.path.join(STAGED_FILE), &path).map_err(|source| StateError::Io {
            op: "rename",
            path,
            source,
        })
    }

    /// Remove the directory and everything in it. Safe to repeat.
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                op: "remove",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The user owning the directory, as runc reports it.
    pub fn owner(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let uid = fs::metadata(&self.path).map(|m| m.uid()).unwrap_or(0);
        user_name(&fs::read_to_string("/etc/passwd").unwrap_or_default(), uid)
    }
}

/// The name /etc/passwd (its text in `passwd`) gives `uid`, else the number.
pub(crate) fn user_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let (name, uid_field) = (f.next()?, f.nth(1)?);
            (uid_field.parse() == Ok(uid)).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// The state of a process as `/proc/<pid>/stat` tells it: (state letter, start time).
pub(crate) fn process_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

pub(crate) fn parse_stat(text: &str) -> Option<(char, u64)> {
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// Whether the record's init is still the live process it was at create:
/// by its pidfs inode where the record has one, else by its start time.
pub(crate) fn init_alive(record: &Record) -> bool {
    if record.pid <= 0 {
        return false;
    }
    let by_inode = record
        .pidfs_inode
        .and_then(|inode| crate::sys::pidfd::alive_by_inode(record.pid, inode));
    by_inode.unwrap_or_else(|| is_live_init(process_stat(record.pid), record.pid_start_time))
}

/// Whether a process's (state letter, start time) from its stat file is the
/// init recorded with `start_time`, still alive (not a zombie).
pub(crate) fn is_live_init(stat: Option<(char, u64)>, start_time: u64) -> bool {
    matches!(stat, Some((state, start)) if start == start_time && !matches!(state, 'Z' | 'X' | 'x'))
}

/// Derive the status, as runc does: init gone → stopped; frozen → paused;
/// barrier still up → created; otherwise running.
pub(crate) fn derive_status(record: &Record, dir: &Path) -> Status {
    if !init_alive(record) {
        return Status::Stopped;
    }
    if record.cgroup.is_frozen() {
        return Status::Paused;
    }
    if crate::state::barrier::is_up(dir) {
        return Status::Created;
    }
    Status::Running
}

impl ContainerState {
    /// The OCI state of a recorded container with `status`; the pid reads 0 once stopped, as runc's does.
    pub(crate) fn from_record(record: &Record, status: Status, owner: String) -> ContainerState {
        ContainerState {
            oci_version: record.oci_version.clone(),
            id: record.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                record.pid
            },
            status,
            bundle: record.bundle.clone(),
            rootfs: record.rootfs.clone(),
            created: record.created.clone(),
            annotations: record.annotations.clone(),
            owner,
        }
    }
}

/// `time` as Go's RFC3339Nano prints it in UTC (trailing zeros of the fraction dropped).
pub(crate) fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
