//! Create's third phase: what is made before the clone. The cgroup
//! directories (those the init is born in or must be inside from its first
//! step) and their limits, the notify socket's directory, the idmapped
//! mount trees, the start barrier, the sync channel and the report pipe,
//! and the open cgroup files the init enters by.

use super::claim::Claimed;
use super::validate::Validated;
use super::{CreateOptions, Undo};
use crate::cgroups::{self, Cgroup, Entry};
use crate::init::sync::{self, Channel};
use crate::isolation::rootfs::host_mount;
use crate::lifecycle::error::{Error, Result};
use crate::{state::barrier, state::cgroup_intent, sys::fault};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;

/// What the clone and the hand-off use.
pub(super) struct Prepared {
    /// The config as applied less the notify socket's mount and variable,
    /// which are the init's alone (an exec'd process never had
    /// NOTIFY_SOCKET); `None` when there is no notify socket.
    pub(super) recorded_spec: Option<Spec>,
    /// The container's cgroup, made in `made_first` (or none, rootless).
    pub(super) cgroup: Cgroup,
    /// What `delete` goes by if this create is killed (state/cgroup_intent.rs).
    pub(super) plan: Cgroup,
    /// Idmapped bind trees, one entry per mount (rootfs::idmapped_trees).
    pub(super) idmapped: Vec<Option<OwnedFd>>,
    /// How the init enters what was made of its cgroup (`None`: a systemd scope).
    pub(super) cgroup_entry: Option<Entry>,
    pub(super) channel: Channel,
    /// The init's report of the pid that runs the program (after Ready).
    pub(super) report: OwnedFd,
}

/// The ends the init keeps: the parent drops its copies once it is cloned.
pub(super) struct ForInit {
    pub(super) barrier: OwnedFd,
    pub(super) channel: Channel,
    pub(super) report: OwnedFd,
}

pub(super) fn prepare(
    options: &CreateOptions,
    valid: &mut Validated,
    claimed: Claimed,
    undo: &mut Undo,
) -> Result<(Prepared, ForInit)> {
    let recorded_spec = options.notify_socket.then(|| valid.spec.clone());
    if options.notify_socket {
        crate::lifecycle::notify::prepare(&mut valid.spec, &claimed.dir)?;
    }
    let Claimed {
        dir,
        cgroup,
        mut plan,
    } = claimed;
    let spec = &valid.spec;
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let namespaces = &valid.namespaces;
    let hierarchies = &valid.hierarchies;
    // What the driver makes before the clone (cgroups/driver.rs): all of
    // it, or with the overlap the v2 directory the init is born in (the v1
    // ones, slow to make, follow in handoff.rs); a systemd unit exists only
    // around a process, and is made in handoff.rs.
    let cgroup = match valid.driver.made_before_clone() {
        Some(made_first) => {
            let mut cgroup = cgroup;
            match cgroup.make_in(hierarchies, made_first) {
                Ok(()) => {
                    cgroup_intent::drop_found_dirs(
                        &dir,
                        &mut plan,
                        &cgroup,
                        hierarchies,
                        made_first,
                    )?;
                    cgroup
                }
                Err(e) if options.rootless && e.is_permission() => {
                    let mut limits = resources.cloned().unwrap_or_default();
                    limits.set_devices(None);
                    if limits != Default::default() {
                        return Err(Error::RootlessLimits(e.to_string()));
                    }
                    cgroup_intent::forget(&dir);
                    valid.driver.without_cgroup();
                    Cgroup::default()
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => cgroup,
    };
    undo.cgroup = Some(cgroup.clone());
    fault::point("cgroup-made");
    if valid.driver.limits_before_clone() {
        set_limits(&cgroup, spec)?;
        fault::point("limits-set");
    }
    let idmapped = crate::isolation::rootfs::idmapped_trees(spec, &valid.bundle)?;
    // Sharing the host's mount namespace, the init mounts its rootfs where
    // the host sees it: whatever is there now is not ours to take down.
    if !namespaces.has_own(LinuxNamespaceType::Mount) {
        let path = std::fs::canonicalize(&valid.rootfs).map_err(|source| Error::HostMount {
            path: valid.rootfs.clone(),
            source,
        })?;
        let before = host_mount::mount_id(&path).map_err(|source| Error::HostMount {
            path: path.clone(),
            source,
        })?;
        undo.host_rootfs = Some((path, before));
    }
    let barrier = barrier::create(&dir)?;
    fault::point("barrier-made");
    let (parent_end, init_end) = sync::channel().map_err(Error::Sync)?;
    let (report_read, report_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Sync(e.into()))?;
    // The init enters its cgroup itself (cgroups/entry.rs): no move by pid,
    // whose lock waits out an RCU grace period. A systemd scope is joined
    // once systemd has made it (handoff.rs).
    let cgroup_entry = valid
        .driver
        .made_before_clone()
        .map(|made_first| cgroup.entry_in(hierarchies, made_first))
        .transpose()?;
    let prepared = Prepared {
        recorded_spec,
        cgroup,
        plan,
        idmapped,
        cgroup_entry,
        channel: parent_end,
        report: report_read,
    };
    let for_init = ForInit {
        barrier,
        channel: init_end,
        report: report_write,
    };
    Ok((prepared, for_init))
}

/// The device cgroup's rules: the config's, then access to its device nodes.
pub(super) fn device_rules(spec: &Spec) -> Vec<cgroups::DeviceRule> {
    let linux = spec.linux().as_ref();
    cgroups::device_rules(
        linux
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().as_deref())
            .unwrap_or_default(),
        linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default(),
    )
}

/// Device rules, then `linux.resources`.
pub(crate) fn set_limits(cgroup: &Cgroup, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let device_rules = device_rules(spec);
    // Without a cgroup (rootless), the user namespace is what keeps devices
    // out: its root can neither mknod nor open what the host does not grant.
    if !cgroup.dirs.is_empty() {
        cgroup.set_device_rules(&device_rules)?;
    }
    if let Some(resources) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply_resources(resources)?;
    }
    Ok(())
}
