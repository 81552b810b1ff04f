//! The single-threaded forker: the process that calls the library's
//! `create`, `exec`, `start` and `delete` for the shim (docs/shim.md).
//!
//! The shim is multi-threaded (ttrpc server, signal and exit threads), and
//! the library refuses to fork from a threaded process (`Error::Threaded`):
//! a child forked there could block forever on a lock another thread held.
//! `start` and `delete` run hooks, child processes the library waits for,
//! whose status the shim's reaper thread (`waitpid(-1)`) would take first.
//! So the shim re-executes itself as the forker (`FORKER_ARG`), a fresh
//! process that never starts a thread, connected by a `SOCK_SEQPACKET`
//! socketpair on the forker's stdin. One request at a time: the shim sends
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
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

/// The hidden first argument that makes the shim binary the forker.
pub const FORKER_ARG: &str = "berth-forker";

/// The largest request or reply (a process spec with a long environment).
const MAX_MESSAGE: usize = 256 * 1024;

/// What the forker is asked to do.
#[derive(Debug, Serialize, Deserialize)]
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

impl Criu {
    fn options(self) -> Result<berth::checkpoint::CriuOptions, String> {
        let manage_cgroups_mode = match self.cgroups_mode.as_str() {
            "" => None,
            mode => Some(
                berth::checkpoint::CgroupMode::parse(mode)
                    .ok_or_else(|| format!("unknown cgroups mode {mode:?}"))?,
            ),
        };
        Ok(berth::checkpoint::CriuOptions {
            criu: PathBuf::from("criu"),
            image_path: self.image_path,
            work_path: self.work_path,
            tcp_established: self.open_tcp,
            ext_unix_sk: self.external_unix_sockets,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode,
            empty_ns: self.empty_namespaces,
            ..Default::default()
        })
    }
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
        drop(child);
        Ok(Forker { socket: ours })
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

/// The forker's main loop: one request at a time until the shim closes
/// its end (or dies, which closes it).
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
    loop {
        let (bytes, fds) = match receive(&socket) {
            Ok(Some(message)) => message,
            Ok(None) => return std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("berth forker: receive: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
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
            return std::process::ExitCode::FAILURE;
        }
    }
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
/// directory, cgroup and init: they are removed with a forced delete of the
/// id, in a worker of its own, unless the state directory was there before
/// the request (another container's: the create would have refused it).
fn serve_request(request: Request, stdio: [Option<OwnedFd>; 3]) -> Reply {
    let claims = match &request {
        Request::Create { root, id, .. } | Request::Restore { root, id, .. } => {
            Some((root.clone(), id.clone())).filter(|(root, id)| !root.join(id).exists())
        }
        _ => None,
    };
    match (run_worker(request, stdio), claims) {
        (Err(Died(died)), Some((root, id))) if root.join(&id).exists() => {
            Err(clean_up(root, id, died))
        }
        (reply, _) => reply.map_err(String::from),
    }
}

/// After `died`: the forced delete of `id`, and the error to answer with.
fn clean_up(root: PathBuf, id: String, died: String) -> String {
    let delete = Request::Delete {
        root,
        id: id.clone(),
        force: true,
    };
    match run_worker(delete, [None, None, None]) {
        Ok(_) => format!("{died}; what it had made of {id} was removed"),
        Err(e) => format!(
            "{died}; removing what it had made of {id} failed: {}",
            String::from(e)
        ),
    }
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
    let (reply_read, reply_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    // SAFETY: the forker is single-threaded (it never starts a thread), so
    // the child may run any code, allocate included, until it exits.
    match unsafe { fork() } {
        Err(e) => Err(failed(format!("fork of the forker's worker: {e}"))),
        Ok(ForkResult::Child) => {
            drop(reply_read);
            let reply = work(request, stdio);
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
                Err(_) => Err(Died(format!("the forker's worker died: {status:?}"))),
            }
        }
    }
}

/// In the worker: the library call, with the process's stdio in its
/// options.
fn work(request: Request, stdio: [Option<OwnedFd>; 3]) -> Reply {
    let stdio_error = |e: std::io::Error| format!("container stdio: {e}");
    match request {
        Request::Create {
            root,
            id,
            bundle,
            console_socket,
            flags,
        } => {
            let mut options = berth::CreateOptions::new(root, id, bundle)
                .detach(true)
                .systemd_cgroup(flags.systemd_cgroup)
                .no_pivot(flags.no_pivot_root)
                .no_new_keyring(flags.no_new_keyring);
            options.stdio = process_stdio(stdio, console_socket.is_some()).map_err(stdio_error)?;
            options.console_socket = console_socket;
            berth::create(&options)
                .map(|container| container.pid().as_raw())
                .map_err(|e| e.to_string())
        }
        Request::Exec {
            root,
            id,
            process,
            console_socket,
        } => {
            let container = berth::Container::load(&root, &id).map_err(|e| e.to_string())?;
            let mut options = berth::exec::ExecOptions::for_container_process(&container, *process)
                .map_err(|e| e.to_string())?;
            options.detach = true;
            options.stdio = process_stdio(stdio, console_socket.is_some()).map_err(stdio_error)?;
            options.console_socket = console_socket;
            berth::exec::exec(&container, &options)
                .map(|process| process.pid.as_raw())
                .map_err(|e| e.to_string())
        }
        Request::Start { root, id } => {
            let mut container = berth::Container::load(&root, &id).map_err(|e| e.to_string())?;
            container.start().map_err(|e| e.to_string())?;
            Ok(container.pid().as_raw())
        }
        Request::Delete { root, id, force } => berth::container::delete(&root, &id, force)
            .map(|_| 0)
            .map_err(|e| e.to_string()),
        Request::Checkpoint {
            root,
            id,
            criu,
            leave_running,
        } => {
            let mut container = berth::Container::load(&root, &id).map_err(|e| e.to_string())?;
            let options = berth::checkpoint::CheckpointOptions {
                criu: criu.options()?,
                leave_running,
                ..Default::default()
            };
            container.checkpoint(&options).map_err(|e| e.to_string())?;
            Ok(0)
        }
        Request::Restore {
            root,
            id,
            bundle,
            criu,
            console_socket,
        } => {
            // The library's restore takes no stdio: CRIU re-attaches the
            // dumped process's pipes to its caller's 0-2.
            install_stdio(stdio).map_err(stdio_error)?;
            let options = berth::checkpoint::RestoreOptions {
                criu: criu.options()?,
                root,
                id,
                bundle,
                console_socket,
                ..Default::default()
            };
            berth::checkpoint::restore(&options)
                .map(|container| container.pid().as_raw())
                .map_err(|e| e.to_string())
        }
    }
}

/// The descriptors that came with a request, in their places: stdin,
/// stdout, stderr (`None` for those not given).
fn arrange(present: [bool; 3], fds: Vec<OwnedFd>) -> [Option<OwnedFd>; 3] {
    let mut fds = fds.into_iter();
    present.map(|given| if given { fds.next() } else { None })
}

/// The process's stdio for the library: the descriptors given, /dev/null
/// for the others. With a terminal (`terminal`) and nothing given, nothing:
/// the terminal is its stdio (descriptors given anyway reach the library,
/// which refuses them).
fn process_stdio(stdio: [Option<OwnedFd>; 3], terminal: bool) -> std::io::Result<berth::Stdio> {
    if terminal && stdio.iter().all(Option::is_none) {
        return Ok(berth::Stdio::default());
    }
    let [stdin, stdout, stderr] = stdio.map(|fd| fd.map_or_else(dev_null, Ok));
    Ok(berth::Stdio::new(
        Some(stdin?),
        Some(stdout?),
        Some(stderr?),
    ))
}

fn dev_null() -> std::io::Result<OwnedFd> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/null")?;
    Ok(null.into())
}

/// Makes the given descriptors this process's stdin, stdout and stderr
/// (those not given: /dev/null), for a library call that takes the
/// caller's (restore).
fn install_stdio(stdio: [Option<OwnedFd>; 3]) -> std::io::Result<()> {
    for (target, fd) in stdio.into_iter().enumerate() {
        let source = fd.map_or_else(dev_null, Ok)?;
        match target {
            0 => nix::unistd::dup2_stdin(&source)?,
            1 => nix::unistd::dup2_stdout(&source)?,
            _ => nix::unistd::dup2_stderr(&source)?,
        }
    }
    Ok(())
}

/// One datagram with `fds` attached.
fn send(socket: &OwnedFd, bytes: &[u8], fds: &[&OwnedFd]) -> std::io::Result<()> {
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
fn receive(socket: &OwnedFd) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
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
