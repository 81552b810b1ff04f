//! The forker forked from the serving shim before any thread exists (docs/shim.md, "The processes"): the fork, the child's
//! descriptors and names, and the hand-over to the first request.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{fork, ForkResult};

use super::{serve_on, Forker, FORKER_ARG};

/// The forker forked by `fork_early`, until the shim's first request.
static EARLY: Mutex<Option<Forker>> = Mutex::new(None);

/// The early forker, once: the first request takes it.
pub(super) fn take() -> Option<Forker> {
    EARLY.lock().ok().and_then(|mut early| early.take())
}

/// Forks the forker from the serving shim (`serving.rs`, or `main` in one
/// the crate executed), before the shim has a thread (`Forker::early_or_spawn` takes it). A fork, not `spawn`'s
/// re-execution: the child shares the shim's pages and maps only the few it
/// touches, where a fresh execution of this binary faults in its own copy
/// of the start-up code (docs/shim.md, "Memory"); and the first create
/// waits for no exec. If the fork fails, the first request spawns one.
pub fn fork_early() {
    // What makes the fork safe, checked rather than assumed: a thread made
    // before (by some initialiser) leaves the forker to `spawn`.
    if !single_threaded() {
        return;
    }
    let Ok((ours, theirs)) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    ) else {
        return;
    };
    // SAFETY: called before the shim starts any thread, with this
    // process's one thread (checked above), so the child is a whole copy of a single-threaded
    // process and may run any code; it never returns from this function.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(ours);
            default_signal_handling();
            let code = match detach(theirs) {
                Ok(socket) => {
                    name_as_forker();
                    serve_on(socket)
                }
                Err(e) => {
                    eprintln!("berth forker: {e}");
                    1
                }
            };
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            if let Ok(mut early) = EARLY.lock() {
                *early = Some(Forker {
                    socket: ours,
                    pid: child.as_raw() as u32,
                });
            }
        }
        Err(_) => {}
    }
}

/// Whether this process has one thread (`/proc/self/task`): what makes a
/// fork that runs code in the child safe.
pub fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// In the forked forker: the signal handling of a freshly executed one. A
/// shim forked from `start` (`serving.rs`) has the handlers the crate set
/// up there, which would keep SIGTERM from ending the forker, and has
/// blocked the signals its reaper takes.
fn default_signal_handling() {
    use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
    let _ = SigSet::empty().thread_set_mask();
    for (sig, handler) in [
        (Signal::SIGCHLD, SigHandler::SigDfl),
        (Signal::SIGTERM, SigHandler::SigDfl),
        (Signal::SIGINT, SigHandler::SigDfl),
        // Rust's runtime ignores SIGPIPE in a fresh process.
        (Signal::SIGPIPE, SigHandler::SigIgn),
    ] {
        // SAFETY: setting a default or ignore disposition installs no
        // handler code; the child has one thread.
        let _ = unsafe { signal(sig, handler) };
    }
}

/// In the forked forker: /dev/null on 0-2 (stdout is the pipe the `start`
/// command reads until the shim closes it) and every other descriptor of
/// the shim closed (the ttrpc listener among them), but `socket`.
fn detach(socket: OwnedFd) -> std::io::Result<OwnedFd> {
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    drop(null);
    let keep = socket.as_raw_fd() as libc::c_uint;
    // SAFETY: close_range(2) of descriptors this process owns; `socket` is
    // outside both ranges.
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, keep - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
    }
    Ok(socket)
}

/// Makes the forked forker look like the re-executed one to `ps` and the
/// tests (`containerd-shim-berth-v2 berth-forker`), not like a second shim
/// serving the same socket: its command name, and its command line
/// rewritten in place through /proc/self/mem (the area argv's strings
/// occupy, from /proc/self/stat; the shim's arguments are longer than the
/// new ones). Best effort: a failure changes only what `ps` shows.
fn name_as_forker() {
    let _ = nix::sys::prctl::set_name(c"berth-forker");
    let _ = rewrite_arguments(&[FORKER_ARG]);
}

/// Replaces this process's arguments after `argv[0]` with `args`, in place
/// (they must be shorter than the old ones).
pub fn rewrite_arguments(args: &[&str]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_comm = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    // arg_start and arg_end are fields 48 and 49; field 3 follows `comm`.
    let field =
        |n: usize| -> Option<u64> { after_comm.split_whitespace().nth(n - 3)?.parse().ok() };
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        return Err(std::io::Error::other("no argument area in /proc/self/stat"));
    };
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/proc/self/mem")?;
    let mut area = vec![0u8; end.saturating_sub(start) as usize];
    mem.read_exact_at(&mut area, start)?;
    // argv[0] stays; the rest is replaced, NUL-padded to the old length.
    let first = area.iter().position(|&b| b == 0).unwrap_or(area.len());
    let mut new = area[..first].to_vec();
    for arg in args {
        new.push(0);
        new.extend_from_slice(arg.as_bytes());
    }
    if new.len() >= area.len() {
        return Err(std::io::Error::other("the new arguments do not fit"));
    }
    new.resize(area.len(), 0);
    mem.write_all_at(&new, start)
}
