//! The container's cgroup: its directory in every hierarchy the host has
//! mounted (v1 controllers, the hybrid cgroup2 mount, or a unified v2 tree),
//! created on `create`, joined by the init, emptied and removed on `delete`.
//! Resource limits build on this.

mod dbus;
mod device_filter;
mod devices;
mod driver;
mod entry;
mod freezer;
mod hierarchy;
mod late_entry;
mod oom_notifier;
mod resources;
pub(crate) mod stats;
pub mod systemd;

pub use devices::{rules_for as device_rules, DeviceRule};
pub use driver::{CreateHost, Driver};
pub use entry::Entry;
pub use hierarchy::{hierarchies, Hierarchy, Versions};
pub use late_entry::{CgroupReadySource, LateEntry, LateEntryError};
pub use oom_notifier::{OomNotifier, OomNotifierError};
pub use resources::ResourceError;
pub use stats::{OomCounter, Stats, StatsError};

use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read the host's cgroup mounts: {0}")]
    Mounts(io::Error),
    #[error("no cgroup hierarchy is mounted on this host")]
    NoHierarchy,
    #[error("invalid cgroupsPath {0:?}: it must not contain '..'")]
    InvalidPath(String),
    #[error("create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("add pid {pid} to cgroup {path}: {source}")]
    Join {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("device rules need the v1 devices controller or a cgroup v2 hierarchy, and this host has neither")]
    NoDeviceController,
    #[error("{step} the cgroup v2 device program for {path}: {source}{}", if .log.is_empty() { String::new() } else { format!("\n{}", .log) })]
    DeviceProgram {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
        log: String,
    },
    #[error("apply device cgroup rule {rule:?}: {source}")]
    DeviceRule { rule: String, source: io::Error },
    #[error("the container has no cgroup (a rootless container without a delegated one), and freezing needs one")]
    NoCgroup,
    #[error("this host has no freezer (neither the v1 freezer controller nor cgroup v2's cgroup.freeze)")]
    NoFreezer,
    #[error("freeze or thaw through {path}: {source}")]
    Freeze { path: PathBuf, source: io::Error },
    #[error("the container's cgroup {0} existed before it (its cgroupsPath names a cgroup it did not create): freezing or thawing it would stop or start processes that are not the container's")]
    NotOwnFreezer(PathBuf),
    #[error("read the processes of cgroup {path}: {source}")]
    Procs { path: PathBuf, source: io::Error },
    #[error("{0} is not a sub cgroup path: it must not contain '..'")]
    NotSubPath(String),
    #[error("unknown controller {0:?} in the sub-cgroup paths: the container's cgroup has no hierarchy with it")]
    UnknownController(String),
    #[error("sub-cgroup {0} does not exist: exec --cgroup joins an existing cgroup, it does not make one")]
    NoSubCgroup(PathBuf),
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
}

impl CgroupError {
    /// Whether the caller may not make cgroups here (a user without a delegated cgroup).
    pub fn is_permission(&self) -> bool {
        matches!(self, CgroupError::Create { source, .. } if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS)))
    }
}

/// The container's cgroup, as stored in its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// (hierarchy name, the container's directory in it).
    pub dirs: Vec<(String, PathBuf)>,
    /// Directories this runtime created, deepest last, so delete removes exactly those.
    pub created: Vec<PathBuf>,
    /// The systemd scope holding the container (`--systemd-cgroup`), stopped on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

impl Cgroup {
    /// Create the directories for `cgroups_path` (or `<id>` when absent). A
    /// relative path hangs off this process's own cgroup, as in runc.
    // Tests only: `create()` plans with `plan_in` and makes the directories
    // with `make_and_join`.
    #[cfg(test)]
    pub fn create(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        let mut cgroup = Cgroup::plan(cgroups_path, id)?;
        cgroup.make()?;
        Ok(cgroup)
    }

    /// The directories `create` would make, without making them.
    #[cfg(test)]
    pub fn plan(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        Cgroup::plan_in(&hierarchies()?, cgroups_path, id)
    }

    /// [`Cgroup::plan`] over hierarchies already read.
    pub fn plan_in(
        hierarchies: &[Hierarchy],
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Cgroup, CgroupError> {
        let wanted = cgroups_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(id));
        if wanted
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(CgroupError::InvalidPath(wanted.display().to_string()));
        }
        let mut cgroup = Cgroup::default();
        for h in hierarchies {
            let inner = if wanted.is_absolute() {
                wanted.clone()
            } else {
                h.own_path.join(&wanted)
            };
            let dir = h.mountpoint.join(inner.strip_prefix("/").unwrap_or(&inner));
            cgroup.dirs.push((h.name.clone(), dir));
        }
        Ok(cgroup)
    }

    /// Make the planned directories that do not exist yet (systemd may have
    /// made some), removing them again if one fails.
    #[cfg(test)]
    pub fn make(&mut self) -> Result<(), CgroupError> {
        self.make_in(&hierarchies()?, Versions::All)
    }

    /// [`Cgroup::make`] over the hierarchies it was planned in, those of `versions` only.
    pub fn make_in(
        &mut self,
        hierarchies: &[Hierarchy],
        versions: Versions,
    ) -> Result<(), CgroupError> {
        for (name, dir) in self.dirs.clone() {
            let Some(h) = hierarchies
                .iter()
                .find(|h| h.name == name && versions.covers(h))
            else {
                continue;
            };
            if let Err(e) = self.make_dirs(h, &dir) {
                // What cannot go yet (a directory a cloned init is in) is
                // left listed, for the caller's cleanup once the init is gone.
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    fn make_dirs(&mut self, hierarchy: &Hierarchy, dir: &Path) -> Result<(), CgroupError> {
        let mountpoint = hierarchy.mountpoint.as_path();
        // Only a pure v2 host hands controllers down: a hybrid host's cgroup2
        // mount has none that its v1 hierarchies do not already hold.
        let unified_only = hierarchy.name.is_empty();
        if unified_only {
            for ancestor in dir
                .ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(mountpoint))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                // Before its child exists: a cgroup with children cannot gain
                // some controllers (threaded ones) any more.
                if ancestor.exists() {
                    enable_controllers(ancestor);
                }
            }
        }
        // Found by trying, deepest first: usually only the container's own
        // directory is missing, and one mkdir is all it takes.
        let mut missing = Vec::new();
        let mut cursor = dir.to_path_buf();
        loop {
            match fs::create_dir(&cursor) {
                Ok(()) => {
                    missing.push((cursor, true));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && cursor
                            .parent()
                            .is_some_and(|p| p.starts_with(mountpoint) && p != mountpoint) =>
                {
                    missing.push((cursor.clone(), false));
                    cursor.pop();
                }
                Err(source) => {
                    return Err(CgroupError::Create {
                        path: cursor,
                        source,
                    })
                }
            }
        }
        for (path, made) in missing.into_iter().rev() {
            if !made {
                match fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(source) => return Err(CgroupError::Create { path, source }),
                }
            }
            self.created.push(path.clone());
            // A new v1 cpuset starts empty and refuses tasks until it has cpus and mems.
            if hierarchy.v1_cpuset {
                inherit_cpuset(&path).map_err(|source| CgroupError::Create {
                    path: path.clone(),
                    source,
                })?;
            }
            if unified_only && path != dir {
                enable_controllers(&path);
            }
        }
        Ok(())
    }

    /// Make the planned directories and move `pid` into each, one hierarchy
    /// at a time. For a systemd scope: until a process is in it, systemd may
    /// remove an empty directory it does not manage (its realize step trims
    /// the hierarchies of controllers the unit does not use), so a directory
    /// (or a parent) gone before the join is made again.
    pub fn make_and_join(&mut self, pid: i32) -> Result<(), CgroupError> {
        let hierarchies = hierarchies()?;
        for (name, dir) in self.dirs.clone() {
            let Some(h) = hierarchies.iter().find(|h| h.name == name) else {
                continue;
            };
            let mut attempts = 0;
            loop {
                let made = self.make_dirs(h, &dir).and_then(|()| {
                    fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|source| {
                        CgroupError::Join {
                            pid,
                            path: dir.clone(),
                            source,
                        }
                    })
                });
                match made {
                    Ok(()) => break,
                    // Gone (ENOENT), or removed between our mkdir and the write (ENODEV: a dying cgroup).
                    Err(CgroupError::Create { source, .. } | CgroupError::Join { source, .. })
                        if (source.kind() == io::ErrorKind::NotFound
                            || source.raw_os_error() == Some(libc::ENODEV))
                            && attempts < 10 =>
                    {
                        attempts += 1
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A pure cgroup v2 host's one directory for the container (`None` on v1 and hybrid hosts).
    pub(crate) fn unified_only_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(name, _)| name.is_empty())
            .map(|(_, dir)| dir.as_path())
    }

    /// The same cgroup with some hierarchies' directories moved down to an
    /// existing sub-cgroup (runc's `exec --cgroup`). Each entry is
    /// (controller, path relative to the container's directory); the
    /// controller "" stands for every hierarchy. A leading '/' still means
    /// "below the container's directory", as in runc.
    pub fn sub_cgroup(&self, paths: &[(String, PathBuf)]) -> Result<Cgroup, CgroupError> {
        let mut sub = Cgroup {
            dirs: self.dirs.clone(),
            created: Vec::new(),
            systemd_unit: None,
        };
        if paths.is_empty() {
            return Ok(sub);
        }
        for (controller, path) in paths {
            if path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(CgroupError::NotSubPath(path.display().to_string()));
            }
            let relative = path.strip_prefix("/").unwrap_or(path);
            let mut matched = false;
            for ((name, dir), (_, own)) in sub.dirs.iter_mut().zip(&self.dirs) {
                if controller.is_empty() || has_controller(name, controller) {
                    *dir = own.join(relative);
                    matched = true;
                }
            }
            if !matched {
                return Err(CgroupError::UnknownController(controller.clone()));
            }
        }
        // Checked here rather than met at the join, so a missing one fails before any process exists.
        if let Some((_, missing)) = sub
            .dirs
            .iter()
            .find(|(_, dir)| !dir.join("cgroup.procs").exists())
        {
            return Err(CgroupError::NoSubCgroup(missing.clone()));
        }
        Ok(sub)
    }

    /// Whether the container made its cgroup itself: its directory in every
    /// hierarchy, or the systemd scope (which `create` refuses to share:
    /// systemd will not start a unit that exists). Only then is every process
    /// in it the container's: a cgroupsPath may name a cgroup that existed
    /// before (`/system.slice`, a pod's), whose other processes are someone
    /// else's, and a directory made in some hierarchies but found in others
    /// is such a cgroup too.
    pub fn is_own(&self) -> bool {
        self.systemd_unit.is_some() || self.dirs.iter().all(|(_, dir)| self.created.contains(dir))
    }

    /// Every pid in the cgroup, sub-cgroups (exec --cgroup's) included, as runc's
    /// `ps` and `kill --all` see them.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some((_, dir)) = self
            .dirs
            .iter()
            .find(|(name, _)| name == "pids" || name.is_empty())
            .or(self.dirs.first())
        else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        collect_pids(dir, &mut pids)?;
        Ok(pids)
    }

    /// Remove the directories this runtime created, deepest first. Safe to repeat.
    ///
    /// A parent directory made along the way may since hold another
    /// container's cgroup as well: it stays (busy or not empty is no error
    /// there), and every hierarchy's own directory is still tried.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        if let Driver::Systemd { unit } = self.driver() {
            if let Err(e) = systemd::stop(&unit) {
                first_error = Some(CgroupError::Systemd(e));
            }
        }
        for path in self.created.iter().rev() {
            let own = self.dirs.iter().any(|(_, dir)| dir == path);
            let mut removed = fs::remove_dir(path);
            // Sub-cgroups made inside the container's own (for exec --cgroup, or by
            // the container itself) go with it, as runc's removal does.
            if own
                && removed
                    .as_ref()
                    .is_err_and(|e| matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)))
            {
                remove_sub_cgroups(path);
                removed = fs::remove_dir(path);
            }
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e)
                    if !own && matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {}
                Err(source) => {
                    first_error.get_or_insert(CgroupError::Remove {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Hand every controller `dir` has down to its children (cgroup v2 gives a
/// child only what its parent lists in `cgroup.subtree_control`), as runc
/// does on v2 hosts. One that cannot be enabled (a cgroup with processes of
/// its own refuses some) is left out: a limit that needs it then fails,
/// naming the controller.
fn enable_controllers(dir: &Path) {
    let Ok(available) = fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let all = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if fs::write(dir.join("cgroup.subtree_control"), all).is_err() {
        for controller in missing {
            let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{controller}"));
        }
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Procs {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

/// Remove every cgroup below `dir`, deepest first. Failures are left to the
/// removal of `dir` itself, which then reports that it is busy.
fn remove_sub_cgroups(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_sub_cgroups(&entry.path());
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Whether hierarchy `name` (a mountpoint's last component: `memory`,
/// `cpu,cpuacct`, `systemd`, `unified`) holds `controller` as runc names
/// them (`name=systemd` for a named hierarchy, `unified` not being one).
fn has_controller(name: &str, controller: &str) -> bool {
    let controller = controller.strip_prefix("name=").unwrap_or(controller);
    name.split(',').any(|c| c == controller)
}

fn inherit_cpuset(dir: &Path) -> io::Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = fs::read_to_string(dir.join(file))?;
        if current.trim().is_empty() {
            fs::write(
                dir.join(file),
                fs::read_to_string(parent.join(file))?.trim(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_cgroup(base: &Path) -> Cgroup {
        let dirs = ["cpu,cpuacct", "memory", "systemd", "unified"]
            .iter()
            .map(|n| (n.to_string(), base.join(n).join("c1")))
            .collect();
        Cgroup {
            dirs,
            created: Vec::new(),
            systemd_unit: None,
        }
    }

    fn make_sub(base: &Path, hierarchy: &str, sub: &str) {
        let dir = base.join(hierarchy).join("c1").join(sub);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.procs"), "").unwrap();
    }

    #[test]
    fn a_sub_cgroup_without_controller_moves_every_hierarchy() {
        let base = std::env::temp_dir().join(format!("berth-subcg-{}-all", std::process::id()));
        for h in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            make_sub(&base, h, "a/b");
        }
        let sub = container_cgroup(&base)
            .sub_cgroup(&[(String::new(), "/a/b".into())])
            .unwrap();
        assert!(
            sub.dirs
                .iter()
                .all(|(name, dir)| *dir == base.join(name).join("c1/a/b")),
            "{sub:?}"
        );
        assert!(sub.created.is_empty());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn a_sub_cgroup_per_controller_moves_only_those_hierarchies() {
        let base = std::env::temp_dir().join(format!("berth-subcg-{}-ctl", std::process::id()));
        for h in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            make_sub(&base, h, "");
        }
        make_sub(&base, "cpu,cpuacct", "x");
        make_sub(&base, "systemd", "y");
        let cg = container_cgroup(&base);
        let sub = cg
            .sub_cgroup(&[
                ("cpuacct".into(), "x".into()),
                ("name=systemd".into(), "y".into()),
            ])
            .unwrap();
        let dirs: Vec<PathBuf> = sub.dirs.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(
            dirs,
            [
                base.join("cpu,cpuacct/c1/x"),
                base.join("memory/c1"),
                base.join("systemd/c1/y"),
                base.join("unified/c1")
            ]
        );
        assert!(
            matches!(cg.sub_cgroup(&[("memory".into(), "nope".into())]), Err(CgroupError::NoSubCgroup(p)) if p == base.join("memory/c1/nope"))
        );
        assert!(
            matches!(cg.sub_cgroup(&[("whaaat".into(), "/".into())]), Err(CgroupError::UnknownController(c)) if c == "whaaat")
        );
        assert!(matches!(
            cg.sub_cgroup(&[(String::new(), "x/../..".into())]),
            Err(CgroupError::NotSubPath(_))
        ));
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn dotdot_in_cgroups_path_is_refused() {
        assert!(matches!(
            Cgroup::create(Some(Path::new("/a/../../etc")), "x"),
            Err(CgroupError::InvalidPath(_))
        ));
    }
}
