//! runc's command line, read as runc 1.1 reads it: urfave/cli v1 on top of Go's
//! `flag` package. That means `-flag` and `--flag` alike, `=` or a separate
//! value, booleans only as `--flag` or `--flag=BOOL`, flags after the container
//! id moved in front of it (except for `exec` and `ps`), and runc's error texts.

mod commands;
mod criu;
mod goflag;

pub use commands::help_text;
pub use criu::{CheckpointArgs, CriuArgs, RestoreArgs};

use crate::log::go_quote;
use commands::{find_command, GLOBAL_FLAGS, HELP_FLAG, VERSION_FLAG};
use goflag::{go_parse_bool, normalize, parse_flags, reorder_args, Flag, Values};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--rootless`: runc validates it only in commands that use it, so a bad
/// value is kept and reported by [`Rootless::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rootless {
    Auto,
    True,
    False,
    Invalid(String),
}

impl Rootless {
    fn parse(s: &str) -> Rootless {
        if s.is_empty() || s.eq_ignore_ascii_case("auto") {
            return Rootless::Auto;
        }
        match go_parse_bool(s) {
            Some(true) => Rootless::True,
            Some(false) => Rootless::False,
            None => Rootless::Invalid(s.to_string()),
        }
    }

    /// `None` means detect; the error is runc's text for a bad value.
    pub fn resolve(&self) -> Result<Option<bool>, String> {
        match self {
            Rootless::Auto => Ok(None),
            Rootless::True => Ok(Some(true)),
            Rootless::False => Ok(Some(false)),
            Rootless::Invalid(s) => Err(format!(
                "strconv.ParseBool: parsing {}: invalid syntax",
                go_quote(s)
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOpts {
    /// As given; runc makes it absolute (so `--root ""` is the cwd). None: the default root.
    pub root: Option<PathBuf>,
    /// None (or `--log ""`): log to stderr.
    pub log: Option<PathBuf>,
    pub log_format: LogFormat,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub rootless: Rootless,
    /// None: "criu" from PATH.
    pub criu: Option<String>,
}

impl Default for GlobalOpts {
    fn default() -> Self {
        GlobalOpts {
            root: None,
            log: None,
            log_format: LogFormat::Text,
            debug: false,
            systemd_cgroup: false,
            rootless: Rootless::Auto,
            criu: None,
        }
    }
}

/// `--format` of list and ps. runc rejects other values only when it comes to
/// print (after loading the containers, never with `list -q`), so they are kept:
/// the caller then fails with [`ListFormat::INVALID`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Other(String),
}

impl ListFormat {
    /// runc's error text for [`ListFormat::Other`].
    pub const INVALID: &'static str = "invalid format option";

    fn parse(s: &str) -> ListFormat {
        match s {
            "table" => ListFormat::Table,
            "json" => ListFormat::Json,
            other => ListFormat::Other(other.to_string()),
        }
    }
}

/// Flags of `create`; empty strings count as absent, as in runc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateArgs {
    pub id: String,
    /// None: the current directory.
    pub bundle: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Negative values count as 0, as runc's loop does; huge ones saturate.
    pub preserve_fds: u32,
    /// containerd passes `--detach` to create; runc 1.1 has no such flag. Ignored.
    pub detach: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunArgs {
    pub create: CreateArgs,
    pub keep: bool,
    pub no_subreaper: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecArgs {
    pub id: String,
    /// Everything after the id, verbatim (flags there are the program's).
    pub args: Vec<String>,
    pub process: Option<PathBuf>,
    /// Some only when given: runc overrides process.terminal only if set.
    pub tty: Option<bool>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    /// Parsed as urfave's Int64Slice; the sign is checked at run time, as runc does.
    pub additional_gids: Vec<i64>,
    pub cap: Vec<String>,
    /// Some only when given, as with tty.
    pub no_new_privs: Option<bool>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    pub cgroup: Vec<String>,
}

/// `update`: each field is Some only when its flag was given with a non-empty value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateArgs {
    pub id: String,
    /// A file, or "-" for stdin; when set runc ignores every other flag.
    pub resources: Option<String>,
    pub blkio_weight: Option<i64>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_burst: Option<String>,
    pub cpu_share: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpu_idle: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub pids_limit: Option<i64>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create(CreateArgs),
    Start {
        id: String,
    },
    Run(RunArgs),
    State {
        id: String,
    },
    List {
        format: ListFormat,
        quiet: bool,
    },
    /// `signal` is unparsed: runc looks the container up first (see signal::parse_signal).
    Kill {
        id: String,
        signal: String,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    Spec {
        bundle: Option<PathBuf>,
        rootless: bool,
    },
    Features,
    Version,
    /// Print [`help_text`] for this topic (None: the global help) and exit 0.
    Help(Option<String>),
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Ps {
        id: String,
        format: ListFormat,
        ps_args: Vec<String>,
    },
    Exec(ExecArgs),
    Update(UpdateArgs),
    /// `interval` is a Go time.Duration in nanoseconds; runc rejects <= 0 at run time.
    Events {
        id: String,
        stats: bool,
        interval: i64,
    },
    Checkpoint(CheckpointArgs),
    Restore(RestoreArgs),
}

/// What parsing the global flags leaves to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // built once per process; boxing would only burden callers
pub enum Stage {
    /// Help or version: no logger needed.
    Ready(Command),
    /// The command and its arguments, for [`parse_command`] once the logger is set up,
    /// since runc logs command-line errors to `--log`.
    Subcommand(Vec<String>),
}

/// A command-line error as urfave reports it: usage on stdout, the message
/// through the logger, then exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    kind: ErrorKind,
    /// What precedes the help text on stdout, and whose help (None: global).
    usage: Option<(String, Option<&'static str>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    Text(String),
    Arity {
        command: &'static str,
        rule: &'static str,
        n: usize,
    },
    NoHelpTopic(String),
}

impl ArgsError {
    /// The logged message; `prog` is `argv[0]` verbatim, which runc puts in arity errors.
    pub fn message(&self, prog: &str) -> String {
        match &self.kind {
            ErrorKind::Text(t) => t.clone(),
            ErrorKind::Arity { command, rule, n } => {
                format!("{prog}: \"{command}\" requires {rule} {n} argument(s)")
            }
            ErrorKind::NoHelpTopic(name) => format!("No help topic for '{name}'\n"),
        }
    }

    /// What runc prints on stdout before failing ("" for nothing).
    pub fn stdout(&self) -> String {
        match &self.usage {
            Some((prefix, topic)) => format!("{prefix}{}", help_text(*topic).unwrap_or_default()),
            None => String::new(),
        }
    }

    /// urfave exits 3 for an unknown command, runc 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::NoHelpTopic(_) => 3,
            _ => 1,
        }
    }

    fn plain(text: String) -> ArgsError {
        ArgsError {
            kind: ErrorKind::Text(text),
            usage: None,
        }
    }
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("berth"))
    }
}

impl std::error::Error for ArgsError {}

/// Both stages at once, for callers that log everything to stderr.
#[cfg(test)]
pub fn parse(args: &[String]) -> Result<(GlobalOpts, Command), ArgsError> {
    let (global, stage) = parse_global(args)?;
    match stage {
        Stage::Ready(cmd) => Ok((global, cmd)),
        Stage::Subcommand(rest) => Ok((global, parse_command(&rest)?)),
    }
}

/// Global flags, then help/version, then `--log-format`, in urfave's order.
pub fn parse_global(args: &[String]) -> Result<(GlobalOpts, Stage), ArgsError> {
    let flags: Vec<&Flag> = GLOBAL_FLAGS
        .iter()
        .chain([&HELP_FLAG, &VERSION_FLAG])
        .collect();
    let (vals, rest, err) = parse_flags(&flags, args);
    // urfave checks the two-forms rule before the parse error, and prints it without "Incorrect Usage".
    if let Some(msg) = normalize(&flags, &vals) {
        return Err(ArgsError {
            usage: Some((format!("{msg}\n"), None)),
            kind: ErrorKind::Text(msg),
        });
    }
    if let Some(msg) = err {
        let prefix = format!("Incorrect Usage. {msg}\n\n");
        return Err(ArgsError {
            usage: Some((prefix, None)),
            kind: ErrorKind::Text(msg),
        });
    }
    let mut global = GlobalOpts {
        root: vals.raw("root").map(PathBuf::from),
        log: vals.string("log").map(PathBuf::from),
        debug: vals.flag("debug"),
        systemd_cgroup: vals.flag("systemd-cgroup"),
        rootless: Rootless::parse(vals.raw("rootless").unwrap_or("")),
        criu: vals.string("criu"),
        ..GlobalOpts::default()
    };
    if vals.flag("help") {
        return Ok((global, Stage::Ready(Command::Help(None))));
    }
    if vals.flag("version") {
        return Ok((global, Stage::Ready(Command::Version)));
    }
    global.log_format = match vals.raw("log-format").unwrap_or("") {
        "" | "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => return Err(ArgsError::plain(format!("invalid log-format: {other}"))),
    };
    if rest.is_empty() {
        return Ok((global, Stage::Ready(Command::Help(None))));
    }
    Ok((global, Stage::Subcommand(rest)))
}

/// The command name and everything after it.
pub fn parse_command(args: &[String]) -> Result<Command, ArgsError> {
    let Some((name, tail)) = args.split_first() else {
        return Ok(Command::Help(None));
    };
    let spec = find_command(name).ok_or_else(|| ArgsError {
        kind: ErrorKind::NoHelpTopic(name.clone()),
        usage: None,
    })?;
    let flags: Vec<&Flag> = spec.flags.iter().chain([&HELP_FLAG]).collect();
    let tail = if spec.reorder {
        reorder_args(&flags, tail)
    } else {
        tail.to_vec()
    };
    let (v, pos, err) = parse_flags(&flags, &tail);
    if let Some(msg) = err.or_else(|| normalize(&flags, &v)) {
        let prefix = format!("Incorrect Usage: {msg}\n\n");
        return Err(ArgsError {
            usage: Some((prefix, Some(spec.name))),
            kind: ErrorKind::Text(msg),
        });
    }
    if v.flag("help") {
        return Ok(Command::Help(Some(spec.name.to_string())));
    }
    let arity = |rule: &'static str, n: usize, ok: bool| {
        if ok {
            return Ok(());
        }
        let usage = Some(("Incorrect Usage.\n\n".to_string(), Some(spec.name)));
        Err(ArgsError {
            kind: ErrorKind::Arity {
                command: spec.name,
                rule,
                n,
            },
            usage,
        })
    };
    let exact = |n: usize| arity("exactly", n, pos.len() == n);
    let min = |n: usize| arity("a minimum of", n, pos.len() >= n);
    let id = || pos.first().cloned().unwrap_or_default();
    let format = |v: &Values| ListFormat::parse(v.raw("format").unwrap_or("table"));
    Ok(match spec.name {
        "help" => match pos.first() {
            None => Command::Help(None),
            Some(topic) => match find_command(topic) {
                Some(s) => Command::Help(Some(s.name.to_string())),
                None => {
                    return Err(ArgsError {
                        kind: ErrorKind::NoHelpTopic(topic.clone()),
                        usage: None,
                    })
                }
            },
        },
        "create" => {
            exact(1)?;
            Command::Create(create_args(&v, id()))
        }
        "run" => {
            exact(1)?;
            let create = create_args(&v, id());
            Command::Run(RunArgs {
                create,
                keep: v.flag("keep"),
                no_subreaper: v.flag("no-subreaper"),
            })
        }
        "start" | "state" | "pause" | "resume" => {
            exact(1)?;
            let id = id();
            match spec.name {
                "start" => Command::Start { id },
                "state" => Command::State { id },
                "pause" => Command::Pause { id },
                _ => Command::Resume { id },
            }
        }
        "list" => {
            exact(0)?;
            Command::List {
                format: format(&v),
                quiet: v.flag("quiet"),
            }
        }
        "kill" => {
            min(1)?;
            arity("a maximum of", 2, pos.len() <= 2)?;
            // runc: a missing or empty signal means SIGTERM.
            let signal = pos
                .get(1)
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| "SIGTERM".into());
            Command::Kill {
                id: id(),
                signal,
                all: v.flag("all"),
            }
        }
        "delete" => {
            exact(1)?;
            Command::Delete {
                id: id(),
                force: v.flag("force"),
            }
        }
        "spec" => {
            exact(0)?;
            Command::Spec {
                bundle: v.string("bundle").map(PathBuf::from),
                rootless: v.flag("rootless"),
            }
        }
        "features" => {
            exact(0)?;
            Command::Features
        }
        "ps" => {
            min(1)?;
            Command::Ps {
                id: id(),
                format: format(&v),
                ps_args: pos[1..].to_vec(),
            }
        }
        "exec" => {
            min(1)?;
            Command::Exec(exec_args(&v, id(), pos[1..].to_vec()))
        }
        "update" => {
            exact(1)?;
            Command::Update(update_args(&v, id()))
        }
        "events" => {
            exact(1)?;
            let interval = v.dur("interval").unwrap_or(5_000_000_000);
            Command::Events {
                id: id(),
                stats: v.flag("stats"),
                interval,
            }
        }
        "checkpoint" => {
            exact(1)?;
            Command::Checkpoint(criu::checkpoint_args(&v, id()))
        }
        _ => {
            exact(1)?;
            Command::Restore(criu::restore_args(&v, id()))
        }
    })
}

fn create_args(v: &Values, id: String) -> CreateArgs {
    CreateArgs {
        id,
        bundle: v.string("bundle").map(PathBuf::from),
        console_socket: v.string("console-socket").map(PathBuf::from),
        pid_file: v.string("pid-file").map(PathBuf::from),
        pidfd_socket: v.string("pidfd-socket").map(PathBuf::from),
        no_pivot: v.flag("no-pivot"),
        no_new_keyring: v.flag("no-new-keyring"),
        preserve_fds: v.fds(),
        detach: v.flag("detach"),
    }
}

fn exec_args(v: &Values, id: String, args: Vec<String>) -> ExecArgs {
    ExecArgs {
        id,
        args,
        process: v.string("process").map(PathBuf::from),
        tty: v.opt_flag("tty"),
        console_socket: v.string("console-socket").map(PathBuf::from),
        pidfd_socket: v.string("pidfd-socket").map(PathBuf::from),
        detach: v.flag("detach"),
        pid_file: v.string("pid-file").map(PathBuf::from),
        cwd: v.string("cwd"),
        env: v.list("env"),
        user: v.string("user"),
        additional_gids: v
            .list("additional-gids")
            .iter()
            .filter_map(|g| g.parse().ok())
            .collect(),
        cap: v.list("cap"),
        no_new_privs: v.opt_flag("no-new-privs"),
        apparmor: v.string("apparmor"),
        process_label: v.string("process-label"),
        preserve_fds: v.fds(),
        ignore_paused: v.flag("ignore-paused"),
        cgroup: v.list("cgroup"),
    }
}

fn update_args(v: &Values, id: String) -> UpdateArgs {
    UpdateArgs {
        id,
        resources: v.string("resources"),
        blkio_weight: v.int("blkio-weight"),
        cpu_period: v.string("cpu-period"),
        cpu_quota: v.string("cpu-quota"),
        cpu_burst: v.string("cpu-burst"),
        cpu_share: v.string("cpu-share"),
        cpu_rt_period: v.string("cpu-rt-period"),
        cpu_rt_runtime: v.string("cpu-rt-runtime"),
        cpu_idle: v.string("cpu-idle"),
        cpuset_cpus: v.string("cpuset-cpus"),
        cpuset_mems: v.string("cpuset-mems"),
        memory: v.string("memory"),
        memory_reservation: v.string("memory-reservation"),
        memory_swap: v.string("memory-swap"),
        pids_limit: v.int("pids-limit"),
        l3_cache_schema: v.string("l3-cache-schema"),
        mem_bw_schema: v.string("mem-bw-schema"),
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
