//! Unit tests of v1.rs: what each field of linux.resources writes, and where.

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
    assert!(
        w.iter().all(|w| !w.optional),
        "idle 1 is refused where cpu.idle is missing, not skipped"
    );
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
