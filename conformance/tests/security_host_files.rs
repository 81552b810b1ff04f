//! Files the runtime writes outside its state root, at paths a caller names, and the
//! files inside it: whoever can write the directory a `--pid-file` (or `--log`, or a
//! socket) is in must not be able to turn the runtime's writes, made as root, onto another
//! file through a symlink; and a state root someone made world-readable must not show
//! the state files, whose hooks and annotations may hold secrets.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_conformance::{berth_only, Bundle, ConsoleSocket, HostDir, Runtime};
use serde_json::json;

/// A scratch directory holding a victim file and a pid file's directory.
struct PidDir {
    host: HostDir,
}

const VICTIM_TEXT: &str = "the victim's own contents\n";

impl PidDir {
    fn new() -> PidDir {
        let host = HostDir::new();
        fs::create_dir(host.join("pids")).unwrap();
        fs::write(host.join("victim"), VICTIM_TEXT).unwrap();
        PidDir { host }
    }

    fn dir(&self) -> PathBuf {
        self.host.join("pids")
    }

    fn victim(&self) -> PathBuf {
        self.host.join("victim")
    }

    /// A symlink to the victim, planted at `name` in the pid file's directory.
    fn plant(&self, name: &str) -> PathBuf {
        let link = self.dir().join(name);
        symlink(self.victim(), &link).unwrap();
        link
    }

    #[track_caller]
    fn assert_victim_untouched(&self) {
        assert_eq!(
            fs::read_to_string(self.victim()).unwrap(),
            VICTIM_TEXT,
            "the runtime wrote through the planted symlink"
        );
    }

    /// The names in the pid file's directory.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// docs/security.md, section "2 and 5": a symlink planted at `.<name>`, where the pid file is
/// staged before its rename, is neither written through nor replaced; create, run and
/// exec fail naming it (runc: "open .../.pid: file exists") and leave nothing behind.
#[test]
fn a_symlink_at_the_staged_pid_file_is_not_written_through() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    for verb in ["create", "run"] {
        let pids = PidDir::new();
        let staged = pids.plant(".init.pid");
        let pid_file = pids.dir().join("init.pid");
        let id = rt.new_id();
        let mut flags = vec!["--pid-file", pid_file.to_str().unwrap()];
        if verb == "run" {
            flags.push("--detach");
        }
        let out = match verb {
            "create" => rt.create(&id, &bundle, &flags),
            _ => rt.run(&id, &bundle, &flags),
        };
        let err = out.fails();
        assert!(
            err.contains(staged.to_str().unwrap()),
            "{verb}: the error does not name {}: {}",
            staged.display(),
            out.describe()
        );
        pids.assert_victim_untouched();
        assert_eq!(pids.names(), [".init.pid"], "{verb} left files beside it");
        assert!(fs::symlink_metadata(&staged).unwrap().is_symlink());
        rt.assert_nothing_left(&id, &bundle);
    }

    // exec: the process must not be left running either.
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let before = rt.cmd(&["ps", "--format", "json", &id]).ok().stdout.clone();
    let pids = PidDir::new();
    let staged = pids.plant(".exec.pid");
    let pid_file = pids.dir().join("exec.pid");
    let out = rt.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    let err = out.fails();
    assert!(
        err.contains(staged.to_str().unwrap()),
        "exec: the error does not name {}: {}",
        staged.display(),
        out.describe()
    );
    pids.assert_victim_untouched();
    assert_eq!(pids.names(), [".exec.pid"], "exec left files beside it");
    assert_eq!(
        rt.cmd(&["ps", "--format", "json", &id]).ok().stdout,
        before,
        "a refused exec left its process running"
    );
    rt.kill_and_delete(&id, &bundle);
}

/// A symlink at the pid file's own name is replaced by the rename (which acts on names),
/// never followed: the victim keeps its contents and the pid file is a plain file, as
/// with runc. Not world-writable either: an engine signals the pid it reads there.
#[test]
fn a_symlink_at_the_pid_file_itself_is_replaced_not_followed() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let pids = PidDir::new();
    let pid_file = pids.plant("init.pid");
    let id = rt.new_id();
    rt.create(&id, &bundle, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();
    pids.assert_victim_untouched();
    let meta = fs::symlink_metadata(&pid_file).unwrap();
    assert!(meta.is_file(), "the pid file is not a plain file: {meta:?}");
    assert_eq!(meta.mode() & 0o022, 0, "a pid file others may write");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(pids.names(), ["init.pid"]);

    // The same for exec's.
    rt.start(&id).ok();
    let exec_pid_file = pids.plant("exec.pid");
    rt.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        exec_pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    pids.assert_victim_untouched();
    assert!(fs::symlink_metadata(&exec_pid_file).unwrap().is_file());
    rt.kill_and_delete(&id, &bundle);
}

/// Makes `link` look planted by another user (uid 65534).
fn disown(link: &Path) {
    std::os::unix::fs::lchown(link, Some(65534), Some(65534))
        .unwrap_or_else(|e| panic!("chown -h {}: {e}", link.display()));
}

/// The paths the runtime opens rather than creates: `--log` (appended to) and the
/// console and pidfd sockets (connected to). A symlink at the last component is followed
/// only when root or the caller owns it; one another user planted is refused, naming
/// it, and nothing is left. runc follows any link there (and would append its log to
/// the victim), so this is Berth's.
#[test]
fn symlinks_another_user_planted_at_log_and_socket_paths_are_refused_berth_only() {
    if !berth_only("runc follows a symlink at --log, --console-socket and --pidfd-socket") {
        return;
    }
    let dir = PidDir::new();
    let rt = Runtime::new();

    // --log: the victim must not be appended to.
    let log = dir.plant("runtime.log");
    disown(&log);
    let out = rt.cmd(&["--log", log.to_str().unwrap(), "state", "no-such-container"]);
    out.fails_with(&format!(
        "{}: is a symbolic link owned by uid 65534",
        log.display()
    ));
    dir.assert_victim_untouched();

    // A listening socket someone points a link at: it must get no connection.
    let target = dir.dir().join("target.sock");
    let listener = UnixListener::bind(&target).unwrap();
    listener.set_nonblocking(true).unwrap();
    let planted = dir.dir().join("planted.sock");
    symlink(&target, &planted).unwrap();
    disown(&planted);

    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| c["process"]["terminal"] = json!(true));
    let id = rt.new_id();
    let out = rt.create(
        &id,
        &bundle,
        &["--console-socket", planted.to_str().unwrap()],
    );
    out.fails_with(&format!("{}: is a symbolic link", planted.display()));
    rt.assert_nothing_left(&id, &bundle);

    let plain = Bundle::sleeper();
    let id = rt.new_id();
    let out = rt.create(&id, &plain, &["--pidfd-socket", planted.to_str().unwrap()]);
    out.fails_with(&format!("{}: is a symbolic link", planted.display()));
    rt.assert_nothing_left(&id, &plain);
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "the runtime connected through the planted link"
    );

    // A link the caller made itself is followed, as before.
    let socket = ConsoleSocket::bind(&dir.dir());
    let own = dir.dir().join("own.sock");
    symlink(socket.path(), &own).unwrap();
    let id = rt.new_id();
    rt.create(&id, &bundle, &["--console-socket", own.to_str().unwrap()])
        .ok();
    socket
        .receive()
        .expect("the master, through the caller's own link");
    rt.kill_and_delete(&id, &bundle);
}

/// `spec` creates config.json exclusively: a dangling symlink there is not written
/// through (runc checks with stat, which follows the link, then writes through it).
#[test]
fn spec_does_not_write_through_a_symlinked_config_berth_only() {
    if !berth_only("runc's spec writes through a dangling config.json symlink") {
        return;
    }
    let dir = HostDir::new();
    let elsewhere = dir.join("elsewhere.json");
    symlink(&elsewhere, dir.join("config.json")).unwrap();
    let out = Runtime::new().cmd_raw(&["spec", "--bundle", dir.to_str().unwrap()]);
    out.fails_with("File config.json exists. Remove it first");
    assert!(!elsewhere.exists(), "spec wrote through the symlink");
}

/// The state files (docs/security.md, section "2 and 5"): under a `--root` made beforehand
/// with mode 755, the files in a container's state directory are the owner's alone (0600,
/// from their creation, as runc's state.json), also once rewritten (pause and resume
/// rewrite state.json).
#[test]
fn state_files_are_private_under_a_world_readable_root() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let root = rt.root();
    fs::create_dir_all(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    let id = rt.new_id();
    rt.create(&id, &bundle, &[]).ok();
    let check = |when: &str| {
        let dir = root.join(&id);
        let mut regular = Vec::new();
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_file() {
                regular.push(entry.file_name().to_string_lossy().into_owned());
                assert_eq!(
                    meta.mode() & 0o777,
                    0o600,
                    "{when}: {} is mode {:o}",
                    entry.path().display(),
                    meta.mode() & 0o777
                );
            }
        }
        assert!(
            regular.iter().any(|n| n == "state.json"),
            "{when}: no state.json among {regular:?}"
        );
        // Only searchable by others, as runc's: no listing of what is inside.
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(
            mode & 0o066,
            0,
            "{when}: the container's directory is {mode:o}"
        );
    };
    check("after create");
    rt.start(&id).ok();
    rt.cmd(&["pause", &id]).ok();
    rt.cmd(&["resume", &id]).ok();
    check("after pause and resume");
    assert_eq!(
        fs::metadata(&root).unwrap().mode() & 0o777,
        0o755,
        "the caller's root was changed"
    );
    rt.kill_and_delete(&id, &bundle);
}
