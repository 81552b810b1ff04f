//! What the forker's worker does with one request: the library call, with
//! the process's stdio in its options (docs/shim.md). It runs in the
//! worker, a fork of the single-threaded forker, which exits right after.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{Criu, Reply, Request};

/// In the worker, first: SIGKILL when the forker dies, so that a request
/// the shim gets no answer to is not carried on unseen (`after_lost`).
pub(super) fn die_with(forker: nix::unistd::Pid) {
    // SAFETY: prctl(2) with integer arguments. The forker has one thread,
    // so the signal follows the forker itself.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if nix::unistd::getppid() != forker {
        // The forker died before the signal was armed.
        // SAFETY: _exit(2), as at the worker's end.
        unsafe { libc::_exit(1) }
    }
}

/// In the worker: the library call, with the process's stdio in its
/// options.
pub(super) fn work(request: Request, stdio: [Option<OwnedFd>; 3]) -> Reply {
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
