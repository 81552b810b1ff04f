//! Which namespaces a container gets, and how the init enters them.
//!
//! New namespaces are created by the `clone3` that makes the init, so the
//! init is pid 1 of a new pid namespace without a second fork. Namespaces
//! given by `path` are opened by the parent (so the path is resolved in the
//! host's mount namespace) and joined by the init with `setns`; a pid
//! namespace by path is joined by the parent itself just before the clone,
//! because `setns(CLONE_NEWPID)` only affects children.

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("open {kind} namespace {path}: {source}")]
    Open { kind: &'static str, path: PathBuf, source: std::io::Error },
    #[error("join {kind} namespace {path}: {source}")]
    Join { kind: &'static str, path: PathBuf, source: nix::Error },
    #[error("create cgroup namespace: {0}")]
    UnshareCgroup(nix::Error),
    #[error("create the time namespace with its offsets: {0}")]
    Time(std::io::Error),
    #[error("{0} namespaces are not supported yet")]
    Unsupported(&'static str),
    #[error("clone the container init: {0}")]
    Clone(std::io::Error),
}

fn kind_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_truncate(t as libc::c_int)
}

/// A namespace to join, opened before the clone.
#[derive(Debug)]
pub struct JoinTarget {
    kind: LinuxNamespaceType,
    path: PathBuf,
    fd: OwnedFd,
}

/// The namespace plan for one container.
#[derive(Debug)]
pub struct Namespaces {
    /// Created by the clone itself.
    clone_flags: CloneFlags,
    /// Created by the init after the parent moved it into its cgroup, so the
    /// cgroup namespace is rooted at the container's own cgroup.
    new_cgroup_ns: bool,
    /// A new time namespace, made by the parent for its children with these
    /// offsets (clock name, seconds, nanoseconds): offsets can only be set
    /// before any process is inside, so clone3 cannot make it.
    new_time_ns: bool,
    time_offsets: Vec<(String, i64, u32)>,
    /// Joined by the parent before the clone (pid, time).
    parent_joins: Vec<JoinTarget>,
    /// Joined by the init, in this order, before anything else.
    init_joins: Vec<JoinTarget>,
}

impl Namespaces {
    /// Nothing new, nothing to join: the caller's own namespaces.
    fn none() -> Self {
        Namespaces {
            clone_flags: CloneFlags::empty(),
            new_cgroup_ns: false,
            new_time_ns: false,
            time_offsets: Vec::new(),
            parent_joins: Vec::new(),
            init_joins: Vec::new(),
        }
    }

    pub fn from_spec(spec: &Spec) -> Result<Self, NamespaceError> {
        let mut plan = Namespaces::none();
        let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
            return Ok(plan);
        };
        for (clock, offset) in spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref()).into_iter().flatten() {
            plan.time_offsets.push((clock.clone(), offset.secs().unwrap_or(0), offset.nanosecs().unwrap_or(0)));
        }
        plan.time_offsets.sort();
        for ns in list {
            let kind = ns.typ();
            if kind == LinuxNamespaceType::User {
                return Err(NamespaceError::Unsupported(kind_name(kind)));
            }
            match ns.path() {
                None => {
                    if kind == LinuxNamespaceType::Cgroup {
                        plan.new_cgroup_ns = true;
                    } else if kind == LinuxNamespaceType::Time {
                        plan.new_time_ns = true;
                    } else {
                        plan.clone_flags |= clone_flag(kind);
                    }
                }
                Some(path) => {
                    let file = File::open(path).map_err(|source| NamespaceError::Open {
                        kind: kind_name(kind),
                        path: path.clone(),
                        source,
                    })?;
                    let target = JoinTarget { kind, path: path.clone(), fd: file.into() };
                    // Both only affect children: the parent joins them right before the clone.
                    if matches!(kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                        plan.parent_joins.push(target);
                    } else {
                        plan.init_joins.push(target);
                    }
                }
            }
        }
        Ok(plan)
    }

    /// The namespaces of a running process that differ from the caller's, to
    /// join them all (for exec): pid and time by the parent, the rest by the
    /// child, the mount namespace last.
    pub fn of_process(pid: i32) -> Result<Self, NamespaceError> {
        use std::os::unix::fs::MetadataExt;
        let mut plan = Namespaces::none();
        let kinds = [
            ("user", LinuxNamespaceType::User),
            ("pid", LinuxNamespaceType::Pid),
            ("time", LinuxNamespaceType::Time),
            ("ipc", LinuxNamespaceType::Ipc),
            ("uts", LinuxNamespaceType::Uts),
            ("net", LinuxNamespaceType::Network),
            ("cgroup", LinuxNamespaceType::Cgroup),
            ("mnt", LinuxNamespaceType::Mount),
        ];
        for (name, kind) in kinds {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let theirs = match std::fs::metadata(&path) {
                Ok(meta) => meta.ino(),
                // A kernel without this namespace type.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(NamespaceError::Open { kind: kind_name(kind), path, source }),
            };
            let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino()).ok();
            if ours == Some(theirs) {
                continue;
            }
            if kind == LinuxNamespaceType::User {
                return Err(NamespaceError::Unsupported("user"));
            }
            let file = File::open(&path).map_err(|source| NamespaceError::Open { kind: kind_name(kind), path: path.clone(), source })?;
            let target = JoinTarget { kind, path, fd: file.into() };
            if matches!(kind, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
                plan.parent_joins.push(target);
            } else {
                plan.init_joins.push(target);
            }
        }
        Ok(plan)
    }

    pub fn has_new(&self, kind: LinuxNamespaceType) -> bool {
        match kind {
            LinuxNamespaceType::Cgroup => return self.new_cgroup_ns,
            LinuxNamespaceType::Time => return self.new_time_ns,
            _ => {}
        }
        self.clone_flags.contains(clone_flag(kind))
    }

    /// Parent side: join what must be joined before the clone.
    pub fn enter_before_clone(&self) -> Result<(), NamespaceError> {
        for target in &self.parent_joins {
            join(target)?;
        }
        if self.new_time_ns {
            // SAFETY: unshare with a namespace flag; it only changes the namespace of future children.
            if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
                return Err(NamespaceError::Time(std::io::Error::last_os_error()));
            }
            let lines: String = self.time_offsets.iter().map(|(clock, secs, nanos)| format!("{clock} {secs} {nanos}\n")).collect();
            if !lines.is_empty() {
                std::fs::write("/proc/self/timens_offsets", lines).map_err(NamespaceError::Time)?;
            }
        }
        Ok(())
    }

    /// Fork the init into its new namespaces. Returns 0 in the child, the
    /// child's host pid in the parent, like fork.
    ///
    /// The caller must be single-threaded: the child runs Rust code (and
    /// allocates) before it execs, which is only sound after a fork of a
    /// process with one thread.
    pub fn clone_init(&self) -> Result<libc::pid_t, NamespaceError> {
        let mut args: libc::clone_args = zeroed_clone_args();
        args.flags = self.clone_flags.bits() as u64;
        args.exit_signal = libc::SIGCHLD as u64;
        // SAFETY: clone3 with no stack behaves like fork: the child gets a copy
        // of the address space and returns 0 here; the struct outlives the call.
        let ret = unsafe {
            libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>())
        };
        if ret < 0 {
            return Err(NamespaceError::Clone(std::io::Error::last_os_error()));
        }
        Ok(ret as libc::pid_t)
    }

    /// Init side: join namespaces by path, then create the late ones.
    pub fn enter_in_init(&self) -> Result<(), NamespaceError> {
        for target in &self.init_joins {
            join(target)?;
        }
        if self.new_cgroup_ns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::UnshareCgroup)?;
        }
        Ok(())
    }
}

fn zeroed_clone_args() -> libc::clone_args {
    // SAFETY: clone_args is a plain C struct of integers; all-zero is its documented default.
    unsafe { std::mem::zeroed() }
}

fn join(target: &JoinTarget) -> Result<(), NamespaceError> {
    nix::sched::setns(&target.fd, clone_flag(target.kind)).map_err(|source| NamespaceError::Join {
        kind: kind_name(target.kind),
        path: target.path.clone(),
        source,
    })
}
