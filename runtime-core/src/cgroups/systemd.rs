//! runc's systemd cgroup driver (`--systemd-cgroup`): `linux.cgroupsPath` is
//! `slice:prefix:name`, and systemd makes the container's cgroup as a
//! transient scope unit `<prefix>-<name>.scope` in that slice (or, for a
//! `name` ending in `.slice`, that slice), holding the init, with
//! `Delegate=yes` so the runtime may write below and into it. Berth then
//! makes the directories systemd left out (hierarchies it does not manage)
//! and writes every limit itself, as runc does; `delete` stops the unit.
//! Root talks to the system manager, anyone else to their user manager.

mod annotations;
mod bus;
mod devices;
mod error;
mod properties;

pub use annotations::from_annotations as annotation_properties;
pub use bus::user_manager;
pub use properties::{complete_cpu_quota, round_cpu_quota};

pub use super::dbus::Value;
pub use error::SystemdError;

use super::dbus::{Arg, Connection, Reply};
use bus::{bus_error, connect, host, MANAGER, SYSTEMD_PATH, UNIFIED_MARKER};
use error::BOOTED_MARKER;
use oci_spec::runtime::LinuxResources;
use properties::Host;
use std::path::{Path, PathBuf};

/// The unit a container's cgroup is, from its cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The slice the unit goes in (for a slice unit: the one it is wanted by).
    pub slice: String,
    /// `<prefix>-<name>.scope`, or `<name>` when that ends in `.slice`.
    pub unit: String,
}

impl Scope {
    /// runc's reading of cgroupsPath for systemd: `slice:prefix:name`, an
    /// empty slice meaning `system.slice` (`user.slice` for a user's own
    /// systemd), and no cgroupsPath at all `system.slice:runc:<id>`.
    pub fn parse(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<Scope, SystemdError> {
        let default_slice = if user { "user.slice" } else { "system.slice" };
        let Some(path) = cgroups_path.filter(|p| !p.is_empty()) else {
            return Ok(Scope {
                slice: default_slice.into(),
                unit: format!("runc-{id}.scope"),
            });
        };
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(SystemdError::PathFormat(path.to_string()));
        };
        if name.is_empty() {
            return Err(SystemdError::PathFormat(path.to_string()));
        }
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        let parent = expand_slice(slice)?;
        let unit = if name.ends_with(".slice") {
            // runc makes that slice rather than a scope, ignoring the prefix
            // (kubelet's pod slices). systemd nests a slice by its own name:
            // one that does not name `slice` as its parent would be elsewhere.
            let own = expand_slice(name)?;
            if own != format!("{parent}/{name}").trim_start_matches('/') {
                return Err(SystemdError::SliceOutsideParent {
                    name: name.to_string(),
                    parent: slice.to_string(),
                });
            }
            name.to_string()
        } else {
            format!("{prefix}-{name}.scope")
        };
        if !unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\".contains(c))
        {
            return Err(SystemdError::InvalidUnit(unit));
        }
        Ok(Scope {
            slice: slice.to_string(),
            unit,
        })
    }

    /// A slice of its own rather than a scope.
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }

    /// The unit's cgroup, from the root of the hierarchies systemd manages:
    /// for a user's own systemd, below its manager's cgroup
    /// (`/user.slice/user-1000.slice/user@1000.service`), which it tells.
    pub fn cgroup_path(&self) -> Result<PathBuf, SystemdError> {
        let root = match user_manager() {
            false => PathBuf::from("/"),
            true => {
                let mut bus = connect()?;
                let group = bus
                    .get_property(SYSTEMD_PATH, MANAGER, "ControlGroup")
                    .map_err(bus_error)?
                    .ok_or(SystemdError::NoManagerProperty("ControlGroup"))?;
                Path::new("/").join(group.trim_start_matches('/'))
            }
        };
        self.path_below(&root)
    }

    fn path_below(&self, root: &Path) -> Result<PathBuf, SystemdError> {
        Ok(root.join(expand_slice(&self.slice)?).join(&self.unit))
    }

    /// Ask systemd for the unit, holding `pid` (a scope; a slice is joined
    /// through its files), and wait until it is running. `extra`: the
    /// annotations' properties, which the config's limits and device rules override.
    pub fn start(
        &self,
        id: &str,
        pid: i32,
        resources: Option<&LinuxResources>,
        device_rules: &[super::DeviceRule],
        extra: &[(String, Value)],
    ) -> Result<(), SystemdError> {
        let mut properties = vec![(
            "Description".to_string(),
            Value::Str(format!("berth container {id}")),
        )];
        if self.is_slice() {
            // A slice's parent is its name's; Wants= keeps that one around, as runc asks.
            properties.push((
                "Wants".to_string(),
                Value::StrArray(vec![self.slice.clone()]),
            ));
        } else {
            properties.extend([
                ("Slice".to_string(), Value::Str(self.slice.clone())),
                ("Delegate".to_string(), Value::Bool(true)),
                ("PIDs".to_string(), Value::U32Array(vec![pid as u32])),
            ]);
        }
        properties.extend([
            // Otherwise the unit would be ordered against shutdown.target and the like, as runc avoids.
            ("DefaultDependencies".to_string(), Value::Bool(false)),
            ("MemoryAccounting".to_string(), Value::Bool(true)),
            ("CPUAccounting".to_string(), Value::Bool(true)),
            ("TasksAccounting".to_string(), Value::Bool(true)),
        ]);
        properties.extend_from_slice(extra);
        let mut bus = connect()?;
        let host = host(&mut bus)?;
        properties.extend(devices::device_properties(device_rules, host.version));
        if let Some(resources) = resources {
            properties.extend(properties::resource_properties(resources, host)?);
        }
        let reply = bus
            .call(
                SYSTEMD_PATH,
                MANAGER,
                "StartTransientUnit",
                &[
                    Arg::Str(&self.unit),
                    Arg::Str("replace"),
                    Arg::Properties(&properties),
                    Arg::NoAuxUnits,
                ],
            )
            .map_err(bus_error)?;
        finish_job(&mut bus, reply, "start", &self.unit)
    }
}

/// Refuse early, before anything exists, where systemd is not the init, or
/// where a user's own systemd would have to manage v1 hierarchies (runc's refusal).
pub fn check_running() -> Result<(), SystemdError> {
    if !Path::new(BOOTED_MARKER).is_dir() {
        return Err(SystemdError::NotRunning);
    }
    if user_manager() && !Path::new(UNIFIED_MARKER).exists() {
        return Err(SystemdError::RootlessOnV1);
    }
    Ok(())
}

/// Stop the unit (systemd kills what is left in it and removes its
/// cgroups); one already gone is no error, so delete may be repeated.
pub fn stop(unit: &str) -> Result<(), SystemdError> {
    let mut bus = connect()?;
    let reply = bus
        .call(
            SYSTEMD_PATH,
            MANAGER,
            "StopUnit",
            &[Arg::Str(unit), Arg::Str("replace")],
        )
        .map_err(bus_error)?;
    match reply {
        Reply::Error(name, _) if name == "org.freedesktop.systemd1.NoSuchUnit" => Ok(()),
        reply => finish_job(&mut bus, reply, "stop", unit),
    }
}

/// Tell systemd the limits `update` sets, so that a `daemon-reload` writes
/// those rather than the ones the unit was started with. `unified`: a pure
/// cgroup v2 host.
pub fn set_properties(
    unit: &str,
    resources: &LinuxResources,
    unified: bool,
) -> Result<(), SystemdError> {
    let mut bus = connect()?;
    let host = Host {
        unified,
        ..host(&mut bus)?
    };
    let properties = properties::resource_properties(resources, host)?;
    if properties.is_empty() {
        return Ok(());
    }
    let reply = bus
        .call(
            SYSTEMD_PATH,
            MANAGER,
            "SetUnitProperties",
            &[
                Arg::Str(unit),
                Arg::Bool(true),
                Arg::Properties(&properties),
            ],
        )
        .map_err(bus_error)?;
    match reply {
        Reply::Return(_) => Ok(()),
        Reply::Error(name, message) => Err(SystemdError::Refused {
            action: "set the properties of",
            unit: unit.to_string(),
            name,
            message,
        }),
    }
}

fn finish_job(
    bus: &mut Connection,
    reply: Reply,
    action: &'static str,
    unit: &str,
) -> Result<(), SystemdError> {
    let job = match reply {
        Reply::Error(name, message) => {
            return Err(SystemdError::Refused {
                action,
                unit: unit.to_string(),
                name,
                message,
            })
        }
        Reply::Return(job) => job.unwrap_or_default(),
    };
    let result = bus.wait_job(&job).map_err(bus_error)?;
    if result == "done" {
        Ok(())
    } else {
        Err(SystemdError::Job {
            action,
            unit: unit.to_string(),
            result,
        })
    }
}

/// A slice's cgroup path, as systemd nests slices: `a-b.slice` lives in
/// `a.slice/a-b.slice`, `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, SystemdError> {
    // runc's one text for every bad slice name.
    let bad = || Err(SystemdError::InvalidSlice(slice.to_string()));
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad();
    };
    if stem.contains('/') {
        return bad();
    }
    if stem == "-" {
        return Ok(String::new());
    }
    // '-' separates parent slices: it cannot start or end the name or be doubled.
    if stem.is_empty() || stem.split('-').any(str::is_empty) {
        return bad();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
            path.push('/');
        }
        prefix.push_str(part);
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Result<Scope, SystemdError> {
        Scope::parse(Some(path), "x", false)
    }

    fn path(scope: &Scope) -> PathBuf {
        scope.path_below(Path::new("/")).unwrap()
    }

    #[test]
    fn slice_prefix_name_becomes_a_scope_in_that_slice() {
        let scope = parse("system.slice:docker:abc").unwrap();
        assert_eq!(
            scope,
            Scope {
                slice: "system.slice".into(),
                unit: "docker-abc.scope".into()
            }
        );
        assert_eq!(path(&scope), Path::new("/system.slice/docker-abc.scope"));
        let nested = parse("a-b.slice:p:n").unwrap();
        assert_eq!(path(&nested), Path::new("/a.slice/a-b.slice/p-n.scope"));
        // kubelet's containers: a scope in the pod's slice.
        let kubelet = parse("kubepods-besteffort-pod1_2.slice:cri-containerd:abc").unwrap();
        assert_eq!(
            path(&kubelet),
            Path::new("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-abc.scope")
        );
    }

    #[test]
    fn a_name_ending_in_slice_is_that_slice_below_its_parent() {
        let pod =
            parse("kubepods-besteffort.slice:ignored:kubepods-besteffort-pod9.slice").unwrap();
        assert!(pod.is_slice());
        assert_eq!(pod.unit, "kubepods-besteffort-pod9.slice");
        assert_eq!(
            path(&pod),
            Path::new("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice")
        );
        let top = parse("-.slice:p:machine.slice").unwrap();
        assert_eq!(path(&top), Path::new("/machine.slice"));
        assert!(matches!(
            parse("system.slice:p:other-x.slice"),
            Err(SystemdError::SliceOutsideParent { .. })
        ));
        assert_eq!(
            parse("system.slice:p:a--b.slice").unwrap_err().to_string(),
            "invalid slice name: a--b.slice"
        );
    }

    #[test]
    fn empty_path_or_slice_means_system_slice_or_user_slice() {
        assert_eq!(
            Scope::parse(None, "c1", false).unwrap(),
            Scope {
                slice: "system.slice".into(),
                unit: "runc-c1.scope".into()
            }
        );
        assert_eq!(
            Scope::parse(Some(""), "c1", false).unwrap().unit,
            "runc-c1.scope"
        );
        assert_eq!(parse(":p:n").unwrap().slice, "system.slice");
        assert_eq!(
            Scope::parse(Some(":p:n"), "c1", true).unwrap().slice,
            "user.slice"
        );
        assert_eq!(Scope::parse(None, "c1", true).unwrap().slice, "user.slice");
    }

    #[test]
    fn other_forms_are_refused_in_runcs_words() {
        for path in ["/a/b", "a:b", "a:b:c:d", "system.slice:p:"] {
            let err = parse(path).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {path:?} instead")
            );
        }
        assert_eq!(
            parse("system:p:n").unwrap_err().to_string(),
            "invalid slice name: system"
        );
        assert!(matches!(
            parse("system.slice:p:a/b"),
            Err(SystemdError::InvalidUnit(_))
        ));
    }

    #[test]
    fn slices_nest_by_dashes() {
        assert_eq!(expand_slice("-.slice").unwrap(), "");
        assert_eq!(expand_slice("system.slice").unwrap(), "system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "a.slice/a-b.slice/a-b-c.slice"
        );
        for bad in [
            "a",
            "-a.slice",
            "a-.slice",
            "a--b.slice",
            ".slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad} was accepted");
        }
    }
}
