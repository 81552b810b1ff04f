//! Which namespaces a container gets, and how the init enters them.
//!
//! New namespaces are created by the `clone3` that makes the init, so the
//! init is pid 1 of a new pid namespace without a second fork. Namespaces
//! given by `path` are opened by the parent (so the path is resolved in the
//! host's mount namespace) and joined by the init with `setns`; a pid
//! namespace by path is joined by the parent itself just before the clone,
//! because `setns(CLONE_NEWPID)` only affects children, or, where it can
//! be, by the init late, which sets up outside it and forks the
//! container's process into it at the end (docs/security.md).
//!
//! A new user namespace is made by the same `clone3`, so every other new
//! namespace is owned by it; the parent writes its id maps before it lets
//! the init go on. A user namespace joined by path must own the new ones
//! too, so the clone then happens from a short-lived helper that joined it
//! first (`CLONE_PARENT` keeps the init the parent's own child).

mod fork;

pub use fork::{fork_as_sibling, is_own_child};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("open {kind} namespace {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("create cgroup namespace: {0}")]
    UnshareCgroup(nix::Error),
    #[error("create the time namespace with its offsets: {0}")]
    Time(std::io::Error),
    #[error("linux.uidMappings and linux.gidMappings are required for a new user namespace")]
    NoMappings,
    #[error("write {file} of the container init: {source}")]
    IdMap {
        file: &'static str,
        source: std::io::Error,
    },
    #[error("{tool}: {detail} (as a user other than root, mappings beyond your own uid and gid need newuidmap and newgidmap, from the uidmap package, and ranges in /etc/subuid and /etc/subgid)")]
    IdMapHelper { tool: &'static str, detail: String },
    #[error("become root in the user namespace (is container uid and gid 0 mapped?): {0}")]
    BecomeRoot(nix::Error),
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

impl JoinTarget {
    /// The namespace file at `path`, opened now: joining later goes by this
    /// descriptor, whatever the path comes to name.
    fn open(kind: LinuxNamespaceType, path: PathBuf) -> Result<JoinTarget, NamespaceError> {
        let fd = File::open(&path)
            .map_err(|source| NamespaceError::Open {
                kind: kind_name(kind),
                path: path.clone(),
                source,
            })?
            .into();
        Ok(JoinTarget { kind, path, fd })
    }
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
    /// A user namespace joined by path: joined by a helper that then clones the init.
    user_join: Option<JoinTarget>,
    /// uid_map and gid_map contents for a new user namespace.
    id_maps: Option<(String, String)>,
}

/// One `/proc/<pid>/{uid,gid}_map` file's content: one "inside outside count"
/// line per mapping; the kernel takes the whole map in a single write.
pub(crate) fn map_lines(mappings: &[LinuxIdMapping]) -> String {
    mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Whether a map's lines are one mapping of host id `id` alone.
fn maps_only(lines: &str, id: u32) -> bool {
    let fields: Vec<&str> = lines.split_whitespace().collect();
    lines.lines().count() == 1
        && fields.get(1) == Some(&id.to_string().as_str())
        && fields.get(2) == Some(&"1")
}

/// `newuidmap PID inside outside count...` (or newgidmap), which check the
/// caller's ranges in /etc/subuid (or /etc/subgid).
fn map_with_helper(
    tool: &'static str,
    pid: libc::pid_t,
    lines: &str,
) -> Result<(), NamespaceError> {
    let mut command = std::process::Command::new(tool);
    // Not the runtime's blocked or ignored signals: a foreground `run` blocks them all.
    crate::sys::default_signals::with_default_signals(&mut command);
    let output = command
        .arg(pid.to_string())
        .args(lines.split_whitespace())
        .output()
        .map_err(|e| NamespaceError::IdMapHelper {
            tool,
            detail: e.to_string(),
        })?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(NamespaceError::IdMapHelper {
            tool,
            detail: if detail.is_empty() {
                output.status.to_string()
            } else {
                detail
            },
        });
    }
    Ok(())
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
            user_join: None,
            id_maps: None,
        }
    }

    pub fn from_spec(spec: &Spec) -> Result<Self, NamespaceError> {
        let mut plan = Namespaces::none();
        let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
            return Ok(plan);
        };
        for (clock, offset) in spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref())
            .into_iter()
            .flatten()
        {
            plan.time_offsets.push((
                clock.clone(),
                offset.secs().unwrap_or(0),
                offset.nanosecs().unwrap_or(0),
            ));
        }
        plan.time_offsets.sort();
        for ns in list {
            let kind = ns.typ();
            match ns.path() {
                None => {
                    if kind == LinuxNamespaceType::User {
                        let linux = spec.linux().as_ref();
                        let uids = linux
                            .and_then(|l| l.uid_mappings().as_deref())
                            .unwrap_or_default();
                        let gids = linux
                            .and_then(|l| l.gid_mappings().as_deref())
                            .unwrap_or_default();
                        if uids.is_empty() || gids.is_empty() {
                            return Err(NamespaceError::NoMappings);
                        }
                        plan.id_maps = Some((map_lines(uids), map_lines(gids)));
                        plan.clone_flags |= CloneFlags::CLONE_NEWUSER;
                    } else if kind == LinuxNamespaceType::Cgroup {
                        plan.new_cgroup_ns = true;
                    } else if kind == LinuxNamespaceType::Time {
                        plan.new_time_ns = true;
                    } else {
                        plan.clone_flags |= clone_flag(kind);
                    }
                }
                Some(path) => plan.add_join(JoinTarget::open(kind, path.clone())?),
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
                Err(source) => {
                    return Err(NamespaceError::Open {
                        kind: kind_name(kind),
                        path,
                        source,
                    })
                }
            };
            let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
                .map(|m| m.ino())
                .ok();
            if ours == Some(theirs) {
                continue;
            }
            plan.add_join(JoinTarget::open(kind, path)?);
        }
        Ok(plan)
    }

    fn add_join(&mut self, target: JoinTarget) {
        match target.kind {
            // Both only affect children: the parent joins them right before the clone.
            LinuxNamespaceType::Pid | LinuxNamespaceType::Time => self.parent_joins.push(target),
            LinuxNamespaceType::User => self.user_join = Some(target),
            _ => self.init_joins.push(target),
        }
    }

    /// Whether the init runs in a user namespace other than the caller's.
    pub fn in_user_namespace(&self) -> bool {
        self.id_maps.is_some() || self.user_join.is_some()
    }

    /// Parent side, after the clone: write a new user namespace's id maps.
    /// gid_map needs no `setgroups deny` first: the writer is privileged in the parent namespace.
    pub fn write_id_maps(&self, pid: libc::pid_t) -> Result<(), NamespaceError> {
        let Some((uids, gids)) = &self.id_maps else {
            return Ok(());
        };
        let write = |file: &'static str, lines: &str| {
            std::fs::write(format!("/proc/{pid}/{file}"), lines)
                .map_err(|source| NamespaceError::IdMap { file, source })
        };
        if nix::unistd::geteuid().is_root() {
            write("uid_map", uids)?;
            return write("gid_map", gids);
        }
        // Without privilege the kernel takes one line mapping the writer's
        // own id, and a gid map only once setgroups is denied; anything
        // else goes through the setuid helpers.
        if maps_only(uids, nix::unistd::geteuid().as_raw()) {
            write("uid_map", uids)?;
        } else {
            map_with_helper("newuidmap", pid, uids)?;
        }
        if maps_only(gids, nix::unistd::getegid().as_raw()) {
            write("setgroups", "deny")?;
            write("gid_map", gids)
        } else {
            map_with_helper("newgidmap", pid, gids)
        }
    }

    /// Whether the parent writes the id maps as a user without privilege:
    /// it can open the init's map files only while the init is dumpable
    /// (a non-dumpable process's /proc files belong to root).
    pub fn maps_written_unprivileged(&self) -> bool {
        self.id_maps.is_some() && !nix::unistd::geteuid().is_root()
    }

    /// Whether the container has a namespace of `kind` other than the
    /// runtime's: a new one, or one joined by path.
    pub fn has_own(&self, kind: LinuxNamespaceType) -> bool {
        let joined = |targets: &[JoinTarget]| targets.iter().any(|t| t.kind == kind);
        self.has_new(kind)
            || joined(&self.parent_joins)
            || joined(&self.init_joins)
            || self.user_join.as_ref().is_some_and(|t| t.kind == kind)
    }

    /// The container's network namespace, seen from the parent once the
    /// init `pid` is cloned: the one joined by path (the init joins it only
    /// later), or the init's new one.
    pub fn network_of_init(&self, pid: libc::pid_t) -> std::io::Result<Option<OwnedFd>> {
        let joined = self
            .init_joins
            .iter()
            .find(|t| t.kind == LinuxNamespaceType::Network);
        if let Some(target) = joined {
            return target.fd.try_clone().map(Some);
        }
        if !self.has_new(LinuxNamespaceType::Network) {
            return Ok(None);
        }
        File::open(format!("/proc/{pid}/ns/net")).map(|f| Some(f.into()))
    }

    pub fn has_new(&self, kind: LinuxNamespaceType) -> bool {
        match kind {
            LinuxNamespaceType::Cgroup => return self.new_cgroup_ns,
            LinuxNamespaceType::Time => return self.new_time_ns,
            _ => {}
        }
        self.clone_flags.contains(clone_flag(kind))
    }

    /// Join what must be joined before the clone, in the process that clones.
    fn enter_before_clone(&self) -> Result<(), NamespaceError> {
        self.enter_before_clone_but(None)
    }

    /// The same, but for a namespace kind left to the child.
    fn enter_before_clone_but(
        &self,
        left: Option<LinuxNamespaceType>,
    ) -> Result<(), NamespaceError> {
        for target in self.parent_joins.iter().filter(|t| Some(t.kind) != left) {
            join(target)?;
        }
        if self.new_time_ns {
            // SAFETY: unshare with a namespace flag; it only changes the namespace of future children.
            if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
                return Err(NamespaceError::Time(std::io::Error::last_os_error()));
            }
            let lines: String = self
                .time_offsets
                .iter()
                .map(|(clock, secs, nanos)| format!("{clock} {secs} {nanos}\n"))
                .collect();
            if !lines.is_empty() {
                std::fs::write("/proc/self/timens_offsets", lines).map_err(NamespaceError::Time)?;
            }
        }
        Ok(())
    }

    /// Join every namespace of the plan from this process: the pid and time
    /// ones only for its children (it stays outside, invisible to the
    /// container, until it forks), the user namespace in the order its
    /// privileges allow, then the rest, the mount namespace last.
    pub fn enter_from_outside(&self) -> Result<(), NamespaceError> {
        match &self.user_join {
            None => self.enter_before_clone()?,
            // As the user-namespace helper below: root joins the pid
            // namespace with its host capabilities, a user without
            // privilege has capabilities only inside the user namespace.
            Some(user) if nix::unistd::geteuid().is_root() => {
                self.enter_before_clone()?;
                join(user)?;
            }
            Some(user) => {
                join(user)?;
                self.enter_before_clone()?;
            }
        }
        self.enter_in_init()
    }

    /// The pid namespace the container joins by path, when its init can set
    /// up outside it, out of sight of the processes already there, and have
    /// the container's process forked into it at the end (docs/security.md):
    /// when no user namespace is joined or made, whose capabilities the join
    /// would then need.
    pub fn pid_joined_late(&self) -> Option<BorrowedFd<'_>> {
        if self.user_join.is_some() || self.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
            return None;
        }
        self.parent_joins
            .iter()
            .find(|t| t.kind == LinuxNamespaceType::Pid)
            .map(|t| t.fd.as_fd())
    }

    /// In the init that set up outside it: join the pid namespace for the
    /// process it forks next.
    pub fn join_pid_late(&self) -> Result<(), NamespaceError> {
        match self
            .parent_joins
            .iter()
            .find(|t| t.kind == LinuxNamespaceType::Pid)
        {
            Some(target) => join(target),
            None => Ok(()),
        }
    }

    /// Init side: join namespaces by path, then create the late ones.
    pub fn enter_in_init(&self) -> Result<(), NamespaceError> {
        for target in &self.init_joins {
            join(target)?;
        }
        if self.in_user_namespace() {
            // Until then our ids are the host's, unmapped here: files we create would fail with EOVERFLOW.
            nix::unistd::setresgid(0.into(), 0.into(), 0.into())
                .map_err(NamespaceError::BecomeRoot)?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into())
                .map_err(NamespaceError::BecomeRoot)?;
        }
        if self.new_cgroup_ns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                .map_err(NamespaceError::UnshareCgroup)?;
        }
        Ok(())
    }
}

fn join(target: &JoinTarget) -> Result<(), NamespaceError> {
    nix::sched::setns(&target.fd, clone_flag(target.kind)).map_err(|source| NamespaceError::Join {
        kind: kind_name(target.kind),
        path: target.path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::maps_only;

    #[test]
    fn a_map_of_the_writers_own_id_alone_needs_no_helper() {
        assert!(maps_only("0 1000 1\n", 1000));
        assert!(!maps_only("0 1000 1\n", 1001));
        assert!(
            !maps_only("0 1000 2\n", 1000),
            "a range beyond the id itself"
        );
        assert!(
            !maps_only("0 1000 1\n1 100000 65536\n", 1000),
            "a second mapping"
        );
    }
}
