//! The task service containerd calls: one container per shim, its init
//! and exec'd processes. `create` and `exec` go through the forker
//! (docs/shim.md); every other call is the library's, from this process.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth::Status;
use containerd_shim as shim;
use nix::sys::signal::Signal;
use shim::api::{self, Empty};
use shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskStart,
};
use shim::protos::protobuf::Message;
use shim::publisher::RemotePublisher;
use shim::{ExitSignal, TtrpcContext, TtrpcResult};

use crate::console::{self, ConsoleSocket};
use crate::forker::{Forker, Lost, Request};
use crate::process::{self, Container, Exited, Process, Publisher, Shared, Table};
use crate::stdio::StdioPaths;

/// How long delete waits for a killed, never-started init to be reaped.
const KILLED_INIT_DEADLINE: Duration = Duration::from_secs(5);

pub struct Service {
    namespace: String,
    shared: Shared,
    forker: Mutex<Option<Forker>>,
    publisher: Arc<Publisher>,
    exit: Arc<ExitSignal>,
}

fn not_found(what: impl Into<String>) -> shim::protos::ttrpc::Error {
    shim::Error::NotFoundError(what.into()).into()
}

fn precondition(what: impl Into<String>) -> shim::protos::ttrpc::Error {
    shim::Error::FailedPreconditionError(what.into()).into()
}

fn other(what: impl std::fmt::Display) -> shim::protos::ttrpc::Error {
    shim::Error::Other(what.to_string()).into()
}

fn unimplemented(what: &str) -> shim::protos::ttrpc::Error {
    shim::Error::Unimplemented(what.to_string()).into()
}

impl Service {
    pub fn new(namespace: String, remote: RemotePublisher, exit: Arc<ExitSignal>) -> Service {
        let shared: Shared = Default::default();
        let publisher = Arc::new(Publisher {
            remote,
            namespace: namespace.clone(),
        });
        if let Err(e) = process::watch_exits(shared.clone(), publisher.clone()) {
            // Without it no exit would ever be reported: containerd would
            // wait forever. Better to fail the shim now.
            log::error!("cannot watch exits: {e}");
            std::process::exit(1);
        }
        Service {
            namespace,
            shared,
            forker: Mutex::new(None),
            publisher,
            exit,
        }
    }

    fn table(&self) -> TtrpcResult<MutexGuard<'_, Table>> {
        self.shared
            .0
            .lock()
            .map_err(|_| other("shim state poisoned"))
    }

    /// The container (read under the lock), or NotFound.
    fn with_container<T>(
        &self,
        f: impl FnOnce(&mut Container) -> TtrpcResult<T>,
    ) -> TtrpcResult<T> {
        let mut table = self.table()?;
        match table.container.as_mut() {
            Some(container) => f(container),
            None => Err(not_found("no container in this shim")),
        }
    }

    /// The library's handle of the container.
    fn library(&self) -> TtrpcResult<berth::Container> {
        let (root, id) = self.with_container(|c| Ok((c.root.clone(), c.id.clone())))?;
        berth::Container::load(&root, &id).map_err(other)
    }

    /// Asks the forker; starts it on first use and again if it died (then
    /// sends the request again if the dead one never got it).
    fn fork(&self, request: Request, fds: [Option<OwnedFd>; 3]) -> TtrpcResult<i32> {
        let mut forker = self.forker.lock().map_err(|_| other("forker poisoned"))?;
        for _ in 0..2 {
            let current = match forker.as_mut() {
                Some(current) => current,
                None => forker
                    .insert(Forker::spawn().map_err(|e| other(format!("start the forker: {e}")))?),
            };
            match current.call(&request, &fds) {
                Ok(reply) => return reply.map_err(other),
                Err(lost) => {
                    log::warn!("{lost}");
                    *forker = None;
                    if let Lost::NoReply(_) = lost {
                        return Err(other(lost));
                    }
                }
            }
        }
        Err(other("the forker exits as soon as it starts"))
    }

    /// Runs `request` (made with the console socket, if any) in the forker
    /// with the process's stdio: the FIFOs as its 0-2, or with a terminal,
    /// the pty's master copied to and from them. When the process was made
    /// but its terminal never came, `undo(pid)` removes it.
    fn fork_with_stdio(
        &self,
        request: impl FnOnce(Option<PathBuf>) -> Request,
        stdio: &StdioPaths,
        undo: impl FnOnce(i32),
    ) -> TtrpcResult<(i32, Option<OwnedFd>)> {
        if !stdio.terminal {
            let fds = stdio.open().map_err(other)?;
            return Ok((self.fork(request(None), fds)?, None));
        }
        let socket = ConsoleSocket::listen().map_err(other)?;
        let pid = self.fork(request(Some(socket.path.clone())), [None, None, None])?;
        let console = socket
            .master()
            .and_then(|master| console::copy_io(&master, stdio).map(|()| master));
        match console {
            Ok(master) => Ok((pid, Some(master))),
            Err(e) => {
                undo(pid);
                Err(other(format!("the terminal: {e}")))
            }
        }
    }

    /// Records `pid` (and its terminal) for `exec_id`; announces an exit
    /// that came first.
    fn claim(
        &self,
        id: &str,
        exec_id: &str,
        pid: i32,
        console: Option<OwnedFd>,
    ) -> TtrpcResult<()> {
        let exited = self.table()?.claim(exec_id, pid, console);
        self.shared.1.notify_all();
        if let Some(exited) = exited {
            let event_id = if exec_id.is_empty() { id } else { exec_id };
            let event = process::exit_event(id, event_id, pid, &exited);
            self.publisher.publish(Box::new(event));
        }
        Ok(())
    }

    /// Blocks until `exec_id`'s process has exited (or `deadline` passed).
    fn wait_exit(&self, exec_id: &str, deadline: Option<Duration>) -> TtrpcResult<Option<Exited>> {
        let start = std::time::Instant::now();
        let mut table = self.table()?;
        loop {
            let process = table
                .container
                .as_ref()
                .and_then(|c| c.process(exec_id))
                .ok_or_else(|| not_found(format!("no process {exec_id:?}")))?;
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

    fn create_task(&self, req: &api::CreateTaskRequest) -> TtrpcResult<i32> {
        if !req.checkpoint.is_empty() {
            return Err(unimplemented("create from a checkpoint"));
        }
        let options = match req.options.as_ref() {
            Some(any) if any.type_url.ends_with("runc.v1.Options") => {
                api::Options::parse_from_bytes(&any.value).map_err(other)?
            }
            _ => api::Options::default(),
        };
        shim::util::write_options(&req.bundle, &options).map_err(other)?;
        let bundle = PathBuf::from(&req.bundle);
        let root = crate::state_root(&bundle, &self.namespace);
        let rootfs = bundle.join("rootfs");
        for m in &req.rootfs {
            let mounted = shim::mount::mount_rootfs(
                Some(m.type_.as_str()),
                Some(m.source.as_str()),
                &m.options,
                &rootfs,
            );
            if let Err(e) = mounted {
                unmount_rootfs(&bundle);
                return Err(other(format!("mount the rootfs: {e}")));
            }
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        {
            let mut table = self.table()?;
            if table.container.is_some() {
                return Err(precondition("this shim already has a container"));
            }
            table.container = Some(Container {
                id: req.id.clone(),
                bundle: bundle.clone(),
                root: root.clone(),
                init: Process {
                    stdio: stdio.clone(),
                    ..Default::default()
                },
                execs: HashMap::new(),
            });
        }
        let request = |console_socket| Request::Create {
            root: root.clone(),
            id: req.id.clone(),
            bundle: bundle.clone(),
            console_socket,
        };
        let undo = |_| {
            if let Err(e) = berth::container::delete(&root, &req.id, true) {
                log::warn!("delete {} after its terminal failed: {e}", req.id);
            }
        };
        match self.fork_with_stdio(request, &stdio, undo) {
            Ok((pid, console)) => {
                self.claim(&req.id, "", pid, console)?;
                Ok(pid)
            }
            Err(e) => {
                self.table()?.container = None;
                unmount_rootfs(&bundle);
                Err(e)
            }
        }
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<i32> {
        let (root, stdio, spec) = self.with_container(|c| {
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
        let (pid, console) = self.fork_with_stdio(request, &stdio, undo)?;
        self.claim(id, exec_id, pid, console)?;
        Ok(pid)
    }

    /// Deletes the library's container and the rootfs mounts; the init's
    /// exit. A created init that never ran is killed first.
    fn delete_container(&self) -> TtrpcResult<(i32, Exited)> {
        let (pid, exited) = self.with_container(|c| Ok((c.init.pid, c.init.exited.clone())))?;
        let exited = match exited {
            Some(exited) => exited,
            None => {
                let library = self.library()?;
                if library.status() != Status::Created {
                    return Err(precondition(format!(
                        "cannot delete a {} task",
                        library.status()
                    )));
                }
                library.kill(libc::SIGKILL, true).map_err(other)?;
                self.wait_exit("", Some(KILLED_INIT_DEADLINE))?
                    .unwrap_or_else(|| Exited {
                        status: 128 + libc::SIGKILL as u32,
                        at: shim::util::timestamp().unwrap_or_default(),
                    })
            }
        };
        let (root, id, bundle) =
            self.with_container(|c| Ok((c.root.clone(), c.id.clone(), c.bundle.clone())))?;
        berth::container::delete(&root, &id, true).map_err(other)?;
        unmount_rootfs(&bundle);
        self.table()?.container = None;
        self.publisher.publish(Box::new(TaskDelete {
            container_id: id.clone(),
            id,
            pid: pid as u32,
            exit_status: exited.status,
            exited_at: Some(exited.at.clone()).into(),
            ..Default::default()
        }));
        Ok((pid, exited))
    }
}

fn unmount_rootfs(bundle: &Path) {
    if let Err(e) = shim::mount::umount_recursive(bundle.join("rootfs").to_str(), 0) {
        log::warn!("unmount {}/rootfs: {e}", bundle.display());
    }
}

fn status_of(process: &Process, library: Option<Status>) -> api::Status {
    if process.exited.is_some() {
        return api::Status::STOPPED;
    }
    if process.pid == 0 {
        return api::Status::CREATED;
    }
    match library {
        Some(Status::Created) => api::Status::CREATED,
        Some(Status::Running) | None => api::Status::RUNNING,
        Some(Status::Paused) => api::Status::PAUSED,
        Some(Status::Stopped) => api::Status::STOPPED,
        Some(_) => api::Status::UNKNOWN,
    }
}

impl shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let pid = self.create_task(&req)?;
        self.publisher.publish(Box::new(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            pid: pid as u32,
            ..Default::default()
        }));
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let pid = if req.exec_id.is_empty() {
            let mut library = self.library()?;
            library.start().map_err(other)?;
            let pid = library.pid();
            self.publisher.publish(Box::new(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            }));
            pid
        } else {
            let pid = self.start_exec(&req.id, &req.exec_id)?;
            self.publisher.publish(Box::new(TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid: pid as u32,
                ..Default::default()
            }));
            pid
        };
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let library_status = self.library().ok().map(|c| c.status());
        self.with_container(|c| {
            let process = c
                .process(&req.exec_id)
                .ok_or_else(|| not_found(format!("no process {}", req.exec_id)))?;
            let library = if req.exec_id.is_empty() {
                library_status
            } else {
                None
            };
            Ok(api::StateResponse {
                id: req.id.clone(),
                bundle: c.bundle.to_string_lossy().into_owned(),
                pid: process.pid as u32,
                status: status_of(process, library).into(),
                stdin: process.stdio.stdin.clone(),
                stdout: process.stdio.stdout.clone(),
                stderr: process.stdio.stderr.clone(),
                terminal: process.stdio.terminal,
                exit_status: process.exited.as_ref().map_or(0, |e| e.status),
                exited_at: process.exited.as_ref().map(|e| e.at.clone()).into(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            })
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        let (pid, exited) = self.with_container(|c| {
            let process = c
                .process(&req.exec_id)
                .ok_or_else(|| not_found(format!("no process {}", req.exec_id)))?;
            Ok((process.pid, process.exited.is_some()))
        })?;
        if exited || pid == 0 {
            return Err(not_found("process already finished"));
        }
        if req.exec_id.is_empty() {
            self.library()?
                .kill(req.signal as i32, req.all)
                .map_err(other)?;
        } else {
            let signal = Signal::try_from(req.signal as i32).map_err(other)?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(other)?;
        }
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let exited = self
            .wait_exit(&req.exec_id, None)?
            .ok_or_else(|| other("wait ended without an exit"))?;
        Ok(api::WaitResponse {
            exit_status: exited.status,
            exited_at: Some(exited.at).into(),
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (pid, exited) = if req.exec_id.is_empty() {
            self.delete_container()?
        } else {
            self.with_container(|c| {
                let process = c
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| not_found(format!("no exec {}", req.exec_id)))?;
                if process.pid != 0 && process.exited.is_none() {
                    return Err(precondition(format!("exec {} is running", req.exec_id)));
                }
                let process = c.execs.remove(&req.exec_id).unwrap_or_default();
                let exited = process.exited.unwrap_or_else(|| Exited {
                    status: 0,
                    at: Default::default(),
                });
                Ok((process.pid, exited))
            })?
        };
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: exited.status,
            exited_at: Some(exited.at).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, _req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = self.library()?.pids().map_err(other)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| shim::protos::api::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let spec_bytes = req
            .spec
            .as_ref()
            .map(|any| any.value.as_slice())
            .unwrap_or_default();
        let spec: oci_spec::runtime::Process = serde_json::from_slice(spec_bytes)
            .map_err(|e| shim::Error::InvalidArgument(format!("exec's process spec: {e}")))?;
        self.with_container(|c| {
            if c.execs.contains_key(&req.exec_id) {
                return Err(shim::Error::FailedPreconditionError(format!(
                    "exec {} already exists",
                    req.exec_id
                ))
                .into());
            }
            let stdio = StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            let process = Process {
                stdio,
                spec: Some(spec),
                ..Default::default()
            };
            c.execs.insert(req.exec_id.clone(), process);
            Ok(())
        })?;
        self.publisher.publish(Box::new(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        self.library()?.pause().map_err(other)?;
        self.publisher.publish(Box::new(TaskPaused {
            container_id: req.id,
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        self.library()?.resume().map_err(other)?;
        self.publisher.publish(Box::new(TaskResumed {
            container_id: req.id,
            ..Default::default()
        }));
        Ok(Empty::new())
    }

    /// The process holds the only end of its stdin FIFO (the shim keeps no
    /// copy), so containerd closing its writer is already the EOF.
    fn close_io(&self, _ctx: &TtrpcContext, _req: api::CloseIORequest) -> TtrpcResult<Empty> {
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        self.with_container(|c| {
            let process = c
                .process(&req.exec_id)
                .ok_or_else(|| not_found(format!("no process {}", req.exec_id)))?;
            let console = process
                .console
                .as_ref()
                .ok_or_else(|| precondition("the process has no terminal"))?;
            let (rows, cols) = (
                req.height.min(u16::MAX as u32),
                req.width.min(u16::MAX as u32),
            );
            berth::console::set_size(console.as_fd(), rows as u16, cols as u16).map_err(other)
        })?;
        Ok(Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        let bytes = req
            .resources
            .as_ref()
            .map(|any| any.value.as_slice())
            .unwrap_or_default();
        let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(bytes)
            .map_err(|e| shim::Error::InvalidArgument(format!("update's resources: {e}")))?;
        self.library()?.update(&resources).map_err(other)?;
        Ok(Empty::new())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        _req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let stats = self.library()?.stats().map_err(other)?;
        Ok(api::StatsResponse {
            stats: Some(crate::stats::to_any(&stats).map_err(other)?).into(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.with_container(|c| Ok(c.init.pid)).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            ..Default::default()
        })
    }

    /// Exits once the container is deleted (or at once with `now`).
    fn shutdown(&self, _ctx: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<Empty> {
        if !req.now && self.table()?.container.is_some() {
            return Ok(Empty::new());
        }
        self.exit.signal();
        Ok(Empty::new())
    }
}
