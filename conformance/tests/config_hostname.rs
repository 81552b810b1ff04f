//! config.md "Hostname" and "Domainname".

use berth_conformance::{berth_only, Bundle, Runtime};
use serde_json::json;

#[test]
fn hostname_is_set_in_the_container_only() {
    let host_before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut bundle = Bundle::busybox(&["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"]);
    bundle.config_mut()["hostname"] = json!("berth-test-host");
    let rt = Runtime::new();
    assert_eq!(
        rt.run_to_completion(&bundle),
        "berth-test-host\nberth-test-host\n"
    );
    let host_after = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        host_before, host_after,
        "the container changed the host's hostname"
    );
}

/// `domainname` is in runtime-spec 1.1 (config.md "Domainname"); runc 1.1.5 implements
/// spec 1.0.2 and ignores it, leaving "(none)".
#[test]
fn domainname_is_set_berth_only() {
    if !berth_only("runc 1.1.5 predates the spec's domainname field") {
        return;
    }
    let host_before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut bundle = Bundle::busybox(&["cat", "/proc/sys/kernel/domainname"]);
    bundle.config_mut()["domainname"] = json!("berth.example");
    let rt = Runtime::new();
    assert_eq!(rt.run_to_completion(&bundle), "berth.example\n");
    let host_after = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_eq!(
        host_before, host_after,
        "the container changed the host's domainname"
    );
}
