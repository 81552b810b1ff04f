//! The device cgroup (v1 `devices.allow`/`devices.deny`): which device nodes
//! the container may open or create, whatever nodes exist in its /dev.

use super::{Cgroup, CgroupError};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use std::fs;

/// One rule, in the kernel's `type major:minor access` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a` (all), `c` or `b`.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl DeviceRule {
    fn line(&self) -> String {
        if self.kind == 'a' {
            return format!("a *:* {}", self.access);
        }
        let number = |n: Option<i64>| {
            n.filter(|n| *n >= 0)
                .map_or("*".to_string(), |n| n.to_string())
        };
        format!(
            "{} {}:{} {}",
            self.kind,
            number(self.major),
            number(self.minor),
            self.access
        )
    }

    fn from_cgroup_rule(rule: &LinuxDeviceCgroup) -> DeviceRule {
        DeviceRule {
            allow: rule.allow(),
            kind: rule.typ().map_or('a', kind_letter),
            major: rule.major(),
            minor: rule.minor(),
            access: rule
                .access()
                .clone()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| "rwm".into()),
        }
    }

    fn allow_node(device: &LinuxDevice) -> Option<DeviceRule> {
        let kind = kind_letter(device.typ());
        (kind != 'a').then(|| DeviceRule {
            allow: true,
            kind,
            major: Some(device.major()),
            minor: Some(device.minor()),
            access: "rwm".into(),
        })
    }
}

fn kind_letter(kind: LinuxDeviceType) -> char {
    match kind {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        // Fifos are not device-cgroup controlled.
        LinuxDeviceType::P => 'p',
        LinuxDeviceType::A => 'a',
    }
}

/// What every container may use after the config's own rules, as runc allows:
/// mknod of anything, and the standard nodes, ptys and tun.
fn default_allowed() -> Vec<DeviceRule> {
    let rule = |kind, major, minor: Option<i64>, access: &str| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    };
    vec![
        rule('c', None, None, "m"),
        rule('b', None, None, "m"),
        rule('c', Some(1), Some(3), "rwm"),
        rule('c', Some(1), Some(5), "rwm"),
        rule('c', Some(1), Some(7), "rwm"),
        rule('c', Some(1), Some(8), "rwm"),
        rule('c', Some(1), Some(9), "rwm"),
        rule('c', Some(5), Some(0), "rwm"),
        rule('c', Some(5), Some(1), "rwm"),
        rule('c', Some(5), Some(2), "rwm"),
        rule('c', Some(136), None, "rwm"),
        rule('c', Some(10), Some(200), "rwm"),
    ]
}

/// The full rule list: the config's rules in order, its device nodes, then the defaults.
pub fn rules_for(config_rules: &[LinuxDeviceCgroup], nodes: &[LinuxDevice]) -> Vec<DeviceRule> {
    let mut rules: Vec<DeviceRule> = config_rules
        .iter()
        .map(DeviceRule::from_cgroup_rule)
        .collect();
    rules.extend(nodes.iter().filter_map(DeviceRule::allow_node));
    rules.extend(default_allowed());
    rules.retain(|r| r.kind != 'p');
    rules
}

impl Cgroup {
    /// Write `rules` to the v1 devices hierarchy, or on a pure cgroup v2 host
    /// attach them as a device program. A host with neither is refused
    /// rather than left open.
    pub fn set_device_rules(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        if rules.is_empty() {
            return Ok(());
        }
        let Some((_, dir)) = self.dirs.iter().find(|(name, _)| name == "devices") else {
            return match self.unified_only_dir() {
                Some(dir) => super::device_filter::attach(dir, rules),
                None => Err(CgroupError::NoDeviceController),
            };
        };
        // Each file opened once, a rule a write (the kernel parses one rule
        // per write), rather than an open and a close for every rule.
        let mut open: [Option<fs::File>; 2] = [None, None];
        for rule in rules {
            let name = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let line = rule.line();
            let fail = |source| CgroupError::DeviceRule {
                rule: line.clone(),
                source,
            };
            let file = match &mut open[usize::from(rule.allow)] {
                Some(file) => file,
                slot => slot.insert(
                    fs::OpenOptions::new()
                        .write(true)
                        .open(dir.join(name))
                        .map_err(fail)?,
                ),
            };
            let written = std::io::Write::write(file, line.as_bytes()).map_err(fail)?;
            if written != line.len() {
                return Err(fail(std::io::Error::from(std::io::ErrorKind::WriteZero)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_render_in_the_kernel_form() {
        let deny_all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let fuse: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow":true,"type":"c","major":10,"minor":229,"access":"rw"}"#,
        )
        .unwrap();
        let rules = rules_for(&[deny_all, fuse], &[]);
        assert_eq!(rules[0].line(), "a *:* rwm");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].line(), "c 10:229 rw");
        assert!(rules.iter().any(|r| r.line() == "c 136:* rwm"));
        assert!(rules.iter().any(|r| r.line() == "b *:* m"));
    }

    #[test]
    fn config_device_nodes_are_allowed() {
        let node: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/sda","type":"b","major":8,"minor":0}"#).unwrap();
        let rules = rules_for(&[], &[node]);
        assert_eq!(rules[0].line(), "b 8:0 rwm");
    }
}
