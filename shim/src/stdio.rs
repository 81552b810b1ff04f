//! The container's stdio as containerd gives it: FIFO paths (empty for
//! none), opened by the shim and handed to the forker as descriptors.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{fcntl, OFlag, F_GETFL, F_SETFL};

/// The paths of one process's stdin, stdout and stderr.
#[derive(Debug, Clone, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

impl StdioPaths {
    /// Opens the three (none for an empty path). The shim keeps no copy:
    /// the process holds the only ends, so the reader sees EOF when it
    /// exits and the process sees EOF when containerd's writer closes.
    /// A logging binary's output (`binary://` as stdout, which decides for
    /// stderr too, as in the runc shim) is no path: none for both here,
    /// `logger.rs` starts the program.
    pub fn open(&self) -> std::io::Result<[Option<OwnedFd>; 3]> {
        if self.logs_to_binary() {
            return Ok([open_fifo(&self.stdin, false)?, None, None]);
        }
        Ok([
            open_fifo(&self.stdin, false)?,
            open_fifo(&self.stdout, true)?,
            open_fifo(&self.stderr, true)?,
        ])
    }

    /// Whether the output goes to a logging binary.
    pub fn logs_to_binary(&self) -> bool {
        crate::logger::is_binary(&self.stdout)
    }
}

/// A FIFO's reading or writing end, opened without waiting for the other
/// side, then made blocking again for the process. `file://PATH` (ctr's
/// `--log-uri`) is a file the output is appended to.
fn open_fifo(path: &str, write: bool) -> std::io::Result<Option<OwnedFd>> {
    if path.is_empty() {
        return Ok(None);
    }
    if let Some(file) = path.strip_prefix("file://") {
        return log_file(file, write);
    }
    let path = path.strip_prefix("fifo://").unwrap_or(path);
    let open = |read: bool, write: bool| {
        OpenOptions::new()
            .read(read)
            .write(write)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
    };
    let file = if write {
        // No reader yet (ENXIO): hold a read end too, so the open works
        // and the process's writes wait for one.
        match open(false, true) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => open(true, true),
            other => other,
        }
    } else {
        open(true, false)
    }
    .map_err(|e| std::io::Error::new(e.kind(), format!("open {path}: {e}")))?;
    let fd = OwnedFd::from(file);
    let flags = OFlag::from_bits_truncate(fcntl(&fd, F_GETFL)?);
    fcntl(&fd, F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(Some(fd))
}

/// The output's end of a `file://` URI: appended to, made if missing (with
/// its directory, as the runc shim does); nothing for stdin.
fn log_file(path: &str, write: bool) -> std::io::Result<Option<OwnedFd>> {
    if !write {
        return Ok(None);
    }
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("open {path}: {e}")))?;
    Ok(Some(OwnedFd::from(file)))
}
