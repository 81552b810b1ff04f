//! Just enough of the D-Bus wire protocol to ask systemd for a transient
//! scope and to stop it: method calls out, replies, errors and signals in.
//! Spoken on systemd's private socket (/run/systemd/private), which takes
//! EXTERNAL authentication from root and needs no bus daemon and no Hello.
//! No library: a D-Bus library would start threads, and `create` forks
//! after talking to systemd.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A value this client sends: the few D-Bus types systemd's properties need.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    U64(u64),
    /// `au`
    U32Array(Vec<u32>),
    /// `y`
    Byte(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `d`
    F64(f64),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `ay`: systemd's CPU and NUMA node masks.
    Bytes(Vec<u8>),
    /// `as`
    StrArray(Vec<String>),
    /// `a(ss)`: systemd's DeviceAllow (path, access).
    StrPairArray(Vec<(String, String)>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::U32Array(_) => "au",
            Value::Byte(_) => "y",
            Value::I16(_) => "n",
            Value::U16(_) => "q",
            Value::I32(_) => "i",
            Value::U32(_) => "u",
            Value::I64(_) => "x",
            Value::F64(_) => "d",
            Value::ObjectPath(_) => "o",
            Value::Signature(_) => "g",
            Value::Bytes(_) => "ay",
            Value::StrArray(_) => "as",
            Value::StrPairArray(_) => "a(ss)",
        }
    }
}

/// A body argument of a method call.
pub enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    /// `a(sv)`: systemd's unit properties.
    Properties(&'a [(String, Value)]),
    /// `a(sa(sv))`: auxiliary units, always empty here.
    NoAuxUnits,
}

/// What came back for a call.
#[derive(Debug)]
pub enum Reply {
    /// A method return whose body starts with a string or object path (or has none).
    Return(Option<String>),
    /// `name: message`
    Error(String, String),
}

/// A `JobRemoved(u id, o job, s unit, s result)` signal.
#[derive(Debug)]
pub struct JobRemoved {
    pub job: String,
    pub result: String,
}

pub struct Connection {
    stream: BufReader<UnixStream>,
    serial: u32,
    /// Signals read while waiting for a reply, looked at later.
    pending: Vec<JobRemoved>,
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

impl Connection {
    /// Connect and authenticate as `uid` (this process's, as systemd sees
    /// it); reads time out after `timeout`.
    pub fn open(socket: &Path, uid: u32, timeout: Duration) -> io::Result<Connection> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut stream = BufReader::new(stream);
        let uid: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        // BEGIN goes with AUTH, as sd-bus's own clients send it: systemd 252
        // may leave a first message unread when it arrives in one read with a
        // late BEGIN. No message is sent before OK comes back.
        stream
            .get_mut()
            .write_all(format!("\0AUTH EXTERNAL {uid}\r\nBEGIN\r\n").as_bytes())?;
        let mut line = String::new();
        stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("D-Bus authentication refused: {}", line.trim()),
            ));
        }
        Ok(Connection {
            stream,
            serial: 0,
            pending: Vec::new(),
        })
    }

    /// Call `interface.member` on systemd's object `path` and wait for its reply.
    pub fn call(
        &mut self,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg],
    ) -> io::Result<Reply> {
        self.serial += 1;
        let serial = self.serial;
        let message = method_call(serial, path, interface, member, args);
        self.stream.get_mut().write_all(&message)?;
        loop {
            let message = self.read_message()?;
            match message.kind {
                METHOD_RETURN | ERROR if message.reply_serial == Some(serial) => {
                    let first =
                        first_string(&message.body, message.signature.as_deref().unwrap_or(""));
                    return Ok(if message.kind == ERROR {
                        Reply::Error(
                            message.error_name.unwrap_or_default(),
                            first.unwrap_or_default(),
                        )
                    } else {
                        Reply::Return(first)
                    });
                }
                SIGNAL => self.keep_signal(&message),
                _ => {}
            }
        }
    }

    /// A string property of systemd's object `path` (`None`: systemd answered with an error).
    pub fn get_property(
        &mut self,
        path: &str,
        interface: &str,
        name: &str,
    ) -> io::Result<Option<String>> {
        let reply = self.call(
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Arg::Str(interface), Arg::Str(name)],
        )?;
        Ok(match reply {
            Reply::Return(value) => value,
            Reply::Error(..) => None,
        })
    }

    /// Wait for the signal that `job` finished, and return its result (`done`, `failed`, ...).
    pub fn wait_job(&mut self, job: &str) -> io::Result<String> {
        loop {
            if let Some(index) = self.pending.iter().position(|j| j.job == job) {
                return Ok(self.pending.swap_remove(index).result);
            }
            let message = self.read_message()?;
            if message.kind == SIGNAL {
                self.keep_signal(&message);
            }
        }
    }

    fn keep_signal(&mut self, message: &Message) {
        if message.member.as_deref() == Some("JobRemoved")
            && message.signature.as_deref() == Some("uoss")
        {
            let mut r = Reader {
                buf: &message.body,
                pos: 0,
            };
            let parsed = (|| {
                r.u32()?;
                let job = r.string()?;
                r.string()?;
                Some(JobRemoved {
                    job,
                    result: r.string()?,
                })
            })();
            self.pending.extend(parsed);
        }
    }

    fn read_message(&mut self) -> io::Result<Message> {
        let mut fixed = [0u8; 16];
        self.stream.read_exact(&mut fixed)?;
        if fixed[0] != b'l' {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "D-Bus message is not little-endian",
            ));
        }
        let body_len = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]) as usize;
        let fields_len = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        let header_end = align(16 + fields_len, 8);
        if body_len > 1 << 26 || fields_len > 1 << 26 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "D-Bus message too large",
            ));
        }
        let mut rest = vec![0u8; header_end - 16 + body_len];
        self.stream.read_exact(&mut rest)?;
        let mut whole = fixed.to_vec();
        whole.extend_from_slice(&rest);
        let mut message = Message {
            kind: fixed[1],
            body: whole[header_end..].to_vec(),
            ..Message::default()
        };
        let mut r = Reader {
            buf: &whole[..16 + fields_len],
            pos: 16,
        };
        while r.pos < 16 + fields_len {
            r.align(8);
            let (Some(code), Some(sig)) = (r.byte(), r.signature()) else {
                break;
            };
            match (code, sig.as_str()) {
                (3, "s") => message.member = r.string(),
                (4, "s") => message.error_name = r.string(),
                (5, "u") => message.reply_serial = r.u32(),
                (8, "g") => message.signature = r.signature(),
                (_, "s" | "o") => drop(r.string()),
                (_, "g") => drop(r.signature()),
                (_, "u") => drop(r.u32()),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected D-Bus header field type {sig:?}"),
                    ))
                }
            }
        }
        Ok(message)
    }
}

#[derive(Default)]
struct Message {
    kind: u8,
    member: Option<String>,
    error_name: Option<String>,
    reply_serial: Option<u32>,
    signature: Option<String>,
    body: Vec<u8>,
}

fn first_string(body: &[u8], signature: &str) -> Option<String> {
    let mut r = Reader { buf: body, pos: 0 };
    match signature.chars().next()? {
        's' | 'o' => r.string(),
        // Properties.Get's variant: its own signature, then the value.
        'v' => match r.signature()?.as_str() {
            "s" | "o" => r.string(),
            _ => None,
        },
        _ => None,
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, to: usize) {
        self.pos = align(self.pos, to);
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.align(4);
        let bytes = self.buf.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        let text = self.buf.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len + 1;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    fn signature(&mut self) -> Option<String> {
        let len = self.byte()? as usize;
        let text = self.buf.get(self.pos..self.pos + len)?;
        self.pos += len + 1;
        Some(String::from_utf8_lossy(text).into_owned())
    }
}

/// A message under construction; offsets are from its first byte, as D-Bus alignment is.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, to: usize) {
        self.buf.resize(align(self.buf.len(), to), 0);
    }

    fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.byte(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// An array whose elements align to `element_align`; its length excludes the padding before the first.
    fn array(&mut self, element_align: usize, contents: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.align(element_align);
        let start = self.buf.len();
        contents(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Str(s) => self.string(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U64(v) => self.u64(*v),
            Value::U32Array(items) => self.array(4, |w| items.iter().for_each(|i| w.u32(*i))),
            Value::Byte(b) => self.byte(*b),
            Value::I16(v) => self.u16(*v as u16),
            Value::U16(v) => self.u16(*v),
            Value::I32(v) => self.u32(*v as u32),
            Value::U32(v) => self.u32(*v),
            Value::I64(v) => self.u64(*v as u64),
            Value::F64(v) => self.u64(v.to_bits()),
            Value::ObjectPath(s) => self.string(s),
            Value::Signature(s) => self.signature(s),
            Value::Bytes(bytes) => self.array(1, |w| w.buf.extend_from_slice(bytes)),
            Value::StrArray(items) => self.array(4, |w| items.iter().for_each(|i| w.string(i))),
            Value::StrPairArray(items) => self.array(8, |w| {
                for (a, b) in items {
                    w.align(8);
                    w.string(a);
                    w.string(b);
                }
            }),
        }
    }

    fn arg(&mut self, arg: &Arg) {
        match arg {
            Arg::Str(s) => self.string(s),
            Arg::Bool(b) => self.u32(u32::from(*b)),
            Arg::Properties(props) => self.array(8, |w| {
                for (name, value) in props.iter() {
                    w.align(8);
                    w.string(name);
                    w.signature(value.signature());
                    w.value(value);
                }
            }),
            Arg::NoAuxUnits => self.array(8, |_| {}),
        }
    }
}

fn method_call(serial: u32, path: &str, interface: &str, member: &str, args: &[Arg]) -> Vec<u8> {
    let mut body = Writer::default();
    let mut signature = String::new();
    for arg in args {
        body.arg(arg);
        signature.push_str(match arg {
            Arg::Str(_) => "s",
            Arg::Bool(_) => "b",
            Arg::Properties(_) => "a(sv)",
            Arg::NoAuxUnits => "a(sa(sv))",
        });
    }
    let mut m = Writer::default();
    m.byte(b'l');
    m.byte(METHOD_CALL);
    m.byte(0);
    m.byte(1);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.array(8, |w| {
        let field = |w: &mut Writer, code: u8, sig: &str, text: &str| {
            w.align(8);
            w.byte(code);
            w.signature(sig);
            if sig == "g" {
                w.signature(text);
            } else {
                w.string(text);
            }
        };
        field(w, 1, "o", path);
        field(w, 2, "s", interface);
        field(w, 3, "s", member);
        field(w, 6, "s", "org.freedesktop.systemd1");
        if !signature.is_empty() {
            field(w, 8, "g", &signature);
        }
    });
    m.align(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_laid_out_as_the_spec_says() {
        let props = [
            ("Delegate".to_string(), Value::Bool(true)),
            ("PIDs".to_string(), Value::U32Array(vec![7])),
        ];
        let m = method_call(
            3,
            "/o",
            "i.f",
            "M",
            &[Arg::Str("u"), Arg::Properties(&props), Arg::NoAuxUnits],
        );
        assert_eq!(&m[..4], b"l\x01\x00\x01");
        assert_eq!(u32::from_le_bytes([m[8], m[9], m[10], m[11]]), 3);
        let body_len = u32::from_le_bytes([m[4], m[5], m[6], m[7]]) as usize;
        let fields_len = u32::from_le_bytes([m[12], m[13], m[14], m[15]]) as usize;
        let body = &m[align(16 + fields_len, 8)..];
        assert_eq!(body.len(), body_len);
        // "u": len 1, 'u', NUL; pad to 8; the a(sv) array's length.
        assert_eq!(&body[..6], b"\x01\x00\x00\x00u\x00");
        let props_len = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
        // Delegate: name 4+8+1, "b" 3, bool 4 = 20; 4 bytes to the next 8; PIDs: name 4+4+1, "au" 4, pad 3, len 4, 7 4 = 24.
        assert_eq!(props_len, 20 + 4 + 24);
        let mut r = Reader { buf: body, pos: 16 };
        assert_eq!(r.string().as_deref(), Some("Delegate"));
        assert_eq!(r.signature().as_deref(), Some("b"));
        assert_eq!(r.u32(), Some(1));
        r.align(8);
        assert_eq!(r.string().as_deref(), Some("PIDs"));
        assert_eq!(r.signature().as_deref(), Some("au"));
        assert_eq!(r.u32(), Some(4));
        assert_eq!(r.u32(), Some(7));
        // The empty a(sa(sv)): a zero length, padded to 8 with no elements.
        assert_eq!(r.u32(), Some(0));
        assert_eq!(align(r.pos, 8), body.len());
    }
}
