//! `Stats`: the library's cgroup statistics as containerd's cgroup metrics,
//! which `ctr task metrics` and the CRI read: cgroup v1's form
//! (`io.containerd.cgroups.v1.Metrics`, `v1.rs`) on a host with v1
//! hierarchies, v2's (`io.containerd.cgroups.v2.Metrics`, `v2.rs`) on a
//! unified host, as the runc shim chooses. containerd decodes either
//! whatever its host; the CRI computes a container's working set from the
//! fields of each form (v1: usage less `total_inactive_file`; v2: usage
//! less `inactive_file`), so a v2 host's figures in v1's form would lose it.
//!
//! `BERTH_SHIM_CGROUP_METRICS` (`v1` or `v2`) in containerd's environment
//! overrides the choice: for an engine that reads only one form, and for
//! the test that has containerd's own decoder check the v2 form on a v1 host.

mod v1;
mod v2;

use berth::Stats;
use containerd_shim as shim;
use shim::protos::protobuf::well_known_types::any::Any;

/// The environment variable that names the form.
const FORM_VARIABLE: &str = "BERTH_SHIM_CGROUP_METRICS";

/// The metrics of `stats`, packed for the StatsResponse.
pub fn to_any(stats: &Stats) -> shim::Result<Any> {
    match std::env::var(FORM_VARIABLE).as_deref() {
        Ok("v2") => Ok(v2::to_any(stats)),
        Ok("v1") => v1::to_any(stats),
        Ok(other) => Err(shim::Error::InvalidArgument(format!(
            "{FORM_VARIABLE}={other:?}: not v1 or v2"
        ))),
        Err(_) if host_is_unified() => Ok(v2::to_any(stats)),
        Err(_) => v1::to_any(stats),
    }
}

/// Whether /sys/fs/cgroup is the cgroup2 file system itself (not v1
/// hierarchies, with or without a cgroup2 mount beside them): looked at
/// once per shim, not at every Stats a kubelet polls.
fn host_is_unified() -> bool {
    static UNIFIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNIFIED.get_or_init(|| {
        nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
    })
}
