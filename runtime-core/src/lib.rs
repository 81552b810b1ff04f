//! Berth: an OCI container runtime library.
//!
//! It turns an OCI bundle (a directory with a `config.json` and a root
//! filesystem) into an isolated process, and manages that process through
//! the lifecycle of the [OCI runtime spec]: [`create()`], then the
//! [`Container`] handle's [`start`](Container::start),
//! [`state`](Container::state), [`kill`](Container::kill) and
//! [`delete`](Container::delete). The `berth` binary (runc's command line)
//! is a thin layer over this crate; everything it does, a program linking
//! the crate can do.
//!
//! # The API
//!
//! | call | what it does |
//! |---|---|
//! | [`create()`] with [`CreateOptions`] | validate the bundle, make the namespaces, cgroup and rootfs, and leave the container's init blocked before the user's program |
//! | [`Container::load`] | the handle of an existing container, by state root and id |
//! | [`Container::start`] | let the init exec the user's program |
//! | [`Container::state`], [`Container::status`], [`Container::pids`] | inspect: the OCI state, the status (derived every time, never stored), the processes |
//! | [`Container::kill`] (with a [`Signal`]), [`Container::pause`], [`Container::resume`], [`Container::update`], [`Container::stats`] | act on a running container |
//! | [`Container::delete`], [`container::delete`] | remove it: cgroup, state, poststop hooks |
//! | [`container::list`] | the state of every container in a state root |
//! | [`exec::exec`] | another process in a running container; it comes back with a pidfd and [`wait`](exec::ExecProcess::wait) |
//! | [`Stdio`] ([`CreateOptions::stdin`], `stdout`, `stderr`; the same on [`exec::ExecOptions`]) | the process's stdin, stdout and stderr as descriptors of the caller's (pipes), instead of the caller's own |
//! | [`Container::pidfd`], [`Container::wait`] | the init's pidfd (poll it, signal it); its [`ExitStatus`], for the caller of `create`, with no change to its signal mask |
//! | [`run()`] | create, start, wait, delete in one call: the exit code as `runc run` gives it |
//! | [`foreground`] | stay the init's parent: forward signals, wait, get the exit code |
//! | [`spec::load`], [`spec::check`], [`spec::default_spec`] | read and validate a bundle's config, or check one built in memory (for [`CreateOptions::spec`]); runc's default config |
//! | [`features::features`] | what this build recognises (`berth features`) |
//!
//! Pids are [`Pid`]s (nix's); the config types are those of [`oci_spec`],
//! re-exported so that a caller builds them with Berth's version. What is
//! not listed here, and not reachable from it, is internal.
//!
//! Every failure is an [`Error`] value; nothing panics on bad input (a bad
//! config, a missing bundle, an unknown id, a container in the wrong state).
//!
//! # The lifecycle
//!
//! ```
//! use berth::{Container, CreateOptions, Status};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // Runs for real where it can (root, /bin/busybox); elsewhere it stops here.
//! # let Some((bundle, root)) = doc_bundle()? else { return Ok(()) };
//! // `bundle` holds config.json (process: `sh -c 'exit 7'`) and rootfs/;
//! // `root` is the state root (runc's `--root`).
//! let id = format!("doc-{}", std::process::id());
//! # let _cleanup = Cleanup(root.clone(), id.clone());
//! // The init will be this process's child: queue signals for the wait below.
//! // Until `_signals` is dropped (the end of this example).
//! let _signals = berth::foreground::prepare(false)?;
//! // Forks: call it from a single-threaded process.
//! let mut container = berth::create(&CreateOptions::new(&root, &id, &bundle))?;
//! assert_eq!(container.status(), Status::Created);
//!
//! // A handle takes the container's lock only for each change it makes
//! // (start, pause, resume, update, delete): a second one can act while
//! // the first lives.
//! let mut other = Container::load(&root, &id)?;
//! other.pause()?;
//! assert_eq!(container.status(), Status::Paused);
//! other.resume()?;
//!
//! // A process run in the container's pid namespace (exec joins it for its
//! // child); this process's own namespace for children is put back after.
//! // It is the container's process as create recorded it (user, env,
//! // capabilities, seccomp, ...), running other arguments.
//! let options = berth::exec::ExecOptions::for_container(&container, vec!["true".into()])?;
//! let exec = berth::exec::exec(&container, &options)?;
//! assert_eq!(exec.wait()?, berth::ExitStatus::Exited(0)); // by its pidfd
//! let ns = |name: &str| std::fs::read_link(format!("/proc/self/ns/{name}"));
//! assert_eq!(ns("pid_for_children")?, ns("pid")?);
//!
//! container.start()?; // a failed poststart hook fails it, and stops the container
//! // Another process (or this one later) finds it by id, and may read it
//! // or act on it while this handle lives: the lock is taken per change.
//! let seen = Container::load(&root, &id)?.state();
//! assert_eq!(seen.id, id);
//! // The program may already have exited: then the state's pid is 0.
//! assert!(seen.pid == container.pid().as_raw() || seen.status == Status::Stopped);
//!
//! let code = berth::foreground::forward_until_exit(container.pid(), container.take_console())?;
//! assert_eq!(code, 7);
//! assert_eq!(container.status(), Status::Stopped);
//! container.delete(false)?;
//! assert!(berth::container::list(&root)?.is_empty());
//! # Ok(())
//! # }
//! #
//! # /// Removes the container and the scratch directory even when an assertion fails.
//! # struct Cleanup(std::path::PathBuf, String);
//! # impl Drop for Cleanup {
//! #     fn drop(&mut self) {
//! #         let _ = berth::container::delete(&self.0, &self.1, true);
//! #         let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
//! #     }
//! # }
//! #
//! # /// A busybox bundle and a state root in a scratch directory.
//! # fn doc_bundle() -> std::io::Result<Option<(std::path::PathBuf, std::path::PathBuf)>> {
//! #     let busybox = std::path::Path::new("/bin/busybox");
//! #     if !nix::unistd::geteuid().is_root() || !busybox.exists() {
//! #         eprintln!("note: the lifecycle example needs root and /bin/busybox; not run");
//! #         return Ok(None);
//! #     }
//! #     let dir = std::env::temp_dir().join(format!("berth-doc-lifecycle-{}", std::process::id()));
//! #     let bundle = dir.join("bundle");
//! #     std::fs::create_dir_all(bundle.join("rootfs/bin"))?;
//! #     std::fs::copy(busybox, bundle.join("rootfs/bin/busybox"))?;
//! #     std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/sh"))?;
//! #     std::os::unix::fs::symlink("busybox", bundle.join("rootfs/bin/true"))?;
//! #     let mut config = serde_json::to_value(berth::spec::default_spec(false))?;
//! #     config["process"]["terminal"] = false.into();
//! #     config["process"]["args"] = serde_json::json!(["sh", "-c", "exit 7"]);
//! #     std::fs::write(bundle.join("config.json"), config.to_string())?;
//! #     Ok(Some((bundle, dir.join("state"))))
//! # }
//! ```
//!
//! `runtime-core/examples/lifecycle.rs` is the same as a program that runs
//! (and the conformance suite runs it on a real bundle);
//! `runtime-core/examples/embed.rs` embeds Berth as an engine would: stdio
//! on pipes, an exec with the container's seccomp profile, waits on pidfds,
//! and [`run()`].
//!
//! # Errors
//!
//! [`Error`] has one variant per concern (the bundle's config, the state
//! store, cgroups, namespaces, ...) wrapping that concern's own error, and
//! one per refusal of the lifecycle (start a stopped container, delete a
//! running one). Their messages are runc's where engines match on them. A
//! failure inside the container's process while it sets itself up is
//! [`Error::Init`] with a [`ChildError`]: the [`ChildStep`] that failed,
//! the errno, the config field and the path.
//!
//! ```
//! use berth::{CreateOptions, Error, StateError, SpecError};
//!
//! let root = std::env::temp_dir().join(format!("berth-doc-errors-{}", std::process::id()));
//! // A bad id is refused before anything is touched.
//! let bad_id = berth::create(&CreateOptions::new(&root, "../escape", "/nonexistent"));
//! assert!(matches!(bad_id, Err(Error::State(StateError::InvalidId(_)))));
//! // A bundle without a config.json.
//! let no_bundle = berth::create(&CreateOptions::new(&root, "c1", "/nonexistent/bundle"));
//! match no_bundle {
//!     Err(Error::Spec(SpecError::ConfigNotFound { path })) => {
//!         assert_eq!(path, std::path::Path::new("/nonexistent/bundle/config.json"));
//!     }
//!     other => panic!("expected ConfigNotFound, got {other:?}"),
//! }
//! // Nothing was made: no state directory for the id.
//! assert!(!root.join("c1").exists());
//! ```
//!
//! # Forking and threads
//!
//! [`create()`], [`exec::exec`] and [`checkpoint::restore`] fork (clone3)
//! the container's process, which runs this program's code until it execs
//! the user's program. A fork of a threaded process may deadlock on a lock
//! another thread held, so from a process with more than one thread they
//! refuse with [`Error::Threaded`] before anything exists. A threaded
//! program (a tokio one) starts a small single-threaded helper process
//! first, which links this crate and creates and execs on its behalf, or
//! runs the `berth` binary. The child is made non-dumpable
//! before it enters the container's namespaces, so nothing in the container
//! can open this program's binary through `/proc/<pid>/exe` and overwrite it
//! (CVE-2019-5736): the caller is non-dumpable for the fork and gets its
//! flag back after it, unless
//! [`leave_caller_non_dumpable`](CreateOptions::leave_caller_non_dumpable).
//! Nothing else of the caller's changes unless it asks:
//! [`foreground::prepare`]'s guard puts back the signal mask and the
//! subreaper flag, and dying with the caller is an option of each call
//! ([`CreateOptions::die_with_caller`]).
//!
//! The init is a child of the process that called [`create()`]. A process that
//! stays alive should reap it when it exits, as
//! [`foreground::forward_until_exit`] does (call [`foreground::prepare`]
//! before [`create()`] so signals queue for it); one that exits leaves the init
//! to its subreaper or to pid 1, as `berth create` does.
//!
//! A [`Container`] handle does not hold the container's lock between calls:
//! [`create()`] releases it before it returns, each change (`start`, `pause`,
//! `resume`, `update`, `checkpoint`, `delete`) takes it for its own duration,
//! and reads and `kill` take none, so several handles (and other processes)
//! can act on one container in turn. [`create()`] and [`exec::exec`] may join
//! a pid or time namespace for their child; the caller's own namespaces *for
//! children* are put back afterwards.
//! docs/architecture.md ("The library API") has the whole list.
//!
//! # Features
//!
//! - `tracing` (off by default): a [`tracing`](https://docs.rs/tracing)
//!   span for each call of [`create()`] (and inside it one per phase:
//!   `validate`, `claim`, `prepare`, `spawn`, `handoff.let_go`,
//!   `commit.stage`, `handoff.until_ready`, `commit`), [`Container::start`],
//!   [`exec::exec`], [`Container::delete`] and [`checkpoint::restore`], each
//!   with the container's `id`, so an engine sees where a slow start went.
//!   Turn it on with `berth = { ..., features = ["tracing"] }` and install a
//!   subscriber that writes from the calling thread: these calls fork and
//!   refuse a caller with more than one thread. Off, the spans are not
//!   compiled at all (no dependency, no code).
//! - `fault-injection`: for the conformance suite's debug build only (`BERTH_FAULT_STOP_AT`, in `sys/fault.rs`).
//!
//! [OCI runtime spec]: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md

#![warn(missing_docs)]
// A type the API hands out must be one a caller can name (the fuzz
// targets' back door, `fuzzing`, hands out internal ones).
#![cfg_attr(not(feature = "fuzzing"), warn(unnameable_types))]

// First: its span macros are used throughout (textual scope).
#[macro_use]
mod trace;

// The layout is the architecture (docs/architecture.md, "Layout of
// runtime-core"): each group may use the groups below it, never one above,
// and no two modules use each other, which `scripts/check-layers` checks.
// Top to bottom:
//   lifecycle  the calls a caller makes (create, the Container handle, exec,
//              checkpoint, events, foreground) and the crate's `Error`
//   init       the container's side of create and exec: init, waiter,
//              the sync channel, the child's structured errors
//   hooks      running the config's hooks
//   state      what lives between calls: the state directory, the start
//              barrier, the cgroup plan, the recorded config, list
//   process    the process's settings: capabilities, seccomp, rlimits,
//              scheduling, affinity, memory policy, keyring, console
//   isolation  namespaces, the root filesystem, network devices, LSM labels
//   cgroups    cgroup drivers, resources, stats, freezer, devices
//   spec       config.json: loading, validation, runc's default
//   sys        thin syscall wrappers and host facts (pidfds, openat2 and the
//              mount API, host files, procfs, stop signals, signals, fault
//              points)
#[allow(missing_docs)]
pub(crate) mod cgroups;
#[allow(missing_docs)]
pub(crate) mod hooks;
pub(crate) mod init;
pub(crate) mod isolation;
pub(crate) mod lifecycle;
pub(crate) mod process;
pub mod spec;
pub mod state;
pub(crate) mod sys;

// The API: each of these modules is documented as such.
pub use lifecycle::{
    checkpoint, container, create, error, events, exec, features, foreground, notify,
};
pub use sys::{host_file, host_userns};

// What the fuzz targets (fuzz/) reach past the API, with the `fuzzing`
// feature only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// The oci-spec crate Berth's API speaks ([`spec::Spec`], the resources of
/// [`Container::update`]): a caller that builds a config uses this one, so
/// that its version is always Berth's.
pub use oci_spec;

pub use init::stdio::{Stdio, StdioError};
pub use lifecycle::container::Container;
pub use lifecycle::create::{create, CreateOptions};
pub use lifecycle::error::{Error, Result};
pub use lifecycle::features::Features;
pub use lifecycle::run::run;
pub use lifecycle::wait::ExitStatus;
/// A host process id, as [`Container::pid`], [`Container::pids`] and
/// [`exec::ExecProcess`] give it (nix's, which nix's `waitpid` takes).
pub use nix::unistd::Pid;
pub use spec::SpecError;
pub use state::{ContainerState, StateError, Status};
pub use sys::signal::{Signal, SignalError};

/// The errors [`Error`] wraps, so that a caller can name and match them.
pub use cgroups::systemd::SystemdError;
pub use cgroups::{CgroupError, LateEntryError, OomNotifierError, ResourceError, StatsError};
pub use cgroups::{OomCounter, OomNotifier, Stats};
pub use hooks::{HookError, HookKind};
pub use init::child_error::{ChildError, ChildStep};
pub use isolation::lsm::LsmError;
pub use isolation::namespaces::NamespaceError;
pub use isolation::net_devices::NetDeviceError;
pub use isolation::rootfs::{CopyError, RootfsError};
pub use lifecycle::notify::{NotifyError, NotifyRelay};
pub use process::capabilities::CapabilityError;
pub use process::memory_policy::MemoryPolicyError;
pub use process::scheduling::SchedulingError;
pub use process::seccomp::SeccompError;
pub use process::ProcessError;
pub use state::barrier::BarrierError;
pub use sys::host_file::HostFileError;
pub use sys::pidfd::PidfdError;
pub use sys::procfs::ProcfsError;

/// The host's cgroup hierarchies as the library reads them (each once, by
/// its mountpoint and whether it is cgroup2): for a caller that moves its
/// own processes, as Berth's containerd shim does for runc's `ShimCgroup`.
pub mod hierarchy {
    pub use crate::cgroups::{hierarchies, Hierarchy};
}

/// The parts of [`Stats`], the resource usage [`Container::stats`] reads
/// and `runc events --stats` prints (runc's `types.Stats`).
pub mod stats {
    pub use crate::cgroups::stats::{
        Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry, Pids,
        Stats, Throttling,
    };
}
