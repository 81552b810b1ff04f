//! The library's cgroup statistics in cgroup v1's form
//! (`io.containerd.cgroups.v1.Metrics`), with containerd's generated type.

use berth::Stats;
use containerd_shim as shim;
use shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use shim::protos::protobuf::well_known_types::any::Any;
use shim::protos::protobuf::Message;

/// The type URL containerd decodes them by. A constant, not the crate's
/// `convert_to_any`, which asks protobuf reflection and so builds every
/// descriptor of the protocol at the first Stats (events.rs says what that
/// costs); the unit test checks it against reflection.
const TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

/// The metrics of `stats`, packed for the StatsResponse.
pub fn to_any(stats: &Stats) -> shim::Result<Any> {
    Ok(Any {
        type_url: TYPE_URL.to_string(),
        value: metrics(stats).write_to_bytes()?,
        ..Default::default()
    })
}

fn metrics(stats: &Stats) -> Metrics {
    Metrics {
        hugetlb: stats
            .hugetlb
            .iter()
            .map(|(pagesize, h)| HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: pagesize.clone(),
                ..Default::default()
            })
            .collect(),
        pids: Some(PidsStat {
            current: stats.pids.current,
            limit: stats.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(CPUStat {
            usage: Some(CPUUsage {
                total: stats.cpu.usage.total,
                kernel: stats.cpu.usage.kernel,
                user: stats.cpu.usage.user,
                per_cpu: stats.cpu.usage.percpu.clone(),
                ..Default::default()
            })
            .into(),
            throttling: Some(Throttle {
                periods: stats.cpu.throttling.periods,
                throttled_periods: stats.cpu.throttling.throttled_periods,
                throttled_time: stats.cpu.throttling.throttled_time,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into(),
        memory: Some(memory(stats)).into(),
        blkio: Some(blkio(stats)).into(),
        ..Default::default()
    }
}

// The library's field types (berth::cgroups' Memory, MemoryEntry, Blkio,
// BlkioEntry) are public but not exported, so they cannot be named here:
// the conversions take the whole `Stats` and go through macros.
macro_rules! entry {
    ($e:expr) => {
        MemoryEntry {
            limit: $e.limit,
            usage: $e.usage,
            max: $e.max,
            failcnt: $e.failcnt,
            ..Default::default()
        }
    };
}

/// memory.stat's lines by the kernel's names, as containerd's cgroups
/// library reads them.
fn memory(stats: &Stats) -> MemoryStat {
    let m = &stats.memory;
    let raw = |name: &str| m.raw.get(name).copied().unwrap_or(0);
    MemoryStat {
        cache: m.cache,
        rss: raw("rss"),
        rss_huge: raw("rss_huge"),
        mapped_file: raw("mapped_file"),
        dirty: raw("dirty"),
        writeback: raw("writeback"),
        pg_pg_in: raw("pgpgin"),
        pg_pg_out: raw("pgpgout"),
        pg_fault: raw("pgfault"),
        pg_maj_fault: raw("pgmajfault"),
        inactive_anon: raw("inactive_anon"),
        active_anon: raw("active_anon"),
        inactive_file: raw("inactive_file"),
        active_file: raw("active_file"),
        unevictable: raw("unevictable"),
        hierarchical_memory_limit: raw("hierarchical_memory_limit"),
        hierarchical_swap_limit: raw("hierarchical_memsw_limit"),
        total_cache: raw("total_cache"),
        total_rss: raw("total_rss"),
        total_rss_huge: raw("total_rss_huge"),
        total_mapped_file: raw("total_mapped_file"),
        total_dirty: raw("total_dirty"),
        total_writeback: raw("total_writeback"),
        total_pg_pg_in: raw("total_pgpgin"),
        total_pg_pg_out: raw("total_pgpgout"),
        total_pg_fault: raw("total_pgfault"),
        total_pg_maj_fault: raw("total_pgmajfault"),
        total_inactive_anon: raw("total_inactive_anon"),
        total_active_anon: raw("total_active_anon"),
        total_inactive_file: raw("total_inactive_file"),
        total_active_file: raw("total_active_file"),
        total_unevictable: raw("total_unevictable"),
        usage: Some(entry!(m.usage)).into(),
        swap: Some(entry!(m.swap)).into(),
        kernel: Some(entry!(m.kernel)).into(),
        kernel_tcp: Some(entry!(m.kernel_tcp)).into(),
        ..Default::default()
    }
}

fn blkio(stats: &Stats) -> BlkIOStat {
    let b = &stats.blkio;
    macro_rules! entries {
        ($list:expr) => {
            $list
                .iter()
                .map(|e| BlkIOEntry {
                    op: e.op.clone(),
                    major: e.major,
                    minor: e.minor,
                    value: e.value,
                    ..Default::default()
                })
                .collect()
        };
    }
    BlkIOStat {
        io_service_bytes_recursive: entries!(b.io_service_bytes_recursive),
        io_serviced_recursive: entries!(b.io_serviced_recursive),
        io_queued_recursive: entries!(b.io_queued_recursive),
        io_service_time_recursive: entries!(b.io_service_time_recursive),
        io_wait_time_recursive: entries!(b.io_wait_time_recursive),
        io_merged_recursive: entries!(b.io_merged_recursive),
        io_time_recursive: entries!(b.io_time_recursive),
        sectors_recursive: entries!(b.sectors_recursive),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim::protos::protobuf::MessageFull;

    #[test]
    fn type_url_is_the_one_reflection_gives() {
        assert_eq!(TYPE_URL, Metrics::descriptor().full_name());
    }
}
