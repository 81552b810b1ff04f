//! `exec`, top to bottom: a new process in a running container.
//!
//! The parent joins the container's pid (and time) namespace for its
//! children, clones the child, moves it into the container's cgroup, and lets
//! it go on; the child joins the other namespaces (mount last, which also
//! makes the container's root its root), makes its terminal if asked, applies
//! the process attributes and the container's seccomp profile, and execs.

use crate::container::Container;
use crate::error::{Error, Result};
use crate::namespaces::Namespaces;
use crate::pidfd::PidfdSocket;
use crate::state::Status;
use crate::sync::{self, Channel, Message};
use crate::{console, process, seccomp};
use oci_spec::runtime::{LinuxSeccomp, Process};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// What `exec` runs and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The process to run (runc's process.json, or one built from the container's own).
    pub process: Process,
    /// The container's seccomp profile, which exec'd processes get too.
    pub seccomp: Option<LinuxSeccomp>,
    /// A unix socket to send the terminal's master to (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Where to write the process's host pid.
    pub pid_file: Option<PathBuf>,
    /// Pass file descriptors 3 .. 3+N of the caller to the process.
    pub preserve_fds: u32,
    /// Whether the caller returns without waiting, for the terminal checks.
    pub detach: bool,
    /// Exec into a paused container (the process starts frozen).
    pub ignore_paused: bool,
    /// Existing sub-cgroups of the container's cgroup to put the process in
    /// (runc's `--cgroup`): (controller, path), controller "" for every hierarchy.
    pub sub_cgroups: Vec<(String, PathBuf)>,
    /// Where to send a pidfd of the process once it runs (runc 1.2's `--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
}

/// A process started in a container.
#[derive(Debug)]
pub struct ExecProcess {
    /// Host pid; a child of the caller.
    pub pid: i32,
    /// The terminal's master, in the foreground with `process.terminal`.
    pub console: Option<OwnedFd>,
}

/// Start `options.process` in `container`. Forks: call from a single-threaded process.
pub fn exec(container: &Container, options: &ExecOptions) -> Result<ExecProcess> {
    match container.status() {
        Status::Running | Status::Created => {}
        Status::Paused if options.ignore_paused => {}
        Status::Paused => return Err(Error::ExecPaused),
        Status::Stopped => return Err(Error::ExecStopped),
        other => return Err(Error::ExecInState(other)),
    }
    let terminal = options.process.terminal().unwrap_or(false);
    crate::create::check_terminal(terminal, options.console_socket.as_deref(), options.detach)?;
    crate::lsm::check(&options.process)?;
    let filter = options.seccomp.as_ref().map(seccomp::build).transpose()?;
    let cgroup = container.record().cgroup.sub_cgroup(&options.sub_cgroups)?;
    let pidfd_socket = options
        .pidfd_socket
        .as_deref()
        .map(PidfdSocket::connect)
        .transpose()?;
    let namespaces = Namespaces::of_process(container.pid())?;
    let (parent_end, child_end) = sync::channel().map_err(Error::Sync)?;

    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| Error::Init(format!("set non-dumpable: {e}")))?;
    // The child enters the cgroup itself, as create's init does (cgroups/entry.rs).
    let entry = cgroup.entry()?;
    let into_cgroup = entry.v2_dir().filter(|_| namespaces.clones_into_cgroup());
    let pid = namespaces.clone_init(into_cgroup)?;
    if pid == 0 {
        drop(parent_end);
        let keyring = (!container.record().no_new_keyring).then(|| container.record().id.as_str());
        let failure = run_child(
            &namespaces,
            &child_end,
            entry,
            options,
            filter.as_ref(),
            keyring,
        );
        let _ = child_end.send(&Message::Failed(failure));
        // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
        unsafe { libc::_exit(1) };
    }
    drop(child_end);
    let kill_child = |e: Error| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        e
    };
    if !namespaces.clones_into_cgroup() {
        entry.add_to_v2(pid).map_err(|e| kill_child(e.into()))?;
    }
    drop(entry);
    parent_end
        .send(&Message::Proceed)
        .map_err(|e| kill_child(Error::Sync(e)))?;
    let mut console = None;
    // The child closes its end when it execs (close-on-exec): end-of-file means it did.
    loop {
        match parent_end
            .recv_unless_stopped("the process to exec started")
            .map_err(kill_child)?
        {
            Some((Message::Console, Some(master))) => console = Some(master),
            Some((Message::SeccompListener, Some(fd))) => {
                if let Some(profile) = &options.seccomp {
                    let state = serde_json::to_string(&container.state()).unwrap_or_default();
                    seccomp::hand_to_listener(profile, pid, &state, fd.as_fd())
                        .map_err(|e| kill_child(e.into()))?;
                }
            }
            Some((Message::Failed(reason), _)) => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                return Err(Error::Init(reason));
            }
            Some((other, _)) => {
                return Err(kill_child(Error::Init(format!(
                    "unexpected message from the exec'd process: {other:?}"
                ))))
            }
            None => break,
        }
    }
    let console = console::hand_over(options.console_socket.as_deref(), console)
        .map_err(|e| kill_child(Error::Init(e.to_string())))?;
    if let Some(socket) = &pidfd_socket {
        socket
            .send(pid, "setns")
            .map_err(|e| kill_child(e.into()))?;
    }
    if let Some(path) = &options.pid_file {
        crate::create::write_pid_file(path, pid)?;
    }
    Ok(ExecProcess { pid, console })
}

/// The child's side; returns only on failure, with the reason.
fn run_child(
    namespaces: &Namespaces,
    channel: &Channel,
    cgroup_entry: crate::cgroups::Entry,
    options: &ExecOptions,
    filter: Option<&libseccomp::ScmpFilterContext>,
    session_keyring: Option<&str>,
) -> String {
    process::reset_signals();
    match channel.recv() {
        Ok(Some(Message::Proceed)) => {}
        _ => return "the runtime went away before the process could start".into(),
    }
    if let Err(e) = cgroup_entry.enter_v1() {
        return e;
    }
    if let Err(e) = namespaces.enter_in_init() {
        return e.to_string();
    }
    if let Err(e) = session_keyring.map_or(Ok(()), crate::keyring::join_session) {
        return e;
    }
    let process = &options.process;
    if process.terminal().unwrap_or(false) {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        let master = match console::setup_in_container(size, false) {
            Ok(master) => master,
            Err(e) => return e.to_string(),
        };
        if let Err(e) = channel.send_with_fd(&Message::Console, Some(master.as_fd())) {
            return format!("send the console: {e}");
        }
    }
    if let Err(e) = crate::lsm::apply_on_exec(process) {
        return e.to_string();
    }
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let mut exec = match process::apply(process, filter.is_some() && !no_new_privs) {
        Ok(exec) => exec,
        Err(e) => return e.to_string(),
    };
    if let Err(e) = process::close_runtime_fds(options.preserve_fds) {
        return e.to_string();
    }
    if let Some(filter) = filter {
        if let Err(e) = exec.load_seccomp(filter) {
            return e.to_string();
        }
        // The listener's descriptor must reach the parent: sendmsg is the
        // one syscall a notifying filter may not take from the runtime.
        let notify = options
            .seccomp
            .as_ref()
            .is_some_and(|p| seccomp::uses_notify(p).unwrap_or(false));
        if notify {
            let fd = match seccomp::listener_fd(filter) {
                Ok(fd) => fd,
                Err(e) => return e.to_string(),
            };
            if let Err(e) = channel.send_with_fd(&Message::SeccompListener, Some(fd)) {
                return format!("send the seccomp listener descriptor: {e}");
            }
        }
    }
    exec.run().to_string()
}
