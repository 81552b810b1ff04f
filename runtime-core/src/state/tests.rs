//! Unit tests of state/mod.rs: ids, the record, the state dir and its lock.

use super::*;
use std::time::Duration;

#[test]
fn ids_follow_runc_rules() {
    for good in ["a", "web-1", "x_y.z+1", "A9"] {
        assert!(validate_id(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "a b",
        "a\0b",
        &"x".repeat(256),
    ] {
        assert!(
            matches!(validate_id(bad), Err(StateError::InvalidId(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn stat_parsing_survives_odd_command_names() {
    let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
    assert_eq!(parse_stat(line), Some(('S', 987654)));
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn rfc3339_matches_go() {
    let t = UNIX_EPOCH + Duration::new(1_795_377_627, 120_000_000);
    assert_eq!(rfc3339_nanos(t), "2026-11-22T20:00:27.12Z");
    assert_eq!(
        rfc3339_nanos(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00Z"
    );
}

fn scratch_root(name: &str) -> StateRoot {
    let path = std::env::temp_dir().join(format!("berth-state-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&path);
    StateRoot::open(&path).unwrap()
}

fn record(id: &str) -> Record {
    Record {
        id: id.into(),
        oci_version: "1.2.1".into(),
        pid: std::process::id() as i32,
        pid_start_time: process_stat(std::process::id() as i32).unwrap().1,
        pidfs_inode: None,
        bundle: "/b".into(),
        rootfs: "/b/rootfs".into(),
        created: "2026-11-22T20:00:27Z".into(),
        annotations: HashMap::new(),
        cgroup: Cgroup::default(),
        hooks: None,
        no_new_keyring: false,
        paused: false,
        host_rootfs_mount: None,
        owner_uid: Some(0),
        memory_check_before_update: false,
    }
}

#[test]
fn user_names_come_from_passwd_else_the_number() {
    let passwd = "root:x:0:0:root:/root:/bin/sh\nbad line\nweb:x:1000:1000::/:/bin/false\n";
    assert_eq!(user_name(passwd, 0), "root");
    assert_eq!(user_name(passwd, 1000), "web");
    assert_eq!(user_name(passwd, 7), "7");
    assert_eq!(user_name("", 0), "0");
}

#[test]
fn claim_is_exclusive_and_state_round_trips() {
    let root = scratch_root("claim");
    let dir = root.claim("c1").unwrap();
    assert!(matches!(root.claim("c1"), Err(StateError::Exists)));
    assert_eq!(dir.read().unwrap(), None);
    dir.write(&record("c1")).unwrap();
    assert_eq!(dir.read().unwrap(), Some(record("c1")));
    let listed: Vec<String> = crate::state::list::list(root.path())
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec!["c1"]);
    dir.remove().unwrap();
    assert!(matches!(
        root.open_container("c1"),
        Err(StateError::NotExist)
    ));
    fs::remove_dir_all(root.path()).unwrap();
}

#[test]
fn status_is_derived_from_the_process() {
    let root = scratch_root("status");
    let dir = root.claim("c2").unwrap();
    let mut rec = record("c2");
    assert_eq!(derive_status(&rec, dir.path()), Status::Running);
    fs::write(dir.path().join(crate::state::barrier::FIFO_NAME), "").unwrap();
    assert_eq!(derive_status(&rec, dir.path()), Status::Created);
    rec.pid_start_time += 1;
    assert_eq!(
        derive_status(&rec, dir.path()),
        Status::Stopped,
        "a recycled pid must read as stopped"
    );
    fs::remove_dir_all(root.path()).unwrap();
}

#[test]
fn a_waiter_on_a_deleted_container_sees_not_exist() {
    let root = scratch_root("deleted");
    let dir = root.claim("c3").unwrap();
    let mut other = root.open_container("c3").unwrap();
    dir.remove().unwrap();
    drop(dir);
    assert!(matches!(other.lock(), Err(StateError::NotExist)));
    fs::remove_dir_all(root.path()).unwrap();
}
