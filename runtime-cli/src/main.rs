//! `berth`: runc's command line over the berth library. This file only maps
//! parsed commands to library calls and library errors to runc's outputs.

mod criu;
mod fds;
mod run;

use berth_cli::{args, log, output, signal, update};

use args::{Command, CreateArgs, GlobalOpts, ListFormat, Stage};
use berth::{container, CreateOptions, Error};
use log::Logger;
use std::io::Write;
use std::path::PathBuf;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let passed = fds::Passed::at_startup();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let prog = argv.first().cloned().unwrap_or_else(|| "berth".into());
    let rest = argv.get(1..).unwrap_or_default();

    let (global, stage) = match args::parse_global(rest) {
        Ok(parsed) => parsed,
        Err(e) => fail_usage(&Logger::stderr(), &e, &prog),
    };
    let logger = match Logger::open(&global) {
        Ok(logger) => logger,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let command = match stage {
        Stage::Ready(command) => command,
        Stage::Subcommand(words) => {
            args::parse_command(&words).unwrap_or_else(|e| fail_usage(&logger, &e, &prog))
        }
    };
    logger.debug(&format!("berth {VERSION}: {command:?}"));
    match run(command, &global, &logger, &passed) {
        Ok(code) => std::process::exit(code),
        Err(failure) => logger.fatal(&failure.message, failure.code),
    }
}

fn fail_usage(logger: &Logger, err: &args::ArgsError, prog: &str) -> ! {
    print!("{}", err.stdout());
    let _ = std::io::stdout().flush();
    logger.fatal(&err.message(prog), err.exit_code())
}

/// A failed command: what to log and the exit code.
struct Failure {
    message: String,
    code: i32,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let message = match &e {
            // The library has no flags; here the user learns which one asked for systemd.
            Error::Cgroup(berth::CgroupError::Systemd(berth::SystemdError::NotRunning)) => {
                format!("--systemd-cgroup: {e}")
            }
            _ => e.to_string(),
        };
        Failure { message, code: 1 }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, code: 1 }
    }
}

/// Whether the default state root is under $XDG_RUNTIME_DIR, as runc
/// decides: for a user without privilege, and for uid 0 of a user namespace
/// the host's root did not make (rootless podman's), unless $USER is root.
fn honours_xdg_runtime_dir() -> bool {
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    berth::host_userns::running_in_user_namespace()
        && std::env::var_os("USER").is_none_or(|user| user != "root")
}

/// runc's default state root, or $XDG_RUNTIME_DIR's (`honours_xdg_runtime_dir`).
fn state_root(global: &GlobalOpts) -> PathBuf {
    if let Some(root) = &global.root {
        // runc makes --root absolute, so an empty one means the current directory.
        return std::path::absolute(root)
            .or_else(|_| std::env::current_dir())
            .unwrap_or_else(|_| root.clone());
    }
    if honours_xdg_runtime_dir() {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("berth");
        }
    }
    PathBuf::from("/run/berth")
}

fn create_options(
    global: &GlobalOpts,
    args: &CreateArgs,
    detach: bool,
    passed: &fds::Passed,
) -> Result<CreateOptions, Failure> {
    // runc only reads --rootless when it creates something.
    let rootless = global
        .rootless
        .resolve()
        .map_err(|e| format!("runc create failed: {e}"))?;
    // `auto`, as runc decides it: without privilege, or as uid 0 of a user
    // namespace someone else made, where cgroups the host's root owns are
    // out of reach. The systemd driver there speaks to the user's own
    // manager (cgroups::systemd::user_manager), as runc's rootless one does.
    let rootless = rootless.unwrap_or_else(|| {
        !nix::unistd::geteuid().is_root() || berth::host_userns::running_in_user_namespace()
    });
    Ok(CreateOptions {
        root: state_root(global),
        id: args.id.clone(),
        bundle: args.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
        spec: None,
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        pidfd_socket: args.pidfd_socket.clone(),
        no_pivot: args.no_pivot,
        rootless,
        no_new_keyring: args.no_new_keyring,
        preserve_fds: passed.for_create(args.preserve_fds)?,
        extra_env: passed.listen_env(),
        detach,
        systemd_cgroup: global.systemd_cgroup,
        notify_socket: run::host_notify_socket().is_some(),
        // A foreground `run` (the one caller that does not detach) takes
        // its container down with it if it is killed.
        die_with_caller: !detach,
        // berth stays non-dumpable once it has forked the init, as runc.
        leave_caller_non_dumpable: true,
        // The container inherits berth's own 0, 1 and 2, as runc's does.
        stdio: berth::Stdio::default(),
    })
}

fn print(text: &str) -> Result<i32, Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("write output: {e}"))?;
    Ok(0)
}

fn run(
    command: Command,
    global: &GlobalOpts,
    logger: &Logger,
    passed: &fds::Passed,
) -> Result<i32, Failure> {
    let root = state_root(global);
    match command {
        Command::Create(args) => {
            berth::create(&create_options(global, &args, true, passed)?)?;
            Ok(0)
        }
        Command::Start { id } => run::start_container(&root, &id),
        Command::Run(args) => run::run_container(global, &args, logger, passed),
        Command::State { id } => {
            let mut state = berth::Container::load(&root, &id)?.state();
            // runc's `state` leaves the owner empty; only `list` fills it in.
            state.owner.clear();
            print(&output::state_json(&state))
        }
        Command::List { format, quiet } => {
            let states = container::list(&root)?;
            let text = match (quiet, format) {
                (true, _) => output::list_quiet(&states),
                (false, ListFormat::Json) => output::list_json(&states),
                (false, ListFormat::Table) => output::list_table(&states),
                (false, ListFormat::Other(_)) => {
                    return Err(ListFormat::INVALID.to_string().into())
                }
            };
            print(&text)
        }
        Command::Kill { id, signal, all } => {
            // runc looks the container up before it reads the signal.
            let target = berth::Container::load(&root, &id)?;
            let number = signal::parse_signal(&signal).map_err(|e| e.to_string())?;
            match signal::kill(&target, number, all) {
                // `--all` only ever meant "do not fail on a stopped container" since runc 1.2.
                Err(signal::KillError::Berth(Error::NotRunning)) if all => Ok(0),
                Err(signal::KillError::Berth(e)) => Err(e.into()),
                other => other.map(|()| 0).map_err(|e| e.to_string().into()),
            }
        }
        Command::Delete { id, force } => {
            warn_all(logger, container::delete(&root, &id, force)?);
            Ok(0)
        }
        Command::Spec { bundle, rootless } => write_spec(bundle, rootless),
        Command::Features => print(&format!(
            "{}\n",
            output::features_json(&berth::features::features())
        )),
        Command::Version => print(&format!(
            "runc version {VERSION}+berth\ncommit: berth-{VERSION}\nspec: {}\nberth: {VERSION}\n",
            berth::spec::OCI_VERSION
        )),
        Command::Help(topic) => {
            let text = args::help_text(topic.as_deref()).unwrap_or_default();
            print(&text)
        }
        Command::Pause { id } => {
            berth::Container::load(&root, &id)?.pause()?;
            Ok(0)
        }
        Command::Resume { id } => {
            berth::Container::load(&root, &id)?.resume()?;
            Ok(0)
        }
        Command::Ps {
            id,
            format,
            ps_args,
        } => {
            let pids = berth::Container::load(&root, &id)?.pids()?;
            let pids: Vec<i32> = pids.into_iter().map(berth::Pid::as_raw).collect();
            match format {
                ListFormat::Json => print(&output::pids_json(&pids)),
                ListFormat::Table => print(&ps_table(&pids, &ps_args)?),
                ListFormat::Other(_) => Err(ListFormat::INVALID.to_string().into()),
            }
        }
        // runc exits 255 when exec itself fails, to tell it from the process's own code.
        Command::Exec(args) => {
            exec_process(&root, &args, passed).map_err(|f| Failure { code: 255, ..f })
        }
        Command::Update(args) => {
            let mut container = berth::Container::load(&root, &args.id)?;
            let resources = update::resources(&args, std::io::stdin().lock())?;
            update::refuse_intel_rdt(&args)?;
            container.update(&resources)?;
            Ok(0)
        }
        Command::Events {
            id,
            stats,
            interval,
        } => events(&root, &id, stats, interval, logger),
        Command::Checkpoint(args) => criu::checkpoint(global, &args),
        Command::Restore(args) => criu::restore(global, &args, logger),
    }
}

/// `events`: one stats event with `--stats`, else a stream until the container stops.
fn events(
    root: &std::path::Path,
    id: &str,
    once: bool,
    interval_ns: i64,
    logger: &Logger,
) -> Result<i32, Failure> {
    let container = berth::Container::load(root, id)?;
    let Some(interval) = u64::try_from(interval_ns)
        .ok()
        .filter(|n| *n > 0)
        .map(std::time::Duration::from_nanos)
    else {
        return Err("duration interval must be greater than 0"
            .to_string()
            .into());
    };
    if once {
        let stats = container.stats()?;
        return print(&output::event_json("stats", id, Some(&stats)));
    }
    let mut write_failed = None;
    berth::events::watch(&container, interval, |event| {
        let line = match event {
            berth::events::Event::Stats(stats) => output::event_json("stats", id, Some(&stats)),
            berth::events::Event::Oom => output::event_json("oom", id, None),
            berth::events::Event::StatsFailed(e) => {
                logger.error(&e.to_string());
                return true;
            }
        };
        // A reader that went away ends the stream, as a closed pipe ends runc's.
        match print(&line) {
            Ok(_) => true,
            Err(f) => {
                write_failed = Some(f);
                false
            }
        }
    })?;
    write_failed.map_or(Ok(0), Err)
}

/// `exec`: a process.json, or the container's own process with the flags' changes.
fn exec_process(
    root: &std::path::Path,
    args: &args::ExecArgs,
    passed: &fds::Passed,
) -> Result<i32, Failure> {
    let sub_cgroups = sub_cgroup_paths(&args.cgroup)?;
    let container = berth::Container::load(root, &args.id)?;
    // The config as create recorded it, never the bundle's now (which may
    // have changed or gone): the base process, seccomp, memory policy.
    let process = match &args.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("open {}: {e}", path.display()))?;
            berth::spec::parse_process(&text, path).map_err(Error::from)?
        }
        None => process_from_flags(
            container.config()?.process().clone().unwrap_or_default(),
            args,
        )?,
    };
    let mut process = process;
    // The exec'd program may ask for its terminal's size at once: give it the caller's now.
    if process.terminal().unwrap_or(false) && !args.detach && process.console_size().is_none() {
        if let Some((rows, cols)) =
            berth::foreground::terminal_size(std::os::fd::AsFd::as_fd(&std::io::stdin()))
        {
            let size = serde_json::from_value(serde_json::json!({ "height": rows, "width": cols }))
                .map_err(|e| format!("console size: {e}"))?;
            process.set_console_size(Some(size));
        }
    }
    let options = berth::exec::ExecOptions {
        console_socket: args.console_socket.clone(),
        pid_file: args.pid_file.clone(),
        preserve_fds: passed.for_exec(args.preserve_fds)?,
        detach: args.detach,
        ignore_paused: args.ignore_paused,
        sub_cgroups,
        pidfd_socket: args.pidfd_socket.clone(),
        leave_caller_non_dumpable: true,
        // runc's rule: a process.json without execCPUAffinity takes the config's.
        ..berth::exec::ExecOptions::for_container_process(&container, process)?
    };
    if !args.detach {
        // Blocked for the rest of berth's life, which ends with the process's.
        berth::foreground::prepare(true)?.leave_in_place();
    }
    let started = berth::exec::exec(&container, &options)?;
    if args.detach {
        return Ok(0);
    }
    Ok(berth::foreground::forward_until_exit(
        started.pid,
        started.console,
    )?)
}

/// `--cgroup` values in runc's syntax: one bare path for every hierarchy, or
/// any number of `controller[,controller]:path`.
fn sub_cgroup_paths(values: &[String]) -> Result<Vec<(String, PathBuf)>, Failure> {
    let mut paths = Vec::new();
    for value in values {
        match value.split_once(':') {
            Some((_, path)) if path.contains(':') => {
                return Err(format!("invalid --cgroup argument: {value}").into())
            }
            Some((controllers, path)) => paths.extend(
                controllers
                    .split(',')
                    .map(|c| (c.to_string(), PathBuf::from(path))),
            ),
            None if values.len() != 1 => {
                return Err(format!(
                    "invalid --cgroup argument: {value} (missing <controller>: prefix)"
                )
                .into())
            }
            None => paths.push((String::new(), PathBuf::from(value))),
        }
    }
    Ok(paths)
}

/// runc's exec flags applied to the container's own process.
fn process_from_flags(
    mut process: oci_spec::runtime::Process,
    args: &args::ExecArgs,
) -> Result<oci_spec::runtime::Process, Failure> {
    if args.args.is_empty() {
        return Err("exec args cannot be empty".to_string().into());
    }
    process.set_args(Some(args.args.clone()));
    process.set_terminal(Some(args.tty.unwrap_or(false)));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(PathBuf::from(cwd));
    }
    if !args.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(args.env.iter().cloned());
        process.set_env(Some(env));
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user
            .split_once(':')
            .map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("parsing {s} as int: invalid user {user:?}"))
        };
        let mut spec_user = process.user().clone();
        spec_user.set_uid(parse(uid)?);
        if let Some(gid) = gid {
            spec_user.set_gid(parse(gid)?);
        }
        process.set_user(spec_user);
    }
    if !args.additional_gids.is_empty() {
        let added = args
            .additional_gids
            .iter()
            .map(|&g| match u32::try_from(g) {
                Ok(gid) => Ok(gid),
                Err(_) if g < 0 => Err(format!("additional-gids must be a positive number {g}")),
                // runc wraps it to 32 bits, another group (docs/cli.md).
                Err(_) => Err(format!("additional-gids value {g} is out of range")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Added to the config's additionalGids, as runc appends them.
        let mut spec_user = process.user().clone();
        let mut gids = spec_user.additional_gids().clone().unwrap_or_default();
        gids.extend(added);
        spec_user.set_additional_gids(Some(gids));
        process.set_user(spec_user);
    }
    if !args.cap.is_empty() {
        process.set_capabilities(Some(with_added_caps(
            process.capabilities().clone().unwrap_or_default(),
            &args.cap,
        )?));
    }
    if let Some(no_new_privs) = args.no_new_privs {
        process.set_no_new_privileges(Some(no_new_privs));
    }
    if let Some(profile) = args.apparmor.as_ref().filter(|p| !p.is_empty()) {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = args.process_label.as_ref().filter(|l| !l.is_empty()) {
        process.set_selinux_label(Some(label.clone()));
    }
    Ok(process)
}

/// `exec --cap`: each name added to the bounding, effective and permitted
/// sets, never to inheritable (CVE-2022-29162); to ambient only where the
/// config has an inheritable set, as runc does (the kernel raises an ambient
/// capability only if it is inheritable too). Names are checked as
/// config.json's are: runc warns of an unknown one and runs without it,
/// Berth refuses it (docs/cli.md).
fn with_added_caps(
    mut caps: oci_spec::runtime::LinuxCapabilities,
    names: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities, Failure> {
    let added: Vec<oci_spec::runtime::Capability> = names
        .iter()
        .map(|c| {
            berth::spec::KNOWN_CAPABILITIES
                .contains(&c.as_str())
                .then(|| serde_json::from_value(serde_json::Value::String(c.clone())).ok())
                .flatten()
                .ok_or_else(|| format!("unknown capability {c:?}"))
        })
        .collect::<Result<_, _>>()?;
    let extend = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(added.iter().copied());
        Some(set)
    };
    caps.set_bounding(extend(caps.bounding()));
    caps.set_effective(extend(caps.effective()));
    caps.set_permitted(extend(caps.permitted()));
    if caps.inheritable().is_some() {
        caps.set_ambient(extend(caps.ambient()));
    }
    Ok(caps)
}

/// `ps ID [ps-args]`: the host's `ps` (default `-ef`), keeping its header and
/// the lines whose PID column is one of the container's, as runc prints it.
fn ps_table(pids: &[i32], ps_args: &[String]) -> Result<String, Failure> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| format!("exec ps: {e}"))?;
    if !output.status.success() {
        return Err(format!("ps: {}", String::from_utf8_lossy(&output.stderr).trim()).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| "couldn't find PID field in ps output".to_string())?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Failures that do not fail the command (poststart and poststop hooks), logged as runc does.
fn warn_all(logger: &Logger, warnings: Vec<String>) {
    for warning in warnings {
        logger.warn(&warning);
    }
}

/// `spec`: runc's default config.json, refusing to overwrite one.
fn write_spec(bundle: Option<PathBuf>, rootless: bool) -> Result<i32, Failure> {
    let path = bundle
        .unwrap_or_else(|| PathBuf::from("."))
        .join("config.json");
    let mut spec = serde_json::to_value(berth::spec::default_spec(rootless))
        .map_err(|e| format!("encode config.json: {e}"))?;
    // The library keeps capabilities in sets; write them in a stable, sorted order as runc does.
    if let Some(sets) = spec
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for list in sets.values_mut().filter_map(|v| v.as_array_mut()) {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    let mut text = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut text,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    serde::Serialize::serialize(&spec, &mut serializer)
        .map_err(|e| format!("encode config.json: {e}"))?;
    // Created exclusively, as the check and the write are one step: nothing
    // already there, a symlink included, is written through (runc follows one).
    berth::host_file::write_new_file(&path, &text, 0o666).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => "File config.json exists. Remove it first".to_string(),
        _ => format!("write {}: {e}", path.display()),
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
        sub_cgroup_paths(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            .map_err(|f| f.message)
    }

    #[test]
    fn cgroup_values_in_runcs_syntax() {
        assert_eq!(
            parse(&["a/b"]).unwrap(),
            [(String::new(), PathBuf::from("a/b"))]
        );
        assert_eq!(
            parse(&["cpu,cpuacct:x", "memory:/y"]).unwrap(),
            [
                ("cpu".to_string(), PathBuf::from("x")),
                ("cpuacct".into(), "x".into()),
                ("memory".into(), "/y".into())
            ]
        );
        assert_eq!(
            parse(&["a:b:c"]).unwrap_err(),
            "invalid --cgroup argument: a:b:c"
        );
        assert_eq!(
            parse(&["x", "memory:y"]).unwrap_err(),
            "invalid --cgroup argument: x (missing <controller>: prefix)"
        );
    }
}
