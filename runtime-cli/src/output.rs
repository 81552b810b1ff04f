//! What `state`, `list`, `ps --format json` and `features` print, byte for byte as runc.

use berth::ContainerState;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `state`: Go's json.MarshalIndent(.., "", "  "), written with no trailing newline.
pub fn state_json(s: &ContainerState) -> String {
    let mut out = String::from("{\n");
    for (i, (key, value)) in state_fields(s, "  ").iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str("  ");
        out.push_str(&json_string(key));
        out.push_str(": ");
        out.push_str(value);
    }
    out.push_str("\n}");
    out
}

/// An `events` line, as Go's json.Encoder writes runc's `types.Event`:
/// compact, a newline after it, `data` left out when there is none.
pub fn event_json(kind: &str, id: &str, data: Option<&berth::Stats>) -> String {
    let mut event = serde_json::json!({ "type": kind, "id": id });
    if let Some(data) = data {
        event["data"] = serde_json::to_value(data).unwrap_or_default();
    }
    format!("{event}\n")
}

/// `list --format json`: one compact array and a newline; an empty list is `null`.
pub fn list_json(states: &[ContainerState]) -> String {
    if states.is_empty() {
        // runc encodes a nil slice.
        return "null\n".to_string();
    }
    let items: Vec<String> = states.iter().map(state_compact).collect();
    format!("[{}]\n", items.join(","))
}

/// `list -q`: the ids, one per line.
pub fn list_quiet(states: &[ContainerState]) -> String {
    states.iter().map(|s| format!("{}\n", s.id)).collect()
}

/// `list`: Go's tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0) over
/// `ID PID STATUS BUNDLE CREATED OWNER`. Rows come in the caller's order
/// (runc's is the sorted directory listing).
pub fn list_table(states: &[ContainerState]) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "ID".into(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for s in states {
        rows.push([
            s.id.clone(),
            s.pid.to_string(),
            s.status.to_string(),
            s.bundle.to_string_lossy().into_owned(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    tabwrite(&rows)
}

/// `ps --format json`: the host pids as a compact array; none is `null`.
pub fn pids_json(pids: &[i32]) -> String {
    if pids.is_empty() {
        return "null\n".to_string();
    }
    let items: Vec<String> = pids.iter().map(i32::to_string).collect();
    format!("[{}]\n", items.join(","))
}

/// The tabwriter rule for rows of equal length: every cell but the last is
/// padded to max(12, widest cell in its column + 3), widths counted in runes.
fn tabwrite<const N: usize>(rows: &[[String; N]]) -> String {
    const MINWIDTH: usize = 12;
    const PADDING: usize = 3;
    let mut widths = [MINWIDTH; N];
    for row in rows {
        for (col, cell) in row.iter().enumerate().take(N.saturating_sub(1)) {
            widths[col] = widths[col].max(cell.chars().count() + PADDING);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (col, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if col + 1 < N {
                let pad = widths[col] - cell.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The fields of runc's containerState in its declaration order, values already encoded;
/// `indent` is the nesting prefix for the annotations object ("" = compact).
fn state_fields(s: &ContainerState, indent: &str) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("ociVersion", json_string(&s.oci_version)),
        ("id", json_string(&s.id)),
        ("pid", s.pid.to_string()),
        ("status", json_string(&s.status.to_string())),
        ("bundle", json_path(&s.bundle)),
        ("rootfs", json_path(&s.rootfs)),
        ("created", json_string(&s.created)),
    ];
    // omitempty on a map: left out when empty.
    if !s.annotations.is_empty() {
        let mut keys: Vec<&String> = s.annotations.keys().collect();
        // Go sorts map keys by their bytes, as String's Ord does.
        keys.sort();
        let entries: Vec<String> = keys
            .iter()
            .map(|k| {
                let sep = if indent.is_empty() { ":" } else { ": " };
                format!("{}{sep}{}", json_string(k), json_string(&s.annotations[*k]))
            })
            .collect();
        let value = if indent.is_empty() {
            format!("{{{}}}", entries.join(","))
        } else {
            let inner = format!("{indent}{indent}");
            format!(
                "{{\n{inner}{}\n{indent}}}",
                entries.join(&format!(",\n{inner}"))
            )
        };
        fields.push(("annotations", value));
    }
    fields.push(("owner", json_string(&s.owner)));
    fields
}

fn state_compact(s: &ContainerState) -> String {
    let fields: Vec<String> = state_fields(s, "")
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", json_string(k)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A string as Go's encoding/json writes it: HTML-safe (<, >, & escaped),
/// U+2028/U+2029 escaped, control characters as \u00XX except \n \r \t
/// (Go 1.19, which runc 1.1.5 was built with, has no \b or \f short forms).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_json_escaped(&mut out, s);
    out.push('"');
    out
}

/// A path as Go would encode its string: bytes that are not UTF-8 become the
/// six characters `\ufffd`, exactly as encoding/json does.
pub fn json_path(p: &Path) -> String {
    let mut out = String::from("\"");
    for chunk in p.as_os_str().as_bytes().utf8_chunks() {
        push_json_escaped(&mut out, chunk.valid());
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
    out
}

fn push_json_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// `features`: runc's key order (the struct's field order), four-space
/// indent, a newline after it.
pub fn features_json(features: &berth::features::Features) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serialising plain structs of strings and bools into a Vec cannot fail.
    if features.serialize(&mut ser).is_err() {
        return String::new();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth::Status;
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::path::PathBuf;

    fn st(id: &str, pid: i32, status: Status, bundle: &str, created: &str) -> ContainerState {
        ContainerState {
            oci_version: "1.0.2-dev".into(),
            id: id.into(),
            pid,
            status,
            bundle: PathBuf::from(bundle),
            rootfs: PathBuf::from(format!("{bundle}/rootfs")),
            created: created.into(),
            annotations: HashMap::new(),
            owner: "root".into(),
        }
    }

    fn with_annotations(mut s: ContainerState) -> ContainerState {
        s.annotations
            .insert("z.key".into(), "v<&>\"\\\n\t\u{1}\u{2028}é".into());
        s.annotations.insert("a.key".into(), "1".into());
        s
    }

    const LONG: &str = "a-much-longer-container-id";
    const T1: &str = "2026-11-22T20:04:52.092371846Z";
    const T2: &str = "2026-11-22T20:04:52.032646341Z";

    // Captured from `runc state c2` (no trailing newline; `state` leaves owner empty).
    const RUNC_STATE: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "id": "c2",
  "pid": 8075,
  "status": "created",
  "bundle": "/tmp/bü\u003cx\u003e",
  "rootfs": "/tmp/bü\u003cx\u003e/rootfs",
  "created": "2026-11-22T20:04:52.032646341Z",
  "annotations": {
    "a.key": "1",
    "z.key": "v\u003c\u0026\u003e\"\\\n\t\u0001\u2028é"
  },
  "owner": ""
}"#;

    #[test]
    fn state_matches_runc() {
        let mut s = with_annotations(st("c2", 8075, Status::Created, "/tmp/bü<x>", T2));
        s.owner = String::new();
        assert_eq!(state_json(&s), RUNC_STATE);
    }

    #[test]
    fn state_without_annotations_omits_the_field() {
        let s = st("c1", 0, Status::Stopped, "/tmp/b", T1);
        let expected = "{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"id\": \"c1\",\n  \"pid\": 0,\n  \"status\": \"stopped\",\n  \"bundle\": \"/tmp/b\",\n  \"rootfs\": \"/tmp/b/rootfs\",\n  \"created\": \"2026-11-22T20:04:52.092371846Z\",\n  \"owner\": \"root\"\n}";
        assert_eq!(state_json(&s), expected);
    }

    #[test]
    fn list_table_matches_runc() {
        // Captured from `runc list`; the bundle column counts runes, not bytes.
        let expected = "\
ID                           PID         STATUS      BUNDLE       CREATED                          OWNER
a-much-longer-container-id   8089        created     /tmp/b       2026-11-22T20:04:52.092371846Z   root
c2                           8075        created     /tmp/bü<x>   2026-11-22T20:04:52.032646341Z   root
";
        let states = [
            st(LONG, 8089, Status::Created, "/tmp/b", T1),
            with_annotations(st("c2", 8075, Status::Created, "/tmp/bü<x>", T2)),
        ];
        assert_eq!(list_table(&states), expected);
    }

    #[test]
    fn list_table_empty_and_short_columns_keep_minwidth() {
        assert_eq!(
            list_table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
        let expected = "\
ID          PID         STATUS      BUNDLE      CREATED                          OWNER
c1          7645        created     /tmp/b      2026-11-22T20:04:34.529334259Z   root
";
        let s = st(
            "c1",
            7645,
            Status::Created,
            "/tmp/b",
            "2026-11-22T20:04:34.529334259Z",
        );
        assert_eq!(list_table(&[s]), expected);
    }

    #[test]
    fn list_json_matches_runc() {
        let expected = r#"[{"ociVersion":"1.0.2-dev","id":"a-much-longer-container-id","pid":8089,"status":"created","bundle":"/tmp/b","rootfs":"/tmp/b/rootfs","created":"2026-11-22T20:04:52.092371846Z","owner":"root"},{"ociVersion":"1.0.2-dev","id":"c2","pid":8075,"status":"created","bundle":"/tmp/bü\u003cx\u003e","rootfs":"/tmp/bü\u003cx\u003e/rootfs","created":"2026-11-22T20:04:52.032646341Z","annotations":{"a.key":"1","z.key":"v\u003c\u0026\u003e\"\\\n\t\u0001\u2028é"},"owner":"root"}]
"#;
        let states = [
            st(LONG, 8089, Status::Created, "/tmp/b", T1),
            with_annotations(st("c2", 8075, Status::Created, "/tmp/bü<x>", T2)),
        ];
        assert_eq!(list_json(&states), expected);
        assert_eq!(list_json(&[]), "null\n");
    }

    #[test]
    fn list_quiet_and_pids() {
        let states = [
            st("c1", 1, Status::Running, "/b", T1),
            st("t6", 2, Status::Paused, "/b", T1),
        ];
        assert_eq!(list_quiet(&states), "c1\nt6\n");
        assert_eq!(list_quiet(&[]), "");
        assert_eq!(pids_json(&[]), "null\n");
        assert_eq!(pids_json(&[12, 345]), "[12,345]\n");
    }

    #[test]
    fn json_strings_escape_like_go() {
        assert_eq!(
            json_string("a\u{8}\u{c}\u{1f}\u{7f}"),
            "\"a\\u0008\\u000c\\u001f\u{7f}\""
        );
        assert_eq!(json_string("\u{2029}\u{fffd}"), "\"\\u2029\u{fffd}\"");
        let p = Path::new(OsStr::from_bytes(b"/a\xffb\xc3"));
        assert_eq!(json_path(p), "\"/a\\ufffdb\\ufffd\"");
    }

    #[test]
    fn features_json_keeps_runc_key_order() {
        let text = features_json(&berth::features::features());
        let position = |key: &str| {
            text.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} missing"))
        };
        let top = [
            "ociVersionMin",
            "ociVersionMax",
            "hooks",
            "mountOptions",
            "linux",
            "annotations",
            "potentiallyUnsafeConfigAnnotations",
        ];
        assert!(
            top.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
        let linux = [
            "namespaces",
            "capabilities",
            "cgroup",
            "seccomp",
            "apparmor",
            "selinux",
            "mountExtensions",
            "memoryPolicy",
            "netDevices",
        ];
        assert!(
            linux.windows(2).all(|w| position(w[0]) < position(w[1])),
            "{text}"
        );
        assert!(
            text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n"),
            "{text}"
        );
        assert!(text.contains("\n    \"annotations\": {\n        \"io.github.berth.version\": "));
        assert!(text.ends_with("]\n}\n"), "{text}");
    }
}
