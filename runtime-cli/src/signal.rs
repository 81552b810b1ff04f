//! `kill`'s signal argument, read the way runc 1.1 reads it.

use berth::{Container, Error, Status};
use nix::sys::signal::Signal;
use std::fmt;
use std::str::FromStr;

/// runc's `unknown signal "X"`, with the input quoted as Go's %q does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError(pub String);

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown signal {}", crate::log::go_quote(&self.0))
    }
}

impl std::error::Error for SignalError {}

/// The number to send. Accepts a decimal number ("9", "+9", "-9", "34") or a
/// name in any case with or without "SIG" ("kill", "SIGKILL", "Usr1").
/// Real-time names such as "RTMIN+3" are rejected, as runc 1.1 rejects them;
/// their numbers work. A number is not checked: runc hands it to kill(2).
pub fn parse_signal(s: &str) -> Result<i32, SignalError> {
    if let Some(n) = go_atoi(s) {
        // runc hands Go's 64-bit int to kill(2), whose int argument keeps the low 32 bits.
        return Ok(n as i32);
    }
    // Go's strings.ToUpper is Unicode-aware, as str::to_uppercase is.
    let upper = s.to_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    // nix knows exactly the canonical names of x/sys/unix's table (no SIGIOT, SIGPOLL, SIGCLD).
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| SignalError(s.to_string()))
}

/// `berth kill`: the number as a [`berth::Signal`] when it is one; 0, a
/// negative number or one above SIGRTMAX straight to kill(2) of the init,
/// as runc hands it to kill(2), where 0 only probes that the process
/// exists and the others fail with EINVAL. Nothing is delivered either
/// way, so `--all` sends it to the init alone: the cgroup's other pids may
/// be another's (a cgroup the container did not make), and only the
/// container's own processes are ever signalled.
pub fn kill(target: &Container, number: i32, all: bool) -> Result<(), KillError> {
    if let Ok(signal) = berth::Signal::try_from(number) {
        return target.kill(signal, all).map_err(KillError::Berth);
    }
    if target.status() == Status::Stopped {
        // runc's --all of a stopped container finds no process and succeeds.
        return if all {
            Ok(())
        } else {
            Err(KillError::Berth(Error::NotRunning))
        };
    }
    let pid = target.pid();
    // SAFETY: kill(2) with plain integers; the result is checked.
    if unsafe { libc::kill(pid.as_raw(), number) } == 0 {
        return Ok(());
    }
    match nix::Error::last() {
        nix::Error::ESRCH if all => Ok(()),
        nix::Error::ESRCH => Err(KillError::Berth(Error::NotRunning)),
        errno => Err(KillError::Unsent { number, pid, errno }),
    }
}

/// Why `kill` failed: the library's error, or kill(2)'s for a number that
/// is no signal (in the library's words for a signal).
#[derive(Debug)]
pub enum KillError {
    /// What [`Container::kill`] (or the status check) returned.
    Berth(Error),
    /// kill(2) refused a number that is no [`berth::Signal`].
    Unsent {
        /// The number given.
        number: i32,
        /// The pid it was sent to.
        pid: berth::Pid,
        /// kill(2)'s errno.
        errno: nix::Error,
    },
}

impl fmt::Display for KillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillError::Berth(e) => e.fmt(f),
            // berth::Error::Signal's text.
            KillError::Unsent { number, pid, errno } => {
                write!(f, "send signal {number} to pid {pid}: {errno}")
            }
        }
    }
}

/// Go's strconv.Atoi on a 64-bit target: optional sign, decimal digits only.
fn go_atoi(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        // Accumulate negatively so i64::MIN parses, as Go's does.
        n = n.checked_mul(10)?.checked_sub(d)?;
    }
    if neg {
        Some(n)
    } else {
        n.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(s: &str) -> Signal {
        match parse_signal(s).map(Signal::try_from) {
            Ok(Ok(sig)) => sig,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn names_in_any_case_with_or_without_sig() {
        for s in [
            "9", "+9", "09", "KILL", "kill", "Kill", "SIGKILL", "sigkill", "SIGkill",
        ] {
            assert_eq!(known(s), Signal::SIGKILL, "{s}");
        }
        assert_eq!(known("USR1"), Signal::SIGUSR1);
        assert_eq!(known("SIGIO"), Signal::SIGIO);
        assert_eq!(known("pwr"), Signal::SIGPWR);
        assert_eq!(known("STKFLT"), Signal::SIGSTKFLT);
        assert_eq!(known("sys"), Signal::SIGSYS);
        assert_eq!(known("15"), Signal::SIGTERM);
    }

    #[test]
    fn numbers_without_a_name_pass_through() {
        assert_eq!(parse_signal("34"), Ok(34));
        assert_eq!(parse_signal("99"), Ok(99));
        assert_eq!(parse_signal("-9"), Ok(-9));
        assert_eq!(parse_signal("0"), Ok(0));
        assert_eq!(parse_signal("4294967305"), Ok(libc::SIGKILL));
    }

    #[test]
    fn runc_rejects_these() {
        for s in [
            "0x9",
            " 9",
            "9 ",
            "RTMIN",
            "RTMIN+3",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGRTMAX",
            "IOT",
            "SIGIOT",
            "SIGCLD",
            "POLL",
            "SIGPOLL",
            "UNUSED",
            "SIG",
            "SIGSIGKILL",
            "-",
            "+",
            "99999999999999999999",
        ] {
            assert_eq!(parse_signal(s), Err(SignalError(s.to_string())), "{s}");
        }
    }

    #[test]
    fn error_text_is_runcs() {
        let err = parse_signal("RTMIN+3").unwrap_err();
        assert_eq!(err.to_string(), r#"unknown signal "RTMIN+3""#);
        let err = parse_signal("a\"b").unwrap_err();
        assert_eq!(err.to_string(), r#"unknown signal "a\"b""#);
    }
}
