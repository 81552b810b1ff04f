//! config-linux.md "Namespaces": a mount namespace joined by path, and no
//! mount namespace of the container's own (it then inherits the runtime's).
//! Both are allowed by the spec and done by runc; Berth refused both ("a
//! container without a new mount namespace is not supported"), which is what
//! these tests catch. Sharing the host's namespace, the container's mounts
//! are the host's to see until `delete`, and none may outlive it.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_conformance::{berth_only, mounts_mentioning, wait_until, Bundle, Runtime};
use serde_json::{json, Value};

/// The namespace link of a process, e.g. "mnt:[4026531841]".
fn ns_link(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// Drop the mount namespace (and the hostname, which needs a UTS one) from the config.
fn without_mount_namespace(config: &mut Value) {
    let namespaces = config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    namespaces.retain(|ns| ns["type"] != "mount");
}

/// A process in a mount namespace of its own (`unshare --mount --fork`), killed on drop.
struct NamespaceHolder {
    unshare: Child,
    pid: String,
}

impl NamespaceHolder {
    fn start() -> NamespaceHolder {
        let unshare = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--fork",
                "sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare");
        let children = format!("/proc/{}/task/{}/children", unshare.id(), unshare.id());
        let mut pid = String::new();
        let found = wait_until(Duration::from_secs(5), || {
            pid = fs::read_to_string(&children)
                .unwrap_or_default()
                .trim()
                .to_string();
            !pid.is_empty() && ns_link(&pid, "mnt") != ns_link("self", "mnt")
        });
        assert!(
            found,
            "unshare's child never showed up in a mount namespace of its own"
        );
        NamespaceHolder { unshare, pid }
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.pid]).status();
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // Killed, its sleep may still hold the rootfs until it is reaped.
        let proc = format!("/proc/{}", self.pid);
        wait_until(Duration::from_secs(10), || !Path::new(&proc).exists());
    }
}

#[test]
fn a_mount_namespace_joined_by_path_is_the_containers() {
    let holder = NamespaceHolder::start();
    let mut bundle = Bundle::busybox(&["readlink", "/proc/self/ns/mnt"]);
    let path = format!("/proc/{}/ns/mnt", holder.pid);
    bundle.edit(|c| {
        without_mount_namespace(c);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "mount", "path": path }));
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        ns_link(&holder.pid, "mnt"),
        "{}",
        out.describe()
    );
    // The rootfs was built in the joined namespace, not the host's.
    assert!(
        mounts_mentioning(bundle.path()).is_empty(),
        "{:?}",
        mounts_mentioning(bundle.path())
    );
    // pivot_root in that namespace made the rootfs its holder's root too (as
    // with runc): the holder goes before the check for what is left.
    drop(holder);
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn without_a_mount_namespace_the_container_shares_the_runtimes() {
    let mut bundle = Bundle::busybox(&["sh", "-c", "readlink /proc/self/ns/mnt; ls /"]);
    bundle.edit(without_mount_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &[]);
    out.ok();
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(ns_link("self", "mnt").as_str()),
        "{}",
        out.describe()
    );
    // Its root is the rootfs all the same.
    assert!(
        out.stdout.contains("proc") && !out.stdout.contains("work"),
        "{}",
        out.describe()
    );
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn the_mounts_of_a_container_sharing_the_hosts_namespace_go_with_delete() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(without_mount_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let rootfs = bundle.rootfs();
    let mounted = mounts_mentioning(&rootfs);
    assert!(
        mounted
            .iter()
            .any(|l| l.contains(&format!(" {}/proc ", rootfs.display()))),
        "the host should see the container's /proc: {mounted:?}"
    );
    rt.start(&id).ok();
    rt.kill(&id, Some("KILL")).ok();
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_failed_create_sharing_the_hosts_namespace_leaves_no_mount() {
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        without_mount_namespace(c);
        // Fails after /proc, /dev and the rest are mounted on the host.
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({ "destination": "/late", "type": "bind", "source": "/nonexistent-berth-source", "options": ["bind"] }));
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).fails();
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn root_propagation_without_a_mount_namespace_is_refused_by_name() {
    if !berth_only("runc applies rootfsPropagation to the host's own / here") {
        return;
    }
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        without_mount_namespace(c);
        c["linux"]["rootfsPropagation"] = json!("rshared");
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).fails_with("rootfsPropagation");
    assert!(Path::new("/proc/self/mountinfo").exists());
    rt.assert_nothing_left(&id, &bundle);
}
