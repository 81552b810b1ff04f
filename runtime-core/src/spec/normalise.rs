//! What `load` changes in a parsed config before validating it, where the
//! spec gives a field a meaning its typed form cannot hold as written.

use oci_spec::runtime::{LinuxResources, Spec};
use std::path::Path;

/// config.md "Mounts" (spec 1.3): a relative `destination` MAY be given on
/// Linux and MUST be read as relative to "/". It is made absolute here, once,
/// so validation and the rootfs code only ever see absolute destinations.
pub fn anchor_mount_destinations(spec: &mut Spec) {
    let Some(mounts) = spec.mounts_mut().as_mut() else {
        return;
    };
    for mount in mounts {
        if mount.destination().is_relative() {
            let anchored = Path::new("/").join(mount.destination());
            mount.set_destination(anchored);
        }
    }
}

/// `pids` without `limit` sets nothing (spec 1.3 made `limit` optional), but
/// oci-spec reads the missing field as 0, which is now a real limit: such a
/// `pids` is dropped. `raw` is the untyped `resources` object.
pub fn drop_pids_without_limit(raw: &serde_json::Value, resources: &mut LinuxResources) {
    if raw.get("pids").is_some_and(|p| p.get("limit").is_none()) {
        resources.set_pids(None);
    }
}
