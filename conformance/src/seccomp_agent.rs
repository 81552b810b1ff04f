//! A seccomp agent, the other end of `linux.seccomp.listenerPath`: it takes
//! each process's listener descriptor with the runtime's state message, and
//! answers every notified syscall with one errno, recording what it saw.
//! It runs on threads of the test process (no fork), until the test ends.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::console::accept_one_fd;
use crate::scratch_dir;

#[derive(Default)]
struct Seen {
    messages: Vec<String>,
    syscalls: Vec<i32>,
}

pub struct SeccompAgent {
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

impl SeccompAgent {
    /// Listens on a socket of its own; every notified syscall fails with `errno`.
    pub fn start(errno: i32) -> SeccompAgent {
        // A short name, not the test's: a unix socket path has at most 107 bytes.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_dir().join(format!("sa-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind the agent socket");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            while let Ok((message, fd)) = accept_one_fd(&listener) {
                shared.lock().unwrap().messages.push(message);
                let shared = Arc::clone(&shared);
                thread::spawn(move || answer(fd, errno, &shared));
            }
        });
        SeccompAgent { path, seen }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state messages received so far, one per process.
    pub fn messages(&self) -> Vec<String> {
        self.seen.lock().unwrap().messages.clone()
    }

    /// The syscall numbers notified so far.
    pub fn syscalls(&self) -> Vec<i32> {
        self.seen.lock().unwrap().syscalls.clone()
    }
}

impl Drop for SeccompAgent {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Answer notifications on `fd` until every process using the filter is gone.
fn answer(fd: OwnedFd, errno: i32, seen: &Mutex<Seen>) {
    loop {
        // SAFETY: seccomp_notif is plain data, and RECV needs it zeroed.
        let mut request: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `request`, which outlives the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) } != 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        seen.lock().unwrap().syscalls.push(request.data.nr);
        let mut response = libc::seccomp_notif_resp { id: request.id, val: 0, error: -errno, flags: 0 };
        // SAFETY: SEND reads one seccomp_notif_resp from `response`; a stale id only fails the call.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut response) };
    }
}
