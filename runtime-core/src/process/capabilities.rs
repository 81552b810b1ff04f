//! The five capability sets of the container's process.
//!
//! Order matters: the bounding set is cut while the init still holds
//! CAP_SETPCAP; the other sets are set after the uid change (which the init
//! survives with PR_SET_KEEPCAPS). Inheritable is set exactly to what the
//! config lists, never more (CVE-2022-29162); ambient capabilities are raised
//! last, and only ones also permitted and inheritable.

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("set the {set} capabilities: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

fn to_caps(list: &Option<Capabilities>) -> Result<CapsHashSet, CapabilityError> {
    let mut out = CapsHashSet::new();
    for cap in list.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let parsed = caps::Capability::from_str(&name)
            .map_err(|_| CapabilityError::Unknown(name.clone()))?;
        out.insert(parsed);
    }
    Ok(out)
}

/// Raise CAP_SYS_ADMIN into the effective set, from the permitted set the
/// uid change kept (PR_SET_KEEPCAPS): loading a seccomp filter without
/// no_new_privs needs it, whatever the container's own sets hold.
pub fn raise_for_seccomp_load() -> Result<(), CapabilityError> {
    caps::raise(None, CapSet::Effective, caps::Capability::CAP_SYS_ADMIN).map_err(|source| {
        CapabilityError::Set {
            set: "effective (CAP_SYS_ADMIN, to load the seccomp filter)",
            source,
        }
    })
}

/// The sets resolved to kernel capabilities, checked before anything is changed.
#[derive(Debug, Default)]
pub struct CapabilitySets {
    bounding: CapsHashSet,
    effective: CapsHashSet,
    permitted: CapsHashSet,
    inheritable: CapsHashSet,
    ambient: CapsHashSet,
}

impl CapabilitySets {
    pub fn from_spec(spec: Option<&LinuxCapabilities>) -> Result<Self, CapabilityError> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        Ok(CapabilitySets {
            bounding: to_caps(spec.bounding())?,
            effective: to_caps(spec.effective())?,
            permitted: to_caps(spec.permitted())?,
            inheritable: to_caps(spec.inheritable())?,
            ambient: to_caps(spec.ambient())?,
        })
    }

    /// Drop every capability not in the bounding set (needs CAP_SETPCAP, so before the uid change).
    pub fn apply_bounding(&self) -> Result<(), CapabilityError> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap) {
                // Capabilities newer than the running kernel are not in its bounding set.
                match caps::drop(None, CapSet::Bounding, cap) {
                    Ok(()) => {}
                    Err(_) if !caps::runtime::thread_all_supported().contains(&cap) => {}
                    Err(source) => {
                        return Err(CapabilityError::Set {
                            set: "bounding",
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// Empty the ambient set the runtime may have been started with: early,
    /// as it takes a prctl that a seccomp filter loaded later may deny.
    pub fn clear_ambient() -> Result<(), CapabilityError> {
        caps::clear(None, CapSet::Ambient).map_err(|source| CapabilityError::Set {
            set: "ambient",
            source,
        })
    }

    /// Set effective, permitted, inheritable, then raise ambient (after the
    /// uid change and `clear_ambient`).
    pub fn apply_process_sets(&self) -> Result<(), CapabilityError> {
        let set = |which: CapSet, value: &CapsHashSet, name: &'static str| {
            caps::set(None, which, value)
                .map_err(|source| CapabilityError::Set { set: name, source })
        };
        // Permitted first may drop what effective still holds, so effective is
        // narrowed first; inheritable needs CAP_SETPCAP only to go beyond bounding.
        set(
            CapSet::Effective,
            &self
                .effective
                .intersection(&self.permitted)
                .copied()
                .collect(),
            "effective",
        )?;
        set(CapSet::Inheritable, &self.inheritable, "inheritable")?;
        set(CapSet::Permitted, &self.permitted, "permitted")?;
        set(CapSet::Effective, &self.effective, "effective")?;
        // The ambient set was cleared by `clear_ambient`, before any filter.
        for cap in &self.ambient {
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|source| {
                    CapabilityError::Set {
                        set: "ambient",
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }
}
