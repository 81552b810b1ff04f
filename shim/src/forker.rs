//! The single-threaded forker: the process that calls the library's
//! `create`, `exec`, and a `start` or `delete` that runs hooks, for the
//! shim (docs/shim.md). It serves one request of the shim's and ends.
//!
//! The shim is multi-threaded (ttrpc server, signal and exit threads), and
//! the library refuses to fork from a threaded process (`Error::Threaded`):
//! a child forked there could block forever on a lock another thread held.
//! `start` and `delete` run hooks, child processes the library waits for,
//! whose status the shim's reaper thread (`waitpid(-1)`) would take first.
//! So the shim re-executes itself as the forker (`FORKER_ARG`), a fresh
//! process that never starts a thread (for its first request it has one
//! forked before its own first thread, `fork_early`), connected by a
//! `SOCK_SEQPACKET` socketpair on the forker's stdin. The shim sends
//! a [`Request`] with the container's stdio descriptors (SCM_RIGHTS); the
//! forker forks a short-lived worker, which calls the library with the
//! descriptors in its options; the worker writes its [`Reply`] (the new
//! process's pid, or the error) to a pipe and exits. The forker reaps the
//! worker and sends the reply on; after a worker that died without one in
//! the middle of a create, it first removes what the worker had made. The
//! container's process is the worker's child, so when the worker exits it
//! is reparented to the shim, the nearest child subreaper, which reaps it
//! and reports its exit.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

mod early;
mod worker;

pub use early::{fork_early, rewrite_arguments, single_threaded};

/// The hidden first argument that makes the shim binary the forker.
pub const FORKER_ARG: &str = "berth-forker";

/// The largest request or reply (a process spec with a long environment).
const MAX_MESSAGE: usize = 256 * 1024;

/// What the forker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// `berth::create` of `id` from `bundle`, state under `root`.
    Create {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        console_socket: Option<PathBuf>,
        flags: CreateFlags,
    },
    /// `berth::exec::exec` of `process` in container `id`, with the
    /// container's recorded settings (seccomp, ...).
    Exec {
        root: PathBuf,
        id: String,
        process: Box<oci_spec::runtime::Process>,
        console_socket: Option<PathBuf>,
    },
    /// `Container::start` of `id`: its poststart hooks are the worker's
    /// children, waited for by it (the shim's reaper would take their
    /// status from under the library).
    Start { root: PathBuf, id: String },
    /// `berth::container::delete` of `id`, which runs its poststop hooks.
    Delete {
        root: PathBuf,
        id: String,
        force: bool,
    },
    /// `Container::checkpoint` of `id` (CRIU is the worker's child).
    Checkpoint {
        root: PathBuf,
        id: String,
        criu: Criu,
        leave_running: bool,
    },
    /// `berth::checkpoint::restore` of `id` from `criu.image_path`, with the
    /// stdio given, as create.
    Restore {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        criu: Criu,
        console_socket: Option<PathBuf>,
    },
}

/// CRIU's options for a checkpoint or a restore, as containerd sends them
/// (the runc shim's `CheckpointOptions`).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Criu {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub file_locks: bool,
    pub shell_job: bool,
    pub empty_namespaces: Vec<String>,
    /// runc's names (soft, full, strict, ignore); empty for CRIU's default.
    pub cgroups_mode: String,
}

/// The runtime options (runc's, as containerd sends them) that the
/// library's create takes.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct CreateFlags {
    pub systemd_cgroup: bool,
    pub no_pivot_root: bool,
    pub no_new_keyring: bool,
}

/// A request and which of stdin, stdout, stderr come with it as
/// descriptors (in that order); the others are /dev/null.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<R> {
    request: R,
    stdio: [bool; 3],
}

/// The pid of the process made, or the library's error message.
pub type Reply = Result<i32, String>;

/// The shim's end of the forker.
pub struct Forker {
    socket: OwnedFd,
    /// Its process, moved with the shim to the options' `ShimCgroup`.
    pid: u32,
}

impl Forker {
    /// Starts the forker: this binary re-executed with `FORKER_ARG`, its
    /// stdin one end of a socketpair. Safe from a threaded process (it is
    /// std's spawn, fork+exec with nothing run in between).
    pub fn spawn() -> std::io::Result<Forker> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let child = Command::new(std::env::current_exe()?)
            .arg(FORKER_ARG)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()?;
        // The shim's reaper thread reaps it when it exits (docs/shim.md);
        // the Child handle is not waited on.
        let pid = child.id();
        drop(child);
        Ok(Forker { socket: ours, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The forker made at the serving shim's start (`fork_early`), or, after
    /// it died or where that fork failed, a new one (`spawn`).
    pub fn early_or_spawn() -> std::io::Result<Forker> {
        match early::take() {
            Some(forker) => Ok(forker),
            None => Forker::spawn(),
        }
    }

    /// Sends `request` with `stdio` (stdin, stdout, stderr; `None` for
    /// /dev/null) and waits for the reply. An error: the forker is gone,
    /// and whether the request reached it.
    pub fn call(&mut self, request: &Request, stdio: &[Option<OwnedFd>; 3]) -> Result<Reply, Lost> {
        let envelope = Envelope {
            request,
            stdio: [stdio[0].is_some(), stdio[1].is_some(), stdio[2].is_some()],
        };
        let fds: Vec<&OwnedFd> = stdio.iter().flatten().collect();
        let bytes = serde_json::to_vec(&envelope).map_err(|e| Lost::NotSent(e.into()))?;
        send(&self.socket, &bytes, &fds).map_err(Lost::NotSent)?;
        match receive(&self.socket) {
            Ok(Some((bytes, _))) => {
                serde_json::from_slice(&bytes).map_err(|e| Lost::NoReply(e.into()))
            }
            Ok(None) => Err(Lost::NoReply(std::io::Error::other("the forker exited"))),
            Err(e) => Err(Lost::NoReply(e)),
        }
    }
}

/// How a call to the forker failed.
#[derive(Debug)]
pub enum Lost {
    /// The request never reached it (it had exited): safe to try again.
    NotSent(std::io::Error),
    /// It got the request and died before answering.
    NoReply(std::io::Error),
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lost::NotSent(e) => write!(f, "the forker is gone: {e}"),
            Lost::NoReply(e) => write!(f, "the forker died before answering: {e}"),
        }
    }
}

/// The re-executed forker's main (`FORKER_ARG`).
pub fn serve() -> std::process::ExitCode {
    // No parent-death signal: it follows the thread that spawned the
    // forker, and the shim's ttrpc threads come and go. The forker ends
    // when the shim's end of the socket closes, which its death does.
    let socket = match take_socket() {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("berth forker: its socket: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    std::process::ExitCode::from(serve_on(socket) as u8)
}

/// The forker's main loop: one request at a time until the shim closes
/// its end (or dies, which closes it). The exit status.
fn serve_on(socket: OwnedFd) -> i32 {
    let mut scored = false;
    loop {
        let (bytes, fds) = match receive(&socket) {
            Ok(Some(message)) => message,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("berth forker: receive: {e}");
                return 1;
            }
        };
        if !scored {
            scored = true;
            if let Err(e) = follow_oom_score() {
                eprintln!("berth forker: oom_score_adj: {e}");
            }
        }
        let reply: Reply = match serde_json::from_slice::<Envelope<Request>>(&bytes) {
            Ok(envelope) => {
                let stdio = arrange(envelope.stdio, fds);
                serve_request(envelope.request, stdio)
            }
            Err(e) => Err(format!("bad request to the forker: {e}")),
        };
        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
        if let Err(e) = send(&socket, &bytes, &[]) {
            eprintln!("berth forker: send: {e}");
            return 1;
        }
    }
}

/// Takes the shim's `oom_score_adj`, which the containers must inherit as
/// they do under the runc shim. The early forker was forked before the
/// `start` command raised the shim's score one above containerd's
/// (`adjust_oom_score` in main.rs); by the first request it has. Raising a
/// score needs no privilege, and the shim's is never below the forker's.
fn follow_oom_score() -> std::io::Result<()> {
    let parent = std::os::unix::process::parent_id();
    let score = std::fs::read_to_string(format!("/proc/{parent}/oom_score_adj"))?;
    if std::fs::read_to_string("/proc/self/oom_score_adj")? != score {
        std::fs::write("/proc/self/oom_score_adj", score.trim())?;
    }
    Ok(())
}

/// The socketpair end the shim gave as this process's stdin
/// (`Forker::spawn`), moved off descriptor 0 (close-on-exec), and /dev/null
/// on 0 in its place: what the worker starts without stdio of its own (a
/// hook's watchdog, CRIU) must not hold the forker's socket.
fn take_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: descriptor 0 is that socket, owned by nothing else in this
    // process; it is borrowed only for the copy.
    let socket = unsafe { BorrowedFd::borrow_raw(0) }.try_clone_to_owned()?;
    // dup2 replaces descriptor 0 in one step: closing it first would let
    // the open take 0 and leave it closed with the file.
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    Ok(socket)
}

/// Runs `request` in a worker. A create or restore whose worker died
/// without replying (killed half-way) may have left the container's state
/// directory, cgroup and init: they are removed first (`Request::undo`).
fn serve_request(request: Request, stdio: [Option<OwnedFd>; 3]) -> Reply {
    let undo = request.undo();
    match (run_worker(request, stdio), undo) {
        (Err(Died(died)), Some(undo)) => {
            let undone = run_worker(undo.clone(), [None, None, None]).map_err(String::from);
            Err(undone_after(died, &undo, undone))
        }
        (reply, _) => reply.map_err(String::from),
    }
}

impl Request {
    /// For a create or restore of an id that has no state directory yet:
    /// the forced delete that removes what it made if it is cut short (its
    /// worker, or the forker, killed half-way). `None` for the others, and
    /// where the directory is there already: another container's, which
    /// the create would refuse, not this request's to remove.
    pub fn undo(&self) -> Option<Request> {
        match self {
            Request::Create { root, id, .. } | Request::Restore { root, id, .. }
                if !root.join(id).exists() =>
            {
                Some(Request::Delete {
                    root: root.clone(),
                    id: id.clone(),
                    force: true,
                })
            }
            _ => None,
        }
    }
}

/// The error to answer with after `failure`, and `undo`'s result.
fn undone_after(failure: String, undo: &Request, undone: Reply) -> String {
    let id = match undo {
        Request::Delete { id, .. } => id.as_str(),
        _ => "the container",
    };
    match undone {
        Ok(_) => format!("{failure}; what it had made of {id} was removed"),
        Err(e) => format!("{failure}; removing what it had made of {id} failed: {e}"),
    }
}

/// A request was in flight when the forker died (`lost`): its worker died
/// with it (the worker's parent-death signal), so `undo` (the request's
/// `Request::undo`, taken before it was sent) is run through a new forker.
/// The error to answer.
pub fn after_lost(undo: Option<Request>, lost: &Lost) -> String {
    let Some(undo) = undo else {
        return lost.to_string();
    };
    let undone = match Forker::spawn() {
        Ok(mut forker) => forker
            .call(&undo, &[None, None, None])
            .unwrap_or_else(|e| Err(e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    undone_after(lost.to_string(), &undo, undone)
}

/// A worker's failure: the library's error as its reply, or the worker's
/// death without one (`Died`).
enum WorkerError {
    Replied(String),
    Died(String),
}
use WorkerError::Died;

impl From<WorkerError> for String {
    fn from(error: WorkerError) -> String {
        match error {
            WorkerError::Replied(e) | WorkerError::Died(e) => e,
        }
    }
}

/// Forks the worker for one request, reaps it and returns its reply.
fn run_worker(request: Request, stdio: [Option<OwnedFd>; 3]) -> Result<i32, WorkerError> {
    let failed = WorkerError::Replied;
    let forker = nix::unistd::getpid();
    let (reply_read, reply_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    // SAFETY: the forker is single-threaded (it never starts a thread), so
    // the child may run any code, allocate included, until it exits.
    match unsafe { fork() } {
        Err(e) => Err(failed(format!("fork of the forker's worker: {e}"))),
        Ok(ForkResult::Child) => {
            drop(reply_read);
            worker::die_with(forker);
            let reply = worker::work(request, stdio);
            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
            let written = nix::unistd::write(&reply_write, &bytes);
            // SAFETY: _exit(2) ends the worker without running the
            // forker's atexit handlers or flushing its buffers twice.
            unsafe { libc::_exit(if written.is_ok() { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(reply_write);
            drop(stdio);
            let status =
                waitpid(child, None).map_err(|e| failed(format!("wait for the worker: {e}")))?;
            // The container's process may hold the write end (until it
            // execs): read what the worker wrote without waiting for EOF.
            nix::fcntl::fcntl(&reply_read, nix::fcntl::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| failed(format!("reply pipe: {e}")))?;
            let mut bytes = Vec::new();
            let _ = std::fs::File::from(reply_read).read_to_end(&mut bytes);
            match serde_json::from_slice::<Reply>(&bytes) {
                Ok(reply) => reply.map_err(failed),
                Err(_) => Err(Died(format!(
                    "the forker's worker died without answering ({})",
                    how_it_ended(status)
                ))),
            }
        }
    }
}

/// The descriptors that came with a request, in their places: stdin,
/// stdout, stderr (`None` for those not given).
fn arrange(present: [bool; 3], fds: Vec<OwnedFd>) -> [Option<OwnedFd>; 3] {
    let mut fds = fds.into_iter();
    present.map(|given| if given { fds.next() } else { None })
}

/// A reaped worker's end, in words: the message reaches the ctr user.
fn how_it_ended(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        other => format!("{other:?}"),
    }
}

/// One datagram with `fds` attached.
pub(crate) fn send(socket: &OwnedFd, bytes: &[u8], fds: &[&OwnedFd]) -> std::io::Result<()> {
    let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// One datagram and the descriptors attached; `None` at end of stream.
pub(crate) fn receive(socket: &OwnedFd) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([i32; 3]);
    let mut iov = [IoSliceMut::new(&mut buffer)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: SCM_RIGHTS just installed these descriptors in this
            // process; nothing else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let length = message.bytes;
    if length == 0 {
        return Ok(None);
    }
    buffer.truncate(length);
    Ok(Some((buffer, fds)))
}
