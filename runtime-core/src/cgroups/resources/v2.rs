//! `linux.resources` as cgroup v2 files on a unified host, with runc's
//! conversions from the v1 units the spec uses (libcontainer/cgroups/fs2).

use super::v1::{check_weight_device, pids_max, rdma_writes};
use super::{
    check_name, check_page_size, invalid, no_v2_equivalent, quoted, unified_writes, Controller,
    ResourceError, Write,
};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

/// Every write `resources` asks for, in the order the kernel accepts them;
/// `unified` keys last, so they override what the structured fields set.
pub(super) fn writes(resources: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let mut writes = Vec::new();
    if let Some(memory) = resources.memory() {
        memory_writes(memory, &mut writes)?;
    }
    if let Some(cpu) = resources.cpu() {
        cpu_writes(cpu, &mut writes)?;
    }
    if let Some(pids) = resources.pids() {
        let limit = pids.limit();
        let content = pids_max(limit);
        writes.push(Write::new(
            Controller::Pids,
            "pids.limit",
            limit,
            "pids.max",
            content,
        ));
    }
    if let Some(block_io) = resources.block_io() {
        io_writes(block_io, &mut writes)?;
    }
    for (i, hugepage) in resources.hugepage_limits().iter().flatten().enumerate() {
        let size = hugepage.page_size();
        check_page_size(&format!("hugepageLimits[{i}].pageSize"), size)?;
        let field = format!("hugepageLimits[{i}].limit");
        let limit = hugepage.limit();
        let content = max_if_negative(limit);
        writes.push(Write::new(
            Controller::Hugetlb,
            &field,
            limit,
            format!("hugetlb.{size}.max"),
            &content,
        ));
        writes.push(
            Write::new(
                Controller::Hugetlb,
                &field,
                limit,
                format!("hugetlb.{size}.rsvd.max"),
                &content,
            )
            .if_present(),
        );
    }
    // cgroup v2 has no net_cls or net_prio: these fail as controllers the host lacks.
    if let Some(network) = resources.network() {
        if let Some(class_id) = network.class_id() {
            writes.push(Write::new(
                Controller::NetCls,
                "network.classID",
                class_id,
                "net_cls.classid",
                class_id,
            ));
        }
        for (i, priority) in network.priorities().iter().flatten().enumerate() {
            check_name(&format!("network.priorities[{i}].name"), priority.name())?;
            let line = format!("{} {}", priority.name(), priority.priority());
            writes.push(Write::new(
                Controller::NetPrio,
                &format!("network.priorities[{i}]"),
                quoted(&line),
                "net_prio.ifpriomap",
                line,
            ));
        }
    }
    writes.extend(rdma_writes(resources)?);
    writes.extend(unified_writes(resources)?);
    Ok(writes)
}

fn max_if_negative(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// runc's ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap,
/// memory.swap.max is swap alone. `None` leaves memory.swap.max alone.
fn swap_only(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>, &'static str> {
    let (swap, limit) = (swap.unwrap_or(0), limit.unwrap_or(0));
    // As on v1: an unlimited memory with no swap given is unlimited swap too.
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some(-1)),
        _ if limit == 0 || limit == -1 => Err("a swap limit needs a memory limit"),
        _ if limit < 0 || swap < 0 => Err("the memory limit and swap must be positive or -1"),
        _ if swap < limit => Err("swap is memory+swap, so it must be at least the memory limit"),
        _ => Ok(Some(swap - limit)),
    }
}

fn memory_writes(memory: &LinuxMemory, writes: &mut Vec<Write>) -> Result<(), ResourceError> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let swap = swap_only(memory.swap(), memory.limit())
        .map_err(|reason| invalid("memory.swap", memory.swap().unwrap_or(0), reason))?;
    if let Some(swap) = swap {
        let (field, value) = match set(memory.swap()) {
            Some(given) => ("memory.swap", given),
            None => ("memory.limit", -1),
        };
        let content = max_if_negative(swap);
        let write = Write::new(
            Controller::Memory,
            field,
            value,
            "memory.swap.max",
            &content,
        );
        // runc: a kernel without swap accounting has no memory.swap.max, and
        // then "no swap" and "unlimited swap" are already what it does.
        writes.push(if content == "max" || content == "0" {
            write.if_present()
        } else {
            write
        });
    }
    if let Some(limit) = set(memory.limit()) {
        writes.push(Write::new(
            Controller::Memory,
            "memory.limit",
            limit,
            "memory.max",
            max_if_negative(limit),
        ));
    }
    if let Some(reservation) = set(memory.reservation()) {
        writes.push(Write::new(
            Controller::Memory,
            "memory.reservation",
            reservation,
            "memory.low",
            max_if_negative(reservation),
        ));
    }
    // memory.kernel and kernelTCP: v2 charges kernel memory to memory.max,
    // with no separate file, like a v1 kernel that dropped memory.kmem.*.
    if let Some(swappiness) = memory.swappiness() {
        return Err(no_v2_equivalent("memory.swappiness", swappiness));
    }
    if memory.disable_oom_killer() == Some(true) {
        return Err(no_v2_equivalent("memory.disableOOMKiller", true));
    }
    // v2 is always hierarchical.
    if memory.use_hierarchy() == Some(false) {
        return Err(no_v2_equivalent("memory.useHierarchy", false));
    }
    Ok(())
}

/// runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] onto [1, 10000].
fn cpu_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn cpu_writes(cpu: &LinuxCpu, writes: &mut Vec<Write>) -> Result<(), ResourceError> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.shares",
            shares,
            "cpu.weight",
            cpu_weight(shares),
        ));
    }
    let quota = cpu.quota().filter(|q| *q != 0);
    let period = cpu.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        // As runc: only a period gives "max <period>", which also lifts the quota.
        let mut content = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        if let Some(p) = period {
            content.push_str(&format!(" {p}"));
        }
        let field = if quota.is_some() {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        writes.push(Write::new(
            Controller::Cpu,
            field,
            quoted(&content),
            "cpu.max",
            &content,
        ));
    }
    if let Some(burst) = cpu.burst() {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.burst",
            burst,
            "cpu.max.burst",
            burst,
        ));
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
        return Err(no_v2_equivalent("cpu.realtimeRuntime", runtime));
    }
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        return Err(no_v2_equivalent("cpu.realtimePeriod", period));
    }
    if let Some(idle) = cpu.idle() {
        writes.push(super::v1::idle_write(idle));
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
        writes.push(Write::new(
            Controller::Cpuset,
            "cpu.cpus",
            quoted(cpus),
            "cpuset.cpus",
            cpus,
        ));
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
        writes.push(Write::new(
            Controller::Cpuset,
            "cpu.mems",
            quoted(mems),
            "cpuset.mems",
            mems,
        ));
    }
    Ok(())
}

/// runc's ConvertBlkIOToIOWeightValue: [10, 1000] onto [1, 10000].
fn io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

fn io_writes(block_io: &LinuxBlockIo, writes: &mut Vec<Write>) -> Result<(), ResourceError> {
    // BFQ takes the v1 scale as is, as runc prefers; io.weight (iocost) needs the conversion.
    if let Some(weight) = block_io.weight().filter(|w| *w != 0) {
        writes.push(
            Write::new(
                Controller::Io,
                "blockIO.weight",
                weight,
                "io.bfq.weight",
                weight,
            )
            .or("io.weight", io_weight(weight)),
        );
    }
    if let Some(leaf) = block_io.leaf_weight().filter(|w| *w != 0) {
        return Err(no_v2_equivalent("blockIO.leafWeight", leaf));
    }
    for (i, device) in block_io.weight_device().iter().flatten().enumerate() {
        check_weight_device(i, device)?;
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight().filter(|w| *w != 0) {
            let line = format!("{major}:{minor} {weight}");
            let field = format!("blockIO.weightDevice[{i}].weight");
            let converted = format!("{major}:{minor} {}", io_weight(weight));
            writes.push(
                Write::new(
                    Controller::Io,
                    &field,
                    quoted(&line),
                    "io.bfq.weight",
                    &line,
                )
                .or("io.weight", converted),
            );
        }
        if let Some(leaf) = device.leaf_weight().filter(|w| *w != 0) {
            return Err(no_v2_equivalent(
                &format!("blockIO.weightDevice[{i}].leafWeight"),
                leaf,
            ));
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (
            "throttleReadBpsDevice",
            block_io.throttle_read_bps_device(),
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            block_io.throttle_write_bps_device(),
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            block_io.throttle_read_iops_device(),
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            block_io.throttle_write_iops_device(),
            "wiops",
        ),
    ];
    for (name, devices, key) in throttles {
        for (i, device) in devices.iter().flatten().enumerate() {
            let (major, minor, rate) = (device.major(), device.minor(), device.rate());
            // v1 reads a rate of 0 as "no limit"; v2 spells that "max".
            let limit = if rate == 0 {
                "max".to_string()
            } else {
                rate.to_string()
            };
            let shown = format!("{major}:{minor} {rate}");
            writes.push(Write::new(
                Controller::Io,
                &format!("blockIO.{name}[{i}]"),
                quoted(&shown),
                "io.max",
                format!("{major}:{minor} {key}={limit}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
