//! The command and flag tables, and the help texts made from them.

use super::goflag::{fl, hidden, Flag, Kind};

use Kind::{Bool, Duration, Int, IntList, List, Str};

pub(super) const HELP_FLAG: Flag = fl(&["help", "h"], Bool, "show help");
pub(super) const VERSION_FLAG: Flag = fl(&["version", "v"], Bool, "print the version");

pub(super) const GLOBAL_FLAGS: &[Flag] = &[
    fl(&["debug"], Bool, "enable debug logging"),
    fl(&["log"], Str, "set the log file to write berth logs to (default is '/dev/stderr')"),
    fl(&["log-format"], Str, "set the log format ('text' (default), or 'json') (default: \"text\")"),
    fl(&["root"], Str, "root directory for storage of container state (this should be located in tmpfs) (default: \"/run/berth\")"),
    fl(&["criu"], Str, "path to the criu binary used for checkpoint and restore (default: \"criu\")"),
    fl(&["systemd-cgroup"], Bool, "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\""),
    fl(&["rootless"], Str, "ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")"),
];

const BUNDLE: Flag = fl(
    &["bundle", "b"],
    Str,
    "path to the root of the bundle directory, defaults to the current directory",
);
const CONSOLE_SOCKET: Flag = fl(
    &["console-socket"],
    Str,
    "path to an AF_UNIX socket which will receive the master end of the console's pseudoterminal",
);
const PIDFD_SOCKET: Flag = fl(
    &["pidfd-socket"],
    Str,
    "path to an AF_UNIX socket which will receive a pidfd referencing the process",
);
const PID_FILE: Flag = fl(
    &["pid-file"],
    Str,
    "specify the file to write the process id to",
);
const NO_PIVOT: Flag = fl(
    &["no-pivot"],
    Bool,
    "do not use pivot_root to jail the process inside rootfs (for a rootfs on a ramdisk)",
);
const NO_NEW_KEYRING: Flag = fl(
    &["no-new-keyring"],
    Bool,
    "do not create a new session keyring for the container",
);
const PRESERVE_FDS: Flag = fl(&["preserve-fds"], Int, "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)");
const DETACH: Flag = fl(
    &["detach", "d"],
    Bool,
    "detach from the container's process",
);
const NO_SUBREAPER: Flag = fl(
    &["no-subreaper"],
    Bool,
    "disable the use of the subreaper used to reap reparented processes",
);
const FORMAT: Flag = fl(
    &["format", "f"],
    Str,
    "select one of: table or json (default: \"table\")",
);

const CREATE_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    PID_FILE,
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
    hidden(&["detach", "d"], Bool),
];
const RUN_FLAGS: &[Flag] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    DETACH,
    fl(
        &["keep"],
        Bool,
        "do not delete the container after it exits",
    ),
    PID_FILE,
    NO_SUBREAPER,
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
];
const EXEC_FLAGS: &[Flag] = &[
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    fl(&["cwd"], Str, "current working directory in the container"),
    fl(&["env", "e"], List, "set environment variables"),
    fl(&["tty", "t"], Bool, "allocate a pseudo-TTY"),
    fl(&["user", "u"], Str, "UID (format: <uid>[:<gid>])"),
    fl(&["additional-gids", "g"], IntList, "additional gids"),
    fl(&["process", "p"], Str, "path to the process.json"),
    DETACH,
    PID_FILE,
    fl(
        &["process-label"],
        Str,
        "set the asm process label for the process commonly used with selinux",
    ),
    fl(
        &["apparmor"],
        Str,
        "set the apparmor profile for the process",
    ),
    fl(
        &["no-new-privs"],
        Bool,
        "set the no new privileges value for the process",
    ),
    fl(
        &["cap", "c"],
        List,
        "add a capability to the bounding set for the process",
    ),
    PRESERVE_FDS,
    fl(
        &["cgroup"],
        List,
        "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.",
    ),
    fl(&["ignore-paused"], Bool, "allow exec in a paused container"),
];
const UPDATE_FLAGS: &[Flag] = &[
    fl(&["resources", "r"], Str, "path to a file with the LinuxResources JSON to apply, or '-' for stdin; other flags are then ignored"),
    fl(&["blkio-weight"], Int, "per cgroup weight, range is from 10 to 1000 (default: 0)"),
    fl(&["cpu-period"], Str, "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    fl(&["cpu-quota"], Str, "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    fl(&["cpu-burst"], Str, "CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period"),
    fl(&["cpu-share"], Str, "CPU shares (relative weight vs. other containers)"),
    fl(&["cpu-rt-period"], Str, "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    fl(&["cpu-rt-runtime"], Str, "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    fl(&["cpu-idle"], Str, "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    fl(&["cpuset-cpus"], Str, "CPU(s) to use"),
    fl(&["cpuset-mems"], Str, "memory node(s) to use"),
    fl(&["memory"], Str, "memory limit (in bytes)"),
    fl(&["memory-reservation"], Str, "memory reservation or soft_limit (in bytes)"),
    fl(&["memory-swap"], Str, "total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    fl(&["pids-limit"], Int, "maximum number of pids allowed in the container (default: 0)"),
    fl(&["l3-cache-schema"], Str, "the string of Intel RDT/CAT L3 cache schema"),
    fl(&["mem-bw-schema"], Str, "the string of Intel RDT/MBA memory bandwidth schema"),
];
const IMAGE_PATH: Flag = fl(
    &["image-path"],
    Str,
    "path for saving criu image files (default: ./checkpoint)",
);
const WORK_PATH: Flag = fl(&["work-path"], Str, "path for saving work files and logs");
const TCP_ESTABLISHED: Flag = fl(&["tcp-established"], Bool, "allow open tcp connections");
const EXT_UNIX_SK: Flag = fl(&["ext-unix-sk"], Bool, "allow external unix sockets");
const SHELL_JOB: Flag = fl(&["shell-job"], Bool, "allow shell jobs");
const LAZY_PAGES: Flag = fl(
    &["lazy-pages"],
    Bool,
    "use userfaultfd to lazily restore memory pages",
);
const FILE_LOCKS: Flag = fl(&["file-locks"], Bool, "handle file locks, for safety");
const MANAGE_CGROUPS_MODE: Flag = fl(
    &["manage-cgroups-mode"],
    Str,
    "cgroups mode: soft|full|strict|ignore (default: soft)",
);
const EMPTY_NS: Flag = fl(
    &["empty-ns"],
    List,
    "create a namespace, but don't restore its properties",
);
const AUTO_DEDUP: Flag = fl(
    &["auto-dedup"],
    Bool,
    "enable auto deduplication of memory images",
);
const CHECKPOINT_FLAGS: &[Flag] = &[
    IMAGE_PATH,
    WORK_PATH,
    fl(
        &["parent-path"],
        Str,
        "path for previous criu image files in pre-dump",
    ),
    fl(
        &["leave-running"],
        Bool,
        "leave the process running after checkpointing",
    ),
    TCP_ESTABLISHED,
    EXT_UNIX_SK,
    SHELL_JOB,
    LAZY_PAGES,
    fl(
        &["status-fd"],
        Int,
        "criu writes \\0 to this FD once lazy-pages is ready (default: -1)",
    ),
    fl(&["page-server"], Str, "ADDRESS:PORT of the page server"),
    FILE_LOCKS,
    fl(
        &["pre-dump"],
        Bool,
        "dump container's memory information only, leave the container running after this",
    ),
    MANAGE_CGROUPS_MODE,
    EMPTY_NS,
    AUTO_DEDUP,
];
const RESTORE_FLAGS: &[Flag] = &[
    CONSOLE_SOCKET,
    IMAGE_PATH,
    WORK_PATH,
    TCP_ESTABLISHED,
    EXT_UNIX_SK,
    SHELL_JOB,
    FILE_LOCKS,
    MANAGE_CGROUPS_MODE,
    BUNDLE,
    DETACH,
    PID_FILE,
    NO_SUBREAPER,
    NO_PIVOT,
    EMPTY_NS,
    AUTO_DEDUP,
    LAZY_PAGES,
    fl(
        &["lsm-profile"],
        Str,
        "Specify an LSM profile to be used during restore in the form of TYPE:NAME.",
    ),
    fl(
        &["lsm-mount-context"],
        Str,
        "Specify an LSM mount context to be used during restore.",
    ),
];

const ID: &str = "<container-id>";

pub(super) struct CmdSpec {
    pub(super) name: &'static str,
    summary: &'static str,
    args_usage: &'static str,
    description: &'static str,
    pub(super) flags: &'static [Flag],
    /// urfave moves flags after the id in front of it, except where runc sets SkipArgReorder.
    pub(super) reorder: bool,
}

const fn cmd(
    name: &'static str,
    summary: &'static str,
    args_usage: &'static str,
    description: &'static str,
    flags: &'static [Flag],
) -> CmdSpec {
    CmdSpec {
        name,
        summary,
        args_usage,
        description,
        flags,
        reorder: true,
    }
}

pub(super) const COMMANDS: &[CmdSpec] = &[
    cmd("checkpoint", "checkpoint a running container", ID, "Dumps the container with CRIU (see --criu) into --image-path; without\n--leave-running the container is then stopped and deleted.", CHECKPOINT_FLAGS),
    cmd("create", "create a container", ID, "Creates the container from the bundle's config.json without starting the\nuser process; \"berth start\" runs it.", CREATE_FLAGS),
    cmd("delete", "delete any resources held by the container", ID, "Deletes a stopped container (or, with --force, any container, killing it first).", &[fl(&["force", "f"], Bool, "forcibly delete the container if it is still running (uses SIGKILL)")]),
    cmd("events", "display container events such as OOM notifications and resource usage statistics", ID, "Prints the container's statistics every --interval, or once with --stats.", &[fl(&["interval"], Duration, "set the stats collection interval (default: 5s)"), fl(&["stats"], Bool, "display the container's stats then exit")]),
    CmdSpec { reorder: false, ..cmd("exec", "execute new process inside the container", "<container-id> <command> [args...] || -p process.json <container-id>", "Runs a new process in a running container. Everything after the container id\nis the command; berth's flags must come before the id.", EXEC_FLAGS) },
    cmd("kill", "send a signal (default: SIGTERM) to the container's init process", "<container-id> [signal]", "The signal is a number or a name, with or without SIG, in any case (9, KILL, sigkill).", &[fl(&["all", "a"], Bool, "send the signal to all processes inside the container")]),
    cmd("list", "list the containers under the state root", "", "Lists the containers under --root.", &[FORMAT, fl(&["quiet", "q"], Bool, "display only container IDs")]),
    cmd("pause", "suspend all processes inside the container", ID, "Freezes the container's cgroup.", &[]),
    CmdSpec { reorder: false, ..cmd("ps", "display the processes running inside a container", "<container-id> [ps options]", "Runs ps(1) with the given options (default -ef) and keeps the container's processes;\nwith --format json, prints their host pids.", &[FORMAT]) },
    cmd("restore", "restore a container from a previous checkpoint", ID, "Restores the container saved in --image-path with CRIU (see --criu), using the\nbundle's config.json; the id need not be the checkpointed one's.", RESTORE_FLAGS),
    cmd("resume", "resume all processes that have been previously paused", ID, "Thaws the container's cgroup.", &[]),
    cmd("run", "create and run a container", ID, "Creates and starts the container, waits for it and exits with its status.", RUN_FLAGS),
    cmd("spec", "create a new specification file", "", "Writes a starter config.json into the bundle directory.", &[fl(&["bundle", "b"], Str, "path to the root of the bundle directory"), fl(&["rootless"], Bool, "generate a configuration for a rootless container")]),
    cmd("start", "execute the user defined process in a created container", ID, "Starts the process of a container made by \"berth create\".", &[]),
    cmd("state", "output the state of a container", ID, "Prints the container's OCI state as JSON.", &[]),
    cmd("update", "update container resource constraints", ID, "Changes the cgroup limits of a running container.", UPDATE_FLAGS),
    cmd("features", "show the enabled features", "", "Prints, as JSON, what this build of berth recognizes.", &[]),
    cmd("help", "show a list of commands or help for one command", "[command]", "", &[]),
];

pub(super) fn find_command(name: &str) -> Option<&'static CmdSpec> {
    let name = if name == "h" { "help" } else { name };
    COMMANDS.iter().find(|c| c.name == name)
}

// ---- help ----

/// The help text for a command, or the global help for None; None for an unknown topic.
pub fn help_text(topic: Option<&str>) -> Option<String> {
    let Some(name) = topic else {
        return Some(global_help());
    };
    let c = find_command(name)?;
    let opts = if c.flags.iter().any(|f| !f.hidden) {
        " [command options]"
    } else {
        ""
    };
    let mut out = format!(
        "NAME:\n   berth {} - {}\n\nUSAGE:\n   berth {}{opts} {}\n",
        c.name, c.summary, c.name, c.args_usage
    );
    if !c.description.is_empty() {
        out.push_str(&format!("\nDESCRIPTION:\n   {}\n", c.description));
    }
    let flags: Vec<&Flag> = c.flags.iter().filter(|f| !f.hidden).collect();
    if !flags.is_empty() {
        out.push_str(&format!("\nOPTIONS:\n{}", flag_lines(&flags)));
    }
    Some(out)
}

fn global_help() -> String {
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0) + 2;
    let commands: String = COMMANDS
        .iter()
        .map(|c| {
            let name = if c.name == "help" { "help, h" } else { c.name };
            format!("   {name:width$}{}\n", c.summary)
        })
        .collect();
    let flags: Vec<&Flag> = GLOBAL_FLAGS
        .iter()
        .chain([&HELP_FLAG, &VERSION_FLAG])
        .collect();
    format!(
        "NAME:\n   berth - Open Container Initiative runtime\n\n\
berth runs containers packaged in the Open Container Initiative (OCI) bundle format.\n\
It takes the same commands, flags and outputs as runc, and can replace it under\n\
containerd, Docker or Podman.\n\n\
To start a new instance of a container:\n\n    # berth run [ -b bundle ] <container-id>\n\n\
Where \"<container-id>\" is your name for the instance of the container, unique on\n\
your host. The bundle directory defaults to the current directory.\n\n\
USAGE:\n   berth [global options] command [command options] [arguments...]\n\n\
VERSION:\n   {}\n\nCOMMANDS:\n{commands}\nGLOBAL OPTIONS:\n{}",
        env!("CARGO_PKG_VERSION"),
        flag_lines(&flags)
    )
}

/// urfave's option lines: `--name value, -n value` padded two past the widest.
fn flag_lines(flags: &[&Flag]) -> String {
    let left: Vec<String> = flags
        .iter()
        .map(|f| {
            let value = if f.kind == Bool { "" } else { " value" };
            let names: Vec<String> = f
                .names
                .iter()
                .map(|n| format!("{}{n}{value}", if n.len() == 1 { "-" } else { "--" }))
                .collect();
            names.join(", ")
        })
        .collect();
    let width = left.iter().map(String::len).max().unwrap_or(0) + 2;
    left.iter()
        .zip(flags)
        .map(|(l, f)| format!("   {l:width$}{}\n", f.usage))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_texts_follow_urfaves_shape() {
        let g = help_text(None).unwrap_or_default();
        assert!(g.starts_with("NAME:\n   berth - "));
        assert!(
            g.contains("\nCOMMANDS:\n   checkpoint")
                && g.contains("\n   help, h     show")
                && g.contains("\nGLOBAL OPTIONS:\n   --debug  ")
        );
        assert!(g.ends_with("\n   --version, -v       print the version\n"));
        let d = help_text(Some("delete")).unwrap_or_default();
        assert!(d.starts_with("NAME:\n   berth delete - delete any resources held by the container\n\nUSAGE:\n   berth delete [command options] <container-id>\n"));
        assert!(d.ends_with("OPTIONS:\n   --force, -f  forcibly delete the container if it is still running (uses SIGKILL)\n"));
        assert!(help_text(Some("start"))
            .unwrap_or_default()
            .contains("USAGE:\n   berth start <container-id>\n"));
        assert!(help_text(Some("create"))
            .unwrap_or_default()
            .contains("   --bundle value, -b value  path"));
        assert!(!help_text(Some("create"))
            .unwrap_or_default()
            .contains("--detach"));
        // podman reads `checkpoint --help` for the flags it may pass.
        let r = help_text(Some("restore")).unwrap_or_default();
        assert!(r.contains("   --image-path value") && r.contains("   --lsm-mount-context value"));
        let c = help_text(Some("checkpoint")).unwrap_or_default();
        assert!(c.contains("   --leave-running ") && c.contains("   --pre-dump "));
        assert_eq!(help_text(Some("h")), help_text(Some("help")));
        assert_eq!(help_text(Some("bogus")), None);
        for c in COMMANDS {
            assert!(help_text(Some(c.name)).is_some());
        }
    }
}
