//! CRIU's RPC (`criu swrk`): the few messages of images/rpc.proto that
//! checkpoint and restore use, in protobuf's wire format, over a
//! SOCK_SEQPACKET pair whose other end the `criu swrk` child holds.
//!
//! Hand-written rather than through the `rust-criu` crate: its 0.4 release
//! keeps the generated message types private and has no way to read the
//! restore's reply (the restored pid), answer CRIU's notifications, take the
//! terminal master CRIU sends with one, or set inherit_fd, external,
//! cg_root, manage_cgroups_mode, freeze_cgroup or the page server: all of
//! which a container's restore needs. The wire format is small: varints
//! and length-delimited fields.

use super::CheckpointError;
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use std::io::IoSliceMut;
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// criu_req_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqType {
    Dump = 1,
    Restore = 2,
    PreDump = 4,
    Notify = 6,
    FeatureCheck = 9,
}

/// A protobuf message being encoded: fields appended in any order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Msg(Vec<u8>);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    fn key(&mut self, field: u32, wire: u8) {
        put_varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }
    /// An int32/uint32/enum field (negative int32s sign-extend to ten bytes, as protobuf does).
    pub(crate) fn int(&mut self, field: u32, value: i64) -> &mut Msg {
        self.key(field, 0);
        put_varint(&mut self.0, value as u64);
        self
    }
    pub(crate) fn flag(&mut self, field: u32, value: bool) -> &mut Msg {
        self.int(field, i64::from(value))
    }
    /// Only when true: CRIU's defaults for these are all false.
    pub(crate) fn flag_if(&mut self, field: u32, value: bool) -> &mut Msg {
        if value {
            self.flag(field, true);
        }
        self
    }
    pub(crate) fn bytes(&mut self, field: u32, value: &[u8]) -> &mut Msg {
        self.key(field, 2);
        put_varint(&mut self.0, value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }
    pub(crate) fn str(&mut self, field: u32, value: &str) -> &mut Msg {
        self.bytes(field, value.as_bytes())
    }
    pub(crate) fn msg(&mut self, field: u32, value: &Msg) -> &mut Msg {
        self.bytes(field, &value.0.clone())
    }
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.0
    }
}

/// One decoded field: a varint or a length-delimited payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message, in order; None if it is malformed.
pub(crate) fn fields(buf: &[u8]) -> Option<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = get_varint(buf, &mut pos)?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => out.push((field, Field::Varint(get_varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(get_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
                out.push((field, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

fn varint_of(fields: &[(u32, Field<'_>)], num: u32) -> Option<u64> {
    fields.iter().rev().find_map(|(n, f)| match f {
        Field::Varint(v) if *n == num => Some(*v),
        _ => None,
    })
}

fn bytes_of<'a>(fields: &[(u32, Field<'a>)], num: u32) -> Option<&'a [u8]> {
    fields.iter().rev().find_map(|(n, f)| match f {
        Field::Bytes(b) if *n == num => Some(*b),
        _ => None,
    })
}

/// criu_resp, the parts Berth reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) kind: u64,
    pub(crate) success: bool,
    pub(crate) errno: i32,
    pub(crate) errmsg: Option<String>,
    /// restore.pid: the restored tree's root.
    pub(crate) restored_pid: Option<i32>,
    /// notify.script and notify.pid.
    pub(crate) notify: Option<(String, i32)>,
    /// features.mem_track and features.lazy_pages.
    pub(crate) mem_track: Option<bool>,
    pub(crate) lazy_pages: Option<bool>,
}

impl Response {
    pub(crate) fn decode(buf: &[u8]) -> Option<Response> {
        let top = fields(buf)?;
        let mut resp = Response {
            kind: varint_of(&top, 1)?,
            success: varint_of(&top, 2)? != 0,
            errno: varint_of(&top, 7).map_or(0, |v| v as i32),
            errmsg: bytes_of(&top, 9).map(|b| String::from_utf8_lossy(b).into_owned()),
            ..Response::default()
        };
        if let Some(restore) = bytes_of(&top, 4) {
            resp.restored_pid = varint_of(&fields(restore)?, 1).map(|v| v as i32);
        }
        if let Some(notify) = bytes_of(&top, 5) {
            let f = fields(notify)?;
            let script = bytes_of(&f, 1).map(|b| String::from_utf8_lossy(b).into_owned());
            let pid = varint_of(&f, 2).map_or(0, |v| v as i32);
            resp.notify = Some((script.unwrap_or_default(), pid));
        }
        if let Some(features) = bytes_of(&top, 8) {
            let f = fields(features)?;
            resp.mem_track = varint_of(&f, 1).map(|v| v != 0);
            resp.lazy_pages = varint_of(&f, 2).map(|v| v != 0);
        }
        Some(resp)
    }
}

/// A `criu swrk` child and our end of its socket.
pub(crate) struct Swrk {
    criu: PathBuf,
    child: Child,
    sock: OwnedFd,
}

impl Swrk {
    /// Start `criu swrk`; it waits for a request. Its stdio is ours, so the
    /// fds 0-2 that inherit_fd names are the caller's.
    pub(crate) fn start(criu: &Path) -> Result<Swrk, CheckpointError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| CheckpointError::Swrk(format!("socketpair: {e}")))?;
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(criu);
        command
            .arg("swrk")
            .arg(fd.to_string())
            .stdin(Stdio::inherit());
        // SAFETY: between fork and exec, only fcntl (async-signal-safe) on an
        // fd this process owns, so that the child keeps its end across exec.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|source| CheckpointError::CriuNotRun {
                criu: criu.to_path_buf(),
                source,
            })?;
        drop(theirs);
        Ok(Swrk {
            criu: criu.to_path_buf(),
            child,
            sock: ours,
        })
    }

    /// The swrk process's pid (a restore puts it into the container's cgroup first).
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What went wrong talking to criu: its exit, if it has exited.
    fn lost(&mut self, what: String) -> CheckpointError {
        // A criu that fails at once has usually exited by now; give it a moment to say how.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let exit = match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({} {status})", self.criu.display()),
            _ => String::new(),
        };
        CheckpointError::Swrk(format!(
            "{what}{exit}: is it CRIU (`{} swrk`)?",
            self.criu.display()
        ))
    }

    fn send(&mut self, req: &Msg) -> Result<(), CheckpointError> {
        match nix::sys::socket::send(self.sock.as_raw_fd(), req.encoded(), MsgFlags::empty()) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.lost(format!("send the request: {e}"))),
        }
    }

    /// One message, with the fd CRIU passed along (the orphan pts master).
    fn recv(&mut self) -> Result<(Response, Option<OwnedFd>), CheckpointError> {
        // CRIU may never answer (a lazy-pages restore whose page server never
        // comes, a hung dump): a stop request to the runtime ends it, so that
        // the caller's undo runs instead of the runtime dying with CRIU, its
        // mounts and the restored cgroup left behind.
        if let Err(stopped) =
            crate::sys::stop_signals::wait_readable(self.sock.as_fd(), "CRIU worked on the request")
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return Err(CheckpointError::Stopped(stopped.to_string()));
        }
        match self.recv_message() {
            Ok(got) => Ok(got),
            Err(CheckpointError::Swrk(what)) => Err(self.lost(what)),
            Err(e) => Err(e),
        }
    }

    fn recv_message(&self) -> Result<(Response, Option<OwnedFd>), CheckpointError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| CheckpointError::Swrk(format!("receive from criu: {e}")))?;
        let mut fd = None;
        for c in msg
            .cmsgs()
            .map_err(|e| CheckpointError::Swrk(e.to_string()))?
        {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        let len = msg.bytes;
        if len == 0 {
            return Err(CheckpointError::Swrk(
                "criu closed the connection without a reply".into(),
            ));
        }
        let resp = Response::decode(&buf[..len])
            .ok_or_else(|| CheckpointError::Swrk("criu sent a malformed reply".into()))?;
        Ok((resp, fd))
    }

    /// Send a request of `kind` with `opts`, answering each notification
    /// through `on_notify` (script, pid, fd), until the final reply.
    pub(crate) fn call(
        &mut self,
        kind: ReqType,
        opts: Option<&Msg>,
        extra: impl FnOnce(&mut Msg),
        mut on_notify: impl FnMut(&str, i32, Option<OwnedFd>) -> Result<(), CheckpointError>,
    ) -> Result<Response, CheckpointError> {
        let mut req = Msg::default();
        req.int(1, kind as i64);
        if let Some(opts) = opts {
            req.msg(2, opts);
        }
        extra(&mut req);
        self.send(&req)?;
        let mut failed_hook = None;
        loop {
            let (resp, fd) = self.recv()?;
            if resp.kind == ReqType::Notify as u64 {
                let (script, pid) = resp.notify.clone().unwrap_or_default();
                let ok = match on_notify(&script, pid, fd) {
                    Ok(()) => true,
                    Err(e) => {
                        failed_hook.get_or_insert(e);
                        false
                    }
                };
                let mut answer = Msg::default();
                answer.int(1, ReqType::Notify as i64).flag(3, ok);
                self.send(&answer)?;
                continue;
            }
            if let Some(e) = failed_hook {
                return Err(e);
            }
            return Ok(resp);
        }
    }

    /// Close the socket and reap the child (it exits once the socket closes).
    pub(crate) fn finish(self) {
        let Swrk {
            mut child, sock, ..
        } = self;
        drop(sock);
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_varints_strings_and_nested_messages() {
        let mut inner = Msg::default();
        inner.int(1, 4242);
        let mut m = Msg::default();
        m.int(1, 2)
            .flag(2, true)
            .msg(4, &inner)
            .str(9, "oops")
            .int(7, -1);
        let r = Response::decode(m.encoded()).expect("decodes");
        assert_eq!(r.kind, 2);
        assert!(r.success);
        assert_eq!(r.restored_pid, Some(4242));
        assert_eq!(r.errmsg.as_deref(), Some("oops"));
        assert_eq!(r.errno, -1);
    }

    #[test]
    fn rejects_truncated_input() {
        let mut m = Msg::default();
        m.str(9, "abcdef");
        let bytes = m.encoded();
        assert!(Response::decode(&bytes[..bytes.len() - 2]).is_none());
        assert!(fields(&[0x80]).is_none());
    }
}
