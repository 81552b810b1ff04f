//! The process section: ids, cwd, args, rlimits and capabilities, one rule per test.
use super::tests::Case;
use super::*;
use serde_json::json;

#[test]
fn process_is_optional() {
    Case::new()
        .remove("/process")
        .validate()
        .expect("no process");
}

#[test]
fn an_id_of_minus_one_is_refused() {
    for (pointer, field) in [
        ("/process/user/uid", "process.user.uid"),
        ("/process/user/gid", "process.user.gid"),
        (
            "/process/user/additionalGids",
            "process.user.additionalGids[1]",
        ),
    ] {
        let value = match pointer.ends_with("Gids") {
            true => json!([5, 4294967295u32]),
            false => json!(4294967295u32),
        };
        let err = Case::new().set(pointer, value).validate().unwrap_err();
        assert!(
            matches!(err, SpecError::UnchangedId { field: ref f } if f == field),
            "{err}"
        );
    }
    let ok = Case::new().set("/process/user/uid", json!(4294967294u32));
    assert!(ok.validate().is_ok());
}

#[test]
fn cwd_must_be_absolute() {
    let err = Case::new()
        .set("/process/cwd", json!("tmp"))
        .validate()
        .unwrap_err();
    assert!(matches!(err, SpecError::RelativeCwd { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "process.cwd \"tmp\" must be an absolute path"
    );
}

#[test]
fn args_must_not_be_empty() {
    let err = Case::new()
        .set("/process/args", json!([]))
        .validate()
        .unwrap_err();
    assert!(matches!(err, SpecError::EmptyArgs), "{err}");
    let err = Case::new().remove("/process/args").validate().unwrap_err();
    assert!(matches!(err, SpecError::EmptyArgs), "{err}");
}

#[test]
fn rlimit_soft_must_not_exceed_hard() {
    let err = Case::new()
        .set("/process/rlimits/1/soft", json!(30))
        .validate()
        .unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::RlimitSoftAboveHard {
                index: 1,
                soft: 30,
                hard: 20,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "process.rlimits[1] (RLIMIT_NPROC): soft limit 30 exceeds hard limit 20"
    );
}

#[test]
fn rlimit_types_must_be_unique() {
    let err = Case::new()
        .set("/process/rlimits/1/type", json!("RLIMIT_NOFILE"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::DuplicateRlimit { index: 1, ref rlimit } if rlimit == "RLIMIT_NOFILE"),
        "{err}"
    );
}

#[test]
fn rlimit_types_must_be_known() {
    let err = Case::new()
        .set("/process/rlimits/0/type", json!("RLIMIT_NOFILES"))
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::UnknownRlimit { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn capabilities_must_be_known() {
    let caps = json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL", "CAP_SYS_ADMINN"]});
    let err = Case::new()
        .set("/process/capabilities", caps)
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, SpecError::UnknownCapability { ref field, .. } if field == "process.capabilities.effective[1]")
    );
}

#[test]
fn known_capabilities_pass() {
    let all: Vec<&str> = KNOWN_CAPABILITIES.to_vec();
    let caps = json!({"bounding": all, "effective": all, "permitted": all, "inheritable": [], "ambient": all});
    Case::new()
        .set("/process/capabilities", caps)
        .validate()
        .expect("all known capabilities");
}
