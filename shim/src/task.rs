//! The task calls containerd makes (`shim::Task`), over the service's
//! steps (`service.rs`).

use std::os::fd::AsFd;

use berth::Status;
use containerd_shim as shim;
use nix::sys::signal::Signal;
use shim::api::{self, Empty};
use shim::protos::events::task::{
    TaskCreate, TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskStart,
};
use shim::protos::protobuf::Message;
use shim::protos::shim::oci::CheckpointOptions;
use shim::{TtrpcContext, TtrpcResult};
use std::path::PathBuf;

use crate::forker::{Criu, Request};
use crate::process::{Exited, Process};
use crate::service::{not_found, other, precondition, Service};
use crate::stdio::StdioPaths;

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
        self.publisher.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            pid: pid as u32,
            ..Default::default()
        });
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
            let pid = self.library_start(&req.id)?;
            self.publisher.publish(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            });
            pid
        } else {
            let pid = self.start_exec(&req.id, &req.exec_id)?;
            self.publisher.publish(TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid: pid as u32,
                ..Default::default()
            });
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
        let library_status = self.library(&req.id).ok().map(|c| c.status());
        self.with_container(&req.id, |c| {
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
        let (pid, exited) = self.with_container(&req.id, |c| {
            let process = c
                .process(&req.exec_id)
                .ok_or_else(|| not_found(format!("no process {}", req.exec_id)))?;
            Ok((process.pid, process.exited.is_some()))
        })?;
        if exited || pid == 0 {
            return Err(not_found("process already finished"));
        }
        if req.exec_id.is_empty() {
            let signal = berth::Signal::try_from(req.signal as i32).map_err(other)?;
            self.library(&req.id)?
                .kill(signal, req.all)
                .map_err(other)?;
        } else {
            let signal = Signal::try_from(req.signal as i32).map_err(other)?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(other)?;
        }
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let exited = self
            .wait_exit(&req.id, &req.exec_id, None)?
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
            self.delete_container(&req.id)?
        } else {
            let (pid, exited, logger) = self.with_container(&req.id, |c| {
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
                Ok((process.pid, exited, process.logger))
            })?;
            // Outside the table's lock: the exit thread records its exit.
            if let Some(logger) = logger {
                logger.stop();
            }
            (pid, exited)
        };
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: exited.status,
            exited_at: Some(exited.at).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = self.library(&req.id)?.pids().map_err(other)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| shim::protos::api::ProcessInfo {
                    pid: pid.as_raw() as u32,
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
        self.with_container(&req.id, |c| {
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
        self.publisher.publish(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(Empty::new())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        self.library(&req.id)?.pause().map_err(other)?;
        self.publisher.publish(TaskPaused {
            container_id: req.id,
            ..Default::default()
        });
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        self.library(&req.id)?.resume().map_err(other)?;
        self.publisher.publish(TaskResumed {
            container_id: req.id,
            ..Default::default()
        });
        Ok(Empty::new())
    }

    /// The process holds the only end of its stdin FIFO (the shim keeps no
    /// copy), so containerd closing its writer is already the EOF.
    fn close_io(&self, _ctx: &TtrpcContext, _req: api::CloseIORequest) -> TtrpcResult<Empty> {
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        self.with_container(&req.id, |c| {
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
            berth::foreground::set_terminal_size(console.as_fd(), rows as u16, cols as u16)
                .map_err(other)
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
        self.library(&req.id)?.update(&resources).map_err(other)?;
        Ok(Empty::new())
    }

    /// A CRIU image of the container at `req.path`; with the options' `exit`
    /// the container stops once dumped.
    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        let options = match req.options.as_ref() {
            Some(any) if any.type_url.ends_with("CheckpointOptions") => {
                CheckpointOptions::parse_from_bytes(&any.value).map_err(other)?
            }
            _ => CheckpointOptions::default(),
        };
        let non_empty = |path: &str| (!path.is_empty()).then(|| PathBuf::from(path));
        let criu = Criu {
            image_path: non_empty(&options.image_path).unwrap_or_else(|| PathBuf::from(&req.path)),
            work_path: non_empty(&options.work_path),
            open_tcp: options.open_tcp,
            external_unix_sockets: options.external_unix_sockets,
            file_locks: options.file_locks,
            shell_job: options.terminal,
            empty_namespaces: options.empty_namespaces.clone(),
            cgroups_mode: options.cgroups_mode.clone(),
        };
        let root = self.with_container(&req.id, |c| Ok(c.root.clone()))?;
        let request = Request::Checkpoint {
            root,
            id: req.id.clone(),
            criu,
            leave_running: !options.exit,
        };
        self.fork(request, [None, None, None])?;
        Ok(Empty::new())
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let stats = self.library(&req.id)?.stats().map_err(other)?;
        Ok(api::StatsResponse {
            stats: Some(crate::stats::to_any(&stats).map_err(other)?).into(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self
            .with_container(&req.id, |c| Ok(c.init.pid))
            .unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            ..Default::default()
        })
    }

    /// containerd asks after each Delete: the shim exits once its last
    /// container is deleted (or at once with `now`), and serves the others
    /// until then.
    fn shutdown(&self, _ctx: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<Empty> {
        if !self.close(req.now)? {
            return Ok(Empty::new());
        }
        self.remove_socket();
        self.exit.signal();
        Ok(Empty::new())
    }
}
