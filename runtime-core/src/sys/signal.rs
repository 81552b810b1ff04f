//! The signal [`Container::kill`](crate::Container::kill) sends: any signal
//! number the kernel delivers, real-time ones included (nix's `Signal` enum
//! names only the standard 31, and runc passes every number on).

use std::fmt;

/// A signal number from 1 to `SIGRTMAX`: one `kill(2)` delivers.
///
/// ```
/// use berth::{Signal, SignalError};
///
/// assert_eq!(Signal::from(nix::sys::signal::Signal::SIGKILL), Signal::KILL);
/// let rt = Signal::try_from(libc::SIGRTMIN() + 3).unwrap();
/// assert_eq!(rt.name(), "SIGRTMIN+3");
/// assert_eq!(Signal::TERM.to_string(), "SIGTERM");
/// // 0 only asks whether a process exists: it is no signal to send.
/// assert_eq!(Signal::try_from(0), Err(SignalError::OutOfRange(0)));
/// assert!(Signal::try_from(libc::SIGRTMAX() + 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// A number that is no signal [`Signal`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Not in 1..=`SIGRTMAX` (0, negative, or above the last real-time signal).
    #[error("signal {0} is out of range 1..={max}", max = libc::SIGRTMAX())]
    OutOfRange(i32),
}

impl Signal {
    /// SIGKILL.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// SIGTERM, what `kill` sends by default.
    pub const TERM: Signal = Signal(libc::SIGTERM);

    /// The signal's number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The standard signal nix names, or `None` for a real-time one.
    pub fn as_nix(self) -> Option<nix::sys::signal::Signal> {
        nix::sys::signal::Signal::try_from(self.0).ok()
    }

    /// Its name: `SIGKILL`; a real-time one counted from glibc's `SIGRTMIN`
    /// (`SIGRTMIN+3`), as `kill -l` prints them; `SIG32` and `SIG33`, which
    /// glibc keeps for itself, by number.
    pub fn name(self) -> String {
        if let Some(known) = self.as_nix() {
            return known.as_str().to_string();
        }
        let rtmin = libc::SIGRTMIN();
        match self.0 - rtmin {
            0 => "SIGRTMIN".to_string(),
            offset if offset > 0 => format!("SIGRTMIN+{offset}"),
            _ => format!("SIG{}", self.0),
        }
    }
}

impl From<nix::sys::signal::Signal> for Signal {
    fn from(signal: nix::sys::signal::Signal) -> Signal {
        Signal(signal as i32)
    }
}

impl TryFrom<i32> for Signal {
    type Error = SignalError;

    fn try_from(number: i32) -> Result<Signal, SignalError> {
        if (1..=libc::SIGRTMAX()).contains(&number) {
            Ok(Signal(number))
        } else {
            Err(SignalError::OutOfRange(number))
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_signal_and_no_other() {
        for n in 1..=libc::SIGRTMAX() {
            assert_eq!(Signal::try_from(n).map(Signal::as_raw), Ok(n));
        }
        for n in [0, -1, -9, libc::SIGRTMAX() + 1, i32::MAX, i32::MIN] {
            assert_eq!(Signal::try_from(n), Err(SignalError::OutOfRange(n)));
        }
    }

    #[test]
    fn names() {
        assert_eq!(Signal::KILL.name(), "SIGKILL");
        assert_eq!(Signal::try_from(10).map(Signal::name), Ok("SIGUSR1".into()));
        assert_eq!(Signal::try_from(32).map(Signal::name), Ok("SIG32".into()));
        let rtmin = libc::SIGRTMIN();
        assert_eq!(
            Signal::try_from(rtmin).map(Signal::name),
            Ok("SIGRTMIN".into())
        );
        assert_eq!(
            Signal::try_from(libc::SIGRTMAX()).map(Signal::name),
            Ok(format!("SIGRTMIN+{}", libc::SIGRTMAX() - rtmin))
        );
        assert_eq!(
            Signal::KILL.as_nix(),
            Some(nix::sys::signal::Signal::SIGKILL)
        );
        assert_eq!(Signal::try_from(40).ok().and_then(Signal::as_nix), None);
    }
}
