//! Loading and validating a bundle's `config.json`.
//!
//! `load` is the only entry point the lifecycle needs: it reads, parses and
//! validates, so every later step may assume a well-formed spec. Validation
//! is pure apart from one `stat` of the rootfs, so it is tested without root.
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
pub use oci_spec::runtime::{Process, Spec};

mod default;
mod exec_cpu_affinity;
mod names;
mod normalise;
mod validate;

pub use default::default_spec;
pub(crate) use exec_cpu_affinity::exec_cpu_affinity_sets;
pub use names::{KNOWN_CAPABILITIES, KNOWN_RLIMITS};
pub(crate) use normalise::{anchor_mount_destinations, drop_pids_without_limit};
pub(crate) use validate::{validate_process, validate_with, FilesystemProbe};

/// The runtime-spec version Berth writes and claims to support.
///
/// `oci_spec::runtime::VERSION` (0.10) still reads "1.1.0", but the crate's
/// types already deserialise the 1.2 and 1.3 fields, so that constant lags
/// the types. Of 1.3's additions, `linux.netDevices` and `linux.memoryPolicy`
/// are refused by name at create (as `linux.intelRdt` is), never ignored.
pub const OCI_VERSION: &str = "1.3.0";

const CONFIG_FILE: &str = "config.json";

/// Whether the config's process asks for a terminal (`process.terminal`).
pub(crate) fn wants_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Why a config was refused: one variant per check, whose message names
/// the config field (with its index in a list) and what is wrong with it.
// Each variant's message is its documentation, and its fields are the
// values that message quotes: a doc line for each would repeat them.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("JSON specification file config.json not found: open {}: no such file or directory", path.display())]
    ConfigNotFound { path: PathBuf },
    #[error("read {}: {source}", path.display())]
    ReadConfig { path: PathBuf, source: io::Error },
    #[error("parse {}: {reason} at line {line} column {column}", path.display())]
    Syntax {
        path: PathBuf,
        reason: String,
        line: usize,
        column: usize,
    },
    #[error("parse {}: the top level must be a JSON object, not {kind}", path.display())]
    NotAnObject { path: PathBuf, kind: &'static str },
    #[error("parse {}: {field}: {reason} at line {line} column {column}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
        line: usize,
        column: usize,
    },
    #[error("unknown capability {name:?} in {field}")]
    UnknownCapability { field: String, name: String },
    #[error("unknown rlimit type {name:?} in process.rlimits[{index}].type")]
    UnknownRlimit { index: usize, name: String },

    #[error("unsupported ociVersion {version:?}: {reason}")]
    UnsupportedVersion {
        version: String,
        reason: &'static str,
    },
    #[error("root must be set: config.json has no root object")]
    MissingRoot,
    #[error("root.path must not be empty")]
    EmptyRootPath,
    #[error("rootfs ({}) does not exist", path.display())]
    RootfsNotFound { path: PathBuf },
    #[error("rootfs ({}) is not a directory", path.display())]
    RootfsNotDirectory { path: PathBuf },
    #[error("stat rootfs ({}): {source}", path.display())]
    RootfsStat { path: PathBuf, source: io::Error },
    #[error("process.cwd {} must be an absolute path", quoted(cwd))]
    RelativeCwd { cwd: PathBuf },
    #[error("process.args must not be empty")]
    EmptyArgs,
    #[error("{field} 4294967295 names no user or group (setresuid(2) reads it as \"unchanged\")")]
    UnchangedId { field: String },
    #[error("process.execCPUAffinity.{field} {value:?}: {reason}")]
    ExecCpuAffinity {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("process.rlimits[{index}]: duplicate rlimit type {rlimit}")]
    DuplicateRlimit { index: usize, rlimit: String },
    #[error("process.rlimits[{index}] ({rlimit}): soft limit {soft} exceeds hard limit {hard}")]
    RlimitSoftAboveHard {
        index: usize,
        rlimit: String,
        soft: u64,
        hard: u64,
    },
    #[error(
        "mounts[{index}].destination {} must be an absolute path",
        quoted(destination)
    )]
    RelativeMountDestination { index: usize, destination: PathBuf },
    #[error(
        "mounts[{index}].type {fstype:?} (destination {}) is not a filesystem type the kernel has, and the mount is not a bind mount",
        quoted(destination)
    )]
    UnknownMountType {
        index: usize,
        fstype: String,
        destination: PathBuf,
    },
    #[error("hooks.{hook}[{index}].path {} must be an absolute path", quoted(path))]
    RelativeHookPath {
        hook: &'static str,
        index: usize,
        path: PathBuf,
    },
    #[error("hooks.{hook}[{index}].timeout must be greater than zero, got {timeout}")]
    InvalidHookTimeout {
        hook: &'static str,
        index: usize,
        timeout: i64,
    },
    #[error("linux.namespaces[{index}]: duplicate namespace type {ns_type:?}")]
    DuplicateNamespace { index: usize, ns_type: String },
    #[error(
        "linux.namespaces[{index}].path {} ({ns_type} namespace) must be an absolute path",
        quoted(path)
    )]
    RelativeNamespacePath {
        index: usize,
        ns_type: String,
        path: PathBuf,
    },
    #[error("{field} specified, but linux.namespaces has no user namespace")]
    MappingsWithoutUserNamespace { field: &'static str },
    #[error("linux.timeOffsets specified, but linux.namespaces has no time namespace")]
    TimeOffsetsWithoutTimeNamespace,
    #[error("sysctl {key:?} is not in a separate kernel namespace")]
    SysctlNotNamespaced { key: String },
    #[error("sysctl {key:?} needs a {namespace} namespace of the container's own")]
    SysctlWithoutNamespace {
        key: String,
        namespace: &'static str,
    },
    #[error("unable to set hostname {hostname:?} without a private UTS namespace")]
    HostnameWithoutUts { hostname: String },
    #[error("unable to set domainname {domainname:?} without a private UTS namespace")]
    DomainnameWithoutUts { domainname: String },
    #[error(
        "linux.devices[{index}].path {} must be an absolute path",
        quoted(path)
    )]
    RelativeDevicePath { index: usize, path: PathBuf },
    #[error("linux.devices[{index}].type {device_type:?} ({}) must be one of c, b, u, p", path.display())]
    InvalidDeviceType {
        index: usize,
        path: PathBuf,
        device_type: String,
    },
    #[error("linux.devices[{index}].{field} {value} ({}) is out of range 0..={max}", path.display())]
    DeviceNumberOutOfRange {
        index: usize,
        field: &'static str,
        path: PathBuf,
        value: i64,
        max: i64,
    },
    #[error("linux.devices[{index}].{field} is required unless the type is \"p\"")]
    MissingDeviceNumber { index: usize, field: &'static str },
    #[error("linux.maskedPaths[{index}] {path:?} must be an absolute path")]
    RelativeMaskedPath { index: usize, path: String },
    #[error("linux.readonlyPaths[{index}] {path:?} must be an absolute path")]
    RelativeReadonlyPath { index: usize, path: String },
    #[error("linux.seccomp.syscalls[{rule}].args[{index}].index {value} is out of range 0..=5: a syscall has six arguments")]
    SeccompArgIndex {
        rule: usize,
        index: usize,
        value: usize,
    },
    #[error(
        "mounts[{index}].{field} (destination {}): {reason}",
        quoted(destination)
    )]
    IdmappedMount {
        index: usize,
        field: &'static str,
        destination: PathBuf,
        reason: String,
    },
}

fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Reads `<bundle>/config.json`, parses it and validates it.
///
/// ```
/// use berth::spec::{self, SpecError};
///
/// let bundle = std::env::temp_dir().join(format!("berth-doc-spec-{}", std::process::id()));
/// std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
/// let config = serde_json::to_string(&spec::default_spec(false)).unwrap();
/// std::fs::write(bundle.join("config.json"), &config).unwrap();
/// let loaded = spec::load(&bundle).unwrap();
/// assert_eq!(loaded.process().as_ref().unwrap().args().as_ref().unwrap(), &["sh"]);
///
/// // A misspelt capability is named, with the field it is in.
/// std::fs::write(bundle.join("config.json"), config.replace("CAP_KILL", "CAP_KILLL")).unwrap();
/// match spec::load(&bundle) {
///     Err(SpecError::UnknownCapability { name, field }) => {
///         assert_eq!(name, "CAP_KILLL");
///         assert!(field.starts_with("process.capabilities"), "{field}");
///     }
///     other => panic!("expected UnknownCapability, got {other:?}"),
/// }
/// std::fs::remove_dir_all(&bundle).unwrap();
/// ```
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => SpecError::ConfigNotFound { path: path.clone() },
        _ => SpecError::ReadConfig {
            path: path.clone(),
            source,
        },
    })?;
    load_text(&text, &path, bundle, &validate::kernel_has_filesystem)
}

/// What [`load`] labels the errors of a config given as a [`Spec`] with.
pub const GIVEN_SPEC: &str = "the given spec";

/// Checks a config the caller built as [`load`] checks config.json: the
/// same names, the same normalising (mount destinations made absolute, a
/// pids entry without a limit dropped) and the same validation against
/// `bundle`, where a relative `root.path` resolves. It goes through the
/// JSON [`load`] reads, so the two cannot drift apart; its errors name
/// [`GIVEN_SPEC`] where [`load`]'s name the file.
///
/// ```
/// use berth::spec::{self, SpecError};
///
/// let bundle = std::env::temp_dir().join(format!("berth-doc-given-{}", std::process::id()));
/// std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
/// let mut config = spec::default_spec(false);
/// assert!(spec::check(&config, &bundle).is_ok());
/// // No file was read or written.
/// assert!(!bundle.join("config.json").exists());
/// config.set_root(None);
/// assert!(matches!(spec::check(&config, &bundle), Err(SpecError::MissingRoot)));
/// std::fs::remove_dir_all(&bundle).unwrap();
/// ```
pub fn check(spec: &Spec, bundle: &Path) -> Result<Spec, SpecError> {
    let path = Path::new(GIVEN_SPEC);
    // Serialising oci-spec's types (string-keyed maps only) cannot fail;
    // were it to, it is told as the document it would have been.
    let text = serde_json::to_string(spec).map_err(|e| SpecError::Field {
        path: path.to_path_buf(),
        field: String::from("top level"),
        reason: reason_of(&e),
        line: 0,
        column: 0,
    })?;
    load_text(&text, path, bundle, &validate::kernel_has_filesystem)
}

/// The config `create` goes by: `given` checked as [`check`] does, or
/// else `<bundle>/config.json` as [`load`] reads it.
pub(crate) fn load_or_check(bundle: &Path, given: Option<&Spec>) -> Result<Spec, SpecError> {
    match given {
        Some(spec) => check(spec, bundle),
        None => load(bundle),
    }
}

/// What [`load`] does once it has the text, with the kernel's answer about
/// filesystem types given by `has_filesystem` (see [`validate_with`]): the
/// fuzz target's entry. `path` only labels the errors.
pub(crate) fn load_text(
    text: &str,
    path: &Path,
    bundle: &Path,
    has_filesystem: &FilesystemProbe,
) -> Result<Spec, SpecError> {
    let mut spec = parse(text, path)?;
    anchor_mount_destinations(&mut spec);
    validate_with(&spec, bundle, has_filesystem)?;
    Ok(spec)
}

/// Parses config.json text; `path` only labels the errors.
fn parse(text: &str, path: &Path) -> Result<Spec, SpecError> {
    // Parsed untyped first so syntax errors are told apart from type errors,
    // and so capability and rlimit names can be checked by name: oci-spec
    // accepts "sys_admin" for CAP_SYS_ADMIN and says only "unknown variant"
    // for a bad rlimit.
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| SpecError::Syntax {
        path: path.to_path_buf(),
        reason: reason_of(&e),
        line: e.line(),
        column: e.column(),
    })?;
    // serde's derived structs also take an array, field by field in order:
    // `[]` would read as a spec with nothing set, which runc refuses outright.
    let kind = match &raw {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        return Err(SpecError::NotAnObject {
            path: path.to_path_buf(),
            kind,
        });
    }
    validate::check_names(&raw)?;
    validate::check_device_numbers_given(&raw)?;
    exec_cpu_affinity::check_exec_cpu_affinity(&raw, "/process")?;
    let resources_given = raw["linux"]["resources"].clone();
    let mut spec: Spec = typed(text, raw, "/process", path)?;
    if let Some(resources) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
    {
        drop_pids_without_limit(&resources_given, resources);
    }
    Ok(spec)
}

/// Reads a process.json (`exec --process`): a `process` object as in
/// config.json, its execCPUAffinity lists checked by name as there. `path`
/// only labels the errors.
pub fn parse_process(text: &str, path: &Path) -> Result<Process, SpecError> {
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|e| SpecError::Syntax {
        path: path.to_path_buf(),
        reason: reason_of(&e),
        line: e.line(),
        column: e.column(),
    })?;
    exec_cpu_affinity::check_exec_cpu_affinity(&raw, "")?;
    // The names a config.json's process may use, and no others.
    validate::check_names(&serde_json::json!({ "process": raw.clone() }))?;
    typed(text, raw, "", path)
}

/// The typed document, read from `text` so errors have their positions.
/// oci-spec refuses the empty execCPUAffinity list the spec allows ("if
/// omitted or empty"): when that is what stopped it, the document without
/// the empty lists (`raw`; the process object at `process`) is read instead.
fn typed<T: serde::de::DeserializeOwned>(
    text: &str,
    mut raw: serde_json::Value,
    process: &str,
    path: &Path,
) -> Result<T, SpecError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let error = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if error.path().to_string().contains("execCPUAffinity.")
        && exec_cpu_affinity::drop_empty_exec_cpu_affinity(&mut raw, process)
    {
        if let Ok(value) = serde_path_to_error::deserialize(raw) {
            return Ok(value);
        }
    }
    // serde_path_to_error names the document itself ".", which reads as a typo.
    let field = match error.path().to_string() {
        root if root == "." => String::from("top level"),
        field => field,
    };
    let inner = error.into_inner();
    Err(SpecError::Field {
        path: path.to_path_buf(),
        field,
        reason: reason_of(&inner),
        line: inner.line(),
        column: inner.column(),
    })
}

/// serde_json's message without the " at line L column C" it appends, so the
/// position is printed once, in our own format.
fn reason_of(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    full.strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(full)
}

/// Reads a `linux.resources` object (`runc update -r`'s file) for
/// [`Container::update`](crate::Container::update): a `pids` without
/// `limit` sets nothing (spec 1.3 made `limit` optional), where oci-spec
/// reads the missing limit as 0, a real limit.
///
/// ```
/// let resources = berth::spec::parse_resources(r#"{"pids": {}, "cpu": {"shares": 512}}"#).unwrap();
/// assert!(resources.pids().is_none());
/// assert_eq!(resources.cpu().as_ref().and_then(|c| c.shares()), Some(512));
/// let limited = berth::spec::parse_resources(r#"{"pids": {"limit": 0}}"#).unwrap();
/// assert_eq!(limited.pids().as_ref().map(|p| p.limit()), Some(0));
/// ```
pub fn parse_resources(text: &str) -> Result<LinuxResources, serde_json::Error> {
    let mut resources: LinuxResources = serde_json::from_str(text)?;
    // Only an untyped read tells `"pids": {}` (nothing to set) from a limit of 0.
    let raw: serde_json::Value = serde_json::from_str(text)?;
    drop_pids_without_limit(&raw, &mut resources);
    Ok(resources)
}

/// `root.path`, joined to the bundle when relative. Not canonicalised: the
/// rootfs module resolves it by file descriptor. A spec without root (which
/// `validate` rejects) yields the bundle itself.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> PathBuf {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().as_path())
        .unwrap_or(Path::new(""));
    if root.is_absolute() {
        root.to_path_buf()
    } else {
        bundle.join(root)
    }
}

#[cfg(test)]
pub(crate) mod testdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A bundle directory under the system temp dir, removed on drop.
    pub struct TestDir(PathBuf);

    impl TestDir {
        pub fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("berth-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create test dir");
            TestDir(dir)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
