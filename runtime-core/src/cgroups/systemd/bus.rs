//! Which systemd Berth talks to, and how: root's is the system manager over
//! its private socket; anyone else's (and root's in a user namespace of its
//! own, as rootless podman runs the runtime) is the user's own manager over
//! the same kind of socket under $XDG_RUNTIME_DIR.

use super::error::{SystemdError, USER_SOCKET};
use super::properties::Host;
use crate::cgroups::dbus::{Connection, Reply};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// systemd's peer-to-peer bus for root: no bus daemon needed (systemctl uses it too).
const SYSTEM_SOCKET: &str = "/run/systemd/private";
pub(super) const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
pub(super) const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// Exists on a pure cgroup v2 host only.
pub(super) const UNIFIED_MARKER: &str = "/sys/fs/cgroup/cgroup.controllers";
/// How long one read from systemd may take; runc waits 30 s for its jobs too.
const BUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this process talks to a user's own systemd: it is not root, or
/// it is root in a user namespace of its own (rootless podman runs the
/// runtime so), as runc decides.
pub fn user_manager() -> bool {
    !nix::unistd::geteuid().is_root() || crate::sys::host_userns::running_in_user_namespace()
}

fn own_uid_map() -> String {
    std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default()
}

/// `uid` as seen from outside this user namespace, which is how systemd
/// sees the caller: EXTERNAL authentication must name that uid.
fn outer_uid(uid_map: &str, uid: u32) -> u32 {
    for line in uid_map.lines() {
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if let [inside, outside, count] = fields[..] {
            let uid = u64::from(uid);
            if (inside..inside.saturating_add(count)).contains(&uid) {
                return u32::try_from(outside + (uid - inside)).unwrap_or(u32::MAX);
            }
        }
    }
    uid
}

/// The socket of the systemd this process talks to: the system's for root,
/// else the user's own under `runtime_dir` ($XDG_RUNTIME_DIR), as crun does
/// (runc goes through the user's bus daemon instead; both reach the same manager).
fn socket_for(user: bool, runtime_dir: Option<&OsStr>) -> Result<PathBuf, SystemdError> {
    if !user {
        return Ok(PathBuf::from(SYSTEM_SOCKET));
    }
    match runtime_dir.filter(|d| !d.is_empty()) {
        Some(dir) => Ok(Path::new(dir).join(USER_SOCKET)),
        None => Err(SystemdError::NoRuntimeDir),
    }
}

fn socket() -> Result<PathBuf, SystemdError> {
    socket_for(
        user_manager(),
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
    )
}

pub(super) fn bus_error(source: io::Error) -> SystemdError {
    SystemdError::Bus {
        socket: socket().unwrap_or_default(),
        source,
    }
}

pub(super) fn connect() -> Result<Connection, SystemdError> {
    let socket = socket()?;
    let uid = outer_uid(&own_uid_map(), nix::unistd::geteuid().as_raw());
    let mut bus =
        Connection::open(&socket, uid, BUS_TIMEOUT).map_err(|source| SystemdError::Bus {
            socket: socket.clone(),
            source,
        })?;
    // Job signals reach only subscribed clients on some versions; the private bus needs no match rule.
    if let Reply::Error(name, message) = bus
        .call(SYSTEMD_PATH, MANAGER, "Subscribe", &[])
        .map_err(bus_error)?
    {
        return Err(SystemdError::Refused {
            action: "subscribe to",
            unit: "the manager".into(),
            name,
            message,
        });
    }
    Ok(bus)
}

/// What the properties depend on: the cgroup layout and systemd's version
/// (0 when it does not say, which leaves out the properties that need one).
pub(super) fn host(bus: &mut Connection) -> Result<Host, SystemdError> {
    let version = bus
        .get_property(SYSTEMD_PATH, MANAGER, "Version")
        .map_err(bus_error)?
        .map_or(0, |v| version_number(&v));
    Ok(Host {
        unified: Path::new(UNIFIED_MARKER).exists(),
        version,
    })
}

/// `252.22-1~deb12u1` or `v245.4-1.fc32`: 252, 245.
fn version_number(text: &str) -> u32 {
    let digits: String = text
        .trim_start_matches(['"', 'v'])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_talks_to_the_system_manager_others_to_their_own() {
        assert_eq!(
            socket_for(false, Some(OsStr::new("/run/user/1000"))).unwrap(),
            Path::new("/run/systemd/private")
        );
        assert_eq!(
            socket_for(true, Some(OsStr::new("/run/user/1000"))).unwrap(),
            Path::new("/run/user/1000/systemd/private")
        );
        assert!(matches!(
            socket_for(true, None),
            Err(SystemdError::NoRuntimeDir)
        ));
        assert!(matches!(
            socket_for(true, Some(OsStr::new(""))),
            Err(SystemdError::NoRuntimeDir)
        ));
    }

    #[test]
    fn root_in_a_user_namespace_is_its_users_own_uid_to_systemd() {
        let host = "         0          0 4294967295\n";
        assert_eq!(outer_uid(host, 0), 0);
        let rootless = "         0       1000          1\n         1     100000      65536\n";
        assert_eq!(outer_uid(rootless, 0), 1000);
        assert_eq!(outer_uid(rootless, 5), 100004);
        // Unmapped: as it is.
        assert_eq!(outer_uid(rootless, 70000), 70000);
    }

    #[test]
    fn versions_are_read_as_runc_reads_them() {
        assert_eq!(version_number("252.22-1~deb12u1"), 252);
        assert_eq!(version_number("v245.4-1.fc32"), 245);
        assert_eq!(version_number("\"245\""), 245);
        assert_eq!(version_number("unknown"), 0);
    }
}
