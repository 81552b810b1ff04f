//! The cgroup `create` is about to make, recorded in the state directory
//! (`cgroup.json`) before any of it exists: a `create` killed before it
//! writes state.json leaves this behind, and `delete` finds the cgroup by
//! it, kills what runs in the directories create made and removes them.
//! Recorded rather than derived from the bundle's config at delete: the
//! bundle may have changed or gone, and a relative cgroupsPath hangs off the
//! cgroup of the process that ran create, which delete need not share.
//!
//! The record never claims more than create makes: a directory that exists
//! already (a cgroupsPath naming `/system.slice`, a pod's cgroup) is someone
//! else's, with someone else's processes in it, and so is a systemd scope
//! until systemd has started it for this container.

use crate::cgroups::{Cgroup, Hierarchy, Versions};
use crate::state;
use std::path::{Path, PathBuf};

/// Where `create` records the cgroup it is about to make.
const FILE: &str = "cgroup.json";

/// The plan for `planned`: every directory missing now, parents first, is
/// one create will make.
pub(crate) fn for_cgroupfs(planned: &Cgroup) -> Cgroup {
    Cgroup {
        created: missing_dirs(planned),
        ..planned.clone()
    }
}

/// The plan for a systemd scope at `planned`: the slices above it are
/// systemd's to make and remove, so only the scope's own directories that
/// are missing now are listed, and the unit is left out until systemd has
/// started it (it refuses a unit that exists: that one is someone else's).
/// Killed before then, create's init dies with it and a scope systemd made
/// meanwhile goes away empty.
pub(crate) fn for_systemd_scope(planned: &Cgroup) -> Cgroup {
    Cgroup {
        created: planned
            .dirs
            .iter()
            .map(|(_, dir)| dir.clone())
            .filter(|dir| !dir.exists())
            .collect(),
        systemd_unit: None,
        ..planned.clone()
    }
}

/// Write `cgroup` as the record of state directory `dir`.
///
/// One write, no rename: if create dies before the write completes, it had
/// made no cgroup yet, and a record cut short reads as none.
pub(crate) fn record(dir: &Path, cgroup: &Cgroup) -> Result<(), state::StateError> {
    let path = dir.join(FILE);
    let bytes = serde_json::to_vec(cgroup).unwrap_or_default();
    // Atomic (readers see the old record or the new one) and 0600 from
    // creation, as state.json: it names the container's cgroup.
    crate::sys::host_file::replace_file(&path, &bytes, state::PRIVATE_MODE).map_err(|source| {
        state::StateError::Io {
            op: "write",
            path,
            source,
        }
    })
}

/// After `made.make_in(hierarchies, versions)`: a directory the plan listed
/// that someone else made between the plan and our `mkdir` is not ours
/// (`made.created` leaves it out), and the record stops claiming it. The
/// usual case, nothing raced, writes nothing.
pub(crate) fn drop_found_dirs(
    dir: &Path,
    plan: &mut Cgroup,
    made: &Cgroup,
    hierarchies: &[Hierarchy],
    versions: Versions,
) -> Result<(), state::StateError> {
    let attempted = |path: &PathBuf| {
        made.dirs
            .iter()
            .find(|(_, own)| own.starts_with(path))
            .and_then(|(name, _)| hierarchies.iter().find(|h| &h.name == name))
            .is_some_and(|h| versions.covers(h))
    };
    let before = plan.created.len();
    plan.created
        .retain(|path| !attempted(path) || made.created.contains(path));
    if plan.created.len() == before {
        return Ok(());
    }
    record(dir, plan)
}

/// Forget the plan (a rootless create that goes without a cgroup): a cgroup
/// someone else makes at that path later is not this container's to remove.
pub(crate) fn forget(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}

/// The cgroup a killed `create` recorded in the state directory `dir`, if it
/// got as far as recording one.
pub(crate) fn read(dir: &Path) -> Option<Cgroup> {
    let bytes = std::fs::read(dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The directories `make` will create for `planned`, every one missing now,
/// parents first. A parent someone else makes meanwhile is listed too, until
/// `drop_found_dirs`; removing it fails as busy or not empty, which `remove`
/// allows for parents.
fn missing_dirs(planned: &Cgroup) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    for (_, own) in &planned.dirs {
        let absent: Vec<&Path> = own.ancestors().take_while(|a| !a.exists()).collect();
        missing.extend(absent.into_iter().rev().map(Path::to_path_buf));
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-intent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn hierarchy(base: &Path, name: &str, v2: bool) -> Hierarchy {
        Hierarchy {
            mountpoint: base.join(name),
            name: name.into(),
            own_path: "/".into(),
            v1_cpuset: false,
            v2,
        }
    }

    #[test]
    fn the_cgroup_is_recorded_with_what_create_will_make_and_a_torn_record_is_none() {
        let dir = scratch("torn");
        std::fs::create_dir_all(dir.join("h1/existing")).unwrap();
        let planned = Cgroup {
            dirs: vec![
                ("h1".into(), dir.join("h1/existing/c1")),
                ("h2".into(), dir.join("h2/parent/c1")),
            ],
            ..Default::default()
        };
        let plan = for_cgroupfs(&planned);
        assert_eq!(
            plan.created,
            vec![
                dir.join("h1/existing/c1"),
                dir.join("h2"),
                dir.join("h2/parent"),
                dir.join("h2/parent/c1")
            ]
        );
        record(&dir, &plan).unwrap();
        assert_eq!(read(&dir), Some(plan));
        let text = std::fs::read(dir.join(FILE)).unwrap();
        std::fs::write(dir.join(FILE), &text[..text.len() / 2]).unwrap();
        assert_eq!(
            read(&dir),
            None,
            "a record cut short by a kill means nothing was made yet"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_cgroup_is_never_planned_as_made() {
        let dir = scratch("existing");
        std::fs::create_dir_all(dir.join("h1/system.slice")).unwrap();
        let planned = Cgroup {
            dirs: vec![("h1".into(), dir.join("h1/system.slice"))],
            ..Default::default()
        };
        assert!(for_cgroupfs(&planned).created.is_empty());
        let scope = Cgroup {
            dirs: vec![
                ("h1".into(), dir.join("h1/system.slice")),
                ("h2".into(), dir.join("h2/system.slice/x.scope")),
            ],
            ..Default::default()
        };
        let plan = for_systemd_scope(&scope);
        assert_eq!(plan.created, vec![dir.join("h2/system.slice/x.scope")]);
        assert_eq!(plan.systemd_unit, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_someone_else_made_before_our_mkdir_leaves_the_plan() {
        let dir = scratch("raced");
        let hierarchies = [hierarchy(&dir, "v1", false), hierarchy(&dir, "v2", true)];
        for h in &hierarchies {
            std::fs::create_dir(&h.mountpoint).unwrap();
        }
        let planned = Cgroup {
            dirs: vec![
                ("v1".into(), dir.join("v1/p/c1")),
                ("v2".into(), dir.join("v2/p/c1")),
            ],
            ..Default::default()
        };
        let mut plan = for_cgroupfs(&planned);
        // The v2 directories were made; someone else made v2/p first.
        let made = Cgroup {
            created: vec![dir.join("v2/p/c1")],
            ..planned.clone()
        };
        drop_found_dirs(&dir, &mut plan, &made, &hierarchies, Versions::V2).unwrap();
        assert_eq!(
            plan.created,
            vec![dir.join("v1/p"), dir.join("v1/p/c1"), dir.join("v2/p/c1")],
            "v1's are still to be made"
        );
        assert_eq!(read(&dir), Some(plan.clone()));
        // Nothing raced in v1: no change, no write.
        std::fs::remove_file(dir.join(FILE)).unwrap();
        let made = Cgroup {
            created: plan.created.clone(),
            ..planned
        };
        drop_found_dirs(&dir, &mut plan, &made, &hierarchies, Versions::All).unwrap();
        assert_eq!(read(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
