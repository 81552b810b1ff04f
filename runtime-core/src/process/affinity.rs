//! CPU affinity of the container's processes.
//!
//! A process inherits its creator's affinity, so `taskset -c 0 berth run`
//! would pin the container to CPU 0: the init resets its own affinity to
//! every CPU once it is in the container's cgroups, which the kernel narrows
//! to the cgroup's cpuset (runc 1.3.1 and crun do the same). An `exec`'d
//! process follows `process.execCPUAffinity` (runtime-spec 1.2): `initial`
//! while the runtime sets it up, `final` once it is in the container's
//! cgroup; without either it is reset like the init. The spec makes
//! execCPUAffinity "not applicable to the container's init process", and
//! runc and crun ignore it there: the init is always reset.

use oci_spec::runtime::Process;

use crate::spec::SpecError;

pub use crate::sys::cpu_set::CpuSet;

/// A process's `execCPUAffinity`, parsed. An empty list is "not set", as
/// the spec says of `final` ("if omitted or empty").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecAffinity {
    /// Where the runtime's setup of the process runs, from its fork on.
    pub initial: Option<CpuSet>,
    /// The process's affinity once it is in the container's cgroup.
    pub final_: Option<CpuSet>,
    /// The lists as written, for messages.
    initial_text: String,
    final_text: String,
}

impl ExecAffinity {
    /// Parses `process.execCPUAffinity`; a bad list is named.
    pub fn of(process: &Process) -> Result<ExecAffinity, SpecError> {
        let Some(affinity) = process.exec_cpu_affinity() else {
            return Ok(ExecAffinity::default());
        };
        let (initial, final_) = crate::spec::exec_cpu_affinity_sets(process)?;
        Ok(ExecAffinity {
            initial,
            final_,
            initial_text: affinity.initial().clone().unwrap_or_default(),
            final_text: affinity.cpu_affinity_final().clone().unwrap_or_default(),
        })
    }

    /// What the process does once it is in the container's cgroups: takes
    /// `final`; keeps `initial` when only that is set (the spec: the
    /// runtime SHOULD NOT change it then); else is reset to every CPU the
    /// cgroup allows, rather than keep the caller's.
    pub fn apply_final(&self) -> Result<(), String> {
        match (&self.initial, &self.final_) {
            (_, Some(set)) => set.apply().map_err(|e| {
                format!(
                    "set the CPU affinity to process.execCPUAffinity.final {:?}: {e}",
                    self.final_text
                )
            }),
            (Some(_), None) => Ok(()),
            (None, None) => reset(),
        }
    }

    /// The message for an `initial` the kernel refused.
    pub fn initial_error(&self, e: std::io::Error) -> String {
        format!(
            "set the CPU affinity to process.execCPUAffinity.initial {:?}: {e}",
            self.initial_text
        )
    }
}

/// Resets the calling process's affinity to every CPU its cgroup allows
/// (the init's, and an exec'd process's without execCPUAffinity).
pub fn reset() -> Result<(), String> {
    CpuSet::all()
        .apply()
        .map_err(|e| format!("reset the CPU affinity: {e}"))
}

/// Narrows the calling thread to `initial`, if set, for the fork of an
/// exec'd process's setup child: the child is born there (the earliest it
/// can be), and the caller gets its own affinity back with [`restore`].
pub fn narrow_to(affinity: &ExecAffinity) -> Result<Option<CpuSet>, String> {
    let Some(initial) = &affinity.initial else {
        return Ok(None);
    };
    let saved = CpuSet::current().map_err(|e| format!("read the CPU affinity: {e}"))?;
    initial.apply().map_err(|e| affinity.initial_error(e))?;
    Ok(Some(saved))
}

/// Puts back the affinity [`narrow_to`] saved (in the caller only: the
/// child keeps `initial`).
pub fn restore(saved: Option<CpuSet>) {
    if let Some(saved) = saved {
        // It was the thread's own a moment ago; nothing else to do if refused.
        let _ = saved.apply();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(affinity: serde_json::Value) -> Process {
        serde_json::from_value(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "execCPUAffinity": affinity
        }))
        .expect("process")
    }

    #[test]
    fn exec_affinity_names_the_bad_field() {
        let err = ExecAffinity::of(&process(
            serde_json::json!({"initial": "0", "final": "3-1"}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.execCPUAffinity.final \"3-1\": the range 3-1 runs backwards"
        );
        let ok = ExecAffinity::of(&process(serde_json::json!({"final": "1"}))).expect("valid");
        assert_eq!(
            (ok.initial, ok.final_.map(|s| s.cpus().collect::<Vec<_>>())),
            (None, Some(vec![1]))
        );
    }
}
