//! A container's whole lifecycle through the library alone: create, start,
//! inspect, wait for its exit (or kill it), delete.
//!
//! ```sh
//! cargo build --example lifecycle -p berth
//! sudo target/debug/examples/lifecycle /path/to/bundle /run/berth-example [--id ID] [--kill]
//! ```
//!
//! Prints one line per step. Exits 0 when every step worked (whatever the
//! container's own exit code), 1 on a failed step, 2 on bad arguments.

use berth::{container, Container, CreateOptions, Error, Status};
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    bundle: PathBuf,
    root: PathBuf,
    id: String,
    kill: bool,
}

const USAGE: &str = "usage: lifecycle BUNDLE STATE_ROOT [--id ID] [--kill]";

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut id = format!("lifecycle-{}", std::process::id());
    let mut kill = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--kill") => kill = true,
            Some("--id") => {
                let value = args.next().ok_or("--id needs a value")?;
                id = value.into_string().map_err(|_| "--id must be UTF-8")?;
            }
            Some(flag) if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [bundle, root] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| "need BUNDLE and STATE_ROOT".to_string())?;
    Ok(Args {
        bundle,
        root,
        id,
        kill,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("lifecycle: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lifecycle: {} failed: {error}", what_failed(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    // The init will be this process's child: signals queue for the wait below
    // instead of killing this process while the container lives on. Until
    // `_signals` is dropped, at the end of this function.
    let _signals = berth::foreground::prepare(false)?;

    println!("create: {} from {}", args.id, args.bundle.display());
    let options = CreateOptions::new(&args.root, &args.id, &args.bundle);
    let created = berth::create(&options)?;
    println!(
        "created: pid {}, status {}",
        created.pid(),
        created.status()
    );
    let result = drive(args, created);
    if result.is_err() {
        // Not left behind half-way; only the container this run made (a failed
        // create, say on an id in use, must not delete someone else's).
        if let Err(cleanup) = container::delete(&args.root, &args.id, true) {
            eprintln!("lifecycle: cleanup: {cleanup}");
        }
    }
    result
}

/// Everything after `create`.
fn drive(args: &Args, mut created: Container) -> Result<(), Error> {
    // A failing poststart hook fails start and stops the container.
    created.start()?;
    println!("started: status {}", created.status());
    let console = created.take_console();
    // A handle takes the container's lock only for each change it makes, so
    // another handle (or process) may act between its calls; this one is done.
    drop(created);

    // What another process sees: the handle loaded from the state root.
    let loaded = Container::load(&args.root, &args.id)?;
    let state = loaded.state();
    println!(
        "state: id {}, status {}, pid {}, bundle {}",
        state.id,
        state.status,
        state.pid,
        state.bundle.display()
    );
    let pids = loaded.pids()?;
    println!(
        "pids: {} process(es), init included: {}",
        pids.len(),
        pids.contains(&loaded.pid())
    );
    let listed = container::list(&args.root)?;
    println!(
        "list: {}",
        listed
            .iter()
            .map(|s| format!("{} {}", s.id, s.status))
            .collect::<Vec<_>>()
            .join(", ")
    );

    if args.kill {
        println!("kill: SIGKILL");
        match loaded.kill(berth::Signal::KILL, false) {
            // It may have exited on its own already.
            Ok(()) | Err(Error::NotRunning) => {}
            Err(e) => return Err(e),
        }
    }
    println!("wait: for pid {}", loaded.pid());
    let code = berth::foreground::forward_until_exit(loaded.pid(), console)?;
    println!("exited: code {code}, status {}", loaded.status());
    if loaded.status() != Status::Stopped {
        return Err(Error::Init(berth::ChildError::new(
            berth::ChildStep::Other,
            format!(
                "status after the init's exit is {}, not stopped",
                loaded.status()
            ),
        )));
    }

    for warning in loaded.delete(false)? {
        println!("warning: {warning}");
    }
    let left = container::list(&args.root)?;
    println!(
        "deleted: {} container(s) left in {}",
        left.len(),
        args.root.display()
    );
    Ok(())
}

/// The step, named after the error's concern.
fn what_failed(error: &Error) -> &'static str {
    match error {
        Error::Spec(_) | Error::Bundle { .. } => "reading the bundle",
        Error::State(_) => "the state store",
        Error::Cgroup(_) | Error::Resource(_) | Error::Stats(_) => "the cgroup",
        Error::Namespace(_) | Error::Rootfs(_) | Error::Init(_) | Error::Sync(_) => {
            "setting up the container"
        }
        Error::StartStopped | Error::StartRunning | Error::StartInState(_) | Error::Barrier(_) => {
            "start"
        }
        Error::Wait(_) => "waiting",
        _ => "a step",
    }
}
