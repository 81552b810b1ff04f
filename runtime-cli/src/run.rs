//! `start` and `run`: the commands that let a container go, and relay its
//! sd_notify READY to the caller's `NOTIFY_SOCKET` (see berth's `notify`).

use crate::{args, container, create_options, fds, state_root, warn_all, Error, Failure, Logger};
use args::GlobalOpts;
use berth::NotifyRelay;
use std::path::Path;

/// `start`: let the container go; with NOTIFY_SOCKET, wait for its READY and pass it on.
pub(crate) fn start_container(root: &Path, id: &str) -> Result<i32, Failure> {
    let mut container = berth::Container::load(root, id)?;
    let relay = bind_notify_relay(&container)?;
    container.start()?;
    if let Some(relay) = relay {
        relay
            .relay(&container, container.pid())
            .map_err(Error::from)?;
    }
    Ok(0)
}

/// `run`: create and start; in the foreground, wait with signals forwarded,
/// exit with the container's code, and delete it unless `--keep`.
pub(crate) fn run_container(
    global: &GlobalOpts,
    args: &args::RunArgs,
    logger: &Logger,
    passed: &fds::Passed,
) -> Result<i32, Failure> {
    let root = state_root(global);
    let id = args.create.id.clone();
    if args.create.detach {
        let mut created = berth::create(&create_options(global, &args.create, true, passed)?)?;
        let relay = bind_notify_relay(&created).and_then(|relay| {
            created.start()?;
            Ok(relay)
        });
        match relay {
            Ok(relay) => {
                // The container runs: a relay that fails is only worth a warning (runc ignores it).
                if let Some(Err(e)) = relay.map(|r| r.relay(&created, created.pid())) {
                    logger.warn(&e.to_string());
                }
            }
            Err(e) => {
                let _ = container::delete(&root, &id, true);
                return Err(e);
            }
        }
        return Ok(0);
    }
    // Blocked for the rest of berth's life, which ends with the container's.
    berth::foreground::prepare(!args.no_subreaper)?.leave_in_place();
    let mut created = berth::create(&create_options(global, &args.create, false, passed)?)?;
    let console = created.take_console();
    if let Some(master) = &console {
        berth::foreground::follow_caller_size(std::os::fd::AsFd::as_fd(master));
    }
    let relay = match bind_notify_relay(&created) {
        Ok(relay) => relay,
        Err(e) => {
            drop(created);
            let _ = container::delete(&root, &id, true);
            return Err(e);
        }
    };
    let mut relaying = None;
    let outcome = created.start().and_then(|()| {
        if let Some(relay) = relay {
            // Berth stays in the foreground: it is the main pid systemd
            // watches, and it relays beside forwarding signals and waiting.
            let main_pid = berth::Pid::this();
            let (root, id) = (root.clone(), id.clone());
            relaying = Some(std::thread::spawn(move || {
                let container = berth::Container::load(&root, &id)?;
                relay.relay(&container, main_pid).map_err(Error::from)
            }));
        }
        berth::foreground::forward_until_exit(created.pid(), console)
    });
    drop(created);
    // The relay ends once the container has stopped (or READY is passed
    // on); it must be over before `delete` forks the poststop hooks.
    if let Some(Ok(Err(e))) = relaying.map(std::thread::JoinHandle::join) {
        logger.warn(&e.to_string());
    }
    if outcome.is_err() || !args.keep {
        match container::delete(&root, &id, true) {
            Ok(warnings) => warn_all(logger, warnings),
            Err(e) => logger.warn(&format!("delete container {id} after run: {e}")),
        }
    }
    Ok(outcome?)
}

/// The caller's sd_notify socket (systemd's `NOTIFY_SOCKET`), as runc reads it.
pub(crate) fn host_notify_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Bind the container's notify socket before it starts, when the caller has one.
fn bind_notify_relay(container: &berth::Container) -> Result<Option<NotifyRelay>, Failure> {
    match host_notify_socket() {
        Some(host) => Ok(NotifyRelay::bind(container.state_dir(), &host).map_err(Error::from)?),
        None => Ok(None),
    }
}
