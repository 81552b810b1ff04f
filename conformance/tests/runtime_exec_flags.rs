//! Every `exec` flag, compared with runc on the same container: each test
//! starts one container under the runtime under test and one under runc
//! (each with its own --root, from identical bundles), execs the same command
//! line with the flag in both, and compares what the process saw (id, env,
//! pwd, capability sets, NoNewPrivs, cgroups, pid file) and the exit codes.
//! A failure must fail in both, with the same exit code.
//!
//! runc 1.1.5 is the reference on Berth's machines; where current runc
//! (1.3/1.4) differs, the comparison is written so both versions pass, and a
//! comment says what changed. Deliberate differences are checked with
//! `berth_only` and listed in docs/cli.md ("exec").

use std::fs;
use std::path::Path;

use berth_conformance::{
    berth_only, cgroups_named, pid_alive, skip, Bundle, HostDir, Output, Runtime, RUNC,
};
use serde_json::{json, Value};

/// One container under one runtime.
struct Side {
    rt: Runtime,
    id: String,
    bundle: Bundle,
}

impl Side {
    fn exec(&self, flags: &[&str], args: &[&str]) -> Output {
        self.rt.cmd(&exec_line(flags, &self.id, args))
    }

    /// The process's output with this side's container id replaced by
    /// `<id>`, so both sides' cgroup paths compare.
    fn normalise(&self, text: &str) -> String {
        text.replace(&self.id, "<id>")
    }
}

fn exec_line<'a>(flags: &[&'a str], id: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut line = vec!["exec"];
    line.extend_from_slice(flags);
    line.push(id);
    line.extend_from_slice(args);
    line
}

/// The runtime under test and runc, each with a container of the same config.
struct Pair {
    ours: Side,
    runc: Side,
}

impl Pair {
    /// Both containers running the sleeper, the config edited by `edit`;
    /// `None` (with a note) where runc is not installed.
    fn running(edit: impl Fn(&mut Value)) -> Option<Pair> {
        Pair::made(edit, true)
    }

    fn made(edit: impl Fn(&mut Value), start: bool) -> Option<Pair> {
        if !Path::new(RUNC).exists() {
            skip("runc is not installed: nothing to compare exec with");
            return None;
        }
        let side = |rt: Runtime| {
            let mut bundle = Bundle::sleeper();
            bundle.edit(&edit);
            let id = rt.new_id();
            rt.create(&id, &bundle, &[]).ok();
            if start {
                rt.start(&id).ok();
            }
            Side { rt, id, bundle }
        };
        Some(Pair {
            ours: side(Runtime::new()),
            runc: side(Runtime::with_binary(Path::new(RUNC))),
        })
    }

    fn sides(&self) -> [&Side; 2] {
        [&self.ours, &self.runc]
    }

    /// `exec FLAGS ID ARGS` under both: the same exit code, and the same
    /// output once each side's id is `<id>`. Returns the output.
    #[track_caller]
    fn same(&self, flags: &[&str], args: &[&str]) -> String {
        self.same_by(flags, args, |text| text.to_owned())
    }

    /// Like `same`, comparing the output's lines in sorted order (runc 1.1
    /// keeps an overridden variable at its first place, 1.2+ at its last).
    #[track_caller]
    fn same_sorted(&self, flags: &[&str], args: &[&str]) -> String {
        self.same_by(flags, args, |text| {
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort_unstable();
            lines.join("\n")
        })
    }

    #[track_caller]
    fn same_by(&self, flags: &[&str], args: &[&str], view: impl Fn(&str) -> String) -> String {
        let ours = self.ours.exec(flags, args);
        let runc = self.runc.exec(flags, args);
        let what = format!("exec {} ID {}", flags.join(" "), args.join(" "));
        assert_eq!(
            ours.code,
            runc.code,
            "`{what}`: exit codes differ\n{}\n--- runc ---\n{}",
            ours.describe(),
            runc.describe()
        );
        let seen = view(&self.ours.normalise(&ours.stdout));
        assert_eq!(
            seen,
            view(&self.runc.normalise(&runc.stdout)),
            "`{what}`: the process saw something else than under runc\n{}\n--- runc ---\n{}",
            ours.describe(),
            runc.describe()
        );
        seen
    }

    /// `exec FLAGS ID ARGS` fails under both with exit code `code` (255: exec
    /// itself failed; 1: a usage error), and runs nothing.
    #[track_caller]
    fn both_fail(&self, code: i32, flags: &[&str], args: &[&str]) {
        for side in self.sides() {
            let out = side.exec(flags, args);
            assert_eq!(out.code, code, "{}", out.describe());
            assert!(!out.stdout.contains("RAN"), "{}", out.describe());
        }
    }

    fn finish(self) {
        for side in self.sides() {
            side.rt.cmd(&["delete", "--force", &side.id]).ok();
            side.rt.assert_nothing_left(&side.id, &side.bundle);
        }
    }
}

/// `-e` adds to the config's env and overrides a name it repeats (the last
/// value wins, in the config too); HOME comes from the container's
/// /etc/passwd for the exec's user when absent or empty; a malformed entry
/// fails exec.
#[test]
fn exec_env_matches_runc() {
    let Some(pair) = Pair::running(|c| {
        let env = c["process"]["env"].as_array_mut().unwrap();
        env.push(json!("TERM=dumb"));
        env.push(json!("FROM_CONFIG=1"));
    }) else {
        return;
    };
    let env = pair.same_sorted(&[], &["env"]);
    assert!(
        env.contains("TERM=dumb") && !env.contains("TERM=xterm"),
        "{env}"
    );
    assert!(env.contains("HOME=/root"), "{env}");
    let env = pair.same_sorted(&["-e", "FOO=bar", "-e", "PATH=/bin"], &["env"]);
    assert_eq!(env.matches("PATH=").count(), 1, "{env}");
    assert!(env.contains("PATH=/bin\n"), "{env}");
    let env = pair.same_sorted(&["-e", "A=1", "-e", "A=2", "-e", "EMPTY="], &["env"]);
    assert!(env.contains("A=2") && !env.contains("A=1"), "{env}");
    pair.same_sorted(&["-e", "HOME=/elsewhere"], &["env"]);
    let env = pair.same_sorted(&["-e", "HOME="], &["env"]);
    assert!(env.contains("HOME=/root"), "{env}");
    // The user 1000 of the bundle's /etc/passwd has /tmp as home; 4242 has none.
    let env = pair.same_sorted(&["-u", "1000"], &["env"]);
    assert!(env.contains("HOME=/tmp"), "{env}");
    let env = pair.same_sorted(&["-u", "4242"], &["env"]);
    assert!(env.contains("HOME=/\n"), "{env}");
    pair.same_sorted(&["-u", "1000", "-e", "HOME=/h"], &["env"]);
    pair.both_fail(255, &["-e", "NOEQUALS"], &["echo", "RAN"]);
    pair.both_fail(255, &["-e", "=value"], &["echo", "RAN"]);
    pair.finish();
}

/// `-u` takes numbers only, `uid` or `uid:gid` (the gid stays the config's
/// without one); `-g` adds to the config's additionalGids; a name, an empty
/// part or a negative number fails exec (255), a `-g` that is no number is
/// a usage error (1).
#[test]
fn exec_user_and_groups_match_runc() {
    let Some(pair) = Pair::running(|c| c["process"]["user"]["additionalGids"] = json!([5])) else {
        return;
    };
    assert_eq!(
        pair.same(&[], &["id"]),
        "uid=0(root) gid=0(root) groups=5\n"
    );
    let id = pair.same(&["-u", "1000"], &["id"]);
    assert!(id.starts_with("uid=1000(user) gid=0(root)"), "{id}");
    pair.same(&["-u", "1000:1000"], &["id"]);
    pair.same(&["-u", "4242"], &["id"]);
    pair.same(&["-u", "0:1000"], &["id"]);
    let id = pair.same(&["-g", "10", "-g", "20"], &["id"]);
    assert!(id.ends_with("groups=5,10,20\n"), "{id}");
    pair.same(&["-u", "1000", "-g", "+7"], &["id"]);
    for user in ["user", "1000:user", "1000:", ":1000", "-1"] {
        pair.both_fail(255, &["-u", user], &["echo", "RAN"]);
    }
    // (uid_t)-1 is setresuid's "unchanged": it must not leave the process
    // root (runc 1.1 refuses ids above 2^31-1, current runc's setuid(2) -1).
    for user in ["4294967295", "0:4294967295", "1000:4294967295"] {
        pair.both_fail(255, &["-u", user], &["echo", "RAN"]);
    }
    pair.both_fail(255, &["-g", "4294967295"], &["echo", "RAN"]);
    pair.both_fail(255, &["-g", "-5"], &["echo", "RAN"]);
    // urfave's Int64Slice: base 10 only.
    for gid in ["abc", "0x10"] {
        pair.both_fail(1, &["-g", gid], &["echo", "RAN"]);
    }
    if berth_only("runc wraps a gid above 2^32-1 to 32 bits (here: to group 0)") {
        let out = pair.ours.exec(&["-g", "4294967296"], &["echo", "RAN"]);
        assert_eq!(out.code, 255, "{}", out.describe());
        assert!(out.stderr.contains("out of range"), "{}", out.describe());
    }
    pair.finish();
}

/// The same rule in config.json: a user or group of (uid_t)-1 fails
/// `create`, where Berth used to run the process as root.
#[test]
fn a_config_id_of_minus_one_fails_create_as_under_runc() {
    if !Path::new(RUNC).exists() {
        skip("runc is not installed: nothing to compare create with");
        return;
    }
    for field in ["uid", "gid"] {
        for rt in [Runtime::new(), Runtime::with_binary(Path::new(RUNC))] {
            let mut bundle = Bundle::busybox(&["echo", "RAN"]);
            bundle.edit(|c| c["process"]["user"][field] = json!(u32::MAX));
            let id = rt.new_id();
            let out = rt.run(&id, &bundle, &[]);
            assert!(!out.success(), "user.{field} -1: {}", out.describe());
            assert!(!out.stdout.contains("RAN"), "{}", out.describe());
            rt.assert_nothing_left(&id, &bundle);
        }
    }
}

/// `--cwd` must be absolute (runc checks it before anything starts); one
/// that is missing or not a directory fails exec; `--no-new-privs=false`
/// clears the config's noNewPrivileges.
#[test]
fn exec_cwd_and_no_new_privs_match_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    assert_eq!(pair.same(&["--cwd", "/tmp"], &["pwd"]), "/tmp\n");
    pair.same(&["-u", "1000", "--cwd", "/root"], &["pwd"]);
    for cwd in ["tmp", "/nonexistent", "/etc/passwd"] {
        pair.both_fail(255, &["--cwd", cwd], &["echo", "RAN"]);
    }
    let status = ["grep", "NoNewPrivs", "/proc/self/status"];
    assert_eq!(pair.same(&[], &status), "NoNewPrivs:\t1\n");
    assert_eq!(
        pair.same(&["--no-new-privs=false"], &status),
        "NoNewPrivs:\t0\n"
    );
    pair.finish();
}

/// Without the config's noNewPrivileges, `--no-new-privs` sets it.
#[test]
fn exec_no_new_privs_sets_it_as_runc_does() {
    let Some(pair) = Pair::running(|c| c["process"]["noNewPrivileges"] = json!(false)) else {
        return;
    };
    let status = ["grep", "NoNewPrivs", "/proc/self/status"];
    assert_eq!(pair.same(&[], &status), "NoNewPrivs:\t0\n");
    assert_eq!(pair.same(&["--no-new-privs"], &status), "NoNewPrivs:\t1\n");
    pair.finish();
}

const CAPS: &[&str] = &["grep", "^Cap", "/proc/self/status"];

/// `--cap` adds to the bounding, effective and permitted sets, never to the
/// inheritable one (CVE-2022-29162); a user other than root keeps none
/// after the uid change, as under runc.
#[test]
fn exec_cap_matches_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    pair.same(&[], CAPS);
    let caps = pair.same(&["--cap", "CAP_SYS_ADMIN"], CAPS);
    assert!(caps.contains("CapInh:\t0000000000000000"), "{caps}");
    pair.same(&["--cap", "CAP_NET_RAW", "--cap", "CAP_SYS_PTRACE"], CAPS);
    pair.same(&["-u", "1000", "--cap", "CAP_NET_RAW"], CAPS);
    // runc warns of a name it does not know and runs without it.
    if berth_only("runc ignores an unknown capability name; Berth refuses it, as in config.json") {
        for name in ["CAP_BOGUS", "SYS_ADMIN", "cap_sys_admin"] {
            let out = pair.ours.exec(&["--cap", name], &["echo", "RAN"]);
            assert_eq!(out.code, 255, "{}", out.describe());
            assert!(
                out.stderr.contains("unknown capability"),
                "{}",
                out.describe()
            );
        }
    }
    pair.finish();
}

/// Where the config has an inheritable set, `--cap` goes to the ambient set
/// too (the kernel keeps it there only when also inheritable and
/// permitted), so a user other than root holds it after the exec.
#[test]
fn exec_cap_reaches_ambient_with_an_inheritable_config() {
    // An inheritable capability must be in the bounding set too, or both
    // runtimes fail to create the container (capset refuses it).
    let Some(pair) = Pair::running(|c| {
        let caps = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_RAW"
        ]);
        c["process"]["capabilities"]["inheritable"] = caps.clone();
        c["process"]["capabilities"]["bounding"] = caps;
    }) else {
        return;
    };
    pair.same(&[], CAPS);
    let caps = pair.same(&["-u", "1000", "--cap", "CAP_NET_RAW"], CAPS);
    // CAP_NET_RAW is bit 13; the config's three ambient ones are 5, 10, 29.
    assert!(caps.contains("CapAmb:\t0000000020002420"), "{caps}");
    pair.finish();
}

/// The terminal and detach rules: `-t -d` needs a console socket, a console
/// socket needs `-t` (detached or not); `-d` returns 0 at once; `--pid-file`
/// holds the process's host pid, with no newline, detached or not.
#[test]
fn exec_terminal_detach_and_pid_file_match_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    let socket = "/nonexistent/console.sock";
    pair.both_fail(255, &["-t", "-d"], &["echo", "RAN"]);
    pair.both_fail(255, &["--console-socket", socket], &["echo", "RAN"]);
    pair.both_fail(255, &["--console-socket", socket, "-d"], &["echo", "RAN"]);
    pair.same(&["-d"], &["true"]);
    let mut seen = Vec::new();
    for side in pair.sides() {
        let dir = HostDir::new();
        let detached = dir.join("detached.pid");
        let foreground = dir.join("foreground.pid");
        let flags = ["-d", "--pid-file", detached.to_str().unwrap()];
        side.exec(&flags, &["sleep", "30"]).ok();
        // An old pid file is replaced.
        fs::write(&foreground, "stale\n").unwrap();
        let flags = ["--pid-file", foreground.to_str().unwrap()];
        side.exec(&flags, &["true"]).ok();
        let read_pid = |path: &Path| {
            let text = fs::read_to_string(path).expect("the pid file is written");
            assert!(text.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
            text.parse::<i64>().unwrap()
        };
        read_pid(&foreground);
        let pid = read_pid(&detached);
        assert!(
            pid_alive(pid),
            "the detached exec's pid {pid} is not running"
        );
        let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        seen.push((cmdline, side.normalise(&cgroup)));
    }
    assert_eq!(seen[0], seen[1], "the pid files name different processes");
    // A pid file that cannot be written fails exec in both; runc finds out
    // once the process is started (it may have printed), Berth before.
    let nowhere = ["--pid-file", "/nonexistent/dir/exec.pid"];
    for side in pair.sides() {
        let out = side.exec(&nowhere, &["echo", "RAN"]);
        assert_eq!(out.code, 255, "{}", out.describe());
    }
    if berth_only("runc writes the pid file once the process runs") {
        let out = pair.ours.exec(&nowhere, &["echo", "RAN"]);
        assert!(!out.stdout.contains("RAN"), "{}", out.describe());
    }
    pair.finish();
}

/// `-t` in the foreground, where the caller has no terminal: runc fails
/// ("open /dev/tty"), as it cannot put a terminal of the caller's in raw
/// mode; Berth relays the container's terminal to plain stdio, as its
/// `run` does (docs/cli.md).
#[test]
fn exec_tty_without_a_caller_terminal() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    let runc = pair.runc.exec(&["-t"], &["echo", "RAN"]);
    assert_eq!(runc.code, 255, "{}", runc.describe());
    if berth_only("runc needs the caller's terminal for exec -t in the foreground") {
        let out = pair.ours.exec(&["-t"], &["sh", "-c", "tty; echo RAN"]);
        assert!(out.ok().stdout.contains("/dev/pts/"), "{}", out.describe());
        assert!(out.stdout.contains("RAN"), "{}", out.describe());
    }
    pair.finish();
}

/// `--process` replaces the config's process and the flags that would edit
/// it (`-e`, `-u`, `--cwd`, the command line after the id); it is checked
/// as config.json's process is (absolute cwd, args).
#[test]
fn exec_process_json_matches_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    let dir = HostDir::new();
    let write = |name: &str, process: Value| {
        let path = dir.join(name);
        fs::write(&path, process.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let good = write(
        "good.json",
        json!({
            "args": ["sh", "-c", "id; pwd; env | sort; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"],
            "cwd": "/tmp", "user": { "uid": 1000, "gid": 1000 },
            "env": ["PATH=/bin", "A=1", "A=2"]
        }),
    );
    let ignored = [
        "-p",
        &good,
        "-e",
        "X=1",
        "-u",
        "0",
        "--cwd",
        "/",
        "--cap",
        "CAP_SYS_ADMIN",
    ];
    let seen = pair.same(&ignored, &["echo", "ignored"]);
    assert!(
        seen.starts_with("uid=1000(user) gid=1000(user)\n/tmp\nA=2\n"),
        "{seen}"
    );
    // Each is whole but for the one fault it is named after.
    let root = json!({ "uid": 0, "gid": 0 });
    let env = json!(["PATH=/bin"]);
    let relative = write(
        "relative.json",
        json!({ "args": ["echo", "RAN"], "cwd": "tmp", "user": root, "env": env }),
    );
    let no_cwd = write(
        "no-cwd.json",
        json!({ "args": ["echo", "RAN"], "user": root, "env": env }),
    );
    let no_args = write(
        "no-args.json",
        json!({ "args": [], "cwd": "/", "user": root, "env": env }),
    );
    let bad_cap = write(
        "bad-cap.json",
        json!({ "args": ["echo", "RAN"], "cwd": "/", "user": root, "env": env,
                "capabilities": { "bounding": ["SYS_ADMIN"] } }),
    );
    let broken = dir.join("broken.json");
    fs::write(&broken, "{").unwrap();
    let missing = dir.join("missing.json");
    for path in [&relative, &no_cwd, &no_args] {
        pair.both_fail(255, &["-p", path], &[]);
    }
    for path in [&broken, &missing] {
        pair.both_fail(255, &["-p", path.to_str().unwrap()], &[]);
    }
    if berth_only("runc ignores an unknown capability name in process.json") {
        let out = pair.ours.exec(&["-p", &bad_cap], &[]);
        assert_eq!(out.code, 255, "{}", out.describe());
    }
    pair.finish();
}

/// `--preserve-fds N` passes the caller's descriptors 3 .. 3+N, no more.
#[test]
fn exec_preserve_fds_matches_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    for n in ["0", "1", "2"] {
        let mut seen = Vec::new();
        for side in pair.sides() {
            let line = exec_line(&["--preserve-fds", n], &side.id, &["ls", "/proc/self/fd"]);
            // The runtime's own descriptors 3 and 4, open on /dev/null.
            let out = side.rt.cmd_in_shell("3</dev/null 4</dev/null", &line);
            seen.push(out.ok().stdout.clone());
        }
        assert_eq!(seen[0], seen[1], "--preserve-fds {n}");
    }
    // runc hands over whatever its own descriptor 5 is by then.
    if berth_only("runc passes a descriptor the caller did not open (one of its own)") {
        let line = exec_line(&["--preserve-fds", "3"], &pair.ours.id, &["echo", "RAN"]);
        let out = pair.ours.rt.cmd_in_shell("3</dev/null 4</dev/null", &line);
        assert_eq!(out.code, 255, "{}", out.describe());
        assert!(out.stderr.contains("is not open"), "{}", out.describe());
    }
    pair.finish();
}

/// Which containers take an exec: a created one does (the process runs
/// beside the waiting init), a paused one does not without --ignore-paused,
/// a stopped or missing one does not; a failed exec exits 255, one that ran
/// exits with its process's code (128+signal when killed).
#[test]
fn exec_container_states_and_exit_codes_match_runc() {
    let Some(created) = Pair::made(|_| {}, false) else {
        return;
    };
    assert_eq!(created.same(&[], &["echo", "hi"]), "hi\n");
    for side in created.sides() {
        side.rt.kill(&side.id, Some("KILL")).ok();
        side.rt.wait_status(&side.id, "stopped");
    }
    created.both_fail(255, &[], &["echo", "RAN"]);
    created.finish();

    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    for side in pair.sides() {
        side.rt.cmd(&["pause", &side.id]).ok();
    }
    pair.both_fail(255, &[], &["echo", "RAN"]);
    for side in pair.sides() {
        side.rt.cmd(&["resume", &side.id]).ok();
    }
    pair.same(&["--ignore-paused"], &["echo", "not paused"]);
    pair.same(&[], &["sh", "-c", "exit 7"]);
    pair.same(&[], &["sh", "-c", "kill -9 $$"]);
    pair.both_fail(255, &[], &[]);
    pair.both_fail(255, &[], &["/nonexistent"]);
    for side in pair.sides() {
        let out = side.rt.cmd(&["exec", "no-such-container", "true"]);
        assert_eq!(out.code, 255, "{}", out.describe());
    }
    pair.finish();
}

/// `--cgroup`: a sub-cgroup of the container's in every hierarchy, or per
/// controller; one that does not exist fails exec.
#[test]
fn exec_cgroup_matches_runc() {
    let Some(pair) = Pair::running(|_| {}) else {
        return;
    };
    for side in pair.sides() {
        let dirs = cgroups_named(&side.id);
        assert!(!dirs.is_empty(), "no cgroup directory named {}", side.id);
        for dir in dirs {
            let sub = dir.join("sub");
            fs::create_dir(&sub).unwrap_or_else(|e| panic!("mkdir {}: {e}", sub.display()));
            // A new v1 cpuset takes no process until given cpus and mems.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(parent) = fs::read_to_string(dir.join(file)) {
                    fs::write(sub.join(file), parent.trim()).unwrap();
                }
            }
        }
    }
    let cgroup = ["cat", "/proc/self/cgroup"];
    pair.same(&[], &cgroup);
    pair.same(&["--cgroup", "sub"], &cgroup);
    pair.same(&["--cgroup", "memory:sub"], &cgroup);
    pair.same(&["--cgroup", "memory,pids:sub"], &cgroup);
    pair.both_fail(255, &["--cgroup", "nonexistent"], &["echo", "RAN"]);
    pair.both_fail(255, &["--cgroup", "memory:nonexistent"], &["echo", "RAN"]);
    pair.finish();
}
