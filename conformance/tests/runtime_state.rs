//! runtime.md "State" and "Query State": the JSON `state` prints, as go-runc decodes it.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use berth_conformance::{
    berth_only, is_rfc3339, pid_alive, skip, top_level_keys, wait_until, Bundle, Runtime,
};
use serde_json::{json, Value};

#[test]
fn state_has_runc_fields_in_runc_order() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let out = rt.cmd(&["state", &id]);
    out.ok();
    // go-runc decodes stdout+stderr together, so a successful state writes nothing else.
    assert_eq!(out.stderr, "", "state wrote to stderr");
    assert_eq!(
        top_level_keys(&out.stdout),
        [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner"
        ],
        "{}",
        out.stdout
    );
    let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(state["id"], id.as_str());
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{state}"
    );
    assert!(state["owner"].is_string(), "{state}");
}

#[test]
fn state_lists_annotations_between_created_and_owner() {
    let mut bundle = Bundle::sleeper();
    bundle.config_mut()["annotations"] = json!({ "org.example.key": "value" });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let out = rt.cmd(&["state", &id]);
    let keys = top_level_keys(out.ok().stdout.as_str());
    assert_eq!(
        keys[6..],
        ["created", "annotations", "owner"],
        "{}",
        out.stdout
    );
    let state: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(state["annotations"], json!({ "org.example.key": "value" }));
}

#[test]
fn state_created_is_rfc3339_and_stable() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();

    let created = rt.state(&id)["created"]
        .as_str()
        .expect("created is a string")
        .to_owned();
    assert!(is_rfc3339(&created), "created {created:?} is not RFC 3339");
    rt.start(&id).ok();
    assert_eq!(
        rt.state(&id)["created"],
        created.as_str(),
        "created changed on start"
    );
}

#[test]
fn state_bundle_and_rootfs_are_absolute_even_for_a_relative_bundle() {
    let bundle = Bundle::sleeper();
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let parent = bundle.path().parent().unwrap();
    let relative = bundle.path().file_name().unwrap().to_str().unwrap();
    rt.cmd_in(parent, &["create", "--bundle", relative, &id])
        .ok();

    let state = rt.state(&id);
    assert_eq!(state["bundle"], bundle.path().to_str().unwrap(), "{state}");
    assert_eq!(
        state["rootfs"],
        bundle.rootfs().to_str().unwrap(),
        "{state}"
    );
}

#[test]
fn state_pid_is_the_init_host_pid_and_zero_once_stopped() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // `start` returns once the init may go on, not once it has exec'd (runc's too).
    let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || comm() == "sh\n"),
        "state pid {pid} is not the container's init: {:?}",
        comm()
    );

    rt.kill(&id, Some("KILL")).ok();
    let state = rt.wait_status(&id, "stopped");
    assert_eq!(state["pid"], 0, "{state}");
}

/// A pidfd of `pid`.
fn pidfd_of(pid: i64) -> OwnedFd {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        fd >= 0,
        "pidfd_open {pid}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just gave us this fd and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// The pidfs inode of `pid` (Linux 6.9 and later), or None where pidfds
/// are anonymous inodes.
fn pidfs_inode(pid: i64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let fd = pidfd_of(pid);
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills the buffer we own, on a descriptor we own.
    assert_eq!(unsafe { libc::fstatfs(fd.as_raw_fd(), fs.as_mut_ptr()) }, 0);
    // SAFETY: fstatfs returned 0, so it filled the buffer.
    if unsafe { fs.assume_init() }.f_type != 0x5049_4446 {
        return None;
    }
    use std::os::unix::fs::MetadataExt;
    Some(fs::File::from(fd).metadata().unwrap().ino())
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks.
fn start_time(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A process of the test's that is not the container's, killed when dropped.
struct Impostor(Child);

impl Impostor {
    fn start() -> Impostor {
        Impostor(Command::new("sleep").arg("600").spawn().unwrap())
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Berth's state record of `id`, and its path.
fn record_of(rt: &Runtime, id: &str) -> (PathBuf, Value) {
    let path = rt.root().join(id).join("state.json");
    let text = fs::read_to_string(&path).unwrap();
    (path, serde_json::from_str(&text).unwrap())
}

/// `(status, pid)` as `state` and as `list --format json` say them.
fn status_both_ways(rt: &Runtime, id: &str) -> [(String, i64); 2] {
    let state = rt.state(id);
    let listed: Value = serde_json::from_str(&rt.cmd(&["list", "--format", "json"]).ok().stdout)
        .expect("list prints JSON");
    let entry = listed
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id))
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
        .clone();
    [state, entry].map(|v| {
        (
            v["status"].as_str().unwrap().to_owned(),
            v["pid"].as_i64().unwrap(),
        )
    })
}

#[test]
fn a_recycled_pid_is_stopped_by_its_pidfs_inode_and_never_signalled() {
    if !berth_only("edits Berth's state record") {
        return;
    }
    if pidfs_inode(std::process::id().into()).is_none() {
        skip("pidfds are not on pidfs here (Linux before 6.9)");
        return;
    }
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let (path, original) = record_of(&rt, &id);
    let init = original["pid"].as_i64().unwrap();
    assert_eq!(
        original["pidfs_inode"].as_u64(),
        pidfs_inode(init),
        "create records the init's pidfs inode: {original}"
    );

    // The pid now names another live process, with the start time to
    // match: only the inode tells it is not the container's init.
    let mut impostor = Impostor::start();
    let mut recycled = original.clone();
    recycled["pid"] = json!(impostor.0.id());
    recycled["pid_start_time"] = json!(start_time(impostor.0.id()));
    fs::write(&path, recycled.to_string()).unwrap();
    let stopped = ("stopped".to_owned(), 0);
    assert_eq!(status_both_ways(&rt, &id), [stopped.clone(), stopped]);
    rt.cmd(&["kill", &id, "KILL"]).fails();
    assert!(
        impostor.alive(),
        "kill signalled a process not the container's"
    );

    fs::write(&path, original.to_string()).unwrap();
    let created = ("created".to_owned(), init);
    assert_eq!(status_both_ways(&rt, &id), [created.clone(), created]);
}

#[test]
fn a_record_without_a_pidfs_inode_still_states_and_lists_right() {
    if !berth_only("edits Berth's state record") {
        return;
    }
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    // A record written before Berth recorded the inode (or on Linux before 6.9).
    let (path, mut old) = record_of(&rt, &id);
    old.as_object_mut().unwrap().remove("pidfs_inode");
    fs::write(&path, old.to_string()).unwrap();
    let init = old["pid"].as_i64().unwrap();
    let created = ("created".to_owned(), init);
    assert_eq!(status_both_ways(&rt, &id), [created.clone(), created]);

    // Its pid recycled: the start time tells, as it always did.
    let mut impostor = Impostor::start();
    let mut recycled = old.clone();
    recycled["pid"] = json!(impostor.0.id());
    fs::write(&path, recycled.to_string()).unwrap();
    let stopped = ("stopped".to_owned(), 0);
    assert_eq!(
        status_both_ways(&rt, &id),
        [stopped.clone(), stopped.clone()]
    );
    assert!(impostor.alive());

    // Its init exited.
    fs::write(&path, old.to_string()).unwrap();
    rt.kill(&id, Some("KILL")).ok();
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(init)));
    assert_eq!(status_both_ways(&rt, &id), [stopped.clone(), stopped]);
}
