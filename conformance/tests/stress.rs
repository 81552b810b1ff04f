//! Many clients on one state root at once, as containerd and Kubernetes
//! drive a runtime: 8 clients run 1,000 create/start/kill/delete cycles in
//! all, while each also asks `state`, `list`, `ps` and `kill` about the
//! others' containers. At the end every container is accounted for: each
//! cycle's commands succeeded, `list` is empty, and nothing (state, process,
//! mount, cgroup) is left.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_conformance::{berth_only, mounts_mentioning, processes_using, Bundle, Runtime};
use serde_json::Value;

const CLIENTS: usize = 8;
const CYCLES: usize = 1000;

fn status_of(rt: &Runtime, id: &str) -> Option<String> {
    let out = rt.cmd(&["state", id]);
    if !out.success() {
        return None;
    }
    let state: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "state {id} printed half a document ({e}): {}",
            out.describe()
        )
    });
    Some(state["status"].as_str().unwrap_or_default().to_owned())
}

fn stop_and_delete(rt: &Runtime, id: &str) {
    rt.kill(id, Some("KILL")).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(rt, id).as_deref() != Some("stopped") {
        assert!(Instant::now() < deadline, "{id} never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.delete(id).ok();
}

#[test]
fn eight_clients_run_a_thousand_cycles_on_one_root() {
    let rt = Runtime::new();
    let bundles: Vec<Bundle> = (0..CLIENTS).map(|_| Bundle::sleeper()).collect();
    let live: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // runc 1.1.5's `list` fails outright when a container is deleted while it reads the root.
    let strict_list = berth_only("runc 1.1.5's list fails on a container deleted under it");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (client, bundle) in bundles.iter().enumerate() {
            let (rt, live) = (&rt, &live);
            scope.spawn(move || {
                for cycle in 0..CYCLES / CLIENTS {
                    let id = format!("stress-{client}-{cycle}-{}", std::process::id());
                    rt.track(&id);
                    rt.create(&id, bundle, &[]).ok();
                    live.lock().unwrap().push(id.clone());
                    rt.start(&id).ok();
                    assert_eq!(
                        status_of(rt, &id).as_deref(),
                        Some("running"),
                        "{id} after start"
                    );

                    // Ask about someone else's container: it may come and go meanwhile, but
                    // whatever answers must be whole (state's JSON, list's JSON array).
                    let other = live
                        .lock()
                        .unwrap()
                        .get(cycle * 7 % CLIENTS.max(1))
                        .cloned();
                    if let Some(other) = other {
                        let _ = status_of(rt, &other);
                        let _ = rt.cmd(&["ps", "--format", "json", &other]);
                        let _ = rt.cmd(&["kill", &other, "CONT"]);
                    }
                    let listed = rt.cmd(&["list", "--format", "json"]);
                    if strict_list || listed.success() {
                        listed.ok();
                        let _: Value = serde_json::from_str(&listed.stdout).unwrap_or_else(|e| {
                            panic!("list printed half a document ({e}): {}", listed.describe())
                        });
                    }

                    stop_and_delete(rt, &id);
                    live.lock().unwrap().retain(|l| *l != id);
                }
            });
        }
    });
    eprintln!(
        "{CYCLES} cycles, {CLIENTS} clients: {:?}",
        started.elapsed()
    );

    let listed = rt.cmd(&["list", "-q"]);
    listed.ok();
    assert_eq!(listed.stdout.trim(), "", "containers left in list");
    let entries: Vec<String> = fs::read_dir(rt.root())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let ids: HashSet<&String> = entries
        .iter()
        .filter(|e| e.starts_with("stress-"))
        .collect();
    assert!(ids.is_empty(), "state dirs left: {ids:?}");
    for bundle in &bundles {
        assert_eq!(
            processes_using(&bundle.rootfs()),
            Vec::<String>::new(),
            "processes left"
        );
        assert_eq!(
            mounts_mentioning(bundle.path()),
            Vec::<String>::new(),
            "mounts left"
        );
    }
    // The default cgroupsPath is the id, under this process's own cgroup in each hierarchy.
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or("/"),
        );
        let name = controllers
            .split(',')
            .find(|c| !c.is_empty())
            .map(|c| c.trim_start_matches("name="))
            .unwrap_or("unified");
        let dir = Path::new("/sys/fs/cgroup")
            .join(name)
            .join(path.trim_start_matches('/'));
        let left: Vec<String> = fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("stress-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "cgroups left in {}: {left:?}",
            dir.display()
        );
    }
}
