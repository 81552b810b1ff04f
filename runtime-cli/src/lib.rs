//! The parts of the `berth` binary that hold no behaviour of their own:
//! runc's flag syntax, log format, output formats, signal names and
//! `update`'s values. A library so the fuzz targets (fuzz/) can link the
//! argument parser the binary uses; main.rs is the only other user.

pub mod args;
pub mod log;
pub mod output;
pub mod signal;
pub mod update;
