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
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).expect("test resources parse")
    }

    fn writes_for(json: &str) -> Vec<Write> {
        writes(&resources(json)).expect("valid resources map")
    }

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

    fn refused(json: &str) -> ResourceError {
        writes(&resources(json)).expect_err(json)
    }

    #[test]
    fn nothing_set_writes_nothing() {
        assert!(writes_for("{}").is_empty());
        assert!(writes_for(
            r#"{"memory":{},"cpu":{},"blockIO":{},"hugepageLimits":[],"rdma":{},"unified":{}}"#
        )
        .is_empty());
        assert!(writes_for(r#"{"memory":{"limit":0,"swap":0,"reservation":0,"useHierarchy":true,"disableOOMKiller":false}}"#).is_empty());
    }

    #[test]
    fn memory_swap_before_max_then_low() {
        let w = writes_for(
            r#"{"memory":{"limit":33554432,"swap":100663296,"reservation":16777216,"kernel":1048576,"kernelTCP":1}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Memory,
                    "memory.swap.max",
                    "67108864",
                    "linux.resources.memory.swap"
                ),
                (
                    Controller::Memory,
                    "memory.max",
                    "33554432",
                    "linux.resources.memory.limit"
                ),
                (
                    Controller::Memory,
                    "memory.low",
                    "16777216",
                    "linux.resources.memory.reservation"
                ),
            ]
        );
        assert!(w.iter().all(|w| !w.optional));
    }

    #[test]
    fn swap_conversion_follows_runc() {
        assert_eq!(swap_only(None, None), Ok(None));
        assert_eq!(swap_only(None, Some(100)), Ok(None));
        assert_eq!(swap_only(Some(300), Some(100)), Ok(Some(200)));
        assert_eq!(swap_only(Some(100), Some(100)), Ok(Some(0)));
        assert_eq!(swap_only(Some(-1), Some(100)), Ok(Some(-1)));
        assert_eq!(swap_only(None, Some(-1)), Ok(Some(-1)));
        assert_eq!(swap_only(Some(0), Some(-1)), Ok(Some(-1)));
        assert!(swap_only(Some(50), Some(100)).is_err());
        assert!(swap_only(Some(50), None).is_err());
        assert!(swap_only(Some(50), Some(-1)).is_err());
        assert!(swap_only(Some(-5), Some(100)).is_err());
    }

    #[test]
    fn memory_minus_one_is_max_and_no_swap_files_are_optional() {
        let w = writes_for(r#"{"memory":{"limit":-1,"reservation":-1}}"#);
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Memory,
                    "memory.swap.max",
                    "max",
                    "linux.resources.memory.limit"
                ),
                (
                    Controller::Memory,
                    "memory.max",
                    "max",
                    "linux.resources.memory.limit"
                ),
                (
                    Controller::Memory,
                    "memory.low",
                    "max",
                    "linux.resources.memory.reservation"
                ),
            ]
        );
        assert!(w[0].optional);
        let same = writes_for(r#"{"memory":{"limit":1000,"swap":1000}}"#);
        assert_eq!(
            (same[0].choices[0].1.as_str(), same[0].optional),
            ("0", true)
        );
        let err = refused(r#"{"memory":{"limit":1000,"swap":10}}"#);
        assert!(
            err.to_string()
                .starts_with("linux.resources.memory.swap 10: swap is memory+swap"),
            "{err}"
        );
    }

    #[test]
    fn memory_fields_without_v2_files_are_refused() {
        for json in [
            r#"{"memory":{"swappiness":10}}"#,
            r#"{"memory":{"disableOOMKiller":true}}"#,
            r#"{"memory":{"useHierarchy":false}}"#,
        ] {
            assert!(
                matches!(refused(json), ResourceError::NoV2Equivalent { .. }),
                "{json}"
            );
        }
        assert_eq!(
            refused(r#"{"memory":{"swappiness":10}}"#).to_string(),
            "linux.resources.memory.swappiness 10: cgroup v2 has no equivalent of this setting"
        );
    }

    #[test]
    fn cpu_weight_conversion_follows_runc() {
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(512), 20);
        assert_eq!(cpu_weight(262_144), 10_000);
        // Out of the kernel's v1 range: clamped as the kernel clamps cpu.shares.
        assert_eq!(cpu_weight(1), 1);
        assert_eq!(cpu_weight(1 << 40), 10_000);
    }

    #[test]
    fn every_cpu_field_has_its_file() {
        let w = writes_for(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":0,"cpus":"0","mems":"0"}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Cpu,
                    "cpu.weight",
                    "39",
                    "linux.resources.cpu.shares"
                ),
                (
                    Controller::Cpu,
                    "cpu.max",
                    "50000 100000",
                    "linux.resources.cpu.quota"
                ),
                (
                    Controller::Cpu,
                    "cpu.max.burst",
                    "1000",
                    "linux.resources.cpu.burst"
                ),
                (Controller::Cpu, "cpu.idle", "0", "linux.resources.cpu.idle"),
                (
                    Controller::Cpuset,
                    "cpuset.cpus",
                    "0",
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
        assert_eq!(
            w[0].value, "1024",
            "errors show the configured shares, not the weight"
        );
        assert!(w[3].optional);
    }

    #[test]
    fn cpu_max_spellings() {
        assert_eq!(
            files(r#"{"cpu":{"quota":-1,"period":100000}}"#),
            pairs(&[("cpu.max", "max 100000")])
        );
        assert_eq!(
            files(r#"{"cpu":{"quota":20000}}"#),
            pairs(&[("cpu.max", "20000")])
        );
        assert_eq!(
            files(r#"{"cpu":{"quota":-1}}"#),
            pairs(&[("cpu.max", "max")])
        );
        assert_eq!(
            files(r#"{"cpu":{"period":50000}}"#),
            pairs(&[("cpu.max", "max 50000")])
        );
        assert!(writes_for(r#"{"cpu":{"quota":0,"period":0,"shares":0}}"#).is_empty());
        assert!(matches!(
            refused(r#"{"cpu":{"realtimeRuntime":950}}"#),
            ResourceError::NoV2Equivalent { .. }
        ));
        assert!(matches!(
            refused(r#"{"cpu":{"realtimePeriod":1000}}"#),
            ResourceError::NoV2Equivalent { .. }
        ));
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
    }

    #[test]
    fn io_weight_conversion_follows_runc() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(io_weight(1000), 10_000);
        assert_eq!(io_weight(1), 1);
        assert_eq!(io_weight(u16::MAX), 10_000);
    }

    #[test]
    fn every_block_io_field_has_its_file() {
        let w = writes_for(
            r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":100}],
                "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":2097152}],
                "throttleReadIOPSDevice":[{"major":8,"minor":0,"rate":100}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":0}]}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Io,
                    "io.bfq.weight",
                    "500",
                    "linux.resources.blockIO.weight"
                ),
                (
                    Controller::Io,
                    "io.bfq.weight",
                    "8:0 100",
                    "linux.resources.blockIO.weightDevice[0].weight"
                ),
                (
                    Controller::Io,
                    "io.max",
                    "8:0 rbps=1048576",
                    "linux.resources.blockIO.throttleReadBpsDevice[0]"
                ),
                (
                    Controller::Io,
                    "io.max",
                    "8:0 wbps=2097152",
                    "linux.resources.blockIO.throttleWriteBpsDevice[0]"
                ),
                (
                    Controller::Io,
                    "io.max",
                    "8:0 riops=100",
                    "linux.resources.blockIO.throttleReadIOPSDevice[0]"
                ),
                (
                    Controller::Io,
                    "io.max",
                    "8:16 wiops=max",
                    "linux.resources.blockIO.throttleWriteIOPSDevice[0]"
                ),
            ]
        );
        assert_eq!(
            w[0].choices[1],
            ("io.weight".to_string(), "4950".to_string())
        );
        assert_eq!(
            w[1].choices[1],
            ("io.weight".to_string(), "8:0 910".to_string())
        );
        assert!(matches!(
            refused(r#"{"blockIO":{"leafWeight":300}}"#),
            ResourceError::NoV2Equivalent { .. }
        ));
        assert!(matches!(
            refused(r#"{"blockIO":{"weightDevice":[{"major":8,"minor":0,"leafWeight":300}]}}"#),
            ResourceError::NoV2Equivalent { .. }
        ));
    }

    #[test]
    fn hugepages_network_rdma_and_unified() {
        let w = writes_for(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":209715200},{"pageSize":"1GB","limit":-1}],
                "network":{"classID":7,"priorities":[{"name":"eth0","priority":5}]},
                "rdma":{"mlx4_0":{"hcaObjects":10}},
                "unified":{"memory.high":"max","io.latency":"8:0 target=75"}}"#,
        );
        assert_eq!(
            table(&w),
            [
                (
                    Controller::Hugetlb,
                    "hugetlb.2MB.max",
                    "209715200",
                    "linux.resources.hugepageLimits[0].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.2MB.rsvd.max",
                    "209715200",
                    "linux.resources.hugepageLimits[0].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.1GB.max",
                    "max",
                    "linux.resources.hugepageLimits[1].limit"
                ),
                (
                    Controller::Hugetlb,
                    "hugetlb.1GB.rsvd.max",
                    "max",
                    "linux.resources.hugepageLimits[1].limit"
                ),
                (
                    Controller::NetCls,
                    "net_cls.classid",
                    "7",
                    "linux.resources.network.classID"
                ),
                (
                    Controller::NetPrio,
                    "net_prio.ifpriomap",
                    "eth0 5",
                    "linux.resources.network.priorities[0]"
                ),
                (
                    Controller::Rdma,
                    "rdma.max",
                    "mlx4_0 hca_object=10",
                    "linux.resources.rdma[\"mlx4_0\"]"
                ),
                (
                    Controller::Unified,
                    "io.latency",
                    "8:0 target=75",
                    "linux.resources.unified[\"io.latency\"]"
                ),
                (
                    Controller::Unified,
                    "memory.high",
                    "max",
                    "linux.resources.unified[\"memory.high\"]"
                ),
            ]
        );
        let optional: Vec<bool> = w.iter().map(|w| w.optional).collect();
        assert_eq!(
            optional,
            [false, true, false, true, false, false, false, false, false]
        );
    }
}
