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
//! | [`Container::kill`], [`Container::pause`], [`Container::resume`], [`Container::update`], [`Container::stats`] | act on a running container |
//! | [`Container::delete`], [`container::delete`] | remove it: cgroup, state, poststop hooks |
//! | [`container::list`] | the state of every container in a state root |
//! | [`exec::exec`] | another process in a running container; it comes back with a pidfd and [`wait`](exec::ExecProcess::wait) |
//! | [`Stdio`] ([`CreateOptions::stdin`], `stdout`, `stderr`; the same on [`exec::ExecOptions`]) | the process's stdin, stdout and stderr as descriptors of the caller's (pipes), instead of the caller's own |
//! | [`Container::pidfd`], [`Container::wait`] | the init's pidfd (poll it, signal it); its [`ExitStatus`], for the caller of `create`, with no change to its signal mask |
//! | [`run()`] | create, start, wait, delete in one call: the exit code as `runc run` gives it |
//! | [`foreground`] | stay the init's parent: forward signals, wait, get the exit code |
//! | [`spec::load`], [`spec::default_spec`] | read and validate a bundle's config; runc's default config |
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
//! // Handles take the container's lock per call: a second one can act
//! // while the first lives.
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
//! nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(exec.pid), None)?;
//! let ns = |name: &str| std::fs::read_link(format!("/proc/self/ns/{name}"));
//! assert_eq!(ns("pid_for_children")?, ns("pid")?);
//!
//! container.start()?; // a failed poststart hook fails it, and stops the container
//! // Another process (or this one later) finds it by id, and may read it
//! // or act on it while this handle lives: the lock is taken per change.
//! let seen = Container::load(&root, &id)?.state();
//! assert_eq!(seen.id, id);
//! // The program may already have exited: then the state's pid is 0.
//! assert!(seen.pid == container.pid() || seen.status == Status::Stopped);
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
//! each change takes it for its own duration, so several handles (and other
//! processes) can act on one container in turn. [`create()`] and
//! [`exec::exec`] may join a pid or time namespace for their child; the
//! caller's own namespaces *for children* are put back afterwards.
//! docs/architecture.md ("The library API") has the whole list.
//!
//! [OCI runtime spec]: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md

#![warn(missing_docs)]

// Internal, but each has an error type `Error` wraps (re-exported below),
// whose variants are described by their messages.
pub(crate) mod affinity;
#[allow(missing_docs)]
pub(crate) mod barrier;
mod caller_effects;
mod cgroup_intent;
mod child_error;
// The fuzz targets (fuzz/) run create's checks on the parsed spec through
// these four; not part of the API.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod capabilities;
// Plumbing for the CLI (and `Error`'s cgroup variants); an embedder gets its
// types through the re-exports below.
#[doc(hidden)]
pub mod cgroups;
#[allow(missing_docs)]
pub mod checkpoint;
#[doc(hidden)]
pub mod console;
pub mod container;
mod container_processes;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod fault;
pub mod features;
pub mod foreground;
#[allow(missing_docs)]
pub(crate) mod hooks;
// The CLI opens `--log` and writes `spec`'s config.json through it.
#[doc(hidden)]
pub mod host_file;
// The CLI's `--rootless auto` and the state directory ask it too.
pub mod host_userns;
mod init;
mod keyring;
mod list;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod lsm;
#[allow(missing_docs)]
pub(crate) mod memory_policy;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod namespaces;
#[allow(missing_docs)]
pub(crate) mod net_devices;
pub mod notify;
#[allow(missing_docs)]
pub(crate) mod pidfd;
pub(crate) mod process;
// Its re-exports of the fd-based mount calls are used by other modules' tests.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod rootfs;
pub(crate) mod scheduling;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod seccomp;
mod single_thread;
// SpecError's variants are described by their messages, which name the field.
pub(crate) mod procfs;
mod recorded_config;
mod run;
#[allow(missing_docs)]
pub mod spec;
pub mod state;
mod stdio;
pub(crate) mod stop_signals;
pub(crate) mod sync;
mod wait;
#[allow(missing_docs)]
pub(crate) mod waiter;

pub use container::Container;
pub use create::{create, CreateOptions};
pub use error::{Error, Result};
pub use run::run;
pub use spec::SpecError;
pub use state::{ContainerState, StateError, Status};
pub use stdio::{Stdio, StdioError};
pub use wait::ExitStatus;

/// The errors [`Error`] wraps, so that a caller can name and match them.
pub use barrier::BarrierError;
pub use cgroups::{CgroupError, ResourceError, StatsError};
pub use cgroups::{OomCounter, Stats};
pub use child_error::{ChildError, ChildStep};
pub use hooks::HookError;
pub use host_file::HostFileError;
pub use lsm::LsmError;
pub use memory_policy::MemoryPolicyError;
pub use namespaces::NamespaceError;
pub use net_devices::NetDeviceError;
pub use notify::{NotifyError, NotifyRelay};
pub use pidfd::PidfdError;
pub use rootfs::RootfsError;
pub use seccomp::SeccompError;
