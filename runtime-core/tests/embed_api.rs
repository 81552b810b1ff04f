//! The embedding API's edges, on real containers: stdio descriptors refused
//! with a terminal and used up by the first create, the init's wait through
//! its pidfd (once; a second is `NotChild`), a loaded handle's pidfd once
//! the init is gone, `berth::run`'s exit code for a signal, and stdio
//! descriptors that are the caller's own 0 and 1, crossed.
//! (`conformance/tests/library_embed.rs` runs the whole example.)
//!
//! `create` forks, so this runs without libtest's harness (whose threads
//! it would refuse), as root on a busybox bundle; elsewhere it says why it
//! did not run.

mod common;

use berth::{Container, CreateOptions, Error, ExitStatus, StdioError};
use std::path::{Path, PathBuf};

type Outcome = Result<(), String>;

/// A case's name, and the case, given its scratch directory and the state root.
type Case = (&'static str, fn(&Path, &Path) -> Outcome);

/// Ids unique to this run: a cgroup is named after the id, and other
/// processes may create containers on this host meanwhile.
fn id(name: &str) -> String {
    format!("embed-api-{}-{name}", std::process::id())
}

fn main() {
    let busybox = Path::new("/bin/busybox");
    if !nix::unistd::geteuid().is_root() || !busybox.exists() {
        println!("note: embed_api needs root and /bin/busybox; not run");
        println!("\ntest result: ok. 0 passed; 0 failed; 4 ignored; 0 measured; 0 filtered out\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("berth-embed-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.join("state");
    let cases: [Case; 4] = [
        (
            "stdio_with_a_terminal_is_refused_before_anything_exists_and_used_up",
            stdio_with_a_terminal,
        ),
        ("the_init_is_waited_for_once_through_its_pidfd", wait_once),
        ("run_reports_a_signal_as_128_plus_it", run_killed),
        (
            "stdio_given_as_the_callers_own_0_and_1_crossed_reaches_the_right_streams",
            stdio_on_low_numbers,
        ),
    ];
    let mut failed = 0;
    for (n, (name, case)) in cases.iter().enumerate() {
        let outcome = case(&dir.join(format!("case-{n}")), &root);
        match &outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n  {why}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\ntest result: {}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" },
        cases.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

fn stdio_with_a_terminal(dir: &Path, root: &Path) -> Outcome {
    let bundle = bundle(dir, &["true"], true)?;
    let (read, write) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    let id = id("terminal");
    let options = CreateOptions::new(root, &id, &bundle).stdout(write);
    match berth::create(&options) {
        Err(Error::Stdio(StdioError::WithTerminal)) => {}
        other => {
            let _ = berth::container::delete(root, &id, true);
            return Err(format!("expected StdioError::WithTerminal, got {other:?}"));
        }
    }
    if root.join(&id).exists() {
        return Err("a state directory was left".into());
    }
    // The descriptor left the options and was closed: the reader sees EOF.
    let mut buf = [0u8; 1];
    if nix::unistd::read(&read, &mut buf) != Ok(0) {
        return Err("the write end given as stdout is still open".into());
    }
    match berth::create(&options) {
        Err(Error::Stdio(StdioError::AlreadyUsed)) => Ok(()),
        other => {
            let _ = berth::container::delete(root, &id, true);
            Err(format!("expected StdioError::AlreadyUsed, got {other:?}"))
        }
    }
}

fn wait_once(dir: &Path, root: &Path) -> Outcome {
    let bundle = bundle(dir, &["sh", "-c", "exit 5"], false)?;
    let fail = |e: Error| e.to_string();
    let id = id("waited");
    let mut container = berth::create(&CreateOptions::new(root, &id, &bundle)).map_err(fail)?;
    let outcome = (|| {
        container.start().map_err(fail)?;
        let status = container.wait().map_err(fail)?;
        if status != ExitStatus::Exited(5) {
            return Err(format!("expected exit code 5, got {status:?}"));
        }
        match container.wait() {
            Err(Error::NotChild { pid }) if pid == container.pid() => {}
            other => return Err(format!("a second wait: expected NotChild, got {other:?}")),
        }
        // Reaped: a loaded handle finds no init to hold.
        match Container::load(root, &id).map(|c| c.pidfd().map(|_| ())) {
            Ok(Err(Error::NotRunning)) => Ok(()),
            other => Err(format!(
                "a loaded handle's pidfd: expected NotRunning, got {other:?}"
            )),
        }
    })();
    let deleted = berth::container::delete(root, &id, true).map_err(fail);
    outcome.and(deleted.map(drop))
}

fn run_killed(dir: &Path, root: &Path) -> Outcome {
    let bundle = bundle(dir, &["sh", "-c", "kill -KILL $$"], false)?;
    // In the host's pid namespace: an init that is pid 1 of its own
    // ignores a SIGKILL sent from inside.
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let mut config: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut() {
        namespaces.retain(|n| n["type"] != "pid");
    }
    std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
    let id = id("killed");
    match berth::run(&CreateOptions::new(root, &id, &bundle)) {
        Ok(137) => {}
        other => return Err(format!("expected 137, got {other:?}")),
    }
    match root.join(&id).exists() {
        true => Err("run left the state directory".into()),
        false => Ok(()),
    }
}

/// A caller whose own 0 and 1 were closed hands over pipes that took those
/// numbers, crossed: stdin's descriptor is 1, stdout's is 0. Moved onto 0
/// and 1 in turn, the first move would overwrite the second's source.
fn stdio_on_low_numbers(dir: &Path, root: &Path) -> Outcome {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    let bundle = bundle(dir, &["sh", "-c", "read line; echo got $line"], false)?;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string());
    let (in_read, in_write) = pipe()?;
    let (out_read, out_write) = pipe()?;
    // SAFETY: fcntl and dup2 on descriptors this process owns; 0 and 1 are
    // saved first and put back below, before anything is printed.
    let (saved_stdin, saved_stdout) = unsafe {
        let saved = (
            libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 10),
            libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 10),
        );
        for (end, target) in [(in_read.into_raw_fd(), 1), (out_write.into_raw_fd(), 0)] {
            libc::dup2(end, target);
            libc::close(end);
        }
        saved
    };
    // SAFETY: 1 and 0 now hold the pipes' ends, and nothing else owns them.
    let (stdin, stdout) = unsafe { (OwnedFd::from_raw_fd(1), OwnedFd::from_raw_fd(0)) };
    let id = id("low");
    let options = CreateOptions::new(root, &id, &bundle)
        .stdin(stdin)
        .stdout(stdout);
    let created = berth::create(&options);
    let fail = |e: Error| e.to_string();
    let outcome = created.map_err(fail).and_then(|mut container| {
        container.start().map_err(fail)?;
        let mut to_init = std::fs::File::from(in_write);
        to_init.write_all(b"crossed\n").map_err(|e| e.to_string())?;
        drop(to_init);
        let status = container.wait().map_err(fail)?;
        let mut output = String::new();
        std::fs::File::from(out_read)
            .read_to_string(&mut output)
            .map_err(|e| e.to_string())?;
        match (status, output.as_str()) {
            (ExitStatus::Exited(0), "got crossed\n") => Ok(()),
            other => Err(format!(
                "expected exit 0 and \"got crossed\", got {other:?}"
            )),
        }
    });
    let deleted = berth::container::delete(root, &id, true).map_err(fail);
    // SAFETY: put back this process's own 0 and 1, once the container and
    // its handle (whose pidfd took one of those numbers) are gone.
    unsafe {
        libc::dup2(saved_stdin, 0);
        libc::dup2(saved_stdout, 1);
        libc::close(saved_stdin);
        libc::close(saved_stdout);
    }
    outcome.and(deleted.map(drop))
}

/// A busybox bundle at `dir` running `args` (with busybox as [`sh`, `true`, `kill`]).
fn bundle(dir: &Path, args: &[&str], terminal: bool) -> Result<PathBuf, String> {
    common::busybox_bundle(dir, &["sh", "true", "kill"], args, terminal)
}
