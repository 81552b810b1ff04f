//! Which processes are the container's, for `kill --all`, `delete` and the
//! end of a foreground `run`, which signal "every process of the container".
//!
//! In a cgroup the container made, every process is the container's (or was
//! put there by someone who meant it to be), and all of them are signalled,
//! as runc does. A `cgroupsPath` may also name a cgroup that existed before
//! (`/system.slice`, a pod's, another container's): its other processes are
//! someone else's, and runc 1.1 SIGKILLs them too when the container has no
//! pid namespace of its own, and on every `kill --all`. Berth signals only
//! those it can tell are the container's, among the processes of its cgroup:
//!
//! - with a pid namespace of its own (the init is pid 1 there): the
//!   processes in that namespace or in one nested inside it. Once the init
//!   is gone there are none: the kernel kills them all when it dies;
//! - otherwise (the host's pid namespace, or one joined by path): the init
//!   and its descendants. Once the init is gone, its orphans cannot be told
//!   from the cgroup's other processes, and are left alone.
//!
//! Every process is held by a pidfd from before anything about it is read
//! from `/proc/<pid>` until it is signalled; `holds_pid` afterwards proves
//! that what was read was that process's and not a recycled pid's.

use crate::cgroups::CgroupError;
use crate::state::{self, Record};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// `NS_GET_PARENT` from linux/nsfs.h: `_IO(0xb7, 0x2)`.
const NS_GET_PARENT: libc::c_ulong = 0xb702;
/// Pid namespaces nest at most 32 deep (MAX_PID_NS_LEVEL).
const MAX_PID_NS_DEPTH: usize = 32;
/// A bound on the walk up the parents: pid_max is at most 4M, and a loop
/// (a parent read after its pid was recycled) must end.
const MAX_ANCESTRY: usize = 4096;

/// A process, held by a pidfd so that a recycled pid is never mistaken for it.
#[derive(Debug)]
pub(crate) struct Process {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl Process {
    /// The process `pid` names now, or `None` if there is none.
    pub fn open(pid: i32) -> Option<Process> {
        let pidfd = crate::sys::pidfd::open(pid).ok()?;
        Some(Process { pid, pidfd })
    }

    /// Whether `pid` still names this process (it may have exited, but it
    /// was not reaped): then whatever was read from `/proc/<pid>` since
    /// `open` was this process's.
    fn holds_pid(&self) -> bool {
        self.send(0).is_ok()
    }

    /// Send `signal`; a process already reaped is no error.
    pub fn signal(&self, signal: i32) -> nix::Result<()> {
        match self.send(signal) {
            Err(nix::Error::ESRCH) => Ok(()),
            other => other,
        }
    }

    fn send(&self, signal: i32) -> nix::Result<()> {
        crate::sys::pidfd::send_signal(self.pidfd.as_fd(), signal)
    }
}

/// A pid namespace, by its nsfs device and inode.
type NamespaceId = (u64, u64);

/// The container's own processes in its cgroup when that cgroup is not the
/// container's alone (see the module's notes), the init first.
pub(crate) fn in_shared_cgroup(record: &Record) -> Result<Vec<Process>, CgroupError> {
    let Some(init) = live_init(record) else {
        return Ok(Vec::new());
    };
    let namespace = own_pid_namespace(&init);
    let mut own = Vec::new();
    for pid in record.cgroup.pids()? {
        if pid == init.pid {
            continue;
        }
        let Some(process) = Process::open(pid) else {
            continue;
        };
        let is_own = match namespace {
            Some(namespace) => in_namespace(&process, namespace),
            None => descends_from(&process, &init),
        };
        if is_own {
            own.push(process);
        }
    }
    own.insert(0, init);
    Ok(own)
}

/// The recorded init, if it still runs (a zombie has nothing left to signal).
fn live_init(record: &Record) -> Option<Process> {
    if record.pid <= 0 {
        return None;
    }
    let init = Process::open(record.pid)?;
    let stat = state::process_stat(record.pid);
    (state::is_live_init(stat, record.pid_start_time) && init.holds_pid()).then_some(init)
}

/// The init's pid namespace, when it is the namespace's pid 1: a namespace
/// of the container's own, which dies with it. `None` for the host's, or
/// one joined by path, whose pid 1 is someone else.
fn own_pid_namespace(init: &Process) -> Option<NamespaceId> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", init.pid)).ok()?;
    // NSpid: the pid in this procfs's namespace, then in each nested one down to the process's own.
    let nspids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .collect();
    if nspids.len() < 2 || nspids.last() != Some(&"1") {
        return None;
    }
    let namespace = File::open(format!("/proc/{}/ns/pid", init.pid)).ok()?;
    let id = namespace_id(&namespace)?;
    init.holds_pid().then_some(id)
}

/// Whether `process` lives in pid namespace `namespace` or one nested inside it.
fn in_namespace(process: &Process, namespace: NamespaceId) -> bool {
    let Ok(mut current) = File::open(format!("/proc/{}/ns/pid", process.pid)) else {
        return false;
    };
    if !process.holds_pid() {
        return false;
    }
    for _ in 0..MAX_PID_NS_DEPTH {
        if namespace_id(&current) == Some(namespace) {
            return true;
        }
        // SAFETY: an ioctl without argument on an nsfs fd we own; it returns a new fd or -1.
        let parent = unsafe { libc::ioctl(current.as_raw_fd(), NS_GET_PARENT as _) };
        if parent < 0 {
            // EPERM: the top of what this process may see, the initial namespace.
            return false;
        }
        // SAFETY: the kernel just returned this fd and nothing else owns it.
        current = File::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(parent) });
    }
    false
}

fn namespace_id(namespace: &File) -> Option<NamespaceId> {
    let meta = namespace.metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether `process` is a descendant of `init`: its parents, read up to the
/// init, then read again from the top down. A parent whose pid is read the
/// second time in the child is the same process as the first time: had it
/// exited in between, the child would have been handed to a reaper, which
/// has another pid. So each read between is that parent's, and the chain is
/// real however processes exit and pids recycle meanwhile.
fn descends_from(process: &Process, init: &Process) -> bool {
    let mut chain = vec![process.pid];
    let mut cursor = process.pid;
    loop {
        if chain.len() > MAX_ANCESTRY {
            return false;
        }
        let Some(parent) = parent_of(cursor) else {
            return false;
        };
        chain.push(parent);
        if parent == init.pid {
            break;
        }
        if parent <= 1 {
            return false;
        }
        cursor = parent;
    }
    let confirmed = chain
        .windows(2)
        .rev()
        .all(|pair| parent_of(pair[0]) == Some(pair[1]));
    confirmed && process.holds_pid() && init.holds_pid()
}

/// The parent's pid, from `/proc/<pid>/stat` (the field after the state).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_descends_from_its_parent_and_not_from_a_sibling() {
        let me = Process::open(std::process::id() as i32).unwrap();
        let parent = Process::open(parent_of(me.pid).unwrap()).unwrap();
        assert!(descends_from(&me, &parent));
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let child_process = Process::open(child.id() as i32).unwrap();
        assert!(descends_from(&child_process, &me));
        assert!(descends_from(&child_process, &parent));
        assert!(!descends_from(&me, &child_process));
        child_process.signal(libc::SIGKILL).unwrap();
        child.wait().unwrap();
        // Reaped: the pidfd no longer holds the pid, and signalling it is no error.
        assert!(!child_process.holds_pid());
        child_process.signal(libc::SIGKILL).unwrap();
    }

    #[test]
    fn a_process_is_in_its_own_pid_namespace() {
        let me = Process::open(std::process::id() as i32).unwrap();
        let ns = File::open("/proc/self/ns/pid").unwrap();
        assert!(in_namespace(&me, namespace_id(&ns).unwrap()));
        assert!(!in_namespace(&me, (0, 0)));
        // Not pid 1 of a namespace of its own (a test runs in the host's, or in a container's as another pid).
        assert_eq!(own_pid_namespace(&me), None);
    }
}
