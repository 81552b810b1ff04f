//! `org.systemd.property.<Name>` annotations: extra properties for the
//! container's unit, as runc passes them. The value is a D-Bus value in
//! GVariant text form, as runc reads it (godbus's ParseVariant): `uint64 5`,
//! `'text'`, `true`, `['a', 'b']`; a name ending in a lowercase letter and
//! `Sec` (`TimeoutStopSec`) is systemd's `...USec` property, its number
//! taken as seconds.

use super::error::SystemdError;
use crate::cgroups::dbus::Value;
use std::collections::HashMap;

const PREFIX: &str = "org.systemd.property.";

/// Properties Berth refuses although runc passes them on: they would put
/// the unit's cgroup (or the init) somewhere other than where Berth makes
/// and records the container's cgroup.
const REFUSED: &[&str] = &["Slice", "PIDs"];

/// The unit properties the annotations ask for, sorted by annotation name
/// (runc's order is a Go map's, i.e. none).
pub fn from_annotations(
    annotations: &HashMap<String, String>,
) -> Result<Vec<(String, Value)>, SystemdError> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut properties = Vec::new();
    for key in keys {
        let text = &annotations[key];
        let name = &key[PREFIX.len()..];
        let bad_name = |why: &'static str| SystemdError::AnnotationName {
            key: key.clone(),
            why,
        };
        if name.len() < 3 {
            return Err(bad_name("too short"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad_name("contains non-alphabetic character"));
        }
        let bad_value = |why: String| SystemdError::AnnotationValue {
            key: key.clone(),
            value: text.clone(),
            why,
        };
        let mut value = parse_value(text).map_err(bad_value)?;
        let mut name = name.to_string();
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                name = format!("{stem}USec");
                value = seconds_to_usec(&value).map_err(|why| bad_value(why.to_string()))?;
            }
        }
        if REFUSED.contains(&name.as_str()) {
            return Err(bad_name(
                "Berth sets it itself from cgroupsPath and the container's init",
            ));
        }
        properties.push((name, value));
    }
    Ok(properties)
}

fn seconds_to_usec(value: &Value) -> Result<Value, &'static str> {
    const M: u64 = 1_000_000;
    let signed = |n: i64| u64::try_from(n).map_err(|_| "a negative time");
    let seconds = match value {
        Value::Byte(n) => u64::from(*n),
        Value::U16(n) => u64::from(*n),
        Value::U32(n) => u64::from(*n),
        Value::U64(n) => *n,
        Value::I16(n) => signed(i64::from(*n))?,
        Value::I32(n) => signed(i64::from(*n))?,
        Value::I64(n) => signed(*n)?,
        Value::F64(f) if *f >= 0.0 => return Ok(Value::U64((*f * M as f64) as u64)),
        Value::F64(_) => return Err("a negative time"),
        _ => return Err("not a number"),
    };
    seconds
        .checked_mul(M)
        .map(Value::U64)
        .ok_or("too many seconds")
}

/// One value in GVariant text form: an optional type keyword, then a
/// number, a boolean, a quoted string or an array of strings.
fn parse_value(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if let Some((keyword, rest)) = text.split_once(char::is_whitespace) {
        let rest = rest.trim();
        let number = |what: &str| format!("{rest:?} is not {what}");
        let typed = match keyword {
            "byte" => Some(rest.parse().map(Value::Byte).map_err(|_| number("a byte"))),
            "int16" => Some(rest.parse().map(Value::I16).map_err(|_| number("an int16"))),
            "uint16" => Some(rest.parse().map(Value::U16).map_err(|_| number("a uint16"))),
            "int32" => Some(rest.parse().map(Value::I32).map_err(|_| number("an int32"))),
            "uint32" => Some(rest.parse().map(Value::U32).map_err(|_| number("a uint32"))),
            "int64" => Some(rest.parse().map(Value::I64).map_err(|_| number("an int64"))),
            "uint64" => Some(rest.parse().map(Value::U64).map_err(|_| number("a uint64"))),
            "double" => Some(rest.parse().map(Value::F64).map_err(|_| number("a double"))),
            "string" => Some(quoted(rest).map(Value::Str)),
            "objectpath" => Some(quoted(rest).map(Value::ObjectPath)),
            "signature" => Some(quoted(rest).map(Value::Signature)),
            "@as" if rest == "[]" => Some(Ok(Value::StrArray(Vec::new()))),
            _ => None,
        };
        if let Some(value) = typed {
            return value;
        }
    }
    match text {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if text.starts_with(['\'', '"']) {
        return quoted(text).map(Value::Str);
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return string_list(inner).map(Value::StrArray);
    }
    // GVariant's untyped numbers: an integer is an int32, anything else a double.
    if let Ok(n) = text.parse::<i32>() {
        return Ok(Value::I32(n));
    }
    if text.contains(['.', 'e', 'E']) {
        if let Ok(f) = text.parse::<f64>() {
            return Ok(Value::F64(f));
        }
    }
    Err(format!(
        "{text:?} is not a value Berth can read (a number, true, false, a quoted string or a list of strings, optionally after a type such as uint64)"
    ))
}

/// `'text'` or `"text"`, with backslash escapes.
fn quoted(text: &str) -> Result<String, String> {
    let (value, rest) = quoted_prefix(text)?;
    if !rest.trim().is_empty() {
        return Err(format!("{text:?}: text after the closing quote"));
    }
    Ok(value)
}

fn quoted_prefix(text: &str) -> Result<(String, &str), String> {
    let mut chars = text.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err(format!("{text:?} is not a quoted string")),
    };
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => value.push(e),
                None => break,
            },
            c if c == quote => return Ok((value, &text[i + 1..])),
            c => value.push(c),
        }
    }
    Err(format!("{text:?}: no closing quote"))
}

fn string_list(inner: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (item, after) = quoted_prefix(rest)?;
        items.push(item);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("[{inner}]: expected ',' between strings")),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, value: &str) -> Result<Vec<(String, Value)>, SystemdError> {
        from_annotations(&HashMap::from([(key.to_string(), value.to_string())]))
    }

    #[test]
    fn values_are_read_as_runc_reads_them() {
        let p = |v: &str| parse_value(v).unwrap();
        assert_eq!(p("uint64 123456789"), Value::U64(123456789));
        assert_eq!(
            p("'inactive-or-failed'"),
            Value::Str("inactive-or-failed".into())
        );
        assert_eq!(p("\"a\\\"b\""), Value::Str("a\"b".into()));
        assert_eq!(p("true"), Value::Bool(true));
        assert_eq!(p("42"), Value::I32(42));
        assert_eq!(p("1.5"), Value::F64(1.5));
        assert_eq!(p("int64 -3"), Value::I64(-3));
        assert_eq!(
            p("['a.service', 'b.service']"),
            Value::StrArray(vec!["a.service".into(), "b.service".into()])
        );
        assert_eq!(p("@as []"), Value::StrArray(vec![]));
        for bad in ["uint64 x", "'open", "nonsense", "[1, 2]", "byte 256"] {
            assert!(parse_value(bad).is_err(), "{bad} was read");
        }
    }

    #[test]
    fn sec_names_become_usec_with_the_number_in_seconds() {
        let p = one("org.systemd.property.TimeoutStopSec", "uint64 2").unwrap();
        assert_eq!(p, [("TimeoutStopUSec".into(), Value::U64(2_000_000))]);
        let p = one("org.systemd.property.TimeoutStopUSec", "uint64 123456789").unwrap();
        assert_eq!(p, [("TimeoutStopUSec".into(), Value::U64(123456789))]);
        assert!(matches!(
            one("org.systemd.property.TimeoutStopSec", "'soon'"),
            Err(SystemdError::AnnotationValue { .. })
        ));
        // Other annotations are not properties.
        assert_eq!(one("org.example.x", "whatever").unwrap(), []);
    }

    #[test]
    fn bad_names_are_refused_in_runcs_words() {
        let err = one("org.systemd.property.ab", "true").unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation org.systemd.property.ab name incorrect: too short"
        );
        let err = one("org.systemd.property.Cpu2", "true").unwrap_err();
        assert_eq!(
            err.to_string(),
            "annotation org.systemd.property.Cpu2 name incorrect: contains non-alphabetic character"
        );
        assert!(one("org.systemd.property.Slice", "'x.slice'").is_err());
        let err = one("org.systemd.property.CollectMode", "bogus").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("annotation org.systemd.property.CollectMode=bogus value parse error: "));
    }
}
