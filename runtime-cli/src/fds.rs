//! The descriptors a caller hands to the container besides stdio: systemd's
//! socket-activation ones (`LISTEN_FDS`, sd_listen_fds(3)) and then the
//! `--preserve-fds` ones, numbered from 3 on, as runc passes them.

/// What the caller passed to this process, noted before berth opens anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    /// Descriptors 3, 4, ... open at startup, up to the first closed one.
    inherited: u32,
    /// Sockets systemd activated this process with, from 3 on.
    listen: u32,
}

impl Passed {
    /// Call first thing in `main`: a descriptor berth opens itself later may
    /// take a number the caller left closed, and must never be passed on.
    pub fn at_startup() -> Passed {
        let mut inherited = 0;
        // SAFETY: F_GETFD only reads a descriptor's flags; a closed one gives EBADF.
        while unsafe { libc::fcntl(3 + inherited as libc::c_int, libc::F_GETFD) } >= 0 {
            inherited += 1;
        }
        let var = |name| std::env::var(name).ok();
        let listen = listen_count(
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            std::process::id(),
        );
        Passed { inherited, listen }
    }

    /// How many descriptors from 3 on `create` and `run` pass: the activation
    /// sockets, then the preserved ones. runc's `exec` ignores LISTEN_FDS.
    pub fn for_create(&self, preserve_fds: u32) -> Result<u32, String> {
        if self.listen > self.inherited {
            return Err(format!(
                "LISTEN_FDS={}: file descriptor {} is not open",
                self.listen,
                3 + self.inherited
            ));
        }
        self.with_preserved(self.listen, preserve_fds)
    }

    /// What the container's process is told about its activation sockets:
    /// it is pid 1 of its namespace.
    pub fn listen_env(&self) -> Vec<String> {
        if self.listen == 0 {
            return Vec::new();
        }
        vec![
            format!("LISTEN_FDS={}", self.listen),
            "LISTEN_PID=1".to_string(),
        ]
    }

    pub fn for_exec(&self, preserve_fds: u32) -> Result<u32, String> {
        self.with_preserved(0, preserve_fds)
    }

    /// Refuses a preserved descriptor the caller did not open: that number
    /// could be one of berth's own by the time the container starts, and
    /// would hand the container a runtime descriptor (CVE-2024-21626).
    fn with_preserved(&self, first: u32, preserve_fds: u32) -> Result<u32, String> {
        let total = first.saturating_add(preserve_fds);
        if total > self.inherited {
            return Err(format!(
                "--preserve-fds {preserve_fds}: file descriptor {} is not open",
                3 + self.inherited
            ));
        }
        Ok(total)
    }
}

/// sd_listen_fds(3): the count holds only for the process LISTEN_PID names;
/// one inherited from a parent that was activated is not ours.
fn listen_count(listen_pid: Option<&str>, listen_fds: Option<&str>, my_pid: u32) -> u32 {
    if listen_pid.and_then(|p| p.parse::<u32>().ok()) != Some(my_pid) {
        return 0;
    }
    listen_fds.and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_count_only_for_this_process() {
        assert_eq!(listen_count(Some("42"), Some("2"), 42), 2);
        assert_eq!(listen_count(Some("41"), Some("2"), 42), 0);
        assert_eq!(listen_count(None, Some("2"), 42), 0);
        assert_eq!(listen_count(Some("42"), None, 42), 0);
        assert_eq!(listen_count(Some("42"), Some("-1"), 42), 0);
        assert_eq!(listen_count(Some("42"), Some("x"), 42), 0);
    }

    #[test]
    fn activation_sockets_come_before_preserved_descriptors() {
        let passed = Passed {
            inherited: 3,
            listen: 1,
        };
        assert_eq!(passed.for_create(2), Ok(3));
        assert_eq!(passed.for_exec(2), Ok(2));
        assert_eq!(passed.listen_env(), ["LISTEN_FDS=1", "LISTEN_PID=1"]);
        assert!(Passed {
            inherited: 3,
            listen: 0
        }
        .listen_env()
        .is_empty());
    }

    #[test]
    fn descriptors_the_caller_did_not_open_are_refused() {
        let passed = Passed {
            inherited: 2,
            listen: 1,
        };
        assert_eq!(
            passed.for_create(2),
            Err("--preserve-fds 2: file descriptor 5 is not open".into())
        );
        assert_eq!(
            passed.for_exec(u32::MAX),
            Err(format!(
                "--preserve-fds {}: file descriptor 5 is not open",
                u32::MAX
            ))
        );
        let activated = Passed {
            inherited: 0,
            listen: 1,
        };
        assert_eq!(
            activated.for_create(0),
            Err("LISTEN_FDS=1: file descriptor 3 is not open".into())
        );
    }
}
