//! What sets the container apart from the host: its namespaces, its root
//! filesystem and mounts, its network devices and its LSM labels.

#[allow(missing_docs)]
pub(crate) mod lsm;
#[allow(missing_docs)]
pub(crate) mod namespaces;
#[allow(missing_docs)]
pub(crate) mod net_devices;
#[allow(missing_docs)]
pub(crate) mod rootfs;
