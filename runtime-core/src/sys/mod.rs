//! Thin wrappers over syscalls and facts about the host, used by every
//! group above and using none of them: pidfds, openat2 and the fd-based
//! mount API, files on the host made without following links, procfs,
//! signals and stop signals, CPU sets, the host's user namespace, and
//! create's fault points.

pub(crate) mod caller_death;
pub(crate) mod cpu_set;
pub(crate) mod default_signals;
pub(crate) mod errno_text;
// BERTH_FAULT_STOP_AT, for the conformance suite: inert without the
// `fault-injection` feature.
pub(crate) mod fault;
pub mod host_file;
pub mod host_userns;
#[allow(missing_docs)]
pub(crate) mod mount_api;
#[allow(missing_docs)]
pub(crate) mod pidfd;
#[allow(missing_docs)]
pub(crate) mod procfs;
pub(crate) mod signal;
pub(crate) mod standard_fds;
pub(crate) mod stop_signals;
