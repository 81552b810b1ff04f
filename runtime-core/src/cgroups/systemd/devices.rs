//! The container's device rules as systemd's `DevicePolicy` and `DeviceAllow`.
//! Once any unit in a slice has device settings, systemd manages the devices
//! controller for the whole slice and writes each unit's own device policy
//! on `daemon-reload`: a container unit without one would get every device
//! opened to it. So the unit carries the rules, reduced as the kernel
//! applies them (a default and exceptions), in systemd's syntax, as runc
//! sends them. Berth still writes its own rules to the cgroup afterwards
//! (systemd cannot say everything, e.g. `c *:5`).

use crate::cgroups::dbus::Value;
use crate::cgroups::device_filter::Policy;
use crate::cgroups::DeviceRule;

/// systemd reads `char-MAJOR` and `/dev/char/MAJOR:MINOR` without looking
/// at /dev since v240; before, only existing nodes and /proc/devices group names.
const NUMBERS_SINCE: u32 = 240;

/// `DeviceAllow=` (cleared first: the list adds up otherwise), `DevicePolicy=`,
/// then the allowed devices. `version`: systemd's, 0 when unknown (taken as recent).
pub fn device_properties(rules: &[DeviceRule], version: u32) -> Vec<(String, Value)> {
    let old_systemd = version != 0 && version < NUMBERS_SINCE;
    let clear = ("DeviceAllow".to_string(), Value::StrPairArray(Vec::new()));
    let policy = |p: &str| ("DevicePolicy".to_string(), Value::Str(p.into()));
    let reduced = Policy::from_rules(rules);
    if reduced.default_allow {
        // systemd has no deny list: "auto" with no entries allows all; with
        // denials, runc settles for denying all here (Berth's own rules
        // written next are what holds until a daemon-reload).
        return if reduced.exceptions.is_empty() {
            vec![clear, policy("auto")]
        } else {
            vec![clear, policy("strict")]
        };
    }
    let mut allowed = Vec::new();
    for e in &reduced.exceptions {
        let group = match e.kind {
            'b' => "block",
            'c' => "char",
            _ => continue,
        };
        let path = match (e.major, e.minor) {
            (None, None) => format!("{group}-*"),
            // systemd has no syntax for "any major, this minor".
            (None, Some(_)) => continue,
            // Older systemd wants a /proc/devices group name, which Berth
            // does not look up (runc does): such a rule holds only until a
            // daemon-reload there.
            (Some(_), None) if old_systemd => continue,
            (Some(major), None) => format!("{group}-{major}"),
            (Some(major), Some(minor)) => format!("/dev/{group}/{major}:{minor}"),
        };
        if old_systemd && path.starts_with('/') && !std::path::Path::new(&path).exists() {
            continue;
        }
        // systemd's order, as `systemctl show` prints it.
        let access: String = [(2, 'r'), (4, 'w'), (1, 'm')]
            .iter()
            .filter(|(bit, _)| e.access & bit != 0)
            .map(|(_, c)| *c)
            .collect();
        allowed.push((path, access));
    }
    vec![
        clear,
        policy("strict"),
        ("DeviceAllow".to_string(), Value::StrPairArray(allowed)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn a_deny_default_becomes_strict_with_an_allow_list() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rw"),
            rule(true, 'b', None, Some(5), "r"),
            rule(true, 'c', Some(1), Some(12345), "r"),
        ];
        let props = device_properties(&rules, 252);
        assert_eq!(
            props[1],
            ("DevicePolicy".into(), Value::Str("strict".into()))
        );
        assert_eq!(
            props[2],
            (
                "DeviceAllow".into(),
                Value::StrPairArray(vec![
                    ("char-*".into(), "m".into()),
                    ("/dev/char/1:3".into(), "rwm".into()),
                    ("char-136".into(), "rw".into()),
                    ("/dev/char/1:12345".into(), "r".into()),
                ])
            )
        );
        // systemd 239: no numbers for a major, and only nodes that exist.
        let old = device_properties(&rules, 239);
        let Value::StrPairArray(allowed) = &old[2].1 else {
            panic!("{old:?}")
        };
        let paths: Vec<&str> = allowed.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"char-*"), "{paths:?}");
        assert!(!paths.contains(&"char-136"), "{paths:?}");
        assert!(!paths.contains(&"/dev/char/1:12345"), "{paths:?}");
    }

    #[test]
    fn allow_all_is_auto_and_a_deny_list_denies_all() {
        let all = device_properties(&[rule(true, 'a', None, None, "rwm")], 252);
        assert_eq!(all[1], ("DevicePolicy".into(), Value::Str("auto".into())));
        assert_eq!(all.len(), 2);
        let deny_list = device_properties(
            &[
                rule(true, 'a', None, None, "rwm"),
                rule(false, 'c', Some(1), Some(3), "w"),
            ],
            252,
        );
        assert_eq!(
            deny_list,
            [
                ("DeviceAllow".into(), Value::StrPairArray(vec![])),
                ("DevicePolicy".into(), Value::Str("strict".into())),
            ]
        );
    }
}
