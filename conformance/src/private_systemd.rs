//! A systemd of the test's own, for the systemd cgroup driver: /lib/systemd/systemd
//! as PID 1 of new pid, mount, cgroup, uts, ipc and network namespaces, with a
//! private /run (so its /run/systemd/system and /run/systemd/private are its
//! own) and cgroup hierarchies mounted afresh at a test-made cgroup, so what it
//! creates stays below that directory on the host.
//!
//! It loads only one empty target from a unit directory of its own: the host's
//! units would run sysinit jobs (tmpfiles, sysctl, sysusers) against the host's
//! file systems. Commands reach it through `nsenter`, as `Runtime::in_private_systemd`
//! does for the runtime under test; dropping it kills the namespace and removes the
//! cgroup directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::checks::wait_until;
use crate::{scratch_dir, unique_name};

const SYSTEMD: &str = "/lib/systemd/systemd";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How long systemd may take to reach `running`: a readiness wait, not a timing check.
const BOOT_DEADLINE: Duration = Duration::from_secs(30);

/// Mounts in the namespace, then systemd: cgroup mounts made inside the new cgroup
/// namespace are rooted at its root, the test-made directory.
const INNER: &str = r#"set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
for c in $V1_CONTROLLERS; do mkdir /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done
mkdir /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mkdir /sys/fs/cgroup/unified; mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
exec env -i container=berth-test SYSTEMD_UNIT_PATH="$UNITS:/run/systemd/transient" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --unit=berth-test.target --log-target=null --show-status=no
"#;

/// Moves the shell into the test's cgroup in every hierarchy, then makes the namespaces.
/// `--kill-child`: should the test process die, systemd and its namespace go with unshare.
const OUTER: &str = r#"set -e
for h in /sys/fs/cgroup/*/; do
    mkdir -p "$h$NAME"
    if [ -f "${h}cpuset.cpus" ]; then cat "${h}cpuset.cpus" > "$h$NAME/cpuset.cpus"; cat "${h}cpuset.mems" > "$h$NAME/cpuset.mems"; fi
    echo $$ > "$h$NAME/cgroup.procs"
done
exec unshare --pid --fork --kill-child --mount --cgroup --uts --ipc --net --mount-proc sh -c "$INNER"
"#;

pub struct PrivateSystemd {
    unshare: Child,
    /// systemd's pid, as the host sees it.
    pid: u32,
    /// The test-made cgroup in every hierarchy; systemd's root.
    name: String,
    dir: PathBuf,
}

impl PrivateSystemd {
    /// Starts it and waits until it is running; `None` (the caller skips) on a host
    /// without systemd installed or without the hybrid cgroup layout this is made for.
    pub fn start() -> Option<PrivateSystemd> {
        if !Path::new(SYSTEMD).exists()
            || !Path::new(CGROUP_ROOT).join("unified").is_dir()
            || !Path::new(CGROUP_ROOT).join("systemd").is_dir()
        {
            return None;
        }
        let name = format!("{}.systemd", unique_name());
        let dir = scratch_dir().join(&name);
        let units = dir.join("units");
        fs::create_dir_all(&units).unwrap_or_else(|e| panic!("mkdir {}: {e}", units.display()));
        fs::write(
            units.join("berth-test.target"),
            "[Unit]\nDescription=berth test target\n",
        )
        .expect("write the test target");
        let v1_controllers: Vec<String> = fs::read_dir(CGROUP_ROOT)
            .expect("list /sys/fs/cgroup")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !matches!(n.as_str(), "systemd" | "unified") && !n.contains(','))
            .filter(|n| Path::new(CGROUP_ROOT).join(n).join("cgroup.procs").exists())
            .collect();
        let unshare = Command::new("sh")
            .arg("-c")
            .arg(OUTER)
            .env("NAME", &name)
            .env("INNER", INNER)
            .env("UNITS", &units)
            .env("V1_CONTROLLERS", v1_controllers.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh for unshare");
        let mut systemd = PrivateSystemd {
            pid: 0,
            unshare,
            name,
            dir,
        };
        let unshare_pid = systemd.unshare.id();
        let found = wait_until(BOOT_DEADLINE, || {
            let children =
                fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                    .unwrap_or_default();
            let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            else {
                return false;
            };
            systemd.pid = pid;
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "systemd")
        });
        assert!(found, "{SYSTEMD} did not start in its namespaces");
        let running = wait_until(BOOT_DEADLINE, || {
            let state = systemd.systemctl(&["is-system-running"]);
            matches!(state.trim(), "running" | "degraded")
        });
        assert!(
            running,
            "the private systemd did not reach running: {}",
            systemd.systemctl(&["is-system-running"])
        );
        Some(systemd)
    }

    /// `program`, run in systemd's pid, mount and cgroup namespaces.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-p", "-C", "--"])
            .arg(program);
        command
    }

    /// `systemctl --no-pager args...` against this systemd: its stdout.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let out = self
            .command(Path::new("systemctl"))
            .arg("--no-pager")
            .args(args)
            .output()
            .expect("run nsenter systemctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `systemctl show -p property --value unit`.
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        self.systemctl(&["show", "-p", property, "--value", unit])
            .trim()
            .to_string()
    }

    /// Where `inner` (a path in systemd's cgroup tree) is in the host's `hierarchy`.
    pub fn cgroup_dir(&self, hierarchy: &str, inner: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(hierarchy)
            .join(&self.name)
            .join(inner.trim_start_matches('/'))
    }

    /// Every cgroup directory below systemd's root whose name is `name`, in any hierarchy.
    pub fn cgroups_named(&self, name: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for hierarchy in fs::read_dir(CGROUP_ROOT).into_iter().flatten().flatten() {
            collect_named(&hierarchy.path().join(&self.name), name, &mut found);
        }
        found
    }
}

fn collect_named(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if entry.file_name() == name {
                found.push(entry.path());
            }
            collect_named(&entry.path(), name, found);
        }
    }
}

impl Drop for PrivateSystemd {
    fn drop(&mut self) {
        // systemd is its pid namespace's init: when it dies, the kernel kills everything in it.
        if self.pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        for hierarchy in fs::read_dir(CGROUP_ROOT).into_iter().flatten().flatten() {
            let top = hierarchy.path().join(&self.name);
            // The killed processes leave their cgroups a moment after they are reaped.
            wait_until(Duration::from_secs(10), || {
                remove_tree(&top);
                !top.exists()
            });
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// rmdir every cgroup directory under `dir`, deepest first (cgroup files cannot be unlinked).
fn remove_tree(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path());
        }
    }
    let _ = fs::remove_dir(dir);
}
