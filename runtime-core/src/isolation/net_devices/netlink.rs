//! The few rtnetlink requests moving a network device needs, built by hand
//! (rtnetlink(7)): a link's addresses, a link by name or index, and
//! RTM_NEWLINK / RTM_NEWADDR changes, each acknowledged by the kernel.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;

pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_NET_NS_FD: u16 = 28;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_F_PERMANENT: u8 = 0x80;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_REPLACE: u16 = 0x100;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HEADER: usize = 16;
/// `struct ifinfomsg`.
pub const IFINFOMSG: usize = 16;
/// `struct ifaddrmsg`.
pub const IFADDRMSG: usize = 8;

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request's body: its fixed header, then attributes.
pub struct Body(Vec<u8>);

impl Body {
    /// `struct ifinfomsg` for the link with `index`; `up` sets IFF_UP.
    pub fn link(index: u32, up: bool) -> Body {
        let mut b = vec![0u8; IFINFOMSG];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        if up {
            let flag = libc::IFF_UP as u32;
            b[8..12].copy_from_slice(&flag.to_ne_bytes());
            b[12..16].copy_from_slice(&flag.to_ne_bytes());
        }
        Body(b)
    }

    /// `struct ifaddrmsg`.
    pub fn addr(family: u8, prefix_len: u8, scope: u8, index: u32) -> Body {
        let mut b = vec![family, prefix_len, 0, scope];
        b.extend_from_slice(&index.to_ne_bytes());
        Body(b)
    }

    pub fn attr(mut self, kind: u16, data: &[u8]) -> Body {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align(self.0.len()), 0);
        self
    }

    /// A NUL-terminated string attribute, as IFLA_IFNAME is.
    pub fn attr_str(self, kind: u16, text: &str) -> Body {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }
}

/// One data message of a reply: its body, after the netlink header.
pub struct Reply {
    pub body: Vec<u8>,
}

impl Reply {
    /// The attributes after a fixed header of `fixed` bytes.
    pub fn attrs(&self, fixed: usize) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut at = fixed;
        while at + 4 <= self.body.len() {
            let len = u16::from_ne_bytes([self.body[at], self.body[at + 1]]) as usize;
            let kind = u16::from_ne_bytes([self.body[at + 2], self.body[at + 3]]) & 0x3fff;
            if len < 4 || at + len > self.body.len() {
                break;
            }
            out.push((kind, &self.body[at + 4..at + len]));
            at += align(len);
        }
        out
    }

    pub fn u32_at(&self, offset: usize) -> u32 {
        self.body
            .get(offset..offset + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    }
}

/// A NETLINK_ROUTE socket, in the network namespace it was made in.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A socket in the caller's network namespace.
    pub fn open() -> io::Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd, seq: 0 })
    }

    /// A socket in the network namespace `netns`: made on a thread that
    /// joins it (a socket stays in the namespace it was made in), so the
    /// caller's own namespace never changes.
    pub fn open_in(netns: BorrowedFd<'_>) -> io::Result<Socket> {
        let netns = netns.try_clone_to_owned()?;
        std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                Socket::open()
            })?
            .join()
            .map_err(|_| io::Error::other("the netns thread panicked"))?
    }

    /// Sends a request and reads its reply: the data messages of a dump,
    /// or nothing once the kernel acknowledges a change.
    pub fn request(
        &mut self,
        kind: u16,
        dump: bool,
        flags: u16,
        body: Body,
    ) -> io::Result<Vec<Reply>> {
        self.seq += 1;
        let flags = NLM_F_REQUEST | flags | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        let mut msg = Vec::with_capacity(HEADER + body.0.len());
        msg.extend_from_slice(&((HEADER + body.0.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body.0);
        // SAFETY: sends `msg.len()` bytes from `msg` on a socket we own; a
        // netlink socket with no peer set sends to the kernel.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
            let got =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            let data = &buf[..got as usize];
            let mut at = 0;
            while at + HEADER <= data.len() {
                let len = u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                    as usize;
                let kind = u16::from_ne_bytes([data[at + 4], data[at + 5]]);
                let seq =
                    u32::from_ne_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
                if len < HEADER || at + len > data.len() {
                    return Err(io::Error::other("a truncated netlink reply"));
                }
                let body = &data[at + HEADER..at + len];
                at += align(len);
                if seq != self.seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EIO);
                        return match code {
                            0 => Ok(replies),
                            code => Err(io::Error::from_raw_os_error(-code)),
                        };
                    }
                    _ => {
                        replies.push(Reply {
                            body: body.to_vec(),
                        });
                        // A lookup (not a dump) answers with its one message, then the ack.
                    }
                }
            }
        }
    }
}
