//! The container's resource usage, read from its cgroup files, in the shape
//! of runc's `events` JSON (runc's `types.Stats`): field names, order and
//! which fields vanish when zero all match, since tools parse that output.
//!
//! A hybrid host is read like a v1 host (its cgroup2 mount holds no
//! controller Berth sets limits in), as runc's fs manager does.

mod v1;
mod v2;

use super::Cgroup;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("parse {}: {detail}", .path.display())]
    Parse { path: PathBuf, detail: String },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// By page size ("2MB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Berth sets no intelRdt (it is refused at create), so this stays empty.
    pub intel_rdt: IntelRdt,
    /// runc never fills this in for `events`: always null.
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, as v1's memsw counts it.
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat, as the kernel names its lines.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntelRdt {}

/// How often the memory cgroup ran out: `events` reports each increase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomCounter {
    /// Processes the OOM killer killed in the cgroup.
    pub kills: u64,
    /// v1: the cgroup is out of memory right now (with the OOM killer disabled
    /// nothing is killed, tasks hang instead); v2: how many times it hit its limit.
    pub ooms: u64,
}

impl Cgroup {
    /// The v1 hierarchy directory that holds `controller` (by name, as in
    /// `cpu,cpuacct`, or by its files).
    pub(super) fn v1_controller_dir(&self, controller: &str) -> Option<&Path> {
        let prefix = format!("{controller}.");
        self.dirs
            .iter()
            .filter(|(_, dir)| !dir.join("cgroup.controllers").exists())
            .find(|(name, dir)| {
                name.split(',').any(|c| c == controller)
                    || fs::read_dir(dir).is_ok_and(|entries| {
                        entries
                            .flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    })
            })
            .map(|(_, dir)| dir.as_path())
    }

    /// Every counter runc's `events` reports. Controllers the host lacks read as zero.
    pub fn stats(&self) -> Result<Stats, StatsError> {
        match self.unified_only_dir() {
            Some(dir) => v2::stats(dir),
            None => v1::stats(|controller| self.v1_controller_dir(controller)),
        }
    }

    /// The memory cgroup's OOM counters; `None` without a memory controller.
    pub fn oom_counter(&self) -> Result<Option<OomCounter>, StatsError> {
        match self.unified_only_dir() {
            Some(dir) => v2::oom_counter(dir),
            None => self
                .v1_controller_dir("memory")
                .map(v1::oom_counter)
                .transpose(),
        }
    }
}

/// A file's content; a file the kernel does not provide reads as `None`.
fn read_optional(path: &Path) -> Result<Option<String>, StatsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        // ENODEV/EOPNOTSUPP: some knobs exist but cannot be read on this kernel.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EOPNOTSUPP)) =>
        {
            Ok(None)
        }
        Err(source) => Err(StatsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A file holding one number; "max" (v2's unlimited) reads as `max`. Absent: 0.
fn read_number(path: &Path, max: u64) -> Result<u64, StatsError> {
    let Some(text) = read_optional(path)? else {
        return Ok(0);
    };
    let text = text.trim();
    if text == "max" {
        return Ok(max);
    }
    text.parse().map_err(|e| StatsError::Parse {
        path: path.to_path_buf(),
        detail: format!("{text:?}: {e}"),
    })
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...). Absent: empty.
fn read_key_values(path: &Path) -> Result<BTreeMap<String, u64>, StatsError> {
    let Some(text) = read_optional(path)? else {
        return Ok(BTreeMap::new());
    };
    Ok(parse_key_values(&text))
}

fn parse_key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// A cpuset list ("0-3,8") as the numbers it names.
fn parse_cpu_list(path: &Path, text: &str) -> Result<Vec<u16>, StatsError> {
    let bad = |detail: String| StatsError::Parse {
        path: path.to_path_buf(),
        detail,
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (start, end) = part.split_once('-').unwrap_or((part, part));
        let start: u16 = start.parse().map_err(|e| bad(format!("{part:?}: {e}")))?;
        let end: u16 = end.parse().map_err(|e| bad(format!("{part:?}: {e}")))?;
        if end < start {
            return Err(bad(format!("{part:?}: the range ends before it starts")));
        }
        out.extend(start..=end);
    }
    Ok(out)
}

/// Hugepage sizes as the cgroup files name them ("2MB", "1GB"), from sysfs.
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, page_size_name(kb)))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, name)| name).collect()
}

fn page_size_name(kb: u64) -> String {
    match kb {
        kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
        kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
        kb => format!("{kb}KB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(
            parse_cpu_list(Path::new("x"), "0-2,5\n").unwrap(),
            [0, 1, 2, 5]
        );
        assert_eq!(
            parse_cpu_list(Path::new("x"), "\n").unwrap(),
            Vec::<u16>::new()
        );
        assert!(parse_cpu_list(Path::new("x"), "3-1").is_err());
        assert!(parse_cpu_list(Path::new("x"), "a").is_err());
    }

    #[test]
    fn page_sizes_are_named_as_the_cgroup_files_are() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1 << 20), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn empty_stats_serialize_as_runc_does() {
        let json = serde_json::to_value(Stats::default()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 8);
        assert_eq!(
            json["cpu"],
            serde_json::json!({"usage": {"kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(
            json["memory"]["kernelTCP"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(json["pids"], serde_json::json!({}));
        assert_eq!(json["network_interfaces"], serde_json::Value::Null);
    }
}
