//! config.md "Process" and config-linux.md process fields: what the container's first
//! process sees of its pid, environment, cwd, user, umask, privileges and limits.

use std::collections::HashMap;

use berth_conformance::{cap_mask, Bundle, Runtime};
use serde_json::{json, Value};

/// Runs `script` with `sh -c` in a bundle edited by `edit`, and returns its stdout.
fn run_script(script: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut bundle = Bundle::busybox(&["sh", "-c", script]);
    bundle.edit(edit);
    let rt = Runtime::new();
    rt.run_to_completion(&bundle)
}

/// The `Cap*` and `NoNewPrivs` lines of /proc/self/status, as name → value.
fn status_fields(edit: impl FnOnce(&mut Value)) -> HashMap<String, String> {
    run_script("cat /proc/self/status", edit)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn hex(mask: u64) -> String {
    format!("{mask:016x}")
}

#[test]
fn process_is_pid_1() {
    assert_eq!(run_script("echo $$", |_| {}), "1\n");
}

#[test]
fn env_from_config_is_visible() {
    let out = run_script("echo \"$BERTH_GREETING\"; echo \"$PATH\"", |c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("BERTH_GREETING=hello world"));
    });
    assert_eq!(
        out,
        "hello world\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
}

#[test]
fn cwd_is_set() {
    assert_eq!(
        run_script("pwd", |c| c["process"]["cwd"] = json!("/tmp")),
        "/tmp\n"
    );
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let out = run_script("id -u; id -g; id -G", |c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] });
    });
    assert_eq!(out, "1000\n1000\n1000 10 20\n");
}

#[test]
fn umask_is_set() {
    // 0o027 == 23: JSON has no octal.
    assert_eq!(
        run_script("umask", |c| c["process"]["user"]["umask"] = json!(0o027)),
        "0027\n"
    );
}

#[test]
fn no_new_privileges_true_sets_the_flag() {
    let status = status_fields(|c| c["process"]["noNewPrivileges"] = json!(true));
    assert_eq!(status["NoNewPrivs"], "1");
}

#[test]
fn no_new_privileges_false_leaves_the_flag_clear() {
    let status = status_fields(|c| c["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(status["NoNewPrivs"], "0");
}

/// runc's default sets: bounding = effective = permitted, no inheritable. Its ambient list
/// cannot take effect: the kernel raises an ambient cap only if it is both permitted and
/// inheritable (capabilities(7)), and runtimes must not add inheritable caps on their own
/// (CVE-2022-29162), so CapInh and CapAmb stay empty.
#[test]
fn default_capabilities() {
    let status = status_fields(|_| {});
    let default = hex(cap_mask(&[
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
    ]));
    assert_eq!(status["CapBnd"], default);
    assert_eq!(status["CapEff"], default);
    assert_eq!(status["CapPrm"], default);
    assert_eq!(status["CapInh"], hex(0));
    assert_eq!(status["CapAmb"], hex(0));
}

const BOUNDING: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_RAW",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_AUDIT_WRITE",
];
const INHERITABLE: &[&str] = &["CAP_NET_RAW", "CAP_KILL"];
const AMBIENT: &[&str] = &["CAP_NET_RAW"];

fn custom_capabilities(c: &mut Value) {
    c["process"]["capabilities"] = json!({
        "bounding": BOUNDING,
        "effective": BOUNDING,
        "permitted": BOUNDING,
        "inheritable": INHERITABLE,
        "ambient": AMBIENT,
    });
}

#[test]
fn capability_sets_for_root() {
    let status = status_fields(custom_capabilities);
    assert_eq!(status["CapBnd"], hex(cap_mask(BOUNDING)));
    assert_eq!(status["CapEff"], hex(cap_mask(BOUNDING)));
    assert_eq!(status["CapPrm"], hex(cap_mask(BOUNDING)));
    assert_eq!(status["CapInh"], hex(cap_mask(INHERITABLE)));
    assert_eq!(status["CapAmb"], hex(cap_mask(AMBIENT)));
}

/// A non-root process keeps across execve only its ambient caps (capabilities(7)), which
/// is what ambient caps are for.
#[test]
fn capability_sets_for_a_non_root_user() {
    let status = status_fields(|c| {
        custom_capabilities(c);
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    });
    assert_eq!(status["CapBnd"], hex(cap_mask(BOUNDING)));
    assert_eq!(status["CapInh"], hex(cap_mask(INHERITABLE)));
    assert_eq!(status["CapAmb"], hex(cap_mask(AMBIENT)));
    assert_eq!(status["CapPrm"], hex(cap_mask(AMBIENT)));
    assert_eq!(status["CapEff"], hex(cap_mask(AMBIENT)));
}

#[test]
fn rlimits_are_applied() {
    let out = run_script(
        "ulimit -n; ulimit -Hn; grep 'Max core file size' /proc/self/limits",
        |c| {
            c["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048 },
                { "type": "RLIMIT_CORE", "soft": 4096, "hard": 8192 },
            ]);
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["512", "2048"], "{out}");
    let core: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(core[4..6], ["4096", "8192"], "{out}");
}
