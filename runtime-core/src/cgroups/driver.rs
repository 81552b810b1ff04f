//! The cgroup driver: which way a container's cgroup is made and entered.
//! `create` decides it once, from its options, the config's namespaces and
//! the host's hierarchies ([`Driver::for_create`]); `restore` has one way
//! ([`Driver::for_restore`]); the commands after read it back from the
//! container's record ([`Cgroup::driver`]).

use super::{Cgroup, Hierarchy, Versions};

/// Which way the container's cgroup is made and entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// Berth makes the directories itself (cgroupfs). With `overlap` only
    /// the v2 directory (the one the init is born in) is made before the
    /// clone: the v1 ones, slow to make, are made while the init sets
    /// itself up and sent to it (`CgroupReady`, [`super::LateEntry`]).
    /// Without it every directory is made, and limited, before the clone.
    /// Read back from a record, `overlap` is false: it only matters during `create`.
    Cgroupfs { overlap: bool },
    /// systemd makes a transient unit around the init once it exists
    /// (`--systemd-cgroup`); Berth makes and joins what systemd left out.
    Systemd { unit: String },
    /// No cgroup: a rootless container its user may not make one for,
    /// whose config asks for no limits.
    None,
}

/// What [`Driver::for_create`] decides by, besides `--systemd-cgroup`.
pub struct CreateHost<'a> {
    /// runc's rootless mode: a cgroup this user may not make is done without.
    pub rootless: bool,
    /// The init is cloned straight into its v2 directory (`CLONE_INTO_CGROUP`,
    /// not from a helper inside a user namespace).
    pub clones_into_cgroup: bool,
    /// The container has a new cgroup namespace, rooted where the init is when it unshares.
    pub new_cgroup_namespace: bool,
    pub hierarchies: &'a [Hierarchy],
}

impl Driver {
    /// `create`'s driver. `systemd_unit` is the unit's name under
    /// `--systemd-cgroup`. The overlap applies only where the init need
    /// not be inside from its first step: not with a new cgroup namespace
    /// (rooted where the init is when it unshares), not rootless (which
    /// learns only from making them whether it may), not when a helper
    /// clones the init from a user namespace; and only with v1 hierarchies
    /// to overlap. A rootless create that may not make its cgroup turns
    /// to [`Driver::None`] when it tries ([`Driver::without_cgroup`]).
    pub fn for_create(systemd_unit: Option<String>, host: &CreateHost) -> Driver {
        if let Some(unit) = systemd_unit {
            return Driver::Systemd { unit };
        }
        let overlap = !host.rootless
            && host.clones_into_cgroup
            && !host.new_cgroup_namespace
            && host.hierarchies.iter().any(|h| !h.v2);
        Driver::Cgroupfs { overlap }
    }

    /// `restore`'s driver: every directory made, and limited, before CRIU
    /// starts in it (a systemd scope is refused before this).
    pub fn for_restore() -> Driver {
        Driver::Cgroupfs { overlap: false }
    }

    /// A rootless create found it may not make its cgroup, and does without.
    pub fn without_cgroup(&mut self) {
        *self = Driver::None;
    }

    /// The hierarchies whose directories are made before the clone; `None`
    /// for a systemd unit, which exists only around a process.
    pub fn made_before_clone(&self) -> Option<Versions> {
        match self {
            Driver::Cgroupfs { overlap: true } => Some(Versions::V2),
            Driver::Cgroupfs { overlap: false } => Some(Versions::All),
            Driver::Systemd { .. } | Driver::None => None,
        }
    }

    /// Whether the v1 directories are made while the init sets itself up.
    pub fn overlaps(&self) -> bool {
        matches!(self, Driver::Cgroupfs { overlap: true })
    }

    /// Whether the limits are written before the clone (cgroupfs without the
    /// overlap); otherwise once the directories exist, after it.
    pub fn limits_before_clone(&self) -> bool {
        // Without a cgroup there are none to write, and none were asked for.
        matches!(self, Driver::Cgroupfs { overlap: false } | Driver::None)
    }
}

impl Cgroup {
    /// The driver a recorded cgroup was made by.
    pub fn driver(&self) -> Driver {
        match (&self.systemd_unit, self.dirs.is_empty()) {
            (Some(unit), _) => Driver::Systemd { unit: unit.clone() },
            (None, true) => Driver::None,
            (None, false) => Driver::Cgroupfs { overlap: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hierarchy(name: &str, v2: bool) -> Hierarchy {
        Hierarchy {
            mountpoint: format!("/sys/fs/cgroup/{name}").into(),
            name: name.into(),
            own_path: "/".into(),
            v1_cpuset: false,
            v2,
        }
    }

    #[test]
    fn the_overlap_is_only_for_v1_hierarchies_an_init_may_enter_late() {
        let hybrid = [hierarchy("memory", false), hierarchy("", true)];
        let unified = [hierarchy("", true)];
        let host = |rootless, clones_into_cgroup, new_cgroup_namespace, hierarchies| CreateHost {
            rootless,
            clones_into_cgroup,
            new_cgroup_namespace,
            hierarchies,
        };
        let overlap = |o| Driver::Cgroupfs { overlap: o };
        assert_eq!(
            Driver::for_create(None, &host(false, true, false, &hybrid)),
            overlap(true)
        );
        assert_eq!(
            Driver::for_create(None, &host(false, true, false, &unified)),
            overlap(false)
        );
        assert_eq!(
            Driver::for_create(None, &host(true, true, false, &hybrid)),
            overlap(false)
        );
        assert_eq!(
            Driver::for_create(None, &host(false, false, false, &hybrid)),
            overlap(false)
        );
        assert_eq!(
            Driver::for_create(None, &host(false, true, true, &hybrid)),
            overlap(false)
        );
        let systemd =
            Driver::for_create(Some("a.scope".into()), &host(false, true, false, &hybrid));
        assert_eq!(
            systemd,
            Driver::Systemd {
                unit: "a.scope".into()
            }
        );
        assert_eq!(systemd.made_before_clone(), None);
        assert_eq!(overlap(true).made_before_clone(), Some(Versions::V2));
        assert_eq!(overlap(false).made_before_clone(), Some(Versions::All));
    }

    #[test]
    fn a_record_tells_its_driver() {
        let mut cgroup = Cgroup::default();
        assert_eq!(cgroup.driver(), Driver::None);
        cgroup
            .dirs
            .push(("memory".into(), "/sys/fs/cgroup/memory/c".into()));
        assert_eq!(cgroup.driver(), Driver::Cgroupfs { overlap: false });
        cgroup.systemd_unit = Some("berth-c.scope".into());
        assert_eq!(
            cgroup.driver(),
            Driver::Systemd {
                unit: "berth-c.scope".into()
            }
        );
    }
}
