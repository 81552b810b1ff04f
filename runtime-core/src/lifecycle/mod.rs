//! The calls a caller makes: [`create()`](create::create), the
//! [`Container`](container::Container) handle (start, state, kill, pause,
//! update, delete), exec, checkpoint and restore, events, the foreground
//! wait, and the crate's [`Error`](error::Error). The only group that
//! sees every other; nothing below reaches up into it.

pub(crate) mod caller_effects;
pub mod checkpoint;
pub mod container;
pub(crate) mod container_processes;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod features;
pub mod foreground;
pub mod notify;
pub(crate) mod run;
pub(crate) mod single_thread;
mod stdio_setters;
pub(crate) mod wait;
