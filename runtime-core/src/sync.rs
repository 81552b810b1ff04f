//! The one channel between the runtime (parent) and the container's init:
//! a SOCK_SEQPACKET socketpair, so each message arrives whole, and a closed
//! end reads as end-of-file, which is how either side learns the other died.

use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// What the two sides say to each other, in the order they say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Parent → init: go on to the next phase (first: you are in your cgroup;
    /// then: your state is recorded, wait for `start`).
    Proceed,
    /// Init → parent: set up and about to block on the start barrier.
    Ready,
    /// Init → parent: setup failed, with the reason.
    Failed(String),
    /// Init → parent: the master of the container's terminal comes with this message.
    Console,
    /// Init → parent: mounts are in place; run the prestart and createRuntime hooks.
    RunHooks,
    /// Parent → init: those hooks ran; here is the container's state for its own hooks.
    HooksDone(String),
    /// Init → parent: the seccomp listener descriptor comes with this message.
    SeccompListener,
}

const PROCEED: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;
const CONSOLE: u8 = 4;
const RUN_HOOKS: u8 = 5;
const HOOKS_DONE: u8 = 6;
const SECCOMP_LISTENER: u8 = 7;

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Proceed => vec![PROCEED],
            Message::Ready => vec![READY],
            Message::Console => vec![CONSOLE],
            Message::RunHooks => vec![RUN_HOOKS],
            Message::SeccompListener => vec![SECCOMP_LISTENER],
            Message::HooksDone(state) => {
                let mut bytes = vec![HOOKS_DONE];
                bytes.extend_from_slice(state.as_bytes());
                bytes
            }
            Message::Failed(reason) => {
                let mut bytes = vec![FAILED];
                bytes.extend_from_slice(reason.as_bytes());
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
            Some((&HOOKS_DONE, state)) => Ok(Message::HooksDone(String::from_utf8_lossy(state).into_owned())),
            Some((&FAILED, reason)) => Ok(Message::Failed(String::from_utf8_lossy(reason).into_owned())),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "unknown message on the sync channel")),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent's end, init's end). Both are close-on-exec.
pub fn channel() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, message: &Message) -> io::Result<()> {
        self.send_with_fd(message, None)
    }

    /// Send `message`, with `fd` attached as SCM_RIGHTS when given.
    pub fn send_with_fd(&self, message: &Message, fd: Option<BorrowedFd>) -> io::Result<()> {
        let bytes = message.encode();
        let raw = fd.map(|f| [f.as_raw_fd()]);
        let cmsgs: Vec<ControlMessage> = raw.as_ref().map(|r| ControlMessage::ScmRights(r)).into_iter().collect();
        let sent = sendmsg::<()>(self.fd.as_raw_fd(), &[IoSlice::new(&bytes)], &cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
        if sent != bytes.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write on the sync channel"));
        }
        Ok(())
    }

    /// The next message, or `None` when the other side is gone.
    pub fn recv(&self) -> io::Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(message, _)| message))
    }

    /// The next message and the descriptor that came with it, if any.
    pub fn recv_with_fd(&self) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 8192];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) => msg,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut fd = None;
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    for raw in fds {
                        // SAFETY: the kernel just installed this descriptor in our table for us alone.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            let n = msg.bytes;
            if n == 0 {
                return Ok(None);
            }
            return Message::decode(&buf[..n]).map(|m| Some((m, fd)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_whole_and_eof_is_none() {
        let (a, b) = channel().unwrap();
        a.send(&Message::Failed("mount /proc: EPERM".into())).unwrap();
        b.send(&Message::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Some(Message::Failed("mount /proc: EPERM".into())));
        assert_eq!(a.recv().unwrap(), Some(Message::Ready));
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn a_descriptor_crosses_with_its_message() {
        use std::os::fd::AsFd;
        let (a, b) = channel().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_with_fd(&Message::Console, Some(file.as_fd())).unwrap();
        let (message, fd) = b.recv_with_fd().unwrap().unwrap();
        assert_eq!(message, Message::Console);
        let received = nix::sys::stat::fstat(fd.unwrap()).unwrap();
        let original = nix::sys::stat::fstat(&file).unwrap();
        assert_eq!((received.st_dev, received.st_ino), (original.st_dev, original.st_ino));
    }
}
