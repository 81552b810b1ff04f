//! The library's cgroup statistics in cgroup v2's form
//! (`io.containerd.cgroups.v2.Metrics`). The pinned protocol crate has no
//! generated type for it, so the message is written here in protobuf's wire
//! format, with the field numbers of containerd's cgroup2 `metrics.proto`
//! (its interface: a decoder ignores what it does not know, and proto3
//! leaves zeros out). containerd's own decoder reads it back in the
//! `metrics_in_v2_form_decode_in_containerd` test (`ctr task metrics`).
//!
//! The library reads a v2 cgroup into runc's v1-shaped `Stats` (as runc's
//! fs2 manager does): CPU times in nanoseconds, swap counted with memory.
//! This undoes those steps; memory.stat's lines are kept by their kernel
//! names in `memory.raw`.

use berth::Stats;
use containerd_shim as shim;
use shim::protos::protobuf::well_known_types::any::Any;
use shim::protos::protobuf::CodedOutputStream;

const TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";

/// memory.stat's lines in the order of `MemoryStat`'s fields 1 to 31.
const MEMORY_STAT: [&str; 31] = [
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// The metrics of `stats`, packed for the StatsResponse.
pub fn to_any(stats: &Stats) -> Any {
    Any {
        type_url: TYPE_URL.to_string(),
        value: metrics(stats).0,
        ..Default::default()
    }
}

/// One message being written (with the protobuf crate's encoder): proto3
/// fields, zeros left out.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn write(
        mut self,
        put: impl FnOnce(&mut CodedOutputStream) -> shim::protos::protobuf::Result<()>,
    ) -> Self {
        let mut out = CodedOutputStream::vec(&mut self.0);
        // Into a Vec, writing cannot fail.
        let _ = put(&mut out).and_then(|()| out.flush());
        drop(out);
        self
    }

    fn uint64(self, field: u32, value: u64) -> Self {
        if value == 0 {
            return self;
        }
        self.write(|out| out.write_uint64(field, value))
    }

    fn bytes(self, field: u32, bytes: &[u8]) -> Self {
        self.write(|out| out.write_bytes(field, bytes))
    }

    fn message(self, field: u32, message: Message) -> Self {
        self.bytes(field, &message.0)
    }
}

fn metrics(stats: &Stats) -> Message {
    let mut metrics = Message::default()
        .message(1, pids(stats))
        .message(2, cpu(stats))
        .message(4, memory(stats))
        .message(6, io(stats));
    for (pagesize, h) in &stats.hugetlb {
        metrics = metrics.message(
            7,
            Message::default()
                .uint64(1, h.usage)
                .uint64(2, h.max)
                .bytes(3, pagesize.as_bytes())
                .uint64(4, h.failcnt),
        );
    }
    metrics
}

fn pids(stats: &Stats) -> Message {
    Message::default()
        .uint64(1, stats.pids.current)
        .uint64(2, stats.pids.limit)
}

fn cpu(stats: &Stats) -> Message {
    let usec = |nanoseconds: u64| nanoseconds / 1000;
    let c = &stats.cpu;
    Message::default()
        .uint64(1, usec(c.usage.total))
        .uint64(2, usec(c.usage.user))
        .uint64(3, usec(c.usage.kernel))
        .uint64(4, c.throttling.periods)
        .uint64(5, c.throttling.throttled_periods)
        .uint64(6, usec(c.throttling.throttled_time))
}

fn memory(stats: &Stats) -> Message {
    let m = &stats.memory;
    let mut message = Message::default();
    for (field, name) in (1..).zip(MEMORY_STAT) {
        message = message.uint64(field, m.raw.get(name).copied().unwrap_or(0));
    }
    // The library's swap entry is memory plus swap, as v1's memsw; an
    // unlimited one stays unlimited.
    let swap_usage = m.swap.usage.saturating_sub(m.usage.usage);
    let swap_limit = match m.swap.limit {
        u64::MAX => u64::MAX,
        limit => limit.saturating_sub(m.usage.limit),
    };
    message
        .uint64(32, m.usage.usage)
        .uint64(33, m.usage.limit)
        .uint64(34, swap_usage)
        .uint64(35, swap_limit)
        .uint64(36, m.usage.max)
}

/// io.stat's counters by device; the library keeps them as v1's
/// per-operation entries.
fn io(stats: &Stats) -> Message {
    let mut devices: std::collections::BTreeMap<(u64, u64), [u64; 4]> = Default::default();
    for (list, read, write) in [
        (&stats.blkio.io_service_bytes_recursive, 0, 1),
        (&stats.blkio.io_serviced_recursive, 2, 3),
    ] {
        for entry in list {
            let counters = devices.entry((entry.major, entry.minor)).or_default();
            match entry.op.as_str() {
                "Read" => counters[read] += entry.value,
                "Write" => counters[write] += entry.value,
                _ => {}
            }
        }
    }
    let mut message = Message::default();
    for ((major, minor), [rbytes, wbytes, rios, wios]) in devices {
        message = message.message(
            1,
            Message::default()
                .uint64(1, major)
                .uint64(2, minor)
                .uint64(3, rbytes)
                .uint64(4, wbytes)
                .uint64(5, rios)
                .uint64(6, wios),
        );
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_are_protobufs() {
        // The protobuf documentation's own example: field 1, varint 150.
        assert_eq!(Message::default().uint64(1, 150).0, [0x08, 0x96, 0x01]);
        assert_eq!(Message::default().uint64(1, 0).0, [] as [u8; 0]);
        let nested = Message::default().message(4, Message::default().uint64(32, 1));
        // field 4, length-delimited, 3 bytes: field 32 (key 0x100 = 0x80 0x02), value 1.
        assert_eq!(nested.0, [0x22, 0x03, 0x80, 0x02, 0x01]);
    }

    #[test]
    fn swap_is_taken_out_of_memory_plus_swap() {
        let mut stats = Stats::default();
        stats.memory.usage.usage = 100;
        stats.memory.usage.limit = 1000;
        stats.memory.swap.usage = 130;
        stats.memory.swap.limit = u64::MAX;
        let encoded = memory(&stats).0;
        let expected = Message::default()
            .uint64(32, 100)
            .uint64(33, 1000)
            .uint64(34, 30)
            .uint64(35, u64::MAX)
            .0;
        assert_eq!(encoded, expected);
    }
}
