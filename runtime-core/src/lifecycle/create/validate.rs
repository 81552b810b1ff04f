//! Create's first phase: everything checked before anything exists. The
//! config is read (the one `spec::load`), the id, the options and what this
//! version refuses are checked, and what is built from the config (the
//! seccomp filter, the namespaces, the systemd unit) is built here, so a bad
//! one fails with nothing to take back.

use super::{systemd_unit, CreateOptions};
use crate::cgroups::systemd::{Scope, Value};
use crate::cgroups::{self, CreateHost, Driver, Hierarchy};
use crate::isolation::namespaces::Namespaces;
use crate::isolation::net_devices::NetDevices;
use crate::lifecycle::error::{Error, Result};
use crate::process::memory_policy::MemoryPolicy;
use crate::sys::pidfd::PidfdSocket;
use crate::{process::seccomp, spec, state};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// What the later phases take from the config and the options, all checked.
pub(super) struct Validated {
    pub(super) bundle: PathBuf,
    pub(super) spec: Spec,
    pub(super) rootfs: PathBuf,
    pub(super) namespaces: Namespaces,
    /// Built here, so a bad profile fails before anything exists; the init inherits it.
    pub(super) seccomp: Option<libseccomp::ScmpFilterContext>,
    pub(super) net_devices: NetDevices,
    pub(super) memory_policy: Option<MemoryPolicy>,
    pub(super) pidfd_socket: Option<PidfdSocket>,
    pub(super) cgroups_path: Option<PathBuf>,
    /// How the cgroup is made and entered, decided here once.
    pub(super) driver: Driver,
    /// The systemd unit to start and the properties the annotations add:
    /// `Some` exactly when the driver is [`Driver::Systemd`].
    pub(super) scope: Option<(Scope, Vec<(String, Value)>)>,
    /// The host's cgroup hierarchies.
    pub(super) hierarchies: Vec<Hierarchy>,
    /// The caller's descriptors for the init's 0, 1 and 2, until `spawn`
    /// hands them to the init (and closes the caller's copies).
    pub(super) stdio: Option<crate::init::stdio::Streams>,
}

pub(super) fn validate(options: &CreateOptions) -> Result<Validated> {
    crate::lifecycle::single_thread::refuse_threaded()?;
    state::validate_id(&options.id)?;
    let bundle = absolute_bundle(&options.bundle)?;
    let mut spec = spec::load_or_check(&bundle, options.spec.as_ref())?;
    let terminal = spec::wants_terminal(&spec);
    check_terminal(terminal, options.console_socket.as_deref(), options.detach)?;
    // Taken now, whatever happens next: the caller's copies close once the
    // init is cloned (init/stdio.rs).
    let stdio = options.stdio.take(terminal)?;
    refuse_unsupported(&spec)?;
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::build)
        .transpose()?;
    let rootfs = spec::rootfs_path(&spec, &bundle);
    let namespaces = Namespaces::from_spec(&spec)?;
    let linux_spec = spec.linux().as_ref();
    let own_netns = namespaces.has_own(LinuxNamespaceType::Network);
    let net_devices = linux_spec
        .and_then(|l| l.net_devices().as_ref())
        .map(|devices| NetDevices::check(devices, own_netns))
        .transpose()?
        .unwrap_or_default();
    let memory_policy = linux_spec
        .and_then(|l| l.memory_policy().as_ref())
        .map(MemoryPolicy::from_spec)
        .transpose()?;
    let pidfd_socket = options
        .pidfd_socket
        .as_deref()
        .map(PidfdSocket::connect)
        .transpose()?;

    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let scope = match options.systemd_cgroup {
        true => {
            let path = cgroups_path.as_deref().map(|p| p.to_string_lossy());
            let (scope, annotations) =
                systemd_unit::prepare(path.as_deref(), &options.id, &mut spec)
                    .map_err(cgroups::CgroupError::from)?;
            Some((scope, annotations))
        }
        false => None,
    };
    let hierarchies = cgroups::hierarchies()?;
    let driver = Driver::for_create(
        scope.as_ref().map(|(scope, _)| scope.unit.clone()),
        &CreateHost {
            rootless: options.rootless,
            clones_into_cgroup: namespaces.clones_into_cgroup(),
            new_cgroup_namespace: namespaces.has_new(LinuxNamespaceType::Cgroup),
            hierarchies: &hierarchies,
        },
    );
    Ok(Validated {
        bundle,
        spec,
        rootfs,
        namespaces,
        seccomp,
        net_devices,
        memory_policy,
        pidfd_socket,
        cgroups_path,
        driver,
        scope,
        hierarchies,
        stdio,
    })
}

/// Refuse what this version cannot honour yet, rather than run a container
/// with less isolation or fewer limits than its config asks for.
fn refuse_unsupported(spec: &Spec) -> Result<()> {
    let refuse = |what| Err(Error::Unsupported(what));
    if let Some(process) = spec.process() {
        crate::isolation::lsm::check(process)?;
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.intel_rdt().is_some() {
        return refuse("linux.intelRdt");
    }
    Ok(())
}

/// The bundle directory as an absolute path (what the state records).
pub(crate) fn absolute_bundle(bundle: &Path) -> Result<PathBuf> {
    std::path::absolute(bundle).map_err(|source| Error::Bundle {
        path: bundle.to_path_buf(),
        source,
    })
}

/// runc's rules for when a terminal needs a console socket.
pub(crate) fn check_terminal(
    terminal: bool,
    console_socket: Option<&Path>,
    detach: bool,
) -> Result<()> {
    match (terminal, console_socket.is_some(), detach) {
        (true, false, true) => Err(Error::TerminalWithoutSocket),
        (false, true, _) | (true, true, false) => Err(Error::SocketWithoutTerminal),
        _ => Ok(()),
    }
}
