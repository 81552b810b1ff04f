//! CPU affinity of the container's processes.
//!
//! A process inherits its creator's affinity, so `taskset -c 0 berth run`
//! would pin the container to CPU 0: the init resets its own affinity to
//! every CPU once it is in the container's cgroups, which the kernel narrows
//! to the cgroup's cpuset (runc 1.3.1 and crun do the same). An `exec`'d
//! process follows `process.execCPUAffinity` (runtime-spec 1.2): `initial`
//! while the runtime sets it up, `final` once it is in the container's
//! cgroup; without either it is reset like the init. The spec makes
//! execCPUAffinity "not applicable to the container's init process", and
//! runc and crun ignore it there: the init is always reset.

use oci_spec::runtime::Process;

use crate::spec::SpecError;

/// The highest CPU number a list may name: runc's limit (64 Ki), far above
/// any kernel's `NR_CPUS`, so a mask stays a few kilobytes.
pub const MAX_CPU: usize = 64 * 1024;

/// Bits in one word of a kernel cpumask (`unsigned long`).
const WORD_BITS: usize = libc::c_ulong::BITS as usize;

/// A set of CPUs as the kernel's `sched_setaffinity` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSet {
    words: Vec<libc::c_ulong>,
}

impl CpuSet {
    /// Parses a CPU list ("0-3,7"): comma-separated numbers or ranges, as
    /// runtime-spec's execCPUAffinity and the kernel's cpuset files write
    /// them. The reason it is not one is returned as text.
    pub fn parse(list: &str) -> Result<CpuSet, String> {
        if list.is_empty() {
            return Err("the list is empty".into());
        }
        let number = |s: &str| -> Result<usize, String> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{s:?} is not a CPU number"));
            }
            match s.parse::<usize>() {
                Ok(n) if n <= MAX_CPU => Ok(n),
                _ => Err(format!("CPU {s} is above the highest supported, {MAX_CPU}")),
            }
        };
        let mut ranges = Vec::new();
        for item in list.split(',') {
            let (first, last) = match item.split_once('-') {
                Some((first, last)) => (number(first)?, number(last)?),
                None => {
                    let n = number(item)?;
                    (n, n)
                }
            };
            if first > last {
                return Err(format!("the range {item} runs backwards"));
            }
            ranges.push((first, last));
        }
        let highest = ranges.iter().map(|&(_, last)| last).max().unwrap_or(0);
        let mut set = CpuSet {
            words: vec![0; highest / WORD_BITS + 1],
        };
        for (first, last) in ranges {
            for cpu in first..=last {
                set.words[cpu / WORD_BITS] |= 1 << (cpu % WORD_BITS);
            }
        }
        Ok(set)
    }

    /// Every CPU up to [`MAX_CPU`]: the kernel keeps those the process's
    /// cpuset allows (and remembers the rest should the cpuset grow), so
    /// this resets the affinity to the cgroup's CPUs, or all of them.
    pub fn all() -> CpuSet {
        CpuSet {
            words: vec![libc::c_ulong::MAX; MAX_CPU / WORD_BITS + 1],
        }
    }

    /// The calling thread's affinity.
    pub fn current() -> std::io::Result<CpuSet> {
        let mut words: Vec<libc::c_ulong> = vec![0; MAX_CPU / WORD_BITS + 1];
        let bytes = std::mem::size_of_val(words.as_slice());
        // SAFETY: the kernel writes at most `bytes` bytes into `words`, which owns that many.
        let copied =
            unsafe { libc::syscall(libc::SYS_sched_getaffinity, 0, bytes, words.as_mut_ptr()) };
        if copied < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(CpuSet { words })
    }

    /// Makes this the calling thread's affinity (the whole process's, in a
    /// single-threaded one); children and an exec keep it.
    pub fn apply(&self) -> std::io::Result<()> {
        let bytes = std::mem::size_of_val(self.words.as_slice());
        // SAFETY: the kernel reads `bytes` bytes from `words`, which holds that many.
        if unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, bytes, self.words.as_ptr()) } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The set in the kernel's bitmap words; `memory_policy` reads a node
    /// list, written the same way, into the node mask it gives the kernel.
    pub fn as_words(&self) -> &[libc::c_ulong] {
        &self.words
    }

    /// The CPU numbers in the set.
    #[cfg(test)]
    pub fn cpus(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.words.len() * WORD_BITS)
            .filter(|cpu| self.words[cpu / WORD_BITS] & (1 << (cpu % WORD_BITS)) != 0)
    }
}

/// A process's `execCPUAffinity`, parsed. An empty list is "not set", as
/// the spec says of `final` ("if omitted or empty").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecAffinity {
    /// Where the runtime's setup of the process runs, from its fork on.
    pub initial: Option<CpuSet>,
    /// The process's affinity once it is in the container's cgroup.
    pub final_: Option<CpuSet>,
    /// The lists as written, for messages.
    initial_text: String,
    final_text: String,
}

impl ExecAffinity {
    /// Parses `process.execCPUAffinity`; a bad list is named.
    pub fn of(process: &Process) -> Result<ExecAffinity, SpecError> {
        let Some(affinity) = process.exec_cpu_affinity() else {
            return Ok(ExecAffinity::default());
        };
        let parse = |field: &'static str, value: &Option<String>| {
            let value = value.as_deref().unwrap_or("");
            if value.is_empty() {
                return Ok(None);
            }
            CpuSet::parse(value)
                .map(Some)
                .map_err(|reason| SpecError::ExecCpuAffinity {
                    field,
                    value: value.to_owned(),
                    reason,
                })
        };
        Ok(ExecAffinity {
            initial: parse("initial", affinity.initial())?,
            final_: parse("final", affinity.cpu_affinity_final())?,
            initial_text: affinity.initial().clone().unwrap_or_default(),
            final_text: affinity.cpu_affinity_final().clone().unwrap_or_default(),
        })
    }

    /// What the process does once it is in the container's cgroups: takes
    /// `final`; keeps `initial` when only that is set (the spec: the
    /// runtime SHOULD NOT change it then); else is reset to every CPU the
    /// cgroup allows, rather than keep the caller's.
    pub fn apply_final(&self) -> Result<(), String> {
        match (&self.initial, &self.final_) {
            (_, Some(set)) => set.apply().map_err(|e| {
                format!(
                    "set the CPU affinity to process.execCPUAffinity.final {:?}: {e}",
                    self.final_text
                )
            }),
            (Some(_), None) => Ok(()),
            (None, None) => reset(),
        }
    }

    /// The message for an `initial` the kernel refused.
    pub fn initial_error(&self, e: std::io::Error) -> String {
        format!(
            "set the CPU affinity to process.execCPUAffinity.initial {:?}: {e}",
            self.initial_text
        )
    }
}

/// Resets the calling process's affinity to every CPU its cgroup allows
/// (the init's, and an exec'd process's without execCPUAffinity).
pub fn reset() -> Result<(), String> {
    CpuSet::all()
        .apply()
        .map_err(|e| format!("reset the CPU affinity: {e}"))
}

/// Narrows the calling thread to `initial`, if set, for the fork of an
/// exec'd process's setup child: the child is born there (the earliest it
/// can be), and the caller gets its own affinity back with [`restore`].
pub fn narrow_to(affinity: &ExecAffinity) -> Result<Option<CpuSet>, String> {
    let Some(initial) = &affinity.initial else {
        return Ok(None);
    };
    let saved = CpuSet::current().map_err(|e| format!("read the CPU affinity: {e}"))?;
    initial.apply().map_err(|e| affinity.initial_error(e))?;
    Ok(Some(saved))
}

/// Puts back the affinity [`narrow_to`] saved (in the caller only: the
/// child keeps `initial`).
pub fn restore(saved: Option<CpuSet>) {
    if let Some(saved) = saved {
        // It was the thread's own a moment ago; nothing else to do if refused.
        let _ = saved.apply();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(list: &str) -> Vec<usize> {
        CpuSet::parse(list).expect(list).cpus().collect()
    }

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(cpus("0"), [0]);
        assert_eq!(cpus("0-3,7"), [0, 1, 2, 3, 7]);
        assert_eq!(cpus("1,1-2"), [1, 2]);
        assert_eq!(cpus("65"), [65]);
        assert_eq!(cpus(&MAX_CPU.to_string()), [MAX_CPU]);
    }

    #[test]
    fn bad_lists_say_why() {
        for (list, reason) in [
            ("", "the list is empty"),
            ("3-1", "the range 3-1 runs backwards"),
            ("a", "\"a\" is not a CPU number"),
            ("0,", "\"\" is not a CPU number"),
            ("1-", "\"\" is not a CPU number"),
            ("-1", "\"\" is not a CPU number"),
            (" 1", "\" 1\" is not a CPU number"),
            ("+1", "\"+1\" is not a CPU number"),
            ("1-2-3", "\"2-3\" is not a CPU number"),
            ("65537", "CPU 65537 is above the highest supported, 65536"),
            (
                "99999999999999999999999",
                "CPU 99999999999999999999999 is above the highest supported, 65536",
            ),
        ] {
            assert_eq!(CpuSet::parse(list).unwrap_err(), reason, "{list:?}");
        }
    }

    #[test]
    fn all_covers_every_cpu_number() {
        assert_eq!(
            CpuSet::all().cpus().count(),
            MAX_CPU / WORD_BITS * WORD_BITS + WORD_BITS
        );
    }

    fn process(affinity: serde_json::Value) -> Process {
        serde_json::from_value(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "execCPUAffinity": affinity
        }))
        .expect("process")
    }

    #[test]
    fn exec_affinity_names_the_bad_field() {
        let err = ExecAffinity::of(&process(
            serde_json::json!({"initial": "0", "final": "3-1"}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "process.execCPUAffinity.final \"3-1\": the range 3-1 runs backwards"
        );
        let ok = ExecAffinity::of(&process(serde_json::json!({"final": "1"}))).expect("valid");
        assert_eq!(
            (ok.initial, ok.final_.map(|s| s.cpus().collect::<Vec<_>>())),
            (None, Some(vec![1]))
        );
    }
}
