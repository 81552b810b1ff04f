//! `linux.memoryPolicy` (runtime-spec 1.3): the container's NUMA memory
//! policy, set by the init with `set_mempolicy(2)` before it execs. A
//! thread's policy is inherited by its children and kept across exec, so
//! the waiter and the container's program run under it.
//!
//! The policy is checked twice before anything exists: by its shape (which
//! modes take nodes, which flags go together), then by the kernel itself,
//! from a short-lived thread of the runtime that sets the policy and exits
//! (a policy is per thread, so the runtime's own is untouched): a mode this
//! kernel lacks or nodes this host has not are refused by name, before
//! create makes anything.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::process::affinity::CpuSet;

/// Modes newer than libc's constants (uapi linux/mempolicy.h).
const MPOL_PREFERRED_MANY: libc::c_int = 5;
const MPOL_WEIGHTED_INTERLEAVE: libc::c_int = 6;

/// Where the kernel lists the host's NUMA nodes, for messages.
const ONLINE_NODES: &str = "/sys/devices/system/node/online";

#[derive(Debug, thiserror::Error)]
pub enum MemoryPolicyError {
    #[error("linux.memoryPolicy.nodes {nodes:?}: {reason}")]
    Nodes { nodes: String, reason: String },
    #[error("linux.memoryPolicy: mode {mode} {reason}")]
    Shape { mode: String, reason: &'static str },
    #[error("linux.memoryPolicy: flags MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")]
    StaticAndRelative,
    #[error("linux.memoryPolicy ({policy}) cannot be applied on this host (its NUMA nodes: {online}): set_mempolicy: {source}")]
    Refused {
        policy: String,
        online: String,
        source: std::io::Error,
    },
    #[error("linux.memoryPolicy: probe the kernel: {0}")]
    Probe(std::io::Error),
}

/// A checked policy, as `set_mempolicy` takes it.
#[derive(Debug, Clone)]
pub struct MemoryPolicy {
    /// The mode with its flags or'ed in.
    mode: libc::c_int,
    /// The node mask, in the kernel's `unsigned long` words; empty for none.
    nodes: Vec<libc::c_ulong>,
    /// The policy as written, for messages.
    text: String,
}

impl MemoryPolicy {
    /// Checks `linux.memoryPolicy` by its shape, then asks the kernel.
    pub fn from_spec(spec: &LinuxMemoryPolicy) -> Result<MemoryPolicy, MemoryPolicyError> {
        let policy = MemoryPolicy::parse(spec)?;
        policy.probe()?;
        Ok(policy)
    }

    /// The shape alone: the kernel is not asked.
    fn parse(spec: &LinuxMemoryPolicy) -> Result<MemoryPolicy, MemoryPolicyError> {
        let mode_name = spec.mode().to_string();
        let nodes_text = spec.nodes().as_deref().unwrap_or("");
        let nodes = match nodes_text {
            "" => Vec::new(),
            list => CpuSet::parse(list)
                .map_err(|reason| MemoryPolicyError::Nodes {
                    nodes: list.to_owned(),
                    reason: reason.replace("CPU", "node"),
                })?
                .as_words()
                .to_vec(),
        };
        let flags = spec.flags().as_deref().unwrap_or_default();
        let shape = |reason| MemoryPolicyError::Shape {
            mode: mode_name.clone(),
            reason,
        };
        // set_mempolicy(2): which modes take nodes, and which need them.
        let (mode, takes_nodes, needs_nodes) = match spec.mode() {
            MemoryPolicyModeType::MpolDefault => (libc::MPOL_DEFAULT, false, false),
            MemoryPolicyModeType::MpolLocal => (libc::MPOL_LOCAL, false, false),
            MemoryPolicyModeType::MpolPreferred => (libc::MPOL_PREFERRED, true, false),
            MemoryPolicyModeType::MpolBind => (libc::MPOL_BIND, true, true),
            MemoryPolicyModeType::MpolInterleave => (libc::MPOL_INTERLEAVE, true, true),
            MemoryPolicyModeType::MpolPreferredMany => (MPOL_PREFERRED_MANY, true, true),
            MemoryPolicyModeType::MpolWeightedInterleave => (MPOL_WEIGHTED_INTERLEAVE, true, true),
        };
        if !takes_nodes && !nodes.is_empty() {
            return Err(shape("takes no nodes"));
        }
        if needs_nodes && nodes.is_empty() {
            return Err(shape("needs at least one node in nodes"));
        }
        if spec.mode() == MemoryPolicyModeType::MpolDefault && !flags.is_empty() {
            return Err(shape("takes no flags"));
        }
        let mut mode = mode;
        for flag in flags {
            mode |= match flag {
                MemoryPolicyFlagType::MpolFNumaBalancing => libc::MPOL_F_NUMA_BALANCING,
                MemoryPolicyFlagType::MpolFRelativeNodes => libc::MPOL_F_RELATIVE_NODES,
                MemoryPolicyFlagType::MpolFStaticNodes => libc::MPOL_F_STATIC_NODES,
            };
        }
        let both = libc::MPOL_F_RELATIVE_NODES | libc::MPOL_F_STATIC_NODES;
        if mode & both == both {
            return Err(MemoryPolicyError::StaticAndRelative);
        }
        let flag_names: Vec<String> = flags.iter().map(ToString::to_string).collect();
        Ok(MemoryPolicy {
            mode,
            nodes,
            text: format!(
                "mode {mode_name}, nodes {nodes_text:?}, flags [{}]",
                flag_names.join(", ")
            ),
        })
    }

    /// Sets the policy on a thread made for it, which then exits: what the
    /// kernel refuses (an unknown mode, absent nodes, a bad flag) is named
    /// before the container exists.
    fn probe(&self) -> Result<(), MemoryPolicyError> {
        let policy = self.clone();
        let outcome = std::thread::Builder::new()
            .name("berth-mempolicy".into())
            .spawn(move || policy.apply_raw())
            .map_err(MemoryPolicyError::Probe)?
            .join()
            .map_err(|_| MemoryPolicyError::Probe(std::io::Error::other("the probe panicked")))?;
        outcome.map_err(|source| self.refused(source))
    }

    /// In the init, before it execs: set the policy for it and every
    /// process it makes.
    pub fn apply(&self) -> Result<(), String> {
        self.apply_raw()
            .map_err(|source| self.refused(source).to_string())
    }

    fn apply_raw(&self) -> std::io::Result<()> {
        let (mask, maxnode) = match self.nodes.is_empty() {
            true => (std::ptr::null(), 0),
            // The kernel reads maxnode - 1 bits.
            false => (
                self.nodes.as_ptr(),
                self.nodes.len() * libc::c_ulong::BITS as usize + 1,
            ),
        };
        // SAFETY: the kernel reads at most maxnode - 1 bits from `mask`, which
        // holds that many, or nothing from a null mask with maxnode 0.
        let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, self.mode, mask, maxnode) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn refused(&self, source: std::io::Error) -> MemoryPolicyError {
        let online = std::fs::read_to_string(ONLINE_NODES)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        MemoryPolicyError::Refused {
            policy: self.text.clone(),
            online,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<MemoryPolicy, MemoryPolicyError> {
        let spec: LinuxMemoryPolicy = serde_json::from_str(json).expect("valid json");
        MemoryPolicy::parse(&spec)
    }

    #[test]
    fn bind_to_nodes_builds_the_kernel_mask() {
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"0-1,3","flags":["MPOL_F_STATIC_NODES"]}"#)
            .expect("valid policy");
        assert_eq!(p.mode, libc::MPOL_BIND | libc::MPOL_F_STATIC_NODES);
        assert_eq!(p.nodes, vec![0b1011]);
    }

    #[test]
    fn modes_that_need_nodes_or_refuse_them_are_checked() {
        let needs = policy(r#"{"mode":"MPOL_INTERLEAVE"}"#).unwrap_err();
        assert!(
            needs.to_string().contains("MPOL_INTERLEAVE needs"),
            "{needs}"
        );
        let takes_none = policy(r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#).unwrap_err();
        assert!(
            takes_none.to_string().contains("takes no nodes"),
            "{takes_none}"
        );
        let flags = policy(r#"{"mode":"MPOL_DEFAULT","flags":["MPOL_F_STATIC_NODES"]}"#);
        assert!(flags.is_err());
        assert!(policy(r#"{"mode":"MPOL_PREFERRED"}"#).is_ok());
    }

    #[test]
    fn static_and_relative_exclude_each_other() {
        let both = r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#;
        assert!(matches!(
            policy(both),
            Err(MemoryPolicyError::StaticAndRelative)
        ));
    }

    #[test]
    fn a_bad_node_list_is_named() {
        let err = policy(r#"{"mode":"MPOL_BIND","nodes":"0-x"}"#).unwrap_err();
        assert!(err.to_string().contains("\"0-x\""), "{err}");
        assert!(err.to_string().contains("not a node number"), "{err}");
    }
}
