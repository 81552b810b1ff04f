//! config-linux.md "Seccomp": the profile is applied to the container's
//! process, with errnoRet, and a real default profile (containers/common's,
//! resolved to OCI form in testdata/) runs a shell and blocks what it lists.

use std::path::Path;

use berth_conformance::{berth_only, Answer, Bundle, Runtime, SeccompAgent};
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
    let (code, out) = run("mkdir /dev/shm/x 2>&1; echo after", |c| {
        c["linux"]["seccomp"] = deny_mkdir(None)
    });
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Operation not permitted") && out.contains("after"),
        "{out}"
    );
}

#[test]
fn errno_ret_is_returned() {
    let (_, out) = run("mkdir /dev/shm/x 2>&1", |c| {
        c["linux"]["seccomp"] = deny_mkdir(Some(38))
    });
    assert!(out.contains("Function not implemented"), "{out}");
}

/// Without no_new_privs the filter must be loaded while the runtime still has
/// CAP_SYS_ADMIN; it must hold all the same.
#[test]
fn the_filter_holds_without_no_new_privileges() {
    let (_, out) = run(
        "mkdir /dev/shm/x 2>&1; grep Seccomp: /proc/self/status",
        |c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["linux"]["seccomp"] = deny_mkdir(None);
        },
    );
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
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        c["linux"]["seccomp"] = profile;
    });
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shell-ok"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(
        !out.lines().any(|l| l == "set-by-the-container"),
        "sethostname got through: {out}"
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

/// The control for the test above: with CAP_SYS_ADMIN and no profile, the
/// same sethostname works, so it was the filter that refused it.
#[test]
fn without_a_profile_the_same_sethostname_works() {
    let (_, out) = run("hostname set-by-the-container 2>&1; hostname", |c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
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
    assert!(
        text.contains("SCMP_ACT_BOGUS") || text.to_lowercase().contains("seccomp"),
        "{}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// A profile that sends mkdir to the agent's listener.
fn notify_mkdir(agent: &SeccompAgent) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path(),
        "listenerMetadata": "berth-test-metadata",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }],
    })
}

#[test]
fn a_notified_syscall_is_answered_by_the_listener() {
    for no_new_privileges in [false, true] {
        let agent = SeccompAgent::start(Answer::Errno(libc::ENOSPC));
        let mut bundle = Bundle::busybox(&[
            "sh",
            "-c",
            "mkdir /tmp/x 2>&1; echo code=$?; [ -d /tmp/x ] || echo absent",
        ]);
        bundle.edit(|c| {
            c["linux"]["seccomp"] = notify_mkdir(&agent);
            c["process"]["noNewPrivileges"] = json!(no_new_privileges);
        });
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.run(&id, &bundle, &[]);
        rt.assert_nothing_left(&id, &bundle);
        let printed = format!("{}{}", out.stdout, out.stderr);
        assert!(
            printed.contains("No space left on device")
                && printed.contains("code=1")
                && printed.contains("absent"),
            "noNewPrivileges {no_new_privileges}: {printed}"
        );
        assert!(
            agent
                .syscalls()
                .iter()
                .any(|nr| [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32].contains(nr)),
            "{:?}",
            agent.syscalls()
        );

        // runtime-spec's container process state, as the listener gets it.
        let messages = agent.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        let message: Value = serde_json::from_str(&messages[0]).expect("the state message is JSON");
        assert_eq!(message["fds"], json!(["seccompFd"]));
        assert_eq!(message["metadata"], "berth-test-metadata");
        assert_eq!(message["state"]["id"], id.as_str());
        assert_eq!(message["state"]["status"], "creating");
        assert!(
            message["pid"].as_i64().is_some_and(|p| p > 0)
                && message["pid"] == message["state"]["pid"],
            "{message}"
        );
    }
}

#[test]
fn an_exec_d_process_gets_its_own_listener_descriptor() {
    let agent = SeccompAgent::start(Answer::Errno(libc::EROFS));
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["seccomp"] = notify_mkdir(&agent));
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let out = rt.cmd(&["exec", &id, "sh", "-c", "mkdir /tmp/y 2>&1; echo code=$?"]);
    assert!(
        out.stdout.contains("Read-only file system") && out.stdout.contains("code=1"),
        "{}",
        out.describe()
    );
    let messages = agent.messages();
    assert_eq!(
        messages.len(),
        2,
        "one for the init, one for the exec'd process: {messages:?}"
    );
    let exec_message: Value = serde_json::from_str(&messages[1]).expect("JSON");
    assert_eq!(exec_message["state"]["status"], "running");
    assert_ne!(
        exec_message["pid"], exec_message["state"]["pid"],
        "the exec'd process, not the init"
    );
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn notify_without_a_listener_as_the_default_or_to_no_socket_is_refused() {
    let cases = [
        (
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }),
            "listenerPath",
        ),
        (
            json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/nonexistent.sock" }),
            "defaultAction",
        ),
    ];
    for (profile, named) in cases {
        let mut bundle = Bundle::sleeper();
        bundle.edit(|c| c["linux"]["seccomp"] = profile.clone());
        let rt = Runtime::new();
        let id = rt.new_id();
        let err = rt.create(&id, &bundle, &[]).fails();
        if berth_only("the error names what is wrong with the profile") {
            assert!(err.contains(named), "{profile}: {err}");
        }
        rt.assert_nothing_left(&id, &bundle);
    }
    // A listener that is not there: create fails, nothing is left.
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/agent.sock", "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] });
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let err = rt.create(&id, &bundle, &[]).fails();
    if berth_only("the error names the listener path") {
        assert!(err.contains("/nonexistent/agent.sock"), "{err}");
    }
    rt.assert_nothing_left(&id, &bundle);
}
