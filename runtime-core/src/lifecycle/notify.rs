//! sd_notify passthrough (systemd `Type=notify`, `podman --sdnotify=container`),
//! with runc's observable behaviour:
//!
//! - `create` (or `run`) started with `NOTIFY_SOCKET` makes a `notify`
//!   directory in the container's state directory, bind-mounts it read-only
//!   (nosuid, nodev, noexec) at `/run/notify` in the container, and sets
//!   `NOTIFY_SOCKET=/run/notify/notify.sock` for the container's process.
//! - `start` (or `run`) started with `NOTIFY_SOCKET` binds a datagram socket
//!   there before it lets the container go, then waits until the container
//!   sends a `READY=` line, or stops. It then sends the caller's socket that
//!   line, `MAINPID=` (the container's init; for a foreground `run`, Berth
//!   itself, which is what systemd should watch then), and `BARRIER=1` with
//!   a pipe (sd_notify_barrier), whose closing it waits for, up to 30 s.
//!   Other messages from the container are not passed on (as in runc: a
//!   `MAINPID` from inside would name a pid of the container's namespace).
//!
//! The socket is bound only by `start` so that nothing listens between
//! `create` and `start`: the directory is mounted empty and the socket
//! appears in it. Only Berth can write that directory; the container sees
//! it read-only.

use crate::state::{self, Record};
use crate::sys::host_file::{self, HostFileError};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, send, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use oci_spec::runtime::{MountBuilder, Spec};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Where the container finds the socket's directory.
pub const DIR_IN_CONTAINER: &str = "/run/notify";
/// The socket's name in that directory.
pub const SOCKET_NAME: &str = "notify.sock";
/// The directory's name in the container's state directory.
const DIR_IN_STATE: &str = "notify";
/// How often the wait for READY looks whether the container still runs.
const POLL_MS: u16 = 100;
/// How long to wait for the caller to take the barrier.
const BARRIER_MS: u16 = 30_000;
/// The longest message read from the container (systemd's own limit is larger; READY fits).
const MESSAGE_MAX: usize = 4096;

/// Why the notify socket could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Making, binding or reading the container's side failed.
    #[error("notify socket {}: {op}: {source}", .path.display())]
    Container {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The caller's `NOTIFY_SOCKET` could not be reached.
    #[error("NOTIFY_SOCKET {0}")]
    Host(#[from] HostFileError),
    /// Talking to the caller's socket failed.
    #[error("NOTIFY_SOCKET {host}: {op}: {source}")]
    Send {
        /// What was being done.
        op: &'static str,
        /// The caller's socket, as given.
        host: String,
        /// Why.
        source: nix::Error,
    },
}

fn container_error<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> NotifyError + 'a {
    move |source| NotifyError::Container {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Make the socket's directory in `state_dir` and add its mount and
/// `NOTIFY_SOCKET` to `spec` (the mount goes through the rootfs code like
/// any other: its target is resolved inside the rootfs).
pub(crate) fn prepare(spec: &mut Spec, state_dir: &Path) -> Result<(), NotifyError> {
    let dir = state_dir.join(DIR_IN_STATE);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(container_error("create directory", &dir))?;
    let options = ["bind", "nosuid", "noexec", "nodev", "ro"].map(String::from);
    let mount = MountBuilder::default()
        .destination(DIR_IN_CONTAINER)
        .source(&dir)
        .typ("bind")
        .options(options.to_vec())
        .build()
        .map_err(|e| container_error("mount", &dir)(io::Error::other(e.to_string())))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(mut process) = spec.process().clone() {
        let mut env = process.env().clone().unwrap_or_default();
        env.push(format!("NOTIFY_SOCKET={DIR_IN_CONTAINER}/{SOCKET_NAME}"));
        process.set_env(Some(env));
        spec.set_process(Some(process));
    }
    Ok(())
}

/// The container's notify socket, bound, and the caller's to relay to.
#[derive(Debug)]
pub struct NotifyRelay {
    socket: UnixDatagram,
    /// The socket's path, for messages.
    path: PathBuf,
    /// The caller's socket, as given, and connected.
    host: String,
    client: OwnedFd,
}

impl NotifyRelay {
    /// Bind the socket of the container whose state directory is
    /// `state_dir`, to relay to `host` (the caller's `NOTIFY_SOCKET`: a
    /// path, or `@name` for an abstract socket). `None` for a container
    /// created without `NOTIFY_SOCKET`: it has no socket directory, and
    /// nothing in it would be told where to send. The caller's socket is
    /// connected here, so that one Berth may not use (a symlink someone
    /// else planted, not a socket, nothing there) fails before the
    /// container starts, not once it is ready.
    pub fn bind(state_dir: &Path, host: &str) -> Result<Option<NotifyRelay>, NotifyError> {
        let dir = state_dir.join(DIR_IN_STATE);
        if !dir.is_dir() {
            return Ok(None);
        }
        let client = connect_host(host)?;
        let path = dir.join(SOCKET_NAME);
        // Bound through a descriptor of its directory: a state root deep
        // enough (a test's, or a long id) would pass the 108 bytes of a
        // socket address otherwise.
        let dir_fd = nix::fcntl::open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| container_error("open", &dir)(e.into()))?;
        // One left by a `start` that failed; only Berth writes this directory.
        match unlinkat(&dir_fd, SOCKET_NAME, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(container_error("remove", &path)(e.into())),
        }
        let via = format!("/proc/self/fd/{}/{SOCKET_NAME}", dir_fd.as_raw_fd());
        let socket = UnixDatagram::bind(via).map_err(container_error("bind", &path))?;
        // Whatever user the container's process runs as may send.
        fchmodat(
            &dir_fd,
            SOCKET_NAME,
            Mode::from_bits_truncate(0o777),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| container_error("chmod", &path)(e.into()))?;
        Ok(Some(NotifyRelay {
            socket,
            path,
            host: host.to_string(),
            client,
        }))
    }

    /// Wait until `container` sends `READY=`, then pass it on with
    /// `MAINPID=main_pid` (its init's, or the caller's when it stays in the
    /// foreground) and a barrier. A container that stops first is not an
    /// error: there is nothing to pass.
    pub fn relay(
        &self,
        container: &crate::Container,
        main_pid: crate::Pid,
    ) -> Result<(), NotifyError> {
        let Some(ready) = self.wait_for_ready(container.record())? else {
            return Ok(());
        };
        self.send(format!("{ready}\n").as_bytes())?;
        self.send(format!("MAINPID={main_pid}\n").as_bytes())?;
        self.barrier()
    }

    /// The first `READY=` line the container sends, or `None` once it stops.
    fn wait_for_ready(&self, record: &Record) -> Result<Option<String>, NotifyError> {
        let path = &self.path;
        let mut buf = vec![0u8; MESSAGE_MAX];
        loop {
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {
                    if !state::init_alive(record) {
                        return Ok(None);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Err(container_error("poll", path)(e.into())),
            }
            let n = self
                .socket
                .recv(&mut buf)
                .map_err(container_error("receive", path))?;
            let message = String::from_utf8_lossy(&buf[..n]);
            if let Some(line) = message.lines().find(|l| l.starts_with("READY=")) {
                return Ok(Some(line.to_string()));
            }
        }
    }

    fn send(&self, message: &[u8]) -> Result<(), NotifyError> {
        send(self.client.as_raw_fd(), message, MsgFlags::empty())
            .map(drop)
            .map_err(|source| NotifyError::Send {
                op: "send",
                host: self.host.clone(),
                source,
            })
    }

    /// sd_notify_barrier: send `BARRIER=1` with a pipe's write end and wait
    /// for the caller to close it, so that it has taken READY and MAINPID
    /// before Berth exits. A caller that never does (one that does not know
    /// the barrier) is waited for 30 s, then let be, as runc does.
    fn barrier(&self) -> Result<(), NotifyError> {
        let error = |op| {
            let host = self.host.clone();
            move |source| NotifyError::Send { op, host, source }
        };
        let (read_end, write_end) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(error("pipe"))?;
        let fds = [write_end.as_raw_fd()];
        sendmsg::<()>(
            self.client.as_raw_fd(),
            &[io::IoSlice::new(b"BARRIER=1")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(error("sendmsg"))?;
        drop(write_end);
        let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(BARRIER_MS)) {
            Ok(0) => return Ok(()),
            Err(e) => return Err(error("poll")(e)),
            Ok(_) => {}
        }
        let mut byte = [0u8; 1];
        match std::fs::File::from(read_end).read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err(error("barrier")(nix::errno::Errno::EPROTO)),
            Err(e) => Err(error("barrier")(nix::errno::Errno::from_raw(
                e.raw_os_error().unwrap_or(0),
            ))),
        }
    }
}

/// A datagram socket connected to the caller's `NOTIFY_SOCKET`: a path,
/// reached as the other caller paths are (sys/host_file.rs), or `@name`.
fn connect_host(host: &str) -> Result<OwnedFd, NotifyError> {
    let Some(name) = host.strip_prefix('@') else {
        return Ok(host_file::connect_unix_datagram(Path::new(&host))?);
    };
    // An abstract socket is no file: there is no link to follow.
    let error = |op| {
        let host = host.to_string();
        move |source| NotifyError::Send { op, host, source }
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(error("socket"))?;
    let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(error("connect"))?;
    connect(sock.as_raw_fd(), &addr).map_err(error("connect"))?;
    Ok(sock)
}
