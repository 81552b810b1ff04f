//! The config.toml of a private containerd with its CRI plugin enabled, and the CRI
//! runtime handlers `berth` (the runc shim with Berth as its runc) and `berth-shim`
//! (Berth's own shim) taken from docs/containerd.md, so that what the doc tells a user
//! to write is what the CRI suites run.

use std::fs;
use std::path::{Path, PathBuf};

/// The doc whose CRI runtime handler config the suite uses.
pub fn containerd_doc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/containerd.md")
}

/// The runtime tables of handler `berth` as docs/containerd.md gives them (its first
/// ```toml block from the `runtimes.berth` table on), with `BinaryName` and `Root`
/// replaced by `binary` and `root`. Panics naming the doc when it lacks them.
pub fn documented_berth_handler(binary: &Path, root: &Path) -> String {
    let doc = containerd_doc();
    let text = fs::read_to_string(&doc).unwrap_or_else(|e| panic!("read {}: {e}", doc.display()));
    let block = text
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap_or_else(|| panic!("{} has no ```toml block", doc.display()));
    let table = r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]"#;
    let start = block
        .find(table)
        .unwrap_or_else(|| panic!("{}'s toml block has no {table}", doc.display()));
    let mut replaced = (false, false);
    let lines: Vec<String> = block[start..]
        .lines()
        .map(|line| {
            let key = line.trim_start().split([' ', '=']).next().unwrap_or("");
            match key {
                "BinaryName" => {
                    replaced.0 = true;
                    format!("  BinaryName = \"{}\"", binary.display())
                }
                "Root" => {
                    replaced.1 = true;
                    format!("  Root = \"{}\"", root.display())
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    assert_eq!(
        replaced,
        (true, true),
        "{}: the berth handler's options must set BinaryName and Root:\n{}",
        doc.display(),
        &block[start..]
    );
    lines.join("\n")
}

/// The CRI runtime handler of Berth's own shim (`io.containerd.berth.v2`).
pub const SHIM_HANDLER: &str = "berth-shim";

/// The runtime tables of handler `berth-shim` as docs/containerd.md gives them: from
/// the `runtimes.berth-shim` table to the end of the ```toml block that holds it, with
/// the options table's `ConfigPath` replaced by `options_file`. Panics naming the doc
/// when it lacks them.
pub fn documented_shim_handler(options_file: &Path) -> String {
    let doc = containerd_doc();
    let text = fs::read_to_string(&doc).unwrap_or_else(|e| panic!("read {}: {e}", doc.display()));
    let table =
        format!(r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{SHIM_HANDLER}]"#);
    let block = text
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .find(|block| block.contains(&table))
        .unwrap_or_else(|| panic!("{} has no ```toml block with {table}", doc.display()));
    let start = block.find(&table).unwrap_or(0);
    let tables = &block[start..];
    assert!(
        tables.contains(r#"runtime_type = "io.containerd.berth.v2""#),
        "{}: the {SHIM_HANDLER} handler's runtime_type must be io.containerd.berth.v2:\n{tables}",
        doc.display()
    );
    let mut replaced = false;
    let lines: Vec<String> = tables
        .lines()
        .map(|line| match line.trim_start().split([' ', '=']).next() {
            Some("ConfigPath") => {
                replaced = true;
                format!(
                    "  ConfigPath = {}",
                    toml_string(&options_file.to_string_lossy())
                )
            }
            _ => line.to_owned(),
        })
        .collect();
    assert!(
        replaced,
        "{}: the {SHIM_HANDLER} handler's options must set ConfigPath:\n{tables}",
        doc.display()
    );
    lines.join("\n")
}

/// `s` as a TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The RuntimeClass `handler:` values docs/containerd.md shows.
pub fn documented_runtime_class_handlers() -> Vec<String> {
    let text = fs::read_to_string(containerd_doc()).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("handler:"))
        .map(|handler| handler.trim().to_owned())
        .collect()
}

/// Paths and names one private containerd's config needs.
pub struct CriPaths<'a> {
    pub dir: &'a Path,
    pub socket: &'a str,
    pub sandbox_image: &'a str,
    /// The binary of handler `berth`.
    pub berth: &'a Path,
    /// The binary of handler `runc`.
    pub runc: &'a Path,
    /// The options file of handler `berth-shim` (its `ConfigPath`).
    pub shim_options_file: &'a Path,
    /// runc's options (name, TOML value) for handler `runc`'s `options` table, a
    /// `BinaryName` or `Root` among them in place of the default.
    pub runc_options: &'a [(&'a str, String)],
}

/// containerd's config: private paths; the CRI plugin with handlers `berth` and
/// `berth-shim` (from the doc) and `runc`, an offline sandbox image, a stream server on a free port, and a CNI
/// config dir with nothing in it (pods use the host's network, which needs no CNI),
/// oom_score_adj no lower than containerd's own;
/// no plugin that reaches outside (the snapshotters this machine lacks, tracing).
pub fn cri_config_toml(paths: &CriPaths) -> String {
    let dir = paths.dir;
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # The test machines lack CAP_SYS_RESOURCE, without which no runtime can lower
  # oom_score_adj to the -998 the CRI plugin gives a sandbox: keep it at containerd's.
  restrict_oom_score_adj = true
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni}/bin"
  conf_dir = "{cni}/net.d"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
{runc_options}

{berth}

{shim}
"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        socket = paths.socket,
        sandbox_image = paths.sandbox_image,
        cni = dir.join("cni").display(),
        runc_options = runc_options(paths),
        berth = documented_berth_handler(paths.berth, &dir.join("berth")),
        shim = documented_shim_handler(paths.shim_options_file),
    )
}

/// The lines of handler `runc`'s options table: its binary and root, unless
/// `paths.runc_options` sets them, and those options.
fn runc_options(paths: &CriPaths) -> String {
    let defaults = [
        ("BinaryName", toml_string(&paths.runc.to_string_lossy())),
        (
            "Root",
            toml_string(&paths.dir.join("runc").to_string_lossy()),
        ),
    ];
    let given = paths.runc_options.iter().map(|(k, v)| (*k, v.clone()));
    defaults
        .into_iter()
        .filter(|(key, _)| !paths.runc_options.iter().any(|(k, _)| k == key))
        .chain(given)
        .map(|(key, value)| format!("  {key} = {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}
