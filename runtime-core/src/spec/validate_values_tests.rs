//! Values the kernel could not take: filesystem types, device numbers, hook
//! timeouts. Filesystem types are checked against a stand-in for the kernel.
use super::tests::Case;
use super::*;
use serde_json::json;

/// A kernel that has exactly the filesystems in `known`.
fn kernel_with(known: &'static [&'static str]) -> impl Fn(&str) -> Option<bool> {
    move |fstype| Some(known.contains(&fstype))
}

fn check_mounts_with(case: &Case, known: &'static [&'static str]) -> Result<(), SpecError> {
    check_mounts(&case.spec(), &kernel_with(known))
}

#[test]
fn mount_type_must_be_a_filesystem_the_kernel_has() {
    let case = Case::new().set("/mounts/1/type", json!("no-such-fs"));
    let err = check_mounts_with(&case, &["proc", "tmpfs"]).unwrap_err();
    assert!(
        matches!(err, SpecError::UnknownMountType { index: 1, ref fstype, .. } if fstype == "no-such-fs"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "mounts[1].type \"no-such-fs\" (destination \"/dev\") is not a filesystem type the kernel has, and the mount is not a bind mount"
    );
    check_mounts_with(&Case::new(), &["proc", "tmpfs"]).expect("known types");
}

#[test]
fn a_missing_mount_type_is_refused_unless_binding() {
    let case = Case::new().remove("/mounts/1/type");
    assert!(matches!(
        check_mounts_with(&case, &["proc", "tmpfs"]),
        Err(SpecError::UnknownMountType { index: 1, .. })
    ));
    let bind = case.set("/mounts/1/options", json!(["rbind", "ro"]));
    check_mounts_with(&bind, &["proc", "tmpfs"]).expect("a bind mount needs no type");
}

#[test]
fn bind_and_cgroup_mounts_are_not_looked_up() {
    let case = Case::new()
        .set("/mounts/0/type", json!("none"))
        .set("/mounts/0/options", json!(["bind"]))
        .set("/mounts/1/type", json!("bind"));
    check_mounts_with(&case, &[]).expect("bind mounts");
    let cgroup = Case::new().set("/mounts/1/type", json!("cgroup"));
    check_mounts_with(&cgroup, &["proc"]).expect("cgroup binds the container's hierarchies");
}

#[test]
fn a_kernel_that_cannot_be_asked_leaves_the_mount_to_fail_later() {
    let case = Case::new().set("/mounts/1/type", json!("no-such-fs"));
    check_mounts(&case.spec(), &|_| None).expect("no answer, no refusal");
}

#[test]
fn device_numbers_must_fit_mknod() {
    let cases = [
        ("/linux/devices/0/major", json!(-1), "major", -1),
        ("/linux/devices/0/major", json!(4096), "major", 4096),
        ("/linux/devices/0/minor", json!(1 << 20), "minor", 1 << 20),
    ];
    for (pointer, value, field_want, value_want) in cases {
        let err = Case::new().set(pointer, value).validate().unwrap_err();
        assert!(
            matches!(err, SpecError::DeviceNumberOutOfRange { index: 0, field, value, .. } if field == field_want && value == value_want),
            "{pointer}: {err}"
        );
    }
    let err = Case::new()
        .set("/linux/devices/0/major", json!(-1))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.devices[0].major -1 (/dev/fuse) is out of range 0..=4095"
    );
    let edges = Case::new()
        .set("/linux/devices/0/major", json!(4095))
        .set("/linux/devices/0/minor", json!((1 << 20) - 1));
    edges.validate().expect("largest numbers mknod takes");
}

#[test]
fn a_fifo_has_no_device_number_to_check() {
    let case = Case::new()
        .set("/linux/devices/1/major", json!(-1))
        .set("/linux/devices/1/minor", json!(1 << 30));
    case.validate().expect("numbers of a fifo are ignored");
}

#[test]
fn device_numbers_are_required_unless_fifo() {
    let err = Case::new()
        .remove("/linux/devices/0/minor")
        .validate()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::MissingDeviceNumber {
                index: 0,
                field: "minor"
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "linux.devices[0].minor is required unless the type is \"p\""
    );
    // The base case's fifo has neither.
    Case::new().validate().expect("a fifo without numbers");
}

#[test]
fn hook_timeout_must_be_positive() {
    for timeout in [0, -5] {
        let err = Case::new()
            .set("/hooks/poststop/0/timeout", json!(timeout))
            .validate()
            .unwrap_err();
        assert!(
            matches!(err, SpecError::InvalidHookTimeout { hook: "poststop", index: 0, timeout: t } if t == timeout),
            "{err}"
        );
    }
    let err = Case::new()
        .set("/hooks/createRuntime/1/timeout", json!(0))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "hooks.createRuntime[1].timeout must be greater than zero, got 0"
    );
    Case::new()
        .set("/hooks/prestart/0/timeout", json!(1))
        .validate()
        .expect("a timeout of 1s");
}

#[test]
fn a_seccomp_argument_index_must_name_one_of_six_arguments() {
    // Found by the config fuzz target: libseccomp's own error named no field.
    let rule = |index: u64| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": index, "value": 0, "op": "SCMP_CMP_EQ"}
            ]}
        ]})
    };
    let err = check_seccomp_args(&Case::new().set("/linux/seccomp", rule(20)).spec()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.seccomp.syscalls[1].args[1].index 20 is out of range 0..=5: a syscall has six arguments"
    );
    check_seccomp_args(&Case::new().set("/linux/seccomp", rule(5)).spec())
        .expect("index 5 is the sixth argument");
    check_seccomp_args(&Case::new().spec()).expect("no seccomp");
}

#[test]
fn bad_exec_cpu_affinity_lists_are_refused_by_name() {
    for (field, list, message) in [
        ("final", "3-1", "process.execCPUAffinity.final \"3-1\": the range 3-1 runs backwards"),
        ("initial", "0,a", "process.execCPUAffinity.initial \"0,a\": \"a\" is not a CPU number"),
        ("final", "1-", "process.execCPUAffinity.final \"1-\": \"\" is not a CPU number"),
        (
            "initial",
            "70000",
            "process.execCPUAffinity.initial \"70000\": CPU 70000 is above the highest supported, 65536",
        ),
    ] {
        let case = Case::new().set(
            "/process/execCPUAffinity",
            json!({ field: list }),
        );
        let err = case.validate().unwrap_err();
        assert!(matches!(err, SpecError::ExecCpuAffinity { .. }), "{err}");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn exec_cpu_affinity_is_checked_on_the_typed_spec_too() {
    // oci-spec's own pattern lets a backward range through: validate (which
    // library callers and the fuzz target use on a typed spec) refuses it.
    let case = Case::new().set("/process/execCPUAffinity", json!({"final": "3-1"}));
    assert!(matches!(
        check_process(&case.spec()),
        Err(SpecError::ExecCpuAffinity { field: "final", .. })
    ));
}

#[test]
fn good_exec_cpu_affinity_lists_pass() {
    for affinity in [
        json!({"initial": "0", "final": "0-3,7"}),
        json!({"final": "1"}),
        json!({"initial": "1,1-2"}),
        json!({}),
    ] {
        let case = Case::new().set("/process/execCPUAffinity", affinity.clone());
        case.validate()
            .unwrap_or_else(|e| panic!("{affinity}: {e}"));
    }
}
