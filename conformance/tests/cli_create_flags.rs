//! runc's flags that reach into the container: `--preserve-fds` (with systemd's
//! socket activation, `LISTEN_FDS`, whose sockets runc passes first) and
//! `--no-new-keyring`. The runtime is started through a shell or a `pre_exec`
//! step, so that it inherits the descriptors, variables and keyring a real
//! caller (systemd, a shim) would hand it.

use std::ffi::CString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;

use berth_conformance::{berth_only, skip, Bundle, HostDir, PidfdSocket, Runtime};

/// Prints `fds: 0 1 2 ...`, the container process's open descriptors, then
/// what descriptors 3 and 4 read. The shell tests each number with a builtin,
/// which opens nothing itself (`ls` would show a descriptor of its own).
const SHOW_FDS: &str = "fds=''; fd=0; while [ $fd -lt 64 ]; do [ -e /proc/$$/fd/$fd ] && fds=\"$fds $fd\"; fd=$((fd+1)); done; \
                        echo \"fds:$fds\"; [ -e /proc/$$/fd/3 ] && cat <&3; [ -e /proc/$$/fd/4 ] && cat <&4; \
                        env | grep ^LISTEN_ | sort; true";

/// Two host files to hand over as descriptors 3 and 4, and the shell
/// redirections that open them (`3<.. 4<..`).
fn two_files(dir: &HostDir) -> String {
    let (three, four) = (dir.path().join("three"), dir.path().join("four"));
    fs::write(&three, "three\n").unwrap();
    fs::write(&four, "four\n").unwrap();
    format!("3<{} 4<{}", three.display(), four.display())
}

/// `run` of a fresh bundle running SHOW_FDS, the runtime started with `prelude`.
fn run_show_fds(prelude: &str, flags: &[&str]) -> String {
    let bundle = Bundle::busybox(&["sh", "-c", SHOW_FDS]);
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut args = vec!["run", "--bundle", bundle.path().to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push(&id);
    let out = rt.cmd_in_shell(prelude, &args);
    out.ok();
    rt.assert_nothing_left(&id, &bundle);
    out.stdout
}

#[test]
fn preserved_descriptors_reach_the_container_and_nothing_else() {
    let dir = HostDir::new();
    let out = run_show_fds(&two_files(&dir), &["--preserve-fds", "2"]);
    assert_eq!(out, "fds: 0 1 2 3 4\nthree\nfour\n");
}

/// runc 1.1.5 passes whatever is open at a number the caller left closed,
/// its own descriptors included (a /sys/fs/cgroup handle, CVE-2024-21626's
/// way out); runc 1.2 refuses as Berth does.
#[test]
fn a_preserved_descriptor_the_caller_did_not_open_is_refused_berth_only() {
    if !berth_only("runc 1.1.5 hands its own descriptors over in their place") {
        return;
    }
    let bundle = Bundle::busybox(&["true"]);
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let args = [
        "run",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--preserve-fds",
        "2",
        &id,
    ];
    let out = rt.cmd_in_shell("3<&- 4<&-", &args);
    out.fails_with("--preserve-fds 2: file descriptor 3 is not open");
    rt.assert_nothing_left(&id, &bundle);
}

/// With LISTEN_PID naming the runtime itself, its LISTEN_FDS sockets are
/// descriptors 3.. of the container's process, before the preserved ones,
/// and the process is told so as the container's pid 1.
#[test]
fn activation_sockets_come_before_preserved_descriptors() {
    let dir = HostDir::new();
    let prelude = format!("LISTEN_PID=$$ LISTEN_FDS=1 {}", two_files(&dir));
    let out = run_show_fds(&prelude, &["--preserve-fds", "1"]);
    assert_eq!(
        out,
        "fds: 0 1 2 3 4\nthree\nfour\nLISTEN_FDS=1\nLISTEN_PID=1\n"
    );
}

/// An activation meant for another process (LISTEN_PID is not the runtime's)
/// is not passed on.
#[test]
fn activation_sockets_of_another_process_are_not_passed() {
    let dir = HostDir::new();
    let prelude = format!("LISTEN_PID=1 LISTEN_FDS=2 {}", two_files(&dir));
    assert_eq!(run_show_fds(&prelude, &[]), "fds: 0 1 2\n");
}

/// runc's `exec` passes its preserved descriptors but ignores LISTEN_FDS: the
/// first preserved descriptor is 3 again.
#[test]
fn exec_preserves_descriptors_and_ignores_activation() {
    let bundle = Bundle::sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let dir = HostDir::new();
    let prelude = format!("LISTEN_PID=$$ LISTEN_FDS=1 {}", two_files(&dir));
    let out = rt.cmd_in_shell(
        &prelude,
        &["exec", "--preserve-fds", "1", &id, "sh", "-c", SHOW_FDS],
    );
    out.ok();
    assert_eq!(out.stdout, "fds: 0 1 2 3\nthree\n");
    rt.kill_and_delete(&id, &bundle);
}

// linux/keyctl.h
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEY_POS_ALL: libc::c_long = 0x3f00_0000;

/// The names of the keyrings /proc/keys shows the container's process, after
/// the runtime was started in a session keyring of its own, named
/// `caller_keyring`, that only its possessors can see.
fn keyrings_seen_inside(caller_keyring: &str, flags: &[&str]) -> (String, Vec<String>) {
    let mut bundle = Bundle::busybox(&["cat", "/proc/keys"]);
    // runc's default spec masks /proc/keys.
    bundle.edit(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/keys")
    });
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let mut args = vec!["run", "--bundle", bundle.path().to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push(&id);
    let name = CString::new(caller_keyring).unwrap();
    let out = rt.cmd_with(&args, move |command| {
        // SAFETY: runs in the forked child before exec; it makes two system calls
        // on memory the child owns, both async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let keyring =
                    libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr());
                if keyring < 0
                    || libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, keyring, KEY_POS_ALL) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    out.ok();
    rt.assert_nothing_left(&id, &bundle);
    // "<id> <flags> <usage> <timeout> <perm> <uid> <gid> <type> <description>: <summary>"
    let names = out
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().nth(8))
        .map(|name| name.trim_end_matches(':').to_owned())
        .collect();
    (id, names)
}

fn keyrings_available() -> bool {
    if Path::new("/proc/keys").exists() {
        return true;
    }
    skip("the kernel has no keyrings (/proc/keys)");
    false
}

/// Without the flag the container's process gets a session keyring of its
/// own, `_ses.<id>` as runc names it, and cannot see the caller's keys.
#[test]
fn a_container_gets_a_new_session_keyring() {
    if !keyrings_available() {
        return;
    }
    let caller = format!("caller-{}", std::process::id());
    let (id, names) = keyrings_seen_inside(&caller, &[]);
    assert!(names.contains(&format!("_ses.{id}")), "{names:?}");
    assert!(
        !names.contains(&caller),
        "the container sees the caller's keyring: {names:?}"
    );
}

#[test]
fn no_new_keyring_keeps_the_callers_session_keyring() {
    if !keyrings_available() {
        return;
    }
    let caller = format!("caller-nnk-{}", std::process::id());
    let (id, names) = keyrings_seen_inside(&caller, &["--no-new-keyring"]);
    assert!(names.contains(&caller), "{names:?}");
    assert!(!names.contains(&format!("_ses.{id}")), "{names:?}");
}

/// runc's exec joins the container's session keyring by name: an exec'd
/// process sees the container's keys, not those of whoever ran `exec`.
#[test]
fn exec_joins_the_containers_session_keyring() {
    if !keyrings_available() {
        return;
    }
    let mut bundle = Bundle::sleeper();
    bundle.edit(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/keys")
    });
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.create_and_start(&id, &bundle);
    let caller = format!("caller-exec-{}", std::process::id());
    let name = CString::new(caller.clone()).unwrap();
    let out = rt.cmd_with(&["exec", &id, "cat", "/proc/keys"], move |command| {
        // SAFETY: runs in the forked child before exec; two system calls on memory the child owns.
        unsafe {
            command.pre_exec(move || {
                let keyring =
                    libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr());
                if keyring < 0
                    || libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, keyring, KEY_POS_ALL) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    out.ok();
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().nth(8))
        .map(|n| n.trim_end_matches(':'))
        .collect();
    assert!(names.contains(&format!("_ses.{id}").as_str()), "{names:?}");
    assert!(
        !names.contains(&caller.as_str()),
        "the exec'd process kept the caller's keyring: {names:?}"
    );
    rt.kill_and_delete(&id, &bundle);
}

/// runc 1.2's `create --pidfd-socket` (and `run -d`'s): a pidfd of the
/// container's init arrives, with runc's payload `standard`, and it refers to
/// the pid `state` reports.
#[test]
fn create_and_run_send_a_pidfd_of_the_init_berth_only() {
    if !berth_only("runc 1.1 has no --pidfd-socket") {
        return;
    }
    for verb in ["create", "run"] {
        let bundle = Bundle::sleeper();
        let rt = Runtime::new();
        let id = rt.new_id();
        let dir = HostDir::new();
        let socket = PidfdSocket::bind(dir.path());
        let sock = socket.path().to_str().unwrap();
        let out = if verb == "create" {
            rt.create(&id, &bundle, &["--pidfd-socket", sock])
        } else {
            rt.run(&id, &bundle, &["-d", "--pidfd-socket", sock])
        };
        out.ok();
        let received = socket.receive().expect("a pidfd arrives on the socket");
        assert_eq!(received.kind, "standard", "{verb}");
        assert_eq!(
            received.pid(),
            rt.state(&id)["pid"].as_i64(),
            "{verb}: the pidfd is not of the init"
        );
        received
            .signal_zero()
            .expect("pidfd_send_signal(0) on the received pidfd");
        rt.kill_and_delete(&id, &bundle);
    }
}
