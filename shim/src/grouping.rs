//! One shim per pod: which shim a container's `start` names.
//!
//! containerd runs `containerd-shim-berth-v2 start` in each new container's
//! bundle and connects to the ttrpc address it prints. As the runc v2 shim
//! does, the address is derived from a grouping id rather than the
//! container's own: the CRI plugin annotates every container of a pod, and
//! the pod's sandbox ("pause") container itself, with
//! `io.kubernetes.cri.sandbox-id`, so all of a pod hash to one socket. When
//! a shim already answers there, `start` prints its address and starts
//! nothing; the running shim then serves the new container too.

use std::os::unix::net::UnixStream;
use std::path::Path;

/// The annotations naming a container's group, first match wins: the runc
/// shim's explicit group label, then the CRI plugin's sandbox id.
const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// The group of the container whose OCI config is `config`: the value of
/// its first grouping annotation, else its own `id` (a shim of its own). A
/// config that cannot be read also gets a shim of its own; create reports
/// what is wrong with it.
pub fn group_of(config: &Path, id: &str) -> String {
    let annotations = std::fs::read(config)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|spec| spec.get("annotations").cloned());
    let Some(annotations) = annotations else {
        return id.to_string();
    };
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(key)?.as_str())
        .filter(|group| !group.is_empty())
        .unwrap_or(id)
        .to_string()
}

/// Whether a shim serves `address` (`unix://PATH`): its socket accepts a
/// connection. A socket file left by a shim that died refuses it.
pub fn is_served(address: &str) -> bool {
    UnixStream::connect(socket_path(address)).is_ok()
}

/// The socket file of a shim's `address` (`unix://PATH`, or a bare path).
pub fn socket_path(address: &str) -> &Path {
    Path::new(address.strip_prefix("unix://").unwrap_or(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group of a container whose config is `config`, written to a
    /// file named `name` (unique per test: they run in parallel).
    fn group(name: &str, config: serde_json::Value) -> String {
        let path =
            std::env::temp_dir().join(format!("berth-grouping-{}-{name}.json", std::process::id()));
        std::fs::write(&path, config.to_string()).expect("write config");
        let group = group_of(&path, "c1");
        let _ = std::fs::remove_file(&path);
        group
    }

    #[test]
    fn a_pods_containers_group_by_sandbox_id() {
        let annotations = serde_json::json!({ "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-id": "pod1",
        }});
        assert_eq!(group("pod", annotations), "pod1");
    }

    #[test]
    fn the_explicit_group_label_comes_first() {
        let annotations = serde_json::json!({ "annotations": {
            "io.kubernetes.cri.sandbox-id": "pod1",
            "io.containerd.runc.v2.group": "g",
        }});
        assert_eq!(group("label", annotations), "g");
    }

    #[test]
    fn a_container_outside_a_pod_has_a_shim_of_its_own() {
        let none = serde_json::json!({ "annotations": {} });
        assert_eq!(group("none", none), "c1");
        assert_eq!(group("absent", serde_json::json!({})), "c1");
        assert_eq!(group_of(Path::new("/nonexistent/config.json"), "c1"), "c1");
    }
}
