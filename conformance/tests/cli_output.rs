//! runc's command-line contract as go-runc and containerd read it: `list`, `spec`,
//! `features`, `--version`, `--log --log-format json`, and global flag spellings.

use std::fs;
use std::path::Path;

use berth_conformance::{
    berth_only, is_rfc3339, runc_default_spec, skip, top_level_keys, Bundle, HostDir, Runtime, RUNC,
};
use serde_json::Value;

/// Byte offsets at which each whitespace-separated field of `line` starts.
fn field_starts(line: &str) -> Vec<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' '))
        .collect()
}

#[test]
fn list_prints_an_aligned_table() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let state = rt.state(&id);

    let out = rt.cmd(&["list"]);
    let lines: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    let pid = state["pid"].to_string();
    let bundle_path = bundle.path().to_str().unwrap();
    let created = state["created"].as_str().unwrap();
    assert_eq!(
        row,
        [id.as_str(), &pid, "created", bundle_path, created, "root"]
    );
    assert_eq!(
        field_starts(lines[0]),
        field_starts(lines[1]),
        "columns misaligned:\n{}",
        out.stdout
    );
}

#[test]
fn list_with_no_containers_prints_only_the_header() {
    let rt = Runtime::new();
    let out = rt.cmd(&["list"]);
    let header: Vec<&str> = out.ok().stdout.split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
}

#[test]
fn list_quiet_prints_only_ids() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    assert_eq!(rt.cmd(&["list", "-q"]).ok().stdout, format!("{id}\n"));
    assert_eq!(rt.cmd(&["list", "--quiet"]).ok().stdout, format!("{id}\n"));
}

#[test]
fn list_format_json_is_an_array_of_states() {
    let mut bundle = Bundle::sleeper();
    bundle.config_mut()["annotations"] = serde_json::json!({ "org.example.key": "value" });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let state = rt.state(&id);

    for flags in [
        &["list", "--format", "json"][..],
        &["list", "--format=json"][..],
    ] {
        let out = rt.cmd(flags);
        let listed: Value = serde_json::from_str(&out.ok().stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()));
        let entry = &listed.as_array().expect("an array")[0];
        for key in [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "annotations",
        ] {
            assert_eq!(
                entry[key], state[key],
                "{key} differs between list and state"
            );
        }
        // runc fills owner from the state dir's uid in list, while state leaves it empty.
        assert_eq!(entry["owner"], "root", "{entry}");
    }
}

#[test]
fn list_format_json_with_no_containers_is_null() {
    let rt = Runtime::new();
    let out = rt.cmd(&["list", "--format", "json"]);
    assert_eq!(out.ok().stdout.trim(), "null");
}

#[test]
fn spec_writes_runc_default_config() {
    if !Path::new(RUNC).exists() {
        skip("runc is not installed: nothing to compare `spec` with");
        return;
    }
    let rt = Runtime::new();
    let ours = HostDir::new();
    let theirs = HostDir::new();
    let out = rt.cmd_raw_in(&ours, &["spec"]);
    assert_eq!(out.ok().combined(), "", "spec printed something");
    let runc = std::process::Command::new(RUNC)
        .arg("spec")
        .current_dir(&theirs)
        .status()
        .unwrap();
    assert!(runc.success());

    let read = |dir: &Path| -> Value {
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
    };
    assert_eq!(same_version(read(&ours)), same_version(read(&theirs)));
    assert_eq!(same_version(read(&ours)), same_version(runc_default_spec()));
}

/// Each runtime writes the spec version it implements (runc 1.1 says 1.0.2-dev);
/// all that must agree is the major version, 1 (config.md, "ociVersion").
fn same_version(mut config: Value) -> Value {
    let version = config["ociVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        version.starts_with("1."),
        "ociVersion {version:?} is not 1.x"
    );
    config["ociVersion"] = Value::String("1.x".into());
    config
}

#[test]
fn spec_bundle_flag_writes_into_that_dir() {
    let rt = Runtime::new();
    let dir = HostDir::new();
    rt.cmd_raw(&["spec", "--bundle", dir.to_str().unwrap()])
        .ok();
    let written: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(same_version(written), same_version(runc_default_spec()));
}

#[test]
fn spec_refuses_to_overwrite_config_json() {
    let rt = Runtime::new();
    let dir = HostDir::new();
    fs::write(dir.join("config.json"), "keep me").unwrap();
    let out = rt.cmd_raw_in(&dir, &["spec"]);
    out.fails_with("File config.json exists. Remove it first");
    assert_eq!(out.code, 1);
    assert_eq!(
        fs::read_to_string(dir.join("config.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn features_is_json_with_oci_version_range() {
    let rt = Runtime::new();
    let out = rt.cmd_raw(&["features"]);
    let features: Value = serde_json::from_str(&out.ok().stdout)
        .unwrap_or_else(|e| panic!("features is not JSON on stdout ({e}): {}", out.describe()));
    for key in ["ociVersionMin", "ociVersionMax"] {
        let version = features[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing: {features}"));
        assert!(version.starts_with("1."), "{key} = {version}");
    }
}

/// features.md: the newest spec version Berth implements (1.3.0), and
/// features-linux.md "cgroup": the rdma controller, whose limits Berth applies.
#[test]
fn features_report_spec_1_3_and_rdma_berth_only() {
    if !berth_only("runc 1.1.5 implements spec 1.0.2 and has no features command") {
        return;
    }
    let out = Runtime::new().cmd_raw(&["features"]);
    let features: Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(features["ociVersionMax"], "1.3.0", "{features}");
    assert_eq!(features["linux"]["cgroup"]["rdma"], true, "{features}");
}

/// `--help` names the state root Berth uses when `--root` is not given.
#[test]
fn help_names_the_default_state_root_berth_only() {
    if !berth_only("runc's default root is /run/runc") {
        return;
    }
    let out = Runtime::new().cmd_raw(&["--help"]);
    let text = &out.ok().stdout;
    assert!(text.contains("(default: \"/run/berth\")"), "{text}");
    assert!(!text.contains("/run/runc"), "{text}");
}

#[test]
fn version_output_parses_like_go_runc() {
    let rt = Runtime::new();
    let out = rt.cmd_raw(&["--version"]);
    let lines: Vec<&str> = out.ok().stdout.lines().collect();
    assert!(
        lines[0].starts_with("runc version "),
        "go-runc needs `runc version X`: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("spec: ")),
        "no `spec: ` line: {lines:?}"
    );
}

#[test]
fn log_json_records_the_error_of_a_failing_command() {
    let rt = Runtime::new();
    let log = rt.root().with_extension("log");
    let earlier = r#"{"level":"info","msg":"earlier","time":"2020-01-01T00:00:00Z"}"#;
    fs::write(&log, format!("{earlier}\n")).unwrap();
    let log_arg = log.to_str().unwrap();
    rt.cmd(&[
        "--log",
        log_arg,
        "--log-format",
        "json",
        "state",
        "no-such-container",
    ])
    .fails();

    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with(earlier),
        "the log was truncated, not appended to:\n{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(top_level_keys(last), ["level", "msg", "time"], "{last}");
    let record: Value = serde_json::from_str(last).unwrap();
    assert_eq!(record["level"], "error");
    assert!(
        record["msg"]
            .as_str()
            .unwrap()
            .contains("container does not exist"),
        "{record}"
    );
    assert!(is_rfc3339(record["time"].as_str().unwrap()), "{record}");
}

#[test]
fn global_root_flag_spellings() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let root = rt.root();
    let root = root.to_str().unwrap();

    let joined = format!("--root={root}");
    assert_eq!(
        rt.cmd_raw(&[&joined, "list", "-q"]).ok().stdout,
        format!("{id}\n")
    );
    // urfave/cli accepts single-dash long flags; containerd passes `-no-subreaper` that way.
    assert_eq!(
        rt.cmd_raw(&["-root", root, "list", "-q"]).ok().stdout,
        format!("{id}\n")
    );
}
