//! The shim's service: the containers of the shim (one, or all of a pod's:
//! docs/shim.md, "One shim per pod") keyed by id, their init and exec'd
//! processes, and the steps of the task calls that take more than one
//! library call (`task.rs` has the calls themselves). `create`, `exec`,
//! and a `start` or `delete` that runs hooks go through a forker
//! (docs/shim.md); the other library calls start no process and are made
//! from this process.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth::Status;
use containerd_shim as shim;
use nix::sys::signal::Signal;
use shim::api;
use shim::protos::events::task::TaskDelete;
use shim::{ExitSignal, TtrpcResult};

use crate::console::{self, ConsoleSocket};
use crate::events::Publisher;
use crate::forker::{CreateFlags, Criu, Forker, Lost, Request};
use crate::logger::Logger;
use crate::process::{self, Container, Exited, Process, Shared, Table};
use crate::stdio::StdioPaths;

/// How long delete waits for a killed, never-started init to be reaped.
const KILLED_INIT_DEADLINE: Duration = Duration::from_secs(5);

pub struct Service {
    namespace: String,
    /// This shim's ttrpc socket (`unix://PATH`), removed at Shutdown.
    socket: String,
    shared: Shared,
    /// The forker, only from the shim's start to its first request (the
    /// early one, made before any thread) and during a request: each later
    /// request starts a new one, which ends when the request has been
    /// answered. A forker kept between requests would be a second process
    /// resident for as long as the pod runs, for the 1.3 ms its start takes
    /// (docs/shim.md, "Memory").
    forker: Mutex<Option<Forker>>,
    /// The options' `ShimCgroup` the shim moved to at its first create
    /// with one (`shim_cgroup.rs`); later creates (a pod's containers,
    /// whose handler is the same) leave it there.
    shim_cgroup: Mutex<Option<String>>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) exit: Arc<ExitSignal>,
    oom: Arc<crate::oom::Watch>,
}

pub(crate) fn not_found(what: impl Into<String>) -> shim::protos::ttrpc::Error {
    shim::Error::NotFoundError(what.into()).into()
}

pub(crate) fn precondition(what: impl Into<String>) -> shim::protos::ttrpc::Error {
    shim::Error::FailedPreconditionError(what.into()).into()
}

/// An error whose message containerd shows as it is (`ctr: ...: MESSAGE:
/// unknown`): not the crate's `Error::Other`, which becomes ttrpc's
/// `Others`, sent in its debug form (`Others("Other: ...")`, quotes escaped).
pub(crate) fn other(what: impl std::fmt::Display) -> shim::protos::ttrpc::Error {
    use shim::protos::ttrpc;
    ttrpc::Error::RpcStatus(ttrpc::get_status(ttrpc::Code::UNKNOWN, what.to_string()))
}

/// Sends `request` to the forker in `slot`, starting one if there is none,
/// and again if it died before it got the request.
fn call_forker(
    slot: &mut Option<Forker>,
    request: &Request,
    fds: &[Option<OwnedFd>; 3],
) -> TtrpcResult<i32> {
    let mut undo = request.undo();
    for _ in 0..2 {
        let current = running_forker(slot)?;
        match current.call(request, fds) {
            Ok(reply) => return reply.map_err(other),
            Err(lost) => {
                log::warn!("{lost}");
                *slot = None;
                if let Lost::NoReply(_) = lost {
                    return Err(other(crate::forker::after_lost(undo.take(), &lost)));
                }
            }
        }
    }
    Err(other("the forker exits as soon as it starts"))
}

/// Whether `container`'s hooks of one kind (`kind` picks it) are any: the
/// library runs them as its caller's children and waits for them, which
/// only the forker's worker may do (docs/shim.md, "The fork constraint").
fn runs_hooks(
    container: &berth::Container,
    kind: impl Fn(&oci_spec::runtime::Hooks) -> &Option<Vec<oci_spec::runtime::Hook>>,
) -> bool {
    container
        .hooks()
        .and_then(|hooks| kind(hooks).as_ref())
        .is_some_and(|list| !list.is_empty())
}

/// The shim's forker: the one it has, or else the early one, or a new one.
fn running_forker(slot: &mut Option<Forker>) -> TtrpcResult<&mut Forker> {
    match slot {
        Some(current) => Ok(current),
        None => Ok(slot.insert(
            Forker::early_or_spawn().map_err(|e| other(format!("start the forker: {e}")))?,
        )),
    }
}

impl Service {
    pub fn new(
        namespace: String,
        socket: String,
        publisher: Publisher,
        exit: Arc<ExitSignal>,
    ) -> Service {
        let shared: Shared = Default::default();
        let publisher = Arc::new(publisher);
        let oom = crate::oom::Watch::start(shared.clone(), publisher.clone());
        if let Err(e) = process::watch_exits(shared.clone(), publisher.clone(), oom.clone()) {
            // Without it no exit would ever be reported: containerd would
            // wait forever. Better to fail the shim now.
            log::error!("cannot watch exits: {e}");
            std::process::exit(1);
        }
        Service {
            namespace,
            socket,
            shared,
            forker: Mutex::new(None),
            shim_cgroup: Mutex::new(None),
            publisher,
            exit,
            oom,
        }
    }

    pub(crate) fn table(&self) -> TtrpcResult<MutexGuard<'_, Table>> {
        self.shared
            .0
            .lock()
            .map_err(|_| other("shim state poisoned"))
    }

    /// Container `id` (read under the lock), or NotFound.
    pub(crate) fn with_container<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> TtrpcResult<T>,
    ) -> TtrpcResult<T> {
        let mut table = self.table()?;
        match table.containers.get_mut(id) {
            Some(container) => f(container),
            None => Err(not_found(format!("no container {id:?} in this shim"))),
        }
    }

    /// The library's handle of container `id`.
    pub(crate) fn library(&self, id: &str) -> TtrpcResult<berth::Container> {
        let root = self.with_container(id, |c| Ok(c.root.clone()))?;
        berth::Container::load(&root, id).map_err(other)
    }

    /// Whether the shim may end: it serves no container any more (or `now`).
    /// Then it takes no new one.
    pub(crate) fn close(&self, now: bool) -> TtrpcResult<bool> {
        let mut table = self.table()?;
        table.closing = now || table.containers.is_empty();
        Ok(table.closing)
    }

    /// Removes the shim's socket, so that containerd starts a new shim for
    /// the next container of the group instead of naming this one, which is
    /// about to exit. (The crate removes the socket named in its working
    /// directory's `address` file too, but that is the first container's
    /// bundle, which may be gone by then.)
    pub(crate) fn remove_socket(&self) {
        let path = crate::grouping::socket_path(&self.socket);
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("remove the shim's socket {}: {e}", path.display());
            }
        }
    }

    /// Asks a forker (the early one, else a new one; another new one if it
    /// died before it got the request), then lets it end.
    pub(crate) fn fork(&self, request: Request, fds: [Option<OwnedFd>; 3]) -> TtrpcResult<i32> {
        let mut forker = self.forker.lock().map_err(|_| other("forker poisoned"))?;
        let reply = call_forker(&mut forker, &request, &fds);
        // Not kept for the next request: see `Service::forker`.
        *forker = None;
        reply
    }

    /// Moves the shim and its forker to cgroup `path` (runc's option
    /// `ShimCgroup`) unless it already did. The forker is started first if
    /// it was not: one started later is forked from the moved shim.
    fn join_shim_cgroup(&self, path: &str) -> TtrpcResult<()> {
        if path.is_empty() {
            return Ok(());
        }
        // The forker's lock first, as `fork` takes it: no request is in
        // flight while the processes move.
        let mut forker = self.forker.lock().map_err(|_| other("forker poisoned"))?;
        let mut joined = self
            .shim_cgroup
            .lock()
            .map_err(|_| other("shim state poisoned"))?;
        if joined.is_some() {
            return Ok(());
        }
        let current = running_forker(&mut forker)?;
        crate::shim_cgroup::join(path, &[std::process::id(), current.pid()]).map_err(other)?;
        *joined = Some(path.to_string());
        Ok(())
    }

    /// `Container::start` of container `id`'s init, in the forker (for its
    /// hooks); or, created from a checkpoint, its restore.
    pub(crate) fn library_start(&self, id: &str) -> TtrpcResult<i32> {
        let (root, restore_from) =
            self.with_container(id, |c| Ok((c.root.clone(), c.restore_from.take())))?;
        let id = id.to_string();
        let pid = match restore_from {
            None => {
                let mut container = berth::Container::load(&root, &id).map_err(other)?;
                if runs_hooks(&container, |h| h.poststart()) {
                    let request = Request::Start {
                        root,
                        id: id.clone(),
                    };
                    self.fork(request, [None, None, None])?
                } else {
                    container.start().map_err(other)?;
                    container.pid().as_raw()
                }
            }
            Some(image_path) => self.restore(root, id.clone(), image_path)?,
        };
        self.oom.add(&id);
        Ok(pid)
    }

    /// The init restored from `image_path` with its stdio, as create makes
    /// it.
    fn restore(&self, root: PathBuf, id: String, image_path: PathBuf) -> TtrpcResult<i32> {
        let (bundle, stdio) =
            self.with_container(&id, |c| Ok((c.bundle.clone(), c.init.stdio.clone())))?;
        let criu = Criu {
            image_path,
            shell_job: stdio.terminal,
            ..Default::default()
        };
        let request = |console_socket| Request::Restore {
            root: root.clone(),
            id: id.clone(),
            bundle: bundle.clone(),
            criu: criu.clone(),
            console_socket,
        };
        let undo = |_| {
            if let Err(e) = self.library_delete(&root, &id, true) {
                log::warn!("delete {id} after its terminal failed: {e}");
            }
        };
        let (pid, console, logger) = self.fork_with_stdio(&id, "", request, &stdio, undo)?;
        self.claim(&id, "", pid, console, logger)?;
        Ok(pid)
    }

    /// The library's delete: in the forker if it runs poststop hooks, else
    /// here (it starts no process then). A container with no record (a
    /// create that died half-way) goes to `berth::container::delete`, which
    /// removes what it left.
    pub(crate) fn library_delete(&self, root: &Path, id: &str, force: bool) -> TtrpcResult<()> {
        match berth::Container::load(root, id) {
            Ok(container) if runs_hooks(&container, |h| h.poststop()) => {}
            Ok(container) => return container.delete(force).map(|_| ()).map_err(other),
            Err(_) => {
                return berth::container::delete(root, id, force)
                    .map(|_| ())
                    .map_err(other)
            }
        }
        let request = Request::Delete {
            root: root.to_path_buf(),
            id: id.to_string(),
            force,
        };
        self.fork(request, [None, None, None]).map(|_| ())
    }

    /// Runs `request` (made with the console socket, if any) in the forker
    /// for container `id`'s process `exec_id` (empty: the init) with its
    /// stdio: pipes to and from
    /// the FIFOs as its 0-2, or with a terminal, the pty's master copied to
    /// and from them; for a `binary://` log URI, a logging program started
    /// first (returned, for Delete to end). When the process was made but
    /// its terminal never came, `undo(pid)` removes it; when it was not
    /// made, the logger is ended.
    pub(crate) fn fork_with_stdio(
        &self,
        id: &str,
        exec_id: &str,
        request: impl FnOnce(Option<PathBuf>) -> Request,
        stdio: &StdioPaths,
        undo: impl FnOnce(i32),
    ) -> TtrpcResult<(i32, Option<OwnedFd>, Option<Logger>)> {
        let owner = self.with_container(id, |c| Ok(c.io_owner))?;
        // An exec's logger is told the exec's id as CONTAINER_ID, as the
        // runc shim tells it (it starts the logger with the process's id).
        let logger_id = if exec_id.is_empty() { id } else { exec_id };
        if !stdio.terminal {
            let (fds, logger) =
                crate::pipes::connect(stdio, owner, |uri| self.start_logger(logger_id, uri))
                    .map_err(other)?;
            // The process's ends are closed when `fork` returns: a logger
            // whose process was not made reads EOF and ends.
            return match self.fork(request(None), fds) {
                Ok(pid) => Ok((pid, None, logger)),
                Err(e) => {
                    if let Some(logger) = logger {
                        logger.stop();
                    }
                    Err(e)
                }
            };
        }
        // With a terminal the logger gets what the terminal shows, as its
        // stdout (a terminal has no stderr of its own).
        let started = if stdio.logs_to_binary() {
            Some(self.start_logger(logger_id, &stdio.stdout).map_err(other)?)
        } else {
            None
        };
        let (out, logger) = match started {
            Some(started) => (Some(started.stdout), Some(started.logger)),
            None => (None, None),
        };
        let forked = ConsoleSocket::listen().map_err(other).and_then(|socket| {
            let pid = self.fork(request(Some(socket.path.clone())), [None, None, None])?;
            Ok((socket, pid))
        });
        let (socket, pid) = match forked {
            Ok(forked) => forked,
            Err(e) => {
                drop(out);
                if let Some(logger) = logger {
                    logger.stop();
                }
                return Err(e);
            }
        };
        let console = socket
            .master()
            .and_then(|master| console::copy_io(&master, stdio, out).map(|()| master));
        match console {
            Ok(master) => Ok((pid, Some(master), logger)),
            Err(e) => {
                undo(pid);
                if let Some(logger) = logger {
                    logger.stop();
                }
                Err(other(format!("the terminal: {e}")))
            }
        }
    }

    /// Starts the logging program `uri` names for process `id` (`logger.rs`);
    /// its pid is in the table before it can exit.
    fn start_logger(&self, id: &str, uri: &str) -> std::io::Result<crate::logger::Started> {
        crate::logger::start(uri, id, &self.namespace, |pid| {
            if let Ok(mut table) = self.table() {
                table.loggers.insert(pid);
            }
        })
    }

    /// Records `pid` (and its terminal and logger) for container `id`'s
    /// `exec_id`; announces an exit that came first.
    pub(crate) fn claim(
        &self,
        id: &str,
        exec_id: &str,
        pid: i32,
        console: Option<OwnedFd>,
        logger: Option<Logger>,
    ) -> TtrpcResult<()> {
        let (exited, unkept) = self.table()?.claim(id, exec_id, pid, console, logger);
        self.shared.1.notify_all();
        if let Some(logger) = unkept {
            logger.stop();
        }
        if let Some(exited) = exited {
            let event_id = if exec_id.is_empty() { id } else { exec_id };
            let event = process::exit_event(id, event_id, pid, &exited);
            self.publisher.publish(event);
        }
        Ok(())
    }

    /// Blocks until container `id`'s process `exec_id` has exited (or
    /// `deadline` passed).
    pub(crate) fn wait_exit(
        &self,
        id: &str,
        exec_id: &str,
        deadline: Option<Duration>,
    ) -> TtrpcResult<Option<Exited>> {
        let start = std::time::Instant::now();
        let mut table = self.table()?;
        loop {
            let process = table
                .containers
                .get(id)
                .and_then(|c| c.process(exec_id))
                .ok_or_else(|| not_found(format!("no process {exec_id:?} in {id:?}")))?;
            if let Some(exited) = &process.exited {
                return Ok(Some(exited.clone()));
            }
            let wait = match deadline {
                Some(d) if start.elapsed() >= d => return Ok(None),
                Some(d) => d - start.elapsed(),
                None => Duration::from_secs(3600),
            };
            table = self
                .shared
                .1
                .wait_timeout(table, wait)
                .map_err(|_| other("shim state poisoned"))?
                .0;
        }
    }

    pub(crate) fn create_task(&self, req: &api::CreateTaskRequest) -> TtrpcResult<i32> {
        // The options file (ConfigPath) and the shim's cgroup are dealt
        // with first: an error there leaves nothing made.
        let options = crate::options::decode(req.options.as_ref()).map_err(other)?;
        self.join_shim_cgroup(&options.shim_cgroup)?;
        // Read back by `state_root`, here and by `delete` after a dead shim:
        // the options as applied, those of the options file included.
        shim::util::write_options(&req.bundle, &options).map_err(other)?;
        let bundle = PathBuf::from(&req.bundle);
        let root = crate::state_root(&bundle, &self.namespace);
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        // The id is taken before anything is made, so that a second create
        // of it fails without touching the first one's bundle.
        {
            let mut table = self.table()?;
            if table.closing {
                return Err(precondition("the shim is shutting down"));
            }
            if table.containers.contains_key(&req.id) {
                return Err(precondition(format!("container {:?} exists", req.id)));
            }
            let container = Container {
                id: req.id.clone(),
                bundle: bundle.clone(),
                root: root.clone(),
                init: Process {
                    stdio: stdio.clone(),
                    ..Default::default()
                },
                execs: HashMap::new(),
                oom_kills: 0,
                restore_from: (!req.checkpoint.is_empty()).then(|| PathBuf::from(&req.checkpoint)),
                io_owner: crate::options::io_owner(&options),
            };
            table.containers.insert(req.id.clone(), container);
        }
        let forget = || {
            if let Ok(mut table) = self.table() {
                table.containers.remove(&req.id);
            }
        };
        let rootfs = bundle.join("rootfs");
        for m in &req.rootfs {
            let mounted = crate::rootfs::mount(&m.type_, &m.source, &m.options, &rootfs);
            if let Err(e) = mounted {
                unmount_rootfs(&bundle);
                forget();
                return Err(other(format!("mount the rootfs: {e}")));
            }
        }
        if !req.checkpoint.is_empty() {
            // Restored at Start (`library_start`).
            return Ok(0);
        }
        let flags = CreateFlags {
            systemd_cgroup: options.systemd_cgroup,
            no_pivot_root: options.no_pivot_root,
            no_new_keyring: options.no_new_keyring,
        };
        let request = |console_socket| Request::Create {
            root: root.clone(),
            id: req.id.clone(),
            bundle: bundle.clone(),
            console_socket,
            flags,
        };
        let undo = |_| {
            if let Err(e) = self.library_delete(&root, &req.id, true) {
                log::warn!("delete {} after its terminal failed: {e}", req.id);
            }
        };
        match self.fork_with_stdio(&req.id, "", request, &stdio, undo) {
            Ok((pid, console, logger)) => {
                self.claim(&req.id, "", pid, console, logger)?;
                Ok(pid)
            }
            Err(e) => {
                unmount_rootfs(&bundle);
                forget();
                Err(e)
            }
        }
    }

    pub(crate) fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<i32> {
        let (root, stdio, spec) = self.with_container(id, |c| {
            let root = c.root.clone();
            let process = c
                .execs
                .get_mut(exec_id)
                .ok_or_else(|| not_found(format!("no exec {exec_id}")))?;
            let spec = process
                .spec
                .take()
                .ok_or_else(|| precondition(format!("exec {exec_id} already started")))?;
            Ok((root, process.stdio.clone(), spec))
        })?;
        let request = |console_socket| Request::Exec {
            root,
            id: id.to_string(),
            process: Box::new(spec),
            console_socket,
        };
        let undo = |pid| {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        };
        let (pid, console, logger) = self.fork_with_stdio(id, exec_id, request, &stdio, undo)?;
        self.claim(id, exec_id, pid, console, logger)?;
        Ok(pid)
    }

    /// Deletes container `id` (the library's container, the rootfs mounts,
    /// the shim's record; the shim's other containers are untouched); the
    /// init's exit. A created init that never ran is killed first.
    pub(crate) fn delete_container(&self, id: &str) -> TtrpcResult<(i32, Exited)> {
        let (pid, exited) = self.with_container(id, |c| Ok((c.init.pid, c.init.exited.clone())))?;
        let exited = match exited {
            Some(exited) => exited,
            // Created from a checkpoint and never started: nothing was made.
            None if pid == 0 => Exited {
                status: 0,
                at: shim::util::timestamp().unwrap_or_default(),
            },
            None => {
                let library = self.library(id)?;
                if library.status() != Status::Created {
                    return Err(precondition(format!(
                        "cannot delete a {} task",
                        library.status()
                    )));
                }
                library.kill(berth::Signal::KILL, true).map_err(other)?;
                self.wait_exit(id, "", Some(KILLED_INIT_DEADLINE))?
                    .unwrap_or_else(|| Exited {
                        status: 128 + libc::SIGKILL as u32,
                        at: shim::util::timestamp().unwrap_or_default(),
                    })
            }
        };
        let (root, bundle) = self.with_container(id, |c| Ok((c.root.clone(), c.bundle.clone())))?;
        self.oom.forget(id);
        if pid != 0 {
            self.library_delete(&root, id, true)?;
        }
        unmount_rootfs(&bundle);
        let removed = self.table()?.containers.remove(id);
        // Outside the table's lock: the exit thread records their exits.
        for process in removed
            .into_iter()
            .flat_map(|c| std::iter::once(c.init).chain(c.execs.into_values()))
        {
            if let Some(logger) = process.logger {
                logger.stop();
            }
        }
        self.publisher.publish(TaskDelete {
            container_id: id.to_string(),
            id: id.to_string(),
            pid: pid as u32,
            exit_status: exited.status,
            exited_at: Some(exited.at.clone()).into(),
            ..Default::default()
        });
        Ok((pid, exited))
    }
}

pub(crate) fn unmount_rootfs(bundle: &Path) {
    if let Err(e) = shim::mount::umount_recursive(bundle.join("rootfs").to_str(), 0) {
        log::warn!("unmount {}/rootfs: {e}", bundle.display());
    }
}
