//! Create's last phase. `stage`: while the init does its mounts, the state
//! record, the recorded config and the pid file are written beside their
//! final names (creating the inodes is the slow part, and until the rename
//! no reader sees them). `commit`: once the init is ready they are renamed
//! into place, the init is let go to wait for `start` (the last Proceed),
//! and the Container is returned; nothing is undone after this.

use super::handoff::Ready;
use super::prepare::Prepared;
use super::validate::Validated;
use super::{CreateOptions, Undo};
use crate::init::child_error::ChildStep;
use crate::init::sync::{Channel, Message};
use crate::isolation::rootfs::host_mount;
use crate::lifecycle::container::Container;
use crate::lifecycle::error::{Error, Result};
use crate::state::{self, ContainerDir, Record};
use crate::sys::fault;
use crate::sys::host_file::StagedFile;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::path::Path;

/// Write the state record, the recorded config and the pid file beside their names.
pub(super) fn stage(
    options: &CreateOptions,
    valid: &Validated,
    prepared: &Prepared,
    pid: i32,
    undo: &mut Undo,
) -> Result<Record> {
    let spec = &valid.spec;
    let (_, pid_start_time) = state::process_stat(pid)
        .ok_or_else(|| Error::init(ChildStep::Sync, "the container init exited during setup"))?;
    let record = Record {
        no_new_keyring: options.no_new_keyring,
        ..Record::made_from(
            &options.id,
            spec,
            (pid, pid_start_time),
            valid.bundle.clone(),
            valid.rootfs.clone(),
            prepared.cgroup.clone(),
        )
    };
    let dir = state_dir(undo)?;
    dir.stage(&record)?;
    // What exec and checkpoint read later, never the bundle (state/recorded_config.rs).
    let recorded = prepared.recorded_spec.as_ref().unwrap_or(spec);
    crate::state::recorded_config::record(dir.path(), recorded)?;
    if let Some(path) = &options.pid_file {
        undo.pid_file = Some(stage_pid_file(path, pid)?);
    }
    Ok(record)
}

/// Rename what `stage` wrote into place, let the init wait for `start`,
/// and hand the container to the caller.
pub(super) fn commit(
    mut record: Record,
    ready: Ready,
    channel: Channel,
    mut undo: Undo,
) -> Result<Container> {
    let dir = state_dir(&undo)?;
    if ready.pid != record.pid {
        // The init forked the process that runs the program: the record
        // and the pid file name that one.
        record.pid = ready.pid;
        record.pid_start_time = state::process_stat(ready.pid)
            .ok_or_else(|| {
                Error::init(
                    ChildStep::Sync,
                    "the container's process exited before create finished",
                )
            })?
            .1;
        dir.stage(&record)?;
        if let Some(staged) = &undo.pid_file {
            staged
                .rewrite(ready.pid.to_string().as_bytes())
                .map_err(|source| Error::PidFile {
                    path: staged.path(),
                    source,
                })?;
        }
    }
    if let Some((path, before)) = &undo.host_rootfs {
        let now = host_mount::mount_id(path).map_err(|source| Error::HostMount {
            path: path.clone(),
            source,
        })?;
        if now != *before {
            record.host_rootfs_mount = Some(now);
            dir.stage(&record)?;
        }
    }
    dir.commit_staged()?;
    fault::point("state-written");
    if let Some(pid_file) = undo.pid_file.take() {
        commit_pid_file(pid_file)?;
        fault::point("pid-file-written");
    }
    channel.send(&Message::Proceed).map_err(Error::Sync)?;
    fault::point("released");
    if ready.setup_pid != ready.pid {
        let _ = waitpid(Pid::from_raw(ready.setup_pid), None);
    }
    let dir = undo.disarm();
    Ok(Container::from_parts(dir, record, ready.console))
}

fn state_dir(undo: &Undo) -> Result<&ContainerDir> {
    undo.dir
        .as_ref()
        .ok_or(Error::init(ChildStep::Other, "state directory lost"))
}

/// The pid with no newline, as containerd expects, staged as `.<name>`
/// beside `path` (sys/host_file.rs: never through a link planted there). Mode
/// 0644 less the umask, where runc has 0666: an engine signals the pid it
/// reads here, so no other user may rewrite it.
pub(crate) fn stage_pid_file(path: &Path, pid: i32) -> Result<StagedFile> {
    StagedFile::stage(path, pid.to_string().as_bytes(), 0o644).map_err(|source| Error::PidFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Rename a staged pid file into place.
pub(crate) fn commit_pid_file(pid_file: StagedFile) -> Result<()> {
    let path = pid_file.path();
    pid_file
        .commit()
        .map_err(|source| Error::PidFile { path, source })
}
