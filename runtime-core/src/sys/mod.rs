//! Thin wrappers over syscalls and facts about the host, used by every
//! group above and using none of them: pidfds, openat2 and the fd-based
//! mount API, files on the host made without following links, procfs,
//! stop signals, the host's user namespace, and create's fault points.

pub mod fault;
// The CLI opens `--log` and writes `spec`'s config.json through it.
#[doc(hidden)]
pub mod host_file;
// The CLI's `--rootless auto` and the state directory ask it too.
pub(crate) mod caller_death;
pub(crate) mod cpu_set;
pub(crate) mod default_signals;
pub(crate) mod errno_text;
pub mod host_userns;
#[allow(missing_docs)]
pub mod mount_api;
#[allow(missing_docs)]
pub(crate) mod pidfd;
pub(crate) mod procfs;
pub(crate) mod stop_signals;
