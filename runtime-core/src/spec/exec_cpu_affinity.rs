//! runtime-spec 1.2's `process.execCPUAffinity`: its two CPU lists, checked
//! with a reason before oci-spec parses them, and parsed for `exec`.

use serde_json::Value;

use super::SpecError;
use crate::sys::cpu_set::CpuSet;

/// `process.execCPUAffinity`'s two lists as CPU sets (`initial`, `final`);
/// an empty or missing list is none (the spec: "if omitted or empty"), a
/// bad one is named.
pub(crate) fn exec_cpu_affinity_sets(
    process: &oci_spec::runtime::Process,
) -> Result<(Option<CpuSet>, Option<CpuSet>), SpecError> {
    let Some(affinity) = process.exec_cpu_affinity() else {
        return Ok((None, None));
    };
    let parse = |field: &'static str, value: &Option<String>| {
        let value = value.as_deref().unwrap_or("");
        if value.is_empty() {
            return Ok(None);
        }
        CpuSet::parse(value)
            .map(Some)
            .map_err(|reason| SpecError::ExecCpuAffinity {
                field,
                value: value.to_owned(),
                reason,
            })
    };
    Ok((
        parse("initial", affinity.initial())?,
        parse("final", affinity.cpu_affinity_final())?,
    ))
}

/// runtime-spec 1.2 `process.execCPUAffinity`: each list is checked in the
/// untyped document, before oci-spec parses it, so a bad one is named with
/// the reason (oci-spec's pattern says only "invalid format", and lets
/// through a backward range or a CPU number no mask can hold).
/// `process` points at the process object ("/process" in config.json, ""
/// in a process.json).
pub(super) fn check_exec_cpu_affinity(raw: &Value, process: &str) -> Result<(), SpecError> {
    for field in ["initial", "final"] {
        let pointer = format!("{process}/execCPUAffinity/{field}");
        let Some(Value::String(list)) = raw.pointer(&pointer) else {
            continue;
        };
        if list.is_empty() {
            continue;
        }
        crate::sys::cpu_set::CpuSet::parse(list).map_err(|reason| SpecError::ExecCpuAffinity {
            field,
            value: list.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Removes the empty lists of `process.execCPUAffinity`, which mean "not
/// set"; says whether there were any.
pub(super) fn drop_empty_exec_cpu_affinity(raw: &mut Value, process: &str) -> bool {
    let pointer = format!("{process}/execCPUAffinity");
    let Some(Value::Object(affinity)) = raw.pointer_mut(&pointer) else {
        return false;
    };
    let before = affinity.len();
    affinity.retain(|_, list| list.as_str() != Some(""));
    affinity.len() != before
}
