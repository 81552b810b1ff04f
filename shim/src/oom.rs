//! `TaskOOM`: the container's memory cgroup killed a process for want of
//! memory. The library counts the kills (`Container::oom_counter`) and gives
//! a descriptor that becomes readable on the memory cgroup's OOM events
//! (`Container::oom_notifier`: v1's eventfd through `cgroup.event_control`,
//! v2's inotify watch of `memory.events`).
//!
//! One thread, "oom", waits in one epoll on the notifiers of all the shim's
//! started containers (added at Start and at a restore's Start, dropped at
//! the init's exit or the container's Delete). On a notification it drains
//! the descriptor and reads the count ([`check`]), publishing `TaskOOM` only
//! when the count grew. v1 signals before the OOM killer has picked and
//! counted its victim, so a notification that finds no new kill is looked at
//! again every `RECHECK`, up to `RECHECKS` times.
//!
//! The count is read once more when the init exits, before the exit is
//! recorded (after it, a `Wait` returns and containerd may delete the
//! container before the count is read: lost under load) and before its
//! `TaskExit`, as the runc shim orders them (`process.rs`).
//!
//! A container whose notifier cannot be made (out of descriptors, the
//! user's inotify instances, a kernel that refuses the registration) falls
//! back to reading its count every `POLL` on a thread of its own,
//! "oom-poll", with a warning; one without a memory cgroup has nothing to
//! watch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::{OomNotifier, OomNotifierError};
use containerd_shim as shim;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use shim::protos::events::task::TaskOOM;

use crate::events::Publisher;
use crate::process::Shared;

/// How often a container without a notifier has its count read.
const POLL: Duration = Duration::from_millis(500);
/// After a notification that found no new kill: the wait before the next look...
const RECHECK: Duration = Duration::from_millis(50);
/// ...and how many looks (a second in all) before it is taken for an OOM
/// that killed nothing (a disabled OOM killer, a victim already exiting).
const RECHECKS: u32 = 20;

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The container's init still runs: keep watching.
    pub running: bool,
    /// A new kill was counted and `TaskOOM` published.
    pub published: bool,
}

/// Publishes `TaskOOM` if container `id`'s OOM-kill count grew since the
/// last look.
pub fn check(shared: &Shared, publisher: &Publisher, id: &str) -> Checked {
    let gone = Checked {
        running: false,
        published: false,
    };
    let seen = match shared.0.lock() {
        Ok(table) => table
            .containers
            .get(id)
            .map(|c| (c.root.clone(), c.init.exited.is_none())),
        Err(_) => None,
    };
    let Some((root, running)) = seen else {
        return gone;
    };
    let kills = berth::Container::load(&root, id)
        .and_then(|c| c.oom_counter())
        .ok()
        .flatten()
        .map_or(0, |counter| counter.kills);
    // Compared under the lock: the oom thread and the exit thread may both
    // look at once, and only one of them may announce a kill.
    let grew = match shared.0.lock() {
        Ok(mut table) => match table.containers.get_mut(id) {
            Some(c) if kills > c.oom_kills => {
                c.oom_kills = kills;
                true
            }
            _ => false,
        },
        Err(_) => return gone,
    };
    if grew {
        publisher.publish(TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        });
    }
    Checked {
        running,
        published: grew,
    }
}

/// The shim's OOM watch: the "oom" thread's epoll and the notifiers in it.
pub struct Watch {
    shared: Shared,
    publisher: Arc<Publisher>,
    /// `None` when the epoll or its thread could not be made: every
    /// container is then polled.
    events: Option<Arc<Notifiers>>,
}

struct Notifiers {
    epoll: Epoll,
    registered: Mutex<Registered>,
}

/// The notifiers in the epoll, by token (the epoll event's data), with their
/// container's id. A token is never reused, so an event that comes for a
/// notifier just dropped finds nothing rather than a new container's.
#[derive(Default)]
struct Registered {
    next: u64,
    by_token: HashMap<u64, (String, OomNotifier)>,
}

impl Notifiers {
    fn forget(&self, id: &str) {
        if let Ok(mut registered) = self.registered.lock() {
            registered.by_token.retain(|_, (of, notifier)| {
                if of != id {
                    return true;
                }
                let _ = self.epoll.delete(&*notifier);
                false
            });
        }
    }
}

impl Watch {
    /// Starts the "oom" thread (waiting on nothing until [`Watch::add`]).
    pub fn start(shared: Shared, publisher: Arc<Publisher>) -> Arc<Watch> {
        let events = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(std::io::Error::from)
            .and_then(|epoll| {
                let notifiers = Arc::new(Notifiers {
                    epoll,
                    registered: Mutex::default(),
                });
                let (theirs, shared, publisher) =
                    (notifiers.clone(), shared.clone(), publisher.clone());
                std::thread::Builder::new()
                    .name("oom".into())
                    .spawn(move || wait_for_events(&theirs, &shared, &publisher))
                    .map(|_| notifiers)
            });
        let events = match events {
            Ok(events) => Some(events),
            Err(e) => {
                log::warn!("no OOM event thread ({e}): each container's count will be polled");
                None
            }
        };
        Arc::new(Watch {
            shared,
            publisher,
            events,
        })
    }

    /// Watches started container `id` until its init exits or it is
    /// deleted: its notifier in the epoll, or else a poll of its count.
    pub fn add(&self, id: &str) {
        let root = match self.shared.0.lock() {
            Ok(table) => table.containers.get(id).map(|c| c.root.clone()),
            Err(_) => None,
        };
        let Some(root) = root else {
            return;
        };
        let made = berth::Container::load(&root, id).and_then(|c| c.oom_notifier());
        let why = match (made, &self.events) {
            (Ok(notifier), Some(events)) => match events.registered.lock() {
                Ok(mut registered) => {
                    let token = registered.next;
                    registered.next += 1;
                    let event = EpollEvent::new(EpollFlags::EPOLLIN, token);
                    match events.epoll.add(&notifier, event) {
                        Ok(()) => {
                            registered
                                .by_token
                                .insert(token, (id.to_string(), notifier));
                            return;
                        }
                        Err(e) => format!("add its notifier to the epoll: {e}"),
                    }
                }
                Err(_) => "the OOM watch is poisoned".to_string(),
            },
            (Ok(_), None) => "the shim has no OOM event thread".to_string(),
            (Err(berth::Error::OomNotifier(e @ OomNotifierError::NoMemoryCgroup)), _) => {
                log::warn!("no TaskOOM for {id}: {e}");
                return;
            }
            (Err(e), _) => e.to_string(),
        };
        log::warn!(
            "no OOM notification for {id} ({why}): its OOM-kill count is read every {POLL:?} instead"
        );
        poll(self.shared.clone(), self.publisher.clone(), id.to_string());
    }

    /// Stops watching container `id` (its init exited, or it is deleted).
    pub fn forget(&self, id: &str) {
        if let Some(events) = &self.events {
            events.forget(id);
        }
    }
}

/// The "oom" thread: waits for notifications (and for due rechecks),
/// looks at the count of each container notified.
fn wait_for_events(notifiers: &Notifiers, shared: &Shared, publisher: &Publisher) {
    let mut ready = [EpollEvent::empty(); 32];
    let mut rechecks = Rechecks::default();
    loop {
        let timeout = rechecks
            .next_wait(Instant::now())
            .map_or(EpollTimeout::NONE, |wait| {
                EpollTimeout::try_from(wait).unwrap_or(EpollTimeout::MAX)
            });
        let n = match notifiers.epoll.wait(&mut ready, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::error!("the OOM event thread ends: epoll_wait: {e}");
                return;
            }
        };
        for event in &ready[..n] {
            let notified = match notifiers.registered.lock() {
                Ok(registered) => registered
                    .by_token
                    .get(&event.data())
                    .map(|(id, notifier)| {
                        // Level-triggered: drained now, or it wakes the wait again at once.
                        if let Err(e) = notifier.drain() {
                            log::warn!("read the OOM notifier of {id}: {e}");
                        }
                        id.clone()
                    }),
                Err(_) => return,
            };
            if let Some(id) = notified {
                let checked = check(shared, publisher, &id);
                if !checked.running {
                    notifiers.forget(&id);
                }
                rechecks.notified(&id, checked, Instant::now());
            }
        }
        for id in rechecks.due(Instant::now()) {
            let checked = check(shared, publisher, &id);
            if !checked.running {
                notifiers.forget(&id);
            }
            rechecks.looked(&id, checked, Instant::now());
        }
    }
}

/// The containers notified whose kill is not counted yet: when to look
/// again and how many looks are left.
#[derive(Debug, Default)]
struct Rechecks(HashMap<String, (Instant, u32)>);

impl Rechecks {
    /// After a notification: look again soon unless this look settled it.
    fn notified(&mut self, id: &str, checked: Checked, now: Instant) {
        if checked.running && !checked.published {
            self.0.insert(id.to_string(), (now + RECHECK, RECHECKS));
        } else {
            self.0.remove(id);
        }
    }

    /// After a recheck: the next one, or none once settled or out of looks.
    fn looked(&mut self, id: &str, checked: Checked, now: Instant) {
        let left = self.0.get(id).map_or(0, |(_, left)| left.saturating_sub(1));
        if checked.running && !checked.published && left > 0 {
            self.0.insert(id.to_string(), (now + RECHECK, left));
        } else {
            self.0.remove(id);
        }
    }

    /// The containers whose recheck is due.
    fn due(&self, now: Instant) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How long the epoll may wait: until the first recheck (rounded up to
    /// epoll's milliseconds), or for ever without one.
    fn next_wait(&self, now: Instant) -> Option<Duration> {
        let first = self.0.values().map(|(at, _)| *at).min()?;
        let wait = first.saturating_duration_since(now);
        Some(if wait.is_zero() {
            wait
        } else {
            wait.max(Duration::from_millis(1)) + Duration::from_micros(999)
        })
    }
}

/// The fallback for a container without a notifier: its count read every
/// `POLL` until its init exits (or it is deleted).
fn poll(shared: Shared, publisher: Arc<Publisher>, id: String) {
    let spawned = std::thread::Builder::new()
        .name("oom-poll".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if !check(&shared, &publisher, &id).running {
                break;
            }
        });
    if let Err(e) = spawned {
        log::warn!("no OOM events for this container: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTHING_YET: Checked = Checked {
        running: true,
        published: false,
    };
    const PUBLISHED: Checked = Checked {
        running: true,
        published: true,
    };
    const EXITED: Checked = Checked {
        running: false,
        published: false,
    };

    #[test]
    fn a_notification_without_a_counted_kill_is_looked_at_again_until_the_looks_run_out() {
        let now = Instant::now();
        let mut rechecks = Rechecks::default();
        assert_eq!(
            rechecks.next_wait(now),
            None,
            "nothing to recheck: wait for ever"
        );
        rechecks.notified("c1", NOTHING_YET, now);
        assert!(rechecks.due(now).is_empty());
        let wait = rechecks.next_wait(now).unwrap();
        assert!(
            wait >= RECHECK && wait < RECHECK + Duration::from_millis(2),
            "{wait:?}"
        );
        let mut at = now;
        for _ in 0..RECHECKS {
            at += RECHECK;
            assert_eq!(rechecks.due(at), ["c1"]);
            rechecks.looked("c1", NOTHING_YET, at);
        }
        assert_eq!(
            rechecks.next_wait(at),
            None,
            "looked more than {RECHECKS} times"
        );
    }

    #[test]
    fn a_counted_kill_or_an_exit_ends_the_rechecks() {
        let now = Instant::now();
        let mut rechecks = Rechecks::default();
        rechecks.notified("c1", PUBLISHED, now);
        assert_eq!(rechecks.next_wait(now), None, "published at once");
        rechecks.notified("c1", NOTHING_YET, now);
        rechecks.notified("c2", NOTHING_YET, now);
        rechecks.looked("c1", PUBLISHED, now + RECHECK);
        rechecks.looked("c2", EXITED, now + RECHECK);
        assert_eq!(rechecks.next_wait(now), None);
        assert_eq!(rechecks.next_wait(now + RECHECK * 100), None);
    }
}
