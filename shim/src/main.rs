//! `containerd-shim-berth-v2`: containerd's task service (runtime v2
//! shim API) over the Berth library, as `io.containerd.berth.v2`.
//!
//! containerd runs this binary with `start` to launch the long-lived shim
//! of a container (or to name the running shim of its pod: `grouping`),
//! which serves the task API over ttrpc; with `delete` to clean up after a
//! shim that died. The library's `create` and `exec` run in a
//! single-threaded forker process (`forker`), never in the threaded shim;
//! docs/shim.md has the design.

mod console;
mod events;
mod forker;
mod grouping;
mod logger;
mod oom;
mod options;
mod options_file;
mod pipes;
mod process;
mod rootfs;
mod service;
mod serving;
mod shim_cgroup;
mod stats;
mod stdio;
mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim as shim;
use shim::{publisher::RemotePublisher, Config, DeleteResponse, ExitSignal, Flags};

/// The runtime name containerd knows this shim by.
const RUNTIME_ID: &str = "io.containerd.berth.v2";

/// Where container state lives unless the runtime options name a root
/// (`ctr run --runc-root` with the runc shim's options type) or
/// `BERTH_SHIM_ROOT` (in containerd's environment) does:
/// `<root>/<namespace>/<id>`, as the runc shim.
const DEFAULT_ROOT: &str = "/run/containerd/berth";

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == forker::FORKER_ARG)
    {
        return forker::serve();
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == logger::LOGGER_ARG)
    {
        return logger::trampoline();
    }
    if serves() {
        forker::fork_early();
        // One malloc arena, not one per thread that allocates: the shim's
        // threads mostly wait, and each arena keeps 132 KiB or more resident.
        // SAFETY: mallopt(3) before any thread exists.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
    shim::run::<Shim>(RUNTIME_ID, None);
    std::process::ExitCode::SUCCESS
}

/// Whether this is the serving shim (containerd's `start` runs it with
/// `-socket`), not the short `start` or `delete` command.
fn serves() -> bool {
    let mut args = std::env::args_os().skip(1);
    args.any(|a| a == "-socket" || a == "--socket")
        && !std::env::args_os()
            .last()
            .is_some_and(|a| a == "start" || a == "delete")
}

/// The shim process of one container, or of all the containers of a pod.
struct Shim {
    namespace: String,
    id: String,
    /// The ttrpc socket this shim serves (`-socket`), when serving.
    socket: String,
    exit: Arc<ExitSignal>,
}

impl shim::Shim for Shim {
    type T = service::Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Shim {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            socket: args.socket.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    /// Starts the shim of the container's group (its pod), or names the
    /// one already running (`grouping.rs`).
    fn start_shim(&mut self, opts: shim::StartOpts) -> shim::Result<String> {
        let grouping = grouping::group_of(Path::new("config.json"), &opts.id);
        let address = shim::socket_address(&opts.address, &opts.namespace, &grouping);
        if grouping::is_served(&address) {
            shim::util::write_address(&address)?;
            return Ok(address);
        }
        // Two containers of a new group started at once both get here; the
        // one that finds the socket bound and answering names that shim.
        let pid = match serving::fork_serving(&opts, &address)? {
            Some(serving::Started::Forked(pid)) => Some(pid),
            Some(serving::Started::AlreadyServed) => None,
            // This process has a thread: the crate's `spawn` executes the
            // serving shim instead (its own serving shim does the same
            // check of the socket).
            None => Some(shim::spawn(opts, &grouping, Vec::new())?.0),
        };
        if let Some(pid) = pid {
            if let Err(e) = adjust_oom_score(pid) {
                log::warn!("oom_score_adj of the shim: {e}");
            }
        }
        shim::util::write_address(&address)?;
        Ok(address)
    }

    /// After the shim exited (containerd runs this after every task) or
    /// died: force-delete the container if anything of it is left, and
    /// unmount its rootfs. The working directory is the bundle.
    fn delete_shim(&mut self) -> shim::Result<DeleteResponse> {
        let bundle = std::env::current_dir().map_err(|e| shim::Error::Other(e.to_string()))?;
        let root = state_root(&bundle, &self.namespace);
        // containerd runs this after every task's shim has exited, with the
        // container long deleted: then there is nothing for a forker to do,
        // and `ctr run --rm` waits for this command.
        if berth::container::exists(&root, &self.id).is_ok_and(|exists| !exists) {
            return Ok(self.after_delete(&bundle));
        }
        // In a forker too: this process has the crate's reaper thread as
        // well, and delete runs poststop hooks.
        let request = forker::Request::Delete {
            root,
            id: self.id.clone(),
            force: true,
        };
        let deleted = forker::Forker::spawn()
            .map_err(|e| e.to_string())
            .and_then(|mut f| {
                f.call(&request, &[None, None, None])
                    .map_err(|e| e.to_string())
            })
            .and_then(|reply| reply);
        if let Err(e) = deleted {
            log::warn!("delete of {} after the shim: {e}", self.id);
        }
        Ok(self.after_delete(&bundle))
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    /// The crate's publisher is dropped for one of our own (`events.rs`
    /// says why), on a connection of its own to the same address.
    fn create_task_service(&self, crate_publisher: RemotePublisher) -> Self::T {
        drop(crate_publisher);
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        let publisher = match events::Publisher::connect(&address, self.namespace.clone()) {
            Ok(publisher) => publisher,
            Err(e) => {
                // Without it no exit would ever reach containerd.
                log::error!("cannot publish events: {e}");
                std::process::exit(1);
            }
        };
        service::Service::new(
            self.namespace.clone(),
            self.socket.clone(),
            publisher,
            self.exit.clone(),
        )
    }
}

impl Shim {
    /// The end of the `delete` command: the rootfs unmounted, a dead shim's
    /// socket removed, and the exit containerd records for a task whose shim
    /// died (SIGKILL's, as the runc shim answers).
    fn after_delete(&self, bundle: &Path) -> DeleteResponse {
        if let Err(e) = shim::mount::umount_recursive(bundle.join("rootfs").to_str(), 0) {
            log::warn!("unmount of the rootfs of {}: {e}", self.id);
        }
        // A killed shim leaves its socket (the runc shim's too); the address
        // file in the bundle names it.
        if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
            serving::remove_if_dead(address.trim());
        }
        DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: shim::util::timestamp().ok().into(),
            ..Default::default()
        }
    }
}

/// Makes the shim `pid` one step likelier to be OOM-killed than containerd
/// (this process's parent), as the runc shim does: under memory pressure a
/// shim goes before containerd. Its containers inherit it unless their
/// config sets `process.oomScoreAdj`.
fn adjust_oom_score(pid: u32) -> std::io::Result<()> {
    let parent = std::os::unix::process::parent_id();
    let score: i32 = std::fs::read_to_string(format!("/proc/{parent}/oom_score_adj"))?
        .trim()
        .parse()
        .map_err(std::io::Error::other)?;
    let adjusted = (score + 1).min(1000);
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), adjusted.to_string())
}

/// The state root of the containers of `namespace`: the runtime options'
/// root (written to the bundle at create), `BERTH_SHIM_ROOT` or the
/// default, then the namespace.
fn state_root(bundle: &Path, namespace: &str) -> PathBuf {
    let root = shim::util::read_options(bundle)
        .ok()
        .map(|options| options.root)
        .filter(|root| !root.is_empty())
        .or_else(|| std::env::var("BERTH_SHIM_ROOT").ok())
        .unwrap_or_else(|| DEFAULT_ROOT.to_string());
    Path::new(&root).join(namespace)
}
