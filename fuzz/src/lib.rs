//! The fuzz targets' bodies, shared by fuzz_targets/ (libFuzzer) and
//! examples/explain.rs, which prints what each input of a corpus comes to.

pub mod cli_args;
pub mod config;

/// What one input came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The input never reaches the parser (config.json that is not UTF-8).
    Skipped,
    Accepted,
    /// The error as `berth` would log it.
    Rejected(String),
}
