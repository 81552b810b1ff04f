//! Create's fourth phase: the init is cloned into its namespaces (clone3,
//! born in its v2 cgroup directory; or through the helper that clones it
//! from inside a user namespace joined by path) and runs init/mod.rs; the
//! parent keeps only its own ends.

use super::prepare::{ForInit, Prepared};
use super::validate::Validated;
use super::{CreateOptions, Undo};
use crate::init::{self, InitConfig};
use crate::lifecycle::error::Result;
use crate::{cgroups, sys::fault};

/// Clone the init; returns its host pid (in the parent: the child never
/// returns) and what the parent keeps of `prepared`.
pub(super) fn spawn(
    options: &CreateOptions,
    valid: &mut Validated,
    prepared: Prepared,
    for_init: ForInit,
    undo: &mut Undo,
) -> Result<(i32, Prepared)> {
    let namespaces = &valid.namespaces;
    let pid_joined_late = namespaces.pid_joined_late().is_some();
    // The child inherits this, and it only resets at the user program's exec.
    // A rootless parent needs the init dumpable until the id maps are
    // written: the init turns non-dumpable itself then, before it does
    // anything in its namespaces (runc's init does the same). Nothing else
    // is in those new namespaces yet, and a rootless container's root is an
    // ordinary user on the host, who cannot write the runtime's binary.
    let dumpable_until_mapped = namespaces.maps_written_unprivileged();
    let dumpable = crate::lifecycle::caller_effects::DumpableForFork::set(
        dumpable_until_mapped,
        options.leave_caller_non_dumpable,
    )?;
    let caller_pidfd = crate::sys::caller_death::caller_pidfd(options.die_with_caller)?;
    let into_cgroup = prepared
        .cgroup_entry
        .as_ref()
        .and_then(cgroups::Entry::v2_dir)
        .filter(|_| namespaces.clones_into_cgroup());
    let stdio = valid.stdio.take();
    let pid = namespaces.clone_init(into_cgroup, pid_joined_late)?;
    if pid == 0 {
        drop(prepared.channel);
        crate::sys::caller_death::die_with_caller_in_child(caller_pidfd);
        if let Some(dir) = undo.dir.as_mut() {
            dir.close_lock_in_child();
        }
        init::run(InitConfig {
            spec: &valid.spec,
            id: &options.id,
            rootfs: &valid.rootfs,
            bundle: &valid.bundle,
            cgroup: &prepared.cgroup,
            namespaces,
            channel: for_init.channel,
            barrier: for_init.barrier,
            no_pivot: options.no_pivot,
            no_new_keyring: options.no_new_keyring,
            preserve_fds: options.preserve_fds,
            extra_env: &options.extra_env,
            seccomp: valid.seccomp.as_ref(),
            idmapped: &prepared.idmapped,
            cgroup_entry: prepared.cgroup_entry,
            v1_cgroup_sent_later: valid.driver.overlaps(),
            report: for_init.report,
            pid_joined_late,
            memory_policy: valid.memory_policy.as_ref(),
            stdio,
        });
    }
    undo.init_pid = Some(pid);
    drop(dumpable);
    drop(caller_pidfd);
    drop(stdio);
    fault::point("cloned");
    // Only the init may hold the barrier's read end: `start` detects a dead
    // init by there being no reader. The parent's other ends go with it.
    drop(for_init);
    Ok((pid, prepared))
}
