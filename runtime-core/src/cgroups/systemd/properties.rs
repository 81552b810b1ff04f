//! Every limit as the unit property systemd knows it by. systemd writes a
//! unit's own settings (its defaults where none are set: cpu.shares 1024, no
//! quota, no memory limit) to the cgroup files again on `daemon-reload` and
//! on other units' changes, so a limit Berth wrote only to the files would be
//! undone. The property names and conversions are those runc sends, for a
//! cgroup v1 (legacy or hybrid) host and for a pure cgroup v2 host.

use super::error::SystemdError;
use crate::cgroups::dbus::Value;
use crate::cgroups::Cgroup;
use oci_spec::runtime::LinuxResources;
use std::fs;

/// What the properties depend on besides the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// A pure cgroup v2 host (systemd's "unified" mode): weights, not shares.
    pub unified: bool,
    /// systemd's version, 0 when unknown.
    pub version: u32,
}

/// The kernel's (and systemd's) CFS period when none is given.
const DEFAULT_CPU_PERIOD: u64 = 100_000;
/// systemd takes AllowedCPUs and AllowedMemoryNodes since v244.
const CPUSET_SINCE: u32 = 244;
/// systemd turns CPUWeight=0 into cpu.idle=1 since v252.
const CPU_IDLE_SINCE: u32 = 252;
/// CPUQuotaPeriodUSec came in v242.
const CPU_PERIOD_SINCE: u32 = 242;
/// systemd's USEC_INFINITY and "no limit" for byte and task counts.
const INFINITY: u64 = u64::MAX;

/// Round a CPU quota up to what systemd can hold: it keeps the quota as a
/// percentage of one CPU with two decimals (CPUQuota= in the unit file it
/// writes on daemon-reload), so the per-second quota goes up to a multiple
/// of 10 ms, and the quota written to the cgroup file follows, as runc does.
pub fn round_cpu_quota(resources: &mut LinuxResources) {
    let Some(mut cpu) = resources.cpu().clone() else {
        return;
    };
    let Some(quota) = cpu.quota().filter(|q| *q > 0) else {
        return;
    };
    let period = cpu
        .period()
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_CPU_PERIOD);
    let per_sec = quota_per_sec(quota, period);
    if !per_sec.is_multiple_of(10_000) {
        let rounded = (per_sec / 10_000 + 1) * 10_000;
        let quota = u128::from(rounded) * u128::from(period) / 1_000_000;
        cpu.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
        resources.set_cpu(Some(cpu));
    }
}

fn quota_per_sec(quota: i64, period: u64) -> u64 {
    let quota = u128::try_from(quota).unwrap_or(0);
    u64::try_from(quota * 1_000_000 / u128::from(period.max(1))).unwrap_or(INFINITY)
}

/// `update --cpu-quota` without `--cpu-period` (or the other way round):
/// systemd needs both to know the per-second quota, so the one not given is
/// the one the cgroup holds now. runc takes it from the config it stored.
pub fn complete_cpu_quota(cgroup: &Cgroup, resources: &mut LinuxResources) {
    let Some(mut cpu) = resources.cpu().clone() else {
        return;
    };
    let (quota, period) = (cpu.quota(), cpu.period().filter(|p| *p != 0));
    if quota.is_some() == period.is_some() {
        return;
    }
    let Some((current_quota, current_period)) = current_cpu_quota(cgroup) else {
        return;
    };
    if quota.is_none() {
        cpu.set_quota(Some(current_quota));
    } else {
        cpu.set_period(Some(current_period));
    }
    resources.set_cpu(Some(cpu));
}

/// (quota, period) from the cgroup's files, -1 for "max".
fn current_cpu_quota(cgroup: &Cgroup) -> Option<(i64, u64)> {
    if let Some(dir) = cgroup.unified_only_dir() {
        let text = fs::read_to_string(dir.join("cpu.max")).ok()?;
        let mut fields = text.split_whitespace();
        let quota = match fields.next()? {
            "max" => -1,
            n => n.parse().ok()?,
        };
        return Some((quota, fields.next()?.parse().ok()?));
    }
    let (_, dir) = cgroup
        .dirs
        .iter()
        .find(|(name, _)| name.split(',').any(|c| c == "cpu"))?;
    let read = |file: &str| fs::read_to_string(dir.join(file)).ok();
    Some((
        read("cpu.cfs_quota_us")?.trim().parse().ok()?,
        read("cpu.cfs_period_us")?.trim().parse().ok()?,
    ))
}

/// The unit properties for `resources`, as runc's systemd drivers make them.
pub fn resource_properties(
    resources: &LinuxResources,
    host: Host,
) -> Result<Vec<(String, Value)>, SystemdError> {
    let mut properties = Vec::new();
    let mut add = |name: &str, value: Value| properties.push((name.to_string(), value));
    let memory = resources.memory().as_ref();
    let limit = memory.and_then(|m| m.limit()).filter(|l| *l != 0);
    if let Some(limit) = limit {
        // MemoryMax rather than runc's v1 MemoryLimit: systemd writes it to
        // memory.limit_in_bytes on v1 too, and newer systemd dropped MemoryLimit.
        add("MemoryMax", Value::U64(bytes(limit)));
    }
    if host.unified {
        if let Some(low) = memory.and_then(|m| m.reservation()).filter(|r| *r != 0) {
            add("MemoryLow", Value::U64(bytes(low)));
        }
        if let Some(swap) = memory.and_then(|m| m.swap()).filter(|s| *s != 0) {
            // The spec's swap is memory+swap; cgroup v2's memory.swap.max is swap alone.
            let swap_only = match (swap, limit) {
                (-1, _) => INFINITY,
                (swap, Some(limit)) if limit > 0 => bytes(swap.saturating_sub(limit)),
                _ => INFINITY,
            };
            if swap == -1 || limit.is_some_and(|l| l > 0) {
                add("MemorySwapMax", Value::U64(swap_only));
            }
        }
    }
    if let Some(limit) = resources.pids().as_ref().map(|p| p.limit()) {
        // 0 is a real limit (spec 1.3), but systemd does not take
        // TasksMax=0: 1, as runc sends, stops every fork just the same.
        let tasks = if limit == 0 { 1 } else { limit };
        add("TasksMax", Value::U64(bytes(tasks)));
    }
    let cpu = resources.cpu().as_ref();
    let shares = cpu.and_then(|c| c.shares()).filter(|s| *s != 0);
    let idle = cpu.and_then(|c| c.idle()) == Some(1);
    if !host.unified {
        if let Some(shares) = shares {
            add("CPUShares", Value::U64(shares));
        }
    } else if idle && host.version >= CPU_IDLE_SINCE {
        // systemd's way to say cpu.idle=1; it has none for idle=0. A weight
        // given too cannot be said at the same time (runc drops it as well).
        add("CPUWeight", Value::U64(0));
    } else if let Some(shares) = shares {
        add("CPUWeight", Value::U64(shares_to_weight(shares)));
    }
    let quota = cpu.and_then(|c| c.quota()).filter(|q| *q != 0);
    let period = cpu.and_then(|c| c.period()).filter(|p| *p != 0);
    if period.is_some() && host.version >= CPU_PERIOD_SINCE {
        add("CPUQuotaPeriodUSec", Value::U64(period.unwrap_or_default()));
    }
    if quota.is_some() || period.is_some() {
        let per_sec = match quota {
            Some(quota) if quota > 0 => quota_per_sec(quota, period.unwrap_or(DEFAULT_CPU_PERIOD)),
            _ => INFINITY,
        };
        add("CPUQuotaPerSecUSec", Value::U64(per_sec));
    }
    if !host.unified {
        if let Some(weight) = resources
            .block_io()
            .as_ref()
            .and_then(|b| b.weight())
            .filter(|w| *w != 0)
        {
            add("BlockIOWeight", Value::U64(u64::from(weight)));
        }
    }
    if host.version >= CPUSET_SINCE {
        for (value, property, field) in [
            (cpu.and_then(|c| c.cpus().clone()), "AllowedCPUs", "cpus"),
            (
                cpu.and_then(|c| c.mems().clone()),
                "AllowedMemoryNodes",
                "mems",
            ),
        ] {
            if let Some(list) = value.filter(|v| !v.is_empty()) {
                let mask = range_to_mask(&list).map_err(|why| SystemdError::Cpuset {
                    field,
                    value: list.clone(),
                    why,
                })?;
                add(property, Value::Bytes(mask));
            }
        }
    }
    if host.unified {
        unified_properties(resources, host, &mut properties)?;
    }
    Ok(properties)
}

/// The `linux.resources.unified` keys systemd has a property for; the
/// others are written to the files only (runc skips them the same way).
fn unified_properties(
    resources: &LinuxResources,
    host: Host,
    properties: &mut Vec<(String, Value)>,
) -> Result<(), SystemdError> {
    let Some(unified) = resources.unified() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        let value = unified[key].trim();
        let bad = |why: &'static str| SystemdError::Unified {
            key: key.clone(),
            value: value.to_string(),
            why,
        };
        let number = |v: &str| -> Result<u64, SystemdError> {
            if v == "max" {
                Ok(INFINITY)
            } else {
                v.parse().map_err(|_| bad("not a number or \"max\""))
            }
        };
        let property = match key.as_str() {
            "memory.high" => "MemoryHigh",
            "memory.low" => "MemoryLow",
            "memory.min" => "MemoryMin",
            "memory.max" => "MemoryMax",
            "memory.swap.max" => "MemorySwapMax",
            "pids.max" => "TasksMax",
            "cpu.weight" => {
                if host.version >= CPU_IDLE_SINCE
                    && unified.get("cpu.idle").map(|v| v.trim()) == Some("1")
                {
                    continue;
                }
                "CPUWeight"
            }
            "cpu.idle" => {
                if value == "1" && host.version >= CPU_IDLE_SINCE {
                    properties.push(("CPUWeight".into(), Value::U64(0)));
                }
                continue;
            }
            "cpu.max" => {
                let fields: Vec<&str> = value.split_whitespace().collect();
                let (quota, period) = match fields[..] {
                    [quota] => (quota, DEFAULT_CPU_PERIOD),
                    [quota, period] => (
                        quota,
                        period
                            .parse()
                            .map_err(|_| bad("the period is not a number"))?,
                    ),
                    _ => return Err(bad("expected \"quota [period]\"")),
                };
                let per_sec = match quota {
                    "max" => INFINITY,
                    q => quota_per_sec(
                        q.parse().map_err(|_| bad("the quota is not a number"))?,
                        period,
                    ),
                };
                if host.version >= CPU_PERIOD_SINCE {
                    properties.push(("CPUQuotaPeriodUSec".into(), Value::U64(period)));
                }
                properties.push(("CPUQuotaPerSecUSec".into(), Value::U64(per_sec)));
                continue;
            }
            _ => continue,
        };
        let mut n = number(value)?;
        if property == "TasksMax" && n == 0 {
            n = 1;
        }
        properties.push((property.to_string(), Value::U64(n)));
    }
    Ok(())
}

/// A byte or task count; -1 (and any negative) is "no limit".
fn bytes(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(INFINITY)
}

/// runc's mapping of cgroup v1 shares (2..262144) onto cgroup v2's weight (1..10000).
fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// A cpuset list (`0-3,7`) as systemd's bit mask: bit n of byte n/8 for CPU n.
fn range_to_mask(list: &str) -> Result<Vec<u8>, &'static str> {
    /// No machine has more: bounds the mask a typo could make huge.
    const MAX_CPU: usize = 1 << 16;
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| "not a number");
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err("a range ends before it starts");
        }
        if last >= MAX_CPU {
            return Err("a number is too large");
        }
        if mask.len() <= last / 8 {
            mask.resize(last / 8 + 1, 0);
        }
        for n in first..=last {
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    if mask.is_empty() {
        return Err("empty");
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Host = Host {
        unified: false,
        version: 252,
    };
    const V2: Host = Host {
        unified: true,
        version: 252,
    };

    fn props(json: &str, host: Host) -> Vec<(String, Value)> {
        let resources: LinuxResources = serde_json::from_str(json).unwrap();
        resource_properties(&resources, host).unwrap()
    }

    fn find(props: &[(String, Value)], name: &str) -> Option<Value> {
        props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn pids_limit_zero_is_tasks_max_one_and_negative_is_infinity() {
        let tasks_max = |json: &str| find(&props(json, V1), "TasksMax");
        assert_eq!(tasks_max(r#"{"pids":{"limit":0}}"#), Some(Value::U64(1)));
        assert_eq!(tasks_max(r#"{"pids":{"limit":7}}"#), Some(Value::U64(7)));
        assert_eq!(
            tasks_max(r#"{"pids":{"limit":-1}}"#),
            Some(Value::U64(u64::MAX))
        );
        assert_eq!(tasks_max(r#"{}"#), None);
    }

    #[test]
    fn v1_sends_shares_and_blkio_weight_v2_weight_low_and_swap() {
        let json = r#"{"memory":{"limit":1048576,"reservation":4096,"swap":3145728},
            "cpu":{"shares":1024,"quota":50000,"period":100000},"blockIO":{"weight":300}}"#;
        let v1 = props(json, V1);
        assert_eq!(find(&v1, "MemoryMax"), Some(Value::U64(1 << 20)));
        assert_eq!(find(&v1, "CPUShares"), Some(Value::U64(1024)));
        assert_eq!(find(&v1, "BlockIOWeight"), Some(Value::U64(300)));
        assert_eq!(find(&v1, "CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(find(&v1, "CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(find(&v1, "MemoryLow"), None);
        let v2 = props(json, V2);
        assert_eq!(find(&v2, "CPUWeight"), Some(Value::U64(39)));
        assert_eq!(find(&v2, "MemoryLow"), Some(Value::U64(4096)));
        assert_eq!(find(&v2, "MemorySwapMax"), Some(Value::U64(2 << 20)));
        assert_eq!(find(&v2, "BlockIOWeight"), None);
    }

    #[test]
    fn cpu_idle_is_weight_zero_on_v2_from_systemd_252() {
        let json = r#"{"cpu":{"shares":1024,"idle":1}}"#;
        assert_eq!(find(&props(json, V2), "CPUWeight"), Some(Value::U64(0)));
        let old = Host {
            unified: true,
            version: 251,
        };
        assert_eq!(find(&props(json, old), "CPUWeight"), Some(Value::U64(39)));
    }

    #[test]
    fn quota_without_period_assumes_the_default_and_rounds_to_ten_ms() {
        assert_eq!(
            find(
                &props(r#"{"cpu":{"quota":25000}}"#, V1),
                "CPUQuotaPerSecUSec"
            ),
            Some(Value::U64(250_000))
        );
        let mut r: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"quota":33333,"period":100000}}"#).unwrap();
        round_cpu_quota(&mut r);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(34000));
        assert_eq!(
            find(&resource_properties(&r, V1).unwrap(), "CPUQuotaPerSecUSec"),
            Some(Value::U64(340_000))
        );
        // A period alone lifts the quota, as runc says it.
        assert_eq!(
            find(
                &props(r#"{"cpu":{"period":50000}}"#, V1),
                "CPUQuotaPerSecUSec"
            ),
            Some(Value::U64(u64::MAX))
        );
    }

    #[test]
    fn cpusets_become_bit_masks_and_bad_ones_are_refused() {
        assert_eq!(range_to_mask("0-2,9").unwrap(), vec![0b111, 0b10]);
        assert_eq!(range_to_mask("8").unwrap(), vec![0, 1]);
        for bad in ["", "a", "3-1", "0-99999999"] {
            assert!(range_to_mask(bad).is_err(), "{bad}");
        }
        let p = props(r#"{"cpu":{"cpus":"1","mems":"0"}}"#, V1);
        assert_eq!(find(&p, "AllowedCPUs"), Some(Value::Bytes(vec![2])));
        assert_eq!(find(&p, "AllowedMemoryNodes"), Some(Value::Bytes(vec![1])));
        let old = Host {
            unified: false,
            version: 243,
        };
        assert!(find(&props(r#"{"cpu":{"cpus":"1"}}"#, old), "AllowedCPUs").is_none());
        let resources: LinuxResources = serde_json::from_str(r#"{"cpu":{"cpus":"x"}}"#).unwrap();
        assert!(resource_properties(&resources, V1).is_err());
    }

    #[test]
    fn unified_keys_become_properties_on_v2() {
        let p = props(
            r#"{"unified":{"memory.high":"4096","pids.max":"max","cpu.max":"max 50000","io.weight":"9"}}"#,
            V2,
        );
        assert_eq!(find(&p, "MemoryHigh"), Some(Value::U64(4096)));
        assert_eq!(find(&p, "TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(Value::U64(50_000)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(Value::U64(u64::MAX)));
        let resources: LinuxResources =
            serde_json::from_str(r#"{"unified":{"memory.high":"lots"}}"#).unwrap();
        assert!(resource_properties(&resources, V2).is_err());
    }
}
