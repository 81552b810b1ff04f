//! The cgroup side of the true floor: one directory per hierarchy, the default
//! config's device rules, joining, and removal. What every runtime must do on
//! this host for runc's default config, found the way they find it: from
//! /proc/self/mountinfo and /proc/PID/cgroup.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The device rules runc's default config asks for on cgroup v1: `linux.resources.devices`
/// denies everything, then every runtime allows its default devices (the nodes it makes,
/// /dev/pts/*, /dev/ptmx, /dev/net/tun and mknod of any), in this order.
const DENY_ALL: &str = "a *:* rwm";
const ALLOWED: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// One mounted hierarchy and the container's directory in it.
pub struct Hierarchy {
    /// The mount point's last component (`cpu`, `name=systemd` is `systemd`, `unified`):
    /// the name the container sees under /sys/fs/cgroup.
    pub name: String,
    /// The container's cgroup directory on the host.
    pub dir: PathBuf,
    /// Where the parent's cpuset values come from, for the cpuset hierarchy on v1.
    cpuset_parent: Option<PathBuf>,
    devices: bool,
    /// The cgroup2 hierarchy, which a process enters by clone3's CLONE_INTO_CGROUP.
    pub unified: bool,
}

/// Every mounted hierarchy of process `pid` (`self` or a number), with `leaf` appended to
/// its cgroup path: the container's cgroup as runtimes place a relative default
/// (`<the runtime's own cgroup>/<id>`), or the container's own with `leaf` empty.
pub fn hierarchies(pid: &str, leaf: &str) -> Result<Vec<Hierarchy>, String> {
    let mountinfo = read("/proc/self/mountinfo")?;
    let membership = read(&format!("/proc/{pid}/cgroup"))?;
    let mut out = Vec::new();
    for line in membership.lines() {
        // N:controllers:path; controllers is empty for cgroup2.
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("/proc/{pid}/cgroup: odd line {line:?}"));
        };
        let Some(mount_point) = mount_of(&mountinfo, controllers) else {
            continue; // a hierarchy with no mount here (say, misc on v1): nothing to do
        };
        let base = PathBuf::from(&mount_point).join(path.trim_start_matches('/'));
        let dir = if leaf.is_empty() {
            base.clone()
        } else {
            base.join(leaf)
        };
        let name = mount_point
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let listed = |c: &str| controllers.split(',').any(|x| x == c);
        out.push(Hierarchy {
            name,
            dir,
            cpuset_parent: listed("cpuset").then_some(base),
            devices: listed("devices"),
            unified: controllers.is_empty(),
        });
    }
    Ok(out)
}

/// The mount point of the hierarchy with these controllers (empty: the cgroup2 one).
fn mount_of(mountinfo: &str, controllers: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        let (fstype, options) = (*fields.get(dash + 1)?, *fields.get(dash + 3)?);
        let matches = if controllers.is_empty() {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup"
                && controllers
                    .split(',')
                    .all(|c| options.split(',').any(|o| o == c))
        };
        matches.then(|| fields[4].to_string())
    })
}

/// Makes the container's directory in every hierarchy, with the config's device rules.
pub fn create(hierarchies: &[Hierarchy]) -> Result<(), String> {
    for h in hierarchies {
        fs::create_dir(&h.dir).map_err(|e| format!("mkdir {}: {e}", h.dir.display()))?;
        if let Some(parent) = &h.cpuset_parent {
            // A new v1 cpuset has no cpus or mems (unless the parent's
            // cgroup.clone_children is set), and no task can join it until it has.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = read(&parent.join(file).to_string_lossy())?;
                write_file(&h.dir, file, &[value.trim()])?;
            }
        }
        if h.devices {
            write_file(&h.dir, "devices.deny", &[DENY_ALL])?;
            write_file(&h.dir, "devices.allow", &ALLOWED)?;
        }
    }
    Ok(())
}

/// Moves the calling thread into its directory in every v1 hierarchy, by "0" into `tasks`:
/// the kernel moves one thread of its own without the global threadgroup lock, whose
/// first taking (for `cgroup.procs`) waits out an RCU grace period, ~10 ms here. The
/// caller is single-threaded, so that is the whole process. The cgroup2 hierarchy is
/// entered at clone instead (`unified_dir`).
pub fn join_v1(hierarchies: &[Hierarchy]) -> Result<(), String> {
    for h in hierarchies.iter().filter(|h| !h.unified) {
        write_file(&h.dir, "tasks", &["0"])?;
    }
    Ok(())
}

/// An O_PATH descriptor of the container's cgroup2 directory, for CLONE_INTO_CGROUP.
pub fn unified_dir(hierarchies: &[Hierarchy]) -> Result<Option<File>, String> {
    let Some(h) = hierarchies.iter().find(|h| h.unified) else {
        return Ok(None);
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(&h.dir)
        .map(Some)
        .map_err(|e| format!("open {}: {e}", h.dir.display()))
}

/// Removes the directories once the container has exited.
pub fn remove(hierarchies: &[Hierarchy]) -> Result<(), String> {
    for h in hierarchies {
        // The last task of a cgroup is reaped before its removal is allowed: v1 can say
        // EBUSY for a moment after the wait.
        let mut tries = 0;
        loop {
            match fs::remove_dir(&h.dir) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
                Err(e) => return Err(format!("rmdir {}: {e}", h.dir.display())),
            }
        }
    }
    Ok(())
}

/// One open of a control file and one write per value (v1 takes each write as one rule).
fn write_file(dir: &std::path::Path, file: &str, values: &[&str]) -> Result<(), String> {
    let path = dir.join(file);
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    for value in values {
        f.write_all(value.as_bytes())
            .map_err(|e| format!("write {value:?} to {}: {e}", path.display()))?;
    }
    Ok(())
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}
