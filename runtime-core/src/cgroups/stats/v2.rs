//! Usage counters from a unified cgroup v2 directory, mapped onto runc's v1
//! shaped fields as runc's fs2 manager maps them.

use super::{
    hugepage_sizes, parse_cpu_list, read_key_values, read_number, read_optional, BlkioEntry,
    Hugetlb, MemoryEntry, OomCounter, Stats, StatsError,
};
use std::path::Path;

pub(super) fn stats(dir: &Path) -> Result<Stats, StatsError> {
    let mut stats = Stats::default();
    let cpu = read_key_values(&dir.join("cpu.stat"))?;
    let get = |k: &str| cpu.get(k).copied().unwrap_or(0);
    stats.cpu.usage.total = get("usage_usec").saturating_mul(1000);
    stats.cpu.usage.user = get("user_usec").saturating_mul(1000);
    stats.cpu.usage.kernel = get("system_usec").saturating_mul(1000);
    stats.cpu.throttling.periods = get("nr_periods");
    stats.cpu.throttling.throttled_periods = get("nr_throttled");
    stats.cpu.throttling.throttled_time = get("throttled_usec").saturating_mul(1000);

    for (file, target) in [
        ("cpuset.cpus.effective", &mut stats.cpuset.cpus),
        ("cpuset.mems.effective", &mut stats.cpuset.mems),
    ] {
        let path = dir.join(file);
        *target = parse_cpu_list(&path, &read_optional(&path)?.unwrap_or_default())?;
    }

    let raw = read_key_values(&dir.join("memory.stat"))?;
    let events = read_key_values(&dir.join("memory.events"))?;
    let usage = read_number(&dir.join("memory.current"), u64::MAX)?;
    let limit = read_number(&dir.join("memory.max"), u64::MAX)?;
    stats.memory.usage = MemoryEntry {
        limit,
        usage,
        max: read_number(&dir.join("memory.peak"), u64::MAX)?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    // v1's memsw counts memory and swap together; runc reports v2's that way too.
    let swap_usage = read_number(&dir.join("memory.swap.current"), u64::MAX)?;
    let swap_limit = read_number(&dir.join("memory.swap.max"), u64::MAX)?;
    stats.memory.swap = MemoryEntry {
        limit: swap_limit.saturating_add(limit),
        usage: swap_usage.saturating_add(usage),
        max: 0,
        failcnt: 0,
    };
    stats.memory.cache = raw.get("file").copied().unwrap_or(0);
    stats.memory.raw = raw;

    stats.pids.current = read_number(&dir.join("pids.current"), 0)?;
    stats.pids.limit = read_number(&dir.join("pids.max"), 0)?;

    if let Some(io) = read_optional(&dir.join("io.stat"))? {
        for line in io.lines() {
            let mut fields = line.split_whitespace();
            let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
                continue;
            };
            for field in fields {
                let Some((key, value)) = field.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.parse() else { continue };
                let (list, op) = match key {
                    "rbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut stats.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut stats.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }

    if dir.join("cgroup.controllers").exists()
        && read_optional(&dir.join("cgroup.controllers"))?
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "hugetlb")
    {
        for size in hugepage_sizes() {
            let events = read_key_values(&dir.join(format!("hugetlb.{size}.events")))?;
            let entry = Hugetlb {
                usage: read_number(&dir.join(format!("hugetlb.{size}.current")), u64::MAX)?,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            stats.hugetlb.insert(size, entry);
        }
    }
    Ok(stats)
}

/// `None` when the memory controller is not enabled in the container's cgroup.
pub(super) fn oom_counter(dir: &Path) -> Result<Option<OomCounter>, StatsError> {
    let path = dir.join("memory.events");
    if read_optional(&path)?.is_none() {
        return Ok(None);
    }
    let events = read_key_values(&path)?;
    Ok(Some(OomCounter {
        kills: events.get("oom_kill").copied().unwrap_or(0),
        ooms: events.get("oom").copied().unwrap_or(0),
    }))
}
