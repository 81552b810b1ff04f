//! `checkpoint` and `restore`: runc's flags turned into the library's options.

use crate::{state_root, warn_all, Failure};
use berth::checkpoint::{CgroupMode, CheckpointOptions, CriuOptions, RestoreOptions};
use berth::container;
use berth_cli::args::{CheckpointArgs, CriuArgs, GlobalOpts, RestoreArgs};
use berth_cli::log::Logger;
use std::path::PathBuf;

fn criu_options(global: &GlobalOpts, args: &CriuArgs) -> Result<CriuOptions, Failure> {
    let manage_cgroups_mode = match &args.manage_cgroups_mode {
        None => None,
        Some(mode) => Some(CgroupMode::parse(mode).ok_or_else(|| {
            format!(
                "invalid --manage-cgroups-mode value {mode:?} (want soft, full, strict or ignore)"
            )
        })?),
    };
    // runc's default image directory: ./checkpoint.
    let image_path = match &args.image_path {
        Some(path) => path.clone(),
        None => std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join("checkpoint"),
    };
    Ok(CriuOptions {
        // runc's rule: --criu if given, else "criu" from PATH.
        criu: PathBuf::from(global.criu.as_deref().unwrap_or("criu")),
        image_path,
        work_path: args.work_path.clone(),
        tcp_established: args.tcp_established,
        ext_unix_sk: args.ext_unix_sk,
        shell_job: args.shell_job,
        file_locks: args.file_locks,
        lazy_pages: args.lazy_pages,
        auto_dedup: args.auto_dedup,
        manage_cgroups_mode,
        empty_ns: args.empty_ns.clone(),
    })
}

pub(crate) fn checkpoint(global: &GlobalOpts, args: &CheckpointArgs) -> Result<i32, Failure> {
    let mut target = berth::Container::load(&state_root(global), &args.id)?;
    let options = CheckpointOptions {
        criu: criu_options(global, &args.criu)?,
        parent_path: args.parent_path.clone(),
        leave_running: args.leave_running,
        pre_dump: args.pre_dump,
        status_fd: args.status_fd,
        page_server: args.page_server.clone(),
    };
    target.checkpoint(&options)?;
    Ok(0)
}

/// Detached, Berth returns once the container runs; otherwise it waits for
/// it as `run` does, exits with its status and deletes it.
pub(crate) fn restore(
    global: &GlobalOpts,
    args: &RestoreArgs,
    logger: &Logger,
) -> Result<i32, Failure> {
    let root = state_root(global);
    let options = RestoreOptions {
        criu: criu_options(global, &args.criu)?,
        root: root.clone(),
        id: args.id.clone(),
        bundle: args.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
        console_socket: args.console_socket.clone(),
        pid_file: args.pid_file.clone(),
        lsm_profile: args.lsm_profile.clone(),
        lsm_mount_context: args.lsm_mount_context.clone(),
        systemd_cgroup: global.systemd_cgroup,
    };
    if args.detach {
        berth::checkpoint::restore(&options)?;
        return Ok(0);
    }
    berth::foreground::prepare(!args.no_subreaper)?.leave_in_place();
    let restored = berth::checkpoint::restore(&options)?;
    let outcome = berth::foreground::forward_until_exit(restored.pid(), None);
    drop(restored);
    match container::delete(&root, &args.id, true) {
        Ok(warnings) => warn_all(logger, warnings),
        Err(e) => logger.warn(&format!("delete container {} after restore: {e}", args.id)),
    }
    Ok(outcome?)
}
