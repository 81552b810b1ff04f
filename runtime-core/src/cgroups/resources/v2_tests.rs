//! Unit tests of v2.rs: what each field of linux.resources writes, and where.

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
    let idle = w.iter().find(|w| w.choices[0].0 == "cpu.idle");
    assert!(
        idle.is_some_and(|w| w.optional),
        "idle 0 needs no cpu.idle file"
    );
    let one = writes_for(r#"{"cpu":{"idle":1}}"#);
    assert!(one.iter().all(|w| !w.optional), "idle 1 needs one");
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
