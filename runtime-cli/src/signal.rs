//! `kill`'s signal argument, read the way runc 1.1 reads it.

use nix::sys::signal::Signal;
use std::fmt;
use std::str::FromStr;

/// A signal to deliver: a named one, or any number runc would pass on unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    Known(Signal),
    /// Real-time, zero, negative or out-of-range numbers: kill(2) decides.
    Raw(i32),
}

impl KillSignal {
    pub fn as_raw(self) -> i32 {
        match self {
            KillSignal::Known(sig) => sig as i32,
            KillSignal::Raw(n) => n,
        }
    }

    /// The nix signal, when the number names one.
    #[allow(dead_code)] // for callers that need a nix Signal
    pub fn signal(self) -> Option<Signal> {
        match self {
            KillSignal::Known(sig) => Some(sig),
            KillSignal::Raw(_) => None,
        }
    }
}

/// runc's `unknown signal "X"`, with the input quoted as Go's %q does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError(pub String);

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown signal {}", crate::log::go_quote(&self.0))
    }
}

impl std::error::Error for SignalError {}

/// Accepts a decimal number ("9", "+9", "-9", "34") or a name in any case with
/// or without "SIG" ("kill", "SIGKILL", "Usr1"). Real-time names such as
/// "RTMIN+3" are rejected, as runc 1.1 rejects them; their numbers work.
pub fn parse_signal(s: &str) -> Result<KillSignal, SignalError> {
    if let Some(n) = go_atoi(s) {
        // runc hands Go's 64-bit int to kill(2), whose int argument keeps the low 32 bits.
        let n = n as i32;
        return Ok(match Signal::try_from(n) {
            Ok(sig) => KillSignal::Known(sig),
            Err(_) => KillSignal::Raw(n),
        });
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
        .map(KillSignal::Known)
        .map_err(|_| SignalError(s.to_string()))
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
        match parse_signal(s) {
            Ok(KillSignal::Known(sig)) => sig,
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
        assert_eq!(parse_signal("34"), Ok(KillSignal::Raw(34)));
        assert_eq!(parse_signal("99"), Ok(KillSignal::Raw(99)));
        assert_eq!(parse_signal("-9"), Ok(KillSignal::Raw(-9)));
        assert_eq!(parse_signal("0"), Ok(KillSignal::Raw(0)));
        assert_eq!(parse_signal("0").map(KillSignal::as_raw), Ok(0));
        assert_eq!(
            parse_signal("4294967305"),
            Ok(KillSignal::Known(Signal::SIGKILL))
        );
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
