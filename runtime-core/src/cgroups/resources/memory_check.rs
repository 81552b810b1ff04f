//! `linux.resources.memory.checkBeforeUpdate` (runtime-spec 1.2): an update
//! that would put the memory limit (or memory+swap limit) at or below what
//! the container uses now is refused, rather than have the kernel reclaim
//! or OOM-kill the container to get there. runc checks on cgroup v2 only
//! (memory.current); Berth checks on v1 too, against memory.usage_in_bytes
//! (and memory.memsw.usage_in_bytes for the memory+swap limit), since the
//! spec does not tie the setting to a cgroup version.

use super::ResourceError;
use crate::cgroups::Cgroup;
use oci_spec::runtime::LinuxResources;
use std::fs;
use std::path::Path;

impl Cgroup {
    /// Refuse `resources`' memory limits if they are not above current use.
    /// `configured`: the config the container was created with asked for the
    /// check (it holds for every later update, as in runc).
    pub fn check_memory_usage(
        &self,
        resources: &LinuxResources,
        configured: bool,
    ) -> Result<(), ResourceError> {
        let Some(memory) = resources.memory() else {
            return Ok(());
        };
        if !memory.check_before_update().unwrap_or(configured) {
            return Ok(());
        }
        let limit = memory.limit().filter(|l| *l > 0);
        let swap = memory.swap().filter(|s| *s > 0);
        if limit.is_none() && swap.is_none() {
            return Ok(());
        }
        // As in runc, a usage that cannot be read (no memory controller) checks nothing.
        let (usage, swap_usage) = match self.unified_only_dir() {
            Some(dir) => {
                let usage = read_number(&dir.join("memory.current"));
                (usage, usage)
            }
            None => {
                let Some((_, dir)) = self
                    .dirs
                    .iter()
                    .find(|(name, _)| name.split(',').any(|c| c == "memory"))
                else {
                    return Ok(());
                };
                let usage = read_number(&dir.join("memory.usage_in_bytes"));
                let swap_usage = read_number(&dir.join("memory.memsw.usage_in_bytes")).or(usage);
                (usage, swap_usage)
            }
        };
        let refuse = |what, limit: i64, usage: Option<u64>| match usage {
            Some(usage) if u64::try_from(limit).is_ok_and(|l| l <= usage) => {
                Err(ResourceError::BelowUsage { what, limit, usage })
            }
            _ => Ok(()),
        };
        if let Some(swap) = swap {
            refuse("memory+swap", swap, swap_usage)?;
        }
        if let Some(limit) = limit {
            refuse("memory", limit, usage)?;
        }
        Ok(())
    }
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup_with(files: &[(&str, &str)]) -> (Cgroup, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "berth-memcheck-{}-{}",
            std::process::id(),
            files.len()
        ));
        let memory = dir.join("memory");
        fs::create_dir_all(&memory).unwrap();
        for (name, value) in files {
            fs::write(memory.join(name), value).unwrap();
        }
        let cgroup = Cgroup {
            dirs: vec![("memory".into(), memory)],
            ..Cgroup::default()
        };
        (cgroup, dir)
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_limit_at_or_below_usage_is_refused_when_asked() {
        let (cgroup, dir) = cgroup_with(&[("memory.usage_in_bytes", "8192\n")]);
        let low = resources(r#"{"memory":{"limit":8192,"checkBeforeUpdate":true}}"#);
        assert_eq!(
            cgroup
                .check_memory_usage(&low, false)
                .unwrap_err()
                .to_string(),
            "rejecting memory limit 8192 <= usage 8192"
        );
        let high = resources(r#"{"memory":{"limit":8193,"checkBeforeUpdate":true}}"#);
        assert!(cgroup.check_memory_usage(&high, false).is_ok());
        // Not asked for: the kernel's business.
        let unasked = resources(r#"{"memory":{"limit":1}}"#);
        assert!(cgroup.check_memory_usage(&unasked, false).is_ok());
        // Asked for by the config at create: every update is checked.
        assert!(cgroup.check_memory_usage(&unasked, true).is_err());
        // ... unless this update says otherwise.
        let off = resources(r#"{"memory":{"limit":1,"checkBeforeUpdate":false}}"#);
        assert!(cgroup.check_memory_usage(&off, true).is_ok());
        let swap = resources(r#"{"memory":{"limit":9000,"swap":4096,"checkBeforeUpdate":true}}"#);
        assert_eq!(
            cgroup
                .check_memory_usage(&swap, false)
                .unwrap_err()
                .to_string(),
            "rejecting memory+swap limit 4096 <= usage 8192"
        );
        let _ = fs::remove_dir_all(dir);
    }
}
