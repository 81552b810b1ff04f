//! A caller whose stdin, stdout and stderr are closed (a daemon that closed
//! them, a shim's worker): every descriptor the runtime opens would take
//! one of the numbers 0-2, and the container's stdio set-up (the pty's
//! slave put on 0-2, given descriptors moved there) would then close the
//! runtime's own: the pty's master, the sync channel. `create` must work as
//! with them open, and leave the caller's 0-2 closed as it found them.
//!
//! `create` forks, so this runs without libtest's harness, as root on a
//! busybox bundle; elsewhere it says why it did not run. Its report goes to
//! a copy of stdout made before 0-2 are closed.

mod common;

use berth::{CreateOptions, ExitStatus};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

type Outcome = Result<(), String>;

fn main() {
    let busybox = Path::new("/bin/busybox");
    if !nix::unistd::geteuid().is_root() || !busybox.exists() {
        println!("note: closed_stdio needs root and /bin/busybox; not run");
        println!("\ntest result: ok. 0 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("berth-closed-stdio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("state");
    // SAFETY: dup of this process's own stdout, and closing its 0-2: the
    // report goes through the copy, nothing else here uses them.
    let mut report = unsafe { std::fs::File::from_raw_fd(libc::dup(1)) };
    for fd in 0..=2 {
        // SAFETY: see above.
        unsafe { libc::close(fd) };
    }
    type Case = (&'static str, fn(&Path, &Path) -> Outcome);
    let cases: [Case; 2] = [
        (
            "a_terminal_comes_through_the_console_socket_intact",
            terminal,
        ),
        ("a_container_without_a_terminal_runs_and_exits_0", plain),
    ];
    let mut failed = 0;
    for (n, (name, case)) in cases.iter().enumerate() {
        let mut outcome = case(&dir.join(format!("case-{n}")), &root);
        if outcome.is_ok() {
            outcome = still_closed();
        }
        let _ = match &outcome {
            Ok(()) => writeln!(report, "test {name} ... ok"),
            Err(why) => {
                failed += 1;
                writeln!(report, "test {name} ... FAILED\n  {why}")
            }
        };
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = writeln!(
        report,
        "\ntest result: {}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" },
        cases.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

/// The caller's 0-2 are as it left them: closed.
fn still_closed() -> Outcome {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only reads a descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            return Err(format!("create left descriptor {fd} open in the caller"));
        }
    }
    Ok(())
}

fn id(name: &str) -> String {
    format!("closed-stdio-{}-{name}", std::process::id())
}

fn terminal(dir: &Path, root: &Path) -> Outcome {
    let bundle = bundle(dir, &["sh", "-c", "tty; echo done"], true)?;
    let socket_path = dir.join("console.sock");
    let listener = UnixListener::bind(&socket_path).map_err(|e| format!("bind: {e}"))?;
    let id = id("terminal");
    let options = CreateOptions::new(root, &id, &bundle)
        .console_socket(&socket_path)
        .detach(true);
    let result = (|| -> Outcome {
        let mut container = berth::create(&options).map_err(|e| format!("create: {e}"))?;
        let master = receive_fd(&listener)?;
        container.start().map_err(|e| format!("start: {e}"))?;
        let mut out = String::new();
        // EIO once the slave's last holder is gone ends the read.
        let _ = std::fs::File::from(master).read_to_string(&mut out);
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        if lines != ["/dev/pts/0", "done"] {
            return Err(format!("the container said {out:?} through its terminal"));
        }
        let status = container.wait().map_err(|e| format!("wait: {e}"))?;
        if status != ExitStatus::Exited(0) {
            return Err(format!("exited {status:?}"));
        }
        container
            .delete(false)
            .map_err(|e| format!("delete: {e}"))?;
        Ok(())
    })();
    let _ = berth::container::delete(root, &id, true);
    result
}

fn plain(dir: &Path, root: &Path) -> Outcome {
    let bundle = bundle(dir, &["sh", "-c", "echo to-nowhere; exit 0"], false)?;
    let id = id("plain");
    let options = CreateOptions::new(root, &id, &bundle);
    let result = (|| -> Outcome {
        let mut container = berth::create(&options).map_err(|e| format!("create: {e}"))?;
        container.start().map_err(|e| format!("start: {e}"))?;
        let status = container.wait().map_err(|e| format!("wait: {e}"))?;
        if status != ExitStatus::Exited(0) {
            return Err(format!("exited {status:?}"));
        }
        container
            .delete(false)
            .map_err(|e| format!("delete: {e}"))?;
        Ok(())
    })();
    let _ = berth::container::delete(root, &id, true);
    result
}

/// The one descriptor the runtime sends on the console socket.
fn receive_fd(listener: &UnixListener) -> Result<OwnedFd, String> {
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    for cmsg in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS gave this process a new descriptor nothing else owns.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("no descriptor came on the console socket".into())
}

/// A busybox bundle at `dir` running `args` (with busybox as [`sh`, `tty`, `echo`]).
fn bundle(dir: &Path, args: &[&str], terminal: bool) -> Result<PathBuf, String> {
    common::busybox_bundle(dir, &["sh", "tty", "echo"], args, terminal)
}
