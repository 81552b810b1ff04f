//! `TaskOOM`: the container's memory cgroup killed a process for want of
//! memory. The library counts the kills (`Container::oom_counter`); the
//! shim polls the count while the init runs, and reads it once more when
//! the init exits, before the exit is recorded (after it, a `Wait` returns
//! and containerd may delete the container before the count is read: lost
//! under load) and before its `TaskExit`, as the runc shim orders them.
//! Polling, not an eventfd on `memory.oom_control`: simple, at the cost of
//! up to `POLL` of delay.

use std::sync::Arc;
use std::time::Duration;

use containerd_shim as shim;
use shim::protos::events::task::TaskOOM;

use crate::process::{Publisher, Shared};

/// How often the running container's count is read.
const POLL: Duration = Duration::from_millis(500);

/// Publishes `TaskOOM` if container `id`'s OOM-kill count grew since the
/// last look. Returns whether to keep watching (its init still runs).
pub fn check(shared: &Shared, publisher: &Publisher, id: &str) -> bool {
    let seen = match shared.0.lock() {
        Ok(table) => table.containers.get(id).map(|c| {
            let running = c.init.exited.is_none();
            (c.root.clone(), c.oom_kills, running)
        }),
        Err(_) => None,
    };
    let Some((root, seen_kills, running)) = seen else {
        return false;
    };
    let kills = berth::Container::load(&root, id)
        .and_then(|c| c.oom_counter())
        .ok()
        .flatten()
        .map_or(0, |counter| counter.kills);
    if kills > seen_kills {
        if let Ok(mut table) = shared.0.lock() {
            if let Some(c) = table.containers.get_mut(id) {
                c.oom_kills = kills;
            }
        }
        publisher.publish(Box::new(TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        }));
    }
    running
}

/// Watches started container `id` until its init exits (or it is deleted).
pub fn watch(shared: Shared, publisher: Arc<Publisher>, id: String) {
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if !check(&shared, &publisher, &id) {
                break;
            }
        });
    if let Err(e) = spawned {
        log::warn!("no OOM events: {e}");
    }
}
