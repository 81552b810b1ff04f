//! One test per rule: a valid base spec with exactly one thing changed.
use super::super::exec_cpu_affinity::check_exec_cpu_affinity;
use super::super::testdir::TestDir;
use super::*;
use serde_json::json;

/// A bundle with a rootfs directory, and a config that uses every checked
/// field validly.
pub(super) struct Case {
    dir: TestDir,
    config: Value,
}

impl Case {
    pub(super) fn new() -> Self {
        let dir = TestDir::new("validate");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir rootfs");
        let config = json!({
            "ociVersion": "1.2.1",
            "root": {"path": "rootfs", "readonly": true},
            "process": {
                "cwd": "/",
                "args": ["sh"],
                "user": {"uid": 0, "gid": 0},
                "rlimits": [
                    {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                    {"type": "RLIMIT_NPROC", "soft": 10, "hard": 20}
                ]
            },
            "hostname": "box",
            "domainname": "example.org",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}
            ],
            "hooks": {
                "prestart": [{"path": "/bin/true"}],
                "createRuntime": [{"path": "/bin/true"}, {"path": "/usr/bin/env"}],
                "poststop": [{"path": "/bin/true"}]
            },
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                    {"type": "user"}, {"type": "time"},
                    {"type": "network", "path": "/proc/1/ns/net"}
                ],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "timeOffsets": {"monotonic": {"secs": 1}},
                "sysctl": {"net.ipv4.ip_forward": "1"},
                "devices": [
                    {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
                    {"path": "/dev/fifo", "type": "p"}
                ],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        Case { dir, config }
    }

    /// Replaces the value at `pointer`, or adds it to its parent object.
    pub(super) fn set(mut self, pointer: &str, value: Value) -> Self {
        if let Some(slot) = self.config.pointer_mut(pointer) {
            *slot = value;
            return self;
        }
        let (parent, key) = pointer.rsplit_once('/').expect(pointer);
        let object = self
            .config
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect(parent);
        object.insert(key.to_owned(), value);
        self
    }

    pub(super) fn remove(mut self, pointer: &str) -> Self {
        let (parent, key) = pointer.rsplit_once('/').expect(pointer);
        let object = self
            .config
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect(parent);
        object.remove(key).expect(pointer);
        self
    }

    /// Drops the namespace entry of type `ns_type`.
    pub(super) fn without_namespace(mut self, ns_type: &str) -> Self {
        let list = self
            .config
            .pointer_mut("/linux/namespaces")
            .and_then(Value::as_array_mut)
            .expect("namespaces");
        list.retain(|ns| ns["type"] != ns_type);
        self
    }

    pub(super) fn spec(&self) -> Spec {
        serde_json::from_value(self.config.clone()).expect("test config parses")
    }

    pub(super) fn validate(&self) -> Result<(), SpecError> {
        check_names(&self.config)?;
        check_device_numbers_given(&self.config)?;
        check_exec_cpu_affinity(&self.config, "/process")?;
        validate(&self.spec(), self.dir.path())
    }
}

#[test]
fn base_spec_is_valid() {
    Case::new().validate().expect("base spec");
}

#[test]
fn version_must_be_semver() {
    for bad in [
        "1.0", "1", "v1.0.0", "1.0.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "1..0", "",
    ] {
        let err = Case::new()
            .set("/ociVersion", json!(bad))
            .validate()
            .unwrap_err();
        assert!(
            matches!(err, SpecError::UnsupportedVersion { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn version_must_have_major_1() {
    let err = Case::new()
        .set("/ociVersion", json!("2.0.0"))
        .validate()
        .unwrap_err();
    assert!(matches!(err, SpecError::UnsupportedVersion { ref version, .. } if version == "2.0.0"));
    assert_eq!(
        err.to_string(),
        "unsupported ociVersion \"2.0.0\": only major version 1 is supported"
    );
}

#[test]
fn version_may_have_prerelease_and_build() {
    for good in [
        "1.0.0",
        "1.0.2-dev",
        "1.0.0-rc.1",
        "1.1.0-rc.1+build.5",
        "1.2.0+dirty",
    ] {
        Case::new()
            .set("/ociVersion", json!(good))
            .validate()
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[test]
fn version_missing_is_unsupported() {
    let err = Case::new().remove("/ociVersion").validate().unwrap_err();
    assert!(matches!(err, SpecError::UnsupportedVersion { ref version, .. } if version.is_empty()));
}

#[test]
fn root_is_required() {
    let err = Case::new().remove("/root").validate().unwrap_err();
    assert!(matches!(err, SpecError::MissingRoot), "{err}");
}

#[test]
fn root_path_must_not_be_empty() {
    let err = Case::new()
        .set("/root/path", json!(""))
        .validate()
        .unwrap_err();
    assert!(matches!(err, SpecError::EmptyRootPath), "{err}");
}

#[test]
fn rootfs_must_exist() {
    let case = Case::new().set("/root/path", json!("nope"));
    let err = case.validate().unwrap_err();
    let expected = case.dir.path().join("nope");
    assert!(
        matches!(err, SpecError::RootfsNotFound { ref path } if *path == expected),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("rootfs ({}) does not exist", expected.display())
    );
}

#[test]
fn rootfs_must_be_a_directory() {
    let case = Case::new().set("/root/path", json!("file"));
    std::fs::write(case.dir.path().join("file"), b"").expect("write file");
    let err = case.validate().unwrap_err();
    assert!(matches!(err, SpecError::RootfsNotDirectory { .. }), "{err}");
}

#[test]
fn rootfs_may_be_absolute() {
    let case = Case::new();
    let absolute = case.dir.path().join("rootfs").display().to_string();
    case.set("/root/path", json!(absolute))
        .validate()
        .expect("absolute rootfs");
}

#[test]
fn mount_destination_must_be_absolute() {
    let err = Case::new()
        .set("/mounts/1/destination", json!("dev"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::RelativeMountDestination { index: 1, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "mounts[1].destination \"dev\" must be an absolute path"
    );
}

#[test]
fn hook_path_must_be_absolute() {
    let err = Case::new()
        .set("/hooks/createRuntime/1/path", json!("env"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::RelativeHookPath {
                hook: "createRuntime",
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "hooks.createRuntime[1].path \"env\" must be an absolute path"
    );
}

#[test]
fn deprecated_prestart_hook_is_checked_too() {
    let err = Case::new()
        .set("/hooks/prestart/0/path", json!("true"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::RelativeHookPath {
                hook: "prestart",
                index: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn namespace_types_must_be_unique() {
    let mut case = Case::new();
    case.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "pid"}));
    let err = case.validate().unwrap_err();
    assert!(
        matches!(err, SpecError::DuplicateNamespace { index: 6, ref ns_type } if ns_type == "pid"),
        "{err}"
    );
}

#[test]
fn namespace_path_must_be_absolute() {
    let err = Case::new()
        .set("/linux/namespaces/5/path", json!("net"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::RelativeNamespacePath { index: 5, ref ns_type, .. } if ns_type == "network")
    );
}

#[test]
fn uid_mappings_need_a_user_namespace() {
    let case = Case::new()
        .without_namespace("user")
        .remove("/linux/gidMappings");
    let err = case.validate().unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::MappingsWithoutUserNamespace {
                field: "linux.uidMappings"
            }
        ),
        "{err}"
    );
}

#[test]
fn gid_mappings_need_a_user_namespace() {
    let case = Case::new()
        .without_namespace("user")
        .remove("/linux/uidMappings");
    let err = case.validate().unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::MappingsWithoutUserNamespace {
                field: "linux.gidMappings"
            }
        ),
        "{err}"
    );
}

#[test]
fn empty_mappings_need_no_user_namespace() {
    let case = Case::new()
        .without_namespace("user")
        .set("/linux/uidMappings", json!([]))
        .set("/linux/gidMappings", json!([]));
    case.validate().expect("empty mappings");
}

#[test]
fn user_namespace_without_mappings_is_valid() {
    Case::new()
        .remove("/linux/uidMappings")
        .remove("/linux/gidMappings")
        .validate()
        .expect("userns, no mappings");
}

#[test]
fn hostname_needs_a_uts_namespace() {
    let err = Case::new()
        .without_namespace("uts")
        .remove("/domainname")
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::HostnameWithoutUts { ref hostname } if hostname == "box"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unable to set hostname \"box\" without a private UTS namespace"
    );
}

#[test]
fn empty_hostname_needs_no_uts_namespace() {
    let case = Case::new()
        .without_namespace("uts")
        .remove("/domainname")
        .set("/hostname", json!(""));
    case.validate().expect("empty hostname");
}

#[test]
fn hostname_may_be_set_in_a_joined_uts_namespace() {
    let case = Case::new().set("/linux/namespaces/2/path", json!("/proc/1/ns/uts"));
    case.validate().expect("joined uts namespace");
}

#[test]
fn domainname_needs_a_uts_namespace() {
    let err = Case::new()
        .without_namespace("uts")
        .remove("/hostname")
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::DomainnameWithoutUts { .. }),
        "{err}"
    );
}

#[test]
fn time_offsets_need_a_time_namespace() {
    let err = Case::new()
        .without_namespace("time")
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::TimeOffsetsWithoutTimeNamespace),
        "{err}"
    );
}

#[test]
fn device_path_must_be_absolute() {
    let err = Case::new()
        .set("/linux/devices/1/path", json!("dev/fifo"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::RelativeDevicePath { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn device_type_must_be_c_b_u_or_p() {
    let err = Case::new()
        .set("/linux/devices/0/type", json!("a"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::InvalidDeviceType { index: 0, ref device_type, .. } if device_type == "a")
    );
    for good in ["b", "u"] {
        Case::new()
            .set("/linux/devices/0/type", json!(good))
            .validate()
            .expect(good);
    }
}

#[test]
fn masked_paths_must_be_absolute() {
    let err = Case::new()
        .set("/linux/maskedPaths/0", json!("proc/kcore"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::RelativeMaskedPath { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn readonly_paths_must_be_absolute() {
    let err = Case::new()
        .set("/linux/readonlyPaths/0", json!("proc/sys"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::RelativeReadonlyPath { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn minimal_spec_without_linux_is_valid() {
    let case = Case::new()
        .remove("/linux")
        .remove("/hostname")
        .remove("/domainname");
    case.validate().expect("no linux section");
}

#[test]
fn sysctls_must_be_namespaced() {
    let ok = Case::new().set(
        "/linux/sysctl",
        json!({ "net.ipv4.ip_forward": "1", "kernel.domainname": "x" }),
    );
    assert!(ok.validate().is_ok());
    let host_wide = Case::new().set("/linux/sysctl", json!({ "kernel.panic": "1" }));
    assert!(
        matches!(host_wide.validate(), Err(SpecError::SysctlNotNamespaced { key }) if key == "kernel.panic")
    );
    let no_netns = Case::new()
        .without_namespace("network")
        .set("/linux/sysctl", json!({ "net.ipv4.ip_forward": "1" }));
    assert!(matches!(
        no_netns.validate(),
        Err(SpecError::SysctlWithoutNamespace {
            namespace: "network",
            ..
        })
    ));
}

#[test]
fn user_sysctls_need_a_user_namespace() {
    let sysctl = json!({ "user.max_user_namespaces": "5", "user/max_ipc_namespaces": "3" });
    let with_userns = Case::new().set("/linux/sysctl", sysctl.clone());
    with_userns
        .validate()
        .expect("user.* with a user namespace");
    let no_userns = Case::new()
        .without_namespace("user")
        .remove("/linux/uidMappings")
        .remove("/linux/gidMappings")
        .set("/linux/sysctl", sysctl);
    assert!(matches!(
        no_userns.validate(),
        Err(SpecError::SysctlWithoutNamespace {
            key,
            namespace: "user",
        }) if key == "user.max_user_namespaces"
    ));
}
