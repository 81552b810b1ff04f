//! The checks a spec must pass before any container state is created, so a
//! bad config fails before a cgroup or namespace exists to clean up.
use std::collections::HashSet;
use std::io;
use std::path::Path;

use oci_spec::runtime::{Hook, LinuxDeviceType, LinuxNamespaceType, Process, Spec};
use serde_json::Value;

use crate::sys::mount_api::FsContext;

use super::names::{KNOWN_CAPABILITIES, KNOWN_RLIMITS};
use super::{rootfs_path, SpecError};

/// mknod(2) takes a 32-bit device number: 12 bits of major, 20 of minor
/// (linux/kdev_t.h); a larger number would silently become another device.
const MAX_DEVICE_MAJOR: i64 = (1 << 12) - 1;
const MAX_DEVICE_MINOR: i64 = (1 << 20) - 1;

/// The last index of a syscall argument seccomp can compare (seccomp_data.args[6]).
const MAX_SYSCALL_ARG: usize = 5;

/// Checks `spec` against the runtime-spec and Berth's stricter rules. The
/// only host access is a `stat` of the rootfs and asking the kernel whether
/// each mount's filesystem type exists.
#[cfg(test)]
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    validate_with(spec, bundle, &kernel_has_filesystem)
}

/// [`validate`] with the kernel's answer about filesystem types given by
/// `has_filesystem`: a fuzzer must not ask the kernel, which runs modprobe
/// for every unknown type it is asked about.
pub fn validate_with(
    spec: &Spec,
    bundle: &Path,
    has_filesystem: &FilesystemProbe,
) -> Result<(), SpecError> {
    check_version(spec.version())?;
    check_root(spec, bundle)?;
    check_process(spec)?;
    check_mounts(spec, has_filesystem)?;
    check_hooks(spec)?;
    check_linux(spec)?;
    check_seccomp_args(spec)?;
    check_idmapped_mounts(spec)?;
    Ok(())
}

fn check_version(version: &str) -> Result<(), SpecError> {
    let unsupported = |reason| SpecError::UnsupportedVersion {
        version: version.to_owned(),
        reason,
    };
    match semver_major(version) {
        Err(reason) => Err(unsupported(reason)),
        Ok(1) => Ok(()),
        Ok(_) => Err(unsupported("only major version 1 is supported")),
    }
}

/// The major number of a SemVer 2.0.0 string, or why it is not one.
fn semver_major(version: &str) -> Result<u64, &'static str> {
    const NOT_SEMVER: &str = "not a semantic version (MAJOR.MINOR.PATCH)";
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let ident_ok =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let numeric_ok =
        |id: &str| id.bytes().all(|b| b.is_ascii_digit()) && !(id.len() > 1 && id.starts_with('0'));
    if let Some(build) = build {
        if !build.split('.').all(ident_ok) {
            return Err(NOT_SEMVER);
        }
    }
    if let Some(pre) = pre {
        let pre_ok =
            |id: &str| ident_ok(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric_ok(id));
        if !pre.split('.').all(pre_ok) {
            return Err(NOT_SEMVER);
        }
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| !p.is_empty() && numeric_ok(p)) {
        return Err(NOT_SEMVER);
    }
    parts[0].parse().map_err(|_| NOT_SEMVER)
}

fn check_root(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    let root = spec.root().as_ref().ok_or(SpecError::MissingRoot)?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::EmptyRootPath);
    }
    let path = rootfs_path(spec, bundle);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(SpecError::RootfsNotDirectory { path }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SpecError::RootfsNotFound { path }),
        Err(source) => Err(SpecError::RootfsStat { path, source }),
    }
}

fn check_process(spec: &Spec) -> Result<(), SpecError> {
    // process is optional in config.json (only `start` needs it).
    spec.process().as_ref().map_or(Ok(()), validate_process)
}

/// The checks a process gets wherever it comes from: config.json, or `exec`
/// (a process.json, or the config's process with the flags' changes), as
/// runc validates both.
pub fn validate_process(process: &Process) -> Result<(), SpecError> {
    if !process.cwd().is_absolute() {
        return Err(SpecError::RelativeCwd {
            cwd: process.cwd().clone(),
        });
    }
    if process.args().as_deref().unwrap_or_default().is_empty() {
        return Err(SpecError::EmptyArgs);
    }
    // (uid_t)-1 would leave the process as root: refused, as runc's
    // setuid(2) refuses it (EINVAL).
    let user = process.user();
    let unchanged = |field: String| Err(SpecError::UnchangedId { field });
    if user.uid() == u32::MAX {
        return unchanged("process.user.uid".into());
    }
    if user.gid() == u32::MAX {
        return unchanged("process.user.gid".into());
    }
    if let Some(index) = user
        .additional_gids()
        .iter()
        .flatten()
        .position(|g| *g == u32::MAX)
    {
        return unchanged(format!("process.user.additionalGids[{index}]"));
    }
    super::exec_cpu_affinity_sets(process)?;
    let mut seen = HashSet::new();
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let name = serde_name(&rlimit.typ());
        if !seen.insert(name.clone()) {
            return Err(SpecError::DuplicateRlimit {
                index,
                rlimit: name,
            });
        }
        if rlimit.soft() > rlimit.hard() {
            return Err(SpecError::RlimitSoftAboveHard {
                index,
                rlimit: name,
                soft: rlimit.soft(),
                hard: rlimit.hard(),
            });
        }
    }
    Ok(())
}

/// Whether the kernel has a filesystem type: `Some(answer)`, or `None` when it
/// cannot be asked (and the mount itself will report the problem).
pub type FilesystemProbe = dyn Fn(&str) -> Option<bool>;

fn check_mounts(spec: &Spec, has_filesystem: &FilesystemProbe) -> Result<(), SpecError> {
    // `load` has anchored relative destinations at "/" (spec 1.3): one still
    // relative here comes from a caller that built the spec itself.
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        if !mount.destination().is_absolute() {
            return Err(SpecError::RelativeMountDestination {
                index,
                destination: mount.destination().clone(),
            });
        }
        let fstype = mount.typ().as_deref().unwrap_or_default();
        let is_bind = fstype == "bind"
            || mount
                .options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        // The type of a bind mount is a dummy (config.md "POSIX-platform Mounts"), and
        // a "cgroup" mount binds the container's own hierarchies rather than mount one.
        if is_bind || fstype == "cgroup" {
            continue;
        }
        if has_filesystem(fstype) == Some(false) {
            return Err(SpecError::UnknownMountType {
                index,
                fstype: fstype.to_owned(),
                destination: mount.destination().clone(),
            });
        }
    }
    Ok(())
}

/// Asks the kernel the way the mount will: `fsopen` also loads the type's
/// module, which /proc/filesystems would not list before it is loaded.
/// Without fsopen or the privilege to call it, the kernel cannot be asked.
pub(super) fn kernel_has_filesystem(fstype: &str) -> Option<bool> {
    match FsContext::open(fstype) {
        Ok(_) => Some(true),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Some(false),
        Err(_) => None,
    }
}

#[allow(deprecated)] // prestart is deprecated in the spec but still run.
fn check_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    let lists: [(&'static str, &Option<Vec<Hook>>); 6] = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (hook, list) in lists {
        for (index, h) in list.iter().flatten().enumerate() {
            if !h.path().is_absolute() {
                return Err(SpecError::RelativeHookPath {
                    hook,
                    index,
                    path: h.path().clone(),
                });
            }
            if let Some(timeout) = h.timeout().filter(|t| *t <= 0) {
                return Err(SpecError::InvalidHookTimeout {
                    hook,
                    index,
                    timeout,
                });
            }
        }
    }
    Ok(())
}

fn check_linux(spec: &Spec) -> Result<(), SpecError> {
    let linux = spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().as_ref())
        .map_or(&[][..], Vec::as_slice);
    let mut seen = HashSet::new();
    for (index, ns) in namespaces.iter().enumerate() {
        let ns_type = serde_name(&ns.typ());
        if !seen.insert(ns.typ()) {
            return Err(SpecError::DuplicateNamespace { index, ns_type });
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(SpecError::RelativeNamespacePath {
                    index,
                    ns_type,
                    path: path.clone(),
                });
            }
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);

    // A UTS namespace joined by path counts: runc allows it, and CRI runtimes
    // set the hostname of containers that join their pod's UTS namespace.
    if let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !has(LinuxNamespaceType::Uts) {
            return Err(SpecError::HostnameWithoutUts {
                hostname: hostname.to_owned(),
            });
        }
    }
    if let Some(domainname) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        if !has(LinuxNamespaceType::Uts) {
            return Err(SpecError::DomainnameWithoutUts {
                domainname: domainname.to_owned(),
            });
        }
    }

    let Some(linux) = linux else { return Ok(()) };
    // A user namespace without mappings is allowed: it may be joined by path,
    // or the rootless path maps the caller's own ids.
    let non_empty = |m: &Option<Vec<_>>| m.as_ref().is_some_and(|m| !m.is_empty());
    if !has(LinuxNamespaceType::User) {
        if non_empty(linux.uid_mappings()) {
            return Err(SpecError::MappingsWithoutUserNamespace {
                field: "linux.uidMappings",
            });
        }
        if non_empty(linux.gid_mappings()) {
            return Err(SpecError::MappingsWithoutUserNamespace {
                field: "linux.gidMappings",
            });
        }
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !has(LinuxNamespaceType::Time)
    {
        return Err(SpecError::TimeOffsetsWithoutTimeNamespace);
    }

    let mut keys: Vec<&String> = linux.sysctl().iter().flatten().map(|(k, _)| k).collect();
    keys.sort();
    for key in keys {
        check_sysctl(key, &has)?;
    }

    for (index, device) in linux.devices().iter().flatten().enumerate() {
        if !device.path().is_absolute() {
            return Err(SpecError::RelativeDevicePath {
                index,
                path: device.path().clone(),
            });
        }
        // "a" is valid only in cgroup device rules (linux.resources.devices).
        if device.typ() == LinuxDeviceType::A {
            return Err(SpecError::InvalidDeviceType {
                index,
                path: device.path().clone(),
                device_type: device.typ().as_str().to_owned(),
            });
        }
        // A fifo has no device number ("REQUIRED unless type is p").
        if device.typ() != LinuxDeviceType::P {
            let numbers = [
                ("major", device.major(), MAX_DEVICE_MAJOR),
                ("minor", device.minor(), MAX_DEVICE_MINOR),
            ];
            for (field, value, max) in numbers {
                if !(0..=max).contains(&value) {
                    return Err(SpecError::DeviceNumberOutOfRange {
                        index,
                        field,
                        path: device.path().clone(),
                        value,
                        max,
                    });
                }
            }
        }
    }
    for (index, path) in linux.masked_paths().iter().flatten().enumerate() {
        if !Path::new(path).is_absolute() {
            return Err(SpecError::RelativeMaskedPath {
                index,
                path: path.clone(),
            });
        }
    }
    for (index, path) in linux.readonly_paths().iter().flatten().enumerate() {
        if !Path::new(path).is_absolute() {
            return Err(SpecError::RelativeReadonlyPath {
                index,
                path: path.clone(),
            });
        }
    }
    Ok(())
}

/// A syscall has six arguments (0..=5); libseccomp would refuse a larger
/// index only with "Invalid input to the libseccomp API", naming no field.
fn check_seccomp_args(spec: &Spec) -> Result<(), SpecError> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    for (rule, syscall) in seccomp.syscalls().iter().flatten().enumerate() {
        for (index, arg) in syscall.args().iter().flatten().enumerate() {
            if arg.index() > MAX_SYSCALL_ARG {
                return Err(SpecError::SeccompArgIndex {
                    rule,
                    index,
                    value: arg.index(),
                });
            }
        }
    }
    Ok(())
}

/// config.md "POSIX-platform Mounts" and the `idmap`/`ridmap` options:
/// mappings come in pairs, only bind mounts are idmapped here (as in runc),
/// and an `idmap` mount without mappings of its own takes the container's
/// user namespace mappings, so it needs a user namespace that has them.
fn check_idmapped_mounts(spec: &Spec) -> Result<(), SpecError> {
    let non_empty = |m: &Option<Vec<_>>| m.as_ref().is_some_and(|m| !m.is_empty());
    let linux = spec.linux().as_ref();
    let has_user_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|ns| ns.typ() == LinuxNamespaceType::User));
    let container_mappings = has_user_ns
        && linux.is_some_and(|l| non_empty(l.uid_mappings()) && non_empty(l.gid_mappings()));
    for (index, mount) in spec.mounts().iter().flatten().enumerate() {
        let fail = |field, reason: &str| {
            Err(SpecError::IdmappedMount {
                index,
                field,
                destination: mount.destination().clone(),
                reason: reason.to_owned(),
            })
        };
        let (uid, gid) = (
            non_empty(mount.uid_mappings()),
            non_empty(mount.gid_mappings()),
        );
        match (uid, gid) {
            (true, false) => return fail("gidMappings", "must be given along with uidMappings"),
            (false, true) => return fail("uidMappings", "must be given along with gidMappings"),
            _ => {}
        }
        let options = mount.options().as_deref().unwrap_or_default();
        let option = options.iter().find(|o| *o == "idmap" || *o == "ridmap");
        let Some(field) = (if uid {
            Some("uidMappings")
        } else {
            option.map(|_| "options")
        }) else {
            continue;
        };
        let is_bind = mount.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if !is_bind {
            return fail(field, "idmapped mounts are supported for bind mounts only");
        }
        if let (false, Some(option), false) = (uid, option, container_mappings) {
            let reason = format!(
                "{option} needs the mount's uidMappings and gidMappings, or a user namespace \
                 with linux.uidMappings and linux.gidMappings to take them from"
            );
            return fail(field, &reason);
        }
    }
    Ok(())
}

/// Only sysctls that live in a namespace the container has of its own may be
/// set: anything else would change the host (runc's rule, config-linux.md "Sysctl").
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    const IPC_KEYS: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let key_norm = key.replace('/', ".");
    let (namespace, needed) =
        if IPC_KEYS.contains(&key_norm.as_str()) || key_norm.starts_with("fs.mqueue.") {
            ("ipc", LinuxNamespaceType::Ipc)
        } else if key_norm.starts_with("net.") {
            ("network", LinuxNamespaceType::Network)
        } else if key_norm == "kernel.hostname" || key_norm == "kernel.domainname" {
            ("uts", LinuxNamespaceType::Uts)
        } else if key_norm.starts_with("user.") {
            // The ucount limits (user.max_user_namespaces, ...) are each user
            // namespace's own; without one of the container's they would be
            // the host's, where raising one could undo an administrator's
            // "no user namespaces" (runc 1.4 allows them on the same terms).
            ("user", LinuxNamespaceType::User)
        } else {
            return Err(SpecError::SysctlNotNamespaced {
                key: key.to_owned(),
            });
        };
    if !has(needed) {
        return Err(SpecError::SysctlWithoutNamespace {
            key: key.to_owned(),
            namespace,
        });
    }
    Ok(())
}

/// The name a value has in config.json ("network", "RLIMIT_NOFILE"): the
/// Display impls of oci-spec's enums give kernel names ("net") instead.
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::from("?"),
    }
}

/// Checks capability and rlimit names in the untyped document, before
/// oci-spec parses it: oci-spec's capability parser accepts lower-case and
/// prefix-less names that capabilities(7) does not define.
pub(super) fn check_names(raw: &Value) -> Result<(), SpecError> {
    let Some(process) = raw.get("process") else {
        return Ok(());
    };
    if let Some(Value::Object(sets)) = process.get("capabilities") {
        for (set, names) in sets {
            let Value::Array(names) = names else { continue };
            for (index, name) in names.iter().enumerate() {
                let Value::String(name) = name else { continue };
                if !KNOWN_CAPABILITIES.contains(&name.as_str()) {
                    let field = format!("process.capabilities.{set}[{index}]");
                    return Err(SpecError::UnknownCapability {
                        field,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    if let Some(Value::Array(rlimits)) = process.get("rlimits") {
        for (index, rlimit) in rlimits.iter().enumerate() {
            if let Some(Value::String(name)) = rlimit.get("type") {
                if !KNOWN_RLIMITS.contains(&name.as_str()) {
                    return Err(SpecError::UnknownRlimit {
                        index,
                        name: name.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// config-linux.md "Devices": major and minor are REQUIRED unless the type is
/// "p". Checked in the untyped document: oci-spec reads a missing number as 0,
/// which is a device number too.
pub(super) fn check_device_numbers_given(raw: &Value) -> Result<(), SpecError> {
    let Some(Value::Array(devices)) = raw.pointer("/linux/devices") else {
        return Ok(());
    };
    for (index, device) in devices.iter().enumerate() {
        if device.get("type").and_then(Value::as_str) == Some("p") {
            continue;
        }
        for field in ["major", "minor"] {
            if device.get(field).is_none() {
                return Err(SpecError::MissingDeviceNumber { index, field });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "validate_values_tests.rs"]
mod values_tests;

#[cfg(test)]
#[path = "validate_idmap_tests.rs"]
mod idmap_tests;

#[cfg(test)]
#[path = "validate_process_tests.rs"]
mod process_tests;
