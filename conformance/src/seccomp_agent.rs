//! A seccomp agent, the other end of `linux.seccomp.listenerPath`: it takes
//! each process's listener descriptor with the runtime's state message, and
//! answers every notified syscall, recording what it saw. It runs on
//! threads of the test process (no fork), until the test ends.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::console::accept_one_fd;
use crate::scratch_dir;

/// How the agent answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Every notified syscall fails with this errno.
    Errno(i32),
    /// The first syscall of the process whose descriptor arrives `n`th
    /// (0: the init) waits until `release`; every syscall then goes on.
    HoldFirstOf(usize),
}

#[derive(Default)]
struct Seen {
    messages: Vec<String>,
    syscalls: Vec<i32>,
    holding: bool,
    released: bool,
}

pub struct SeccompAgent {
    path: PathBuf,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

impl SeccompAgent {
    /// Listens on a socket of its own and answers as `answer` says.
    pub fn start(answer: Answer) -> SeccompAgent {
        // A short name, not the test's: a unix socket path has at most 107 bytes.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = scratch_dir().join(format!("sa-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).expect("bind the agent socket");
        let seen = Arc::new((Mutex::new(Seen::default()), Condvar::new()));
        let shared = Arc::clone(&seen);
        thread::spawn(move || {
            let mut index = 0;
            while let Ok((message, fd)) = accept_one_fd(&listener) {
                shared.0.lock().unwrap().messages.push(message);
                let shared = Arc::clone(&shared);
                let hold = matches!(answer, Answer::HoldFirstOf(n) if n == index);
                thread::spawn(move || serve(fd, answer, hold, &shared));
                index += 1;
            }
        });
        SeccompAgent { path, seen }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state messages received so far, one per process.
    pub fn messages(&self) -> Vec<String> {
        self.seen.0.lock().unwrap().messages.clone()
    }

    /// The syscall numbers notified so far.
    pub fn syscalls(&self) -> Vec<i32> {
        self.seen.0.lock().unwrap().syscalls.clone()
    }

    /// Whether a syscall is being held (`Answer::HoldFirstOf`).
    pub fn holding(&self) -> bool {
        self.seen.0.lock().unwrap().holding
    }

    /// Lets the held syscall go on.
    pub fn release(&self) {
        self.seen.0.lock().unwrap().released = true;
        self.seen.1.notify_all();
    }
}

impl Drop for SeccompAgent {
    fn drop(&mut self) {
        self.release();
        if let Some(dir) = self.path.parent() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Answer notifications on `fd` until every process using the filter is gone.
fn serve(fd: OwnedFd, answer: Answer, mut hold: bool, seen: &(Mutex<Seen>, Condvar)) {
    loop {
        // SAFETY: seccomp_notif is plain data, and RECV needs it zeroed.
        let mut request: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV writes one seccomp_notif into `request`, which outlives the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut request) } != 0
        {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        seen.0.lock().unwrap().syscalls.push(request.data.nr);
        let mut response = libc::seccomp_notif_resp {
            id: request.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match answer {
            Answer::Errno(errno) => response.error = -errno,
            Answer::HoldFirstOf(_) => {
                if hold {
                    hold = false;
                    let mut state = seen.0.lock().unwrap();
                    state.holding = true;
                    while !state.released {
                        state = seen.1.wait(state).unwrap();
                    }
                    state.holding = false;
                }
                response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            }
        }
        // SAFETY: SEND reads one seccomp_notif_resp from `response`; a stale id only fails the call.
        unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut response,
            )
        };
    }
}
