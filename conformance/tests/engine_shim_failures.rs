//! containerd with Berth's own shim (`ctr run --runtime io.containerd.berth.v2`) when a
//! create fails: the library's refusal reaches the ctr user as Berth's message, and a
//! create killed half-way leaves nothing behind. Under `RUNTIME=/usr/sbin/runc` the same
//! tests drive the runc shim with runc (`containerd_shim`). Needs
//! `cargo build -p containerd-shim-berth-v2`.

use berth_conformance::containerd::Containerd;
use berth_conformance::containerd_shim::{kill_delete_and_check, run, SLEEPER};
use berth_conformance::{is_berth, scratch_dir, unique_name, Bundle};
use serde_json::{json, Value};

/// A config the library refuses (`ctr run --cwd` with a relative path): ctr's error
/// shows the runtime's own message, as it wrote it (not escaped inside a wrapper's debug
/// form), and nothing is left.
#[test]
fn a_refused_config_shows_the_runtimes_message() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let out = run(
        &containerd,
        &id,
        &["--rm", "--cwd", "relative/dir"],
        &["true"],
    );
    let text = out.fails();
    if is_berth() {
        // The library's SpecError::CwdNotAbsolute, word for word.
        let message = r#"process.cwd "relative/dir" must be an absolute path"#;
        assert!(text.contains(message), "{}", out.describe());
    } else {
        assert!(
            text.contains("Cwd must be an absolute path"),
            "{}",
            out.describe()
        );
    }
    containerd.ctr(&["container", "rm", &id]);
    containerd.assert_nothing_left(&id, 0);
}

/// A whole spec for `ctr run --config`, written to `dir/NAME.json`: ctr's default with
/// `/bin/true` on a busybox rootfs (the bundle returned, which must outlive the
/// container), then `edit`.
fn spec_file(
    containerd: &Containerd,
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut Value),
) -> (Bundle, String) {
    let spec = containerd.ctr(&["oci", "spec"]);
    spec.ok();
    let mut config: Value = serde_json::from_str(&spec.stdout).expect("ctr oci spec");
    config["process"]["args"] = json!(["/bin/true"]);
    config["process"]["env"] = json!(["PATH=/bin"]);
    let rootfs = Bundle::busybox(&["true"]);
    config["root"] = json!({ "path": rootfs.rootfs(), "readonly": false });
    edit(&mut config);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).expect("write the spec");
    (rootfs, path.to_string_lossy().into_owned())
}

/// A createRuntime hook that SIGKILLs the process that runs it (Berth's shim's forker's
/// worker; runc create under the runc shim).
fn kill_parent_hook() -> Value {
    json!({ "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"] }] })
}

/// The process that makes the container (Berth's shim's forker's worker; runc create
/// under the runc shim) is SIGKILLed half-way through create, by a createRuntime hook
/// that kills its parent: the create fails with the shim's account of it and leaves
/// nothing (state directory, cgroup, the half-made init, the rootfs mount, the shim).
/// containerd also runs the shim's `delete` after a failed create, which would hide a
/// shim that does not clean up: `the_forker_removes_what_a_killed_create_made` shows
/// that Berth's shim does.
#[test]
fn a_create_killed_half_way_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let dir = scratch_dir().join(&id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (_rootfs, config) = spec_file(&containerd, &dir, "killed", |config| {
        config["hooks"] = kill_parent_hook();
    });
    let out = run(&containerd, &id, &["--rm", "--config", &config], &[]);
    let text = out.fails();
    containerd.ctr(&["container", "rm", &id]);
    // containerd cleans up after a failed create in the background.
    berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        containerd.leftovers(&id, 0).is_empty()
    });
    containerd.assert_nothing_left(&id, 0);
    let _ = std::fs::remove_dir_all(&dir);
    if is_berth() {
        // The shim's own message: what happened, and that it cleaned up.
        assert!(
            text.contains("worker died without answering (killed by SIGKILL)")
                && text.contains("was removed"),
            "{}",
            out.describe()
        );
    }
}

/// As above, with the killed create's container served by the shim of a running one
/// (one group, as the CRI plugin groups a pod's containers, here by the runc shim's group
/// annotation): nothing of the failed create is left, and the forced delete that removes
/// it leaves the running container of the same shim alone. (containerd also runs the
/// shim's `delete` for the failed id here, when it closes that task's connection, so
/// `the_forker_removes_what_a_killed_create_made` is the test of the shim's own clean-up.)
#[test]
fn a_create_killed_half_way_in_a_shared_shim_leaves_nothing() {
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let running = unique_name();
    let killed = unique_name();
    let dir = scratch_dir().join(&killed);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let group = json!({ "io.containerd.runc.v2.group": running });
    let (_running_rootfs, running_config) = spec_file(&containerd, &dir, "running", |config| {
        config["process"]["args"] = json!(SLEEPER);
        config["annotations"] = group.clone();
    });
    let (_killed_rootfs, killed_config) = spec_file(&containerd, &dir, "killed", |config| {
        config["hooks"] = kill_parent_hook();
        config["annotations"] = group.clone();
    });
    run(
        &containerd,
        &running,
        &["-d", "--config", &running_config],
        &[],
    )
    .ok();
    containerd.wait_task_status(&running, "RUNNING");
    let pid = containerd.task(&running).map_or(0, |(pid, _)| pid);
    let out = run(
        &containerd,
        &killed,
        &["--rm", "--config", &killed_config],
        &[],
    );
    out.fails();
    containerd.ctr(&["container", "rm", &killed]);
    let left = containerd.leftovers(&killed, 0);
    let still_running = containerd.task(&running).map(|(_, status)| status);
    kill_delete_and_check(&containerd, &running, pid);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        left.is_empty(),
        "the failed create left, beside a running container of its shim:\n  {}\n{}",
        left.join("\n  "),
        out.describe()
    );
    assert_eq!(
        still_running.as_deref(),
        Some("RUNNING"),
        "{}",
        out.describe()
    );
}

/// Berth's shim's forker (the worker's parent) is SIGKILLed while its worker is half-way
/// through a create, by a createRuntime hook that kills its grandparent: the worker dies
/// with it, and the shim, which gets no answer, removes what the create had made through
/// a new forker before it reports the failure; nothing is left.
#[test]
fn a_forker_killed_during_a_create_leaves_nothing() {
    if !berth_conformance::berth_only(
        "the forker is Berth's shim's; runc's grandparent is the runc shim",
    ) {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let id = unique_name();
    let dir = scratch_dir().join(&id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    // /proc/PID/stat: pid, (comm), state, ppid; the worker's comm has no space.
    let kill_grandparent = "read -r pid comm state ppid rest < /proc/$PPID/stat; kill -9 $ppid";
    let (_rootfs, config) = spec_file(&containerd, &dir, "killed", |config| {
        config["hooks"] = json!({
            "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", kill_grandparent] }],
        });
    });
    let out = run(&containerd, &id, &["--rm", "--config", &config], &[]);
    let text = out.fails();
    containerd.ctr(&["container", "rm", &id]);
    berth_conformance::wait_until(berth_conformance::STATE_DEADLINE, || {
        containerd.leftovers(&id, 0).is_empty()
    });
    containerd.assert_nothing_left(&id, 0);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        text.contains("forker died") && text.contains("was removed"),
        "{}",
        out.describe()
    );
}

/// Berth's shim binary as built for these tests.
fn shim_binary() -> std::path::PathBuf {
    berth_conformance::containerd::built_shim()
}

/// The shim's forker (`containerd-shim-berth-v2 berth-forker`, docs/shim.md), started as
/// the shim starts it: its stdin one end of a `SOCK_SEQPACKET` socketpair. Returns the
/// other end and the child.
fn start_forker() -> (std::os::fd::OwnedFd, std::process::Child) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) writing two descriptors into `fds`.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(made, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just made and are owned by nothing else.
    let (ours, theirs) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    let child = std::process::Command::new(shim_binary())
        .arg("berth-forker")
        .stdin(std::process::Stdio::from(theirs))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", shim_binary().display()));
    (ours, child)
}

/// One request to the forker (no stdio descriptors) and its reply.
fn ask_forker(socket: &std::os::fd::OwnedFd, request: Value) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::fs::File::from(socket.try_clone().expect("dup the socket"));
    let envelope = json!({ "request": request, "stdio": [false, false, false] });
    // One write on a SOCK_SEQPACKET socket is one datagram: the whole request.
    stream
        .write_all(envelope.to_string().as_bytes())
        .expect("send the request");
    let mut reply = vec![0u8; 64 * 1024];
    let n = stream.read(&mut reply).expect("read the reply");
    serde_json::from_slice(&reply[..n]).expect("the reply is JSON")
}

/// The shim's forker asked to create a container whose worker (the process that calls
/// the library's create) is SIGKILLed half-way, by a createRuntime hook that kills its
/// parent: the forker answers with the worker's death and has removed what the worker
/// made (state directory, cgroup, the half-made init) before answering, as a shim that
/// lives on (a pod's, with other containers) must not wait for containerd's clean-up
/// after a dead shim.
#[test]
fn the_forker_removes_what_a_killed_create_made() {
    if !berth_conformance::berth_only("the forker is Berth's shim's") {
        return;
    }
    assert!(
        shim_binary().exists(),
        "{} does not exist: cargo build -p containerd-shim-berth-v2",
        shim_binary().display()
    );
    let rt = berth_conformance::Runtime::new();
    let id = rt.new_id();
    let mut bundle = Bundle::busybox(&["true"]);
    bundle.config_mut()["hooks"] = kill_parent_hook();
    bundle.write_config();
    let (socket, mut forker) = start_forker();
    let reply = ask_forker(
        &socket,
        json!({ "Create": {
            "root": rt.root(),
            "id": id,
            "bundle": bundle.path(),
            "console_socket": null,
            "flags": { "systemd_cgroup": false, "no_pivot_root": false, "no_new_keyring": false },
        }}),
    );
    drop(socket);
    let _ = forker.wait();
    let error = reply["Err"].as_str().unwrap_or_default();
    assert!(error.contains("worker died"), "not a dead worker: {reply}");
    let state = rt.root().join(&id);
    assert!(!state.exists(), "{} is left: {reply}", state.display());
    let cgroups = berth_conformance::cgroups_named(&id);
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}: {reply}");
    assert!(error.contains("was removed"), "{reply}");
}
