//! config-linux.md "Seccomp": what the runtime itself does after it loaded the
//! user's filter must not depend on syscalls that profile may deny. A profile
//! that allows only what the container's program needs (busybox `sh -c 'echo
//! ok'` and the exec that starts it) must run, with `run`, with create+start
//! and for an `exec`, whatever process.noNewPrivileges says; and loading a
//! filter must not set no_new_privs behind the config's back, so a setuid
//! program still gains its privilege when noNewPrivileges is false.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_conformance::{berth_only, skip, Bundle, HostDir, Runtime};
use serde_json::{json, Value};

/// What busybox (static) needs to be exec'd and run `sh -c 'echo ok'`, and to
/// idle in `sleep` (found with strace on the host's busybox). Kept as small as
/// possible on purpose: every name missing here is one the runtime must not
/// call after it loaded the filter.
const PROGRAM_NEEDS: &[&str] = &[
    "execve",
    "read",
    "write",
    "exit",
    "exit_group",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getrandom",
    "uname",
    "prlimit64",
    "readlink",
    "newfstatat",
    "futex",
    "nanosleep",
    "clock_nanosleep",
];

/// Syscalls a runtime typically makes in its own last steps (close its
/// descriptors, set capabilities and ids, chdir, talk to its parent), none of
/// which the program above needs. The profiles here never allow them.
const RUNTIME_STEPS: &[&str] = &[
    "close_range",
    "getcwd",
    "poll",
    "ppoll",
    "capget",
    "capset",
    "prctl",
    "fcntl",
    "sendmsg",
    "recvmsg",
    "setgroups",
    "setresuid",
    "setresgid",
    "chdir",
];

/// runc 1.1.5 fails every allowlist test below, even with noNewPrivileges
/// true: after loading the filter it still closes descriptors (close), opens
/// the exec fifo through /proc/self/fd (openat, statfs, ...) and, without
/// noNewPrivileges, sets ids, capabilities and the working directory.
const RUNC_STEPS_AFTER_FILTER: &str =
    "runc 1.1.5 closes fds and opens the exec fifo after loading the filter";

/// An allowlist profile: everything but `PROGRAM_NEEDS` (and `extra`) fails with EPERM.
fn allowlist(extra: &[&str]) -> Value {
    let names: Vec<&str> = PROGRAM_NEEDS.iter().chain(extra).copied().collect();
    for name in &names {
        assert!(
            !RUNTIME_STEPS.contains(name) || extra.contains(name),
            "{name} is allowed by mistake"
        );
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }],
    })
}

/// With no_new_privs off, loading a filter needs CAP_SYS_ADMIN, which the
/// container's process does not keep: the runtime must load the filter while
/// it still has its capabilities and drop to the process's set afterwards,
/// with capset (runc and crun do the same; runc 1.1 also sets the ids and the
/// working directory after it). A profile used without noNewPrivileges must
/// therefore allow capget/capset; a runtime that needs anything else after
/// the filter is what this catches. prctl is not needed: ambient
/// capabilities can only be set with prctl, but the bundle (runc's default)
/// lists no inheritable ones, so none can be raised, and clearing the ambient
/// set can be done before the filter is loaded.
fn profile_for(no_new_privileges: bool) -> Value {
    match no_new_privileges {
        true => allowlist(&[]),
        false => allowlist(&["capget", "capset"]),
    }
}

/// A busybox bundle running `args` under `profile_for(no_new_privileges)`.
fn under_the_allowlist(args: &[&str], no_new_privileges: bool) -> Bundle {
    let mut bundle = Bundle::busybox(args);
    bundle.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(no_new_privileges);
        c["linux"]["seccomp"] = profile_for(no_new_privileges);
    });
    bundle
}

/// Old Berth closed its descriptors with close_range after loading the
/// filter, and failed every container under such a profile with "close the
/// runtime's file descriptors: Operation not permitted".
#[test]
fn run_under_an_allowlist_profile_that_denies_runtime_steps_berth_only() {
    if !berth_only(RUNC_STEPS_AFTER_FILTER) {
        return;
    }
    for no_new_privileges in [true, false] {
        let bundle = under_the_allowlist(&["sh", "-c", "echo ok"], no_new_privileges);
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.run(&id, &bundle, &[]);
        assert!(
            out.success() && out.stdout == "ok\n",
            "noNewPrivileges {no_new_privileges}: {}",
            out.describe()
        );
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// The same with create then start, where the runtime's last steps are split
/// around the wait for `start` (old Berth: the same close_range failure).
#[test]
fn create_and_start_under_an_allowlist_profile_that_denies_runtime_steps_berth_only() {
    if !berth_only(RUNC_STEPS_AFTER_FILTER) {
        return;
    }
    for no_new_privileges in [true, false] {
        let bundle = under_the_allowlist(&["sh", "-c", "echo ok"], no_new_privileges);
        let rt = Runtime::new();
        let id = rt.new_id();
        let created = rt.create(&id, &bundle, &[]);
        assert!(
            created.success(),
            "noNewPrivileges {no_new_privileges}: {}",
            created.describe()
        );
        let started = rt.start(&id);
        assert!(
            started.success(),
            "noNewPrivileges {no_new_privileges}: {}",
            started.describe()
        );
        rt.wait_status(&id, "stopped");
        let printed = created.stdout_now();
        assert_eq!(
            printed,
            "ok\n",
            "noNewPrivileges {no_new_privileges}: {}",
            created.describe()
        );
        rt.delete(&id).ok();
        rt.assert_nothing_left(&id, &bundle);
    }
}

/// An exec'd process gets the container's profile and goes through the same
/// last steps as the init (old Berth: "close the runtime's file descriptors:
/// Operation not permitted", exit 255). The init idles in busybox `sleep`,
/// which the profile allows.
#[test]
fn exec_under_an_allowlist_profile_that_denies_runtime_steps_berth_only() {
    if !berth_only(RUNC_STEPS_AFTER_FILTER) {
        return;
    }
    for no_new_privileges in [true, false] {
        let bundle = under_the_allowlist(&["sleep", "1000000"], no_new_privileges);
        let rt = Runtime::new();
        let id = rt.new_id();
        rt.create_and_start(&id, &bundle);
        let out = rt.cmd(&["exec", &id, "sh", "-c", "echo ok"]);
        assert!(
            out.success() && out.stdout == "ok\n",
            "noNewPrivileges {no_new_privileges}: {}",
            out.describe()
        );
        rt.kill_and_delete(&id, &bundle);
    }
}

/// A profile that allows everything but one syscall the tests never make.
fn permissive_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdirat"], "action": "SCMP_ACT_ERRNO" }],
    })
}

/// The NoNewPrivs line of the container process's /proc/self/status.
fn no_new_privs_shown(no_new_privileges: bool) -> String {
    let mut bundle = Bundle::busybox(&["grep", "NoNewPrivs", "/proc/self/status"]);
    bundle.edit(|c| {
        c["process"]["noNewPrivileges"] = json!(no_new_privileges);
        c["linux"]["seccomp"] = permissive_profile();
    });
    Runtime::new().run_to_completion(&bundle)
}

/// config.md: noNewPrivileges false must leave no_new_privs off, seccomp or
/// not. Old Berth let libseccomp's load set no_new_privs (its default
/// SCMP_FLTATR_CTL_NNP), so a container with a profile always showed 1.
#[test]
fn a_profile_does_not_set_no_new_privs_when_the_config_says_false() {
    assert_eq!(no_new_privs_shown(false), "NoNewPrivs:\t0\n");
}

/// The control: noNewPrivileges true does show up (a runtime that never set
/// it would pass the test above).
#[test]
fn a_profile_with_no_new_privileges_true_shows_it() {
    assert_eq!(no_new_privs_shown(true), "NoNewPrivs:\t1\n");
}

/// Where the setuid program lives in the rootfs.
const SETUID_PROGRAM: &str = "/bin/print-euid";

/// Compiles a static program that prints its effective uid into `rootfs` as
/// root-owned mode 04755; false (with a note) when there is no gcc.
fn install_setuid_program(rootfs: &Path) -> bool {
    let dir = HostDir::new();
    let source = dir.path().join("print-euid.c");
    fs::write(&source, "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"%d\\n\", (int)geteuid()); return 0; }\n").unwrap();
    let target = rootfs.join(SETUID_PROGRAM.trim_start_matches('/'));
    let compiled = Command::new("gcc")
        .arg("-static")
        .arg("-O2")
        .arg("-o")
        .arg(&target)
        .arg(&source)
        .output();
    match compiled {
        Err(e) => {
            skip(&format!(
                "cannot run gcc ({e}): no setuid program to test with"
            ));
            return false;
        }
        Ok(out) if !out.status.success() => {
            skip(&format!(
                "gcc -static failed (no static libc?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return false;
        }
        Ok(_) => {}
    }
    std::os::unix::fs::chown(&target, Some(0), Some(0)).unwrap();
    // chown clears the setuid bit: set the mode after it.
    fs::set_permissions(&target, fs::Permissions::from_mode(0o4755)).unwrap();
    true
}

/// A container whose process runs as uid/gid 1000 under `permissive_profile`.
fn setuid_bundle(args: &[&str], no_new_privileges: bool) -> Option<Bundle> {
    let mut bundle = Bundle::busybox(args);
    if !install_setuid_program(&bundle.rootfs()) {
        return None;
    }
    bundle.edit(|c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        c["process"]["noNewPrivileges"] = json!(no_new_privileges);
        c["linux"]["seccomp"] = permissive_profile();
    });
    Some(bundle)
}

/// With no_new_privs off a setuid-root program runs as euid 0; with it on the
/// kernel ignores the setuid bit. Old Berth printed 1000 in both cases: its
/// filter load set no_new_privs whatever the config said.
#[test]
fn a_setuid_program_gains_root_only_without_no_new_privileges() {
    for (no_new_privileges, euid) in [(false, "0\n"), (true, "1000\n")] {
        let Some(bundle) = setuid_bundle(&[SETUID_PROGRAM], no_new_privileges) else {
            return;
        };
        let rt = Runtime::new();
        let printed = rt.run_to_completion(&bundle);
        assert_eq!(printed, euid, "noNewPrivileges {no_new_privileges}");
    }
}

/// The same for an exec'd process. Its process.json carries its own
/// noNewPrivileges, and the container's init is given the opposite value, so
/// an exec that followed the init's setting instead fails too; an exec with
/// flags only follows the init's. Old Berth: 1000 every time, as above.
#[test]
fn an_exec_d_setuid_program_gains_root_only_without_no_new_privileges() {
    for (no_new_privileges, euid) in [(false, "0\n"), (true, "1000\n")] {
        let Some(bundle) = setuid_bundle(&["sleep", "1000000"], !no_new_privileges) else {
            return;
        };
        let rt = Runtime::new();
        let id = rt.new_id();
        rt.create_and_start(&id, &bundle);
        let dir = HostDir::new();
        let process = json!({
            "terminal": false, "user": { "uid": 1000, "gid": 1000 }, "cwd": "/",
            "args": [SETUID_PROGRAM], "env": ["PATH=/bin"],
            "noNewPrivileges": no_new_privileges,
        });
        let path = dir.path().join("process.json");
        fs::write(&path, process.to_string()).unwrap();
        let out = rt.cmd(&["exec", "--process", path.to_str().unwrap(), &id]);
        assert_eq!(
            out.ok().stdout,
            euid,
            "noNewPrivileges {no_new_privileges}: {}",
            out.describe()
        );
        // Without --process (and without --no-new-privs) the exec'd process
        // takes the container's process.noNewPrivileges, here the opposite.
        let out = rt.cmd(&["exec", "--user", "1000:1000", &id, SETUID_PROGRAM]);
        let inherited = if no_new_privileges { "0\n" } else { "1000\n" };
        assert_eq!(
            out.ok().stdout,
            inherited,
            "container noNewPrivileges {}, flags: {}",
            !no_new_privileges,
            out.describe()
        );
        rt.kill_and_delete(&id, &bundle);
    }
}
