//! The OCI features document (runtime-spec features.md, features-linux.md):
//! what this build of Berth recognises, as `berth features` prints it.
//!
//! It states what is compiled in, not what the host supports, so it is a
//! constant apart from the crate version.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
/// The features document: what this build of Berth recognises. Serialised,
/// it is runtime-spec's `features.json` in runc's key order (it reads as
/// `oci_spec::runtime::Features` too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// The oldest runtime-spec version a config may claim.
    pub oci_version_min: String,
    /// The newest runtime-spec version a config may claim ([`OCI_VERSION`]).
    pub oci_version_max: String,
    /// The hooks run, by their config.json names.
    pub hooks: Vec<String>,
    /// The mount options recognised ([`MOUNT_OPTIONS`]).
    pub mount_options: Vec<String>,
    /// The Linux-specific features.
    pub linux: Linux,
    /// Berth's own: `io.github.berth.version`, the crate version.
    pub annotations: BTreeMap<String, String>,
    /// Annotations an engine should not pass through from untrusted
    /// images, each changing how the runtime behaves; a trailing "." is a prefix.
    pub potentially_unsafe_config_annotations: Vec<String>,
}

/// features-linux.md: what of `linux` is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// The namespace types, by their config.json names.
    pub namespaces: Vec<String>,
    /// The capability names ([`KNOWN_CAPABILITIES`]).
    pub capabilities: Vec<String>,
    /// The cgroup drivers.
    pub cgroup: Cgroup,
    /// The seccomp names this build's libseccomp and the running kernel take.
    pub seccomp: Seccomp,
    /// AppArmor profiles are applied (where the host runs AppArmor).
    pub apparmor: Enabled,
    /// SELinux labels are applied (where the host runs SELinux).
    pub selinux: Enabled,
    /// features-linux.md "MountExtensions"; containerd reads
    /// `idmap.enabled` before it passes idmapped mounts to a runtime.
    pub mount_extensions: MountExtensions,
    /// features-linux.md "MemoryPolicy": every mode and flag runtime-spec
    /// 1.3 names is recognised; one this kernel lacks is refused by name at create.
    pub memory_policy: MemoryPolicy,
    /// `linux.netDevices` is applied.
    pub net_devices: Enabled,
}

/// The memory policy modes and flags recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPolicy {
    /// `MPOL_*` modes.
    pub modes: Vec<String>,
    /// `MPOL_F_*` flags.
    pub flags: Vec<String>,
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

/// Mount extensions: idmapped mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountExtensions {
    /// `idmap` and `ridmap` mounts.
    pub idmap: Enabled,
}

/// The cgroup drivers and versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cgroup {
    /// cgroup v1 hierarchies.
    pub v1: bool,
    /// The cgroup v2 hierarchy.
    pub v2: bool,
    /// The systemd driver (`--systemd-cgroup`).
    pub systemd: bool,
    /// The systemd driver without root, through the user's own manager.
    pub systemd_user: bool,
    /// The rdma controller's limits (`linux.resources.rdma`) are applied.
    pub rdma: bool,
}

/// features-linux.md "Seccomp": of the names runtime-spec defines, those
/// this build takes, and the filter flags the running kernel accepts.
pub use crate::process::seccomp::Support as Seccomp;

/// A feature that is on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    /// Whether it is.
    pub enabled: bool,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// What this build of Berth recognises (`berth features` prints it as JSON).
///
/// ```
/// let features = berth::features::features();
/// assert_eq!(features.oci_version_max, berth::spec::OCI_VERSION);
/// assert!(features.linux.namespaces.iter().any(|ns| ns == "time"));
/// // The document reads as oci-spec's type too.
/// let json = serde_json::to_string(&features).unwrap();
/// let oci: berth::oci_spec::runtime::Features = serde_json::from_str(&json).unwrap();
/// assert_eq!(oci.oci_version_min(), "1.0.0");
/// ```
pub fn features() -> Features {
    let seccomp = crate::process::seccomp::support();
    Features {
        oci_version_min: "1.0.0".to_string(),
        oci_version_max: OCI_VERSION.to_string(),
        hooks: strings(&HOOKS),
        mount_options: strings(&MOUNT_OPTIONS),
        linux: Linux {
            namespaces: strings(&NAMESPACES),
            capabilities: strings(&KNOWN_CAPABILITIES),
            // systemdUser: without root the driver talks to the user's own
            // systemd ($XDG_RUNTIME_DIR/systemd/private), on cgroup v2 hosts.
            cgroup: Cgroup {
                v1: true,
                v2: true,
                systemd: true,
                systemd_user: true,
                rdma: true,
            },
            seccomp,
            // Applied where the host runs the LSM; refused by name where it does not.
            apparmor: Enabled { enabled: true },
            selinux: Enabled { enabled: true },
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: true },
            },
            memory_policy: MemoryPolicy {
                modes: strings(&MEMORY_POLICY_MODES),
                flags: strings(&MEMORY_POLICY_FLAGS),
            },
            net_devices: Enabled { enabled: true },
        },
        annotations: BTreeMap::from([(
            "io.github.berth.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
        potentially_unsafe_config_annotations: strings(&POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The document as JSON, to check it as an engine reads it.
    fn value() -> Value {
        serde_json::to_value(features()).expect("serialise")
    }

    #[test]
    fn versions_and_hooks() {
        let f = value();
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
        let f = value();
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
        let linux = &value()["linux"];
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
        let f = value();
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
            serde_json::from_value(value()).expect("oci-spec Features");
        assert_eq!(parsed.oci_version_max(), OCI_VERSION);
    }
}
