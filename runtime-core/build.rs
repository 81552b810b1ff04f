//! Builds the waiter (waiter/waiter.c, see docs/waiter.md): a tiny static
//! program a created container's init execs into while it waits for `start`.
//! On x86_64 a failure to build it fails the build: silently dropping it
//! would only show up as a container costing ten times the memory.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(berth_waiter)");
    println!("cargo::rerun-if-changed=waiter/waiter.c");
    println!("cargo::rerun-if-env-changed=CC");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // The waiter's syscalls are x86_64 inline assembly: elsewhere the init waits itself.
    if arch != "x86_64" || os != "linux" {
        return;
    }
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("berth-waiter");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args([
            "-static",
            "-nostdlib",
            "-fno-stack-protector",
            "-Os",
            "-fno-pie",
            "-no-pie",
            "-ffreestanding",
            "-fno-builtin",
        ])
        .args([
            "-fno-asynchronous-unwind-tables",
            "-fno-unwind-tables",
            "-Wall",
        ])
        .args([
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-Wl,-z,max-page-size=4096",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg("waiter/waiter.c")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the waiter (runtime-core/waiter/waiter.c) with {compiler} failed: {s}"),
        Err(e) => panic!("building the waiter (runtime-core/waiter/waiter.c): cannot run the C compiler {compiler:?}: {e}"),
    }
    println!("cargo::rustc-cfg=berth_waiter");
}
