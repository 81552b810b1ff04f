//! The shim's table of its containers (one, or all of a pod's: docs/shim.md,
//! "One shim per pod"), keyed by id, each with its processes (its init and
//! the exec'd ones), and the thread that records their exits and tells
//! containerd.
//!
//! The shim is the processes' child subreaper: containerd-shim's reaper
//! thread reaps them and posts (pid, status) on its exit monitor, and
//! [`watch_exits`] matches the pid to a process of one of the containers. A process may exit
//! before the shim learns its pid (the forker's reply is still on its
//! way): its exit waits in `unclaimed` until [`Table::claim`].

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim as shim;
use shim::monitor::{monitor_subscribe, Subject, Topic};
use shim::protos::events::task::TaskExit;
use shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use crate::events::Publisher;
use crate::stdio::StdioPaths;

/// How a process ended: its exit code (128 + signal when killed), when.
#[derive(Debug, Clone)]
pub struct Exited {
    pub status: u32,
    pub at: Timestamp,
}

/// The init or an exec'd process.
#[derive(Debug, Default)]
pub struct Process {
    /// 0 until it runs.
    pub pid: i32,
    pub stdio: StdioPaths,
    /// An exec'd process's spec, until it is started.
    pub spec: Option<oci_spec::runtime::Process>,
    pub exited: Option<Exited>,
    /// The pty's master, with a terminal.
    pub console: Option<std::os::fd::OwnedFd>,
    /// The logging program of a `binary://` log URI, ended at Delete.
    pub logger: Option<crate::logger::Logger>,
}

/// One container of the shim.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    /// The library's state root (`<root>/<namespace>`).
    pub root: PathBuf,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// The OOM kills already announced (`oom.rs`).
    pub oom_kills: u64,
    /// The checkpoint image the init is restored from at Start (a create
    /// from a checkpoint makes nothing until then, as the runc shim's).
    pub restore_from: Option<PathBuf>,
    /// Who owns its processes' stdio pipes (the runc options' `io_uid`,
    /// `io_gid`).
    pub io_owner: crate::pipes::Owner,
}

impl Container {
    /// The init for an empty `exec_id`, else that exec'd process.
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }
}

/// What the service's calls and the exit thread share.
#[derive(Debug, Default)]
pub struct Table {
    /// By container id.
    pub containers: HashMap<String, Container>,
    /// Set by the Shutdown that ends the shim: a create that comes after it
    /// (its `start` named this shim just before) is refused, not left to
    /// die with the shim.
    pub closing: bool,
    /// Exits of pids not (yet) in the table.
    unclaimed: HashMap<i32, Exited>,
    /// The logging programs not yet exited: their exits are no process's
    /// (nor left among the unclaimed for a later process of the same pid).
    /// Added as soon as spawned, before they can exit.
    pub loggers: HashSet<i32>,
}

/// Bounds `unclaimed`: exits of processes that are not the container's
/// (orphans of a container sharing the host's pid namespace) never get
/// claimed.
const MAX_UNCLAIMED: usize = 1024;

impl Table {
    /// Records that container `id`'s process `exec_id` runs as `pid` (with
    /// the master of its terminal and its logger, if any); if it already
    /// exited, returns its exit for the caller to announce. A logger with
    /// no process to keep it (the container is gone) is given back.
    pub fn claim(
        &mut self,
        id: &str,
        exec_id: &str,
        pid: i32,
        console: Option<std::os::fd::OwnedFd>,
        logger: Option<crate::logger::Logger>,
    ) -> (Option<Exited>, Option<crate::logger::Logger>) {
        let exited = self.unclaimed.remove(&pid);
        let Some(process) = self
            .containers
            .get_mut(id)
            .and_then(|c| c.process_mut(exec_id))
        else {
            return (None, logger);
        };
        process.pid = pid;
        process.console = console;
        process.logger = logger;
        process.exited = exited.clone();
        (exited, None)
    }

    /// The id of the container whose init, not yet exited, is `pid`.
    fn running_init(&self, pid: i32) -> Option<String> {
        self.containers
            .values()
            .find(|c| c.init.pid == pid && c.init.exited.is_none())
            .map(|c| c.id.clone())
    }

    /// Records the exit of `pid`; the TaskExit event for it if it is one
    /// of a container's processes.
    fn exited(&mut self, pid: i32, exited: Exited) -> Option<TaskExit> {
        if self.loggers.remove(&pid) {
            return None;
        }
        let found = self.containers.values_mut().find_map(|c| {
            let id = c.id.clone();
            std::iter::once((id.clone(), &mut c.init))
                .chain(c.execs.iter_mut().map(|(e, p)| (e.clone(), p)))
                .find(|(_, p)| p.pid == pid && p.exited.is_none())
                .map(|(exec_id, p)| {
                    p.exited = Some(exited.clone());
                    (id, exec_id)
                })
        });
        match found {
            Some((container_id, exec_id)) => {
                Some(exit_event(&container_id, &exec_id, pid, &exited))
            }
            None => {
                if self.unclaimed.len() >= MAX_UNCLAIMED {
                    self.unclaimed.clear();
                }
                self.unclaimed.insert(pid, exited);
                None
            }
        }
    }
}

/// The TaskExit event: `id` is the container's id for the init, else the
/// exec id.
pub fn exit_event(container_id: &str, id: &str, pid: i32, exited: &Exited) -> TaskExit {
    TaskExit {
        container_id: container_id.to_string(),
        id: id.to_string(),
        pid: pid as u32,
        exit_status: exited.status,
        exited_at: Some(exited.at.clone()).into(),
        ..Default::default()
    }
}

/// The table with the condition variable `Wait` blocks on.
pub type Shared = Arc<(Mutex<Table>, Condvar)>;

/// Subscribes to the reaper's exits (now, before any process exists) and
/// starts the thread that records them and publishes TaskExit.
pub fn watch_exits(
    shared: Shared,
    publisher: Arc<Publisher>,
    oom: Arc<crate::oom::Watch>,
) -> std::io::Result<()> {
    let subscription = monitor_subscribe(Topic::Pid).map_err(std::io::Error::other)?;
    std::thread::Builder::new()
        .name("exits".into())
        .spawn(move || {
            while let Ok(event) = subscription.rx.recv() {
                let Subject::Pid(pid) = event.subject else {
                    continue;
                };
                let exited = Exited {
                    status: event.exit_code as u32,
                    at: shim::util::timestamp().unwrap_or_default(),
                };
                let (lock, changed) = &*shared;
                let init_of = match lock.lock() {
                    Ok(table) => table.running_init(pid),
                    Err(_) => return,
                };
                if let Some(id) = init_of {
                    // Before the exit is recorded: once Wait returns, containerd
                    // may delete the container, and its OOM count with it. The
                    // init's OOM kill, if that is how it ended, comes first.
                    crate::oom::check(&shared, &publisher, &id);
                    oom.forget(&id);
                    kill_the_rest(&shared, &id);
                }
                let event = match lock.lock() {
                    Ok(mut table) => table.exited(pid, exited),
                    Err(_) => return,
                };
                changed.notify_all();
                if let Some(event) = event {
                    publisher.publish(event);
                }
            }
        })?;
    Ok(())
}

/// After the init's exit, SIGKILL to whatever of container `id` is left: in
/// a pid namespace of its own the kernel has killed it all already, but a
/// container sharing another's (or the host's) leaves the init's children
/// running, holding its stdio open (as the runc shim, which does the same).
fn kill_the_rest(shared: &Shared, id: &str) {
    let root = match shared.0.lock() {
        Ok(table) => table.containers.get(id).map(|c| c.root.clone()),
        Err(_) => None,
    };
    let Some(root) = root else {
        return;
    };
    let killed = berth::Container::load(&root, id).and_then(|c| c.kill(berth::Signal::KILL, true));
    if let Err(e) = killed {
        log::warn!("kill the rest of {id} after its init: {e}");
    }
}
