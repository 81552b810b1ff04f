//! Berth: an OCI container runtime library.
pub mod spec;
pub mod features;
pub mod state;
