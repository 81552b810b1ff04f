//! Small pure checks the tests share: JSON key order, RFC 3339, capability masks, polling.

use std::thread::sleep;
use std::time::{Duration, Instant};

/// Capability names in kernel bit order (linux/capability.h).
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The name of capability `bit` (kernel bit order), if this table knows it.
pub fn capability_name(bit: usize) -> Option<&'static str> {
    CAPABILITIES.get(bit).copied()
}

/// The bit mask `/proc/<pid>/status` shows for a set of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |mask, name| {
        let bit = CAPABILITIES
            .iter()
            .position(|cap| cap == name)
            .unwrap_or_else(|| panic!("unknown capability {name}"));
        mask | 1 << bit
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, the form Go's time.RFC3339Nano produces.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

/// The keys of a JSON object's top level, in the order the text has them. (serde_json
/// sorts keys unless built with preserve_order, which would leak into every workspace
/// crate through feature unification.)
pub fn top_level_keys(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut chars = json.chars().peekable();
    let mut expecting_key = false;
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => {
                depth += 1;
                expecting_key = depth == 1 && c == '{';
            }
            '}' | ']' => depth -= 1,
            ',' if depth == 1 => expecting_key = true,
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            text.push(c);
                            text.extend(chars.next());
                        }
                        '"' => break,
                        _ => text.push(c),
                    }
                }
                if depth == 1 && expecting_key {
                    keys.push(text);
                    expecting_key = false;
                }
            }
            _ => {}
        }
    }
    keys
}

/// One line of `/proc/<pid>/mountinfo` (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem: equal for two views of one superblock.
    pub dev: String,
    /// The directory of the filesystem that forms this mount's root.
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    /// Per-mount options, e.g. ["ro", "nosuid", "relatime"].
    pub options: Vec<String>,
    /// Per-superblock options, e.g. ["rw", "mode=755"].
    pub super_options: Vec<String>,
    /// The optional fields: propagation, e.g. ["shared:5"], ["master:3"], ["unbindable"].
    pub optional: Vec<String>,
}

impl Mount {
    /// The peer group of a `shared:N` optional field.
    pub fn shared_group(&self) -> Option<&str> {
        self.optional.iter().find_map(|o| o.strip_prefix("shared:"))
    }

    /// The peer group of a `master:N` optional field.
    pub fn master_group(&self) -> Option<&str> {
        self.optional.iter().find_map(|o| o.strip_prefix("master:"))
    }
}

/// Parses mountinfo text; panics on a malformed line.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (before, after) = line
                .split_once(" - ")
                .unwrap_or_else(|| panic!("mountinfo line without separator: {line}"));
            let fields: Vec<&str> = before.split(' ').collect();
            let tail: Vec<&str> = after.split(' ').collect();
            assert!(
                fields.len() >= 6 && tail.len() >= 3,
                "malformed mountinfo line: {line}"
            );
            let split = |s: &str| s.split(',').map(str::to_owned).collect();
            Mount {
                dev: fields[2].to_owned(),
                root: fields[3].replace("\\040", " "),
                mount_point: fields[4].replace("\\040", " "),
                fs_type: tail[0].to_owned(),
                options: split(fields[5]),
                super_options: split(tail[2]),
                optional: fields[6..].iter().map(|f| f.to_string()).collect(),
            }
        })
        .collect()
}

/// The last (topmost) mount at `path`; panics, listing the table, if there is none.
#[track_caller]
pub fn mount_at<'a>(mounts: &'a [Mount], path: &str) -> &'a Mount {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path}: {mounts:#?}"))
}

/// Whether a list of mount options holds `option`.
pub fn has_option(options: &[String], option: &str) -> bool {
    options.iter().any(|o| o == option)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_mask_of_runc_defaults() {
        let mask = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        assert_eq!(mask, 0x2000_0420);
    }

    #[test]
    fn rfc3339_forms() {
        assert!(is_rfc3339("2026-11-22T20:05:23.628256975Z"));
        assert!(is_rfc3339("2026-11-22T20:05:23Z"));
        assert!(is_rfc3339("2026-11-22T20:05:23+01:00"));
        assert!(!is_rfc3339("2026-11-22 20:05:23Z"));
        assert!(!is_rfc3339("2026-11-22T20:05:23"));
        assert!(!is_rfc3339("2026-11-22T20:05:23.Z"));
        assert!(!is_rfc3339("1795377899"));
    }

    #[test]
    fn mountinfo_line_parses() {
        let text = "71 65 0:44 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n\
                    68 67 0:42 / /dev/pts rw,nosuid shared:5 - devpts devpts rw,gid=5,mode=620\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts[0].mount_point, "/sys");
        assert_eq!(mounts[0].fs_type, "sysfs");
        assert_eq!(
            mounts[0].options,
            ["ro", "nosuid", "nodev", "noexec", "relatime"]
        );
        assert_eq!(mounts[1].fs_type, "devpts");
        assert_eq!(mounts[1].super_options, ["rw", "gid=5", "mode=620"]);
        assert_eq!(mounts[0].optional, Vec::<String>::new());
        assert_eq!(mounts[1].optional, ["shared:5"]);
        assert_eq!(mounts[1].shared_group(), Some("5"));
        assert_eq!(mounts[1].dev, "0:42");
        assert_eq!(mounts[1].root, "/");
    }

    #[test]
    fn top_level_keys_skip_nested_objects_and_values() {
        let json = r#"{"a": 1, "b": {"x": "y", "c": 2}, "s": "d\"e:", "l": [{"q": 1}], "z": null}"#;
        assert_eq!(top_level_keys(json), ["a", "b", "s", "l", "z"]);
    }
}
