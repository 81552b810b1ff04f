//! `linux.resources` as cgroup v1 files (runc's libcontainer/cgroups/fs),
//! plus `unified` keys for a hybrid host's cgroup2 directory.

use super::{
    check_name, check_page_size, invalid, quoted, unified_writes, Controller, ResourceError, Write,
};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice, LinuxWeightDevice,
};

/// Every write `resources` asks for, in the order the kernel accepts them.
pub(super) fn writes(resources: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let mut writes = Vec::new();
    if let Some(memory) = resources.memory() {
        memory_writes(memory, &mut writes)?;
    }
    if let Some(cpu) = resources.cpu() {
        cpu_writes(cpu, &mut writes);
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
        block_io_writes(block_io, &mut writes)?;
    }
    for (i, hugepage) in resources.hugepage_limits().iter().flatten().enumerate() {
        let size = hugepage.page_size();
        check_page_size(&format!("hugepageLimits[{i}].pageSize"), size)?;
        let field = format!("hugepageLimits[{i}].limit");
        let limit = hugepage.limit();
        writes.push(Write::new(
            Controller::Hugetlb,
            &field,
            limit,
            format!("hugetlb.{size}.limit_in_bytes"),
            limit,
        ));
        // Kernels 5.7+ also limit reservations, which is what the spec means
        // when they exist; older ones only limit faults.
        writes.push(
            Write::new(
                Controller::Hugetlb,
                &field,
                limit,
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                limit,
            )
            .if_present(),
        );
    }
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

fn memory_writes(memory: &LinuxMemory, writes: &mut Vec<Write>) -> Result<(), ResourceError> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    if let Some(limit) = set(memory.limit()) {
        writes.push(Write::new(
            Controller::Memory,
            "memory.limit",
            limit,
            "memory.limit_in_bytes",
            limit,
        ));
    }
    // The spec's swap is memory+swap, which is exactly what memsw limits.
    match (set(memory.swap()), memory.limit()) {
        (Some(swap), _) => writes.push(Write::new(
            Controller::Memory,
            "memory.swap",
            swap,
            "memory.memsw.limit_in_bytes",
            swap,
        )),
        // runc: an unlimited memory with no swap given lifts memsw too, on kernels that account swap.
        (None, Some(-1)) => writes.push(
            Write::new(
                Controller::Memory,
                "memory.limit",
                -1,
                "memory.memsw.limit_in_bytes",
                -1,
            )
            .if_present(),
        ),
        _ => {}
    }
    if let Some(reservation) = set(memory.reservation()) {
        writes.push(Write::new(
            Controller::Memory,
            "memory.reservation",
            reservation,
            "memory.soft_limit_in_bytes",
            reservation,
        ));
    }
    // Kernel memory limits are deprecated (5.4) and gone from newer kernels:
    // where the file is gone there is nothing left to limit.
    if let Some(kernel) = set(memory.kernel()) {
        writes.push(
            Write::new(
                Controller::Memory,
                "memory.kernel",
                kernel,
                "memory.kmem.limit_in_bytes",
                kernel,
            )
            .if_present(),
        );
    }
    if let Some(tcp) = set(memory.kernel_tcp()) {
        writes.push(
            Write::new(
                Controller::Memory,
                "memory.kernelTCP",
                tcp,
                "memory.kmem.tcp.limit_in_bytes",
                tcp,
            )
            .if_present(),
        );
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(invalid(
                "memory.swappiness",
                swappiness,
                "swappiness is 0 to 100",
            ));
        }
        writes.push(Write::new(
            Controller::Memory,
            "memory.swappiness",
            swappiness,
            "memory.swappiness",
            swappiness,
        ));
    }
    if let Some(disable) = memory.disable_oom_killer() {
        writes.push(Write::new(
            Controller::Memory,
            "memory.disableOOMKiller",
            disable,
            "memory.oom_control",
            u8::from(disable),
        ));
    }
    if let Some(hierarchy) = memory.use_hierarchy() {
        writes.push(Write::new(
            Controller::Memory,
            "memory.useHierarchy",
            hierarchy,
            "memory.use_hierarchy",
            u8::from(hierarchy),
        ));
    }
    Ok(())
}

fn cpu_writes(cpu: &LinuxCpu, writes: &mut Vec<Write>) {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        writes.push(
            Write::new(Controller::Cpu, "cpu.shares", shares, "cpu.shares", shares).read_back(),
        );
    }
    // The period first: the kernel checks quota against the period in force.
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.period",
            period,
            "cpu.cfs_period_us",
            period,
        ));
    }
    if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.quota",
            quota,
            "cpu.cfs_quota_us",
            quota,
        ));
    }
    // After the quota, which bounds it.
    if let Some(burst) = cpu.burst() {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.burst",
            burst,
            "cpu.cfs_burst_us",
            burst,
        ));
    }
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.realtimePeriod",
            period,
            "cpu.rt_period_us",
            period,
        ));
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
        writes.push(Write::new(
            Controller::Cpu,
            "cpu.realtimeRuntime",
            runtime,
            "cpu.rt_runtime_us",
            runtime,
        ));
    }
    if let Some(idle) = cpu.idle() {
        writes.push(idle_write(idle));
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
}

/// The spec requires a weight, a leaf weight or both in each entry.
pub(super) fn check_weight_device(
    i: usize,
    device: &LinuxWeightDevice,
) -> Result<(), ResourceError> {
    if device.weight().is_none() && device.leaf_weight().is_none() {
        let shown = format!("{}:{}", device.major(), device.minor());
        return Err(invalid(
            &format!("blockIO.weightDevice[{i}]"),
            quoted(&shown),
            "the spec requires weight, leafWeight or both",
        ));
    }
    Ok(())
}

fn block_io_writes(block_io: &LinuxBlockIo, writes: &mut Vec<Write>) -> Result<(), ResourceError> {
    // blkio.weight belongs to CFQ, gone since 5.0; BFQ offers blkio.bfq.weight.
    if let Some(weight) = block_io.weight().filter(|w| *w != 0) {
        writes.push(
            Write::new(
                Controller::Blkio,
                "blockIO.weight",
                weight,
                "blkio.weight",
                weight,
            )
            .or("blkio.bfq.weight", weight),
        );
    }
    if let Some(leaf) = block_io.leaf_weight().filter(|w| *w != 0) {
        writes.push(Write::new(
            Controller::Blkio,
            "blockIO.leafWeight",
            leaf,
            "blkio.leaf_weight",
            leaf,
        ));
    }
    for (i, device) in block_io.weight_device().iter().flatten().enumerate() {
        check_weight_device(i, device)?;
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight().filter(|w| *w != 0) {
            let line = format!("{major}:{minor} {weight}");
            let field = format!("blockIO.weightDevice[{i}].weight");
            writes.push(
                Write::new(
                    Controller::Blkio,
                    &field,
                    quoted(&line),
                    "blkio.weight_device",
                    &line,
                )
                .or("blkio.bfq.weight_device", &line),
            );
        }
        if let Some(leaf) = device.leaf_weight().filter(|w| *w != 0) {
            let line = format!("{major}:{minor} {leaf}");
            let field = format!("blockIO.weightDevice[{i}].leafWeight");
            writes.push(Write::new(
                Controller::Blkio,
                &field,
                quoted(&line),
                "blkio.leaf_weight_device",
                line,
            ));
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (
            "throttleReadBpsDevice",
            block_io.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            "throttleWriteBpsDevice",
            block_io.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            "throttleReadIOPSDevice",
            block_io.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            "throttleWriteIOPSDevice",
            block_io.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (name, devices, file) in throttles {
        for (i, device) in devices.iter().flatten().enumerate() {
            // A rate of 0 removes the device's limit, as the kernel reads it.
            let line = format!("{}:{} {}", device.major(), device.minor(), device.rate());
            writes.push(Write::new(
                Controller::Blkio,
                &format!("blockIO.{name}[{i}]"),
                quoted(&line),
                file,
                line,
            ));
        }
    }
    Ok(())
}

/// `rdma.max` lines, the same in v1 and v2: `<device> hca_handle=N hca_object=M`.
/// `pids.max` for `pids.limit`: negative is no limit, and 0 is a real
/// limit (config-linux.md "PIDs", spec 1.3; runc 1.4), where runc < 1.4 read
/// it as none. A config without `limit` has no `pids` here (spec::load).
pub(super) fn pids_max(limit: i64) -> String {
    if limit < 0 {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

pub(super) fn rdma_writes(resources: &LinuxResources) -> Result<Vec<Write>, ResourceError> {
    let Some(rdma) = resources.rdma() else {
        return Ok(Vec::new());
    };
    let mut devices: Vec<&String> = rdma.keys().collect();
    devices.sort();
    let mut writes = Vec::new();
    for device in devices {
        let field = format!("rdma[{device:?}]");
        check_name(&field, device)?;
        let limits = &rdma[device];
        let mut line = device.clone();
        if let Some(handles) = limits.hca_handles() {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limits.hca_objects() {
            line.push_str(&format!(" hca_object={objects}"));
        }
        if line == *device {
            return Err(invalid(
                &field,
                "{}",
                "the spec requires hcaHandles, hcaObjects or both",
            ));
        }
        writes.push(Write::new(
            Controller::Rdma,
            &field,
            quoted(&line),
            "rdma.max",
            line,
        ));
    }
    Ok(writes)
}

/// cpu.idle (5.15 and later): 0, the default, needs nothing where the file
/// is missing; 1 (SCHED_IDLE for the whole cgroup) is refused there by name,
/// as runc refuses it, rather than run the container at normal priority.
pub(super) fn idle_write(idle: i64) -> Write {
    let write = Write::new(Controller::Cpu, "cpu.idle", idle, "cpu.idle", idle);
    if idle == 0 {
        write.if_present()
    } else {
        write
    }
}

#[cfg(test)]
#[path = "v1_tests.rs"]
mod tests;
