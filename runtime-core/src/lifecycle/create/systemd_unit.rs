//! `create --systemd-cgroup`: what is checked and settled before anything
//! exists.

use crate::cgroups::systemd::{self, Scope, SystemdError, Value};

/// The systemd unit for `--systemd-cgroup`, and the properties the
/// config's `org.systemd.property.*` annotations add, all checked before
/// anything exists. The CPU quota is rounded to what systemd can hold, in
/// the config too, so the file and systemd agree (as runc does).
pub(super) fn prepare(
    cgroups_path: Option<&str>,
    id: &str,
    spec: &mut oci_spec::runtime::Spec,
) -> std::result::Result<(Scope, Vec<(String, Value)>), SystemdError> {
    let scope = Scope::parse(cgroups_path, id, systemd::user_manager())?;
    let annotations =
        systemd::annotation_properties(spec.annotations().as_ref().unwrap_or(&Default::default()))?;
    systemd::check_running()?;
    if let Some(resources) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
    {
        systemd::round_cpu_quota(resources);
    }
    Ok((scope, annotations))
}
