//! What the fuzz targets (`fuzz/`) call past the API: `load`'s parse with
//! the kernel's answer about filesystem types given, and the checks
//! `create` makes on the parsed spec before it touches the system. Built
//! only with the `fuzzing` feature; not part of the API.

pub use crate::cgroups::systemd::Scope;
pub use crate::isolation::lsm::check as check_lsm;
pub use crate::isolation::namespaces::Namespaces;
pub use crate::process::capabilities::CapabilitySets;
pub use crate::process::seccomp::{build as build_seccomp, uses_notify as seccomp_uses_notify};

/// How the fuzz target answers whether the kernel has a filesystem type
/// (asking the kernel itself would run modprobe for every name it makes up).
pub type FilesystemProbe = dyn Fn(&str) -> Option<bool>;

/// `spec::load` once it has the text, with `has_filesystem` answering for
/// the kernel; `path` only labels the errors.
pub fn load_text(
    text: &str,
    path: &std::path::Path,
    bundle: &std::path::Path,
    has_filesystem: &FilesystemProbe,
) -> Result<crate::spec::Spec, crate::SpecError> {
    crate::spec::load_text(text, path, bundle, has_filesystem)
}
