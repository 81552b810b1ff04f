//! Tests of the argument parser: runc's spellings, defaults and errors.

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
    Command::Delete {
        id: id.into(),
        force,
    }
}
fn kill(id: &str, signal: &str, all: bool) -> Command {
    Command::Kill {
        id: id.into(),
        signal: signal.into(),
        all,
    }
}

#[test]
fn global_flags_in_every_spelling() {
    for s in ["--root /r", "--root=/r", "-root /r", "-root=/r"] {
        assert_eq!(
            ok(&format!("{s} list")).0.root,
            Some(PathBuf::from("/r")),
            "{s}"
        );
    }
    let (g, _) =
        ok("--debug --log /l --log-format json --systemd-cgroup --criu /c --rootless true list");
    assert!(g.debug && g.systemd_cgroup);
    assert_eq!(
        (g.log, g.log_format, g.criu),
        (Some("/l".into()), LogFormat::Json, Some("/c".into()))
    );
    assert_eq!(g.rootless, Rootless::True);
    let (g, _) = ok("-debug=false --log= -log-format=text -systemd-cgroup=1 --rootless=AUTO list");
    assert!(!g.debug && g.systemd_cgroup && g.log.is_none());
    assert_eq!(
        (g.log_format, g.rootless),
        (LogFormat::Text, Rootless::Auto)
    );
    assert_eq!(ok("--rootless F list").0.rootless, Rootless::False);
    let g = ok("--rootless maybe list").0;
    assert_eq!(
        g.rootless.resolve(),
        Err("strconv.ParseBool: parsing \"maybe\": invalid syntax".into())
    );
    assert_eq!(ok("list").0, GlobalOpts::default());
}

#[test]
fn help_and_version() {
    for s in [
        "",
        "--help",
        "-h",
        "-help",
        "--h",
        "--help=1",
        "help",
        "h",
        "--log-format xml -h",
    ] {
        assert_eq!(cmd(s), Command::Help(None), "{s}");
    }
    for s in [
        "help delete",
        "h delete",
        "help delete extra",
        "delete -h",
        "delete c1 -h",
        "delete --help a b",
    ] {
        assert_eq!(cmd(s), Command::Help(Some("delete".into())), "{s}");
    }
    assert_eq!(cmd("help h"), Command::Help(Some("help".into())));
    for s in [
        "--version",
        "-v",
        "-version",
        "--log-format xml --version",
        "-v list",
    ] {
        assert_eq!(cmd(s), Command::Version, "{s}");
    }
    assert_eq!(cmd("delete --help=false c1"), del("c1", false));
    // exec and ps keep words after the id for the program.
    assert!(matches!(cmd("exec c1 -h"), Command::Exec(e) if e.args == ["-h"]));
}

#[test]
fn global_errors() {
    let e = err("-x");
    assert_eq!(
        (e.message("runc"), e.exit_code()),
        ("flag provided but not defined: -x".into(), 1)
    );
    assert!(e
        .stdout()
        .starts_with("Incorrect Usage. flag provided but not defined: -x\n\nNAME:\n   berth - "));
    assert_eq!(msg("--xyz list"), "flag provided but not defined: -xyz");
    assert_eq!(
        msg("list --root /x"),
        "flag provided but not defined: -root"
    );
    assert_eq!(msg("--root"), "flag needs an argument: -root");
    assert_eq!(
        msg("--debug=maybe"),
        "invalid boolean value \"maybe\" for -debug: parse error"
    );
    let e = err("-v --version");
    assert_eq!(
        e.message("runc"),
        "Cannot use two forms of the same flag: v version"
    );
    assert!(e
        .stdout()
        .starts_with("Cannot use two forms of the same flag: v version\nNAME:"));
    assert_eq!(
        msg("-h --help -x"),
        "Cannot use two forms of the same flag: h help"
    );
    for (s, m) in [
        ("--log-format xml", "xml"),
        ("--log-format JSON list", "JSON"),
        ("--log-format xml bogus", "xml"),
    ] {
        let e = err(s);
        assert_eq!(
            (e.message("runc"), e.stdout()),
            (format!("invalid log-format: {m}"), String::new())
        );
    }
    assert_eq!(ok("--log-format= list").0.log_format, LogFormat::Text);
    for s in ["bogus", "help bogus", "bogus --help"] {
        let e = err(s);
        assert_eq!(
            (e.message("x"), e.exit_code(), e.stdout()),
            ("No help topic for 'bogus'\n".into(), 3, String::new())
        );
    }
}

#[test]
fn command_flag_errors() {
    let e = err("delete -x c1");
    assert_eq!(e.message("runc"), "flag provided but not defined: -x");
    assert!(e.stdout().starts_with(
        "Incorrect Usage: flag provided but not defined: -x\n\nNAME:\n   berth delete - "
    ));
    assert_eq!(
        msg("delete --force=maybe c1"),
        "invalid boolean value \"maybe\" for -force: parse error"
    );
    assert_eq!(
        msg("delete -f= c1"),
        "invalid boolean value \"\" for -f: parse error"
    );
    assert_eq!(msg("delete ---f c1"), "bad flag syntax: ---f");
    assert_eq!(msg("delete -=x c1"), "bad flag syntax: -=x");
    assert_eq!(
        msg("delete -f --force c1"),
        "Cannot use two forms of the same flag: f force"
    );
    assert_eq!(
        msg("delete --force -f c1"),
        "Cannot use two forms of the same flag: f force"
    );
    assert_eq!(
        msg("list -f json --format table"),
        "Cannot use two forms of the same flag: f format"
    );
    assert_eq!(
        msg("exec -e A=1 --env B=2 c1 ls"),
        "Cannot use two forms of the same flag: e env"
    );
    assert!(err("delete -f --force c1")
        .stdout()
        .starts_with("Incorrect Usage: Cannot use two forms"));
    assert_eq!(msg("list --format"), "flag needs an argument: -format");
    assert_eq!(
        msg("create --preserve-fds x c1"),
        "invalid value \"x\" for flag -preserve-fds: parse error"
    );
    assert_eq!(
        msg("create --preserve-fds 99999999999999999999 c1"),
        "invalid value \"99999999999999999999\" for flag -preserve-fds: value out of range"
    );
    assert_eq!(
        msg("events --interval 5 c1"),
        "invalid value \"5\" for flag -interval: parse error"
    );
    // urfave's Int64Slice: base 10, so no 0x; the sign is checked later.
    for gid in ["abc", "0x10"] {
        assert_eq!(
            msg(&format!("exec -g {gid} c1 true")),
            format!("invalid value \"{gid}\" for flag -g: parse error")
        );
    }
    assert!(matches!(cmd("exec -g -5 -g +7 c1 true"),
        Command::Exec(e) if e.additional_gids == [-5, 7]));
    assert_eq!(
        msg("update --blkio-weight 1.5 c1"),
        "invalid value \"1.5\" for flag -blkio-weight: parse error"
    );
    assert_eq!(msg("help -x"), "flag provided but not defined: -x");
    assert_eq!(msg("create -df c1"), "flag provided but not defined: -df");
    assert_eq!(
        cmd("list --format yaml"),
        Command::List {
            format: ListFormat::Other("yaml".into()),
            quiet: false
        }
    );
    assert_eq!(
        cmd("ps -f= c1"),
        Command::Ps {
            id: "c1".into(),
            format: ListFormat::Other(String::new()),
            ps_args: vec![]
        }
    );
}

#[test]
fn argument_count_errors() {
    let cases = [
        ("delete", "\"delete\" requires exactly 1 argument(s)"),
        ("delete a b", "\"delete\" requires exactly 1 argument(s)"),
        ("delete c1 -x", "\"delete\" requires exactly 1 argument(s)"),
        (
            "delete c1 -- -f",
            "\"delete\" requires exactly 1 argument(s)",
        ),
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
        (
            "features a b",
            "\"features\" requires exactly 0 argument(s)",
        ),
        (
            "checkpoint",
            "\"checkpoint\" requires exactly 1 argument(s)",
        ),
        ("kill", "\"kill\" requires a minimum of 1 argument(s)"),
        ("kill a b c", "\"kill\" requires a maximum of 2 argument(s)"),
        ("exec", "\"exec\" requires a minimum of 1 argument(s)"),
        ("ps", "\"ps\" requires a minimum of 1 argument(s)"),
    ];
    for (s, m) in cases {
        let e = err(s);
        assert_eq!(
            e.message("/usr/sbin/runc"),
            format!("/usr/sbin/runc: {m}"),
            "{s}"
        );
        let name = s.split(' ').next().unwrap_or_default();
        assert!(
            e.stdout()
                .starts_with(&format!("Incorrect Usage.\n\nNAME:\n   berth {name} - ")),
            "{s}"
        );
    }
    assert_eq!(
        err("delete").to_string(),
        "berth: \"delete\" requires exactly 1 argument(s)"
    );
}

#[test]
fn flags_after_the_id_are_reordered() {
    for s in [
        "delete -f c1",
        "delete c1 -f",
        "delete c1 --force",
        "delete -force=true c1",
        "delete c1 -f -f",
    ] {
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
    assert_eq!(
        cmd("events c1 --stats"),
        Command::Events {
            id: "c1".into(),
            stats: true,
            interval: 5_000_000_000
        }
    );
    assert_eq!(
        cmd("list -q --format=json"),
        Command::List {
            format: ListFormat::Json,
            quiet: true
        }
    );
}

#[test]
fn create_and_run() {
    let c = match cmd("create -b /b --console-socket /s -pid-file=/p --pidfd-socket /fd --no-pivot --no-new-keyring --preserve-fds 3 -d c1") {
        Command::Create(c) => c,
        other => panic!("{other:?}"),
    };
    let expected = CreateArgs {
        id: "c1".into(),
        bundle: Some("/b".into()),
        console_socket: Some("/s".into()),
        pid_file: Some("/p".into()),
        pidfd_socket: Some("/fd".into()),
        no_pivot: true,
        no_new_keyring: true,
        preserve_fds: 3,
        detach: true,
    };
    assert_eq!(c, expected);
    for s in [
        "create --bundle /b c1",
        "create --bundle=/b c1",
        "create -bundle /b c1",
        "create -b=/b c1",
        "create c1 -b /b",
    ] {
        assert_eq!(
            cmd(s),
            Command::Create(CreateArgs {
                id: "c1".into(),
                bundle: Some("/b".into()),
                ..Default::default()
            }),
            "{s}"
        );
    }
    assert_eq!(
        cmd("create -b= c1"),
        Command::Create(CreateArgs {
            id: "c1".into(),
            ..Default::default()
        })
    );
    for (v, n) in [
        ("0x10", 16),
        ("010", 8),
        ("1_0", 10),
        ("-1", 0),
        ("99999999999", u32::MAX),
    ] {
        assert!(
            matches!(cmd(&format!("create --preserve-fds {v} c1")), Command::Create(c) if c.preserve_fds == n),
            "{v}"
        );
    }
    let r = match cmd("run -d --keep -no-subreaper --no-pivot -b /b c1") {
        Command::Run(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(r.keep && r.no_subreaper && r.create.detach && r.create.no_pivot);
    assert_eq!(
        (r.create.id.as_str(), r.create.bundle),
        ("c1", Some("/b".into()))
    );
    assert_eq!(
        cmd("run c1"),
        Command::Run(RunArgs {
            create: CreateArgs {
                id: "c1".into(),
                ..Default::default()
            },
            ..Default::default()
        })
    );
}

#[test]
fn exec_keeps_everything_after_the_id() {
    let e = match cmd("exec -t -e A=1 -e B=2 --cwd /w -u 1:2 -g 5 -g 6 -c CAP_A -c CAP_B --no-new-privs -p /p.json --console-socket /s --pidfd-socket /fd -d --pid-file /pid --apparmor aa --process-label l --preserve-fds 2 --ignore-paused --cgroup a:b c1 ls -l --env X -- y") {
        Command::Exec(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(e.args, ["ls", "-l", "--env", "X", "--", "y"]);
    assert_eq!(
        (
            e.tty,
            e.no_new_privs,
            e.detach,
            e.ignore_paused,
            e.preserve_fds
        ),
        (Some(true), Some(true), true, true, 2)
    );
    assert_eq!(
        (e.env, e.additional_gids, e.cap, e.cgroup),
        (
            vec!["A=1".to_string(), "B=2".into()],
            vec![5, 6],
            vec!["CAP_A".to_string(), "CAP_B".into()],
            vec!["a:b".to_string()]
        )
    );
    assert_eq!(
        (e.cwd, e.user, e.apparmor, e.process_label),
        (
            Some("/w".into()),
            Some("1:2".into()),
            Some("aa".into()),
            Some("l".into())
        )
    );
    assert_eq!(
        (e.process, e.console_socket, e.pidfd_socket, e.pid_file),
        (
            Some("/p.json".into()),
            Some("/s".into()),
            Some("/fd".into()),
            Some("/pid".into())
        )
    );
    let e = match cmd("exec --tty=false --env=A=1 -env B=2 c1 -t sh") {
        Command::Exec(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (e.tty, e.no_new_privs, e.env, e.args),
        (
            Some(false),
            None,
            vec!["A=1".to_string(), "B=2".into()],
            vec!["-t".to_string(), "sh".into()]
        )
    );
    assert!(matches!(cmd("exec -- c1 ls"), Command::Exec(e) if e.id == "c1" && e.args == ["ls"]));
    assert!(matches!(cmd("exec c1"), Command::Exec(e) if e.args.is_empty()));
}

#[test]
fn ps_update_spec_events_and_the_rest() {
    let ps = |format, args: &[&str]| Command::Ps {
        id: "c1".into(),
        format,
        ps_args: args.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(cmd("ps -f json c1"), ps(ListFormat::Json, &[]));
    assert_eq!(cmd("ps c1 -f json"), ps(ListFormat::Table, &["-f", "json"]));
    assert_eq!(
        cmd("ps --format=table c1 -o pid"),
        ps(ListFormat::Table, &["-o", "pid"])
    );
    assert_eq!(msg("ps -x c1"), "flag provided but not defined: -x");
    let u =
        match cmd("update -r - --memory 1000 --blkio-weight 500 --pids-limit=-1 --cpuset-cpus= c1")
        {
            Command::Update(u) => u,
            other => panic!("{other:?}"),
        };
    assert_eq!(
        (
            u.resources,
            u.memory,
            u.blkio_weight,
            u.pids_limit,
            u.cpuset_cpus
        ),
        (
            Some("-".into()),
            Some("1000".into()),
            Some(500),
            Some(-1),
            None
        )
    );
    assert_eq!(
        cmd("spec -b /x --rootless"),
        Command::Spec {
            bundle: Some("/x".into()),
            rootless: true
        }
    );
    assert_eq!(
        cmd("spec"),
        Command::Spec {
            bundle: None,
            rootless: false
        }
    );
    for (s, ns) in [
        ("--interval 10s", 10_000_000_000),
        ("--interval=1m30s", 90_000_000_000),
        ("-interval 1.5h", 5_400_000_000_000),
        ("--interval -1s", -1_000_000_000),
    ] {
        assert_eq!(
            cmd(&format!("events {s} c1")),
            Command::Events {
                id: "c1".into(),
                stats: false,
                interval: ns
            },
            "{s}"
        );
    }
    assert_eq!(cmd("features"), Command::Features);
    assert_eq!(cmd("start c1"), Command::Start { id: "c1".into() });
    assert_eq!(cmd("state c1"), Command::State { id: "c1".into() });
    assert_eq!(cmd("pause c1"), Command::Pause { id: "c1".into() });
    assert_eq!(cmd("resume c1"), Command::Resume { id: "c1".into() });
    assert_eq!(
        cmd("list"),
        Command::List {
            format: ListFormat::Table,
            quiet: false
        }
    );
    assert_eq!(
        cmd("list -q=1 -f=json"),
        Command::List {
            format: ListFormat::Json,
            quiet: true
        }
    );
    assert_eq!(
        cmd("checkpoint --leave-running --image-path /i c1"),
        Command::Checkpoint(CheckpointArgs {
            id: "c1".into(),
            leave_running: true,
            criu: CriuArgs {
                image_path: Some("/i".into()),
                ..CriuArgs::default()
            },
            ..CheckpointArgs::default()
        })
    );
    assert_eq!(
        cmd("restore -d -no-subreaper --bundle /b c1"),
        Command::Restore(RestoreArgs {
            id: "c1".into(),
            detach: true,
            no_subreaper: true,
            bundle: Some("/b".into()),
            ..RestoreArgs::default()
        })
    );
}
