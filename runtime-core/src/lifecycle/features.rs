//! The OCI features document (runtime-spec features.md, features-linux.md):
//! what this build of Berth recognises, as `berth features` prints it.
//!
//! It states what is compiled in, not what the host supports, so it is a
//! constant apart from the crate version.
use serde::Serialize;
use serde_json::Value;

use crate::spec::{KNOWN_CAPABILITIES, OCI_VERSION};

/// The mount option names Berth recognises (runc's list, plus
/// idmap/ridmap), sorted as runc prints them. Filesystem
/// data such as "mode=755" is passed through to mount(2) and not listed.
pub const MOUNT_OPTIONS: [&str; 64] = [
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

const NAMESPACES: [&str; 8] = [
    "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
];

/// Annotations a caller should not pass through from untrusted images:
/// each changes how the runtime itself behaves. A trailing "." is a prefix.
const POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS: [&str; 3] =
    ["bundle", "org.systemd.property.", "org.criu.config"];

// Field order is runc's key order; serde keeps it when serialising a struct.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    oci_version_min: &'static str,
    oci_version_max: &'static str,
    hooks: &'static [&'static str],
    mount_options: &'static [&'static str],
    linux: Linux,
    annotations: Annotations,
    potentially_unsafe_config_annotations: &'static [&'static str],
}

#[derive(Serialize)]
struct Linux {
    namespaces: &'static [&'static str],
    capabilities: &'static [&'static str],
    cgroup: Cgroup,
    seccomp: crate::process::seccomp::Support,
    apparmor: Enabled,
    selinux: Enabled,
    #[serde(rename = "mountExtensions")]
    mount_extensions: MountExtensions,
    #[serde(rename = "memoryPolicy")]
    memory_policy: MemoryPolicy,
    #[serde(rename = "netDevices")]
    net_devices: Enabled,
}

/// features-linux.md "MemoryPolicy": every mode and flag runtime-spec 1.3
/// names is recognised; one this kernel lacks is refused by name at create.
#[derive(Serialize)]
struct MemoryPolicy {
    modes: &'static [&'static str],
    flags: &'static [&'static str],
}

const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];

const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// features-linux.md "MountExtensions"; containerd reads `idmap.enabled`
/// before it passes idmapped mounts to a runtime.
#[derive(Serialize)]
struct MountExtensions {
    idmap: Enabled,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cgroup {
    v1: bool,
    v2: bool,
    systemd: bool,
    systemd_user: bool,
    /// The rdma controller's limits (`linux.resources.rdma`) are applied.
    rdma: bool,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
struct Annotations {
    #[serde(rename = "io.github.berth.version")]
    version: &'static str,
}

fn document() -> Features {
    Features {
        oci_version_min: "1.0.0",
        oci_version_max: OCI_VERSION,
        hooks: &HOOKS,
        mount_options: &MOUNT_OPTIONS,
        linux: Linux {
            namespaces: &NAMESPACES,
            capabilities: &KNOWN_CAPABILITIES,
            // systemdUser: without root the driver talks to the user's own
            // systemd ($XDG_RUNTIME_DIR/systemd/private), on cgroup v2 hosts.
            cgroup: Cgroup {
                v1: true,
                v2: true,
                systemd: true,
                systemd_user: true,
                rdma: true,
            },
            seccomp: crate::process::seccomp::support(),
            // Applied where the host runs the LSM; refused by name where it does not.
            apparmor: Enabled { enabled: true },
            selinux: Enabled { enabled: true },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: true },
            },
            memory_policy: MemoryPolicy {
                modes: &MEMORY_POLICY_MODES,
                flags: &MEMORY_POLICY_FLAGS,
            },
            net_devices: Enabled { enabled: true },
        },
        annotations: Annotations {
            version: env!("CARGO_PKG_VERSION"),
        },
        potentially_unsafe_config_annotations: &POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS,
    }
}

/// The features document as a JSON value. Without serde_json's
/// `preserve_order` feature its objects sort their keys; use
/// [`features_json`] to print it in runc's key order.
pub fn features() -> Value {
    serde_json::to_value(document()).unwrap_or(Value::Null)
}

/// The features document as `runc features` prints it: runc's key order,
/// four-space indent, trailing newline.
pub fn features_json() -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising plain structs of strings and bools into a Vec cannot fail.
    if document().serialize(&mut ser).is_err() {
        return String::new();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_and_hooks() {
        let f = features();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["ociVersionMax"], OCI_VERSION);
        assert_eq!(
            f["hooks"],
            json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
    }

    #[test]
    fn mount_options_are_sorted_unique_and_have_tmpcopyup() {
        let f = features();
        let options: Vec<&str> = f["mountOptions"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(options.len(), MOUNT_OPTIONS.len());
        assert!(options.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(options.contains(&"tmpcopyup"), "podman asks for it");
        for needed in [
            "ro",
            "rw",
            "bind",
            "rbind",
            "rprivate",
            "rro",
            "rnoatime",
            "idmap",
            "ridmap",
            "nosymfollow",
        ] {
            assert!(options.contains(&needed), "{needed}");
        }
    }

    #[test]
    fn linux_section() {
        let linux = &features()["linux"];
        assert_eq!(
            linux["namespaces"],
            json!(["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"])
        );
        let caps = linux["capabilities"].as_array().expect("array");
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], "CAP_CHOWN");
        assert_eq!(caps[40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(
            linux["cgroup"],
            json!({"v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": true})
        );
        assert_eq!(linux["seccomp"]["enabled"], true);
        assert_eq!(
            linux["seccomp"]["actions"].as_array().map(Vec::len),
            Some(9),
            "{}",
            linux["seccomp"]
        );
        assert_eq!(
            linux["seccomp"]["operators"].as_array().map(Vec::len),
            Some(7)
        );
        assert!(linux["seccomp"]["archs"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("SCMP_ARCH_X86_64"))));
        // WAIT_KILLABLE_RECV needs libseccomp 2.6; Debian 12 has 2.5.
        let known = linux["seccomp"]["knownFlags"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for flag in [
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC",
        ] {
            assert!(known.contains(&json!(flag)), "{flag}: {known:?}");
        }
        // Every kernel this runs on (5.x and later) has LOG and SPEC_ALLOW.
        let supported = linux["seccomp"]["supportedFlags"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            supported.contains(&json!("SECCOMP_FILTER_FLAG_LOG"))
                && supported.contains(&json!("SECCOMP_FILTER_FLAG_SPEC_ALLOW")),
            "{supported:?}"
        );
        assert_eq!(linux["apparmor"], json!({"enabled": true}));
        assert_eq!(linux["selinux"], json!({"enabled": true}));
        assert_eq!(
            linux["mountExtensions"],
            json!({"idmap": {"enabled": true}})
        );
        assert_eq!(linux["netDevices"], json!({"enabled": true}));
        assert_eq!(
            linux["memoryPolicy"]["modes"].as_array().map(Vec::len),
            Some(7)
        );
        assert_eq!(
            linux["memoryPolicy"]["flags"],
            json!([
                "MPOL_F_NUMA_BALANCING",
                "MPOL_F_RELATIVE_NODES",
                "MPOL_F_STATIC_NODES"
            ])
        );
    }

    #[test]
    fn annotations() {
        let f = features();
        assert_eq!(
            f["annotations"],
            json!({"io.github.berth.version": env!("CARGO_PKG_VERSION")})
        );
        assert_eq!(
            f["potentiallyUnsafeConfigAnnotations"],
            json!(["bundle", "org.systemd.property.", "org.criu.config"])
        );
    }

    #[test]
    fn parses_as_oci_spec_features() {
        let parsed: oci_spec::runtime::Features =
            serde_json::from_value(features()).expect("oci-spec Features");
        assert_eq!(parsed.oci_version_max(), OCI_VERSION);
    }

    #[test]
    fn json_keeps_runc_key_order() {
        let text = features_json();
        let position = |key: &str| {
            text.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing"))
        };
        let top = [
            "ociVersionMin",
            "ociVersionMax",
            "hooks",
            "mountOptions",
            "linux",
            "annotations",
            "potentiallyUnsafeConfigAnnotations",
        ];
        assert!(
            top.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
        let linux = [
            "namespaces",
            "capabilities",
            "cgroup",
            "seccomp",
            "apparmor",
            "selinux",
            "mountExtensions",
            "memoryPolicy",
            "netDevices",
        ];
        assert!(
            linux.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
        assert!(
            text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&text).expect("valid JSON"),
            features()
        );
    }
}
