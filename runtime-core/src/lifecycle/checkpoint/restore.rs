//! `restore`: a container made from a checkpoint instead of the bundle's
//! process. Berth claims the id and makes the cgroup from the bundle's
//! config; CRIU makes the namespaces, mounts and processes from the images
//! as a sibling of itself (so the restored init is Berth's child), inside
//! that cgroup. A failure takes everything back: state directory, cgroup,
//! the rootfs bind CRIU worked in, any restored process.

use super::criu_root::{unbind, CRIU_ROOT};
use super::rpc::{Msg, ReqType, Swrk};
use super::{base_opts, externals, CheckpointError, OpenDir, RestoreOptions, RESTORE_LOG};
use crate::cgroups::{self, Cgroup};
use crate::hooks::{self, HookKind};
use crate::lifecycle::container::Container;
use crate::lifecycle::error::{Error, Result};
use crate::state::cgroup_intent;
use crate::state::{self, ContainerDir, ContainerState, Record, StateRoot, Status};
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// What a failed restore must take back.
#[derive(Default)]
struct Undo {
    dir: Option<ContainerDir>,
    cgroup: Option<Cgroup>,
    bound_root: Option<PathBuf>,
    pid: Option<i32>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            crate::lifecycle::container::kill_what_runs_in_own(&cgroup);
            let _ = cgroup.remove();
        }
        unbind(self.bound_root.take());
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// Restore the checkpoint in `options.criu.image_path` as container
/// `options.id`, running (runc reports a restored container as running).
///
/// Refuses with [`Error::Threaded`] from a process with more than one thread.
pub fn restore(options: &RestoreOptions) -> Result<Container> {
    span!("restore", id = %options.id);
    crate::lifecycle::single_thread::refuse_threaded()?;
    let _standard_fds = crate::lifecycle::caller_effects::standard_fds()?;
    state::validate_id(&options.id)?;
    let bundle = crate::lifecycle::create::absolute_bundle(&options.bundle)?;
    let spec = crate::spec::load(&bundle)?;
    let terminal = crate::spec::wants_terminal(&spec);
    crate::lifecycle::create::check_terminal(terminal, options.console_socket.as_deref(), true)?;
    if options.systemd_cgroup {
        return Err(Error::Unsupported("restore with --systemd-cgroup"));
    }
    let images = OpenDir::open("image directory", &options.criu.image_path, false)?;
    if !images.path.join("inventory.img").exists() {
        return Err(CheckpointError::NoImage {
            path: images.path.clone(),
            reason: "inventory.img is missing".into(),
        }
        .into());
    }
    let work = match &options.criu.work_path {
        Some(path) => OpenDir::open("work directory", path, true)?,
        None => OpenDir::open("image directory", &options.criu.image_path, false)?,
    };
    let rootfs = crate::spec::rootfs_path(&spec, &bundle);
    let root = StateRoot::open(&options.root)?;
    let mut undo = Undo::default();
    undo.dir = Some(root.claim(&options.id)?);
    let dir_path = root.path().join(&options.id);

    let hierarchies = cgroups::hierarchies()?;
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let mut cgroup = Cgroup::plan_in(&hierarchies, cgroups_path.as_deref(), &options.id)?;
    // The plan `delete --force` goes by if this restore is killed, as a
    // killed create's (state/cgroup_intent.rs).
    let mut plan = cgroup_intent::for_cgroupfs(&cgroup);
    cgroup_intent::record(&dir_path, &plan)?;
    // restore's driver: cgroupfs without the overlap, every directory made
    // and limited before CRIU starts in it (--systemd-cgroup is refused above).
    let made_first = cgroups::Driver::for_restore()
        .made_before_clone()
        .unwrap_or(cgroups::Versions::All);
    let made = cgroup.make_in(&hierarchies, made_first);
    undo.cgroup = Some(cgroup.clone());
    made?;
    cgroup_intent::drop_found_dirs(&dir_path, &mut plan, &cgroup, &hierarchies, made_first)?;
    crate::lifecycle::create::set_limits(&cgroup, &spec)?;

    super::mountpoints::make(&spec, &bundle, &rootfs)?;
    // CRIU's root must be a mount point of its own.
    let criu_root = dir_path.join(CRIU_ROOT);
    std::fs::create_dir(&criu_root).map_err(|source| CheckpointError::Dir {
        what: "make",
        path: criu_root.clone(),
        source,
    })?;
    mount(
        Some(&rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| CheckpointError::Dir {
        what: "bind the rootfs at",
        path: criu_root.clone(),
        source: e.into(),
    })?;
    undo.bound_root = Some(criu_root.clone());

    let mut opts = base_opts(&options.criu, &images, &work, RESTORE_LOG)?;
    opts.str(13, &criu_root.to_string_lossy())
        .flag(26, true)
        .flag_if(50, terminal);
    if let Some(profile) = &options.lsm_profile {
        opts.str(53, profile);
    }
    if let Some(context) = &options.lsm_mount_context {
        opts.str(63, context);
    }
    cgroup_roots(&mut opts, &cgroup, &hierarchies);
    let _inherited = externals::for_restore(&mut opts, &spec, &bundle, &images.path, &cgroup)?;

    let mut swrk = Swrk::start(&options.criu.criu)?;
    // CRIU and what it forks start in the container's cgroup.
    if let Err(e) = cgroup.make_and_join(swrk.pid()) {
        swrk.finish();
        return Err(e.into());
    }
    let record_for_hooks = |pid: i32| ContainerState {
        oci_version: spec.version().clone(),
        id: options.id.clone(),
        pid,
        status: Status::Creating,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
    };
    let resp = swrk.call(
        ReqType::Restore,
        Some(&opts),
        |_| {},
        |script, pid, fd| {
            match script {
                // The namespaces exist, the processes are not running yet: runc's prestart point.
                "setup-namespaces" => {
                    let state = serde_json::to_string(&record_for_hooks(pid)).unwrap_or_default();
                    for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                        hooks::run_hooks(
                            hooks::hooks_of(spec.hooks().as_ref(), kind),
                            kind,
                            &state,
                        )
                        .map_err(|e| CheckpointError::Hook(e.to_string()))?;
                    }
                }
                "orphan-pts-master" => {
                    if let Some(master) = fd {
                        crate::process::console::hand_over(
                            options.console_socket.as_deref(),
                            Some(master),
                        )
                        .map_err(|e| CheckpointError::Invalid(format!("console socket: {e}")))?;
                    }
                }
                _ => {}
            }
            Ok(())
        },
    );
    swrk.finish();
    let resp = resp?;
    if let Some(pid) = resp.restored_pid.filter(|p| *p > 0) {
        undo.pid = Some(pid);
    }
    if !resp.success {
        return Err(super::criu_failure("restore", resp, work.path.join(RESTORE_LOG)).into());
    }
    let pid = undo
        .pid
        .ok_or_else(|| CheckpointError::Swrk("criu restored no process".into()))?;
    let (init, init_pidfd) = crate::lifecycle::create::identify_init(pid).ok_or_else(|| {
        Error::init(
            crate::ChildStep::Sync,
            "the restored init exited during restore",
        )
    })?;
    let record = Record::made_from(
        &options.id,
        &spec,
        init,
        bundle.clone(),
        rootfs.clone(),
        cgroup,
    );
    let dir = undo
        .dir
        .as_ref()
        .ok_or(Error::init(crate::ChildStep::Other, "state directory lost"))?;
    crate::state::recorded_config::record(dir.path(), &spec)?;
    dir.write(&record)?;
    if let Some(path) = &options.pid_file {
        crate::lifecycle::create::commit_pid_file(crate::lifecycle::create::stage_pid_file(
            path, pid,
        )?)?;
    }
    // The restored mount namespace holds its own copy of the bind.
    unbind(undo.bound_root.take());
    undo.pid = None;
    undo.cgroup = None;
    let dir = undo
        .dir
        .take()
        .ok_or(Error::init(crate::ChildStep::Other, "state directory lost"))?;
    Ok(Container::from_parts(dir, record, None, init_pidfd))
}

/// Restore each hierarchy's cgroup at the container's directory, wherever
/// the dumped one was (a new id has a new path).
fn cgroup_roots(opts: &mut Msg, cgroup: &Cgroup, hierarchies: &[cgroups::Hierarchy]) {
    for (name, dir) in &cgroup.dirs {
        let Some(h) = hierarchies.iter().find(|h| &h.name == name) else {
            continue;
        };
        let Ok(inner) = dir.strip_prefix(&h.mountpoint) else {
            continue;
        };
        let mut m = Msg::default();
        // cgroup2 has no controller name for CRIU to match: it takes the
        // root given without one, which every v1 hierarchy here overrides.
        match (name.as_str(), h.v2) {
            (_, true) => {}
            ("systemd", _) => {
                m.str(1, "name=systemd");
            }
            (other, _) => {
                m.str(1, other);
            }
        }
        m.str(2, &Path::new("/").join(inner).to_string_lossy());
        opts.msg(25, &m);
    }
}
