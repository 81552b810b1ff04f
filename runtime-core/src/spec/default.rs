//! The config `berth spec` writes: the same as `runc spec` (runc 1.x), so
//! bundles made for one runtime work with the other.
//!
//! The one difference is ociVersion: runc writes the runtime-spec version it
//! vendors (1.0.2-dev in runc 1.1, 1.2.x later); Berth writes
//! [`OCI_VERSION`](super::OCI_VERSION).
use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::OCI_VERSION;

// oci-spec's builders fill every field left unset from oci-spec's own
// Default (youki's defaults: inheritable capabilities, empty annotations),
// not with None; fields runc leaves out are cleared after building.
//
// The builders fail only on their own cross-field checks, never on
// the constant values below; a failure is a bug in this file.
const BUILD: &str = "default spec is well-formed";

/// The default config; `rootless` applies runc's `spec --rootless` changes.
pub fn default_spec(rootless: bool) -> Spec {
    let spec = base_spec();
    if rootless {
        make_rootless(spec)
    } else {
        spec
    }
}

fn base_spec() -> Spec {
    // Enough for a shell to bind low ports, kill its children and log to the
    // audit subsystem; everything else must be granted explicitly.
    let caps: HashSet<Capability> = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .ambient(caps)
        .build()
        .expect(BUILD);
    capabilities.set_inheritable(None);
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect(BUILD);
    let process = ProcessBuilder::default()
        .terminal(true)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect(BUILD),
        )
        .args(strings(&["sh"]))
        .env(strings(&[
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
        ]))
        .cwd("/")
        .capabilities(capabilities)
        .rlimits(vec![nofile])
        .no_new_privileges(true)
        .build()
        .expect(BUILD);

    // Deny every device in the cgroup; the default /dev is a tmpfs that the
    // rootfs module fills with the spec's standard devices.
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .expect(BUILD);
    let linux = LinuxBuilder::default()
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![deny_all])
                .build()
                .expect(BUILD),
        )
        .namespaces(namespaces(&[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ]))
        .masked_paths(strings(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ]))
        .readonly_paths(strings(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]))
        .build()
        .expect(BUILD);

    let mut spec = SpecBuilder::default()
        .version(OCI_VERSION)
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .expect(BUILD),
        )
        .hostname("runc")
        .mounts(default_mounts())
        .linux(linux)
        .build()
        .expect(BUILD);
    spec.set_annotations(None);
    spec
}

fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// runc's `specconv.ToRootless`, step by step.
fn make_rootless(mut spec: Spec) -> Spec {
    // Map container root to the caller, the only id an unprivileged user
    // may map without newuidmap.
    let map = |host_id: u32| {
        vec![LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host_id)
            .size(1u32)
            .build()
            .expect(BUILD)]
    };
    if let Some(linux) = spec.linux_mut() {
        // An unprivileged user cannot configure a new network namespace's
        // interfaces, so the container keeps the host's network.
        let kept: Vec<LinuxNamespace> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|ns| {
                !matches!(
                    ns.typ(),
                    LinuxNamespaceType::Network | LinuxNamespaceType::User
                )
            })
            .cloned()
            .chain(namespaces(&[LinuxNamespaceType::User]))
            .collect();
        linux.set_namespaces(Some(kept));
        linux.set_uid_mappings(Some(map(nix::unistd::geteuid().as_raw())));
        linux.set_gid_mappings(Some(map(nix::unistd::getegid().as_raw())));
        // Cgroup writes need delegation a rootless caller usually lacks.
        linux.set_resources(None);
    }
    let mounts: Vec<Mount> = spec.mounts().iter().flatten().map(rootless_mount).collect();
    spec.set_mounts(Some(mounts));
    spec
}

fn rootless_mount(m: &Mount) -> Mount {
    // A new sysfs needs a network namespace owned by the user namespace;
    // without one, bind the host's read-only.
    if m.destination().as_path() == std::path::Path::new("/sys") {
        return mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        );
    }
    // gid=5 (tty) does not exist in a single-id user namespace.
    let mut m = m.clone();
    if let Some(options) = m.options().clone() {
        let kept = options
            .into_iter()
            .filter(|o| !o.starts_with("gid=") && !o.starts_with("uid="))
            .collect();
        m.set_options(Some(kept));
    }
    m
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let builder = MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source);
    let builder = if options.is_empty() {
        builder
    } else {
        builder.options(strings(options))
    };
    builder.build().expect(BUILD)
}

fn namespaces(types: &[LinuxNamespaceType]) -> Vec<LinuxNamespace> {
    types
        .iter()
        .map(|&t| {
            LinuxNamespaceBuilder::default()
                .typ(t)
                .build()
                .expect(BUILD)
        })
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What `runc spec` (runc 1.1.5) writes, as data; ociVersion aside.
    fn runc_spec() -> Value {
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        json!({
            "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "runc",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
                ],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }

    /// What `runc spec --rootless` writes, as the changes runc makes.
    fn runc_spec_rootless() -> Value {
        let mut expected = runc_spec();
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        expected["mounts"][2]["options"] = json!([
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620"
        ]);
        expected["mounts"][5] = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        let linux = &mut expected["linux"];
        linux["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": euid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": egid, "size": 1}]);
        linux
            .as_object_mut()
            .expect("linux object")
            .remove("resources");
        expected
    }

    /// The spec as JSON, with capability sets sorted (oci-spec stores them
    /// in a HashSet) and ociVersion removed.
    fn normalised(spec: &Spec) -> Value {
        let mut value = serde_json::to_value(spec).expect("serialise spec");
        assert_eq!(value["ociVersion"], OCI_VERSION);
        value
            .as_object_mut()
            .expect("spec object")
            .remove("ociVersion");
        if let Some(Value::Object(sets)) = value.pointer_mut("/process/capabilities") {
            for set in sets.values_mut() {
                if let Value::Array(names) = set {
                    names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
            }
        }
        value
    }

    #[test]
    fn default_spec_matches_runc_spec() {
        let actual = normalised(&default_spec(false));
        let expected = runc_spec();
        // Key fields first, so a failure points at the part that differs.
        for pointer in [
            "/process/args",
            "/process/terminal",
            "/process/capabilities",
            "/mounts",
            "/linux/maskedPaths",
            "/linux/readonlyPaths",
            "/linux/namespaces",
        ] {
            assert_eq!(
                actual.pointer(pointer),
                expected.pointer(pointer),
                "{pointer}"
            );
        }
        assert_eq!(actual, expected);
    }

    #[test]
    fn rootless_default_spec_matches_runc_spec_rootless() {
        let actual = normalised(&default_spec(true));
        let expected = runc_spec_rootless();
        for pointer in [
            "/mounts",
            "/linux/namespaces",
            "/linux/uidMappings",
            "/linux/gidMappings",
        ] {
            assert_eq!(
                actual.pointer(pointer),
                expected.pointer(pointer),
                "{pointer}"
            );
        }
        assert_eq!(actual, expected);
    }

    #[test]
    fn default_spec_round_trips_through_json() {
        let spec = default_spec(false);
        let text = serde_json::to_string(&spec).expect("serialise");
        let back: Spec = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, spec);
    }

    #[test]
    fn default_spec_passes_validation() {
        let dir = crate::spec::testdir::TestDir::new("default");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir rootfs");
        super::super::validate::validate(&default_spec(false), dir.path())
            .expect("default spec valid");
        super::super::validate::validate(&default_spec(true), dir.path())
            .expect("rootless spec valid");
    }
}
