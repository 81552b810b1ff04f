//! Docker (Debian's docker.io 20.10) with the runtime under test registered in
//! daemon.json, on a private dockerd and an image made offline with `docker import`:
//! the runtime's registration, run, exec, stop, kill, pause, top, stats, limits and
//! update, and the daemon's teardown. engine_docker_flags.rs has the container flags.
//! docs/docker.md describes this setup; these tests are what checks it.

use std::fs;
use std::time::{Duration, Instant};

use berth_conformance::docker::{Docker, RUNTIME_NAME};
use berth_conformance::{cgroups_named, mounts_mentioning, pid_alive, unique_name, SLEEPER};

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `docker run -d --name NAME flags... IMAGE SLEEPER`; returns the container's id.
fn run_sleeper(docker: &Docker, name: &str, flags: &[&str]) -> String {
    let mut all = vec!["-d", "--name", name];
    all.extend(flags);
    let args = docker.run_args(&all, SLEEPER);
    docker.docker(&strs(&args)).ok();
    docker.inspect(name, "{{.Id}}")
}

/// The runtime registered in daemon.json is listed by `docker info`, is the default,
/// and is what runs a container made without `--runtime`: its own `state` command
/// knows the container, under the root dockerd gives it.
#[test]
fn daemon_json_registers_the_runtime_as_the_default() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let runtimes = docker.docker(&["info", "--format", "{{json .Runtimes}}"]);
    let runtimes: serde_json::Value =
        serde_json::from_str(runtimes.ok().stdout.trim()).expect("docker info prints JSON");
    assert_eq!(
        runtimes[RUNTIME_NAME]["path"],
        berth_conformance::runtime().to_string_lossy().as_ref(),
        "{runtimes}"
    );
    let default = docker.docker(&["info", "--format", "{{.DefaultRuntime}}"]);
    assert_eq!(default.ok().stdout.trim(), RUNTIME_NAME);

    let name = unique_name();
    let args: Vec<&str> = [
        "run",
        "-d",
        "--name",
        &name,
        berth_conformance::docker::IMAGE,
    ]
    .into_iter()
    .chain(SLEEPER.iter().copied())
    .collect();
    docker.docker(&args).ok();
    let id = docker.inspect(&name, "{{.Id}}");
    let pid = docker.pid(&name);
    assert_eq!(
        docker.inspect(&name, "{{.HostConfig.Runtime}}"),
        RUNTIME_NAME
    );
    assert!(docker.runtime_root().join(&id).is_dir());
    let state = docker.runtime_state(&id);
    let state: serde_json::Value =
        serde_json::from_str(&state.ok().stdout).expect("state prints JSON");
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"], pid, "{state}");
    docker.docker(&["rm", "-f", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// `dockerd --add-runtime berth=PATH`, with no `runtimes` in daemon.json, registers
/// the runtime as well: it runs the container and knows its state.
#[test]
fn add_runtime_flag_registers_the_runtime() {
    let Some(docker) = Docker::start_with_add_runtime() else {
        return;
    };
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(docker.daemon_json_path()).unwrap()).unwrap();
    assert!(config.get("runtimes").is_none(), "{config}");
    let name = unique_name();
    let id = run_sleeper(&docker, &name, &[]);
    let pid = docker.pid(&name);
    assert_eq!(
        docker.inspect(&name, "{{.HostConfig.Runtime}}"),
        RUNTIME_NAME
    );
    let state = docker.runtime_state(&id);
    let state: serde_json::Value =
        serde_json::from_str(&state.ok().stdout).expect("state prints JSON");
    assert_eq!(state["pid"], pid, "{state}");
    let out = docker.docker(&["exec", &name, "sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    docker.docker(&["rm", "-f", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// `run` passes the exit code and output through; `--rm` removes the container; `-t`
/// gives the process a terminal.
#[test]
fn run_rm_and_tty() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let args = docker.run_args(
        &["--name", &name],
        &["sh", "-c", "echo out-$((6*7)); exit 3"],
    );
    let out = docker.docker(&strs(&args));
    assert_eq!(out.code, 3, "{}", out.describe());
    assert_eq!(out.stdout, "out-42\n", "{}", out.describe());
    assert_eq!(docker.inspect(&name, "{{.State.ExitCode}}"), "3");
    let id = docker.inspect(&name, "{{.Id}}");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[]);

    let cidfile = docker.dir().join(format!("{name}.cid"));
    let cidfile_arg = cidfile.to_string_lossy().into_owned();
    let args = docker.run_args(
        &["--rm", "--cidfile", &cidfile_arg],
        &["sh", "-c", "echo gone; exit 2"],
    );
    let out = docker.docker(&strs(&args));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (2, "gone\n"),
        "{}",
        out.describe()
    );
    let id = fs::read_to_string(&cidfile).expect("docker wrote the cidfile");
    let all = docker.docker(&["ps", "--all", "--quiet", "--no-trunc"]);
    assert!(
        !all.ok().stdout.contains(id.trim()),
        "--rm left the container"
    );
    docker.assert_nothing_left(id.trim(), &[]);

    let args = docker.run_args(
        &["-t", "--rm", "--cidfile", &format!("{cidfile_arg}.t")],
        &[
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo is-a-tty; tty; exit 5",
        ],
    );
    let out = docker.docker_in_terminal(&strs(&args));
    assert_eq!(out.code, 5, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());
    assert!(out.stdout.contains("/dev/pts/0"), "{}", out.describe());
    let id = fs::read_to_string(format!("{cidfile_arg}.t")).expect("cidfile");
    docker.assert_nothing_left(id.trim(), &[]);
}

/// A missing or non-executable command fails `run` with the runtime's message, which
/// docker reads to choose its exit code (127 for not found, 126 for not executable).
#[test]
fn run_errors_give_dockers_exit_codes() {
    let Some(docker) = Docker::start() else {
        return;
    };
    for (command, code, message) in [
        (
            "/no/such",
            127,
            "exec: \"/no/such\": stat /no/such: no such file or directory",
        ),
        (
            "nosuchcmd",
            127,
            "exec: \"nosuchcmd\": executable file not found in $PATH",
        ),
        (
            "/etc/passwd",
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
    ] {
        let name = unique_name();
        let args = docker.run_args(&["--name", &name], &[command]);
        let out = docker.docker(&strs(&args));
        assert_eq!(out.code, code, "{}", out.describe());
        assert!(out.stderr.contains(message), "{}", out.describe());
        let id = docker.inspect(&name, "{{.Id}}");
        docker.docker(&["rm", &name]).ok();
        docker.assert_nothing_left(&id, &[]);
    }
}

/// `exec` runs in the container with its exit code, as another user, in another
/// directory, with more environment, and with a terminal; `stop` sends SIGTERM first.
#[test]
fn exec_with_user_workdir_env_and_tty() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let id = run_sleeper(&docker, &name, &[]);
    let pid = docker.pid(&name);

    let out = docker.docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo pid1=$(cat /proc/1/comm); exit 4",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (4, "pid1=sh\n"),
        "{}",
        out.describe()
    );

    let out = docker.docker(&[
        "exec",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        &name,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO",
    ]);
    assert_eq!(
        out.ok().stdout,
        "1000\n1000\n/tmp\nbar\n",
        "{}",
        out.describe()
    );

    let out = docker.docker_in_terminal(&[
        "exec",
        "-t",
        &name,
        "sh",
        "-c",
        "test -t 0 && echo is-a-tty; exit 6",
    ]);
    assert_eq!(out.code, 6, "{}", out.describe());
    assert!(out.stdout.contains("is-a-tty"), "{}", out.describe());

    let out = docker.docker(&["exec", &name, "/no/such"]);
    assert_eq!(out.code, 126, "{}", out.describe());
    assert!(
        out.combined()
            .contains("stat /no/such: no such file or directory"),
        "{}",
        out.describe()
    );

    // The sleeper's trap exits 0 on SIGTERM, well before the 30 s would run out.
    let started = Instant::now();
    docker.docker(&["stop", "--time", "30", &name]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stop waited for the timeout"
    );
    assert_eq!(docker.inspect(&name, "{{.State.ExitCode}}"), "0");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// `stop` kills a process that ignores SIGTERM once the timeout runs out; `kill` kills.
#[test]
fn stop_after_the_timeout_and_kill() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let args = docker.run_args(
        &["-d", "--name", &name],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 1 & wait $!; done",
        ],
    );
    docker.docker(&strs(&args)).ok();
    let id = docker.inspect(&name, "{{.Id}}");
    let pid = docker.pid(&name);
    let ready = berth_conformance::wait_until(Duration::from_secs(10), || {
        docker.docker(&["logs", &name]).stdout.contains("ready")
    });
    assert!(ready, "the trap was never set");
    let started = Instant::now();
    docker.docker(&["stop", "--time", "2", &name]).ok();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "stop did not wait for SIGTERM"
    );
    assert_eq!(docker.inspect(&name, "{{.State.ExitCode}}"), "137");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);

    let name = unique_name();
    let id = run_sleeper(&docker, &name, &[]);
    let pid = docker.pid(&name);
    docker.docker(&["kill", &name]).ok();
    docker.docker(&["wait", &name]).ok();
    assert_eq!(docker.inspect(&name, "{{.State.ExitCode}}"), "137");
    docker.docker(&["rm", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// `pause` freezes the container and `unpause` thaws it; `top` and `stats` see it.
#[test]
fn pause_unpause_top_and_stats() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let id = run_sleeper(&docker, &name, &[]);
    let pid = docker.pid(&name);

    docker.docker(&["pause", &name]).ok();
    assert_eq!(docker.inspect(&name, "{{.State.Status}}"), "paused");
    let frozen = berth_conformance::wait_until(Duration::from_secs(5), || {
        cgroup_freezer_state(&docker, &id).is_some_and(|s| s == "FROZEN" || s == "1")
    });
    assert!(
        frozen,
        "not frozen: {:?}",
        cgroup_freezer_state(&docker, &id)
    );
    docker.docker(&["unpause", &name]).ok();
    assert_eq!(docker.inspect(&name, "{{.State.Status}}"), "running");
    let out = docker.docker(&["exec", &name, "true"]);
    out.ok();

    let out = docker.docker(&["top", &name, "-o", "pid,args"]);
    let top = out.ok().stdout.clone();
    assert!(
        top.lines()
            .any(|l| l.trim_start().starts_with(&pid.to_string()) && l.contains("trap")),
        "top does not list the init {pid}: {top}"
    );

    let out = docker.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        &name,
    ]);
    let stats = out.ok().stdout.trim().to_owned();
    let fields: Vec<&str> = stats.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&name.as_str()), "{stats}");
    let pids: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(pids >= 1, "stats counts no process: {stats}");
    assert!(
        !stats.contains("0B / 0B"),
        "stats reads no memory use: {stats}"
    );

    docker.docker(&["rm", "-f", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// The freezer state of container `id`'s cgroup (v1 freezer.state, or v2 cgroup.freeze).
fn cgroup_freezer_state(docker: &Docker, id: &str) -> Option<String> {
    let parent = docker.cgroup_parent();
    [
        format!("/sys/fs/cgroup/freezer/{parent}/{id}/freezer.state"),
        format!("/sys/fs/cgroup/{parent}/{id}/cgroup.freeze"),
    ]
    .iter()
    .find_map(|f| fs::read_to_string(f).ok())
    .map(|s| s.trim().to_owned())
}

/// Prints `mem=LIMIT cpu=QUOTA PERIOD pids=MAX` from the container's own cgroup, v1 or v2.
const LIMITS: &str = "cd /sys/fs/cgroup; if [ -f memory.max ]; then \
    echo mem=$(cat memory.max) cpu=$(cat cpu.max) pids=$(cat pids.max); else \
    echo mem=$(cat memory/memory.limit_in_bytes) \
    cpu=$(cat cpu/cpu.cfs_quota_us) $(cat cpu/cpu.cfs_period_us) pids=$(cat pids/pids.max); fi";

/// `--memory`, `--cpus` and `--pids-limit` reach the container's cgroup, and `update`
/// changes the memory limit of a running container.
#[test]
fn limits_reach_the_cgroup_and_update_changes_them() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let id = run_sleeper(
        &docker,
        &name,
        &["--memory", "64m", "--cpus", "0.5", "--pids-limit", "50"],
    );
    let pid = docker.pid(&name);
    let out = docker.docker(&["exec", &name, "sh", "-c", LIMITS]);
    assert_eq!(
        out.ok().stdout,
        "mem=67108864 cpu=50000 100000 pids=50\n",
        "{}",
        out.describe()
    );

    docker
        .docker(&[
            "update",
            "--memory",
            "128m",
            "--memory-swap",
            "256m",
            "--cpus",
            "1",
            &name,
        ])
        .ok();
    let out = docker.docker(&["exec", &name, "sh", "-c", LIMITS]);
    assert_eq!(
        out.ok().stdout,
        "mem=134217728 cpu=100000 100000 pids=50\n",
        "{}",
        out.describe()
    );
    assert_eq!(docker.inspect(&name, "{{.HostConfig.Memory}}"), "134217728");

    docker.docker(&["rm", "-f", &name]).ok();
    docker.assert_nothing_left(&id, &[pid]);
}

/// Dropping the harness's dockerd, with a container still running, leaves no daemon,
/// containerd, shim or container process, no mount, no cgroup and no directory.
#[test]
fn a_dropped_dockerd_leaves_nothing_behind() {
    let Some(docker) = Docker::start() else {
        return;
    };
    let name = unique_name();
    let id = run_sleeper(&docker, &name, &[]);
    let mut pids = docker.daemon_pids();
    assert_eq!(pids.len(), 2, "no dockerd or containerd pid: {pids:?}");
    pids.push(docker.pid(&name));
    let shims = docker.shim_pids();
    assert!(!shims.is_empty(), "no shim found for {id}");
    pids.extend(shims);
    let dir = docker.dir().to_path_buf();
    let parent = docker.cgroup_parent().to_owned();
    assert!(
        !cgroups_named(&id).is_empty(),
        "the container has no cgroup"
    );
    drop(docker);
    let gone = berth_conformance::wait_until(Duration::from_secs(10), || {
        pids.iter().all(|p| !pid_alive(*p))
    });
    assert!(
        gone,
        "left running: {:?}",
        pids.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>()
    );
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert!(
        mounts_mentioning(&dir).is_empty(),
        "{:?}",
        mounts_mentioning(&dir)
    );
    assert!(
        cgroups_named(&parent).is_empty(),
        "{:?}",
        cgroups_named(&parent)
    );
    assert!(cgroups_named(&id).is_empty(), "{:?}", cgroups_named(&id));
}

/// docs/docker.md, whose daemon.json every test here starts from, names this suite and
/// selects the runtime by the name that daemon.json gives it.
#[test]
fn the_docker_doc_names_this_suite_and_its_runtime() {
    let doc = include_str!("../../docs/docker.md");
    for suite in ["engine_docker.rs", "engine_docker_flags.rs"] {
        assert!(
            doc.contains(&format!("conformance/tests/{suite}")),
            "{suite}"
        );
    }
    let config = berth_conformance::docker::documented_daemon_json();
    assert!(
        config["runtimes"][RUNTIME_NAME]["path"].is_string(),
        "{config}"
    );
    for usage in [
        format!("docker run --runtime {RUNTIME_NAME} "),
        format!("\"default-runtime\": \"{RUNTIME_NAME}\""),
        format!("--add-runtime {RUNTIME_NAME}="),
    ] {
        assert!(
            doc.contains(&usage),
            "docs/docker.md does not show {usage:?}"
        );
    }
}
