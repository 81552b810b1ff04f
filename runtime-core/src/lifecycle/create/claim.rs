//! Create's second phase: the id is claimed (the state directory, made and
//! locked) and the cgroup's plan is recorded in it before any cgroup
//! directory exists, so `delete` of a killed create knows what to undo
//! (state/cgroup_intent.rs).

use super::validate::Validated;
use super::{CreateOptions, Undo};
use crate::cgroups::{self, Cgroup, Driver};
use crate::lifecycle::error::Result;
use crate::state::StateRoot;
use crate::{state::cgroup_intent, sys::fault};
use std::path::PathBuf;

/// The claimed state directory and the cgroup planned in it.
pub(super) struct Claimed {
    /// The container's state directory (`<root>/<id>`), held locked by `Undo`.
    pub(super) dir: PathBuf,
    /// The container's cgroup as planned: its directories, none made yet.
    pub(super) cgroup: Cgroup,
    /// What `delete` goes by if this create is killed: only what it makes.
    pub(super) plan: Cgroup,
}

pub(super) fn claim(
    options: &CreateOptions,
    valid: &Validated,
    undo: &mut Undo,
) -> Result<Claimed> {
    fault::arm();
    let root = StateRoot::open(&options.root)?;
    let claimed = root.claim(&options.id)?;
    let dir = claimed.path().to_path_buf();
    undo.dir = Some(claimed);
    fault::point("claimed");
    let cgroups_path = match &valid.scope {
        Some((scope, _)) => Some(scope.cgroup_path().map_err(cgroups::CgroupError::from)?),
        None => valid.cgroups_path.clone(),
    };
    let cgroup = Cgroup::plan_in(&valid.hierarchies, cgroups_path.as_deref(), &options.id)?;
    let plan = match valid.driver {
        Driver::Systemd { .. } => cgroup_intent::for_systemd_scope(&cgroup),
        Driver::Cgroupfs { .. } | Driver::None => cgroup_intent::for_cgroupfs(&cgroup),
    };
    cgroup_intent::record(&dir, &plan)?;
    fault::point("cgroup-recorded");
    Ok(Claimed { dir, cgroup, plan })
}
