//! Berth: an OCI container runtime library.
//!
//! The lifecycle of a container is `create` (create.rs, with the init's side
//! in init.rs), then the `Container` handle's `start`, `state`, `kill` and
//! `delete` (container.rs). Each kernel concern has its own module.
//!
//! `create` forks: call it from a single-threaded process. The forked init is
//! a copy of the calling binary until it execs; it is made non-dumpable so
//! the container cannot reach that binary through /proc (CVE-2019-5736).

pub mod barrier;
pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod fault;
pub mod features;
pub mod foreground;
pub mod hooks;
mod init;
mod keyring;
pub mod lsm;
pub mod namespaces;
pub mod pidfd;
pub mod process;
pub mod rootfs;
pub mod scheduling;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod procfs;
pub mod sync;

pub use container::Container;
pub use create::{create, CreateOptions};
pub use error::{Error, Result};
pub use state::{ContainerState, Status};
