//! runc's command line, read as runc 1.1 reads it: urfave/cli v1 on top of Go's
//! `flag` package. That means `-flag` and `--flag` alike, `=` or a separate
//! value, booleans only as `--flag` or `--flag=BOOL`, flags after the container
//! id moved in front of it (except for `exec` and `ps`), and runc's error texts.

mod commands;
mod goflag;

pub use commands::help_text;

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
            Rootless::Invalid(s) => Err(format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(s))),
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
    pub additional_gids: Vec<String>,
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
    Start { id: String },
    Run(RunArgs),
    State { id: String },
    List { format: ListFormat, quiet: bool },
    /// `signal` is unparsed: runc looks the container up first (see signal::parse_signal).
    Kill { id: String, signal: String, all: bool },
    Delete { id: String, force: bool },
    Spec { bundle: Option<PathBuf>, rootless: bool },
    Features,
    Version,
    /// Print [`help_text`] for this topic (None: the global help) and exit 0.
    Help(Option<String>),
    Pause { id: String },
    Resume { id: String },
    Ps { id: String, format: ListFormat, ps_args: Vec<String> },
    Exec(ExecArgs),
    Update(UpdateArgs),
    /// `interval` is a Go time.Duration in nanoseconds; runc rejects <= 0 at run time.
    Events { id: String, stats: bool, interval: i64 },
    /// checkpoint / restore: flags parsed, not implemented.
    Unsupported { command: &'static str, id: String },
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
    Arity { command: &'static str, rule: &'static str, n: usize },
    NoHelpTopic(String),
}

impl ArgsError {
    /// The logged message; `prog` is argv[0] verbatim, which runc puts in arity errors.
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
        ArgsError { kind: ErrorKind::Text(text), usage: None }
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
    let flags: Vec<&Flag> = GLOBAL_FLAGS.iter().chain([&HELP_FLAG, &VERSION_FLAG]).collect();
    let (vals, rest, err) = parse_flags(&flags, args);
    // urfave checks the two-forms rule before the parse error, and prints it without "Incorrect Usage".
    if let Some(msg) = normalize(&flags, &vals) {
        return Err(ArgsError { usage: Some((format!("{msg}\n"), None)), kind: ErrorKind::Text(msg) });
    }
    if let Some(msg) = err {
        let prefix = format!("Incorrect Usage. {msg}\n\n");
        return Err(ArgsError { usage: Some((prefix, None)), kind: ErrorKind::Text(msg) });
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
    let tail = if spec.reorder { reorder_args(&flags, tail) } else { tail.to_vec() };
    let (v, pos, err) = parse_flags(&flags, &tail);
    if let Some(msg) = err.or_else(|| normalize(&flags, &v)) {
        let prefix = format!("Incorrect Usage: {msg}\n\n");
        return Err(ArgsError { usage: Some((prefix, Some(spec.name))), kind: ErrorKind::Text(msg) });
    }
    if v.flag("help") {
        return Ok(Command::Help(Some(spec.name.to_string())));
    }
    let arity = |rule: &'static str, n: usize, ok: bool| {
        if ok {
            return Ok(());
        }
        let usage = Some(("Incorrect Usage.\n\n".to_string(), Some(spec.name)));
        Err(ArgsError { kind: ErrorKind::Arity { command: spec.name, rule, n }, usage })
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
                None => return Err(ArgsError { kind: ErrorKind::NoHelpTopic(topic.clone()), usage: None }),
            },
        },
        "create" => {
            exact(1)?;
            Command::Create(create_args(&v, id()))
        }
        "run" => {
            exact(1)?;
            let create = create_args(&v, id());
            Command::Run(RunArgs { create, keep: v.flag("keep"), no_subreaper: v.flag("no-subreaper") })
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
            Command::List { format: format(&v), quiet: v.flag("quiet") }
        }
        "kill" => {
            min(1)?;
            arity("a maximum of", 2, pos.len() <= 2)?;
            // runc: a missing or empty signal means SIGTERM.
            let signal = pos.get(1).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| "SIGTERM".into());
            Command::Kill { id: id(), signal, all: v.flag("all") }
        }
        "delete" => {
            exact(1)?;
            Command::Delete { id: id(), force: v.flag("force") }
        }
        "spec" => {
            exact(0)?;
            Command::Spec { bundle: v.string("bundle").map(PathBuf::from), rootless: v.flag("rootless") }
        }
        "features" => {
            exact(0)?;
            Command::Features
        }
        "ps" => {
            min(1)?;
            Command::Ps { id: id(), format: format(&v), ps_args: pos[1..].to_vec() }
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
            Command::Events { id: id(), stats: v.flag("stats"), interval }
        }
        other => {
            exact(1)?;
            Command::Unsupported { command: other, id: id() }
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
        additional_gids: v.list("additional-gids"),
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
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }
    fn ok(s: &str) -> (GlobalOpts, Command) {
        parse(&argv(s)).unwrap_or_else(|e| panic!("{s}: {}", e.message("runc")))
    }
    fn cmd(s: &str) -> Command {
        ok(s).1
    }
    fn err(s: &str) -> ArgsError {
        match parse(&argv(s)) {
            Err(e) => e,
            Ok(r) => panic!("{s}: parsed as {r:?}"),
        }
    }
    fn msg(s: &str) -> String {
        err(s).message("runc")
    }
    fn del(id: &str, force: bool) -> Command {
        Command::Delete { id: id.into(), force }
    }
    fn kill(id: &str, signal: &str, all: bool) -> Command {
        Command::Kill { id: id.into(), signal: signal.into(), all }
    }

    #[test]
    fn global_flags_in_every_spelling() {
        for s in ["--root /r", "--root=/r", "-root /r", "-root=/r"] {
            assert_eq!(ok(&format!("{s} list")).0.root, Some(PathBuf::from("/r")), "{s}");
        }
        let (g, _) = ok("--debug --log /l --log-format json --systemd-cgroup --criu /c --rootless true list");
        assert!(g.debug && g.systemd_cgroup);
        assert_eq!((g.log, g.log_format, g.criu), (Some("/l".into()), LogFormat::Json, Some("/c".into())));
        assert_eq!(g.rootless, Rootless::True);
        let (g, _) = ok("-debug=false --log= -log-format=text -systemd-cgroup=1 --rootless=AUTO list");
        assert!(!g.debug && g.systemd_cgroup && g.log.is_none());
        assert_eq!((g.log_format, g.rootless), (LogFormat::Text, Rootless::Auto));
        assert_eq!(ok("--rootless F list").0.rootless, Rootless::False);
        let g = ok("--rootless maybe list").0;
        assert_eq!(g.rootless.resolve(), Err("strconv.ParseBool: parsing \"maybe\": invalid syntax".into()));
        assert_eq!(ok("list").0, GlobalOpts::default());
    }

    #[test]
    fn help_and_version() {
        for s in ["", "--help", "-h", "-help", "--h", "--help=1", "help", "h", "--log-format xml -h"] {
            assert_eq!(cmd(s), Command::Help(None), "{s}");
        }
        for s in ["help delete", "h delete", "help delete extra", "delete -h", "delete c1 -h", "delete --help a b"] {
            assert_eq!(cmd(s), Command::Help(Some("delete".into())), "{s}");
        }
        assert_eq!(cmd("help h"), Command::Help(Some("help".into())));
        for s in ["--version", "-v", "-version", "--log-format xml --version", "-v list"] {
            assert_eq!(cmd(s), Command::Version, "{s}");
        }
        assert_eq!(cmd("delete --help=false c1"), del("c1", false));
        // exec and ps keep words after the id for the program.
        assert!(matches!(cmd("exec c1 -h"), Command::Exec(e) if e.args == ["-h"]));
    }

    #[test]
    fn global_errors() {
        let e = err("-x");
        assert_eq!((e.message("runc"), e.exit_code()), ("flag provided but not defined: -x".into(), 1));
        assert!(e.stdout().starts_with("Incorrect Usage. flag provided but not defined: -x\n\nNAME:\n   berth - "));
        assert_eq!(msg("--xyz list"), "flag provided but not defined: -xyz");
        assert_eq!(msg("list --root /x"), "flag provided but not defined: -root");
        assert_eq!(msg("--root"), "flag needs an argument: -root");
        assert_eq!(msg("--debug=maybe"), "invalid boolean value \"maybe\" for -debug: parse error");
        let e = err("-v --version");
        assert_eq!(e.message("runc"), "Cannot use two forms of the same flag: v version");
        assert!(e.stdout().starts_with("Cannot use two forms of the same flag: v version\nNAME:"));
        assert_eq!(msg("-h --help -x"), "Cannot use two forms of the same flag: h help");
        for (s, m) in [("--log-format xml", "xml"), ("--log-format JSON list", "JSON"), ("--log-format xml bogus", "xml")] {
            let e = err(s);
            assert_eq!((e.message("runc"), e.stdout()), (format!("invalid log-format: {m}"), String::new()));
        }
        assert_eq!(ok("--log-format= list").0.log_format, LogFormat::Text);
        for s in ["bogus", "help bogus", "bogus --help"] {
            let e = err(s);
            assert_eq!((e.message("x"), e.exit_code(), e.stdout()), ("No help topic for 'bogus'\n".into(), 3, String::new()));
        }
    }

    #[test]
    fn command_flag_errors() {
        let e = err("delete -x c1");
        assert_eq!(e.message("runc"), "flag provided but not defined: -x");
        assert!(e.stdout().starts_with("Incorrect Usage: flag provided but not defined: -x\n\nNAME:\n   berth delete - "));
        assert_eq!(msg("delete --force=maybe c1"), "invalid boolean value \"maybe\" for -force: parse error");
        assert_eq!(msg("delete -f= c1"), "invalid boolean value \"\" for -f: parse error");
        assert_eq!(msg("delete ---f c1"), "bad flag syntax: ---f");
        assert_eq!(msg("delete -=x c1"), "bad flag syntax: -=x");
        assert_eq!(msg("delete -f --force c1"), "Cannot use two forms of the same flag: f force");
        assert_eq!(msg("delete --force -f c1"), "Cannot use two forms of the same flag: f force");
        assert_eq!(msg("list -f json --format table"), "Cannot use two forms of the same flag: f format");
        assert_eq!(msg("exec -e A=1 --env B=2 c1 ls"), "Cannot use two forms of the same flag: e env");
        assert!(err("delete -f --force c1").stdout().starts_with("Incorrect Usage: Cannot use two forms"));
        assert_eq!(msg("list --format"), "flag needs an argument: -format");
        assert_eq!(msg("create --preserve-fds x c1"), "invalid value \"x\" for flag -preserve-fds: parse error");
        assert_eq!(msg("create --preserve-fds 99999999999999999999 c1"), "invalid value \"99999999999999999999\" for flag -preserve-fds: value out of range");
        assert_eq!(msg("events --interval 5 c1"), "invalid value \"5\" for flag -interval: parse error");
        assert_eq!(msg("update --blkio-weight 1.5 c1"), "invalid value \"1.5\" for flag -blkio-weight: parse error");
        assert_eq!(msg("help -x"), "flag provided but not defined: -x");
        assert_eq!(msg("create -df c1"), "flag provided but not defined: -df");
        assert_eq!(cmd("list --format yaml"), Command::List { format: ListFormat::Other("yaml".into()), quiet: false });
        assert_eq!(cmd("ps -f= c1"), Command::Ps { id: "c1".into(), format: ListFormat::Other(String::new()), ps_args: vec![] });
    }

    #[test]
    fn argument_count_errors() {
        let cases = [
            ("delete", "\"delete\" requires exactly 1 argument(s)"),
            ("delete a b", "\"delete\" requires exactly 1 argument(s)"),
            ("delete c1 -x", "\"delete\" requires exactly 1 argument(s)"),
            ("delete c1 -- -f", "\"delete\" requires exactly 1 argument(s)"),
            ("state c1 -x", "\"state\" requires exactly 1 argument(s)"),
            ("start", "\"start\" requires exactly 1 argument(s)"),
            ("create", "\"create\" requires exactly 1 argument(s)"),
            ("run a b", "\"run\" requires exactly 1 argument(s)"),
            ("pause", "\"pause\" requires exactly 1 argument(s)"),
            ("resume a b", "\"resume\" requires exactly 1 argument(s)"),
            ("events c1 -x", "\"events\" requires exactly 1 argument(s)"),
            ("update c1 -r", "\"update\" requires exactly 1 argument(s)"),
            ("list extra", "\"list\" requires exactly 0 argument(s)"),
            ("spec a", "\"spec\" requires exactly 0 argument(s)"),
            ("features a b", "\"features\" requires exactly 0 argument(s)"),
            ("checkpoint", "\"checkpoint\" requires exactly 1 argument(s)"),
            ("kill", "\"kill\" requires a minimum of 1 argument(s)"),
            ("kill a b c", "\"kill\" requires a maximum of 2 argument(s)"),
            ("exec", "\"exec\" requires a minimum of 1 argument(s)"),
            ("ps", "\"ps\" requires a minimum of 1 argument(s)"),
        ];
        for (s, m) in cases {
            let e = err(s);
            assert_eq!(e.message("/usr/sbin/runc"), format!("/usr/sbin/runc: {m}"), "{s}");
            let name = s.split(' ').next().unwrap_or_default();
            assert!(e.stdout().starts_with(&format!("Incorrect Usage.\n\nNAME:\n   berth {name} - ")), "{s}");
        }
        assert_eq!(err("delete").to_string(), "berth: \"delete\" requires exactly 1 argument(s)");
    }

    #[test]
    fn flags_after_the_id_are_reordered() {
        for s in ["delete -f c1", "delete c1 -f", "delete c1 --force", "delete -force=true c1", "delete c1 -f -f"] {
            assert_eq!(cmd(s), del("c1", true), "{s}");
        }
        assert_eq!(cmd("delete --force=false c1"), del("c1", false));
        assert_eq!(cmd("delete -- c1"), del("c1", false));
        assert_eq!(cmd("delete -f -- -f"), del("-f", true));
        assert_eq!(cmd("kill c1"), kill("c1", "SIGTERM", false));
        assert_eq!(cmd("kill --all c1 9"), kill("c1", "9", true));
        assert_eq!(cmd("kill c1 KILL --all"), kill("c1", "KILL", true));
        assert_eq!(cmd("kill -a -- c1 0"), kill("c1", "0", true));
        // urfave carries the word after a boolean flag along with it, as runc does.
        assert_eq!(cmd("kill c1 --all KILL"), kill("KILL", "c1", true));
        assert_eq!(cmd("kill c1 -a -- 0"), kill("c1", "0", true));
        assert_eq!(cmd("kill zz -- KILL"), kill("zz", "KILL", false));
        assert_eq!(msg("kill c1 -a -9"), "flag provided but not defined: -9");
        let empty = parse(&["kill".to_string(), "c1".to_string(), String::new()]).map(|r| r.1);
        assert_eq!(empty, Ok(kill("c1", "SIGTERM", false)));
        assert_eq!(cmd("events c1 --stats"), Command::Events { id: "c1".into(), stats: true, interval: 5_000_000_000 });
        assert_eq!(cmd("list -q --format=json"), Command::List { format: ListFormat::Json, quiet: true });
    }

    #[test]
    fn create_and_run() {
        let c = match cmd("create -b /b --console-socket /s -pid-file=/p --pidfd-socket /fd --no-pivot --no-new-keyring --preserve-fds 3 -d c1") {
            Command::Create(c) => c,
            other => panic!("{other:?}"),
        };
        let expected = CreateArgs {
            id: "c1".into(), bundle: Some("/b".into()), console_socket: Some("/s".into()), pid_file: Some("/p".into()),
            pidfd_socket: Some("/fd".into()), no_pivot: true, no_new_keyring: true, preserve_fds: 3, detach: true,
        };
        assert_eq!(c, expected);
        for s in ["create --bundle /b c1", "create --bundle=/b c1", "create -bundle /b c1", "create -b=/b c1", "create c1 -b /b"] {
            assert_eq!(cmd(s), Command::Create(CreateArgs { id: "c1".into(), bundle: Some("/b".into()), ..Default::default() }), "{s}");
        }
        assert_eq!(cmd("create -b= c1"), Command::Create(CreateArgs { id: "c1".into(), ..Default::default() }));
        for (v, n) in [("0x10", 16), ("010", 8), ("1_0", 10), ("-1", 0), ("99999999999", u32::MAX)] {
            assert!(matches!(cmd(&format!("create --preserve-fds {v} c1")), Command::Create(c) if c.preserve_fds == n), "{v}");
        }
        let r = match cmd("run -d --keep -no-subreaper --no-pivot -b /b c1") {
            Command::Run(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(r.keep && r.no_subreaper && r.create.detach && r.create.no_pivot);
        assert_eq!((r.create.id.as_str(), r.create.bundle), ("c1", Some("/b".into())));
        assert_eq!(cmd("run c1"), Command::Run(RunArgs { create: CreateArgs { id: "c1".into(), ..Default::default() }, ..Default::default() }));
    }

    #[test]
    fn exec_keeps_everything_after_the_id() {
        let e = match cmd("exec -t -e A=1 -e B=2 --cwd /w -u 1:2 -g 5 -g 6 -c CAP_A -c CAP_B --no-new-privs -p /p.json --console-socket /s --pidfd-socket /fd -d --pid-file /pid --apparmor aa --process-label l --preserve-fds 2 --ignore-paused --cgroup a:b c1 ls -l --env X -- y") {
            Command::Exec(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.args, ["ls", "-l", "--env", "X", "--", "y"]);
        assert_eq!((e.tty, e.no_new_privs, e.detach, e.ignore_paused, e.preserve_fds), (Some(true), Some(true), true, true, 2));
        assert_eq!((e.env, e.additional_gids, e.cap, e.cgroup), (vec!["A=1".to_string(), "B=2".into()], vec!["5".to_string(), "6".into()], vec!["CAP_A".to_string(), "CAP_B".into()], vec!["a:b".to_string()]));
        assert_eq!((e.cwd, e.user, e.apparmor, e.process_label), (Some("/w".into()), Some("1:2".into()), Some("aa".into()), Some("l".into())));
        assert_eq!((e.process, e.console_socket, e.pidfd_socket, e.pid_file), (Some("/p.json".into()), Some("/s".into()), Some("/fd".into()), Some("/pid".into())));
        let e = match cmd("exec --tty=false --env=A=1 -env B=2 c1 -t sh") {
            Command::Exec(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!((e.tty, e.no_new_privs, e.env, e.args), (Some(false), None, vec!["A=1".to_string(), "B=2".into()], vec!["-t".to_string(), "sh".into()]));
        assert!(matches!(cmd("exec -- c1 ls"), Command::Exec(e) if e.id == "c1" && e.args == ["ls"]));
        assert!(matches!(cmd("exec c1"), Command::Exec(e) if e.args.is_empty()));
    }

    #[test]
    fn ps_update_spec_events_and_the_rest() {
        let ps = |format, args: &[&str]| Command::Ps { id: "c1".into(), format, ps_args: args.iter().map(|s| s.to_string()).collect() };
        assert_eq!(cmd("ps -f json c1"), ps(ListFormat::Json, &[]));
        assert_eq!(cmd("ps c1 -f json"), ps(ListFormat::Table, &["-f", "json"]));
        assert_eq!(cmd("ps --format=table c1 -o pid"), ps(ListFormat::Table, &["-o", "pid"]));
        assert_eq!(msg("ps -x c1"), "flag provided but not defined: -x");
        let u = match cmd("update -r - --memory 1000 --blkio-weight 500 --pids-limit=-1 --cpuset-cpus= c1") {
            Command::Update(u) => u,
            other => panic!("{other:?}"),
        };
        assert_eq!((u.resources, u.memory, u.blkio_weight, u.pids_limit, u.cpuset_cpus), (Some("-".into()), Some("1000".into()), Some(500), Some(-1), None));
        assert_eq!(cmd("spec -b /x --rootless"), Command::Spec { bundle: Some("/x".into()), rootless: true });
        assert_eq!(cmd("spec"), Command::Spec { bundle: None, rootless: false });
        for (s, ns) in [("--interval 10s", 10_000_000_000), ("--interval=1m30s", 90_000_000_000), ("-interval 1.5h", 5_400_000_000_000), ("--interval -1s", -1_000_000_000)] {
            assert_eq!(cmd(&format!("events {s} c1")), Command::Events { id: "c1".into(), stats: false, interval: ns }, "{s}");
        }
        assert_eq!(cmd("features"), Command::Features);
        assert_eq!(cmd("start c1"), Command::Start { id: "c1".into() });
        assert_eq!(cmd("state c1"), Command::State { id: "c1".into() });
        assert_eq!(cmd("pause c1"), Command::Pause { id: "c1".into() });
        assert_eq!(cmd("resume c1"), Command::Resume { id: "c1".into() });
        assert_eq!(cmd("list"), Command::List { format: ListFormat::Table, quiet: false });
        assert_eq!(cmd("list -q=1 -f=json"), Command::List { format: ListFormat::Json, quiet: true });
        assert_eq!(cmd("checkpoint --leave-running --image-path /i c1"), Command::Unsupported { command: "checkpoint", id: "c1".into() });
        assert_eq!(cmd("restore -d -no-subreaper --bundle /b c1"), Command::Unsupported { command: "restore", id: "c1".into() });
    }


}
