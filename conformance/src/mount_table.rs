//! Mount entries for config.json, and the mount table a container sees.

use std::path::Path;

use serde_json::{json, Value};

use crate::bundle::Bundle;
use crate::checks::{parse_mountinfo, Mount};
use crate::runtime::Runtime;

/// A `tmpfs` entry of `mounts`.
pub fn tmpfs_mount(destination: &str, options: &[&str]) -> Value {
    json!({ "destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options })
}

/// A `bind` entry of `mounts`; give `bind` or `rbind` in `options`.
pub fn bind_mount(source: &Path, destination: &str, options: &[&str]) -> Value {
    json!({ "destination": destination, "type": "bind", "source": source, "options": options })
}

/// Runs `script` in a container made from `bundle` (it must exit 0 and leave nothing
/// behind) and returns what the script printed and the container's mount table, read
/// after the script ran. The bundle stays on disk for as long as `rt` lives.
#[track_caller]
pub fn run_and_read_mounts(
    rt: &Runtime,
    bundle: &mut Bundle,
    script: &str,
) -> (String, Vec<Mount>) {
    let full = format!("{script}\necho ---\ncat /proc/self/mountinfo");
    bundle.set_args(&["sh", "-c", &full]);
    let out = rt.run_to_completion(bundle);
    let (printed, table) = out
        .split_once("---\n")
        .unwrap_or_else(|| panic!("no mount table in {out:?}"));
    (printed.to_owned(), parse_mountinfo(table))
}
