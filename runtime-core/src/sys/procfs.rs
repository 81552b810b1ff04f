//! Writes to /proc for the container (sysctls) through a private procfs.
//!
//! The container's /proc could be anything the rootfs put there, raced or
//! symlinked (CVE-2025-52881), so writes go through a procfs instance made
//! with fsopen that nothing else can see, resolved beneath it without
//! following any symlink or crossing into another mount.

use crate::sys::mount_api::{openat2, FsContext};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("open a private procfs: {0}")]
    Open(std::io::Error),
    #[error("invalid sysctl key {0:?}")]
    InvalidKey(String),
    #[error("write sysctl {key}={value}: {source}")]
    Sysctl {
        key: String,
        value: String,
        source: std::io::Error,
    },
}

/// A procfs of the caller's pid namespace, mounted nowhere.
pub struct PrivateProc {
    root: OwnedFd,
}

impl PrivateProc {
    pub fn open() -> Result<PrivateProc, ProcfsError> {
        let ctx = FsContext::open("proc").map_err(ProcfsError::Open)?;
        let root = ctx
            .mount(libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC)
            .map_err(ProcfsError::Open)?;
        Ok(PrivateProc { root })
    }

    /// Write `value` to `path` under this procfs, following no symlink.
    pub fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
        let resolve = libc::RESOLVE_BENEATH
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV;
        let fd = openat2(self.root.as_fd(), path, libc::O_WRONLY, 0, resolve)?;
        std::fs::File::from(fd).write_all(value.as_bytes())
    }

    /// Write `linux.sysctl`, in key order.
    pub fn apply_sysctl(&self, params: &HashMap<String, String>) -> Result<(), ProcfsError> {
        let mut keys: Vec<_> = params.iter().collect();
        keys.sort();
        for (key, value) in keys {
            if key
                .split(['.', '/'])
                .any(|part| part.is_empty() || part == "..")
            {
                return Err(ProcfsError::InvalidKey(key.clone()));
            }
            let path = PathBuf::from("sys").join(key.replace('.', "/"));
            self.write(&path, value)
                .map_err(|source| ProcfsError::Sysctl {
                    key: key.clone(),
                    value: value.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}
