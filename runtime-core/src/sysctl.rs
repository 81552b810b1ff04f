//! Writing `linux.sysctl` through a private procfs.
//!
//! The container's /proc could be anything the rootfs put there, raced or
//! symlinked (CVE-2025-52881), so writes go through a procfs instance made
//! with fsopen that nothing else can see, and are resolved beneath it
//! without following any symlink.

use crate::rootfs::{openat2, FsContext};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("open a private procfs: {0}")]
    Procfs(std::io::Error),
    #[error("invalid sysctl key {0:?}")]
    InvalidKey(String),
    #[error("write sysctl {key}={value}: {source}")]
    Write { key: String, value: String, source: std::io::Error },
}

pub fn apply(params: &HashMap<String, String>) -> Result<(), SysctlError> {
    let ctx = FsContext::open("proc").map_err(SysctlError::Procfs)?;
    let proc_root = ctx.mount(libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC).map_err(SysctlError::Procfs)?;
    let mut keys: Vec<_> = params.iter().collect();
    keys.sort();
    for (key, value) in keys {
        if key.is_empty() || key.split(['.', '/']).any(|part| part.is_empty() || part == "..") {
            return Err(SysctlError::InvalidKey(key.clone()));
        }
        let path = PathBuf::from("sys").join(key.replace('.', "/"));
        let fail = |source| SysctlError::Write { key: key.clone(), value: value.clone(), source };
        let fd = open_beneath(&proc_root, &path).map_err(fail)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(value.as_bytes()).map_err(fail)?;
    }
    Ok(())
}

fn open_beneath(root: &OwnedFd, path: &std::path::Path) -> std::io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
    openat2(root.as_fd(), path, libc::O_WRONLY, 0, resolve)
}
