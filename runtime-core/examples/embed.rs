//! Berth embedded as a small engine embeds it: the container's stdio on
//! pipes this program reads, an exec with the container's recorded
//! settings (its seccomp profile, seen from inside), waits on pidfds, a
//! delete that leaves nothing, then the same again in one call with
//! `berth::run`.
//!
//! ```sh
//! cargo build --example embed -p berth
//! sudo target/debug/examples/embed [--work DIR] [--id ID]
//! ```
//!
//! Needs root and a static busybox at /bin/busybox. It builds its bundle
//! and state root in DIR (a temporary directory, removed at the end, by
//! default) and prints one line per step. Exits 0 when every step worked,
//! 1 on a failed step, 2 on bad arguments.
//!
//! It stays single-threaded: `create` and `exec` fork, and refuse to from
//! a threaded process (`Error::Threaded`). Its pipes are read one after
//! the other, which is enough for the few lines the container writes.

use berth::exec::ExecOptions;
use berth::{container, Container, CreateOptions};
use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The init: says hello on stdout and stderr, reads a line from stdin,
/// repeats it, lists its open descriptors (see `PROBE`) and exits 3.
const INIT: &str = "echo hello from $(hostname); echo a line to stderr >&2; \
                    read line || line=nothing; echo read $line; \
                    echo descriptors: $(ls /proc/self/fd); exit 3";

/// The exec'd process: its open descriptors (0, 1 and 2, and `ls`'s own
/// 3: none of the caller's leaked in), its seccomp mode (2: a filter) and
/// no_new_privs bit, then a mkdir the container's profile refuses.
const PROBE: &str = "echo descriptors: $(ls /proc/self/fd); \
                     grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /dev/shm/probe";

/// The container's profile: everything allowed but mkdir.
const SECCOMP: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
}"#;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Args {
    /// Holds `bundle/` and `state/` (the state root, runc's `--root`).
    work: PathBuf,
    /// Made here, so removed at the end.
    temporary: bool,
    id: String,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("embed: {message}\nusage: embed [--work DIR] [--id ID]");
            return ExitCode::from(2);
        }
    };
    let result = embed(&args);
    if args.temporary {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("embed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn embed(args: &Args) -> Result<()> {
    let bundle = make_bundle(&args.work.join("bundle"))?;
    let root = args.work.join("state");
    println!("bundle: {}", bundle.display());

    // The init's stdio: pipes. Ours are close-on-exec; the container's
    // ends go to create, which closes its copies here once the init is cloned.
    let (stdin, to_init) = pipe()?;
    let (from_init, stdout) = pipe()?;
    let (errors_from_init, stderr) = pipe()?;
    let options = CreateOptions::new(&root, &args.id, &bundle)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr);
    let container = berth::create(&options)?;
    println!(
        "created: {}, pid {}, status {}",
        container.id(),
        container.pid(),
        container.status()
    );
    let result = drive(
        container,
        Pipes {
            to_init,
            from_init,
            errors_from_init,
        },
    );
    if result.is_err() {
        // Nothing left behind; only our own container (a create that
        // failed on an id in use must not delete someone else's).
        let _ = container::delete(&root, &args.id, true);
        return result;
    }
    println!("left: {} container(s)", container::list(&root)?.len());

    // The same lifecycle in one call: create, start, wait, delete.
    let run_id = format!("{}-run", args.id);
    let (stdin, to_init) = pipe()?;
    let (from_init, stdout) = pipe()?;
    File::from(to_init).write_all(b"from run\n")?; // the pipe keeps it for the init
    let options = CreateOptions::new(&root, &run_id, &bundle)
        .stdin(stdin)
        .stderr(stdout.try_clone()?)
        .stdout(stdout);
    let code = berth::run(&options)?;
    println!("run: exit code {code}");
    for line in lines(from_init)? {
        println!("run output: {line}");
    }
    println!("left: {} container(s)", container::list(&root)?.len());
    Ok(())
}

/// Our ends of the init's stdio.
struct Pipes {
    to_init: OwnedFd,
    from_init: OwnedFd,
    errors_from_init: OwnedFd,
}

/// Everything after `create`: start, read, exec, wait, delete.
fn drive(container: Container, pipes: Pipes) -> Result<()> {
    let mut container = container;
    container.start()?;
    println!("started: status {}", container.status());
    let mut from_init = BufReader::new(File::from(pipes.from_init));
    let mut first = String::new();
    from_init.read_line(&mut first)?;
    println!("init stdout: {}", first.trim_end());

    // Exec the container's own process (user, env, capabilities, seccomp,
    // no_new_privs: as create recorded them) running other arguments, with
    // its stdio on pipes too.
    let (probe_out, stdout) = pipe()?;
    let (probe_err, stderr) = pipe()?;
    let probe = ExecOptions::for_container(&container, shell(PROBE))?
        .stdout(stdout)
        .stderr(stderr);
    let probe = berth::exec::exec(&container, &probe)?;
    // Its pidfd: this process's child alone, reaped here.
    println!("exec exited: code {}", probe.wait()?.code());
    for line in lines(probe_out)? {
        println!("exec stdout: {line}");
    }
    for line in lines(probe_err)? {
        println!("exec stderr: {line}");
    }

    // The init's pidfd polls as readable once it exits (an async engine
    // registers it with its reactor); it still runs, waiting for a line.
    println!("init running: {}", !readable(&container)?);
    let mut to_init = File::from(pipes.to_init);
    to_init.write_all(b"bye\n")?;
    drop(to_init);
    let status = container.wait()?;
    println!(
        "init exited: code {}, status {}",
        status.code(),
        container.status()
    );
    // End-of-file now: nothing else holds the pipes' other ends.
    for line in from_init.lines() {
        println!("init stdout: {}", line?);
    }
    for line in lines(pipes.errors_from_init)? {
        println!("init stderr: {line}");
    }

    for warning in container.delete(false)? {
        println!("warning: {warning}");
    }
    println!("deleted");
    Ok(())
}

/// Whether the init's pidfd is readable (the init exited), without waiting.
fn readable(container: &Container) -> Result<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(container.pidfd()?, PollFlags::POLLIN)];
    Ok(poll(&mut fds, PollTimeout::ZERO)? > 0)
}

/// A pipe, (read end, write end), both close-on-exec here.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// Every line until end-of-file, tabs as spaces (/proc's status has tabs).
fn lines(read: OwnedFd) -> Result<Vec<String>> {
    let lines: std::io::Result<Vec<String>> = BufReader::new(File::from(read)).lines().collect();
    Ok(lines?.into_iter().map(|l| l.replace('\t', " ")).collect())
}

fn shell(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(String::from).to_vec()
}

/// A bundle at `dir`: busybox as rootfs, runc's default config with the
/// init above, a hostname, and the seccomp profile.
fn make_bundle(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .map_err(|e| format!("copy /bin/busybox (a static busybox is needed): {e}"))?;
    for tool in ["sh", "grep", "mkdir", "hostname", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool))?;
    }
    let mut config = serde_json::to_value(berth::spec::default_spec(false))?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = shell(INIT).into();
    config["process"]["noNewPrivileges"] = true.into();
    config["hostname"] = "embed-example".into();
    config["linux"]["seccomp"] = serde_json::from_str(SECCOMP)?;
    std::fs::write(dir.join("config.json"), config.to_string())?;
    Ok(dir.to_path_buf())
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut work = None;
    let mut id = format!("embed-{}", std::process::id());
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name| args.next().ok_or(format!("{name} needs a value"));
        match arg.to_str() {
            Some("--work") => work = Some(PathBuf::from(value("--work")?)),
            Some("--id") => {
                id = value("--id")?
                    .into_string()
                    .map_err(|_| "--id must be UTF-8")?
            }
            _ => return Err(format!("unknown argument {}", arg.to_string_lossy())),
        }
    }
    let temporary = work.is_none();
    let work = work.unwrap_or_else(|| std::env::temp_dir().join(format!("berth-{id}")));
    Ok(Args {
        work,
        temporary,
        id,
    })
}
