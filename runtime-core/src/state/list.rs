//! `list`: the state of every container in a root, at a cost per container
//! of a few system calls.
//!
//! `list` is what an engine polls, and a root can hold thousands of
//! containers, so this path reads less than `state` does:
//! - every path is opened relative to one descriptor of the root, and small
//!   files are read into one reused buffer (no `stat` for a size hint);
//! - only the fields `list` prints are parsed out of `state.json`;
//! - the owner's name comes from the uid in the record, and /etc/passwd is
//!   read once, not once per container;
//! - the freezer is read only for a container whose record says `pause` froze
//!   it (see `Record::paused`), and then the freezer has the last word. A
//!   cgroup frozen behind Berth's back shows as running here; `state`, which
//!   reads the freezer for every call, shows it paused.
//!
//! The status is derived as `state::derive_status` does: init gone → stopped;
//! paused; barrier up → created; else running. Whether the init is gone is
//! asked of a pidfd where the record has the init's pidfs inode (Linux 6.9
//! and later): `pidfd_open`, `fstat`, a zero-timeout `poll` and `close` cost
//! about half of reading `/proc/<pid>/stat`, which the kernel formats whole.

use crate::state::{self, ContainerState, Record, StateError, Status};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use serde::Deserialize;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// The part of `state.json` that `list` prints; serde skips the rest unparsed.
#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(rename = "ociVersion")]
    oci_version: String,
    pid: i32,
    pid_start_time: u64,
    #[serde(default)]
    pidfs_inode: Option<u64>,
    bundle: PathBuf,
    rootfs: PathBuf,
    created: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    owner_uid: Option<u32>,
}

/// The state of every container under `root`, sorted by id. Directories
/// without a state record (a create in progress, or one killed midway) are
/// not listed.
pub fn list(root: &Path) -> Result<Vec<ContainerState>, StateError> {
    let mut dir = match nix::dir::Dir::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => dir,
        Err(Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => {
            return Err(StateError::Io {
                op: "list",
                path: root.to_path_buf(),
                source: e.into(),
            })
        }
    };
    let mut ids: Vec<String> = dir
        .iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type() == Some(nix::dir::Type::Directory))
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
        .filter(|id| state::validate_id(id).is_ok())
        .collect();
    ids.sort_unstable();

    let root_fd = dir.as_fd();
    let proc = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StateError::Io {
        op: "open",
        path: "/proc".into(),
        source: e.into(),
    })?;
    let mut buf = Vec::with_capacity(8192);
    let mut scratch = Vec::with_capacity(512);
    let mut owners = Owners::default();
    let mut states = Vec::with_capacity(ids.len());
    for id in &ids {
        let Ok(true) = read_small(root_fd, &format!("{id}/{}", state::STATE_FILE), &mut buf) else {
            continue;
        };
        let Ok(listed) = serde_json::from_slice::<Listed>(&buf) else {
            continue;
        };
        let status = status_of(root_fd, proc.as_fd(), id, &listed, &buf, &mut scratch);
        let uid = match listed.owner_uid {
            Some(uid) => uid,
            None => owner_uid_of(root_fd, id),
        };
        let owner = owners.name(uid);
        states.push(ContainerState {
            oci_version: listed.oci_version,
            id: listed.id,
            pid: if status == Status::Stopped {
                0
            } else {
                listed.pid
            },
            status,
            bundle: listed.bundle,
            rootfs: listed.rootfs,
            created: listed.created,
            annotations: listed.annotations,
            owner,
        });
    }
    Ok(states)
}

fn status_of(
    root_fd: BorrowedFd,
    proc: BorrowedFd,
    id: &str,
    listed: &Listed,
    record_bytes: &[u8],
    scratch: &mut Vec<u8>,
) -> Status {
    if !init_alive(proc, listed, scratch) {
        return Status::Stopped;
    }
    if listed.paused {
        // Rare: parse the whole record for its cgroup, and ask the freezer.
        if let Ok(record) = serde_json::from_slice::<Record>(record_bytes) {
            if record.cgroup.is_frozen() {
                return Status::Paused;
            }
        }
    }
    let fifo = format!("{id}/{}", crate::state::barrier::FIFO_NAME);
    if nix::sys::stat::fstatat(root_fd, fifo.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
        return Status::Created;
    }
    Status::Running
}

/// As `state::init_alive`, with the stat file (if it is read) read into `buf`.
fn init_alive(proc: BorrowedFd, listed: &Listed, buf: &mut Vec<u8>) -> bool {
    let pid = listed.pid;
    if pid <= 0 {
        return false;
    }
    let by_inode = listed
        .pidfs_inode
        .and_then(|inode| crate::sys::pidfd::alive_by_inode(pid, inode));
    if let Some(alive) = by_inode {
        return alive;
    }
    if !matches!(read_small(proc, &format!("{pid}/stat"), buf), Ok(true)) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(buf) else {
        return false;
    };
    state::is_live_init(state::parse_stat(text), listed.pid_start_time)
}

/// Read `path` (relative to `dir`, never through a final symlink) into
/// `buf`: Ok(false) when it does not exist.
fn read_small(dir: BorrowedFd, path: &str, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let fd = match nix::fcntl::openat(
        dir,
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) | Err(Errno::ESRCH) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut chunk = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                // A short read of a regular or /proc file is its end: spare the read that returns 0.
                if n < chunk.len() {
                    return Ok(true);
                }
            }
            Err(Errno::EINTR) => continue,
            // A process that exits between open and read.
            Err(Errno::ESRCH) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A record written before `owner_uid` was: the owner of its directory.
fn owner_uid_of(root_fd: BorrowedFd, id: &str) -> u32 {
    nix::sys::stat::fstatat(root_fd, id, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map(|st| st.st_uid)
        .unwrap_or(0)
}

/// User names by uid, from one read of /etc/passwd.
#[derive(Default)]
struct Owners {
    passwd: Option<String>,
    names: HashMap<u32, String>,
}

impl Owners {
    fn name(&mut self, uid: u32) -> String {
        if let Some(name) = self.names.get(&uid) {
            return name.clone();
        }
        let passwd = self
            .passwd
            .get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        let name = state::user_name(passwd, uid);
        self.names.insert(uid, name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateRoot;

    fn record(id: &str, pid: i32, start: u64, owner_uid: Option<u32>) -> Record {
        let text = format!(
            r#"{{"id":"{id}","ociVersion":"1.2.1","pid":{pid},"pid_start_time":{start},"bundle":"/b/{id}","rootfs":"/b/{id}/rootfs","created":"2026-11-22T20:00:27Z","annotations":{{"k":"v"}},"hooks":{{"poststop":[{{"path":"/bin/true"}}]}}}}"#
        );
        let mut record: Record = serde_json::from_str(&text).unwrap();
        record.owner_uid = owner_uid;
        record
    }

    #[test]
    fn lists_records_with_derived_status_and_skips_dirs_without_one() {
        let path = std::env::temp_dir().join(format!("berth-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let root = StateRoot::open(&path).unwrap();
        let me = std::process::id() as i32;
        let (_, my_start) = state::process_stat(me).unwrap();
        // Alive, barrier down: running; alive with the barrier's FIFO: created.
        root.claim("b-running")
            .unwrap()
            .write(&record("b-running", me, my_start, Some(0)))
            .unwrap();
        let created = root.claim("a-created").unwrap();
        created
            .write(&record("a-created", me, my_start, Some(65534)))
            .unwrap();
        nix::unistd::mkfifo(
            &created.path().join(crate::state::barrier::FIFO_NAME),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        // Our pid with another start time is a recycled pid: stopped.
        root.claim("c-recycled")
            .unwrap()
            .write(&record("c-recycled", me, my_start + 1, None))
            .unwrap();
        // A create still in progress has no record yet.
        drop(root.claim("d-creating").unwrap());

        let states = list(&path).unwrap();
        let got: Vec<(&str, Status, i32)> = states
            .iter()
            .map(|s| (s.id.as_str(), s.status, s.pid))
            .collect();
        assert_eq!(
            got,
            [
                ("a-created", Status::Created, me),
                ("b-running", Status::Running, me),
                ("c-recycled", Status::Stopped, 0)
            ]
        );
        assert_eq!(states[0].bundle, PathBuf::from("/b/a-created"));
        assert_eq!(
            states[0].annotations.get("k").map(String::as_str),
            Some("v")
        );
        assert_eq!(states[1].owner, "root");
        // A record without owner_uid: the directory's owner (root, running these tests).
        assert_eq!(states[2].owner, "root");
        std::fs::remove_dir_all(&path).unwrap();
        assert!(
            list(&path).unwrap().is_empty(),
            "a missing root lists nothing"
        );
    }

    #[test]
    fn a_recorded_pidfs_inode_decides_and_a_record_without_one_reads_proc() {
        let me = std::process::id() as i32;
        let own = crate::sys::pidfd::open(me).unwrap();
        let Some(inode) = crate::sys::pidfd::pidfs_inode(own.as_fd()) else {
            eprintln!("no pidfs (Linux before 6.9): nothing to test");
            return;
        };
        let path = std::env::temp_dir().join(format!("berth-list-ino-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let root = StateRoot::open(&path).unwrap();
        let (_, my_start) = state::process_stat(me).unwrap();
        let write = |id: &str, start: u64, inode: Option<u64>| {
            let mut record = record(id, me, start, Some(0));
            record.pidfs_inode = inode;
            root.claim(id).unwrap().write(&record).unwrap();
        };
        // The inode is ours: alive, though the start time is off (it is not read).
        write("a-inode", my_start + 1, Some(inode));
        // Our pid with another process's inode, the start time right: the
        // pid was recycled, and the inode says so.
        write("b-other-inode", my_start, Some(inode + 1));
        // A record from before the field: the start time decides, as it did.
        write("c-old-record", my_start, None);
        write("d-old-recycled", my_start + 1, None);

        let got: Vec<(String, Status)> = list(&path)
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.status))
            .collect();
        let want = [
            ("a-inode", Status::Running),
            ("b-other-inode", Status::Stopped),
            ("c-old-record", Status::Running),
            ("d-old-recycled", Status::Stopped),
        ]
        .map(|(id, status)| (id.to_string(), status));
        assert_eq!(got, want);
        // `state` (state::init_alive) agrees.
        for (id, status) in want {
            let record = root.open_container(&id).unwrap().read().unwrap().unwrap();
            assert_eq!(
                state::init_alive(&record),
                status == Status::Running,
                "{id}"
            );
        }
        std::fs::remove_dir_all(&path).unwrap();
    }
}
