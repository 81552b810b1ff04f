//! Loading config.json and process.json: syntax and type errors, names,
//! and the execCPUAffinity lists oci-spec alone would misread.
use super::testdir::TestDir;
use super::*;

const MINIMAL: &str = r#"{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs"},
  "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "foo"}]}
}"#;

fn bundle_with(config: Option<&str>) -> TestDir {
    let dir = TestDir::new("load");
    std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir rootfs");
    if let Some(text) = config {
        std::fs::write(dir.path().join("config.json"), text).expect("write config");
    }
    dir
}

#[test]
fn load_reads_a_valid_bundle() {
    let dir = bundle_with(Some(&MINIMAL.replace("\"foo\"", "\"uts\"")));
    let spec = load(dir.path()).expect("valid bundle");
    assert_eq!(spec.version(), "1.0.2");
}

#[test]
fn load_missing_config_names_the_path() {
    let dir = bundle_with(None);
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, SpecError::ConfigNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("config.json not found"), "{msg}");
    assert!(
        msg.contains(&dir.path().join("config.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("no such file or directory"), "{msg}");
}

#[test]
fn load_syntax_error_gives_line_and_column() {
    let dir = bundle_with(Some("{\n  \"ociVersion\": \"1.0.2\",\n  \"root\": {,\n}"));
    match load(dir.path()).unwrap_err() {
        SpecError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 12)),
        other => panic!("expected Syntax, got {other}"),
    }
}

#[test]
fn load_unknown_namespace_names_the_field() {
    let dir = bundle_with(Some(MINIMAL));
    let err = load(dir.path()).unwrap_err();
    let msg = err.to_string();
    match err {
        SpecError::Field { field, line, .. } => {
            assert_eq!(field, "linux.namespaces[2].type");
            assert_eq!(line, 5);
        }
        other => panic!("expected Field, got {other}"),
    }
    assert!(msg.contains("unknown variant `foo`"), "{msg}");
    assert!(msg.contains("line 5 column"), "{msg}");
}

#[test]
fn load_type_error_names_the_field() {
    let text = MINIMAL
        .replace("\"foo\"", "\"uts\"")
        .replace("\"uid\": 0", "\"uid\": \"root\"");
    let dir = bundle_with(Some(&text));
    match load(dir.path()).unwrap_err() {
        SpecError::Field { field, line, .. } => {
            assert_eq!(field, "process.user.uid");
            assert_eq!(line, 4);
        }
        other => panic!("expected Field, got {other}"),
    }
}

#[test]
fn load_runs_validation() {
    let text = MINIMAL
        .replace("\"foo\"", "\"uts\"")
        .replace("\"cwd\": \"/\"", "\"cwd\": \"tmp\"");
    let dir = bundle_with(Some(&text));
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        SpecError::RelativeCwd { .. }
    ));
}

#[test]
fn a_top_level_error_says_top_level() {
    // Found by the config fuzz target: the field used to read ".".
    let err = parse(
        r#"{"root": {"path": "a"}, "root": {"path": "b"}}"#,
        Path::new("config.json"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse config.json: top level: duplicate field `root` at line 1 column 30"
    );
}

#[test]
fn a_document_that_is_not_an_object_is_refused() {
    // Found by the config fuzz target: `[]` read as a spec with nothing set.
    let err = parse("[]", Path::new("config.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse config.json: the top level must be a JSON object, not an array"
    );
    let err = parse(r#"["1.0.2", {"path": "rootfs"}]"#, Path::new("config.json")).unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::NotAnObject {
                kind: "an array",
                ..
            }
        ),
        "{err}"
    );
    let err = parse("null", Path::new("config.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "parse config.json: the top level must be a JSON object, not null"
    );
}

#[test]
fn parse_rejects_unknown_capability_by_name() {
    let text = r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL", "CAP_FLY"]}}}"#;
    let err = parse(text, Path::new("config.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown capability \"CAP_FLY\" in process.capabilities.bounding[1]"
    );
}

#[test]
fn parse_rejects_capability_without_prefix() {
    // oci-spec would accept this; the spec's values are capabilities(7) names.
    let text = r#"{"process": {"capabilities": {"ambient": ["sys_admin"]}}}"#;
    let err = parse(text, Path::new("config.json")).unwrap_err();
    assert!(
        matches!(err, SpecError::UnknownCapability { ref name, .. } if name == "sys_admin"),
        "{err}"
    );
}

#[test]
fn parse_rejects_unknown_rlimit_by_name() {
    let text = r#"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
        {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]}}"#;
    let err = parse(text, Path::new("config.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown rlimit type \"RLIMIT_FOO\" in process.rlimits[1].type"
    );
}

#[test]
fn empty_exec_cpu_affinity_lists_mean_none() {
    // The spec: "if omitted or empty"; oci-spec alone refuses "".
    let text = r#"{"ociVersion": "1.2.1", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"initial": "", "final": "1"}}}"#;
    let spec = parse(text, Path::new("config.json")).expect("an empty initial");
    let affinity = spec.process().as_ref().unwrap().exec_cpu_affinity().clone();
    assert_eq!(affinity.unwrap().cpu_affinity_final().as_deref(), Some("1"));
    // Another error still has its position.
    let err = parse(
        &text.replace("\"cwd\": \"/\"", "\"cwd\": 5"),
        Path::new("config.json"),
    )
    .unwrap_err();
    assert!(
        matches!(err, SpecError::Field { ref field, line: 1, .. } if field == "process.cwd"),
        "{err}"
    );
}

#[test]
fn a_bad_exec_cpu_affinity_list_is_named_before_oci_spec_reads_it() {
    let text = r#"{"process": {"cwd": "/", "execCPUAffinity": {"final": "1,x"}}}"#;
    let err = parse(text, Path::new("config.json")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "process.execCPUAffinity.final \"1,x\": \"x\" is not a CPU number"
    );
}

#[test]
fn parse_process_checks_exec_cpu_affinity_as_config_json_does() {
    let path = Path::new("process.json");
    let process = parse_process(
        r#"{"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"initial": "0", "final": ""}}"#,
        path,
    )
    .expect("an empty final");
    let affinity = process.exec_cpu_affinity().clone().unwrap();
    assert_eq!(
        (affinity.initial().as_deref(), affinity.cpu_affinity_final()),
        (Some("0"), &None)
    );
    let err = parse_process(
        r#"{"cwd": "/", "execCPUAffinity": {"initial": "2-1"}}"#,
        path,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SpecError::ExecCpuAffinity {
                field: "initial",
                ..
            }
        ),
        "{err}"
    );
    let err = parse_process(r#"{"cwd": 5}"#, path).unwrap_err();
    assert!(
        matches!(err, SpecError::Field { ref field, .. } if field == "cwd"),
        "{err}"
    );
}

#[test]
fn parse_process_checks_capability_names_as_config_json_does() {
    let path = Path::new("process.json");
    let with = |name: &str| {
        parse_process(
            &format!(
                r#"{{"cwd": "/", "args": ["sh"], "user": {{"uid": 0, "gid": 0}},
                    "capabilities": {{"bounding": ["{name}"]}}}}"#
            ),
            path,
        )
    };
    assert!(with("CAP_SYS_ADMIN").is_ok());
    for name in ["SYS_ADMIN", "cap_sys_admin", "CAP_BOGUS"] {
        let err = with(name).unwrap_err();
        assert!(
            matches!(err, SpecError::UnknownCapability { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn rootfs_path_joins_relative_and_keeps_absolute() {
    let mut spec = default_spec(false);
    let bundle = Path::new("/run/bundle");
    assert_eq!(
        rootfs_path(&spec, bundle),
        PathBuf::from("/run/bundle/rootfs")
    );
    if let Some(root) = spec.root_mut() {
        root.set_path(PathBuf::from("/srv/root/../root"));
    }
    assert_eq!(
        rootfs_path(&spec, bundle),
        PathBuf::from("/srv/root/../root")
    );
}

/// config.md "Mounts" (spec 1.3): a relative destination is relative to "/".
#[test]
fn load_anchors_relative_mount_destinations_at_the_root() {
    let config = MINIMAL.replace("\"foo\"", "\"uts\"").replace(
        "\"linux\"",
        r#""mounts": [{"destination": "run/x", "type": "tmpfs", "source": "tmpfs"},
                     {"destination": "/abs", "type": "tmpfs", "source": "tmpfs"}],
           "linux""#,
    );
    let dir = bundle_with(Some(&config));
    let spec = load(dir.path()).expect("a relative destination is valid");
    let destinations: Vec<&Path> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().as_path())
        .collect();
    assert_eq!(destinations, [Path::new("/run/x"), Path::new("/abs")]);
}

/// config-linux.md "PIDs" (spec 1.3): `limit` is optional and 0 is a limit.
#[test]
fn load_keeps_a_pids_limit_of_zero_and_drops_pids_without_limit() {
    let limit = |pids: &str| {
        let config = MINIMAL.replace("\"foo\"", "\"uts\"").replace(
            "\"namespaces\"",
            &format!("\"resources\": {{\"pids\": {pids}}}, \"namespaces\""),
        );
        let dir = bundle_with(Some(&config));
        let spec = load(dir.path()).expect("valid pids");
        spec.linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.pids().as_ref())
            .map(|p| p.limit())
    };
    assert_eq!(limit(r#"{"limit": 0}"#), Some(0));
    assert_eq!(limit(r#"{"limit": -1}"#), Some(-1));
    assert_eq!(limit("{}"), None);
}
