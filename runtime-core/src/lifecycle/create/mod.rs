//! `create`: the parent's side of making a container, as a list of phases,
//! each in the file of its name (docs/architecture.md, "The lifecycle"):
//!
//! 1. `validate.rs`: read the config, check it, the id and the options;
//!    build what is built from it. Nothing exists yet.
//! 2. `claim.rs`: claim the id (the state directory, locked) and record the
//!    cgroup's plan in it.
//! 3. `prepare.rs`: what is made before the clone: the cgroup (all of it,
//!    or the v2 directory the init is born in), the idmapped trees, the
//!    start barrier, the sync channel.
//! 4. `spawn.rs`: clone the init into its namespaces (init/mod.rs runs there).
//! 5. `handoff.rs`: the conversation with the init: its cgroup and id maps,
//!    Proceed, the v1 cgroup (CgroupReady), hooks, console, seccomp
//!    listener, Ready, the console and pidfd sockets.
//! 6. `commit.rs`: state.json and the pid file staged (while the init does
//!    its mounts), then renamed into place; the last Proceed.
//!
//! Any failure before the last step undoes everything done so far
//! (`undo.rs`). A create killed before it writes the state leaves its
//! cgroup recorded beside it, for `delete` to undo (see `cgroup_intent`);
//! `fault::point` marks each step for the conformance suite's kill tests.
//! With the `tracing` feature each phase is a span inside `create`'s
//! (trace.rs).

mod claim;
mod commit;
mod handoff;
mod options;
mod prepare;
mod spawn;
mod systemd_unit;
mod undo;
mod validate;

pub(crate) use commit::{commit_pid_file, identify_init, stage_pid_file};
pub use options::CreateOptions;
pub(crate) use prepare::set_limits;
use undo::Undo;
pub(crate) use validate::{absolute_bundle, check_terminal};

use crate::lifecycle::container::Container;
use crate::lifecycle::error::Result;

/// Create a container and leave its init blocked until `start`.
///
/// Forks: from a process with more than one thread it refuses with
/// [`Error::Threaded`](crate::Error::Threaded) before anything exists. The
/// child is made non-dumpable before it enters the container's namespaces,
/// so nothing in the container can open this binary through
/// `/proc/<pid>/exe` (CVE-2019-5736); an embedding program is the binary in
/// question.
pub fn create(options: &CreateOptions) -> Result<Container> {
    span!("create", id = %options.id);
    // Held until create returns, past the fork (the child keeps its copies).
    let _standard_fds = crate::lifecycle::caller_effects::standard_fds()?;
    let mut valid = in_span!("validate", validate::validate(options))?;
    let mut undo = Undo::default();
    let claimed = in_span!("claim", claim::claim(options, &valid, &mut undo))?;
    let (prepared, for_init) = in_span!(
        "prepare",
        prepare::prepare(options, &mut valid, claimed, &mut undo)
    )?;
    let (pid, mut prepared) = in_span!(
        "spawn",
        spawn::spawn(options, &mut valid, prepared, for_init, &mut undo)
    )?;
    in_span!(
        "handoff.let_go",
        handoff::let_go(options, &valid, &mut prepared, pid, &mut undo)
    )?;
    let staged = in_span!(
        "commit.stage",
        commit::stage(options, &valid, &prepared, pid, &mut undo)
    )?;
    let (ready, channel) = in_span!(
        "handoff.until_ready",
        handoff::until_ready(options, &valid, prepared, pid, &mut undo)
    )?;
    in_span!("commit", commit::commit(staged, ready, channel, undo))
}
