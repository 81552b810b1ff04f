//! containerd's rootfs mounts (the snapshot's overlay or bind) onto the
//! bundle's `rootfs`, made by the shim itself with mount(2) and no fork.
//!
//! The shim is threaded (docs/shim.md, "The fork constraint"). The
//! containerd-shim crate's `mount_rootfs` forks a child to make each mount
//! and runs code in it (the mount call's path conversions, its error log
//! through the shim's logger): in a threaded process such a child can wait
//! forever on a lock another thread held at the fork. So the options are
//! read here, as containerd's mount package reads them, and the mount made
//! in this thread. Only an overlay whose options do not fit in a page (many
//! layers), which mount(2) cannot take and which needs a child working in
//! the layers' directory to shorten them, still goes to the crate: a
//! rare case, and its child only logs on failure.

use std::path::Path;

use nix::mount::MsFlags;

/// What an option does to the flags: sets them, or clears them.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
}

/// The flag options containerd's mounts may carry (the rest are the file
/// system's data, passed on as they are).
fn effect(option: &str) -> Option<Effect> {
    use Effect::{Clear, Set};
    Some(match option {
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "bind" => Set(MsFlags::MS_BIND),
        "defaults" => Set(MsFlags::empty()),
        "dev" => Clear(MsFlags::MS_NODEV),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "nodev" => Set(MsFlags::MS_NODEV),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "rbind" => Set(MsFlags::MS_BIND | MsFlags::MS_REC),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "private" => Set(MsFlags::MS_PRIVATE),
        "rprivate" => Set(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        "shared" => Set(MsFlags::MS_SHARED),
        "rshared" => Set(MsFlags::MS_SHARED | MsFlags::MS_REC),
        "slave" => Set(MsFlags::MS_SLAVE),
        "rslave" => Set(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        "unbindable" => Set(MsFlags::MS_UNBINDABLE),
        "runbindable" => Set(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        _ => return None,
    })
}

const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

/// A mount's flags and its file-system data (the options that are no flag,
/// joined with commas).
fn parse(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match effect(option) {
            Some(Effect::Set(f)) => flags |= f,
            Some(Effect::Clear(f)) => flags &= !f,
            None => data.push(option.as_str()),
        }
    }
    (flags, data.join(","))
}

/// Mounts one of containerd's rootfs mounts on `target`.
pub fn mount(fs_type: &str, source: &str, options: &[String], target: &Path) -> Result<(), String> {
    let (flags, data) = parse(options);
    // The kernel copies at most a page of data; an overlay of many layers
    // needs the crate's shortening (above).
    if data.len() >= page_size().saturating_sub(512) {
        return containerd_shim::mount::mount_rootfs(Some(fs_type), Some(source), options, target)
            .map_err(|e| e.to_string());
    }
    let failed = |what: &str, e: nix::Error| {
        format!("{what} {source} ({fs_type}) on {}: {e}", target.display())
    };
    let data = (!data.is_empty()).then_some(data.as_str());
    // The propagation is a change of its own after the mount (MS_REC stays:
    // it makes a bind recursive too).
    let without_propagation = flags - PROPAGATION;
    if !flags.contains(MsFlags::MS_REMOUNT) || data.is_some() {
        nix::mount::mount(
            Some(source),
            target,
            Some(fs_type),
            without_propagation,
            data,
        )
        .map_err(|e| failed("mount", e))?;
    }
    if flags.intersects(PROPAGATION) {
        let propagation = flags & (PROPAGATION | MsFlags::MS_REC);
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            propagation,
            None::<&str>,
        )
        .map_err(|e| failed("propagation of", e))?;
    }
    // A bind mount is read-only only after a remount.
    if without_propagation.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            without_propagation | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| failed("read-only remount of", e))?;
    }
    Ok(())
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(options: &[&str]) -> Vec<String> {
        options.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn an_overlays_options_are_its_data() {
        let (flags, data) = parse(&strings(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]));
        assert_eq!(flags, MsFlags::empty());
        assert_eq!(data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let (flags, data) = parse(&strings(&["rbind", "ro", "rw", "nosuid", "private"]));
        assert_eq!(
            flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID | MsFlags::MS_PRIVATE
        );
        assert_eq!(data, "");
        let (flags, _) = parse(&strings(&["ro"]));
        assert_eq!(flags, MsFlags::MS_RDONLY);
    }
}
