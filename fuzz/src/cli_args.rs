//! Bytes as a command line (NUL-separated words, the first being argv[0]),
//! through what `berth` does with its arguments before it acts on them:
//! the global flags, the command's flags and arity, then the values read
//! later (signal names, `update`'s numbers, `--rootless`, `--log-format`),
//! and the usage and log texts of every rejection. Nothing may panic.

use crate::Outcome;
use berth_cli::args::{self, Command, LogFormat, Stage};
use berth_cli::log::{format_entry, Level};
use berth_cli::{signal, update};

/// One input; panics where `berth` would.
pub fn run(data: &[u8]) -> Outcome {
    // argv words cannot hold a NUL; main reads them lossily, as here.
    let argv: Vec<String> = data.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let prog = argv.first().cloned().unwrap_or_default();
    let rest = argv.get(1..).unwrap_or_default();
    let (global, stage) = match args::parse_global(rest) {
        Ok(parsed) => parsed,
        Err(e) => return check_rejection(&e, &prog, LogFormat::Text),
    };
    let command = match stage {
        Stage::Ready(command) => command,
        Stage::Subcommand(words) => match args::parse_command(&words) {
            Ok(command) => command,
            Err(e) => return check_rejection(&e, &prog, global.log_format),
        },
    };
    // What main does next with values it keeps unparsed until it needs them.
    let later = match command {
        Command::Help(topic) => {
            let _ = args::help_text(topic.as_deref());
            Ok(())
        }
        // runc reads --rootless only when it creates something.
        Command::Create(_) | Command::Run(_) => global.rootless.resolve().map(drop),
        Command::Kill { signal, .. } => signal::parse_signal(&signal).map(drop).map_err(|e| e.to_string()),
        // A --resources file would be read from the host: only stdin is fuzzed.
        Command::Update(update_args) if update_args.resources.as_deref().is_none_or(|r| r == "-") => {
            let stdin: &[u8] = b"{\"memory\": {\"limit\": 1048576}}";
            update::resources(&update_args, stdin).and_then(|_| update::refuse_intel_rdt(&update_args))
        }
        _ => Ok(()),
    };
    match later {
        Ok(()) => Outcome::Accepted,
        Err(message) => {
            assert!(!message.trim().is_empty(), "empty message for {data:?}");
            Outcome::Rejected(message)
        }
    }
}

/// Every rejection says something, and its usage text and log line can be made.
fn check_rejection(e: &args::ArgsError, prog: &str, format: LogFormat) -> Outcome {
    let message = e.message(prog);
    assert!(!message.trim().is_empty(), "empty message for {e:?}");
    let _ = e.stdout();
    let _ = e.exit_code();
    let _ = format_entry(format, Level::Error, &message, "2026-01-01T00:00:00Z");
    Outcome::Rejected(message)
}
