//! The names config.json values are checked against.

/// Every capability the kernel defines up to CAP_CHECKPOINT_RESTORE (5.9),
/// in the kernel's numbering order, which is also how runc lists them in
/// its features document.
pub const KNOWN_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The rlimit names of getrlimit(2) that the runtime-spec allows.
pub const KNOWN_RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability, PosixRlimitType};

    // The name checks run before oci-spec parses, so every name we accept
    // must also be one oci-spec can represent.
    #[test]
    fn every_known_capability_parses_in_oci_spec() {
        for name in KNOWN_CAPABILITIES {
            let parsed: Result<Capability, _> = serde_json::from_value(serde_json::json!(name));
            assert!(parsed.is_ok(), "{name}");
        }
    }

    #[test]
    fn every_known_rlimit_parses_in_oci_spec() {
        for name in KNOWN_RLIMITS {
            let parsed: Result<PosixRlimitType, _> =
                serde_json::from_value(serde_json::json!(name));
            assert!(parsed.is_ok(), "{name}");
        }
    }
}
