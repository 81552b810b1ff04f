//! `events`: the container's resource usage every interval, and an event
//! each time its memory cgroup runs out of memory, until the container stops.
//!
//! OOMs are found by reading the memory cgroup's counters (v1
//! `memory.oom_control`, v2 `memory.events`) between stats rather than by
//! v1's eventfd registration: one mechanism for both versions, and a counter
//! cannot miss a kill that happened while nobody was listening.

use crate::cgroups::{OomCounter, Stats, StatsError};
use crate::lifecycle::container::Container;
use crate::lifecycle::error::{Error, Result};
use crate::state::Status;
use std::time::{Duration, Instant};

/// How long an OOM may go unreported: short next to any stats interval.
const OOM_CHECK: Duration = Duration::from_millis(100);

/// What [`watch`] reports.
#[derive(Debug)]
pub enum Event {
    /// The resource usage, every interval.
    Stats(Box<Stats>),
    /// The memory cgroup ran out of memory (once per OOM kill).
    Oom,
    /// Reading the stats failed this time; runc logs it and goes on.
    StatsFailed(StatsError),
}

/// Report events to `emit` until the container stops or `emit` returns false.
/// The first stats come one `interval` after the start, as runc's ticker sends them.
pub fn watch(
    container: &Container,
    interval: Duration,
    mut emit: impl FnMut(Event) -> bool,
) -> Result<()> {
    if container.status() == Status::Stopped {
        return Err(Error::EventsStopped(container.id().to_string()));
    }
    let mut last = container.oom_counter()?;
    let mut next_stats = Instant::now() + interval;
    loop {
        let now = Instant::now();
        std::thread::sleep(next_stats.saturating_duration_since(now).min(OOM_CHECK));
        let stopped = container.status() == Status::Stopped;
        // Read after the status, so an OOM that killed the init is still reported.
        let current = container.oom_counter().ok().flatten();
        for _ in 0..new_ooms(last, current) {
            if !emit(Event::Oom) {
                return Ok(());
            }
        }
        if current.is_some() {
            last = current;
        }
        if stopped {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            next_stats += interval;
            let event = match container.stats() {
                Ok(stats) => Event::Stats(Box::new(stats)),
                Err(Error::Stats(e)) => Event::StatsFailed(e),
                // The container stopped between the two reads.
                Err(_) => return Ok(()),
            };
            if !emit(event) {
                return Ok(());
            }
        }
    }
}

/// OOMs since `before`: one per kill, or per time the cgroup hit its limit
/// when nothing was killed (v1's `under_oom` is a state, so 0 to 1 counts once).
fn new_ooms(before: Option<OomCounter>, now: Option<OomCounter>) -> u64 {
    let (Some(before), Some(now)) = (before, now) else {
        return 0;
    };
    now.kills
        .saturating_sub(before.kills)
        .max(now.ooms.saturating_sub(before.ooms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kill_is_one_oom_and_a_kill_is_not_counted_twice() {
        let c = |kills, ooms| Some(OomCounter { kills, ooms });
        assert_eq!(new_ooms(c(0, 0), c(2, 2)), 2);
        assert_eq!(new_ooms(c(0, 0), c(0, 1)), 1);
        assert_eq!(new_ooms(c(3, 1), c(3, 0)), 0);
        assert_eq!(new_ooms(None, c(1, 1)), 0);
    }
}
