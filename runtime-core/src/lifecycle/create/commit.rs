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
use crate::state::{self, ContainerDir, InitId, Record};
use crate::sys::fault;
use crate::sys::host_file::StagedFile;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Write the state record, the recorded config and the pid file beside
/// their names; returns the record, and a pidfd of the init for the Container.
pub(super) fn stage(
    options: &CreateOptions,
    valid: &Validated,
    prepared: &Prepared,
    pid: i32,
    undo: &mut Undo,
) -> Result<(Record, Option<OwnedFd>)> {
    let spec = &valid.spec;
    let (init, init_pidfd) = identify_init(pid)
        .ok_or_else(|| Error::init(ChildStep::Sync, "the container init exited during setup"))?;
    let record = Record {
        no_new_keyring: options.no_new_keyring,
        ..Record::made_from(
            &options.id,
            spec,
            init,
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
    Ok((record, init_pidfd))
}

/// How the record names the init `pid` (its start time, and its pidfs
/// inode where the kernel has pidfs), and a pidfd of it; `None` once it has
/// exited. The pidfd is opened first, while `pid` is still our unreaped
/// child (or the process criu just restored), so what is read after is
/// that process's, and the Container holds it from the start.
pub(crate) fn identify_init(pid: i32) -> Option<(InitId, Option<OwnedFd>)> {
    // Without pidfds (Linux before 5.3) the record has the start time alone.
    let pidfd = crate::sys::pidfd::open(pid).ok();
    let (_, start_time) = state::process_stat(pid)?;
    let pidfs_inode = pidfd
        .as_ref()
        .and_then(|fd| crate::sys::pidfd::pidfs_inode(fd.as_fd()));
    let init = InitId {
        pid,
        start_time,
        pidfs_inode,
    };
    Some((init, pidfd))
}

/// Rename what `stage` wrote into place, let the init wait for `start`,
/// and hand the container to the caller.
pub(super) fn commit(
    (mut record, mut init_pidfd): (Record, Option<OwnedFd>),
    ready: Ready,
    channel: Channel,
    mut undo: Undo,
) -> Result<Container> {
    let dir = state_dir(&undo)?;
    if ready.pid != record.pid {
        // The init forked the process that runs the program (CLONE_PARENT:
        // our child too): the record and the pid file name that one.
        let (init, pidfd) = identify_init(ready.pid).ok_or_else(|| {
            Error::init(
                ChildStep::Sync,
                "the container's process exited before create finished",
            )
        })?;
        record.pid = init.pid;
        record.pid_start_time = init.start_time;
        record.pidfs_inode = init.pidfs_inode;
        init_pidfd = pidfd;
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
    Ok(Container::from_parts(
        dir,
        record,
        ready.console,
        init_pidfd,
    ))
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
