//! What the harness-less tests of this directory share.

use std::path::{Path, PathBuf};

/// A busybox bundle at `dir` whose `rootfs/bin` has busybox as each of
/// `tools`, running `args`, with or without a terminal.
pub fn busybox_bundle(
    dir: &Path,
    tools: &[&str],
    args: &[&str],
    terminal: bool,
) -> Result<PathBuf, String> {
    let make = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("rootfs/bin"))?;
        std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox"))?;
        for tool in tools {
            std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin").join(tool))?;
        }
        let mut config = serde_json::to_value(berth::spec::default_spec(false))?;
        config["process"]["terminal"] = terminal.into();
        config["process"]["args"] = serde_json::json!(args);
        std::fs::write(dir.join("config.json"), config.to_string())
    };
    make().map_err(|e| format!("make the bundle: {e}"))?;
    Ok(dir.to_path_buf())
}
