//! Usage counters from cgroup v1 files (runc's libcontainer/cgroups/fs).

use super::{
    hugepage_sizes, parse_cpu_list, read_key_values, read_number, read_optional, Blkio, BlkioEntry,
    Cpu, CpuSet, Hugetlb, Memory, MemoryEntry, OomCounter, Pids, Stats, StatsError,
};
use std::path::Path;

/// A v1 "unlimited" reads as the page-rounded maximum; keep what the kernel says.
const UNLIMITED: u64 = u64::MAX;

pub(super) fn stats<'a>(dir_of: impl Fn(&str) -> Option<&'a Path>) -> Result<Stats, StatsError> {
    let mut stats = Stats::default();
    if let Some(dir) = dir_of("cpuacct") {
        cpuacct(dir, &mut stats.cpu)?;
    }
    if let Some(dir) = dir_of("cpu") {
        let stat = read_key_values(&dir.join("cpu.stat"))?;
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        stats.cpu.throttling.periods = get("nr_periods");
        stats.cpu.throttling.throttled_periods = get("nr_throttled");
        stats.cpu.throttling.throttled_time = get("throttled_time");
    }
    if let Some(dir) = dir_of("cpuset") {
        stats.cpuset = cpuset(dir)?;
    }
    if let Some(dir) = dir_of("memory") {
        stats.memory = memory(dir)?;
    }
    if let Some(dir) = dir_of("pids") {
        stats.pids = Pids {
            current: read_number(&dir.join("pids.current"), 0)?,
            limit: read_number(&dir.join("pids.max"), 0)?,
        };
    }
    if let Some(dir) = dir_of("blkio") {
        stats.blkio = blkio(dir)?;
    }
    if let Some(dir) = dir_of("hugetlb") {
        for size in hugepage_sizes() {
            let file = |name: &str| dir.join(format!("hugetlb.{size}.{name}"));
            let entry = Hugetlb {
                usage: read_number(&file("usage_in_bytes"), UNLIMITED)?,
                max: read_number(&file("max_usage_in_bytes"), UNLIMITED)?,
                failcnt: read_number(&file("failcnt"), UNLIMITED)?,
            };
            stats.hugetlb.insert(size, entry);
        }
    }
    Ok(stats)
}

fn cpuacct(dir: &Path, cpu: &mut Cpu) -> Result<(), StatsError> {
    cpu.usage.total = read_number(&dir.join("cpuacct.usage"), 0)?;
    let percpu = read_optional(&dir.join("cpuacct.usage_percpu"))?.unwrap_or_default();
    cpu.usage.percpu = percpu
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    // "cpu user system" then one line per cpu, in nanoseconds.
    if let Some(all) = read_optional(&dir.join("cpuacct.usage_all"))? {
        for line in all.lines().skip(1) {
            let columns: Vec<u64> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            if let [_, user, system] = columns[..] {
                cpu.usage.percpu_user.push(user);
                cpu.usage.percpu_kernel.push(system);
            }
        }
    }
    // cpuacct.stat counts clock ticks.
    // SAFETY: sysconf only reads a constant of the system.
    let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(100);
    let stat = read_key_values(&dir.join("cpuacct.stat"))?;
    let ns = |key: &str| {
        stat.get(key)
            .copied()
            .unwrap_or(0)
            .saturating_mul(1_000_000_000 / ticks_per_second)
    };
    cpu.usage.user = ns("user");
    cpu.usage.kernel = ns("system");
    Ok(())
}

fn cpuset(dir: &Path) -> Result<CpuSet, StatsError> {
    let list = |name: &str| -> Result<Vec<u16>, StatsError> {
        let path = dir.join(name);
        parse_cpu_list(&path, &read_optional(&path)?.unwrap_or_default())
    };
    let flag = |name: &str| read_number(&dir.join(format!("cpuset.{name}")), 0);
    let relax_path = dir.join("cpuset.sched_relax_domain_level");
    let relax = read_optional(&relax_path)?.unwrap_or_default();
    let relax = relax.trim();
    Ok(CpuSet {
        cpus: list("cpuset.cpus")?,
        cpu_exclusive: flag("cpu_exclusive")?,
        mems: list("cpuset.mems")?,
        mem_hardwall: flag("mem_hardwall")?,
        mem_exclusive: flag("mem_exclusive")?,
        memory_migrate: flag("memory_migrate")?,
        memory_spread_page: flag("memory_spread_page")?,
        memory_spread_slab: flag("memory_spread_slab")?,
        memory_pressure: flag("memory_pressure")?,
        sched_load_balance: flag("sched_load_balance")?,
        sched_relax_domain_level: if relax.is_empty() {
            0
        } else {
            relax.parse().map_err(|e| StatsError::Parse {
                path: relax_path.clone(),
                detail: format!("{relax:?}: {e}"),
            })?
        },
    })
}

fn memory(dir: &Path) -> Result<Memory, StatsError> {
    let entry = |prefix: &str| -> Result<MemoryEntry, StatsError> {
        let file = |name: &str| dir.join(format!("{prefix}.{name}"));
        Ok(MemoryEntry {
            limit: read_number(&file("limit_in_bytes"), UNLIMITED)?,
            usage: read_number(&file("usage_in_bytes"), UNLIMITED)?,
            max: read_number(&file("max_usage_in_bytes"), UNLIMITED)?,
            failcnt: read_number(&file("failcnt"), UNLIMITED)?,
        })
    };
    let raw = read_key_values(&dir.join("memory.stat"))?;
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: entry("memory")?,
        swap: entry("memory.memsw")?,
        kernel: entry("memory.kmem")?,
        kernel_tcp: entry("memory.kmem.tcp")?,
        raw,
    })
}

/// runc reads the CFQ/BFQ scheduler's files and falls back to the throttle
/// ones, which every kernel has.
fn blkio(dir: &Path) -> Result<Blkio, StatsError> {
    let read = |name: &str| -> Result<Vec<BlkioEntry>, StatsError> {
        for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
            let entries = parse_blkio(
                &read_optional(&dir.join(format!("{prefix}{name}")))?.unwrap_or_default(),
            );
            if !entries.is_empty() {
                return Ok(entries);
            }
        }
        Ok(Vec::new())
    };
    Ok(Blkio {
        io_service_bytes_recursive: read("io_service_bytes_recursive")?,
        io_serviced_recursive: read("io_serviced_recursive")?,
        io_queued_recursive: read("io_queued_recursive")?,
        io_service_time_recursive: read("io_service_time_recursive")?,
        io_wait_time_recursive: read("io_wait_time_recursive")?,
        io_merged_recursive: read("io_merged_recursive")?,
        io_time_recursive: read("time_recursive")?,
        sectors_recursive: read("sectors_recursive")?,
    })
}

/// `MAJ:MIN [Op] value` lines; the closing `Total` line is not a device.
fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (device, op, value) = match fields[..] {
                [device, op, value] => (device, op, value),
                [device, value] => (device, "", value),
                _ => return None,
            };
            let (major, minor) = device.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

pub(super) fn oom_counter(dir: &Path) -> Result<OomCounter, StatsError> {
    let control = read_key_values(&dir.join("memory.oom_control"))?;
    Ok(OomCounter {
        kills: control.get("oom_kill").copied().unwrap_or(0),
        ooms: control.get("under_oom").copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_skip_the_total() {
        let entries = parse_blkio("8:0 Read 4096\n8:0 Write 0\n253:1 7\nTotal 4096\n");
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(
            entries[2],
            BlkioEntry {
                major: 253,
                minor: 1,
                op: String::new(),
                value: 7
            }
        );
    }
}
