//! config-linux.md "Network Devices" (runtime-spec 1.2): the host devices
//! `linux.netDevices` names are moved into the container's network
//! namespace, renamed as asked, with their permanent global addresses, and
//! set up; nothing moves them back (the kernel destroys a virtual device
//! with its namespace). Each test makes its own veth pair; the kernel has no
//! `dummy` module here. runc 1.1.5 predates the field and ignores it: every
//! check is Berth's only.

use berth_conformance::{berth_only, wait_until, Bundle, Runtime};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const NO_NET_DEVICES: &str = "runc 1.1.5 predates linux.netDevices (runtime-spec 1.2)";

/// A veth pair on the host, deleted on drop if it is still there.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    /// Names short enough for IFNAMSIZ, unique across tests and test runs.
    fn new() -> Veth {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("bnd{}x{n}", std::process::id() % 100_000);
        let veth = Veth {
            name: format!("{base}a"),
            peer: format!("{base}b"),
        };
        ip(&[
            "link", "add", &veth.name, "type", "veth", "peer", "name", &veth.peer,
        ]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for name in [&self.name, &self.peer] {
            if on_host(name) {
                let _ = Command::new("ip").args(["link", "del", name]).status();
            }
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn on_host(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn bundle_moving(devices: serde_json::Value, args: &[&str]) -> Bundle {
    let mut bundle = Bundle::busybox(args);
    bundle.config_mut()["linux"]["netDevices"] = devices;
    bundle
}

#[test]
fn a_device_moves_in_renamed_with_its_addresses_and_up() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let veth = Veth::new();
    ip(&["addr", "add", "10.217.17.1/24", "dev", &veth.name]);
    ip(&[
        "-6",
        "addr",
        "add",
        "fd00:217:17::1/64",
        "dev",
        &veth.name,
        "nodad",
    ]);
    // A link-scoped address is not one the spec keeps.
    ip(&[
        "addr",
        "add",
        "169.254.17.1/16",
        "scope",
        "link",
        "dev",
        &veth.name,
    ]);
    let script = "ls /sys/class/net; cat /sys/class/net/ctr17/flags; ip -o addr show dev ctr17";
    let bundle = bundle_moving(
        json!({ veth.name.as_str(): {"name": "ctr17"} }),
        &["sh", "-c", script],
    );
    let rt = Runtime::new();
    let out = rt.run_to_completion(&bundle);
    let mut lines = out.lines();
    let devices: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.starts_with("0x"))
        .collect();
    assert!(
        devices.contains(&"ctr17"),
        "ctr17 not in the container: {out}"
    );
    assert!(!devices.contains(&veth.name.as_str()), "{out}");
    let flags = out
        .lines()
        .find_map(|l| l.strip_prefix("0x"))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no flags in {out}"));
    assert_eq!(flags & 1, 1, "ctr17 is not up (flags {flags:#x}): {out}");
    assert!(
        out.contains("inet 10.217.17.1/24"),
        "IPv4 address lost: {out}"
    );
    assert!(
        out.contains("inet6 fd00:217:17::1/64"),
        "IPv6 address lost: {out}"
    );
    assert!(
        !out.contains("169.254.17.1"),
        "a link-scoped address was kept: {out}"
    );
    // The namespace died with the container, and the veth pair with it:
    // nothing brought the device back to the host.
    assert!(
        wait_until(Duration::from_secs(5), || !on_host(&veth.name)
            && !on_host(&veth.peer)),
        "the veth pair outlived the container's network namespace"
    );
}

#[test]
fn a_created_container_holds_the_device_until_it_is_deleted() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let veth = Veth::new();
    let bundle = bundle_moving(json!({ veth.name.as_str(): {} }), &["sleep", "1000"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    assert!(!on_host(&veth.name), "{} is still on the host", veth.name);
    assert!(on_host(&veth.peer), "the peer should stay on the host");
    let inside = rt.cmd(&[
        "exec",
        &id,
        "cat",
        &format!("/sys/class/net/{}/ifindex", veth.name),
    ]);
    inside.ok();
    rt.cmd(&["delete", "--force", &id]).ok();
    rt.assert_nothing_left(&id, &bundle);
    assert!(
        wait_until(Duration::from_secs(5), || !on_host(&veth.peer)),
        "the veth pair outlived the container's network namespace"
    );
}

#[test]
fn a_missing_host_device_fails_create_by_name_and_leaves_nothing() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let missing = format!("bnd{}none", std::process::id() % 100_000);
    let bundle = bundle_moving(json!({ missing.as_str(): {} }), &["true"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).fails_with(&missing);
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_name_taken_inside_fails_and_the_device_stays_on_the_host() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let veth = Veth::new();
    ip(&["addr", "add", "10.217.18.1/24", "dev", &veth.name]);
    // Every new network namespace has a "lo".
    let bundle = bundle_moving(json!({ veth.name.as_str(): {"name": "lo"} }), &["true"]);
    let rt = Runtime::new();
    let id = rt.new_id();
    let err = rt.create(&id, &bundle, &[]).fails();
    assert!(
        err.contains(&veth.name) && err.contains("already in the container's network namespace"),
        "{err}"
    );
    rt.assert_nothing_left(&id, &bundle);
    assert!(on_host(&veth.name), "the device left the host");
    let addr = Command::new("ip")
        .args(["-o", "addr", "show", "dev", &veth.name])
        .output()
        .expect("run ip");
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains("10.217.18.1/24"),
        "the device lost its address on the host"
    );
}

#[test]
fn bad_names_and_a_shared_network_namespace_are_refused_before_anything_exists() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let veth = Veth::new();
    let rt = Runtime::new();
    let refused =
        |devices: serde_json::Value, edit: &dyn Fn(&mut serde_json::Value), needle: &str| {
            let mut bundle = bundle_moving(devices, &["true"]);
            edit(bundle.config_mut());
            let id = rt.new_id();
            rt.create(&id, &bundle, &[]).fails_with(needle);
            rt.assert_nothing_left(&id, &bundle);
            assert!(on_host(&veth.name), "{needle}: the device left the host");
        };
    let keep = |_: &mut serde_json::Value| {};
    let too_long = "abcdefghijklmnop";
    refused(
        json!({ veth.name.as_str(): {"name": too_long} }),
        &keep,
        too_long,
    );
    refused(json!({ veth.name.as_str(): {"name": "a/b"} }), &keep, "a/b");
    refused(json!({ veth.name.as_str(): {"name": "x%s"} }), &keep, "x%s");
    let host_netns = |config: &mut serde_json::Value| {
        let namespaces = config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces");
        namespaces.retain(|ns| ns["type"] != "network");
    };
    refused(
        json!({ veth.name.as_str(): {} }),
        &host_netns,
        "network namespace",
    );
}

#[test]
fn a_name_template_lets_the_kernel_number_the_devices() {
    if !berth_only(NO_NET_DEVICES) {
        return;
    }
    let (first, second) = (Veth::new(), Veth::new());
    ip(&["addr", "add", "10.217.19.1/24", "dev", &first.name]);
    let devices = json!({
        first.name.as_str(): {"name": "eth%d"},
        second.name.as_str(): {"name": "eth%d"},
    });
    let script = "ls /sys/class/net; ip -o addr show";
    let bundle = bundle_moving(devices, &["sh", "-c", script]);
    let out = Runtime::new().run_to_completion(&bundle);
    let devices: Vec<&str> = out.lines().take_while(|l| !l.contains(':')).collect();
    assert_eq!(devices, ["eth0", "eth1", "lo"], "{out}");
    assert!(
        out.contains("inet 10.217.19.1/24"),
        "the address was lost: {out}"
    );
}
