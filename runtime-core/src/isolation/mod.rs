//! What sets the container apart from the host: its namespaces, its root
//! filesystem and mounts, its network devices and its LSM labels.

#[doc(hidden)]
#[allow(missing_docs)]
pub mod lsm;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod namespaces;
#[allow(missing_docs)]
pub(crate) mod net_devices;
// Its re-exports of the fd-based mount calls are used by other modules' tests.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod rootfs;
