//! Loading and validating a bundle's config.json (placeholder until the spec module lands).
use std::path::{Path, PathBuf};
pub use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Invalid(String),
}

pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(bundle.join("config.json")).map_err(|e| SpecError::Invalid(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| SpecError::Invalid(e.to_string()))
}

pub fn rootfs_path(spec: &Spec, bundle: &Path) -> PathBuf {
    let root = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
    if root.is_absolute() { root } else { bundle.join(root) }
}
