//! Checkpoint and restore with CRIU (docs/checkpoint.md), driven through
//! its RPC (`criu swrk`, rpc.rs) as runc drives it.
//!
//! What a container's dump must name for CRIU, because CRIU cannot dump it
//! from inside the container (externals.rs): the bind mounts and the
//! `/dev/null` binds over masked files, whose sources are the host's; the
//! namespaces the config joins by path; the freezer cgroup. The image
//! directory also gets `descriptors.json`, what the init's stdio were, so a
//! restore hands pipes of its own caller in their place.

pub(crate) mod criu_root;
pub(crate) mod error;
mod externals;
mod mountpoints;
mod options;
mod restore;
mod rpc;

pub use error::CheckpointError;
pub use options::{CgroupMode, CheckpointOptions, CriuOptions, RestoreOptions};
pub use restore::restore;

use crate::lifecycle::container::Container;
use crate::lifecycle::error::Error;
type Result<T, E = Error> = std::result::Result<T, E>;
use crate::state::Status;
use rpc::{Msg, ReqType, Swrk};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The stdio of the dumped init, as runc names the file (a JSON list of three link targets).
pub(crate) const DESCRIPTORS_FILE: &str = "descriptors.json";
const DUMP_LOG: &str = "dump.log";
const RESTORE_LOG: &str = "restore.log";

/// The failure CRIU reports: the first error its log names that is not a
/// refused rlimit (which CRIU logs as an error and goes on; the reply's
/// cr_errmsg is that one, then), else the reply's message.
pub(crate) fn criu_failure(
    what: &'static str,
    resp: rpc::Response,
    log: PathBuf,
) -> CheckpointError {
    let from_log = std::fs::read_to_string(&log).ok().and_then(|text| {
        text.lines()
            .find(|l| l.contains("Error (") && !l.contains("rlimit:"))
            .map(|l| {
                l.split_once(") ")
                    .map_or(l, |(_, rest)| rest)
                    .trim()
                    .to_string()
            })
    });
    let message = from_log
        .or(resp.errmsg)
        .unwrap_or_else(|| "no reason given".into())
        .trim()
        .to_string();
    CheckpointError::Criu {
        what,
        message,
        errno: resp.errno,
        log,
    }
}

/// An opened directory: its fd is what CRIU gets (it must survive into `criu swrk`).
pub(crate) struct OpenDir {
    pub(crate) path: PathBuf,
    file: File,
}

impl OpenDir {
    pub(crate) fn open(
        what: &'static str,
        path: &Path,
        make: bool,
    ) -> Result<OpenDir, CheckpointError> {
        let err = |source| CheckpointError::Dir {
            what,
            path: path.to_path_buf(),
            source,
        };
        if make {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(err)?;
        }
        let path = std::path::absolute(path).map_err(err)?;
        let file = File::open(&path).map_err(err)?;
        if !file.metadata().map_err(err)?.is_dir() {
            return Err(err(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        // Without O_CLOEXEC, so `criu swrk` inherits it.
        nix::fcntl::fcntl(
            &file,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| err(e.into()))?;
        Ok(OpenDir { path, file })
    }

    pub(crate) fn fd(&self) -> i64 {
        i64::from(self.file.as_raw_fd())
    }
}

/// criu_opts fields both requests share.
pub(crate) fn base_opts(
    o: &CriuOptions,
    images: &OpenDir,
    work: &OpenDir,
    log: &str,
) -> Result<Msg, CheckpointError> {
    let mut m = Msg::default();
    m.int(1, images.fd())
        .int(17, work.fd())
        .int(9, 4)
        .str(10, log)
        .flag(24, true)
        .flag(12, true)
        .flag_if(4, o.ext_unix_sk)
        .flag_if(5, o.tcp_established)
        .flag_if(7, o.shell_job)
        .flag_if(8, o.file_locks)
        .flag_if(16, o.auto_dedup)
        .flag_if(48, o.lazy_pages);
    if let Some(mode) = o.manage_cgroups_mode {
        m.int(34, mode.rpc_value());
    }
    let mut empty = 0i64;
    for ns in &o.empty_ns {
        match ns.as_str() {
            "network" | "net" => empty |= i64::from(libc::CLONE_NEWNET),
            other => {
                return Err(CheckpointError::Invalid(format!(
                    "--empty-ns: unknown or unsupported namespace {other:?} (only \"network\")"
                )))
            }
        }
    }
    if empty != 0 {
        m.int(38, empty);
    }
    Ok(m)
}

/// Ask CRIU what this kernel can do, for the features that need more than `criu check`.
fn refuse_missing_features(o: &CheckpointOptions) -> Result<(), CheckpointError> {
    let needs_mem_track = o.pre_dump || o.parent_path.is_some();
    if !needs_mem_track && !o.criu.lazy_pages {
        return Ok(());
    }
    let mut swrk = Swrk::start(&o.criu.criu)?;
    let resp = swrk.call(
        ReqType::FeatureCheck,
        None,
        |req| {
            let mut features = Msg::default();
            features.flag(1, true).flag(2, true);
            req.msg(5, &features);
        },
        |_, _, _| Ok(()),
    );
    swrk.finish();
    let resp = resp?;
    let what = if o.pre_dump {
        "--pre-dump"
    } else if o.parent_path.is_some() {
        "--parent-path"
    } else {
        "--lazy-pages"
    };
    if needs_mem_track && resp.mem_track != Some(true) {
        return Err(CheckpointError::KernelFeature {
            what,
            missing: "the kernel has no soft-dirty page tracking (CONFIG_MEM_SOFT_DIRTY; `criu check --feature mem_dirty_track` fails)",
        });
    }
    if o.criu.lazy_pages && resp.lazy_pages != Some(true) {
        return Err(CheckpointError::KernelFeature {
            what: "--lazy-pages",
            missing: "the kernel has no userfaultfd support CRIU can use (`criu check --feature uffd-noncoop` fails)",
        });
    }
    Ok(())
}

impl Container {
    /// Dump the container with CRIU into `options.criu.image_path`. Without
    /// `leave_running` (and without `pre_dump`) the dumped container is
    /// then deleted, as runc deletes it; on failure it is left as it was.
    pub fn checkpoint(&mut self, options: &CheckpointOptions) -> Result<()> {
        // Under the container's lock, so no other command changes it mid-dump;
        // released before the delete, which takes it itself.
        self.locked(|c| c.dump(options))?;
        if options.leave_running || options.pre_dump {
            return Ok(());
        }
        // CRIU killed the tree; what remains is the record, the cgroup, the hooks' poststop.
        let root = self
            .state_dir()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        crate::lifecycle::container::delete(&root, self.id(), true)?;
        Ok(())
    }

    fn dump(&mut self, options: &CheckpointOptions) -> Result<()> {
        let status = self.status();
        if !matches!(status, Status::Running | Status::Paused) {
            return Err(CheckpointError::NotRunning(status).into());
        }
        refuse_missing_features(options)?;
        let images = OpenDir::open("image directory", &options.criu.image_path, true)?;
        let work = match &options.criu.work_path {
            Some(path) => OpenDir::open("work directory", path, true)?,
            None => OpenDir::open("image directory", &options.criu.image_path, false)?,
        };
        let record = self.record().clone();
        let spec = self.config()?;
        let rootfs = std::fs::canonicalize(&record.rootfs).unwrap_or(record.rootfs.clone());
        let mut opts = base_opts(&options.criu, &images, &work, DUMP_LOG)?;
        let terminal = crate::spec::wants_terminal(&spec);
        // The terminal's master is outside (with whoever got it from the
        // console socket): CRIU dumps the slave alone, /dev/console's bind too.
        opts.flag_if(50, terminal);
        opts.int(2, i64::from(record.pid))
            .str(13, &rootfs.to_string_lossy())
            .flag_if(3, options.leave_running || options.pre_dump);
        if let Some(parent) = &options.parent_path {
            opts.str(14, &parent.to_string_lossy());
        }
        if let Some(fd) = options.status_fd {
            opts.int(49, i64::from(fd));
        }
        if let Some(server) = &options.page_server {
            opts.msg(11, &page_server(server)?);
        }
        externals::for_dump(&mut opts, &spec, record.pid, &record.cgroup)?;
        if let Some(freezer) = record
            .cgroup
            .dirs
            .iter()
            .find(|(n, _)| n == "freezer" || n.is_empty())
        {
            opts.str(44, &freezer.1.to_string_lossy());
        }
        externals::save_descriptors(&images.path, record.pid)?;
        externals::stdio_files_for_dump(&mut opts, &images.path, record.pid)?;
        let kind = if options.pre_dump {
            ReqType::PreDump
        } else {
            ReqType::Dump
        };
        let mut swrk = Swrk::start(&options.criu.criu)?;
        let resp = swrk.call(kind, Some(&opts), |_| {}, |_, _, _| Ok(()));
        swrk.finish();
        let resp = resp?;
        if !resp.success {
            return Err(criu_failure("dump", resp, work.path.join(DUMP_LOG)).into());
        }
        Ok(())
    }
}

/// `--page-server ADDRESS:PORT`.
fn page_server(value: &str) -> Result<Msg, CheckpointError> {
    let bad = || CheckpointError::Invalid(format!("--page-server {value:?}: want ADDRESS:PORT"));
    let (addr, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let mut m = Msg::default();
    m.str(1, addr).int(2, i64::from(port));
    Ok(m)
}
