//! `update`: runc's flags (or a `--resources` JSON) turned into the
//! LinuxResources the library applies, with runc's parsing and error texts.

use crate::args::UpdateArgs;
use crate::log::{go_errno_text, go_quote};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};
use std::io::Read;

/// The resources `args` ask for. `stdin` is read only for `--resources -`.
pub fn resources(args: &UpdateArgs, stdin: impl Read) -> Result<LinuxResources, String> {
    if let Some(source) = &args.resources {
        return read_resources(source, stdin);
    }
    let mut memory = Map::new();
    let mut cpu = Map::new();
    let mut resources = Map::new();
    if let Some(weight) = args.blkio_weight.filter(|w| *w != 0) {
        // runc truncates to uint16 silently; a wrapped weight would be a different limit.
        let weight = u16::try_from(weight).map_err(|_| {
            format!("invalid value for blkio-weight: {weight} is out of range (10 to 1000)")
        })?;
        resources.insert("blockIO".into(), json!({ "weight": weight }));
    }
    if let Some(cpus) = &args.cpuset_cpus {
        cpu.insert("cpus".into(), json!(cpus));
    }
    if let Some(mems) = &args.cpuset_mems {
        cpu.insert("mems".into(), json!(mems));
    }
    for (flag, value, key) in [
        ("cpu-burst", &args.cpu_burst, "burst"),
        ("cpu-period", &args.cpu_period, "period"),
        ("cpu-rt-period", &args.cpu_rt_period, "realtimePeriod"),
        ("cpu-share", &args.cpu_share, "shares"),
    ] {
        if let Some(value) = value {
            let n = go_parse_uint(value).map_err(|e| format!("invalid value for {flag}: {e}"))?;
            cpu.insert(key.into(), json!(n));
        }
    }
    for (flag, value, key) in [
        ("cpu-quota", &args.cpu_quota, "quota"),
        ("cpu-rt-runtime", &args.cpu_rt_runtime, "realtimeRuntime"),
        // runc parses it as a 64-bit signed number; the cgroup file takes 0 or 1 only.
        ("cpu-idle", &args.cpu_idle, "idle"),
    ] {
        if let Some(value) = value {
            let n = go_parse_int(value).map_err(|e| format!("invalid value for {flag}: {e}"))?;
            cpu.insert(key.into(), json!(n));
        }
    }
    for (flag, value, key) in [
        ("memory", &args.memory, "limit"),
        ("memory-swap", &args.memory_swap, "swap"),
        (
            "memory-reservation",
            &args.memory_reservation,
            "reservation",
        ),
    ] {
        if let Some(value) = value {
            let n = if value == "-1" {
                -1
            } else {
                ram_in_bytes(value).map_err(|e| format!("invalid value for {flag}: {e}"))?
            };
            memory.insert(key.into(), json!(n));
        }
    }
    if let Some(limit) = args.pids_limit.filter(|l| *l != 0) {
        resources.insert("pids".into(), json!({ "limit": limit }));
    }
    if !memory.is_empty() {
        resources.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    serde_json::from_value(Value::Object(resources)).map_err(|e| format!("resources: {e}"))
}

/// runc's texts for a host without RDT: Berth refuses intelRdt at create,
/// so there is never a group whose schema could change.
pub fn refuse_intel_rdt(args: &UpdateArgs) -> Result<(), String> {
    if args.l3_cache_schema.is_some() {
        return Err(
            "Intel RDT/CAT: l3 cache schema is not enabled (berth does not support intelRdt yet)"
                .into(),
        );
    }
    if args.mem_bw_schema.is_some() {
        return Err("Intel RDT/MBA: memory bandwidth schema is not enabled (berth does not support intelRdt yet)".into());
    }
    Ok(())
}

fn read_resources(source: &str, mut stdin: impl Read) -> Result<LinuxResources, String> {
    let mut text = String::new();
    let read = if source == "-" {
        stdin.read_to_string(&mut text)
    } else {
        std::fs::File::open(source)
            .map_err(|e| format!("open {source}: {}", go_errno_text(&e)))?
            .read_to_string(&mut text)
    };
    read.map_err(|e| format!("read {source}: {}", go_errno_text(&e)))?;
    let decode_failed = |e: serde_json::Error| {
        format!(
            "decode the resources from {}: {e}",
            if source == "-" { "stdin" } else { source }
        )
    };
    berth::spec::parse_resources(&text).map_err(decode_failed)
}

/// Go's strconv.ParseUint(s, 10, 64), with its error text.
fn go_parse_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse().map_err(|_| {
        format!(
            "strconv.ParseUint: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// Go's strconv.ParseInt(s, 10, 64), with its error text.
fn go_parse_int(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(s)
        ));
    }
    s.parse().map_err(|_| {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    })
}

/// docker/go-units' RAMInBytes: a decimal number, an optional space, then an
/// optional k/m/g/t/p (binary multiples) with optional `i` and `b`.
fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let number_end = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(number_end);
    let well_formed = number
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    let size: f64 = number
        .parse()
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(invalid)?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(invalid()),
    };
    let bytes = size * 1024f64.powi(power);
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    // Go's int64(float64) truncates toward zero, as `as` does.
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> UpdateArgs {
        UpdateArgs {
            id: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn sizes_follow_go_units() {
        for (s, n) in [
            ("32M", 32 << 20),
            ("32m", 32 << 20),
            ("1.5g", 3 << 29),
            ("64 KiB", 64 << 10),
            ("100", 100),
            ("2mb", 2 << 20),
            ("1b", 1),
        ] {
            assert_eq!(ram_in_bytes(s), Ok(n), "{s}");
        }
        for s in ["abc", "", "-5", "1x", "1..2", "1.", "M"] {
            assert_eq!(ram_in_bytes(s), Err(format!("invalid size: '{s}'")), "{s}");
        }
    }

    #[test]
    fn numbers_fail_with_go_strconv_texts() {
        assert_eq!(
            go_parse_uint("x"),
            Err("strconv.ParseUint: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            go_parse_uint("-1"),
            Err("strconv.ParseUint: parsing \"-1\": invalid syntax".into())
        );
        assert_eq!(
            go_parse_uint("99999999999999999999"),
            Err("strconv.ParseUint: parsing \"99999999999999999999\": value out of range".into())
        );
        assert_eq!(go_parse_int("-1"), Ok(-1));
        assert_eq!(go_parse_int("+7"), Ok(7));
        assert_eq!(
            go_parse_int("1.5"),
            Err("strconv.ParseInt: parsing \"1.5\": invalid syntax".into())
        );
    }

    #[test]
    fn flags_become_resources() {
        let a = UpdateArgs {
            memory: Some("32M".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some("-1".into()),
            cpu_share: Some("512".into()),
            cpu_idle: Some("1".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(10),
            blkio_weight: Some(500),
            ..args()
        };
        let r = serde_json::to_value(resources(&a, std::io::empty()).unwrap()).unwrap();
        assert_eq!(r["memory"], json!({ "limit": 33554432, "swap": -1 }));
        assert_eq!(
            r["cpu"],
            json!({ "shares": 512, "quota": -1, "idle": 1, "cpus": "0" })
        );
        assert_eq!(
            (&r["pids"]["limit"], &r["blockIO"]["weight"]),
            (&json!(10), &json!(500))
        );
        let bad = UpdateArgs {
            memory: Some("lots".into()),
            ..args()
        };
        assert_eq!(
            resources(&bad, std::io::empty()).unwrap_err(),
            "invalid value for memory: invalid size: 'lots'"
        );
    }

    #[test]
    fn a_resources_document_wins_over_flags() {
        let a = UpdateArgs {
            resources: Some("-".into()),
            memory: Some("1M".into()),
            ..args()
        };
        let r = resources(&a, r#"{"pids":{"limit":7}}"#.as_bytes()).unwrap();
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(7));
        assert!(r.memory().is_none());
        assert!(resources(&a, "xx".as_bytes())
            .unwrap_err()
            .starts_with("decode the resources from stdin: "));
    }

    /// Spec 1.3: `pids` without `limit` sets nothing; a limit of 0 is kept.
    #[test]
    fn resources_file_pids_without_limit_sets_nothing() {
        let limit = |json: &str| {
            read_resources("-", json.as_bytes())
                .unwrap()
                .pids()
                .map(|p| p.limit())
        };
        assert_eq!(limit(r#"{"pids":{}}"#), None);
        assert_eq!(limit(r#"{"pids":{"limit":0}}"#), Some(0));
        assert_eq!(limit(r#"{"pids":{"limit":5}}"#), Some(5));
    }
}
