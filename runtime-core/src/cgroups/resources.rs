//! `linux.resources` limits other than devices: each config field becomes a
//! list of file writes (pure, in `v1.rs` for hosts with v1 controllers and
//! `v2.rs` for a unified host), then one loop finds each write's directory
//! and writes it.
//!
//! Zero means "unset" for the fields where runc reads it so (limits, shares,
//! quota, period, weights): runc's configs are Go structs whose zero value is
//! "not given", and configs made for runc rely on that.

mod memory_check;
mod v1;
mod v2;

use super::Cgroup;
use oci_spec::runtime::LinuxResources;
use std::fmt::Display;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{field}: the {controller} controller is not available on this host{detail}")]
    NotAvailable {
        field: String,
        controller: &'static str,
        detail: String,
    },
    #[error("{field}: cgroup v2 files need a cgroup v2 hierarchy, and this host mounts none")]
    NoUnifiedHierarchy { field: String },
    #[error("{field} {value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error("{field} {value}: cgroup v2 has no equivalent of this setting")]
    NoV2Equivalent { field: String, value: String },
    #[error("{field} {value}: {} does not exist (this kernel or this cgroup has no such file)", .path.display())]
    MissingFile {
        field: String,
        value: String,
        path: PathBuf,
    },
    #[error("{field} {value}: write {}{}: {source}", .path.display(), .written.as_ref().map(|w| format!(" ({w:?})")).unwrap_or_default())]
    Write {
        field: String,
        value: String,
        path: PathBuf,
        written: Option<String>,
        source: io::Error,
    },
    #[error("{field} {value}: the kernel set {} to {actual} instead", .path.display())]
    Clamped {
        field: String,
        value: String,
        path: PathBuf,
        actual: String,
    },
    #[error("read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// runc's words (`linux.resources.memory.checkBeforeUpdate`).
    #[error("rejecting {what} limit {limit} <= usage {usage}")]
    BelowUsage {
        what: &'static str,
        limit: i64,
        usage: u64,
    },
}

/// The controller a write needs, by its kernel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Controller {
    Memory,
    Cpu,
    Cpuset,
    Pids,
    /// v1 block I/O.
    Blkio,
    /// v2 block I/O.
    Io,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
    /// A `linux.resources.unified` key: the cgroup v2 directory, whatever the controller.
    Unified,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Blkio => "blkio",
            Controller::Io => "io",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::Rdma => "rdma",
            Controller::Unified => "unified",
        }
    }
}

/// One config field's write: `content` to the first of `choices` whose file
/// exists (kernels name some knobs differently, e.g. blkio.weight and
/// blkio.bfq.weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Write {
    pub controller: Controller,
    /// The config field, as errors name it: `linux.resources.memory.limit`.
    pub field: String,
    /// The configured value, as errors show it.
    pub value: String,
    /// (file name, content); the first is the one errors name when none exists.
    pub choices: Vec<(String, String)>,
    /// Skip silently when no choice exists (deprecated knobs the kernel dropped).
    pub optional: bool,
    /// Read the file back: the kernel clamps some values (cpu.shares) without an error.
    pub read_back: bool,
}

impl Write {
    pub fn new(
        controller: Controller,
        field: &str,
        value: impl Display,
        file: impl Into<String>,
        content: impl Display,
    ) -> Write {
        Write {
            controller,
            field: format!("linux.resources.{field}"),
            value: value.to_string(),
            choices: vec![(file.into(), content.to_string())],
            optional: false,
            read_back: false,
        }
    }

    pub fn or(mut self, file: impl Into<String>, content: impl Display) -> Write {
        self.choices.push((file.into(), content.to_string()));
        self
    }

    pub fn if_present(mut self) -> Write {
        self.optional = true;
        self
    }

    pub fn read_back(mut self) -> Write {
        self.read_back = true;
        self
    }
}

/// A string value as errors show it: quoted, as in the config.
pub(super) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// `linux.resources.unified`, in key order: its keys are file names in the
/// container's cgroup v2 directory, so nothing may lead out of it.
pub(super) fn unified_writes(resources: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let Some(unified) = resources.unified() else {
        return Ok(Vec::new());
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    let mut writes = Vec::new();
    for key in keys {
        let value = &unified[key];
        let field = format!("unified[{key:?}]");
        if key.is_empty() || key.contains('/') || key.contains("..") || key.contains('\0') {
            return Err(invalid(
                &field,
                quoted(value),
                "the key must be a file name in the container's cgroup",
            ));
        }
        writes.push(Write::new(
            Controller::Unified,
            &field,
            quoted(value),
            key.as_str(),
            value,
        ));
    }
    Ok(writes)
}

/// Hugepage sizes name files (`hugetlb.2MB.limit_in_bytes`): only `<digits><K|M|G>B`.
pub(super) fn check_page_size(field: &str, size: &str) -> Result<(), ResourceError> {
    let digits = size
        .strip_suffix("KB")
        .or_else(|| size.strip_suffix("MB"))
        .or_else(|| size.strip_suffix("GB"));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(invalid(
            field,
            quoted(size),
            "a page size is a number followed by KB, MB or GB (e.g. \"2MB\")",
        )),
    }
}

/// Names written into a line of a kernel file (interfaces, RDMA devices):
/// whitespace would split the line.
pub(super) fn check_name(field: &str, name: &str) -> Result<(), ResourceError> {
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(invalid(
            field,
            quoted(name),
            "the name must be non-empty, without whitespace",
        ));
    }
    Ok(())
}

pub(super) fn invalid(field: &str, value: impl Display, reason: &str) -> ResourceError {
    let field = if field.starts_with("linux.") {
        field.to_string()
    } else {
        format!("linux.resources.{field}")
    };
    ResourceError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

pub(super) fn no_v2_equivalent(field: &str, value: impl Display) -> ResourceError {
    ResourceError::NoV2Equivalent {
        field: format!("linux.resources.{field}"),
        value: value.to_string(),
    }
}

/// runc's order for a v1 memory limit and memory+swap limit: the kernel
/// keeps limit <= memsw at every step, so raising both above the current
/// limit must start with memsw.
fn swap_goes_first(swap: i64, current_limit: u64) -> bool {
    swap == -1 || u64::try_from(swap).is_ok_and(|swap| current_limit < swap)
}

impl Cgroup {
    /// Apply every limit of `resources` except `devices` (set_device_rules does those).
    pub fn apply_resources(&self, resources: &LinuxResources) -> Result<(), ResourceError> {
        let unified_host = self.unified_only_dir();
        let mut writes = match unified_host {
            Some(_) => v2::writes(resources)?,
            None => v1::writes(resources)?,
        };
        if unified_host.is_none() {
            self.order_memory_and_swap(&mut writes)?;
        }
        for write in &writes {
            let dir = match unified_host {
                Some(dir) => v2_dir(dir, write)?,
                None => self.v1_dir(write)?,
            };
            apply_write(dir, write)?;
        }
        Ok(())
    }

    fn order_memory_and_swap(&self, writes: &mut [Write]) -> Result<(), ResourceError> {
        let find = |file: &str| writes.iter().position(|w| w.choices[0].0 == file);
        let (Some(limit), Some(swap)) = (
            find("memory.limit_in_bytes"),
            find("memory.memsw.limit_in_bytes"),
        ) else {
            return Ok(());
        };
        let Ok(swap_value) = writes[swap].choices[0].1.parse::<i64>() else {
            return Ok(());
        };
        let dir = self.v1_dir(&writes[limit])?;
        let path = dir.join("memory.limit_in_bytes");
        let current = fs::read_to_string(&path).map_err(|source| ResourceError::Read {
            path: path.clone(),
            source,
        })?;
        let current = current.trim().parse::<u64>().unwrap_or(u64::MAX);
        if swap > limit && swap_goes_first(swap_value, current) {
            writes[limit..=swap].rotate_right(1);
        }
        Ok(())
    }

    /// The v1 hierarchy holding `write`'s controller, known by its name
    /// (`cpu,cpuacct` holds cpu) or by its files (`memory.*`), or the
    /// hybrid host's cgroup2 directory for `unified` keys.
    fn v1_dir(&self, write: &Write) -> Result<&Path, ResourceError> {
        if write.controller == Controller::Unified {
            return self
                .dirs
                .iter()
                .find(|(_, dir)| dir.join("cgroup.controllers").exists())
                .map(|(_, dir)| dir.as_path())
                .ok_or_else(|| ResourceError::NoUnifiedHierarchy {
                    field: write.field.clone(),
                });
        }
        let controller = write.controller.name();
        let prefix = format!("{controller}.");
        let holds = |name: &str, dir: &Path| {
            if dir.join("cgroup.controllers").exists() {
                return false;
            }
            name.split(',').any(|c| c == controller)
                || fs::read_dir(dir).is_ok_and(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                })
        };
        self.dirs
            .iter()
            .find(|(name, dir)| holds(name, dir))
            .map(|(_, dir)| dir.as_path())
            .ok_or_else(|| ResourceError::NotAvailable {
                field: write.field.clone(),
                controller,
                detail: String::new(),
            })
    }
}

/// On a unified host every write goes to the one directory, if the parent
/// has handed the controller down to it.
fn v2_dir<'a>(dir: &'a Path, write: &Write) -> Result<&'a Path, ResourceError> {
    if write.controller == Controller::Unified {
        return Ok(dir);
    }
    let path = dir.join("cgroup.controllers");
    let listed = fs::read_to_string(&path).map_err(|source| ResourceError::Read {
        path: path.clone(),
        source,
    })?;
    let controller = write.controller.name();
    if listed.split_whitespace().any(|c| c == controller) {
        return Ok(dir);
    }
    Err(ResourceError::NotAvailable {
        field: write.field.clone(),
        controller,
        detail: format!(" (it is not in {})", path.display()),
    })
}

fn apply_write(dir: &Path, write: &Write) -> Result<(), ResourceError> {
    let chosen = write
        .choices
        .iter()
        .find(|(file, _)| dir.join(file).exists());
    let Some((file, content)) = chosen else {
        if write.optional {
            return Ok(());
        }
        return Err(ResourceError::MissingFile {
            field: write.field.clone(),
            value: write.value.clone(),
            path: dir.join(&write.choices[0].0),
        });
    };
    let path = dir.join(file);
    let fail = |source| ResourceError::Write {
        field: write.field.clone(),
        value: write.value.clone(),
        path: path.clone(),
        written: (*content != write.value && quoted(content) != write.value)
            .then(|| content.clone()),
        source,
    };
    // One write(2) per value: cgroup files parse each write on its own. No
    // O_CREAT: a file the kernel does not provide must not be made on a tmpfs.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(fail)?;
    file.write_all(content.as_bytes()).map_err(fail)?;
    if write.read_back {
        let actual = fs::read_to_string(&path).map_err(|source| ResourceError::Read {
            path: path.clone(),
            source,
        })?;
        if actual.trim() != content.trim() {
            return Err(ResourceError::Clamped {
                field: write.field.clone(),
                value: write.value.clone(),
                path,
                actual: actual.trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("test resources parse")
    }

    #[test]
    fn unified_keys_are_written_as_given_in_key_order() {
        let writes = unified_writes(&resources(
            r#"{"unified":{"memory.high":"1G","cgroup.max.descendants":"5"}}"#,
        ))
        .unwrap();
        let got: Vec<_> = writes
            .iter()
            .map(|w| (w.choices[0].0.as_str(), w.choices[0].1.as_str()))
            .collect();
        assert_eq!(
            got,
            [("cgroup.max.descendants", "5"), ("memory.high", "1G")]
        );
        assert!(writes.iter().all(|w| w.controller == Controller::Unified));
        assert_eq!(writes[1].field, "linux.resources.unified[\"memory.high\"]");
    }

    #[test]
    fn unified_keys_that_leave_the_directory_are_refused() {
        for key in ["../memory.max", "a/b", "..", ""] {
            let json = format!(r#"{{"unified":{{{key:?}:"1"}}}}"#);
            let err = unified_writes(&resources(&json)).unwrap_err();
            assert!(
                matches!(err, ResourceError::Invalid { .. }),
                "{key:?}: {err}"
            );
        }
    }

    #[test]
    fn page_sizes_and_names_are_checked() {
        assert!(check_page_size("hugepageLimits[0].pageSize", "2MB").is_ok());
        assert!(check_page_size("hugepageLimits[0].pageSize", "64KB").is_ok());
        for bad in ["2M", "MB", "../2MB", "2MB/x", ""] {
            assert!(
                check_page_size("hugepageLimits[0].pageSize", bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_name("network.priorities[0].name", "eth0").is_ok());
        assert!(check_name("network.priorities[0].name", "eth0 5\nlo").is_err());
    }

    #[test]
    fn memsw_goes_first_only_when_it_must() {
        // A new cgroup's limit is the page-rounded maximum.
        let fresh = 9_223_372_036_854_771_712;
        assert!(!swap_goes_first(64 << 20, fresh));
        assert!(swap_goes_first(-1, fresh));
        assert!(swap_goes_first(64 << 20, 32 << 20));
        assert!(!swap_goes_first(32 << 20, 32 << 20));
    }

    #[test]
    fn errors_name_field_value_file_and_cause() {
        let err = ResourceError::Write {
            field: "linux.resources.cpu.cpus".into(),
            value: quoted("7"),
            path: "/sys/fs/cgroup/cpuset/c1/cpuset.cpus".into(),
            written: None,
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            err.to_string(),
            "linux.resources.cpu.cpus \"7\": write /sys/fs/cgroup/cpuset/c1/cpuset.cpus: Invalid argument (os error 22)"
        );
        let converted = ResourceError::Write {
            field: "linux.resources.cpu.shares".into(),
            value: "1024".into(),
            path: "/sys/fs/cgroup/c1/cpu.weight".into(),
            written: Some("39".into()),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert!(
            converted
                .to_string()
                .contains("cpu.weight (\"39\"): Invalid argument"),
            "{converted}"
        );
        let absent = ResourceError::NotAvailable {
            field: "linux.resources.memory.limit".into(),
            controller: "memory",
            detail: String::new(),
        };
        assert_eq!(
            absent.to_string(),
            "linux.resources.memory.limit: the memory controller is not available on this host"
        );
    }
}
