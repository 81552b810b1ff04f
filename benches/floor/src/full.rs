//! The true floor: all the kernel work runc's default `config.json` asks for, by the
//! cheapest syscalls, and nothing else.
//!
//! The config is not read: it is runc's default (`runc spec`, `berth spec`), written
//! into the code below, and benches/harness refuses to run this floor on a bundle whose
//! config differs from it in anything but `process.args`, `hostname`, `ociVersion` and
//! `process.terminal`, which come from the command line or change no kernel work.
//!
//! The parent makes the container's cgroup in every hierarchy (with the device rules),
//! clones the child into new pid, network, ipc, uts and mount namespaces and into the
//! cgroup2 directory, waits, and removes the cgroups. The child joins the v1 cgroups, builds the root (binds the rootfs,
//! the config's seven mounts, the cgroup hierarchies under /sys/fs/cgroup, the default
//! device nodes and /dev links, masked and read-only paths), pivots into it, makes it
//! read-only, sets the hostname, brings `lo` up, sets the rlimit, the capabilities and no_new_privs, and
//! execs. No state, no synchronisation: everything is serial, in one parent and one child.

use std::convert::Infallible;
use std::ffi::CString;
use std::process::ExitCode;

use crate::cgroups::{self, Hierarchy};
use crate::process::{check, limit_and_exec};
use crate::{clone_container, NAMESPACES};

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

/// `linux.maskedPaths` of the default config.
const MASKED: [&str; 10] = [
    "proc/acpi",
    "proc/asound",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "sys/firmware",
    "proc/scsi",
];
/// `linux.readonlyPaths` of the default config.
const READ_ONLY: [&str; 5] = [
    "proc/bus",
    "proc/fs",
    "proc/irq",
    "proc/sys",
    "proc/sysrq-trigger",
];
/// The default devices every runtime makes: (name, major, minor).
const DEVICES: [(&str, u32, u32); 6] = [
    ("dev/null", 1, 3),
    ("dev/zero", 1, 5),
    ("dev/full", 1, 7),
    ("dev/random", 1, 8),
    ("dev/urandom", 1, 9),
    ("dev/tty", 5, 0),
];
/// The default /dev links: (link, target).
const LINKS: [(&str, &str); 5] = [
    ("dev/fd", "/proc/self/fd"),
    ("dev/stdin", "/proc/self/fd/0"),
    ("dev/stdout", "/proc/self/fd/1"),
    ("dev/stderr", "/proc/self/fd/2"),
    ("dev/ptmx", "pts/ptmx"),
];

pub fn main(rootfs: &str, id: &str, hostname: &str, program: &[&str]) -> ExitCode {
    let hierarchies = match cgroups::hierarchies("self", id) {
        Ok(h) => h,
        Err(e) => return fail(&e),
    };
    if let Err(e) = cgroups::create(&hierarchies) {
        let _ = cgroups::remove(&hierarchies);
        return fail(&e);
    }
    let unified = match cgroups::unified_dir(&hierarchies) {
        Ok(dir) => dir,
        Err(e) => {
            let _ = cgroups::remove(&hierarchies);
            return fail(&e);
        }
    };
    let status = clone_container(NAMESPACES, unified.as_ref(), || {
        container(rootfs, hostname, &hierarchies, program)
    });
    match cgroups::remove(&hierarchies) {
        Ok(()) => status,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("berth-floor: {message}");
    ExitCode::FAILURE
}

/// The child: cgroups, the root file system, pivot_root, then the process settings.
fn container(
    rootfs: &str,
    hostname: &str,
    hierarchies: &[Hierarchy],
    program: &[&str],
) -> Result<Infallible, String> {
    cgroups::join_v1(hierarchies)?;
    // SAFETY: umask cannot fail; 0 so the device nodes get exactly their modes.
    unsafe { libc::umask(0) };
    mount("", "/", "", libc::MS_REC | libc::MS_PRIVATE, "")?;
    mount(rootfs, rootfs, "", libc::MS_BIND | libc::MS_REC, "")?;
    chdir(rootfs)?;
    // The config's mounts, in its order, at paths relative to the rootfs.
    mount("proc", "proc", "proc", 0, "")?;
    let dev_data = "mode=755,size=65536k";
    mount(
        "tmpfs",
        "dev",
        "tmpfs",
        NOSUID | libc::MS_STRICTATIME,
        dev_data,
    )?;
    mkdir("dev/pts")?;
    let pts_data = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    mount("devpts", "dev/pts", "devpts", NOSUID | NOEXEC, pts_data)?;
    mkdir("dev/shm")?;
    let shm_data = "mode=1777,size=65536k";
    mount("shm", "dev/shm", "tmpfs", NOSUID | NOEXEC | NODEV, shm_data)?;
    mkdir("dev/mqueue")?;
    mount(
        "mqueue",
        "dev/mqueue",
        "mqueue",
        NOSUID | NOEXEC | NODEV,
        "",
    )?;
    let sys_flags = NOSUID | NOEXEC | NODEV | libc::MS_RDONLY;
    mount("sysfs", "sys", "sysfs", sys_flags, "")?;
    cgroup_mount(hierarchies)?;
    for (name, major, minor) in DEVICES {
        let path = cstring(name)?;
        let dev = libc::makedev(major, minor);
        // SAFETY: mknod reads a NUL-terminated path.
        check(
            unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, dev) },
            name,
        )?;
    }
    for (link, target) in LINKS {
        let (l, t) = (cstring(link)?, cstring(target)?);
        // SAFETY: symlink reads two NUL-terminated paths.
        check(unsafe { libc::symlink(t.as_ptr(), l.as_ptr()) }, link)?;
    }
    for path in MASKED {
        mask(path)?;
    }
    for path in READ_ONLY {
        // Bound onto itself, then made read-only (a bind's flags change only by remount).
        match mount(path, path, "", libc::MS_BIND | libc::MS_REC, "") {
            Err(e) if e.ends_with(&enoent()) => continue,
            other => other?,
        }
        let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC;
        mount("", path, "", ro, "")?;
    }
    // pivot_root(".", ".") stacks the old root on the new; detaching it leaves the rootfs.
    // SAFETY: pivot_root reads two NUL-terminated paths.
    check(
        unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as i32,
        "pivot_root",
    )?;
    // SAFETY: umount2 reads a NUL-terminated path.
    check(
        unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
        "detach old root",
    )?;
    chdir("/")?;
    // root.readonly
    mount(
        "",
        "/",
        "",
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        "",
    )?;
    // SAFETY: sethostname reads len bytes of the slice.
    check(
        unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) },
        "sethostname",
    )?;
    loopback_up()?;
    limit_and_exec(program)
}

/// `lo` up in the new network namespace, as runc (its `loopback` network for a
/// namespace it makes), crun and Berth do: by the cheapest calls, an ioctl on any
/// socket rather than rtnetlink.
fn loopback_up() -> Result<(), String> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd.min(0), "socket")?;
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_name[..2].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char]);
    request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own; the fd is ours and closed after.
    let set = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) };
    // SAFETY: the fd is ours.
    unsafe { libc::close(fd) };
    check(set, "SIOCSIFFLAGS lo")
}

/// The config's `/sys/fs/cgroup` mount (`cgroup`, ro) on a v1 or hybrid host, as
/// runtimes make it without a cgroup namespace: a tmpfs with the container's directory
/// of every hierarchy bound under it, all read-only.
fn cgroup_mount(hierarchies: &[Hierarchy]) -> Result<(), String> {
    let flags = NOSUID | NOEXEC | NODEV;
    mount("tmpfs", "sys/fs/cgroup", "tmpfs", flags, "mode=755")?;
    for h in hierarchies {
        let target = format!("sys/fs/cgroup/{}", h.name);
        mkdir(&target)?;
        let source = h.dir.to_string_lossy();
        mount(&source, &target, "", libc::MS_BIND, "")?;
        let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags;
        mount("", &target, "", ro, "")?;
    }
    // The mount read-only, not the tmpfs (a bind remount changes only the mount's flags).
    let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags;
    mount("", "sys/fs/cgroup", "", ro, "")
}

/// A masked path: /dev/null bound over a file, a read-only tmpfs over a directory
/// (the bind says ENOTDIR for a directory: one syscall finds which), nothing if absent.
fn mask(path: &str) -> Result<(), String> {
    match mount("dev/null", path, "", libc::MS_BIND, "") {
        Ok(()) => Ok(()),
        Err(e) if e.ends_with(&enoent()) => Ok(()),
        Err(e) if e.ends_with(&std::io::Error::from_raw_os_error(libc::ENOTDIR).to_string()) => {
            let flags = libc::MS_RDONLY | NOSUID | NODEV | NOEXEC;
            mount("tmpfs", path, "tmpfs", flags, "")
        }
        Err(e) => Err(e),
    }
}

fn enoent() -> String {
    std::io::Error::from_raw_os_error(libc::ENOENT).to_string()
}

/// mount(2); empty strings are null pointers.
fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
    let (s, t, f, d) = (
        cstring(source)?,
        cstring(target)?,
        cstring(fstype)?,
        cstring(data)?,
    );
    let ptr = |c: &CString, empty: bool| if empty { std::ptr::null() } else { c.as_ptr() };
    // SAFETY: every pointer is null or a live NUL-terminated string.
    let ret = unsafe {
        libc::mount(
            ptr(&s, source.is_empty()),
            t.as_ptr(),
            ptr(&f, fstype.is_empty()),
            flags,
            ptr(&d, data.is_empty()).cast(),
        )
    };
    check(ret, &format!("mount {source:?} on {target}"))
}

fn mkdir(path: &str) -> Result<(), String> {
    let c = cstring(path)?;
    // SAFETY: mkdir reads a NUL-terminated path.
    check(
        unsafe { libc::mkdir(c.as_ptr(), 0o755) },
        &format!("mkdir {path}"),
    )
}

fn chdir(path: &str) -> Result<(), String> {
    let c = cstring(path)?;
    // SAFETY: chdir reads a NUL-terminated path.
    check(unsafe { libc::chdir(c.as_ptr()) }, &format!("chdir {path}"))
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} has a NUL byte"))
}
