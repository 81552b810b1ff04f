//! The caller's side of sd_notify for the `NOTIFY_SOCKET` tests: a datagram
//! socket bound as systemd binds its own, and a static sender
//! (testdata/sd_notify.c) for the container, as busybox has no
//! unix-datagram sender.

use crate::HostDir;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// `sd_notify MESSAGE...`: each message one datagram to $NOTIFY_SOCKET; built once from testdata/sd_notify.c as a static binary.
pub fn sd_notify_sender() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| crate::build_static_program("sd_notify"))
}

/// The caller's side: a datagram socket the test binds, as systemd does.
pub struct HostSocket {
    _dir: HostDir,
    /// Where it is bound.
    pub path: PathBuf,
    socket: UnixDatagram,
}

impl HostSocket {
    pub fn bind() -> HostSocket {
        let dir = HostDir::new();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the host's notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        HostSocket {
            _dir: dir,
            path,
            socket,
        }
    }

    /// Bound at an abstract address instead, `path` its `@name` spelling.
    pub fn bind_abstract() -> HostSocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("berth-notify-{}", crate::unique_name());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the host's notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        HostSocket {
            _dir: HostDir::new(),
            path: PathBuf::from(format!("@{name}")),
            socket,
        }
    }

    /// The next `count` messages, or why they did not come in time. Reading
    /// one closes any descriptor it carried (the barrier's pipe).
    pub fn receive(&self, count: usize) -> Result<Vec<String>, String> {
        let mut buf = [0u8; 4096];
        (0..count)
            .map(|i| {
                let n = self
                    .socket
                    .recv(&mut buf)
                    .map_err(|e| format!("message {} never came: {e}", i + 1))?;
                Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
            })
            .collect()
    }

    /// Whether anything is waiting, without blocking.
    pub fn is_empty(&self) -> bool {
        self.socket.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 4096];
        let empty = self.socket.recv(&mut buf).is_err();
        self.socket.set_nonblocking(false).expect("blocking");
        empty
    }
}
