//! Forking into namespaces: the init's clone (from a helper inside a user
//! namespace joined by path), exec's setup child that stays outside, and
//! the sibling a process forks into the pid namespace it joined late.
//! Every function here forks: the caller must be single-threaded.

use super::{join, JoinTarget, NamespaceError, Namespaces};
use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxNamespaceType;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

impl Namespaces {
    /// Join what must be joined first, then fork the init into its new
    /// namespaces. Returns 0 in the child, the
    /// child's host pid in the parent, like fork.
    ///
    /// The caller must be single-threaded: the child runs Rust code (and
    /// allocates) before it execs, which is only sound after a fork of a
    /// process with one thread.
    ///
    /// `into_cgroup`, a cgroup v2 directory, is where the child is born
    /// (`CLONE_INTO_CGROUP`); only when [`Namespaces::clones_into_cgroup`].
    ///
    /// `pid_joined_late`: a pid namespace joined by path is left to the init
    /// ([`Namespaces::pid_joined_late`]), which sets up outside it.
    pub fn clone_init(
        &self,
        into_cgroup: Option<BorrowedFd>,
        pid_joined_late: bool,
    ) -> Result<libc::pid_t, NamespaceError> {
        match &self.user_join {
            None => {
                // The joins below move this process's namespaces *for children*:
                // put them back after the clone, so a program that links the
                // library does not fork its next child into the container.
                let saved = self
                    .changes_children_namespaces()
                    .then(ForChildren::save)
                    .transpose()?;
                self.enter_before_clone_but(pid_joined_late.then_some(LinuxNamespaceType::Pid))?;
                let pid = clone3_into(self.clone_flags.bits() as u64, into_cgroup);
                if let (Some(saved), Ok(pid)) = (&saved, &pid) {
                    if *pid != 0 {
                        saved.restore()?;
                    }
                }
                pid
            }
            Some(user) => self.clone_from_user_namespace(user),
        }
    }

    /// Fork a child that stays in the caller's namespaces (exec's first
    /// child, which then joins the container's with
    /// [`Namespaces::enter_from_outside`]), born in the cgroup v2 directory
    /// `into_cgroup` if given. Returns 0 in the child, like fork; the caller
    /// must be single-threaded, as for [`Namespaces::clone_init`].
    pub fn fork_outside(
        &self,
        into_cgroup: Option<BorrowedFd>,
    ) -> Result<libc::pid_t, NamespaceError> {
        clone3_into(0, into_cgroup)
    }

    /// Whether [`Namespaces::clone_init`] can make the child in a cgroup: not
    /// when a helper inside a user namespace clones it, as the kernel would
    /// check the helper's credentials there against the host's cgroup files.
    pub fn clones_into_cgroup(&self) -> bool {
        self.user_join.is_none()
    }

    fn changes_children_namespaces(&self) -> bool {
        !self.parent_joins.is_empty() || self.new_time_ns
    }

    /// A helper joins the user namespace, clones the init as a sibling
    /// (`CLONE_PARENT`), sends its pid back over a pipe and exits. The helper,
    /// not the caller, joins a pid namespace, so the pid it reads from clone
    /// is the caller's view (setns of a pid namespace only moves children).
    fn clone_from_user_namespace(&self, user: &JoinTarget) -> Result<libc::pid_t, NamespaceError> {
        use std::io::{Read, Write};
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| NamespaceError::Clone(e.into()))?;
        let (mut read_end, write_end) = (File::from(read_end), File::from(write_end));
        let helper = clone3(0)?;
        if helper == 0 {
            drop(read_end);
            let mut write_end = write_end;
            // Root joins the pid namespace first, while it still has its
            // host capabilities (the pid namespace may belong to another
            // user namespace). A user without privilege has capabilities
            // only inside the user namespace, so joins that first.
            let joined = if nix::unistd::geteuid().is_root() {
                self.enter_before_clone().and_then(|()| join(user))
            } else {
                join(user).and_then(|()| self.enter_before_clone())
            };
            let init = joined
                .and_then(|()| clone3(self.clone_flags.bits() as u64 | libc::CLONE_PARENT as u64));
            match init {
                Ok(0) => return Ok(0),
                Ok(pid) => {
                    let _ = write_end.write_all(&pid.to_ne_bytes());
                }
                Err(e) => {
                    let _ = write_end.write_all(&(-1i32).to_ne_bytes());
                    let _ = write_end.write_all(e.to_string().as_bytes());
                }
            }
            // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
            unsafe { libc::_exit(0) }
        }
        drop(write_end);
        let mut reply = Vec::new();
        let read = read_end.read_to_end(&mut reply);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None);
        read.map_err(NamespaceError::Clone)?;
        match reply
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        {
            Some(pid) if pid > 0 => Ok(pid),
            _ => {
                let why = String::from_utf8_lossy(reply.get(4..).unwrap_or_default()).into_owned();
                Err(NamespaceError::Clone(std::io::Error::other(format!(
                    "from inside user namespace {}: {why}",
                    user.path.display()
                ))))
            }
        }
    }
}

/// This process's pid and time namespaces for children, to return to.
struct ForChildren {
    pid: OwnedFd,
    time: Option<OwnedFd>,
}

impl ForChildren {
    fn save() -> Result<ForChildren, NamespaceError> {
        let open = |name: &str| {
            let path = PathBuf::from(format!("/proc/self/ns/{name}"));
            nix::fcntl::open(
                &path,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|source| NamespaceError::Join {
                kind: "own",
                path,
                source,
            })
        };
        // Kernels without time namespaces have no time_for_children; nothing to restore there.
        Ok(ForChildren {
            pid: open("pid_for_children")?,
            time: open("time_for_children").ok(),
        })
    }

    fn restore(&self) -> Result<(), NamespaceError> {
        let back = |fd: &OwnedFd, flag, name: &str| {
            nix::sched::setns(fd, flag).map_err(|source| NamespaceError::Join {
                kind: "own",
                path: PathBuf::from(format!("/proc/self/ns/{name}")),
                source,
            })
        };
        back(&self.pid, CloneFlags::CLONE_NEWPID, "pid_for_children")?;
        if let Some(time) = &self.time {
            back(
                time,
                CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
                "time_for_children",
            )?;
        }
        Ok(())
    }
}

/// Fork a sibling (`CLONE_PARENT`: a child of this process's parent) into
/// the namespaces this process set for its children. 0 in the child.
pub fn fork_as_sibling() -> Result<libc::pid_t, NamespaceError> {
    clone3(libc::CLONE_PARENT as u64)
}

/// Whether `pid` is a child of this process (exited or not; nothing is
/// reaped): what a process forked with [`fork_as_sibling`], or by the
/// waiter's `CLONE_PARENT`, from a child of ours must be.
pub fn is_own_child(pid: libc::pid_t) -> bool {
    pid > 0
        && nix::sys::wait::waitid(
            nix::sys::wait::Id::Pid(nix::unistd::Pid::from_raw(pid)),
            nix::sys::wait::WaitPidFlag::WEXITED
                | nix::sys::wait::WaitPidFlag::WNOHANG
                | nix::sys::wait::WaitPidFlag::WNOWAIT,
        )
        .is_ok()
}

fn zeroed_clone_args() -> libc::clone_args {
    // SAFETY: clone_args is a plain C struct of integers; all-zero is its documented default.
    unsafe { std::mem::zeroed() }
}

/// `clone3` with these flags and no stack: fork-like, 0 in the child.
fn clone3(flags: u64) -> Result<libc::pid_t, NamespaceError> {
    clone3_into(flags, None)
}

/// linux/sched.h's (libc types it as a C int, too narrow for the bit).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The same, the child born in the cgroup v2 directory `cgroup` if given.
fn clone3_into(flags: u64, cgroup: Option<BorrowedFd>) -> Result<libc::pid_t, NamespaceError> {
    let mut args: libc::clone_args = zeroed_clone_args();
    args.flags = flags;
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    // With CLONE_PARENT the kernel takes the caller's own exit signal and refuses another.
    if flags & libc::CLONE_PARENT as u64 == 0 {
        args.exit_signal = libc::SIGCHLD as u64;
    }
    // SAFETY: clone3 with no stack behaves like fork: the child gets a copy
    // of the address space and returns 0 here; the struct outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret < 0 {
        return Err(NamespaceError::Clone(std::io::Error::last_os_error()));
    }
    Ok(ret as libc::pid_t)
}
