//! The serving shim, forked from containerd's `start` command instead of
//! executed by it.
//!
//! containerd runs `containerd-shim-berth-v2 start`, waits for it to print
//! the shim's address, then connects. The crate's `spawn` executes this
//! binary again as the serving shim and waits until that one is serving.
//! Here `start` binds the socket itself, forks, and prints the address at
//! once: containerd's connection waits in the socket's backlog while the
//! child, already past its start-up, makes its forker and threads. That is
//! one execution of this binary less per shim (0.7 ms of page faults and
//! relocations before `main`) and the serving shim's set-up overlapped with
//! containerd's. docs/shim.md, "The processes".
//!
//! The fork is safe because `start` has one thread (checked, not assumed):
//! the child is a whole copy of a single-threaded process. With more than
//! one, `start` falls back to the crate's `spawn`.

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use containerd_shim as shim;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use shim::{ExitSignal, StartOpts};

use crate::grouping::{is_served, socket_path};
use crate::{events, forker, service};

/// What `start` found or made for the group's address.
pub enum Started {
    /// A serving shim forked now, with this pid.
    Forked(u32),
    /// The group's shim was already serving: nothing was made.
    AlreadyServed,
}

/// Binds the group's socket and forks the serving shim onto it; `None`
/// when this process has threads (the caller then uses the crate's
/// `spawn`).
pub fn fork_serving(opts: &StartOpts, address: &str) -> shim::Result<Option<Started>> {
    if !forker::single_threaded() {
        return Ok(None);
    }
    let Some(listener) = bind(address)? else {
        return Ok(Some(Started::AlreadyServed));
    };
    // SAFETY: this process has one thread (checked above), so the child is
    // a whole copy of a single-threaded process and may run any code; it
    // never returns from this function.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Some(Started::Forked(child.as_raw() as u32))),
        Ok(ForkResult::Child) => std::process::exit(serve(listener, opts, address)),
        Err(e) => Err(shim::Error::Other(format!("fork the shim: {e}"))),
    }
}

/// The group's socket, bound and listening; `None` when a shim answers on
/// it already (two containers of a new group started at once). A socket
/// nobody answers on is a dead shim's, and is replaced.
///
/// Under a lock on the sockets' directory, which `remove_if_dead` takes
/// too: without it, of two `start`s that both found a dead shim's socket,
/// the second could remove the socket the first had just bound, and the
/// first shim would serve a socket nobody reaches, forever.
fn bind(address: &str) -> shim::Result<Option<UnixListener>> {
    let path = socket_path(address);
    let _lock = lock_directory_of(path)?;
    let mut tries = 0;
    loop {
        match UnixListener::bind(path) {
            Ok(listener) => return Ok(Some(listener)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 2 => {
                if is_served(address) {
                    return Ok(None);
                }
                let _ = std::fs::remove_file(path);
                tries += 1;
            }
            Err(e) => return Err(shim::Error::Other(format!("bind {}: {e}", path.display()))),
        }
    }
}

/// After a shim died (containerd's `delete` command): its socket, if
/// nobody answers on it. A pod's shim that still serves other containers
/// keeps it.
pub fn remove_if_dead(address: &str) {
    use std::os::unix::fs::FileTypeExt;
    let path = socket_path(address);
    let is_socket = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    // The common case, a shim that ended normally and removed its socket,
    // takes no lock.
    if !is_socket() {
        return;
    }
    let Ok(_lock) = lock_directory_of(path) else {
        return;
    };
    if is_socket() && !is_served(address) {
        let _ = std::fs::remove_file(path);
    }
}

/// An exclusive `flock` of the directory of the socket at `path` (made if
/// missing), held while the returned descriptor lives.
fn lock_directory_of(path: &Path) -> shim::Result<nix::fcntl::Flock<std::fs::File>> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)
        .map_err(|e| shim::Error::Other(format!("create {}: {e}", dir.display())))?;
    let file = std::fs::File::open(dir)
        .map_err(|e| shim::Error::Other(format!("open {}: {e}", dir.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| shim::Error::Other(format!("lock {}: {e}", dir.display())))
}

/// The forked child: the serving shim. Returns its exit code.
fn serve(listener: UnixListener, opts: &StartOpts, address: &str) -> i32 {
    if let Err(e) = detach(opts) {
        eprintln!("berth shim: {e}");
        return 1;
    }
    // Every thread made from here on inherits the mask: these signals are
    // taken only by the reaper's sigwait, never by the handlers the crate
    // installed in `start` (and that this copy inherited). Blocked before
    // the forker exists, so that its exit cannot be taken by those handlers
    // and missed by the reaper; the forker clears the mask it inherits.
    let signals = reaped_signals();
    if let Err(e) = signals.thread_block() {
        eprintln!("berth shim: block signals: {e}");
        return 1;
    }
    // Before any thread, as in an executed serving shim (`main`).
    forker::fork_early();
    // SAFETY: mallopt(3) before any thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    if let Err(e) = shim::logger::init(opts.debug, "info", &opts.namespace, &opts.id) {
        eprintln!("berth shim: logger: {e}");
        return 1;
    }
    let publisher = match events::Publisher::connect(&opts.ttrpc_address, opts.namespace.clone()) {
        Ok(publisher) => publisher,
        Err(e) => {
            log::error!("cannot publish events: {e}");
            return 1;
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || reap(signals))
    {
        log::error!("cannot start the reaper: {e}");
        return 1;
    }
    let exit = Arc::new(ExitSignal::default());
    let service = service::Service::new(
        opts.namespace.clone(),
        address.to_string(),
        publisher,
        exit.clone(),
    );
    let task = Box::new(service) as Box<dyn shim::protos::Task + Send + Sync>;
    let server = shim::protos::ttrpc::Server::new()
        .add_listener(listener.into_raw_fd())
        .map(|server| server.register_service(shim::protos::create_task(Arc::from(task))));
    let mut server = match server {
        Ok(server) => server,
        Err(e) => {
            log::error!("ttrpc server: {e}");
            return 1;
        }
    };
    if let Err(e) = server.start() {
        log::error!("start the ttrpc server: {e}");
        return 1;
    }
    // Shutdown removed the socket before it signalled the exit
    // (`Service::remove_socket`): removing it again here, as the crate's
    // serving shim does, could take a new shim's of the same group.
    exit.wait();
    server.shutdown();
    0
}

/// The child's own footing: /dev/null on 0-2 (stdout and stderr are the
/// pipe containerd reads `start`'s output from, until every holder closes
/// it), subreaper of the containers (not inherited through fork), and the
/// command line of a serving shim, not of `start`.
fn detach(opts: &StartOpts) -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    nix::sys::prctl::set_child_subreaper(true)?;
    // Best effort: it changes only what `ps` shows.
    let _ = forker::rewrite_arguments(&[
        "-namespace",
        &opts.namespace,
        "-id",
        &opts.id,
        "-address",
        &opts.address,
    ]);
    Ok(())
}

/// The signals the reaper takes: SIGCHLD, and the two that the crate's
/// serving shim logs and otherwise ignores.
fn reaped_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}

/// Reaps every exited child, and tells the crate's monitor (which the
/// service's exit thread subscribes to) each one's status, as the crate's
/// own signal loop does for an executed shim.
fn reap(signals: SigSet) {
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_exited(),
            Ok(signal) => log::debug!("received {signal}"),
            Err(e) => log::warn!("sigwait: {e}"),
        }
    }
}

fn reap_exited() {
    loop {
        let code = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) => (pid, status),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, 128 + signal as i32),
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
            Ok(_) => continue,
            Err(e) => {
                log::warn!("waitpid: {e}");
                return;
            }
        };
        if let Err(e) = shim::monitor::monitor_notify_by_pid(code.0.as_raw(), code.1) {
            log::error!("exit of {}: {e}", code.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_takes_a_free_or_dead_socket_and_leaves_a_served_one() {
        let dir = std::env::temp_dir().join(format!("berth-serving-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let address = format!("unix://{}/s/group", dir.display());
        let first = bind(&address)
            .expect("bind")
            .expect("a free socket is bound");
        // Served (the listener's backlog answers): a second start makes nothing.
        assert!(bind(&address).expect("bind").is_none());
        remove_if_dead(&address);
        assert!(
            socket_path(&address).exists(),
            "a served socket was removed"
        );
        // Its shim dead, the file left: replaced by a new one...
        drop(first);
        let second = bind(&address)
            .expect("bind")
            .expect("a dead socket is replaced");
        drop(second);
        // ... or removed by `delete`.
        remove_if_dead(&address);
        assert!(!socket_path(&address).exists(), "a dead socket was left");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
