//! Error reporting the way runc 1.1 does it through logrus.
//!
//! Without `--log`, entries go to stderr: logrus text (`time=".." level=error
//! msg=".."`), or JSON with `--log-format json`, or logrus's coloured form when
//! stderr is a terminal. With `--log F`, entries go to F and a fatal error is
//! also printed plainly on stderr, which is what containerd's shim relies on.

use crate::args::{GlobalOpts, LogFormat};
use crate::output::json_string;
use berth::host_file::{self, HostFileError};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // Info is logrus's level too; nothing logs at it yet
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    /// logrus's level names, as written in the `level` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

enum Sink {
    Stderr,
    File(File),
}

pub struct Logger {
    sink: Sink,
    format: LogFormat,
    debug: bool,
    /// logrus colours text on a terminal and prints seconds since start instead of the time.
    color: bool,
    start: Instant,
}

/// Opening `--log` failed; Display is Go's `open PATH: reason`.
#[derive(Debug)]
pub struct LogOpenError {
    pub path: PathBuf,
    pub source: HostFileError,
}

impl fmt::Display for LogOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source.io_source() {
            Some(errno) => write!(f, "open {}: {}", self.path.display(), go_errno_text(errno)),
            // A refusal of Berth's own (a link someone else planted) says what it is about.
            None => write!(f, "open {}: {}", self.path.display(), self.source),
        }
    }
}

impl std::error::Error for LogOpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Logger {
    /// logrus's configuration before `--log` is applied: text on stderr.
    pub fn stderr() -> Logger {
        Logger::on(Sink::Stderr, LogFormat::Text, false)
    }

    /// The configured logger; an empty `--log` means stderr, as in runc.
    pub fn open(opts: &GlobalOpts) -> Result<Logger, LogOpenError> {
        let sink = match &opts.log {
            Some(path) if !path.as_os_str().is_empty() => Sink::File(open_log(path)?),
            _ => Sink::Stderr,
        };
        Ok(Logger::on(sink, opts.log_format, opts.debug))
    }

    fn on(sink: Sink, format: LogFormat, debug: bool) -> Logger {
        let fd = match &sink {
            Sink::Stderr => libc::STDERR_FILENO,
            Sink::File(f) => f.as_raw_fd(),
        };
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(fd) } == 1;
        Logger {
            sink,
            format,
            debug,
            color: tty && format == LogFormat::Text,
            start: Instant::now(),
        }
    }

    /// True when entries already reach stderr, so fatal must not print twice.
    pub fn logs_to_stderr(&self) -> bool {
        matches!(self.sink, Sink::Stderr)
    }

    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }

    pub fn warn(&self, msg: &str) {
        self.log(Level::Warning, msg);
    }

    #[allow(dead_code)]
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    /// Written only with `--debug`.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.log(Level::Debug, msg);
        }
    }

    /// runc's fatalWithCode: log the error, echo it on stderr when the log
    /// goes elsewhere, exit.
    pub fn fatal(&self, msg: &str, code: i32) -> ! {
        self.error(msg);
        if !self.logs_to_stderr() {
            let line = if msg.ends_with('\n') {
                msg.to_string()
            } else {
                format!("{msg}\n")
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        std::process::exit(code)
    }

    pub fn log(&self, level: Level, msg: &str) {
        let line = if self.color {
            format_colored(level, msg, self.start.elapsed().as_secs())
        } else {
            format_entry(self.format, level, msg, &now_rfc3339())
        };
        // One write per entry, so concurrent writers to an O_APPEND file do not interleave.
        let result = match &self.sink {
            Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Sink::File(f) => (&*f).write_all(line.as_bytes()),
        };
        if let Err(err) = result {
            let _ = writeln!(
                std::io::stderr(),
                "Failed to write to log, {}",
                go_errno_text(&err)
            );
        }
    }
}

/// runc's flags and mode; a symlink at the log's name is followed only if
/// root or this user made it (`/dev/stderr` is), never one another user
/// planted where root would append to its target (see berth's host_file.rs).
fn open_log(path: &Path) -> Result<File, LogOpenError> {
    host_file::open_append(path, 0o644, nix::fcntl::OFlag::O_SYNC).map_err(|source| LogOpenError {
        path: path.to_path_buf(),
        source,
    })
}

pub use berth::error::go_errno_text;

/// One logrus entry, newline included, in text or JSON form.
pub fn format_entry(format: LogFormat, level: Level, msg: &str, time: &str) -> String {
    match format {
        // JSONFormatter: keys sorted, values through encoding/json with HTML escaping.
        LogFormat::Json => format!(
            "{{\"level\":{},\"msg\":{},\"time\":{}}}\n",
            json_string(level.as_str()),
            json_string(msg),
            json_string(time)
        ),
        LogFormat::Text => format!(
            "time={} level={} msg={}\n",
            logfmt_value(time),
            logfmt_value(level.as_str()),
            logfmt_value(msg)
        ),
    }
}

/// logrus's terminal form: `\e[31mERRO\e[0m[0000] msg` with msg padded to 44 runes.
pub fn format_colored(level: Level, msg: &str, elapsed_secs: u64) -> String {
    let (color, text) = match level {
        Level::Error => (31, "ERRO"),
        Level::Warning => (33, "WARN"),
        Level::Info => (36, "INFO"),
        Level::Debug => (37, "DEBU"),
    };
    // logrus drops one trailing newline here, and only here.
    let msg = msg.strip_suffix('\n').unwrap_or(msg);
    let pad = 44usize.saturating_sub(msg.chars().count());
    format!(
        "\x1b[{color}m{text}\x1b[0m[{elapsed_secs:04}] {msg}{} \n",
        " ".repeat(pad)
    )
}

/// logrus's TextFormatter quotes a value with Go's %q unless every character
/// is in [A-Za-z0-9-._/@^+]; an empty value stays bare.
fn logfmt_value(v: &str) -> String {
    let plain = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'));
    if plain {
        v.to_string()
    } else {
        go_quote(v)
    }
}

/// Go's strconv.Quote (`%q`). Go's unicode.IsPrint is approximated: control,
/// format, separator and private-use characters are escaped, unassigned ones are not.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    let n = c as u32;
    let format_or_private = matches!(n,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0xe000..=0xf8ff | 0xfffe | 0xffff | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..);
    !(c.is_control() || c.is_whitespace() || format_or_private)
}

/// Now, as logrus stamps entries: RFC 3339 to the second in local time.
pub fn now_rfc3339() -> String {
    let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    rfc3339_seconds(secs, local_offset(secs))
}

/// The zone offset in seconds east of UTC; logrus formats local time, so
/// runc writes `+01:00` under TZ=Europe/Berlin. UTC if libc cannot tell.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero tm is valid; localtime_r writes only into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff as i64
}

/// Go's time layout "2006-01-02T15:04:05Z07:00": `Z` for UTC, else ±hh:mm.
pub fn rfc3339_seconds(unix_secs: i64, offset_secs: i64) -> String {
    let local = unix_secs + offset_secs;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let tod = local.rem_euclid(86_400);
    let zone = if offset_secs == 0 {
        "Z".to_string()
    } else {
        let sign = if offset_secs < 0 { '-' } else { '+' };
        let mins = offset_secs.abs() / 60;
        format!("{sign}{:02}:{:02}", mins / 60, mins % 60)
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{zone}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm). The library keeps its own for the
/// state's `created`: a calendar is no part of a container runtime's API.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-22T20:06:31Z";

    #[test]
    fn text_entries_match_runc() {
        assert_eq!(
            format_entry(LogFormat::Text, Level::Error, "container does not exist", T),
            "time=\"2026-11-22T20:06:31Z\" level=error msg=\"container does not exist\"\n"
        );
        assert_eq!(
            format_entry(LogFormat::Text, Level::Error, "runc: \"delete\" requires exactly 1 argument(s)", T),
            "time=\"2026-11-22T20:06:31Z\" level=error msg=\"runc: \\\"delete\\\" requires exactly 1 argument(s)\"\n"
        );
        assert_eq!(
            format_entry(
                LogFormat::Text,
                Level::Error,
                "No help topic for 'bogus'\n",
                T
            ),
            "time=\"2026-11-22T20:06:31Z\" level=error msg=\"No help topic for 'bogus'\\n\"\n"
        );
        assert_eq!(
            format_entry(LogFormat::Text, Level::Warning, "plain-word_1.2/x@y^z+", T),
            "time=\"2026-11-22T20:06:31Z\" level=warning msg=plain-word_1.2/x@y^z+\n"
        );
        assert_eq!(
            format_entry(LogFormat::Text, Level::Info, "", T),
            format!("time=\"{T}\" level=info msg=\n")
        );
    }

    #[test]
    fn json_entries_match_runc() {
        assert_eq!(
            format_entry(LogFormat::Json, Level::Error, "runc: \"delete\" requires exactly 1 argument(s)", T),
            "{\"level\":\"error\",\"msg\":\"runc: \\\"delete\\\" requires exactly 1 argument(s)\",\"time\":\"2026-11-22T20:06:31Z\"}\n"
        );
        assert_eq!(
            format_entry(LogFormat::Json, Level::Debug, "a<b>&\n", T),
            "{\"level\":\"debug\",\"msg\":\"a\\u003cb\\u003e\\u0026\\n\",\"time\":\"2026-11-22T20:06:31Z\"}\n"
        );
    }

    #[test]
    fn colored_entries_match_runc_on_a_terminal() {
        // Captured with `script -qc 'runc state zz'`.
        assert_eq!(
            format_colored(Level::Error, "container does not exist", 0),
            "\x1b[31mERRO\x1b[0m[0000] container does not exist                     \n"
        );
        let long = "x".repeat(50);
        assert_eq!(
            format_colored(Level::Warning, &long, 12),
            format!("\x1b[33mWARN\x1b[0m[0012] {long} \n")
        );
        assert_eq!(
            format_colored(Level::Debug, "é\n", 0),
            format!("\x1b[37mDEBU\x1b[0m[0000] é{} \n", " ".repeat(43))
        );
    }

    #[test]
    fn go_quote_follows_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\x07\x08\x0c\n\r\t\x0b"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(go_quote("\x00\x1b\x7f"), r#""\x00\x1b\x7f""#);
        assert_eq!(go_quote("é中 😀"), "\"é中 😀\"");
        assert_eq!(
            go_quote("\u{85}\u{a0}\u{200b}\u{2028}\u{feff}"),
            r#""\u0085\u00a0\u200b\u2028\ufeff""#
        );
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(civil_from_days(47_482), (2100, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(rfc3339_seconds(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_795_377_991, 0), T);
        assert_eq!(
            rfc3339_seconds(1_795_377_991, 3600),
            "2026-11-22T21:06:31+01:00"
        );
        assert_eq!(
            rfc3339_seconds(1_795_377_991, -(9 * 3600 + 30 * 60)),
            "2026-11-22T10:36:31-09:30"
        );
        assert_eq!(rfc3339_seconds(951_782_399, 0), "2000-02-28T23:59:59Z");
        assert_eq!(rfc3339_seconds(-1, 0), "1969-12-31T23:59:59Z");
        assert!(now_rfc3339().len() >= 20);
    }

    #[test]
    fn errno_texts_are_gos() {
        let err = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(go_errno_text(&err), "no such file or directory");
        let opts = GlobalOpts {
            log: Some("/nonexist/x".into()),
            ..GlobalOpts::default()
        };
        let err = Logger::open(&opts).err().expect("no such directory");
        assert_eq!(
            err.to_string(),
            "open /nonexist/x: no such file or directory"
        );
    }

    #[test]
    fn file_logger_appends_lines_with_mode_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("berth-log-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log.json");
        let _ = std::fs::remove_file(&path);
        let opts = GlobalOpts {
            log: Some(path.clone()),
            log_format: LogFormat::Json,
            ..GlobalOpts::default()
        };
        let logger = Logger::open(&opts).expect("open log");
        assert!(!logger.logs_to_stderr());
        logger.error("first");
        logger.debug("hidden without --debug");
        logger.warn("second");
        let text = std::fs::read_to_string(&path).expect("read log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"level\":\"error\",\"msg\":\"first\",\"time\":\""));
        assert!(lines[1].starts_with("{\"level\":\"warning\",\"msg\":\"second\",\"time\":\""));
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode & !0o022, 0o644 & !0o022);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
