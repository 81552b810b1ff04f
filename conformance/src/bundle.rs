//! Busybox bundles: a rootfs copied from one cached template plus an editable config.json.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::default_spec::bundle_spec;
use crate::leftovers;
use crate::{scratch_dir, unique_name};

const BUSYBOX: &str = "/bin/busybox";

/// Idles until SIGTERM or SIGKILL; `wait` (unlike a foreground `sleep`) lets the trap run
/// as soon as the signal arrives.
pub const SLEEPER: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      user:x:1000:1000:user:/tmp:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnobody:x:65534:\n";

/// A bundle directory under /tmp/berth-conformance. The config is kept in memory until a
/// runtime command is about to read it (`write_config`), so a test edits it freely first.
pub struct Bundle {
    dir: PathBuf,
    config: Value,
    shared_dirs: usize,
}

impl Bundle {
    /// A bundle whose process runs `args`, with runc's default config (terminal off).
    pub fn busybox(args: &[&str]) -> Bundle {
        let dir = scratch_dir().join(unique_name());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        copy_tree(&rootfs_template(), &dir.join("rootfs"));
        Bundle {
            dir,
            config: bundle_spec(args),
            shared_dirs: 0,
        }
    }

    /// A bundle whose process idles until it gets SIGTERM (then exits 0) or SIGKILL. A plain
    /// `sleep` would not do: pid 1 of a pid namespace ignores signals it has no handler for.
    pub fn sleeper() -> Bundle {
        Bundle::busybox(SLEEPER)
    }

    /// The bundle directory (absolute), as given to `--bundle`.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Edits the config in place; reads better than `config_mut` for several changes.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Join the pid namespace of host pid `pid` by path instead of making
    /// one (as a Kubernetes pod's containers join the sandbox's).
    pub fn join_pid_namespace_of(&mut self, pid: i64) -> &mut Self {
        let path = format!("/proc/{pid}/ns/pid");
        for ns in self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces is an array")
        {
            if ns["type"] == "pid" {
                ns["path"] = json!(path);
            }
        }
        self
    }

    /// Writes config.json; the runtime helpers call this before `create` and `run`.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("config serializes");
        fs::write(self.dir.join("config.json"), text).expect("write config.json");
    }

    /// A fresh host directory bind-mounted read-write at `dest` in the container. Tests use
    /// it to pass files out of a container with a read-only rootfs.
    pub fn share_dir(&mut self, dest: &str) -> PathBuf {
        self.shared_dirs += 1;
        let host = self.dir.join(format!("shared-{}", self.shared_dirs));
        fs::create_dir_all(&host).expect("mkdir shared dir");
        self.add_mount(json!({
            "destination": dest, "type": "bind", "source": host, "options": ["rbind", "rw"]
        }));
        host
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts is an array")
            .push(mount);
        self
    }

    /// Removes the bundle unless something still uses it: deleting a directory that is
    /// still a mount target, or the root of a live container, would be unsafe.
    pub(crate) fn remove_if_unused(dir: &Path) {
        if !dir.exists() {
            return;
        }
        let busy = leftovers::mounts_mentioning(dir).len()
            + leftovers::processes_using(&dir.join("rootfs")).len();
        if busy == 0 {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        Bundle::remove_if_unused(&self.dir);
    }
}

/// The busybox rootfs, built once per busybox binary and shared by every test process:
/// it is built under a temporary name and renamed into place, so concurrent builders race
/// harmlessly.
fn rootfs_template() -> PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let meta = fs::metadata(BUSYBOX)
                .unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (install busybox-static)"));
            let name = format!("rootfs-template-v1-{}-{}", meta.len(), meta.mtime());
            let final_dir = scratch_dir().join(name);
            if final_dir.join("bin/busybox").exists() {
                return final_dir;
            }
            let tmp = scratch_dir().join(format!("rootfs-template.tmp-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            build_rootfs(&tmp);
            if fs::rename(&tmp, &final_dir).is_err() {
                let _ = fs::remove_dir_all(&tmp);
                assert!(
                    final_dir.join("bin/busybox").exists(),
                    "rootfs template missing"
                );
            }
            final_dir
        })
        .clone()
}

fn build_rootfs(rootfs: &Path) {
    for dir in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(rootfs.join(dir)).expect("mkdir in rootfs");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    // `--list` names busybox itself: linking that would replace the binary by a loop.
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        symlink("busybox", rootfs.join("bin").join(applet)).expect("applet symlink");
    }
    fs::write(rootfs.join("etc/passwd"), PASSWD).unwrap();
    fs::write(rootfs.join("etc/group"), GROUP).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("spawn cp");
    assert!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
}
