//! A process with a terminal (`ctr run -t`): the library sends the pty's
//! master to a console socket (runc's protocol) while the forker's worker
//! creates or execs; the shim receives it and copies between it and
//! containerd's FIFOs.

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::stdio::StdioPaths;

/// How long the shim waits for the master after create or exec returned
/// (the library sends it before it returns).
const MASTER_DEADLINE: Duration = Duration::from_secs(10);

/// A listening console socket and the thread that takes one master from it.
pub struct ConsoleSocket {
    pub path: PathBuf,
    master: Receiver<std::io::Result<OwnedFd>>,
}

impl ConsoleSocket {
    /// Listens on a fresh socket in the temporary directory (a bundle's
    /// path may be too long for a unix socket's 108 bytes).
    pub fn listen() -> std::io::Result<ConsoleSocket> {
        static SOCKETS: AtomicUsize = AtomicUsize::new(0);
        let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "berth-shim-console-{}-{n}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let (send, master) = mpsc::channel();
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let received = listener
                    .accept()
                    .and_then(|(stream, _)| receive_fd(&stream));
                let _ = send.send(received);
            })?;
        Ok(ConsoleSocket { path, master })
    }

    /// The master the library sent, once create or exec has returned.
    pub fn master(self) -> std::io::Result<OwnedFd> {
        let received = self.master.recv_timeout(MASTER_DEADLINE);
        let _ = std::fs::remove_file(&self.path);
        match received {
            Ok(master) => master,
            Err(_) => Err(std::io::Error::other(
                "no terminal came on the console socket",
            )),
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One descriptor sent with SCM_RIGHTS on `stream`.
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> std::io::Result<OwnedFd> {
    let mut buffer = [0u8; 4096];
    let mut space = nix::cmsg_space!([i32; 1]);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS just installed this descriptor in
                // the shim; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other(
        "the console socket got no descriptor",
    ))
}

/// Copies containerd's stdin FIFO into the terminal and the terminal into
/// its stdout FIFO (or `out`, a logging program's pipe), each on a thread
/// of its own, until either side ends.
pub fn copy_io(master: &OwnedFd, stdio: &StdioPaths, out: Option<OwnedFd>) -> std::io::Result<()> {
    let [stdin, stdout, _] = stdio.open()?;
    let stdout = out.or(stdout);
    if let Some(stdin) = stdin {
        let mut to_terminal = std::fs::File::from(master.try_clone()?);
        let mut from = std::fs::File::from(stdin);
        std::thread::Builder::new()
            .name("console-in".into())
            .spawn(move || {
                let _ = std::io::copy(&mut from, &mut to_terminal);
            })?;
    }
    let mut from_terminal = std::fs::File::from(master.try_clone()?);
    let mut to = stdout.map(std::fs::File::from);
    std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            // EIO once the last process holding the terminal exits.
            let mut buffer = [0u8; 8192];
            while let Ok(n) = from_terminal.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Some(out) = to.as_mut() {
                    if out.write_all(&buffer[..n]).is_err() {
                        to = None;
                    }
                }
            }
        })?;
    Ok(())
}
