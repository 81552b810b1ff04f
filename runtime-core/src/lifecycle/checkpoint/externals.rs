//! What CRIU must be told about a container because it comes from outside
//! of it: bind mounts (their sources are the host's), the `/dev/null`
//! binds over masked files, namespaces the config joins by path, and the
//! init's stdio (pipes of whoever started it).

use super::rpc::Msg;
use super::{CheckpointError, DESCRIPTORS_FILE};
use crate::cgroups::Cgroup;
use crate::isolation::rootfs::is_bind;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

fn ext_mnt(opts: &mut Msg, key: &str, val: &str) {
    let mut m = Msg::default();
    m.str(1, key).str(2, val);
    opts.msg(23, &m);
}

fn masked_paths(spec: &Spec) -> &[String] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default()
}

/// The namespaces CRIU can take from outside, by their key in `external` and `inherit_fd`.
const JOINABLE: [(LinuxNamespaceType, &str, &str); 2] = [
    (LinuxNamespaceType::Network, "net", "extRootNetNS"),
    (LinuxNamespaceType::Pid, "pid", "extRootPidNS"),
];

fn joined_by_path(spec: &Spec) -> Vec<(LinuxNamespaceType, &'static str, &'static str, String)> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let mut out = Vec::new();
    for ns in namespaces {
        let Some(path) = ns.path() else { continue };
        if let Some((typ, name, key)) = JOINABLE.iter().find(|(t, _, _)| *t == ns.typ()) {
            out.push((*typ, *name, *key, path.to_string_lossy().into_owned()));
        }
    }
    out
}

/// The container's cgroup directories as its `cgroup` mount shows them:
/// (where inside the container, the host directory). Berth mounts each
/// hierarchy's directory of the container (not the hierarchy's root), which
/// CRIU cannot dump as a mount of its own: they are external, and a restore
/// binds the new container's directories there (a new id has new ones).
fn cgroup_mounts(spec: &Spec, cgroup: &Cgroup) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if m.typ().as_deref() != Some("cgroup") {
            continue;
        }
        for (name, dir) in &cgroup.dirs {
            let inside = match name.is_empty() {
                true => m.destination().clone(),
                false => m.destination().join(name),
            };
            out.push((
                inside.to_string_lossy().into_owned(),
                dir.to_string_lossy().into_owned(),
            ));
        }
    }
    out
}

/// Mark for the dump: every bind mount, cgroup mount and masked file as an
/// external mount (keyed by its destination), every namespace joined by
/// path as external.
pub(super) fn for_dump(
    opts: &mut Msg,
    spec: &Spec,
    pid: i32,
    cgroup: &Cgroup,
) -> Result<(), CheckpointError> {
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if is_bind(m) {
            let dest = m.destination().to_string_lossy();
            ext_mnt(opts, &dest, &dest);
        }
    }
    for (inside, _) in cgroup_mounts(spec, cgroup) {
        ext_mnt(opts, &inside, &inside);
    }
    for path in masked_paths(spec) {
        // Masked files are /dev/null bound over them; masked directories are tmpfs, which CRIU dumps.
        let inside = format!("/proc/{pid}/root/{}", path.trim_start_matches('/'));
        if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
            ext_mnt(opts, path, path);
        }
    }
    for (_, name, key, path) in joined_by_path(spec) {
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&path)
            .map_err(|e| CheckpointError::Invalid(format!("namespace {path}: {e}")))?
            .ino();
        opts.str(37, &format!("{name}[{ino}]:{key}"));
    }
    Ok(())
}

/// Map the externals back for a restore: bind mounts to their sources,
/// masked files to /dev/null, joined namespaces and the dumped init's pipes
/// to fds CRIU inherits. The returned files must stay open until CRIU is done.
pub(super) fn for_restore(
    opts: &mut Msg,
    spec: &Spec,
    bundle: &Path,
    images: &Path,
    cgroup: &Cgroup,
) -> Result<Vec<File>, CheckpointError> {
    for (inside, host) in cgroup_mounts(spec, cgroup) {
        ext_mnt(opts, &inside, &host);
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if is_bind(m) {
            let source = m.source().as_deref().unwrap_or(Path::new(""));
            let source = bundle.join(source);
            ext_mnt(
                opts,
                &m.destination().to_string_lossy(),
                &source.to_string_lossy(),
            );
        }
    }
    for path in masked_paths(spec) {
        ext_mnt(opts, path, "/dev/null");
    }
    let mut keep = Vec::new();
    for (_, _, key, path) in joined_by_path(spec) {
        let file = File::open(&path)
            .map_err(|e| CheckpointError::Invalid(format!("namespace {path}: {e}")))?;
        nix::fcntl::fcntl(
            &file,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| CheckpointError::Invalid(format!("namespace {path}: {e}")))?;
        inherit_fd(opts, key, file.as_raw_fd());
        keep.push(file);
    }
    stdio_files_for_restore(opts, images);
    for (fd, target) in load_descriptors(images).iter().enumerate() {
        // A pipe of the dumper's caller: the restorer's own stdio takes its place.
        if target.starts_with("pipe:") {
            inherit_fd(opts, target, fd as i32);
        }
    }
    Ok(keep)
}

fn inherit_fd(opts: &mut Msg, key: &str, fd: i32) {
    let mut m = Msg::default();
    m.str(1, key).int(2, i64::from(fd));
    opts.msg(27, &m);
}

/// Devices the init's stdio name on mounts outside the container (the
/// host's /dev/null): CRIU cannot reach them through the container's
/// mounts, so they are external (`file[mnt_id:inode]`) and a restore hands
/// its own stdio in their place.
pub(super) fn stdio_files_for_dump(
    opts: &mut Msg,
    images: &Path,
    pid: i32,
) -> Result<(), CheckpointError> {
    use std::os::unix::fs::MetadataExt;
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let visible: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut keys = Vec::new();
    for fd in 0..3 {
        let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) else {
            continue;
        };
        // Only devices: CRIU checks a regular file's size on restore, which
        // the restorer's own stdout would not have (runc's limit too).
        if !meta.file_type().is_char_device_like() {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        let Some(mnt_id) = info
            .lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            continue;
        };
        if visible.contains(&mnt_id.to_string().as_str()) {
            continue;
        }
        let key = format!("file[{mnt_id:x}:{:x}]", meta.ino());
        opts.str(37, &key);
        keys.push((fd, key));
    }
    let path = images.join(STDIO_FILES);
    std::fs::write(&path, serde_json::to_string(&keys).unwrap_or_default()).map_err(|source| {
        CheckpointError::Dir {
            what: "write",
            path,
            source,
        }
    })
}

trait CharDeviceLike {
    fn is_char_device_like(&self) -> bool;
}

impl CharDeviceLike for std::fs::FileType {
    /// /dev/null and its kind; a terminal is left to CRIU's tty handling.
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device()
    }
}

/// The name of the file beside the images that lists the external stdio files.
const STDIO_FILES: &str = "berth-stdio-files.json";

fn stdio_files_for_restore(opts: &mut Msg, images: &Path) {
    let keys: Vec<(i32, String)> = std::fs::read_to_string(images.join(STDIO_FILES))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for (fd, key) in keys {
        inherit_fd(opts, &key, fd);
    }
}

/// Record what the init's fds 0-2 were, for the restore's inherit_fd.
pub(super) fn save_descriptors(images: &Path, pid: i32) -> Result<(), CheckpointError> {
    let targets: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let text = serde_json::to_string(&targets).unwrap_or_default();
    let path = images.join(DESCRIPTORS_FILE);
    std::fs::write(&path, text).map_err(|source| CheckpointError::Dir {
        what: "write",
        path,
        source,
    })
}

fn load_descriptors(images: &Path) -> Vec<String> {
    std::fs::read_to_string(images.join(DESCRIPTORS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
