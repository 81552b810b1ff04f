//! `linux.netDevices` (runtime-spec 1.2): host network devices moved into
//! the container's network namespace, renamed as asked.
//!
//! Checked before anything exists ([`NetDevices::check`]): the container
//! has a network namespace of its own, every name is one the kernel takes,
//! and every host device exists. The parent moves them once the init is
//! cloned and before it is let go ([`NetDevices::move_into`]), one
//! RTM_NEWLINK each carrying the target namespace and the new name. The
//! kernel renames only once the device is inside, so a name already taken
//! there is refused before the move (a `%d` template lets the kernel pick
//! a free one). A move drops the device's addresses: the permanent global ones
//! are read first and added back inside, and the device is set up, as the
//! spec asks. Nothing moves them back: when the namespace dies the kernel
//! destroys virtual devices and returns physical ones to the host.

mod netlink;

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::isolation::namespaces::Namespaces;

use oci_spec::runtime::LinuxNetDevice;

use netlink::{Body, Socket};

/// IFNAMSIZ, with its NUL.
const IFNAMSIZ: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum NetDeviceError {
    #[error("linux.netDevices needs a network namespace of the container's own, and linux.namespaces has none")]
    NoNetworkNamespace,
    #[error("linux.netDevices {field} {name:?} is not a network device name: {reason}")]
    BadName {
        field: String,
        name: String,
        reason: &'static str,
    },
    #[error(
        "linux.netDevices: {first:?} and {second:?} would both be named {name:?} in the container"
    )]
    SameName {
        first: String,
        second: String,
        name: String,
    },
    #[error("linux.netDevices: network device {name:?} does not exist on the host")]
    NotFound { name: String },
    #[error("linux.netDevices: {step}: {source}{}", hint(source))]
    Netlink { step: String, source: io::Error },
    #[error("linux.netDevices: network devices cannot be moved by a rootless runtime")]
    Rootless,
}

/// One device to move: its host index and name, and its name inside.
#[derive(Debug, Clone)]
struct Move {
    host: String,
    index: u32,
    name: String,
}

/// The checked `linux.netDevices`, in the order they are moved.
#[derive(Debug, Clone, Default)]
pub struct NetDevices {
    moves: Vec<Move>,
}

/// A permanent global address of a device, to add back after its move.
struct Address {
    family: u8,
    prefix_len: u8,
    scope: u8,
    attrs: Vec<(u16, Vec<u8>)>,
}

impl NetDevices {
    /// Checks the devices against the spec's rules and the host: nothing
    /// is moved or made. `has_own_netns`: linux.namespaces has a network
    /// namespace, new or joined.
    pub fn check(
        devices: &HashMap<String, LinuxNetDevice>,
        has_own_netns: bool,
    ) -> Result<NetDevices, NetDeviceError> {
        if devices.is_empty() {
            return Ok(NetDevices::default());
        }
        if !has_own_netns {
            return Err(NetDeviceError::NoNetworkNamespace);
        }
        // Moving a device out of the host's namespace takes CAP_NET_ADMIN there.
        if !nix::unistd::geteuid().is_root() {
            return Err(NetDeviceError::Rootless);
        }
        let mut hosts: Vec<&String> = devices.keys().collect();
        hosts.sort();
        let mut moves = Vec::new();
        let mut inside: HashMap<&str, &str> = HashMap::new();
        for host in hosts {
            check_name(host, false).map_err(|reason| NetDeviceError::BadName {
                field: "key".into(),
                name: host.clone(),
                reason,
            })?;
            let name = devices[host]
                .name()
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(host);
            check_name(name, true).map_err(|reason| NetDeviceError::BadName {
                field: format!("[{host:?}].name"),
                name: name.to_owned(),
                reason,
            })?;
            if !name.contains('%') {
                if let Some(first) = inside.insert(name, host) {
                    return Err(NetDeviceError::SameName {
                        first: first.to_owned(),
                        second: host.clone(),
                        name: name.to_owned(),
                    });
                }
            }
            moves.push(Move {
                host: host.clone(),
                index: 0,
                name: name.to_owned(),
            });
        }
        // Only once every name is good: the host is asked about each device.
        for device in &mut moves {
            // check_name refused a NUL.
            let c_name = CString::new(device.host.as_str()).unwrap_or_default();
            // SAFETY: if_nametoindex reads the NUL-terminated string `c_name` owns.
            device.index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
            if device.index == 0 {
                return Err(NetDeviceError::NotFound {
                    name: device.host.clone(),
                });
            }
        }
        Ok(NetDevices { moves })
    }

    /// Parent side, once the init `pid` is cloned and before it is let go:
    /// moves every device into the container's network namespace.
    pub fn move_into_init(
        &self,
        namespaces: &Namespaces,
        pid: libc::pid_t,
    ) -> Result<(), NetDeviceError> {
        if self.moves.is_empty() {
            return Ok(());
        }
        let netns = namespaces
            .network_of_init(pid)
            .map_err(|source| NetDeviceError::Netlink {
                step: "open the container's network namespace".into(),
                source,
            })?
            .ok_or(NetDeviceError::NoNetworkNamespace)?;
        self.move_into(netns.as_fd())
    }

    /// Moves every device into the network namespace `netns`, renamed, with its permanent global
    /// addresses, and sets it up.
    fn move_into(&self, netns: BorrowedFd<'_>) -> Result<(), NetDeviceError> {
        if self.moves.is_empty() {
            return Ok(());
        }
        let failed = |step: String| move |source| NetDeviceError::Netlink { step, source };
        let mut host = Socket::open().map_err(failed("open a netlink socket".into()))?;
        let mut inside = Socket::open_in(netns).map_err(failed(
            "open a netlink socket in the container's network namespace".into(),
        ))?;
        for device in &self.moves {
            let addresses = permanent_addresses(&mut host, device.index)
                .map_err(failed(format!("read the addresses of {:?}", device.host)))?;
            // The kernel moves the device first and renames it after, in
            // the namespace: a taken name would fail only once the device
            // is gone from the host. Asked first, so it stays.
            let step = format!(
                "move {:?} into the container's network namespace as {:?}",
                device.host, device.name
            );
            if !device.name.contains('%')
                && index_by_name(&mut inside, &device.name)
                    .map_err(failed(step.clone()))?
                    .is_some()
            {
                return Err(failed(step)(io::Error::from_raw_os_error(libc::EEXIST)));
            }
            let netns_fd = netns.as_raw_fd() as u32;
            host.request(
                netlink::RTM_NEWLINK,
                false,
                0,
                Body::link(device.index, false)
                    .attr(netlink::IFLA_NET_NS_FD, &netns_fd.to_ne_bytes())
                    .attr_str(netlink::IFLA_IFNAME, &device.name),
            )
            .map_err(failed(step))?;
            let index = index_inside(&mut inside, device).map_err(failed(format!(
                "find {:?} (was {:?}) in the container's network namespace",
                device.name, device.host
            )))?;
            for address in &addresses {
                let mut body = Body::addr(address.family, address.prefix_len, address.scope, index);
                for (kind, data) in &address.attrs {
                    body = body.attr(*kind, data);
                }
                inside
                    .request(
                        netlink::RTM_NEWADDR,
                        false,
                        netlink::NLM_F_CREATE | netlink::NLM_F_REPLACE,
                        body,
                    )
                    .map_err(failed(format!(
                        "add back an address of {:?} in the container",
                        device.name
                    )))?;
            }
            inside
                .request(netlink::RTM_NEWLINK, false, 0, Body::link(index, true))
                .map_err(failed(format!("set {:?} up in the container", device.name)))?;
        }
        Ok(())
    }
}

/// Init side, in a network namespace made for the container: sets the
/// loopback device up. A new namespace has `lo` down, so 127.0.0.1 would
/// be unreachable; runc and crun bring it up, and programs (and engines
/// that run a container with `--network none`) expect it.
pub fn loopback_up() -> io::Result<()> {
    let mut socket = Socket::open()?;
    let Some(index) = index_by_name(&mut socket, "lo")? else {
        return Ok(());
    };
    socket
        .request(netlink::RTM_NEWLINK, false, 0, Body::link(index, true))
        .map(|_| ())
}

/// What the kernel's answer to a move most likely means.
fn hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::EEXIST) => " (a device of that name is already in the container's network namespace; a name ending in %d lets the kernel pick a free one)",
        Some(libc::EINVAL) => " (the kernel keeps some devices in their namespace: loopback, bridges, and others marked netns-local)",
        _ => "",
    }
}

/// The kernel's rule for a device name (dev_valid_name), plus one `%d` at
/// most where a template is allowed (the name inside the container).
fn check_name(name: &str, template: bool) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() >= IFNAMSIZ {
        return Err("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("it is . or ..");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        return Err("it holds a '/', ':', NUL or white space");
    }
    if let Some((_, rest)) = name.split_once('%') {
        if !template {
            return Err("a host device name holds no '%'");
        }
        if !rest.starts_with('d') || rest[1..].contains('%') {
            return Err("a template holds one \"%d\" and no other '%'");
        }
    }
    Ok(())
}

/// The device's addresses with IFA_F_PERMANENT and global scope: those the
/// spec asks to keep (a move drops every address).
fn permanent_addresses(socket: &mut Socket, index: u32) -> io::Result<Vec<Address>> {
    let replies = socket.request(
        netlink::RTM_GETADDR,
        true,
        0,
        Body::addr(libc::AF_UNSPEC as u8, 0, 0, 0),
    )?;
    let mut kept = Vec::new();
    for reply in replies {
        let Some(head) = reply.body.get(..netlink::IFADDRMSG) else {
            continue;
        };
        let (family, prefix_len, flags, scope) = (head[0], head[1], head[2], head[3]);
        if reply.u32_at(4) != index
            || flags & netlink::IFA_F_PERMANENT == 0
            || scope != libc::RT_SCOPE_UNIVERSE
        {
            continue;
        }
        let attrs = reply
            .attrs(netlink::IFADDRMSG)
            .into_iter()
            .filter(|(kind, _)| {
                [
                    netlink::IFA_ADDRESS,
                    netlink::IFA_LOCAL,
                    netlink::IFA_BROADCAST,
                ]
                .contains(kind)
            })
            .map(|(kind, data)| (kind, data.to_vec()))
            .collect();
        kept.push(Address {
            family,
            prefix_len,
            scope,
            attrs,
        });
    }
    Ok(kept)
}

/// The index of the device named `name` where `socket` is, if there is one.
fn index_by_name(socket: &mut Socket, name: &str) -> io::Result<Option<u32>> {
    let body = Body::link(0, false).attr_str(netlink::IFLA_IFNAME, name);
    match socket.request(netlink::RTM_GETLINK, false, 0, body) {
        Ok(replies) => Ok(replies.first().map(|reply| reply.u32_at(4))),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The moved device's index inside: looked up by its new name, or for a
/// template (the kernel picked the name) by its index, which a move keeps
/// unless the namespace already has a device with it.
fn index_inside(socket: &mut Socket, device: &Move) -> io::Result<u32> {
    let found = match device.name.contains('%') {
        true => socket
            .request(
                netlink::RTM_GETLINK,
                false,
                0,
                Body::link(device.index, false),
            )?
            .first()
            .map(|reply| reply.u32_at(4)),
        false => index_by_name(socket, &device.name)?,
    };
    found
        .filter(|&index| index != 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernels_rule() {
        assert!(check_name("eth0", false).is_ok());
        assert!(check_name("ctr%d", true).is_ok());
        assert!(check_name("ctr%d", false).is_err());
        assert!(check_name("a%d%d", true).is_err());
        assert!(check_name("a%s", true).is_err());
        assert!(check_name("", false).is_err());
        assert!(check_name("abcdefghijklmnop", false).is_err());
        assert!(check_name("abcdefghijklmno", false).is_ok());
        assert!(check_name("a/b", false).is_err());
        assert!(check_name("a b", false).is_err());
        assert!(check_name("a:b", false).is_err());
        assert!(check_name("..", false).is_err());
    }

    #[test]
    fn devices_need_a_network_namespace_and_distinct_names() {
        let devices: HashMap<String, LinuxNetDevice> =
            serde_json::from_str(r#"{"lo": {"name": "x"}, "berth-none-0": {"name": "x"}}"#)
                .expect("valid json");
        assert!(matches!(
            NetDevices::check(&devices, false),
            Err(NetDeviceError::NoNetworkNamespace)
        ));
        assert!(matches!(
            NetDevices::check(&devices, true),
            Err(NetDeviceError::SameName { .. })
        ));
        let missing: HashMap<String, LinuxNetDevice> =
            serde_json::from_str(r#"{"berth-none-0": {}}"#).expect("valid json");
        match NetDevices::check(&missing, true) {
            Err(NetDeviceError::NotFound { name }) => assert_eq!(name, "berth-none-0"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}
