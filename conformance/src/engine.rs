//! What the engine suites share: running an engine's client as a child process, the
//! terminal it may need, and the skip when an engine is not installed.

use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{skip, Output};

/// An engine command still running after this is hung: it is killed and the test fails.
const ENGINE_DEADLINE: Duration = Duration::from_secs(120);

/// Whether every program is on PATH; if not, prints a skip note naming the missing ones
/// (scripts/install-deps installs them; it says so when it could not).
pub fn engine_installed(engine: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| find_program(program).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "{engine} is not installed (missing {}); scripts/install-deps installs it",
        missing.join(", ")
    ));
    false
}

/// The path of `program` on PATH (or /usr/sbin, /sbin, which root's PATH may lack).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| candidate.is_file());
    found
}

/// Runs `program args...` to the end with stdin from /dev/null and stdout and stderr in
/// files under `log_dir` (a detached container may inherit them; a pipe might never
/// reach end-of-file). `n` numbers the files; `env` is added to the environment.
pub fn run_program(
    program: &str,
    args: &[String],
    env: &[(&str, PathBuf)],
    log_dir: &Path,
    n: usize,
) -> Output {
    let stdout_file = log_dir.join(format!("cmd-{n}.stdout"));
    let stderr_file = log_dir.join(format!("cmd-{n}.stderr"));
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_file).expect("create stdout file"))
        .stderr(File::create(&stderr_file).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let deadline = Instant::now() + ENGINE_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for engine command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{program} {}` hung for {ENGINE_DEADLINE:?}",
                args.join(" ")
            );
        }
        sleep(Duration::from_millis(5));
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let mut shown = vec![program.to_owned()];
    shown.extend(args.iter().cloned());
    Output {
        args: shown,
        code,
        stdout: fs::read_to_string(&stdout_file).unwrap_or_default(),
        stderr: fs::read_to_string(&stderr_file).unwrap_or_default(),
        stdout_file,
    }
}

/// `script -qec 'program args...' /dev/null`: the command with a pty as its stdio and
/// controlling terminal (what `ctr run -t` and `podman run -t` need), exit code passed
/// through. The output comes with the terminal's "\r\n" line ends.
pub fn in_terminal(program: &str, args: &[String]) -> Vec<String> {
    let line = std::iter::once(program.to_owned())
        .chain(args.iter().cloned())
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ");
    vec!["-qec".into(), line, "/dev/null".into()]
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// SIGKILL the containerd shims serving `socket`: shims outlive their
/// containerd by design, and a test's are named by its socket.
pub(crate) fn kill_shims_of(socket: &str) {
    for shim in processes_with_args(&["-address", socket]) {
        if let Some(pid) = shim
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a shim this test's containerd started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Remove the cgroup parent `name` in every hierarchy, with the cgroups a
/// failed test left in it (rmdir only removes a cgroup without processes).
pub(crate) fn remove_cgroup_parent(name: &str) {
    for dir in crate::cgroups_named(name) {
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            {
                let _ = fs::remove_dir(entry.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
}

/// The socket of the shim serving the task whose bundle is `bundle`: the path in the
/// `address` file (`unix://PATH`) containerd keeps there.
pub fn shim_socket_in(bundle: &Path) -> Option<PathBuf> {
    let address = fs::read_to_string(bundle.join("address")).ok()?;
    address.trim().strip_prefix("unix://").map(PathBuf::from)
}

/// Pids of live processes whose command line has every one of `words` as an argument.
pub fn processes_with_args(words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || !crate::pid_alive(pid.parse().unwrap_or(0)) {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if words.iter().all(|w| args.iter().any(|a| a == w)) {
            found.push(format!("process {pid} ({})", args.join(" ").trim()));
        }
    }
    found
}

/// Unmounts (lazily) everything mounted under `dir`, deepest first, then removes it.
pub fn remove_scratch(dir: &Path) {
    let mut mounts: Vec<String> = crate::mounts_mentioning(dir)
        .iter()
        .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
        .filter(|target| Path::new(target).starts_with(dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for target in mounts {
        if let Ok(c_target) = std::ffi::CString::new(target) {
            // SAFETY: a valid C string; MNT_DETACH only detaches.
            unsafe { libc::umount2(c_target.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let _ = fs::remove_dir_all(dir);
}
