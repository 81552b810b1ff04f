//! The config.json that `runc spec` (1.1.x) writes, built as a JSON value.
//!
//! Tests start from this so that a bundle is exactly what a runc user gets, and the `spec`
//! tests compare a runtime's output against it.

use serde_json::{json, Value};

/// runc's default spec, verbatim (terminal true, args ["sh"]).
pub fn runc_default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "permitted": caps.clone(),
                "ambient": caps
            },
            "rlimits": [
                { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }
            ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            },
            {
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": {
            "resources": {
                "devices": [ { "allow": false, "access": "rwm" } ]
            },
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The template every test bundle starts from: runc's default with no terminal and `args`.
pub fn bundle_spec(args: &[&str]) -> Value {
    let mut spec = runc_default_spec();
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(args);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn template_equals_runc_spec() {
        if !std::path::Path::new(crate::RUNC).exists() {
            crate::skip("runc is not installed: cannot compare with `runc spec`");
            return;
        }
        let dir = crate::scratch_dir().join(crate::unique_name());
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(crate::RUNC)
            .arg("spec")
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runc spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let from_runc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(from_runc, runc_default_spec());
    }

    #[test]
    fn bundle_template_changes_only_terminal_and_args() {
        let mut spec = bundle_spec(&["echo", "hi"]);
        assert_eq!(spec["process"]["terminal"], false);
        assert_eq!(spec["process"]["args"], json!(["echo", "hi"]));
        spec["process"]["terminal"] = json!(true);
        spec["process"]["args"] = json!(["sh"]);
        assert_eq!(spec, runc_default_spec());
    }
}
