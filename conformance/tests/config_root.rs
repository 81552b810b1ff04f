//! config.md "Root" and config-linux.md "Namespaces": which filesystem and namespaces the
//! container gets.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_conformance::{host_namespace, unique_name, wait_until, Bundle, Runtime};
use serde_json::json;

const NAMESPACES: [&str; 5] = ["pid", "mnt", "uts", "ipc", "net"];

/// A bundle that prints its rootfs marker, then whether the host's copy of the bundle
/// (which exists outside the rootfs only) is visible.
fn marker_bundle() -> (Bundle, String) {
    let mut bundle = Bundle::busybox(&[]);
    let script = format!(
        "cat /marker; echo; test -e {} && echo host-visible || echo confined",
        bundle.path().display()
    );
    bundle.set_args(&["sh", "-c", &script]);
    let marker = unique_name();
    fs::write(bundle.rootfs().join("marker"), &marker).unwrap();
    (bundle, marker)
}

#[test]
fn rootfs_is_the_bundle_rootfs() {
    let (bundle, marker) = marker_bundle();
    let rt = Runtime::new();
    assert_eq!(
        rt.run_to_completion(&bundle),
        format!("{marker}\nconfined\n")
    );
}

#[test]
fn readonly_root_rejects_writes_but_a_tmpfs_on_it_accepts_them() {
    let mut bundle = Bundle::busybox(&[
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo root-writable || echo root-readonly; \
         touch /tmp/y && echo tmp-writable",
    ]);
    bundle.config_mut()["root"]["readonly"] = json!(true);
    bundle.add_mount(json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs" }));
    let rt = Runtime::new();
    assert_eq!(
        rt.run_to_completion(&bundle),
        "root-readonly\ntmp-writable\n"
    );
    assert!(!bundle.rootfs().join("x").exists());
}

#[test]
fn writable_root_accepts_writes() {
    let mut bundle = Bundle::busybox(&["touch", "/written"]);
    bundle.config_mut()["root"]["readonly"] = json!(false);
    let rt = Runtime::new();
    rt.run_to_completion(&bundle);
    assert!(bundle.rootfs().join("written").exists());
}

/// Namespaces in the config are new; config-linux.md "Namespaces": a type not listed
/// MUST be inherited from the runtime.
#[test]
fn namespaces_listed_are_new_and_others_are_inherited() {
    let inherited: Vec<&str> = ["cgroup", "user"]
        .into_iter()
        .filter(|kind| fs::metadata(format!("/proc/self/ns/{kind}")).is_ok())
        .collect();
    let script: String = NAMESPACES
        .iter()
        .chain(&inherited)
        .map(|kind| format!("readlink /proc/self/ns/{kind}; "))
        .collect();
    let bundle = Bundle::busybox(&["sh", "-c", &script]);
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    let links: Vec<&str> = out.lines().collect();
    for (kind, link) in NAMESPACES.iter().zip(&links) {
        assert_ne!(
            *link,
            host_namespace(kind),
            "{kind} namespace is the host's"
        );
    }
    for (kind, link) in inherited.iter().zip(&links[NAMESPACES.len()..]) {
        assert_eq!(
            *link,
            host_namespace(kind),
            "{kind} namespace was not inherited"
        );
    }
}

/// A network namespace held by a plain child of the test, killed when the test ends.
struct NetnsHolder(Child);

impl NetnsHolder {
    fn spawn() -> NetnsHolder {
        let child = Command::new("unshare")
            .args(["--net", "/bin/busybox", "sleep", "100"])
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare (util-linux)");
        NetnsHolder(child)
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn joins_a_namespace_by_path() {
    let holder = NetnsHolder::spawn();
    let host = host_namespace("net");
    let mut joined = String::new();
    // unshare(1) switches namespace after it starts: wait until its link changes.
    let ready = wait_until(Duration::from_secs(10), || {
        joined = fs::read_link(holder.path())
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        !joined.is_empty() && joined != host
    });
    assert!(ready, "unshare --net never entered a new network namespace");

    let mut bundle = Bundle::busybox(&["readlink", "/proc/self/ns/net"]);
    bundle.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(holder.path());
            }
        }
    });
    let rt = Runtime::new();
    assert_eq!(rt.run_to_completion(&bundle), format!("{joined}\n"));
}

#[test]
fn no_pivot_still_confines_to_the_rootfs() {
    let (bundle, marker) = marker_bundle();
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.run(&id, &bundle, &["--no-pivot"]);
    assert_eq!(out.ok().stdout, format!("{marker}\nconfined\n"));
    rt.assert_nothing_left(&id, &bundle);
}
