//! A `linux.cgroupsPath` that names a cgroup the container did not create
//! (`/system.slice`, a pod's, anyone's): its other processes are not the
//! container's, and neither is the cgroup. `delete`, the end of a foreground
//! `run` and `delete --force` must leave both alone, and kill only what is
//! the container's.
//!
//! Each test makes a cgroup of its own at the root of the host's hierarchies,
//! puts a `sleep` it started there (the victim), and points a container at it.
//! runc 1.1 leaves the victim alone only when the container has a pid
//! namespace of its own (it then kills just the init); without one, and on
//! every `kill --all`, it SIGKILLs the whole cgroup, and it removes a
//! pre-existing cgroup it finds empty: those checks are Berth's only.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use berth_conformance::{
    berth_only, pid_alive, processes_using, unique_name, wait_until, Bundle, Runtime,
};
use serde_json::json;

/// A SIGKILL sent by the runtime just before it returned has taken effect by then.
const SETTLE: Duration = Duration::from_millis(100);

/// Every cgroup hierarchy the host mounts (v1 controllers, the cgroup2 mount),
/// each mountpoint once, with whether it is the cgroup2 one.
fn hierarchies() -> Vec<(PathBuf, bool)> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut found: Vec<(PathBuf, bool)> = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        if !matches!(fstype, "cgroup" | "cgroup2") || !mountpoint.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let mountpoint = PathBuf::from(mountpoint);
        if !found.iter().any(|(m, _)| *m == mountpoint) {
            found.push((mountpoint, fstype == "cgroup2"));
        }
    }
    found
}

/// A cgroup `/foreign-<test>` the test made, in some hierarchies or all, with
/// a process of the test's in it; all of it removed when dropped.
struct ForeignCgroup {
    name: String,
    dirs: Vec<PathBuf>,
    victim: Option<Child>,
}

impl ForeignCgroup {
    /// In every hierarchy, holding a victim.
    fn everywhere() -> ForeignCgroup {
        ForeignCgroup::make(|_, _| true, true)
    }

    /// In the hierarchies `wanted` picks (by mountpoint, and whether it is
    /// cgroup2), holding a victim if `victim`.
    fn make(wanted: impl Fn(&PathBuf, bool) -> bool, victim: bool) -> ForeignCgroup {
        let name = format!("foreign-{}", unique_name());
        let mut cgroup = ForeignCgroup {
            name,
            dirs: Vec::new(),
            victim: None,
        };
        for (mountpoint, v2) in hierarchies() {
            if !wanted(&mountpoint, v2) {
                continue;
            }
            let dir = mountpoint.join(&cgroup.name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            cgroup.dirs.push(dir.clone());
            // A new v1 cpuset has no cpus or mems, and takes no process until it has.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(value) = fs::read_to_string(mountpoint.join(file)) {
                    fs::write(dir.join(file), value.trim())
                        .unwrap_or_else(|e| panic!("write {file} in {}: {e}", dir.display()));
                }
            }
        }
        assert!(!cgroup.dirs.is_empty(), "no cgroup hierarchy to make it in");
        if victim {
            let child = Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("start the victim");
            for dir in &cgroup.dirs {
                fs::write(dir.join("cgroup.procs"), child.id().to_string())
                    .unwrap_or_else(|e| panic!("move the victim into {}: {e}", dir.display()));
            }
            cgroup.victim = Some(child);
        }
        cgroup
    }

    /// The cgroupsPath that names it.
    fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// A bundle running `args` in it, with or without a pid namespace of its own.
    fn bundle(&self, args: &[&str], own_pid_namespace: bool) -> Bundle {
        let mut bundle = Bundle::busybox(args);
        let path = self.path();
        bundle.edit(|c| {
            c["linux"]["cgroupsPath"] = json!(path);
            if !own_pid_namespace {
                let namespaces = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
                namespaces.retain(|ns| ns["type"] != "pid");
            }
        });
        bundle
    }

    /// Panics unless the victim still runs, in every directory of the cgroup,
    /// all of which still exist.
    #[track_caller]
    fn assert_untouched(&self, after: &str) {
        std::thread::sleep(SETTLE);
        if let Some(victim) = &self.victim {
            let pid = victim.id();
            assert!(
                pid_alive(pid.into()),
                "{after} killed process {pid}, which the test put in {} before the container existed",
                self.path()
            );
            for dir in &self.dirs {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                assert!(
                    procs.lines().any(|p| p == pid.to_string()),
                    "{after}: process {pid} is no longer in {}: {procs:?}",
                    dir.display()
                );
            }
        }
        for dir in &self.dirs {
            assert!(
                dir.is_dir(),
                "{after} removed {}, which existed before the container",
                dir.display()
            );
        }
    }
}

impl Drop for ForeignCgroup {
    fn drop(&mut self) {
        if let Some(mut victim) = self.victim.take() {
            let _ = victim.kill();
            let _ = victim.wait();
        }
        for dir in &self.dirs {
            // Anything else in the test's own cgroup (a container process a
            // failed test left) goes too, or the directory cannot be removed.
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with plain integers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for dir in &self.dirs {
            wait_until(Duration::from_secs(5), || {
                fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

/// A stopped container's plain `delete`.
fn delete_after_exit(own_pid_namespace: bool) {
    let foreign = ForeignCgroup::everywhere();
    let bundle = foreign.bundle(&["true"], own_pid_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.wait_status(&id, "stopped");
    rt.delete(&id).ok();
    foreign.assert_untouched("delete of the stopped container");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn delete_of_a_stopped_container_leaves_a_foreign_cgroup_and_its_processes() {
    delete_after_exit(true);
}

#[test]
fn delete_of_a_stopped_container_without_a_pid_namespace_leaves_a_foreign_cgroups_processes() {
    if berth_only("runc 1.1 SIGKILLs the whole cgroup of a container without a pid namespace") {
        delete_after_exit(false);
    }
}

/// A foreground `run` whose program exits.
fn run_to_the_end(own_pid_namespace: bool) {
    let foreign = ForeignCgroup::everywhere();
    let bundle = foreign.bundle(&["true"], own_pid_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.run(&id, &bundle, &[]).ok();
    foreign.assert_untouched("the end of a foreground run");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn a_foreground_run_that_ends_leaves_a_foreign_cgroup_and_its_processes() {
    run_to_the_end(true);
}

#[test]
fn a_foreground_run_without_a_pid_namespace_leaves_a_foreign_cgroups_processes() {
    if berth_only("runc 1.1 SIGKILLs the whole cgroup of a container without a pid namespace") {
        run_to_the_end(false);
    }
}

/// `delete --force` of a running container, whose init has a child: both
/// are the container's and go, the victim stays.
fn force_delete_running(own_pid_namespace: bool) {
    let foreign = ForeignCgroup::everywhere();
    let bundle = foreign.bundle(&["sh", "-c", "sleep 1000 & wait"], own_pid_namespace);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let rootfs = bundle.rootfs();
    assert!(
        wait_until(Duration::from_secs(5), || processes_using(&rootfs).len()
            == 2),
        "the container's init and its child never both ran: {:?}",
        processes_using(&rootfs)
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    foreign.assert_untouched("delete --force of the running container");
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn delete_force_of_a_running_container_kills_its_processes_and_no_others() {
    force_delete_running(true);
}

#[test]
fn delete_force_without_a_pid_namespace_kills_the_inits_descendants_and_no_others() {
    if berth_only("runc 1.1 SIGKILLs the whole cgroup of a container without a pid namespace") {
        force_delete_running(false);
    }
}

/// runc's `kill --all` signals every process in the cgroup; in one the
/// container shares, Berth signals the container's own only.
#[test]
fn kill_all_signals_the_containers_own_processes_and_no_others() {
    if !berth_only("runc 1.1's kill --all signals every process of the cgroup, the victim too") {
        return;
    }
    for own_pid_namespace in [true, false] {
        let foreign = ForeignCgroup::everywhere();
        let bundle = foreign.bundle(&["sh", "-c", "sleep 1000 & wait"], own_pid_namespace);
        let rt = Runtime::new();
        let id = rt.new_id();
        rt.create_and_start(&id, &bundle);
        let rootfs = bundle.rootfs();
        assert!(wait_until(Duration::from_secs(5), || {
            processes_using(&rootfs).len() == 2
        }));
        rt.cmd(&["kill", "--all", &id, "KILL"]).ok();
        rt.wait_status(&id, "stopped");
        assert!(
            wait_until(Duration::from_secs(5), || processes_using(&rootfs)
                .is_empty()),
            "kill --all left the container's processes (pid namespace: {own_pid_namespace}): {:?}",
            processes_using(&rootfs)
        );
        foreign.assert_untouched("kill --all");
        rt.delete(&id).ok();
        foreign.assert_untouched("delete after kill --all");
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// Freezing the cgroup would freeze the victim: `pause` is refused, and the
/// cgroup stays thawed.
#[test]
fn pause_of_a_container_in_a_foreign_cgroup_is_refused() {
    if !berth_only("runc 1.1 freezes the whole cgroup, the victim too") {
        return;
    }
    let foreign = ForeignCgroup::everywhere();
    let bundle = foreign.bundle(&["sleep", "1000"], true);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    rt.cmd(&["pause", &id]).fails_with("existed before it");
    assert_eq!(rt.state(&id)["status"], "running");
    for dir in &foreign.dirs {
        if let Ok(state) = fs::read_to_string(dir.join("freezer.state")) {
            assert_eq!(state.trim(), "THAWED", "{}", dir.display());
        }
        if let Ok(state) = fs::read_to_string(dir.join("cgroup.freeze")) {
            assert_eq!(state.trim(), "0", "{}", dir.display());
        }
    }
    rt.cmd(&["delete", "--force", &id]).ok();
    foreign.assert_untouched("delete --force after a refused pause");
    rt.assert_nothing_left(&id, &bundle);
}

/// `/system.slice` on a hybrid host exists in the hierarchies systemd uses
/// (its own, cgroup2's, and those of the controllers it accounts with), not
/// in every v1 controller's: the container makes the rest, and is still in a
/// cgroup it shares. What it made goes at delete, what it found stays.
#[test]
fn a_cgroup_found_in_some_hierarchies_only_is_shared_and_only_the_made_part_goes() {
    let found_in = |mountpoint: &PathBuf, v2: bool| {
        v2 || ["systemd", "pids", "memory"]
            .iter()
            .any(|h| mountpoint.ends_with(h))
    };
    let foreign = ForeignCgroup::make(found_in, true);
    let made: Vec<PathBuf> = hierarchies()
        .into_iter()
        .filter(|(m, v2)| !found_in(m, *v2))
        .map(|(m, _)| m.join(&foreign.name))
        .collect();
    let bundle = foreign.bundle(&["sh", "-c", "sleep 1000 & wait"], true);
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    assert!(
        made.iter().all(|d| d.is_dir()),
        "the container's directories in the other hierarchies: {made:?}"
    );
    rt.cmd(&["delete", "--force", &id]).ok();
    foreign.assert_untouched("delete --force");
    let left: Vec<&PathBuf> = made.iter().filter(|d| d.exists()).collect();
    assert!(
        left.is_empty(),
        "the directories delete made stay: {left:?}"
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// A pre-existing cgroup with nothing in it is still not the container's to
/// remove, nor is a parent of the container's own.
#[test]
fn an_empty_foreign_cgroup_and_a_foreign_parent_stay() {
    if !berth_only("runc 1.1 removes a cgroupsPath's directory it finds empty at delete") {
        return;
    }
    let foreign = ForeignCgroup::make(|_, _| true, false);
    let rt = Runtime::new();
    let id = rt.new_id();
    let bundle = foreign.bundle(&["true"], true);
    rt.run(&id, &bundle, &[]).ok();
    foreign.assert_untouched("delete of a container in an empty cgroup");

    let child = rt.new_id();
    let mut bundle = foreign.bundle(&["true"], true);
    let path = format!("{}/{child}", foreign.path());
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(path));
    rt.run(&child, &bundle, &[]).ok();
    foreign.assert_untouched("delete of a container below it");
    let left: Vec<PathBuf> = foreign
        .dirs
        .iter()
        .map(|d| d.join(&child))
        .filter(|d| d.exists())
        .collect();
    assert!(
        left.is_empty(),
        "the container's own directories stay: {left:?}"
    );
    rt.assert_nothing_left(&child, &bundle);
}

/// Berth's test-build hook that kills `create` at a step (runtime-core/src/fault.rs).
const FAULT_ENV: &str = "BERTH_FAULT_STOP_AT";

/// Whether the fault hook can be used: Berth only, built with it (a Berth
/// without it fails, naming the build it needs).
fn fault_hook() -> bool {
    if !berth_only("the fault-injection hook (BERTH_FAULT_STOP_AT) is Berth's own") {
        return false;
    }
    let bin = berth_conformance::runtime();
    let bytes = fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    assert!(
        bytes.windows(FAULT_ENV.len()).any(|w| w == FAULT_ENV.as_bytes()),
        "{} has no fault-injection hook: build it with `cargo build -p berth-cli --features fault-injection`",
        bin.display()
    );
    true
}

/// A `create` killed once its init exists leaves only its plan of the
/// cgroup for `delete --force` to go by: the plan never claims a directory
/// that existed, so nothing in it is killed and nothing is removed.
#[test]
fn delete_force_of_a_killed_create_leaves_a_foreign_cgroup_and_its_processes() {
    if !fault_hook() {
        return;
    }
    let foreign = ForeignCgroup::everywhere();
    let bundle = foreign.bundle(&["true"], true);
    let rt = Runtime::new();
    let id = rt.new_id();
    bundle.write_config();
    let args = ["create", "--bundle", bundle.path().to_str().unwrap(), &id];
    let out = rt.cmd_with(&args, |c| {
        c.env(FAULT_ENV, "cloned");
    });
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.describe());
    rt.cmd(&["delete", "--force", &id]).ok();
    foreign.assert_untouched("delete --force of a killed create");
    // Its init, in the foreign cgroup, exits by itself once it finds create gone.
    let rootfs = bundle.rootfs();
    assert!(
        wait_until(Duration::from_secs(5), || processes_using(&rootfs)
            .is_empty()),
        "{:?}",
        processes_using(&rootfs)
    );
    rt.assert_nothing_left(&id, &bundle);
}

/// The systemd driver: a scope of the name the container's would have
/// exists already (someone else's). `create` fails, as systemd refuses to
/// start it again; killed before it asked, its plan does not name the unit,
/// and `delete --force` must not stop someone else's scope.
#[test]
fn a_systemd_scope_that_exists_is_never_stopped_by_the_container() {
    if !fault_hook() {
        return;
    }
    let Some(rt) = Runtime::in_private_systemd() else {
        berth_conformance::skip("no /lib/systemd/systemd, or not a hybrid cgroup host");
        return;
    };
    let systemd = rt.systemd().expect("a runtime in a private systemd");
    let id = rt.new_id();
    let unit = format!("berth-{id}.scope");
    let mut holder = systemd
        .command(std::path::Path::new("systemd-run"))
        .args(["--scope", "--slice=berth-test.slice", "--unit", &unit, "--"])
        .args(["sleep", "1000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run systemd-run");
    assert!(
        wait_until(Duration::from_secs(10), || {
            systemd.unit_property(&unit, "ActiveState") == "active"
        }),
        "the foreign scope {unit} never became active"
    );
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("berth-test.slice:berth:{id}")));
    bundle.write_config();
    let bundle_path = bundle.path().to_str().unwrap().to_owned();
    let create = ["--systemd-cgroup", "create", "--bundle", &bundle_path, &id];

    rt.cmd(&create).fails();
    assert_eq!(systemd.unit_property(&unit, "ActiveState"), "active");

    let out = rt.cmd_with(&create, |c| {
        c.env(FAULT_ENV, "cloned");
    });
    assert_eq!(out.code, 128 + libc::SIGKILL, "{}", out.describe());
    rt.cmd(&["delete", "--force", &id]).ok();
    assert_eq!(
        systemd.unit_property(&unit, "ActiveState"),
        "active",
        "delete --force of a killed create stopped the scope it never started"
    );
    assert!(
        holder.try_wait().expect("poll systemd-run").is_none(),
        "the foreign scope's process died"
    );
    systemd.systemctl(&["stop", &unit]);
    let _ = holder.kill();
    let _ = holder.wait();
}
