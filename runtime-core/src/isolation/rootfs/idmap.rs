//! Idmapped bind mounts: `mounts[].uidMappings`/`gidMappings` with the
//! `idmap` or `ridmap` option (config.md, runtime-spec 1.2).
//!
//! `mount_setattr(MOUNT_ATTR_IDMAP)` takes its mapping as a user namespace
//! descriptor, and a mount's mapping is its own, not the container's: a user
//! namespace is made only to carry it. A short-lived child unshares
//! CLONE_NEWUSER and waits; this process writes the child's uid_map and
//! gid_map, opens its ns/user, and kills it. The namespace lives on for as
//! long as the descriptor does.
//!
//! Idmapping a mount of a host filesystem needs CAP_SYS_ADMIN over that
//! filesystem's user namespace: the init does it, before pivot_root, when it
//! is still in the host's user namespace; for a container with a user
//! namespace of its own the runtime does it before the clone (rootfs::idmapped_trees).

use crate::isolation::namespaces::map_lines;
use crate::sys::mount_api::{self, openat2, FsContext};
use oci_spec::runtime::LinuxIdMapping;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The mapping one mount gets, and whether it reaches the submounts of an rbind (`ridmap`).
#[derive(Debug, Clone, Copy)]
pub struct IdMap<'a> {
    pub uid: &'a [LinuxIdMapping],
    pub gid: &'a [LinuxIdMapping],
    pub recursive: bool,
}

/// Idmap `tree`, a detached `open_tree` clone: the kernel refuses a mount
/// that is already attached.
pub fn apply(tree: BorrowedFd, map: &IdMap) -> io::Result<()> {
    let userns = user_namespace(map.uid, map.gid)?;
    mount_api::set_idmap(tree, userns.as_fd(), map.recursive).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => io::Error::new(
            e.kind(),
            format!("{e}: the filesystem does not support idmapped mounts"),
        ),
        _ => e,
    })
}

/// A user namespace with exactly these mappings, held by a descriptor.
pub fn user_namespace(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> io::Result<OwnedFd> {
    // A procfs of our own pid namespace, which the child's pid is in: the
    // /proc still mounted here is the host's, with other pid numbers.
    let proc = FsContext::open("proc")?
        .mount(libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC)?;
    let holder = Holder::spawn()?;
    let dir = PathBuf::from(holder.pid.to_string());
    write_proc_file(proc.as_fd(), &dir.join("uid_map"), &map_lines(uid))?;
    write_proc_file(proc.as_fd(), &dir.join("gid_map"), &map_lines(gid))?;
    let strict = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV;
    let ns_dir = openat2(
        proc.as_fd(),
        &dir.join("ns"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        strict,
    )?;
    // ns/user is a magic link into nsfs, which openat2's RESOLVE_* flags all
    // refuse; this procfs is our own and mounted nowhere, so following it is safe.
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let userns = nix::fcntl::openat(ns_dir.as_fd(), "user", flags, nix::sys::stat::Mode::empty())?;
    drop(holder);
    Ok(userns)
}

fn write_proc_file(proc: BorrowedFd, path: &Path, text: &str) -> io::Result<()> {
    let resolve = libc::RESOLVE_BENEATH
        | libc::RESOLVE_NO_SYMLINKS
        | libc::RESOLVE_NO_MAGICLINKS
        | libc::RESOLVE_NO_XDEV;
    let fd = openat2(proc, path, libc::O_WRONLY, 0, resolve)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(text.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}

/// The child that holds the new user namespace open until it is killed.
struct Holder {
    pid: libc::pid_t,
}

impl Holder {
    fn spawn() -> io::Result<Holder> {
        let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the init is single-threaded, and the child makes only raw,
        // async-signal-safe syscalls before it is killed or exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            hold_user_namespace(parent, ready_write.as_raw_fd());
        }
        drop(ready_write);
        let holder = Holder { pid };
        // The child's unshare result: 0, or its errno; nothing if it died.
        let mut status = [0u8; 4];
        let mut ready = std::fs::File::from(ready_read);
        std::io::Read::read_exact(&mut ready, &mut status).map_err(|_| {
            io::Error::other("the helper process died before making a user namespace")
        })?;
        match i32::from_ne_bytes(status) {
            0 => Ok(holder),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: plain syscalls on the pid of our own child, which only we reap.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The child's whole life: unshare a user namespace, report, wait to be killed.
fn hold_user_namespace(parent: libc::pid_t, ready: RawFd) -> ! {
    // SAFETY: raw syscalls only, on our own descriptors and buffers; this copy
    // of the process never returns into Rust code that the parent also runs.
    unsafe {
        // If the init dies first, nothing else would ever kill this child.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let status: i32 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
            0
        } else {
            *libc::__errno_location()
        };
        let bytes = status.to_ne_bytes();
        libc::write(ready, bytes.as_ptr().cast(), bytes.len());
        loop {
            libc::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(container_id: u32, host_id: u32, size: u32) -> LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(container_id)
            .host_id(host_id)
            .size(size)
            .build()
            .expect("a mapping")
    }

    #[test]
    fn map_lines_has_one_line_per_mapping() {
        let text = map_lines(&[mapping(0, 1000, 1), mapping(1, 100000, 65536)]);
        assert_eq!(text, "0 1000 1\n1 100000 65536\n");
    }
}
