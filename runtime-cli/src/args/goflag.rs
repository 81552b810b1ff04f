//! Go's `flag` package and urfave/cli v1's argument reordering, as runc 1.1
//! uses them, plus the Go number and duration syntax their values follow.

use crate::log::go_quote;
use std::collections::{HashMap, HashSet};
use Kind::{Bool, Duration, Int, IntList, List, Str};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Str,
    /// Repeatable; urfave v1 does not split on commas.
    List,
    /// Repeatable, each value a base-10 int64 (urfave's Int64Slice): one that
    /// does not parse is a usage error, as for Int.
    IntList,
    Int,
    Duration,
}

pub(super) struct Flag {
    /// Long name first, then the short alias, as urfave's "name, n".
    pub(super) names: &'static [&'static str],
    pub(super) kind: Kind,
    pub(super) usage: &'static str,
    pub(super) hidden: bool,
}

pub(super) const fn fl(names: &'static [&'static str], kind: Kind, usage: &'static str) -> Flag {
    Flag {
        names,
        kind,
        usage,
        hidden: false,
    }
}

pub(super) const fn hidden(names: &'static [&'static str], kind: Kind) -> Flag {
    Flag {
        names,
        kind,
        usage: "",
        hidden: true,
    }
}

#[derive(Debug, Clone)]
pub(super) enum Val {
    Bool(bool),
    Str(String),
    List(Vec<String>),
    Int(i64),
    Dur(i64),
}

#[derive(Default)]
pub(super) struct Values {
    /// By long name.
    set: HashMap<&'static str, Val>,
    /// Names as typed, for the two-forms rule.
    visited: HashSet<&'static str>,
}

impl Values {
    pub(super) fn raw(&self, name: &str) -> Option<&str> {
        match self.set.get(name) {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|s| !s.is_empty()).map(str::to_string)
    }
    pub(super) fn opt_flag(&self, name: &str) -> Option<bool> {
        match self.set.get(name) {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub(super) fn flag(&self, name: &str) -> bool {
        self.opt_flag(name).unwrap_or(false)
    }
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        match self.set.get(name) {
            Some(Val::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
    pub(super) fn int(&self, name: &str) -> Option<i64> {
        match self.set.get(name) {
            Some(Val::Int(n)) => Some(*n),
            _ => None,
        }
    }
    pub(super) fn dur(&self, name: &str) -> Option<i64> {
        match self.set.get(name) {
            Some(Val::Dur(n)) => Some(*n),
            _ => None,
        }
    }
    pub(super) fn fds(&self) -> u32 {
        self.int("preserve-fds")
            .map_or(0, |n| n.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

pub(super) fn lookup<'a>(flags: &[&'a Flag], name: &str) -> Option<(&'a Flag, &'static str)> {
    flags
        .iter()
        .find_map(|f| f.names.iter().find(|n| **n == name).map(|n| (*f, *n)))
}

/// urfave v1.22's argIsFlag: strip up to three dashes and any `=value`, then look the name up.
pub(super) fn arg_is_flag(flags: &[&Flag], arg: &str) -> bool {
    if arg == "-" || arg == "--" || !arg.starts_with('-') {
        return false;
    }
    let mut name = arg.strip_prefix("--").unwrap_or(arg);
    name = name.strip_prefix('-').unwrap_or(name);
    let name = name.split('=').next().unwrap_or(name);
    lookup(flags, name).is_some()
}

/// urfave v1.22's reorderArgs, quirks included: a word after a boolean flag
/// travels with it, so `kill ID --all KILL` kills container KILL, as runc does.
pub(super) fn reorder_args(flags: &[&Flag], args: &[String]) -> Vec<String> {
    let (mut reordered, mut remaining) = (Vec::new(), Vec::new());
    let mut next_may_be_value = false;
    for (i, arg) in args.iter().enumerate() {
        if next_may_be_value && !arg_is_flag(flags, arg) {
            next_may_be_value = false;
            reordered.push(arg.clone());
        } else if arg == "--" {
            remaining.insert(0, arg.clone());
            remaining.extend_from_slice(&args[i + 1..]);
            break;
        } else if arg_is_flag(flags, arg) {
            reordered.push(arg.clone());
            next_may_be_value = !arg.contains('=');
        } else {
            remaining.push(arg.clone());
        }
    }
    reordered.extend(remaining);
    reordered
}

/// Go's FlagSet.Parse: returns the values, the positional arguments, and the first error.
pub(super) fn parse_flags(
    flags: &[&Flag],
    args: &[String],
) -> (Values, Vec<String>, Option<String>) {
    let mut vals = Values::default();
    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_str();
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let dashes = if s.as_bytes()[1] == b'-' { 2 } else { 1 };
        if s == "--" {
            i += 1;
            break;
        }
        let body = &s[dashes..];
        if body.starts_with('-') || body.starts_with('=') {
            return (vals, vec![], Some(format!("bad flag syntax: {s}")));
        }
        i += 1;
        // The `=` is searched from the second byte: Go forbids an empty name.
        let (name, value) = match body.bytes().skip(1).position(|b| b == b'=') {
            Some(p) => (&body[..p + 1], Some(&body[p + 2..])),
            None => (body, None),
        };
        let Some((flag, typed)) = lookup(flags, name) else {
            return (
                vals,
                vec![],
                Some(format!("flag provided but not defined: -{name}")),
            );
        };
        vals.visited.insert(typed);
        let key = flag.names[0];
        if flag.kind == Bool {
            let b = match value {
                None => true,
                Some(v) => match go_parse_bool(v) {
                    Some(b) => b,
                    None => {
                        let msg = format!(
                            "invalid boolean value {} for -{name}: parse error",
                            go_quote(v)
                        );
                        return (vals, vec![], Some(msg));
                    }
                },
            };
            vals.set.insert(key, Val::Bool(b));
            continue;
        }
        let value = match value {
            Some(v) => v.to_string(),
            // A value flag takes the next word even when it starts with '-'.
            None if i < args.len() => {
                i += 1;
                args[i - 1].clone()
            }
            None => {
                return (
                    vals,
                    vec![],
                    Some(format!("flag needs an argument: -{name}")),
                )
            }
        };
        let parsed = match flag.kind {
            Int => go_parse_int(&value).map(Val::Int),
            Duration => go_parse_duration(&value).map(Val::Dur).ok_or("parse error"),
            List => {
                let mut list = vals.list(key);
                list.push(value.clone());
                Ok(Val::List(list))
            }
            // urfave's Int64Slice parses in base 10 only (no 0x, no 0o).
            IntList => value.parse::<i64>().map_err(|_| "parse error").map(|_| {
                let mut list = vals.list(key);
                list.push(value.clone());
                Val::List(list)
            }),
            Bool | Str => Ok(Val::Str(value.clone())),
        };
        match parsed {
            Ok(v) => {
                vals.set.insert(key, v);
            }
            Err(why) => {
                let msg = format!("invalid value {} for flag -{name}: {why}", go_quote(&value));
                return (vals, vec![], Some(msg));
            }
        }
    }
    (vals, args[i..].to_vec(), None)
}

/// urfave's normalizeFlags: both the long and short form given is an error.
pub(super) fn normalize(flags: &[&Flag], vals: &Values) -> Option<String> {
    for f in flags {
        let mut first: Option<&str> = None;
        for name in f.names.iter().filter(|n| vals.visited.contains(*n)) {
            match first {
                Some(other) => {
                    return Some(format!(
                        "Cannot use two forms of the same flag: {name} {other}"
                    ))
                }
                None => first = Some(name),
            }
        }
    }
    None
}

// ---- Go's strconv and time number syntax, with the flag package's error words ----

pub(super) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// strconv.ParseUint(s, 0, 64): 0x/0o/0b prefixes, a leading 0 for octal, `_` separators.
pub(super) fn go_parse_uint(s: &str) -> Result<u64, &'static str> {
    let b = s.as_bytes();
    let (base, digits): (u64, &[u8]) = match b {
        [] => return Err("parse error"),
        [b'0', p, _, ..] if matches!(p.to_ascii_lowercase(), b'b' | b'o' | b'x') => (
            match p.to_ascii_lowercase() {
                b'b' => 2,
                b'o' => 8,
                _ => 16,
            },
            &b[2..],
        ),
        [b'0', rest @ ..] => (8, rest),
        _ => (10, b),
    };
    let (mut n, mut underscores) = (0u64, false);
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => return Err("parse error"),
        };
        if u64::from(d) >= base {
            return Err("parse error");
        }
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(d)))
            .ok_or("value out of range")?;
    }
    if underscores && !underscores_ok(s) {
        return Err("parse error");
    }
    Ok(n)
}

/// strconv.ParseInt(s, 0, 64).
pub(super) fn go_parse_int(s: &str) -> Result<i64, &'static str> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = go_parse_uint(body)?;
    match (neg, n) {
        (false, n) if n <= i64::MAX as u64 => Ok(n as i64),
        (true, n) if n <= 1 << 63 => Ok((n as i64).wrapping_neg()),
        _ => Err("value out of range"),
    }
}

/// Go's underscoreOK: `_` only between digits (or after a base prefix).
pub(super) fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let (mut saw, mut i, mut hex) = (b'^', 0, false);
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        (saw, i, hex) = (b'0', 2, b[1].eq_ignore_ascii_case(&b'x'));
    }
    for &c in &b[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

/// time.ParseDuration, in nanoseconds: "300ms", "1.5h", "2h45m", "-1s", "0".
pub(super) fn go_parse_duration(s: &str) -> Option<i64> {
    let mut b = s.as_bytes();
    let neg = matches!(b.first(), Some(b'-'));
    if matches!(b.first(), Some(b'-' | b'+')) {
        b = &b[1..];
    }
    if b == b"0" {
        return Some(0);
    }
    if b.is_empty() {
        return None;
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !b.is_empty() {
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return None;
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &b[..int_len] {
            whole = whole
                .checked_mul(10)?
                .checked_add(u64::from(c - b'0'))
                .filter(|v| *v <= LIMIT)?;
        }
        b = &b[int_len..];
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0);
        if b.first() == Some(&b'.') {
            b = &b[1..];
            frac_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
            for &c in &b[..frac_len] {
                // Go stops accumulating digits that would overflow, without failing.
                if let Some(v) = frac
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(c - b'0')))
                {
                    frac = v;
                    scale *= 10.0;
                }
            }
            b = &b[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return None;
        }
        let unit_len = b
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        let unit: u64 = match &b[..unit_len] {
            b"ns" => 1,
            // "us", "µs" (U+00B5) and "μs" (U+03BC), as UTF-8.
            b"us" | [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        b = &b[unit_len..];
        if whole > LIMIT / unit {
            return None;
        }
        let mut v = whole * unit;
        if frac > 0 {
            v = v
                .checked_add((frac as f64 * (unit as f64 / scale)) as u64)
                .filter(|v| *v <= LIMIT)?;
        }
        total = total.checked_add(v).filter(|t| *t <= LIMIT)?;
    }
    match (neg, total) {
        (true, t) => Some((t as i64).wrapping_neg()),
        (false, t) if t < LIMIT => Some(t as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_numbers() {
        assert_eq!(go_parse_int("0x1F"), Ok(31));
        assert_eq!(go_parse_int("0o17"), Ok(15));
        assert_eq!(go_parse_int("0b101"), Ok(5));
        assert_eq!(go_parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            go_parse_int("9223372036854775808"),
            Err("value out of range")
        );
        assert_eq!(go_parse_int("0x_1f"), Ok(31));
        for bad in ["", "+", "0x", "08", "_1", "1_", "1__0", "1e3", " 1"] {
            assert_eq!(go_parse_int(bad), Err("parse error"), "{bad}");
        }
        assert_eq!(go_parse_uint("-1"), Err("parse error"));
        let d = |s| go_parse_duration(s);
        assert_eq!(
            (
                d("0"),
                d("-0"),
                d("300ms"),
                d("1us"),
                d("1µs"),
                d("2h45m"),
                d(".5s"),
                d("1.s")
            ),
            (
                Some(0),
                Some(0),
                Some(300_000_000),
                Some(1_000),
                Some(1_000),
                Some(9_900_000_000_000),
                Some(500_000_000),
                Some(1_000_000_000)
            )
        );
        assert_eq!(d("2562047h47m16.854775807s"), Some(i64::MAX));
        assert_eq!(d("-2562047h47m16.854775808s"), Some(i64::MIN));
        for bad in [
            "",
            "1",
            "s",
            ".s",
            "1x",
            "2562047h47m16.854775808s",
            "1.5.5s",
            "+-1s",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
