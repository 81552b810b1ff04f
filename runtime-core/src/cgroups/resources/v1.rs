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
    // cpu.idle came in 5.15; it is a scheduling hint, not a limit.
    if let Some(idle) = cpu.idle() {
        writes.push(Write::new(Controller::Cpu, "cpu.idle", idle, "cpu.idle", idle).if_present());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writes_for(json: &str) -> Vec<Write> {
        let resources: LinuxResources = serde_json::from_str(json).expect("test resources parse");
        writes(&resources).expect("valid resources map")
    }

    /// (controller, file, content, field) of each write's first choice.
    fn table(writes: &[Write]) -> Vec<(Controller, &str, &str, &str)> {
        writes
            .iter()
            .map(|w| {
                (
                    w.controller,
                    w.choices[0].0.as_str(),
                    w.choices[0].1.as_str(),
                    w.field.as_str(),
                )
            })
            .collect()
    }

    fn files(json: &str) -> Vec<(String, String)> {
        writes_for(json)
            .iter()
            .map(|w| w.choices[0].clone())
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn nothing_set_writes_nothing() {
        assert!(writes_for("{}").is_empty());
        assert!(writes_for(r#"{"memory":{},"cpu":{},"blockIO":{},"network":{},"hugepageLimits":[],"rdma":{},"unified":{}}"#).is_empty());
        assert!(writes_for(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).is_empty());
    }

    #[test]
    fn every_memory_field_has_its_file() {
        let w = writes_for(
            r#"{"memory":{"limit":33554432,"reservation":16777216,"swap":67108864,"kernel":1048576,"kernelTCP":524288,
                "swappiness":10,"disableOOMKiller":true,"useHierarchy":true}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Memory,
                    "memory.limit_in_bytes",
                    "33554432",
                    "linux.resources.memory.limit"
                ),
                (
                    Controller::Memory,
                    "memory.memsw.limit_in_bytes",
                    "67108864",
                    "linux.resources.memory.swap"
                ),
                (
                    Controller::Memory,
                    "memory.soft_limit_in_bytes",
                    "16777216",
                    "linux.resources.memory.reservation"
                ),
                (
                    Controller::Memory,
                    "memory.kmem.limit_in_bytes",
                    "1048576",
                    "linux.resources.memory.kernel"
                ),
                (
                    Controller::Memory,
                    "memory.kmem.tcp.limit_in_bytes",
                    "524288",
                    "linux.resources.memory.kernelTCP"
                ),
                (
                    Controller::Memory,
                    "memory.swappiness",
                    "10",
                    "linux.resources.memory.swappiness"
                ),
                (
                    Controller::Memory,
                    "memory.oom_control",
                    "1",
                    "linux.resources.memory.disableOOMKiller"
                ),
                (
                    Controller::Memory,
                    "memory.use_hierarchy",
                    "1",
                    "linux.resources.memory.useHierarchy"
                ),
            ]
        );
        let optional: Vec<&str> = w
            .iter()
            .filter(|w| w.optional)
            .map(|w| w.choices[0].0.as_str())
            .collect();
        assert_eq!(
            optional,
            [
                "memory.kmem.limit_in_bytes",
                "memory.kmem.tcp.limit_in_bytes"
            ]
        );
        assert!(w.iter().all(|w| w.choices.len() == 1 && !w.read_back));
    }

    #[test]
    fn memory_minus_one_is_unlimited_and_lifts_memsw_where_it_exists() {
        let w = writes_for(r#"{"memory":{"limit":-1}}"#);
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Memory,
                    "memory.limit_in_bytes",
                    "-1",
                    "linux.resources.memory.limit"
                ),
                (
                    Controller::Memory,
                    "memory.memsw.limit_in_bytes",
                    "-1",
                    "linux.resources.memory.limit"
                ),
            ]
        );
        assert!(!w[0].optional && w[1].optional);
        assert_eq!(
            files(r#"{"memory":{"limit":-1,"swap":-1}}"#),
            pairs(&[
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1")
            ])
        );
        assert_eq!(
            files(r#"{"memory":{"reservation":-1}}"#),
            pairs(&[("memory.soft_limit_in_bytes", "-1")])
        );
    }

    #[test]
    fn memory_zero_is_unset_as_in_runc_and_false_flags_are_written() {
        assert!(writes_for(
            r#"{"memory":{"limit":0,"reservation":0,"swap":0,"kernel":0,"kernelTCP":0}}"#
        )
        .is_empty());
        assert_eq!(
            files(r#"{"memory":{"disableOOMKiller":false,"useHierarchy":false,"swappiness":0}}"#),
            pairs(&[
                ("memory.swappiness", "0"),
                ("memory.oom_control", "0"),
                ("memory.use_hierarchy", "0")
            ])
        );
    }

    #[test]
    fn swappiness_above_100_is_refused() {
        let resources: LinuxResources =
            serde_json::from_str(r#"{"memory":{"swappiness":101}}"#).unwrap();
        let err = writes(&resources).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.resources.memory.swappiness 101: swappiness is 0 to 100"
        );
    }

    #[test]
    fn every_cpu_field_has_its_file_period_before_quota() {
        let w = writes_for(
            r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":10000,"realtimeRuntime":950,"realtimePeriod":1000,
                "cpus":"0-1","mems":"0","idle":1}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Cpu,
                    "cpu.shares",
                    "512",
                    "linux.resources.cpu.shares"
                ),
                (
                    Controller::Cpu,
                    "cpu.cfs_period_us",
                    "100000",
                    "linux.resources.cpu.period"
                ),
                (
                    Controller::Cpu,
                    "cpu.cfs_quota_us",
                    "50000",
                    "linux.resources.cpu.quota"
                ),
                (
                    Controller::Cpu,
                    "cpu.cfs_burst_us",
                    "10000",
                    "linux.resources.cpu.burst"
                ),
                (
                    Controller::Cpu,
                    "cpu.rt_period_us",
                    "1000",
                    "linux.resources.cpu.realtimePeriod"
                ),
                (
                    Controller::Cpu,
                    "cpu.rt_runtime_us",
                    "950",
                    "linux.resources.cpu.realtimeRuntime"
                ),
                (Controller::Cpu, "cpu.idle", "1", "linux.resources.cpu.idle"),
                (
                    Controller::Cpuset,
                    "cpuset.cpus",
                    "0-1",
                    "linux.resources.cpu.cpus"
                ),
                (
                    Controller::Cpuset,
                    "cpuset.mems",
                    "0",
                    "linux.resources.cpu.mems"
                ),
            ]
        );
        assert!(w[0].read_back, "the kernel clamps cpu.shares silently");
        assert!(w
            .iter()
            .filter(|w| w.optional)
            .all(|w| w.choices[0].0 == "cpu.idle"));
        assert_eq!(w[7].value, "\"0-1\"");
    }

    #[test]
    fn cpu_minus_one_and_zero() {
        assert_eq!(
            files(r#"{"cpu":{"quota":-1}}"#),
            pairs(&[("cpu.cfs_quota_us", "-1")])
        );
        assert_eq!(
            files(r#"{"cpu":{"realtimeRuntime":-1}}"#),
            pairs(&[("cpu.rt_runtime_us", "-1")])
        );
        assert!(writes_for(r#"{"cpu":{"shares":0,"quota":0,"period":0,"realtimeRuntime":0,"realtimePeriod":0,"cpus":"","mems":""}}"#).is_empty());
    }

    #[test]
    fn pids_limit_negative_is_max_and_zero_is_a_limit() {
        assert_eq!(
            files(r#"{"pids":{"limit":10}}"#),
            pairs(&[("pids.max", "10")])
        );
        assert_eq!(
            files(r#"{"pids":{"limit":-1}}"#),
            pairs(&[("pids.max", "max")])
        );
        assert_eq!(
            files(r#"{"pids":{"limit":0}}"#),
            pairs(&[("pids.max", "0")])
        );
        assert_eq!(
            writes_for(r#"{"pids":{"limit":10}}"#)[0].controller,
            Controller::Pids
        );
    }

    #[test]
    fn every_block_io_field_has_its_file() {
        let w = writes_for(
            r#"{"blockIO":{"weight":500,"leafWeight":300,
                "weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200},{"major":8,"minor":16,"weight":0}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":2097152}],
                "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100},{"major":8,"minor":16,"rate":0}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":200}]}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Blkio,
                    "blkio.weight",
                    "500",
                    "linux.resources.blockIO.weight"
                ),
                (
                    Controller::Blkio,
                    "blkio.leaf_weight",
                    "300",
                    "linux.resources.blockIO.leafWeight"
                ),
                (
                    Controller::Blkio,
                    "blkio.weight_device",
                    "8:0 600",
                    "linux.resources.blockIO.weightDevice[0].weight"
                ),
                (
                    Controller::Blkio,
                    "blkio.leaf_weight_device",
                    "8:0 200",
                    "linux.resources.blockIO.weightDevice[0].leafWeight"
                ),
                (
                    Controller::Blkio,
                    "blkio.throttle.read_bps_device",
                    "8:0 1048576",
                    "linux.resources.blockIO.throttleReadBpsDevice[0]"
                ),
                (
                    Controller::Blkio,
                    "blkio.throttle.write_bps_device",
                    "8:0 2097152",
                    "linux.resources.blockIO.throttleWriteBpsDevice[0]"
                ),
                (
                    Controller::Blkio,
                    "blkio.throttle.read_iops_device",
                    "8:0 100",
                    "linux.resources.blockIO.throttleReadIOPSDevice[0]"
                ),
                (
                    Controller::Blkio,
                    "blkio.throttle.read_iops_device",
                    "8:16 0",
                    "linux.resources.blockIO.throttleReadIOPSDevice[1]"
                ),
                (
                    Controller::Blkio,
                    "blkio.throttle.write_iops_device",
                    "8:0 200",
                    "linux.resources.blockIO.throttleWriteIOPSDevice[0]"
                ),
            ]
        );
        assert_eq!(
            w[0].choices[1],
            ("blkio.bfq.weight".to_string(), "500".to_string())
        );
        assert_eq!(
            w[2].choices[1],
            ("blkio.bfq.weight_device".to_string(), "8:0 600".to_string())
        );
        assert_eq!(w[1].choices.len(), 1);
        assert!(writes_for(r#"{"blockIO":{"weight":0,"leafWeight":0}}"#).is_empty());
    }

    #[test]
    fn hugepages_network_and_rdma() {
        let w = writes_for(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":209715200},{"pageSize":"1GB","limit":-1}],
                "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":500},{"name":"lo","priority":1}]},
                "rdma":{"mlx5_1":{"hcaHandles":3},"mlx4_0":{"hcaHandles":2,"hcaObjects":2000}}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Hugetlb,
                    "hugetlb.2MB.limit_in_bytes",
                    "209715200",
                    "linux.resources.hugepageLimits[0].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.2MB.rsvd.limit_in_bytes",
                    "209715200",
                    "linux.resources.hugepageLimits[0].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.1GB.limit_in_bytes",
                    "-1",
                    "linux.resources.hugepageLimits[1].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.1GB.rsvd.limit_in_bytes",
                    "-1",
                    "linux.resources.hugepageLimits[1].limit"
                ),
                (
                    Controller::NetCls,
                    "net_cls.classid",
                    "1048577",
                    "linux.resources.network.classID"
                ),
                (
                    Controller::NetPrio,
                    "net_prio.ifpriomap",
                    "eth0 500",
                    "linux.resources.network.priorities[0]"
                ),
                (
                    Controller::NetPrio,
                    "net_prio.ifpriomap",
                    "lo 1",
                    "linux.resources.network.priorities[1]"
                ),
                (
                    Controller::Rdma,
                    "rdma.max",
                    "mlx4_0 hca_handle=2 hca_object=2000",
                    "linux.resources.rdma[\"mlx4_0\"]"
                ),
                (
                    Controller::Rdma,
                    "rdma.max",
                    "mlx5_1 hca_handle=3",
                    "linux.resources.rdma[\"mlx5_1\"]"
                ),
            ]
        );
        let optional: Vec<bool> = w.iter().map(|w| w.optional).collect();
        assert_eq!(
            optional,
            [false, true, false, true, false, false, false, false, false]
        );
    }

    #[test]
    fn bad_names_are_refused_before_anything_is_written() {
        for json in [
            r#"{"hugepageLimits":[{"pageSize":"../../memory/memory.limit_in_bytes","limit":1}]}"#,
            r#"{"network":{"priorities":[{"name":"eth0 1\nlo","priority":5}]}}"#,
            r#"{"rdma":{"mlx 0":{"hcaHandles":1}}}"#,
            r#"{"rdma":{"mlx4_0":{}}}"#,
            r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0}]}}"#,
        ] {
            let resources: LinuxResources = serde_json::from_str(json).unwrap();
            assert!(
                matches!(writes(&resources), Err(ResourceError::Invalid { .. })),
                "{json}"
            );
        }
    }

    #[test]
    fn unified_keys_follow_the_v1_files() {
        let w = writes_for(r#"{"pids":{"limit":5},"unified":{"memory.high":"1G"}}"#);
        assert_eq!(
            table(&w)[1],
            (
                Controller::Unified,
                "memory.high",
                "1G",
                "linux.resources.unified[\"memory.high\"]"
            )
        );
    }
}
