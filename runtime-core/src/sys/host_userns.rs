//! Whether the runtime itself runs inside a user namespace it did not make:
//! rootless podman and docker, buildah, a runtime nested in a container.
//! There the runtime's uid 0 owns nothing of the host's: it may not mknod,
//! nor make cgroups under a hierarchy the host's root owns, and the mount
//! flags it inherits are locked. runc asks the same question (moby's
//! `userns.RunningInUserNS`) to default `--rootless` to true and to bind the
//! host's device nodes instead of making them.

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

/// The inode number of the initial user namespace (`PROC_USER_INIT_INO`,
/// linux/nsfs.h): fixed by the kernel, whatever namespace reads it.
const INITIAL_USER_NS_INODE: u64 = 0xEFFF_FFFD;

/// Whether this process is in a user namespace other than the initial one.
/// Asked once: the answer cannot change, and a forked init reads the cached
/// value rather than a /proc it may be about to replace.
pub fn running_in_user_namespace() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(detect)
}

fn detect() -> bool {
    match std::fs::metadata("/proc/self/ns/user") {
        Ok(meta) => meta.ino() != INITIAL_USER_NS_INODE,
        // Kernels before 3.8 have no ns/user: the uid map tells.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::read_to_string("/proc/self/uid_map") {
                Ok(text) => uid_map_is_not_initial(&text),
                // No uid_map: a kernel without user namespaces.
                Err(_) => false,
            }
        }
        // /proc is there but unreadable in some other way: assuming the
        // initial namespace is what a runtime already running as root did
        // before this check existed, and runc does the same.
        Err(_) => false,
    }
}

/// Whether the text of /proc/self/uid_map is a namespace's other than the
/// initial one, which maps every id to itself ("0 0 4294967295",
/// user_namespaces(7)). An empty map is a namespace just made, whose map is
/// not written yet; text that does not parse is taken as the initial one.
pub(crate) fn uid_map_is_not_initial(uid_map: &str) -> bool {
    let Some(first) = uid_map.lines().next() else {
        return true;
    };
    let fields: Vec<u64> = match first
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
    {
        Ok(fields) => fields,
        Err(_) => return false,
    };
    match fields.as_slice() {
        [inside, outside, count] => !(*inside == 0 && *outside == 0 && *count == 4_294_967_295),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_map_is_the_only_initial_one() {
        assert!(!uid_map_is_not_initial(
            "         0          0 4294967295\n"
        ));
        // unshare --map-root-user as uid 1000.
        assert!(uid_map_is_not_initial("         0       1000          1\n"));
        // podman's: the user, then its subordinate range.
        assert!(uid_map_is_not_initial(
            "         0       1000          1\n         1     100000      65536\n"
        ));
        // All ids but one: still not the initial namespace.
        assert!(uid_map_is_not_initial("0 0 4294967294\n"));
        // Made, map not written yet.
        assert!(uid_map_is_not_initial(""));
        // Nonsense: taken as the initial namespace, as runc does.
        assert!(!uid_map_is_not_initial("zero zero all\n"));
        assert!(!uid_map_is_not_initial("0 0\n"));
    }

    #[test]
    fn the_test_process_is_where_its_uid_map_says() {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap();
        assert_eq!(running_in_user_namespace(), uid_map_is_not_initial(&map));
    }
}
