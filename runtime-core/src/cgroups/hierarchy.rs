//! The host's cgroup hierarchies: where each is mounted and what the
//! container's processes see as its root, read from mountinfo and /proc/self/cgroup.

use std::fs;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// One mounted hierarchy: where it is and what it is called inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    /// `cpu`, `memory`, `systemd`, `unified`... (the mountpoint's last component);
    /// empty for a pure v2 host.
    pub name: String,
    /// Its root as this process sees it, from /proc/self/cgroup; relative paths hang off it.
    pub own_path: PathBuf,
    /// A v1 hierarchy with the cpuset controller, whose new directories start
    /// without cpus or mems.
    pub v1_cpuset: bool,
    /// A cgroup2 mount (the hybrid `unified` one, or a v2 host's only one).
    pub v2: bool,
}

/// Which hierarchies a step covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    All,
    V1,
    V2,
}

impl Versions {
    pub(crate) fn covers(self, hierarchy: &Hierarchy) -> bool {
        match self {
            Versions::All => true,
            Versions::V1 => !hierarchy.v2,
            Versions::V2 => hierarchy.v2,
        }
    }
}

/// The host's cgroup hierarchies, read from /proc/self/mountinfo.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(CgroupError::Mounts)?;
    let own = fs::read_to_string("/proc/self/cgroup").map_err(CgroupError::Mounts)?;
    let found = parse_hierarchies(&mountinfo, &own);
    if found.is_empty() {
        return Err(CgroupError::NoHierarchy);
    }
    Ok(found)
}

fn parse_hierarchies(mountinfo: &str, own_cgroups: &str) -> Vec<Hierarchy> {
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rest: Vec<&str> = right.split(' ').collect();
        let (Some(mountpoint), Some(fstype)) = (fields.get(4), rest.first()) else {
            continue;
        };
        let options = rest.get(2).copied().unwrap_or("");
        let key = match *fstype {
            "cgroup2" => String::new(),
            "cgroup" => {
                let mut controllers: Vec<&str> = options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                    .collect();
                controllers.sort_unstable();
                controllers.join(",")
            }
            _ => continue,
        };
        // A hierarchy mounted again later (a bind by a container that
        // shares this mount namespace, under its rootfs) is the same one:
        // its first mount, the host's, is the one to use.
        if !seen.insert((*fstype == "cgroup2", key.clone())) {
            continue;
        }
        let own_path = own_cgroups
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                let mut ctrls: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
                ctrls.sort_unstable();
                (ctrls.join(",") == key).then(|| PathBuf::from(path))
            })
            .next()
            .unwrap_or_else(|| PathBuf::from("/"));
        let mountpoint = PathBuf::from(unescape_mountinfo(mountpoint));
        let unified_only = *fstype == "cgroup2" && mountpoint == Path::new("/sys/fs/cgroup");
        let name = if unified_only {
            String::new()
        } else {
            mountpoint
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let v1_cpuset = *fstype == "cgroup" && key.split(',').any(|c| c == "cpuset");
        found.push(Hierarchy {
            mountpoint,
            name,
            own_path,
            v1_cpuset,
            v2: *fstype == "cgroup2",
        });
    }
    found
}

fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "4:cpu:/user\n3:memory:/\n1:name=systemd:/session\n0::/u2\n";

    #[test]
    fn hybrid_hosts_list_every_v1_hierarchy_and_the_unified_one() {
        let found = parse_hierarchies(HYBRID, OWN);
        let names: Vec<&str> = found.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "systemd", "unified"]);
        assert_eq!(found[0].own_path, PathBuf::from("/user"));
        assert_eq!(found[2].own_path, PathBuf::from("/session"));
        assert_eq!(found[3].own_path, PathBuf::from("/u2"));
    }

    #[test]
    fn a_hierarchy_mounted_again_under_a_containers_rootfs_is_listed_once() {
        let again = "\
90 31 0:29 /c1 /b/rootfs/sys/fs/cgroup/cpu ro,relatime - cgroup cgroup rw,cpu
91 31 0:38 /c1 /b/rootfs/sys/fs/cgroup/unified ro,relatime - cgroup2 cgroup2 rw
";
        let found = parse_hierarchies(&format!("{HYBRID}{again}"), OWN);
        let mounts: Vec<&Path> = found.iter().map(|h| h.mountpoint.as_path()).collect();
        assert_eq!(
            mounts,
            [
                Path::new("/sys/fs/cgroup/cpu"),
                Path::new("/sys/fs/cgroup/memory"),
                Path::new("/sys/fs/cgroup/systemd"),
                Path::new("/sys/fs/cgroup/unified")
            ]
        );
    }

    #[test]
    fn a_pure_v2_host_has_one_unnamed_hierarchy() {
        let found = parse_hierarchies(
            "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/\n",
        );
        assert_eq!(
            found,
            vec![Hierarchy {
                mountpoint: "/sys/fs/cgroup".into(),
                name: String::new(),
                own_path: "/".into(),
                v1_cpuset: false,
                v2: true
            }]
        );
    }
}
