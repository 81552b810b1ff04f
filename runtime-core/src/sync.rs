//! The one channel between the runtime (parent) and the container's init:
//! a SOCK_SEQPACKET socketpair, so each message arrives whole, and a closed
//! end reads as end-of-file, which is how either side learns the other died.

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

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
}

const PROCEED: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Proceed => vec![PROCEED],
            Message::Ready => vec![READY],
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
        let bytes = message.encode();
        let sent = nix::sys::socket::send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &bytes,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )?;
        if sent != bytes.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write on the sync channel"));
        }
        Ok(())
    }

    /// The next message, or `None` when the other side is gone.
    pub fn recv(&self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; 8192];
        loop {
            match nix::unistd::read(self.fd.as_fd(), &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Message::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
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
}
