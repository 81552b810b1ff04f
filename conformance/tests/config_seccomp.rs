//! config-linux.md "Seccomp": the profile is applied to the container's
//! process, with errnoRet, and a real default profile (containers/common's,
//! resolved to OCI form in testdata/) runs a shell and blocks what it lists.

use std::path::Path;

use berth_conformance::{Bundle, Runtime};
use serde_json::{json, Value};

fn run(script: &str, edit: impl FnOnce(&mut Value)) -> (i32, String) {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(edit);
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    rt.assert_nothing_left(&id, &bundle);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

fn deny_mkdir(errno: Option<u32>) -> Value {
    let mut rule = json!({ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" });
    if let Some(errno) = errno {
        rule["errnoRet"] = json!(errno);
    }
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule] })
}

#[test]
fn a_denied_syscall_fails_with_eperm() {
    let (code, out) = run("mkdir /dev/shm/x 2>&1; echo after", |c| c["linux"]["seccomp"] = deny_mkdir(None));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Operation not permitted") && out.contains("after"), "{out}");
}

#[test]
fn errno_ret_is_returned() {
    let (_, out) = run("mkdir /dev/shm/x 2>&1", |c| c["linux"]["seccomp"] = deny_mkdir(Some(38)));
    assert!(out.contains("Function not implemented"), "{out}");
}

/// Without no_new_privs the filter must be loaded while the runtime still has
/// CAP_SYS_ADMIN; it must hold all the same.
#[test]
fn the_filter_holds_without_no_new_privileges() {
    let (_, out) = run("mkdir /dev/shm/x 2>&1; grep Seccomp: /proc/self/status", |c| {
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = deny_mkdir(None);
    });
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "not in filter mode: {out}");
}

/// The profile lists sethostname as EPERM (it is allowed only with
/// CAP_SYS_ADMIN, which it was resolved without). The container gets
/// CAP_SYS_ADMIN here, so only the filter can be what refuses it.
#[test]
fn the_containers_default_profile_runs_a_shell_and_blocks_what_it_lists() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/seccomp-default.oci.json");
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let script = "echo shell-ok; hostname set-by-the-container 2>&1; hostname; grep Seccomp: /proc/self/status";
    let (code, out) = run(script, |c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_ADMIN"));
        }
        c["linux"]["seccomp"] = profile;
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shell-ok"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.lines().any(|l| l == "set-by-the-container"), "sethostname got through: {out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

/// The control for the test above: with CAP_SYS_ADMIN and no profile, the
/// same sethostname works, so it was the filter that refused it.
#[test]
fn without_a_profile_the_same_sethostname_works() {
    let (_, out) = run("hostname set-by-the-container 2>&1; hostname", |c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_ADMIN"));
        }
    });
    assert!(out.lines().any(|l| l == "set-by-the-container"), "{out}");
}

#[test]
fn an_unknown_action_is_a_clear_error() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_BOGUS" }));
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle, &[]);
    let text = out.fails();
    assert!(text.contains("SCMP_ACT_BOGUS") || text.to_lowercase().contains("seccomp"), "{}", out.describe());
    rt.assert_nothing_left(&id, &bundle);
}
