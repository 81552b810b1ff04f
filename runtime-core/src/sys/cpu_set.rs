//! The kernel's CPU mask (`cpu_set_t` of any size) with the list syntax
//! ("0-3,7") runtime-spec's execCPUAffinity and the cpuset files use, and
//! `sched_setaffinity` / `sched_getaffinity` over it.

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
}
