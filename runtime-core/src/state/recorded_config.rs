//! The config a container was created from, recorded in its state
//! directory (`config.json` beside state.json) by `create` and `restore`.
//!
//! Later commands that need the config's settings (exec's process, seccomp
//! profile and memory policy; checkpoint's mounts and namespaces) read this
//! copy, never the bundle: an edited, moved or deleted bundle must not
//! change or break what a running container's exec gets (runc keeps its
//! config in its state for the same reason). The copy is the config as
//! create applied it (with the systemd unit's annotations), less the
//! notify socket's bind and variable, which are the init's alone.

use crate::state::{self, StateError};
use oci_spec::runtime::Spec;
use std::path::Path;

/// Where the config is recorded in the state directory.
const FILE: &str = "config.json";

/// Record `spec` in the state directory `dir`: written once, 0600 from
/// creation (it holds the process's environment), atomically, so a reader
/// sees the whole config or none.
pub(crate) fn record(dir: &Path, spec: &Spec) -> Result<(), StateError> {
    let path = dir.join(FILE);
    let bytes = serde_json::to_vec(spec).map_err(|source| StateError::Corrupt {
        path: path.clone(),
        source,
    })?;
    crate::sys::host_file::replace_file(&path, &bytes, state::PRIVATE_MODE).map_err(|source| {
        StateError::Io {
            op: "write",
            path,
            source,
        }
    })
}

/// The config recorded in the state directory `dir`; `None` for a
/// container created by an older Berth, which recorded none (its caller
/// falls back to the bundle, as that Berth did).
pub(crate) fn read(dir: &Path) -> Result<Option<Spec>, StateError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Io {
                op: "read",
                path,
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Corrupt { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_config_reads_back_as_recorded_private_and_absent_is_none() {
        let dir =
            std::env::temp_dir().join(format!("berth-recorded-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir).unwrap().is_none());
        let spec = crate::spec::default_spec(false);
        record(&dir, &spec).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(spec));
        let mode = std::fs::metadata(dir.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join(FILE), b"{\"ociVersion\":").unwrap();
        assert!(matches!(read(&dir), Err(StateError::Corrupt { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
