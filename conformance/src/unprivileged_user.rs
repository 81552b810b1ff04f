//! `berth-rootless`, the user without privilege that the rootless tests run
//! the runtime as: made once if missing, given subordinate ids (what
//! newuidmap, `unshare --map-auto` and rootless podman map beyond the user's
//! own id), with a copy of the runtime it can run.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{runtime, Output};

/// The user's name.
pub const USER: &str = "berth-rootless";

/// The first of the 65536 subordinate uids and gids the user is given.
pub const SUBORDINATE_START: u32 = 1_300_000;

/// The user's uid and gid, making the user the first time; `None` when it
/// cannot be made.
pub fn user_ids() -> Option<(u32, u32)> {
    static USER_IDS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *USER_IDS.get_or_init(|| {
        let exists = Command::new("id")
            .arg(USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !exists {
            let made = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    USER,
                ])
                .status();
            if !made.is_ok_and(|s| s.success()) {
                return None;
            }
        }
        let id = |flag: &str| -> Option<u32> {
            String::from_utf8(Command::new("id").args([flag, USER]).output().ok()?.stdout)
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some((id("-u")?, id("-g")?))
    })
}

/// Entries for the user in /etc/subuid and /etc/subgid, unless it has one.
/// Appended, never rewritten: test processes running at once may both add
/// one, and a second line for the same range is harmless.
pub fn give_subordinate_ids() {
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        if text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            continue;
        }
        let mut out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .unwrap_or_else(|e| panic!("open {file}: {e}"));
        let line = format!("{USER}:{SUBORDINATE_START}:65536\n");
        // After a last line without its newline, start a line of our own.
        let line = if text.is_empty() || text.ends_with('\n') {
            line
        } else {
            format!("\n{line}")
        };
        out.write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("add a subordinate range to {file}: {e}"));
    }
}

/// A copy of the runtime under test in `dir` that any user can run,
/// wherever the workspace is checked out.
pub fn runnable_runtime(dir: &Path) -> PathBuf {
    let bin = dir.join(runtime().file_name().expect("the runtime has a name"));
    fs::copy(runtime(), &bin).expect("copy the runtime");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod the runtime");
    bin
}

/// A command as the user that has not exited by then is hung: it is killed
/// and the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// `program args...` as the user, in `cwd`, with only `env` (and a PATH) in
/// its environment, run to the end. Output goes through files under
/// `log_dir` (numbered by `n`): a container the command leaves running
/// inherits them, and would hold a pipe open for as long as it lives.
pub fn run_as_user(
    program: &Path,
    args: &[String],
    env: &[(&str, &Path)],
    cwd: &Path,
    log_dir: &Path,
    n: usize,
) -> Output {
    let (uid, gid) = user_ids().expect("the user exists before it runs anything");
    let stdout_file = log_dir.join(format!("cmd-{n}.stdout"));
    let stderr_file = log_dir.join(format!("cmd-{n}.stderr"));
    let spawn = || {
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_file).expect("create the stdout file"))
            .stderr(File::create(&stderr_file).expect("create the stderr file"))
            .spawn()
    };
    // A copy of the runtime written moments ago: a child another test forked
    // meanwhile holds the writing descriptor until it execs (ETXTBSY).
    let mut child = spawn();
    for _ in 0..100 {
        match &child {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => break,
        }
        child = spawn();
    }
    let mut child = child.unwrap_or_else(|e| panic!("run {} as {USER}: {e}", program.display()));
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{} {}` hung for {DEADLINE:?}",
                program.display(),
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut shown = vec![program.display().to_string()];
    shown.extend(args.iter().cloned());
    Output {
        args: shown,
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: fs::read_to_string(&stdout_file).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
        stdout_file,
    }
}
