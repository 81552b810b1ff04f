//! runc's systemd cgroup driver (`--systemd-cgroup`): `linux.cgroupsPath` is
//! `slice:prefix:name`, and systemd makes the container's cgroup as a
//! transient scope unit `<prefix>-<name>.scope` in that slice, holding the
//! init, with `Delegate=yes` so the runtime may write below and into it.
//! Berth then makes the directories systemd left out (hierarchies it does
//! not manage) and writes every limit itself, as runc does; `delete` stops
//! the unit.

use super::dbus::{Arg, Connection, Reply, Value};
use oci_spec::runtime::LinuxResources;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exists when systemd is the host's init (sd_booted(3)).
const BOOTED_MARKER: &str = "/run/systemd/system";
/// systemd's peer-to-peer bus for root: no bus daemon needed (systemctl uses it too).
const PRIVATE_SOCKET: &str = "/run/systemd/private";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long one read from systemd may take; runc waits 30 s for its jobs too.
const BUS_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {0:?} instead")]
    PathFormat(String),
    #[error("invalid slice name {slice:?} in cgroupsPath: {why}")]
    InvalidSlice { slice: String, why: &'static str },
    #[error("invalid systemd unit name {0:?} from cgroupsPath: only ASCII letters, digits and \":-_.\\\" are allowed")]
    InvalidUnit(String),
    #[error("cgroupsPath name {0:?} ends in .slice: a slice of its own instead of a scope is not supported yet")]
    SliceAsName(String),
    #[error("the systemd cgroup driver needs systemd as the host's init, and systemd is not running here (no {BOOTED_MARKER})")]
    NotRunning,
    #[error("talk to systemd over {PRIVATE_SOCKET}: {0}")]
    Bus(io::Error),
    #[error("systemd refused to {action} unit {unit}: {name}: {message}")]
    Refused {
        action: &'static str,
        unit: String,
        name: String,
        message: String,
    },
    #[error("systemd's job to {action} unit {unit} ended with {result:?}")]
    Job {
        action: &'static str,
        unit: String,
        result: String,
    },
}

/// The scope a container's cgroup is, from its cgroupsPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub slice: String,
    pub unit: String,
}

impl Scope {
    /// runc's reading of cgroupsPath for systemd: `slice:prefix:name`, an
    /// empty slice meaning `system.slice`, and no cgroupsPath at all
    /// `system.slice:runc:<id>`.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Scope, SystemdError> {
        let Some(path) = cgroups_path.filter(|p| !p.is_empty()) else {
            return Ok(Scope {
                slice: "system.slice".into(),
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
        if name.ends_with(".slice") {
            return Err(SystemdError::SliceAsName(name.to_string()));
        }
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        expand_slice(slice)?;
        let unit = format!("{prefix}-{name}.scope");
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

    /// The scope's cgroup, from the root of the hierarchies systemd manages.
    pub fn cgroup_path(&self) -> Result<PathBuf, SystemdError> {
        Ok(Path::new("/")
            .join(expand_slice(&self.slice)?)
            .join(&self.unit))
    }

    /// Ask systemd for the scope, holding `pid`, and wait until it is running.
    /// `v1_cpu`: the cpu controller is a v1 hierarchy (shares rather than weight).
    pub fn start(
        &self,
        id: &str,
        pid: i32,
        resources: Option<&LinuxResources>,
        v1_cpu: bool,
    ) -> Result<(), SystemdError> {
        let mut properties = vec![
            (
                "Description".to_string(),
                Value::Str(format!("berth container {id}")),
            ),
            ("Slice".to_string(), Value::Str(self.slice.clone())),
            ("Delegate".to_string(), Value::Bool(true)),
            ("PIDs".to_string(), Value::U32Array(vec![pid as u32])),
            // Otherwise the scope would be ordered against shutdown.target and the like, as runc avoids.
            ("DefaultDependencies".to_string(), Value::Bool(false)),
            ("MemoryAccounting".to_string(), Value::Bool(true)),
            ("CPUAccounting".to_string(), Value::Bool(true)),
            ("TasksAccounting".to_string(), Value::Bool(true)),
        ];
        properties.extend(
            resources
                .map(|r| resource_properties(r, v1_cpu))
                .unwrap_or_default(),
        );
        let mut bus = connect()?;
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
            .map_err(SystemdError::Bus)?;
        finish_job(&mut bus, reply, "start", &self.unit)
    }
}

/// Refuse early, before anything exists, where systemd is not the init.
pub fn check_running() -> Result<(), SystemdError> {
    if Path::new(BOOTED_MARKER).is_dir() {
        Ok(())
    } else {
        Err(SystemdError::NotRunning)
    }
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
        .map_err(SystemdError::Bus)?;
    match reply {
        Reply::Error(name, _) if name == "org.freedesktop.systemd1.NoSuchUnit" => Ok(()),
        reply => finish_job(&mut bus, reply, "stop", unit),
    }
}

/// Tell systemd the limits `update` sets, so that a `daemon-reload` writes
/// those rather than the ones the scope was started with.
pub fn set_properties(
    unit: &str,
    resources: &LinuxResources,
    v1_cpu: bool,
) -> Result<(), SystemdError> {
    let properties = resource_properties(resources, v1_cpu);
    if properties.is_empty() {
        return Ok(());
    }
    let mut bus = connect()?;
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
        .map_err(SystemdError::Bus)?;
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

fn connect() -> Result<Connection, SystemdError> {
    let mut bus =
        Connection::open(Path::new(PRIVATE_SOCKET), BUS_TIMEOUT).map_err(SystemdError::Bus)?;
    // Job signals reach only subscribed clients on some versions; the private bus needs no match rule.
    if let Reply::Error(name, message) = bus
        .call(SYSTEMD_PATH, MANAGER, "Subscribe", &[])
        .map_err(SystemdError::Bus)?
    {
        return Err(SystemdError::Refused {
            action: "subscribe to",
            unit: "the manager".into(),
            name,
            message,
        });
    }
    Ok(bus)
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
    let result = bus.wait_job(&job).map_err(SystemdError::Bus)?;
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

/// The limits systemd should know about: it writes a unit's own settings
/// (its defaults where none are set: cpu.shares 1024, no quota) again on
/// `daemon-reload`. Berth writes every limit to the cgroup files itself too.
fn resource_properties(resources: &LinuxResources, v1_cpu: bool) -> Vec<(String, Value)> {
    let mut properties = Vec::new();
    let mut add = |name: &str, value: u64| properties.push((name.to_string(), Value::U64(value)));
    if let Some(limit) = resources
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|l| *l != 0)
    {
        add("MemoryMax", u64::try_from(limit).unwrap_or(u64::MAX));
    }
    if let Some(limit) = resources.pids().as_ref().map(|p| p.limit()) {
        // 0 is a real limit (spec 1.3), but systemd does not take
        // TasksMax=0: 1, as runc 1.4 sends, stops every fork just the same.
        let tasks = if limit == 0 { 1 } else { limit };
        add("TasksMax", u64::try_from(tasks).unwrap_or(u64::MAX));
    }
    let cpu = resources.cpu().as_ref();
    if let Some(shares) = cpu.and_then(|c| c.shares()).filter(|s| *s != 0) {
        if v1_cpu {
            add("CPUShares", shares);
        } else {
            // runc's mapping of shares (2..262144) onto cgroup v2's weight (1..10000).
            add("CPUWeight", 1 + (shares.saturating_sub(2) * 9999) / 262142);
        }
    }
    if let (Some(quota), Some(period)) = (
        cpu.and_then(|c| c.quota()).filter(|q| *q != 0),
        cpu.and_then(|c| c.period()).filter(|p| *p != 0),
    ) {
        add("CPUQuotaPeriodUSec", period);
        add(
            "CPUQuotaPerSecUSec",
            u64::try_from(quota).map_or(u64::MAX, |q| q.saturating_mul(1_000_000) / period),
        );
    }
    properties
}

/// A slice's cgroup path, as systemd nests slices: `a-b.slice` lives in
/// `a.slice/a-b.slice`, `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, SystemdError> {
    let bad = |why| {
        Err(SystemdError::InvalidSlice {
            slice: slice.to_string(),
            why,
        })
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("a slice name ends in .slice");
    };
    if stem.contains('/') {
        return bad("a slice name cannot contain '/'");
    }
    if stem == "-" {
        return Ok(String::new());
    }
    if stem.is_empty() || stem.split('-').any(str::is_empty) {
        return bad("'-' separates parent slices: it cannot start or end the name or be doubled");
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

    #[test]
    fn slice_prefix_name_becomes_a_scope_in_that_slice() {
        let scope = Scope::parse(Some("system.slice:docker:abc"), "x").unwrap();
        assert_eq!(
            scope,
            Scope {
                slice: "system.slice".into(),
                unit: "docker-abc.scope".into()
            }
        );
        assert_eq!(
            scope.cgroup_path().unwrap(),
            Path::new("/system.slice/docker-abc.scope")
        );
        let nested = Scope::parse(Some("a-b.slice:p:n"), "x").unwrap();
        assert_eq!(
            nested.cgroup_path().unwrap(),
            Path::new("/a.slice/a-b.slice/p-n.scope")
        );
    }

    #[test]
    fn empty_path_or_slice_means_system_slice() {
        assert_eq!(
            Scope::parse(None, "c1").unwrap(),
            Scope {
                slice: "system.slice".into(),
                unit: "runc-c1.scope".into()
            }
        );
        assert_eq!(Scope::parse(Some(""), "c1").unwrap().unit, "runc-c1.scope");
        assert_eq!(
            Scope::parse(Some(":p:n"), "c1").unwrap().slice,
            "system.slice"
        );
    }

    #[test]
    fn other_forms_are_refused_in_runcs_words() {
        for path in ["/a/b", "a:b", "a:b:c:d", "system.slice:p:"] {
            let err = Scope::parse(Some(path), "x").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {path:?} instead")
            );
        }
        assert!(matches!(
            Scope::parse(Some("system:p:n"), "x"),
            Err(SystemdError::InvalidSlice { .. })
        ));
        assert!(matches!(
            Scope::parse(Some("system.slice:p:n.slice"), "x"),
            Err(SystemdError::SliceAsName(_))
        ));
        assert!(matches!(
            Scope::parse(Some("system.slice:p:a/b"), "x"),
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

    #[test]
    fn pids_limit_zero_is_tasks_max_one_and_negative_is_infinity() {
        let tasks_max = |json: &str| {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            resource_properties(&resources, false)
                .into_iter()
                .find(|(name, _)| name == "TasksMax")
                .map(|(_, value)| value)
        };
        assert_eq!(tasks_max(r#"{"pids":{"limit":0}}"#), Some(Value::U64(1)));
        assert_eq!(tasks_max(r#"{"pids":{"limit":7}}"#), Some(Value::U64(7)));
        assert_eq!(
            tasks_max(r#"{"pids":{"limit":-1}}"#),
            Some(Value::U64(u64::MAX))
        );
        assert_eq!(tasks_max(r#"{}"#), None);
    }
}
