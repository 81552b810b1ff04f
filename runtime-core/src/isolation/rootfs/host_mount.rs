//! A container without a mount namespace of its own shares the runtime's:
//! the init then builds its filesystem under a bind of the rootfs onto
//! itself in that namespace (the host's), and enters it with chroot, as
//! runc does. The host sees that bind and every mount below it, so `create`
//! records the bind's mount id and `delete` detaches it, and with it the
//! whole tree; a failed `create` does the same (docs/architecture.md).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// statx's STATX_MNT_ID_UNIQUE (Linux 6.8): a mount id never reused.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
/// And STATX_MNT_ID, reused once a mount is gone: the fallback before 6.8.
const STATX_MNT_ID: u32 = 0x1000;

fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    let flags = nix::fcntl::OFlag::O_PATH
        | nix::fcntl::OFlag::O_DIRECTORY
        | nix::fcntl::OFlag::O_NOFOLLOW
        | nix::fcntl::OFlag::O_CLOEXEC;
    Ok(nix::fcntl::open(
        path,
        flags,
        nix::sys::stat::Mode::empty(),
    )?)
}

fn mount_id_of(fd: &OwnedFd) -> std::io::Result<u64> {
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx = unsafe { std::mem::zeroed::<libc::statx>() };
    for mask in [STATX_MNT_ID_UNIQUE, STATX_MNT_ID] {
        // SAFETY: statx writes into a struct we own; the empty path names the descriptor itself.
        let rc = unsafe {
            libc::statx(
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                mask,
                &mut stx,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if stx.stx_mask & mask != 0 {
            return Ok(stx.stx_mnt_id);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ENOTSUP))
}

/// The id of the mount that `path` (not followed if a symlink) is on.
pub fn mount_id(path: &Path) -> std::io::Result<u64> {
    mount_id_of(&open_dir(path)?)
}

/// Detach the mount at `path` and everything below it, if it is still the
/// mount `id` (the one this container's init made): never another's, and
/// never through a symlink planted on the way.
pub fn detach(path: &Path, id: u64) -> std::io::Result<()> {
    let fd = match open_dir(path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if mount_id_of(&fd)? != id {
        return Ok(());
    }
    // The descriptor is the mount's root (it was opened at its mount point),
    // and umount follows the magic link to exactly that mount.
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match nix::mount::umount2(proc_path.as_str(), nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
