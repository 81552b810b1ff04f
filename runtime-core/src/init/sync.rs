//! The one channel between the runtime (parent) and the container's init:
//! a SOCK_SEQPACKET socketpair, so each message arrives whole, and a closed
//! end reads as end-of-file, which is how either side learns the other died.

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What the two sides say to each other, in the order they say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Parent → init: go on to the next phase (first: you are in your cgroup;
    /// then: your state is recorded, wait for `start`).
    Proceed,
    /// Init → parent: set up and about to block on the start barrier.
    Ready,
    /// Init → parent: setup failed, with the reason.
    Failed(crate::init::child_error::ChildError),
    /// Init → parent: the master of the container's terminal comes with this message.
    Console,
    /// Init → parent: mounts are in place; run the prestart and createRuntime hooks.
    RunHooks,
    /// Parent → init: those hooks ran; here is the container's state for its own hooks.
    HooksDone(String),
    /// Init → parent: the seccomp listener descriptor comes with this message.
    SeccompListener,
    /// Parent → init: the v1 cgroup directories are made and limited; their
    /// `tasks` files come with this message (cgroups/entry.rs).
    CgroupReady,
}

const PROCEED: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
const CONSOLE: u8 = 4;
const RUN_HOOKS: u8 = 5;
const HOOKS_DONE: u8 = 6;
const SECCOMP_LISTENER: u8 = 7;
const CGROUP_READY: u8 = 8;

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Proceed => vec![PROCEED],
            Message::Ready => vec![READY],
            Message::Console => vec![CONSOLE],
            Message::RunHooks => vec![RUN_HOOKS],
            Message::SeccompListener => vec![SECCOMP_LISTENER],
            Message::CgroupReady => vec![CGROUP_READY],
            Message::HooksDone(state) => {
                let mut bytes = vec![HOOKS_DONE];
                bytes.extend_from_slice(state.as_bytes());
                bytes
            }
            Message::Failed(reason) => {
                let mut bytes = vec![FAILED];
                // The receiver reads at most RECV_BUF bytes, the type byte included.
                bytes.extend_from_slice(&reason.encode(RECV_BUF - 1));
                bytes
            }
        }
    }

    fn decode(bytes: &[u8]) -> io::Result<Message> {
        match bytes.split_first() {
            Some((&PROCEED, _)) => Ok(Message::Proceed),
            Some((&READY, _)) => Ok(Message::Ready),
            Some((&CONSOLE, _)) => Ok(Message::Console),
            Some((&RUN_HOOKS, _)) => Ok(Message::RunHooks),
            Some((&SECCOMP_LISTENER, _)) => Ok(Message::SeccompListener),
            Some((&CGROUP_READY, _)) => Ok(Message::CgroupReady),
            Some((&HOOKS_DONE, state)) => Ok(Message::HooksDone(
                String::from_utf8_lossy(state).into_owned(),
            )),
            Some((&FAILED, reason)) => Ok(Message::Failed(
                crate::init::child_error::ChildError::decode(reason),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unknown message on the sync channel",
            )),
        }
    }
}

/// The longest message `recv_with_fds` reads.
const RECV_BUF: usize = 8192;

/// The most descriptors one message carries.
pub const MAX_FDS: usize = 32;

/// Why [`Channel::recv_unless_stopped`] returned no message.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// A stop signal came to the runtime first.
    Stopped(crate::sys::stop_signals::Interrupted),
    /// The channel itself failed.
    Io(io::Error),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent's end, init's end). Both are close-on-exec.
pub fn channel() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl AsFd for Channel {
    /// For the waiter, which reads the parent's go-ahead as bytes, and
    /// for polling alongside other descriptors.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Channel {
    pub fn send(&self, message: &Message) -> io::Result<()> {
        self.send_with_fd(message, None)
    }

    /// Send `message`, with `fd` attached as SCM_RIGHTS when given.
    pub fn send_with_fd(&self, message: &Message, fd: Option<BorrowedFd>) -> io::Result<()> {
        self.send_with_fds(message, fd.as_slice())
    }

    /// Send `message` with `fds` attached as SCM_RIGHTS.
    /// Send the listener descriptor of a notifying seccomp filter just
    /// loaded (by the init, or exec's setup child) to the runtime.
    pub(crate) fn send_seccomp_listener(
        &self,
        filter: &libseccomp::ScmpFilterContext,
    ) -> Result<(), crate::init::child_error::ChildError> {
        use crate::init::child_error::{AtStep, ChildError, ChildStep};
        let fd = crate::process::seccomp::listener_fd(filter).at(ChildStep::Seccomp)?;
        self.send_with_fd(&Message::SeccompListener, Some(fd))
            .map_err(|e| {
                ChildError::new(
                    ChildStep::Seccomp,
                    format!("send the seccomp listener descriptor: {e}"),
                )
                .with_errno_of(&e)
            })
    }

    pub fn send_with_fds(&self, message: &Message, fds: &[BorrowedFd]) -> io::Result<()> {
        let bytes = message.encode();
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: Vec<ControlMessage> = if raw.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&raw)]
        };
        let sent = sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        if sent != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write on the sync channel",
            ));
        }
        Ok(())
    }

    /// The next message, or `None` when the other side is gone.
    pub fn recv(&self) -> io::Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(message, _)| message))
    }

    /// `recv_with_fd` from the container's process (the init, or `exec`'s
    /// child) while it sets itself up: its mounts, its createContainer
    /// hooks, an execve a seccomp agent holds, which may never be done. A
    /// stop signal (SIGTERM, SIGINT, SIGHUP) that comes first ends the wait
    /// with [`RecvError::Stopped`]: the caller kills that process and all it
    /// started, and undoes the rest.
    pub fn recv_unless_stopped(
        &self,
        during: &'static str,
    ) -> Result<Option<(Message, Option<OwnedFd>)>, RecvError> {
        crate::sys::stop_signals::wait_readable(self.fd.as_fd(), during)
            .map_err(RecvError::Stopped)?;
        self.recv_with_fd().map_err(RecvError::Io)
    }

    /// The next message and the descriptor that came with it, if any.
    pub fn recv_with_fd(&self) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
        Ok(self
            .recv_with_fds()?
            .map(|(message, fds)| (message, fds.into_iter().next())))
    }

    /// The next message and the descriptors that came with it (at most
    /// `MAX_FDS`: one per cgroup hierarchy is the most ever sent).
    pub fn recv_with_fds(&self) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; RECV_BUF];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg,
                Err(nix::errno::Errno::EINTR) => continue,
                // The other end closed with a message of ours unread: the
                // error comes (once) before what it sent first, read on.
                Err(nix::errno::Errno::ECONNRESET) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raws) = cmsg {
                    for raw in raws {
                        // SAFETY: the kernel just installed this descriptor in our table for us alone.
                        fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                    }
                }
            }
            if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "too many descriptors on the sync channel",
                ));
            }
            let n = msg.bytes;
            if n == 0 {
                return Ok(None);
            }
            return Message::decode(&buf[..n]).map(|m| Some((m, fds)));
        }
    }
}

/// The init's wait for the v1 cgroup made while it sets up (cgroups/late_entry.rs).
impl crate::cgroups::CgroupReadySource for Channel {
    fn recv_cgroup_ready(&self) -> Result<Vec<OwnedFd>, crate::cgroups::LateEntryError> {
        use crate::cgroups::LateEntryError;
        match self.recv_with_fds() {
            Ok(Some((Message::CgroupReady, fds))) => Ok(fds),
            Ok(Some((other, _))) => Err(LateEntryError::Unexpected(format!("{other:?}"))),
            Ok(None) => Err(LateEntryError::RuntimeGone),
            Err(e) => Err(LateEntryError::Recv(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_ready_brings_its_files_and_anything_else_is_unexpected() {
        use crate::cgroups::{CgroupReadySource, LateEntryError};
        let (runtime, init) = channel().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        runtime
            .send_with_fds(&Message::CgroupReady, &[file.as_fd()])
            .unwrap();
        assert_eq!(init.recv_cgroup_ready().unwrap().len(), 1);
        runtime.send(&Message::Ready).unwrap();
        let unexpected = init.recv_cgroup_ready().unwrap_err();
        assert!(matches!(unexpected, LateEntryError::Unexpected(m) if m == "Ready"));
        drop(runtime);
        assert!(matches!(
            init.recv_cgroup_ready(),
            Err(LateEntryError::RuntimeGone)
        ));
    }

    fn failure(message: &str) -> crate::init::child_error::ChildError {
        crate::init::child_error::ChildError::new(
            crate::init::child_error::ChildStep::Rootfs,
            message,
        )
    }

    #[test]
    fn messages_cross_whole_and_eof_is_none() {
        let (a, b) = channel().unwrap();
        a.send(&Message::Failed(failure("mount /proc: EPERM")))
            .unwrap();
        b.send(&Message::Ready).unwrap();
        assert_eq!(
            b.recv().unwrap(),
            Some(Message::Failed(failure("mount /proc: EPERM")))
        );
        assert_eq!(a.recv().unwrap(), Some(Message::Ready));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn a_side_that_closes_with_a_message_unread_is_still_heard() {
        let (parent, init) = channel().unwrap();
        parent.send(&Message::CgroupReady).unwrap();
        init.send(&Message::Failed(failure("mount /proc: not a directory")))
            .unwrap();
        drop(init);
        assert_eq!(
            parent.recv().unwrap(),
            Some(Message::Failed(failure("mount /proc: not a directory")))
        );
        assert_eq!(parent.recv().unwrap(), None);
    }

    #[test]
    fn several_descriptors_cross_in_order() {
        use std::os::fd::AsFd;
        let (a, b) = channel().unwrap();
        let files: Vec<std::fs::File> =
            ["/proc/self/stat", "/proc/self/status", "/proc/self/cmdline"]
                .iter()
                .map(|p| std::fs::File::open(p).unwrap())
                .collect();
        let fds: Vec<BorrowedFd> = files.iter().map(|f| f.as_fd()).collect();
        a.send_with_fds(&Message::CgroupReady, &fds).unwrap();
        let (message, received) = b.recv_with_fds().unwrap().unwrap();
        assert_eq!(message, Message::CgroupReady);
        assert_eq!(received.len(), 3);
        for (got, sent) in received.iter().zip(&files) {
            let (got, sent) = (
                nix::sys::stat::fstat(got).unwrap(),
                nix::sys::stat::fstat(sent).unwrap(),
            );
            assert_eq!((got.st_dev, got.st_ino), (sent.st_dev, sent.st_ino));
        }
    }

    #[test]
    fn a_descriptor_crosses_with_its_message() {
        use std::os::fd::AsFd;
        let (a, b) = channel().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with_fd(&Message::Console, Some(file.as_fd()))
            .unwrap();
        let (message, fd) = b.recv_with_fd().unwrap().unwrap();
        assert_eq!(message, Message::Console);
        let received = nix::sys::stat::fstat(fd.unwrap()).unwrap();
        let original = nix::sys::stat::fstat(&file).unwrap();
        assert_eq!(
            (received.st_dev, received.st_ino),
            (original.st_dev, original.st_ino)
        );
    }
}
