//! Kubernetes' path: containerd's CRI plugin with the runtime handler `berth` (configured
//! as docs/containerd.md says), driven by `crictl` as the kubelet drives it. Each test
//! starts a private containerd with the CRI plugin, runs a pod sandbox on the host's
//! network with a container in it, and removes both at the end, checking that nothing is
//! left: no process, shim, shim socket, state dir, bundle, mount or cgroup.
//!
//! Under RUNTIME=/usr/sbin/runc the pods use the handler `runc` instead, so the suite
//! also checks itself against runc.

use berth_conformance::cri::{Cri, Traces, GREETING_SLEEPER, PID_CONTAINER, PID_POD};
use berth_conformance::cri_config::{containerd_doc, documented_runtime_class_handlers};
use berth_conformance::{pid_alive, runtime, unique_name, wait_until};
use serde_json::{json, Value};

/// A pod and its one container.
struct Pod {
    id: String,
    container: String,
}

/// Runs a pod with the pid namespace mode `pid` (`PID_CONTAINER` is the kubelet's
/// default) and creates a container in it running `command` with `resources`, as the
/// kubelet does; the container is not started.
#[track_caller]
fn create_pod(cri: &Cri, command: &[&str], resources: Value, pid: i64) -> Pod {
    let name = unique_name();
    let (config, id) = cri.run_pod(&name, pid);
    let linux = json!({
        "resources": resources,
        "security_context": { "namespace_options": { "pid": pid } },
    });
    let container = cri.create_container(&id, &config, "main", command, linux);
    Pod { id, container }
}

/// `create_pod` with the kubelet's default pid mode, then `crictl start`.
#[track_caller]
fn start_pod(cri: &Cri, command: &[&str], resources: Value) -> Pod {
    let pod = create_pod(cri, command, resources, PID_CONTAINER);
    cri.crictl(&["start", &pod.container]).ok();
    pod
}

/// `stop`, `rm`, `stopp`, `rmp`, then nothing of `traces` may be left.
#[track_caller]
fn remove_pod(cri: &Cri, pod: &Pod, traces: &[Traces]) {
    cri.crictl(&["stop", "--timeout", "10", &pod.container])
        .ok();
    cri.crictl(&["rm", &pod.container]).ok();
    cri.crictl(&["stopp", &pod.id]).ok();
    cri.crictl(&["rmp", &pod.id]).ok();
    let listed = cri.crictl(&["pods", "-q"]);
    assert!(!listed.stdout.contains(&pod.id), "{}", listed.describe());
    cri.assert_nothing_left(traces);
}

fn traces_of(cri: &Cri, pod: &Pod) -> Vec<Traces> {
    vec![
        cri.traces("inspect", &pod.container),
        cri.traces("inspectp", &pod.id),
    ]
}

#[test]
fn a_pod_runs_with_the_handler_and_leaves_nothing() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let pod = start_pod(&cri, GREETING_SLEEPER, json!({}));
    let sandbox = cri.inspect("inspectp", &pod.id);
    assert_eq!(sandbox["status"]["state"], "SANDBOX_READY", "{sandbox}");
    assert_eq!(
        sandbox["status"]["runtimeHandler"],
        cri.handler(),
        "{sandbox}"
    );
    // The shim runs the handler's binary: the runtime under test.
    assert_eq!(
        sandbox["info"]["runtimeOptions"]["binary_name"],
        runtime().to_string_lossy().as_ref(),
        "{sandbox}"
    );
    // Host network: the pod sees the host's network namespace.
    let pause = cri.pid("inspectp", &pod.id);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pause}/ns/net")).ok(),
        std::fs::read_link("/proc/self/ns/net").ok(),
        "the sandbox is not on the host's network"
    );
    let status = cri.wait_container_state(&pod.container, "CONTAINER_RUNNING");
    assert_eq!(status["metadata"]["name"], "main", "{status}");
    // A container joins its sandbox's ipc and uts namespaces, which the runtime is given
    // as paths of the pause process, and has a pid namespace of its own.
    let container_pid = cri.pid("inspect", &pod.container);
    let ns = |pid: i64, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
    for kind in ["ipc", "uts"] {
        assert_eq!(
            ns(container_pid, kind),
            ns(pause, kind),
            "the container does not share the sandbox's {kind} namespace"
        );
    }
    assert_ne!(ns(container_pid, "pid"), ns(pause, "pid"));
    let logged = wait_until(berth_conformance::STATE_DEADLINE, || {
        cri.crictl(&["logs", &pod.container])
            .stdout
            .contains("hello-from-42")
    });
    let logs = cri.crictl(&["logs", &pod.container]);
    assert!(logged, "{}", logs.describe());
    let listed = cri.crictl(&["ps", "-q", "--pod", &pod.id]);
    assert_eq!(listed.stdout.trim(), pod.container, "{}", listed.describe());
    let traces = traces_of(&cri, &pod);
    cri.crictl(&["stop", "--timeout", "10", &pod.container])
        .ok();
    // The TERM trap exits 0: the kubelet's "Completed".
    let status = cri.wait_container_state(&pod.container, "CONTAINER_EXITED");
    assert_eq!(status["exitCode"], 0, "{status}");
    assert_eq!(status["reason"], "Completed", "{status}");
    remove_pod(&cri, &pod, &traces);
}

/// The live processes in the pid namespace `ns` (a /proc/PID/ns/pid link) whose command
/// line is `cmdline` (its arguments joined by spaces).
fn processes_in_pid_namespace(ns: &std::path::Path, cmdline: &str) -> Vec<i64> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|pid| {
            pid_alive(*pid)
                && std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == ns)
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                    c.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(String::from_utf8_lossy)
                        .collect::<Vec<_>>()
                        .join(" ")
                        == cmdline
                })
        })
        .collect()
}

/// Kubernetes' shareProcessNamespace: the container joins the sandbox's pid namespace,
/// whose init is the pause process, so a process the container leaves behind outlives
/// the container's init. When the init exits, the shim kills every process left in the
/// container's cgroup (`kill --all`): only the pause process may remain.
#[test]
fn a_pod_sharing_its_pid_namespace_loses_a_stopped_containers_processes() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let pod = create_pod(&cri, GREETING_SLEEPER, json!({}), PID_POD);
    cri.crictl(&["start", &pod.container]).ok();
    cri.wait_container_state(&pod.container, "CONTAINER_RUNNING");
    let pause = cri.pid("inspectp", &pod.id);
    let container_pid = cri.pid("inspect", &pod.container);
    let ns = |pid: i64| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let pod_ns = ns(pause).expect("the pod's pid namespace");
    assert_eq!(
        ns(container_pid),
        Some(pod_ns.clone()),
        "no shared pid namespace"
    );
    // A process the container leaves running in the background.
    let background = "sleep 1000 </dev/null >/dev/null 2>&1 & echo started";
    let out = cri.crictl(&["exec", "--sync", &pod.container, "sh", "-c", background]);
    out.ok();
    let background = processes_in_pid_namespace(&pod_ns, "sleep 1000");
    assert_eq!(background.len(), 1, "no background sleep: {background:?}");
    let traces = traces_of(&cri, &pod);
    cri.crictl(&["stop", "--timeout", "10", &pod.container])
        .ok();
    let status = cri.wait_container_state(&pod.container, "CONTAINER_EXITED");
    assert_eq!(status["exitCode"], 0, "{status}");
    let gone = wait_until(berth_conformance::STATE_DEADLINE, || {
        !pid_alive(background[0])
    });
    assert!(
        gone,
        "the stopped container's background process {} lives on in the pod",
        background[0]
    );
    assert!(
        pid_alive(pause),
        "the pod's pause process died with the container"
    );
    remove_pod(&cri, &pod, &traces);
}

#[test]
fn exec_sync_and_streaming_run_in_the_container_with_their_exit_codes() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let pod = start_pod(&cri, GREETING_SLEEPER, json!({}));
    cri.wait_container_state(&pod.container, "CONTAINER_RUNNING");
    let probe = "echo pid1=$(cat /proc/1/comm) out-$((6*7)); echo to-stderr >&2; exit 3";
    // ExecSync, as the kubelet's exec probes use it; crictl 1.26 prints the output of a
    // command that succeeds, and the exit code and stderr of one that fails.
    let sync = cri.crictl(&["exec", "--sync", &pod.container, "sh", "-c", "exit 0"]);
    sync.ok();
    let seen = cri.crictl(&["exec", "--sync", &pod.container, "sh", "-c", probe]);
    seen.fails_with("exited with 3: to-stderr");
    let seen = cri.crictl(&[
        "exec",
        "--sync",
        &pod.container,
        "sh",
        "-c",
        &probe.replace("exit 3", "exit 0"),
    ]);
    seen.ok();
    assert!(
        seen.stdout.contains("pid1=sh out-42"),
        "{}",
        seen.describe()
    );
    // Exec through the CRI streaming server, as `kubectl exec` uses it.
    let streamed = cri.crictl(&["exec", &pod.container, "sh", "-c", probe]);
    assert!(
        streamed.stdout.contains("pid1=sh out-42") && streamed.stderr.contains("to-stderr"),
        "{}",
        streamed.describe()
    );
    streamed.fails_with("exit code 3");
    let streamed = cri.crictl(&["exec", &pod.container, "true"]);
    streamed.ok();
    // `kubectl exec -it`: a terminal of the container's own.
    let tty = cri.crictl_in_terminal(&["exec", "-it", &pod.container, "sh", "-c", "tty; exit 4"]);
    assert!(tty.stdout.contains("/dev/pts/"), "{}", tty.describe());
    tty.fails_with("exit code 4");
    // A probe that outlives its timeout is killed: the exec's process is gone.
    let container_ns = std::fs::read_link(format!(
        "/proc/{}/ns/pid",
        cri.pid("inspect", &pod.container)
    ))
    .expect("the container's pid namespace");
    let late = cri.crictl(&[
        "exec",
        "--sync",
        "--timeout",
        "2",
        &pod.container,
        "sleep",
        "30",
    ]);
    late.fails_with("timed out");
    let killed = wait_until(berth_conformance::STATE_DEADLINE, || {
        processes_in_pid_namespace(&container_ns, "sleep 30").is_empty()
    });
    assert!(killed, "the timed-out exec still runs");
    let traces = traces_of(&cri, &pod);
    remove_pod(&cri, &pod, &traces);
}

/// The container's v1 cgroup file `file` of `controller`, read on the host.
fn host_cgroup_value(cri: &Cri, controller: &str, id: &str, file: &str) -> String {
    let path = cri.cgroup_dir(controller, id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
fn stats_and_update_reach_the_containers_cgroup() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let limits = json!({
        "memory_limit_in_bytes": 64 << 20,
        "cpu_period": 100000,
        "cpu_quota": 20000,
    });
    let pod = start_pod(&cri, GREETING_SLEEPER, limits);
    cri.wait_container_state(&pod.container, "CONTAINER_RUNNING");
    let memory = |file| host_cgroup_value(&cri, "memory", &pod.container, file);
    let cpu = |file| host_cgroup_value(&cri, "cpu", &pod.container, file);
    assert_eq!(memory("memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(cpu("cpu.cfs_quota_us"), "20000");

    let stats = cri.crictl(&["stats", "-o", "json", "--id", &pod.container]);
    stats.ok();
    let stats: Value = serde_json::from_str(&stats.stdout).expect("stats JSON");
    let entry = &stats["stats"][0];
    assert_eq!(entry["attributes"]["id"], pod.container.as_str(), "{stats}");
    let working_set: u64 = entry["memory"]["workingSetBytes"]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(working_set > 0, "no memory working set: {stats}");
    assert!(
        entry["cpu"]["usageCoreNanoSeconds"]["value"]
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n > 0)),
        "no cpu usage: {stats}"
    );

    // UpdateContainerResources, as the kubelet's in-place resize uses it: the shim
    // calls `update --resources -`.
    cri.crictl(&[
        "update",
        "--memory",
        &(96u64 << 20).to_string(),
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        &pod.container,
    ])
    .ok();
    assert_eq!(memory("memory.limit_in_bytes"), (96u64 << 20).to_string());
    assert_eq!(cpu("cpu.cfs_quota_us"), "50000");
    let inside = cri.crictl(&[
        "exec",
        "--sync",
        &pod.container,
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(
        inside.stdout.trim(),
        (96u64 << 20).to_string(),
        "{}",
        inside.describe()
    );
    let resources = &cri.inspect("inspect", &pod.container)["status"]["resources"]["linux"];
    if !resources.is_null() {
        assert_eq!(resources["cpuQuota"], "50000", "{resources}");
    }
    let traces = traces_of(&cri, &pod);
    remove_pod(&cri, &pod, &traces);
}

#[test]
fn a_container_killed_from_the_host_is_exited_with_its_code() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let pod = start_pod(&cri, GREETING_SLEEPER, json!({}));
    cri.wait_container_state(&pod.container, "CONTAINER_RUNNING");
    let traces = traces_of(&cri, &pod);
    let pid = traces[0].pid;
    // SAFETY: kill(2) on the container's init, which this test's pod started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let status = cri.wait_container_state(&pod.container, "CONTAINER_EXITED");
    assert_eq!(status["exitCode"], 137, "{status}");
    assert_eq!(status["reason"], "Error", "{status}");
    // The sandbox is unaffected.
    let sandbox = cri.inspect("inspectp", &pod.id);
    assert_eq!(sandbox["status"]["state"], "SANDBOX_READY", "{sandbox}");
    remove_pod(&cri, &pod, &traces);
}

#[test]
fn an_oom_killed_container_says_oomkilled() {
    let Some(cri) = Cri::start() else {
        return;
    };
    let limits = json!({ "memory_limit_in_bytes": 16 << 20 });
    // dd fills a 64 MiB buffer: the cgroup's OOM killer ends it. A second first: the
    // runc shim starts watching the cgroup for OOM kills only once its runtime's `start`
    // has returned (containerd's `Start`), and an OOM kill before that is never reported
    // ("Error"): one CI run in a few saw it with Berth, whose `start` returns sooner.
    // Berth's own shim also reads the cgroup's OOM count when the init exits, so its
    // twin (engine_shim_cri.rs) has no pause.
    let hog = [
        "sh",
        "-c",
        "echo allocating; sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1",
    ];
    let pod = create_pod(&cri, &hog, limits, PID_CONTAINER);
    // The container exits at once: only what is named by its id can be checked.
    let mut traces = vec![Traces {
        id: pod.container.clone(),
        pid: 0,
        shim_socket: None,
    }];
    traces.push(cri.traces("inspectp", &pod.id));
    cri.crictl(&["start", &pod.container]).ok();
    let status = cri.wait_container_reason(&pod.container, "OOMKilled");
    assert_eq!(status["reason"], "OOMKilled", "{status}");
    assert_eq!(status["exitCode"], 137, "{status}");
    remove_pod(&cri, &pod, &traces);
}

/// docs/containerd.md is what the suite runs: `Cri::start` takes the handler's tables
/// from it (and fails when they are missing); its first RuntimeClass must name that
/// handler, every RuntimeClass a runtime its config.toml blocks define (Berth's own
/// shim has one too), and the doc must say this suite tests it.
#[test]
fn the_doc_names_the_handler_the_suite_runs() {
    let handlers = documented_runtime_class_handlers();
    assert_eq!(
        handlers.first().map(String::as_str),
        Some("berth"),
        "{}: the first RuntimeClass handler must be `berth`, the runtime's name in config.toml",
        containerd_doc().display()
    );
    let doc = std::fs::read_to_string(containerd_doc()).expect("read docs/containerd.md");
    for handler in &handlers {
        let table =
            format!("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{handler}]");
        assert!(
            doc.contains(&table),
            "docs/containerd.md's RuntimeClass names handler {handler:?}, which none of its config.toml blocks defines"
        );
    }
    let tested = doc
        .split("## What is tested")
        .nth(1)
        .expect("docs/containerd.md has a \"What is tested\" section");
    assert!(
        tested.contains("conformance/tests/engine_cri.rs"),
        "docs/containerd.md's \"What is tested\" does not name engine_cri.rs"
    );
}

/// What a container sees of itself, one fact per line: identity, capabilities, seccomp
/// and no_new_privs, whether its rootfs is writable, its mount points with their
/// per-mount options (sorted: see `differences_from_runc`), its devices, its memory limit.
const SELF_REPORT: &str = "\
echo id=$(id); grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
touch /probe 2>&1 | sed 's/^[^:]*: //'; \
echo oom_score_adj=$(cat /proc/self/oom_score_adj); \
echo mounts; awk '{ print $5, $6 }' /proc/self/mountinfo | sort; \
echo devices; for f in /dev/* /dev/pts/*; do stat -c '%A %u %g %t:%T %n' $f; done; \
echo memory.limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
exit 7";

/// A container as the kubelet makes one for a restricted pod (the runtime's default
/// seccomp profile, a user that is not root, a read-only root filesystem, a capability
/// dropped and one added, a memory limit) looks the same to itself under Berth as under
/// runc, each as a handler of one containerd.
#[test]
fn a_restricted_container_looks_the_same_as_under_runc() {
    if !std::path::Path::new(berth_conformance::RUNC).exists() {
        return berth_conformance::skip("runc is not installed at /usr/sbin/runc");
    }
    // Under RUNTIME=runc both handlers would be runc.
    if !berth_conformance::berth_only("compares Berth with runc") {
        return;
    }
    let Some(cri) = Cri::start() else {
        return;
    };
    let linux = json!({
        "resources": { "memory_limit_in_bytes": 64 << 20 },
        "security_context": {
            "seccomp": { "profile_type": 0 },
            "run_as_user": { "value": 1000 },
            "readonly_rootfs": true,
            "no_new_privs": true,
            "capabilities": {
                "drop_capabilities": ["NET_RAW"],
                "add_capabilities": ["SYS_PTRACE"],
            },
            "namespace_options": { "pid": PID_CONTAINER },
        },
    });
    let report = |handler: &str| {
        let (config, id) = cri.run_pod_with(handler, &unique_name(), PID_CONTAINER);
        let command = ["sh", "-c", SELF_REPORT];
        let container = cri.create_container(&id, &config, "main", &command, linux.clone());
        let pod = Pod { id, container };
        let sandbox_traces = cri.traces("inspectp", &pod.id);
        cri.crictl(&["start", &pod.container]).ok();
        let status = cri.wait_container_state(&pod.container, "CONTAINER_EXITED");
        let logs = cri.crictl(&["logs", &pod.container]);
        let traces = [
            Traces {
                id: pod.container.clone(),
                pid: 0,
                shim_socket: None,
            },
            sandbox_traces,
        ];
        remove_pod(&cri, &pod, &traces);
        (status["exitCode"].clone(), logs.stdout, logs.stderr)
    };
    let ours = report("berth");
    let theirs = report("runc");
    assert_eq!(ours.0, 7, "{ours:?}");
    for fact in [
        "id=uid=1000",
        "Seccomp:\t2",
        "NoNewPrivs:\t1",
        "Read-only file system",
        "memory.limit=67108864",
    ] {
        assert!(ours.1.contains(fact), "no {fact:?} in {}", ours.1);
    }
    let differ = differences_from_runc(&ours.1, &theirs.1);
    assert!(
        differ.is_empty(),
        "the container's view differs from runc's:\n{}\n--- berth ---\n{}{}\n--- runc ---\n{}{}",
        differ.join("\n"),
        ours.1,
        ours.2,
        theirs.1,
        theirs.2
    );
    assert_eq!((ours.0, &ours.2), (theirs.0, &theirs.2));
}

/// The lines of Berth's report and runc's that differ, after what may legitimately
/// differ is made equal. Mount points are compared sorted: Berth mounts the `cgroup`
/// tree after the other mounts, once the container's cgroup exists (rootfs/mod.rs).
fn differences_from_runc(ours: &str, theirs: &str) -> Vec<String> {
    let normalise = |report: &str, is_runc: bool| -> Vec<String> {
        report
            .lines()
            .filter_map(|line| match line.split_once(' ') {
                // runc 1.1 leaves the tmpfs that holds the hierarchies writable although
                // the mount asks for `ro`; Berth makes it read-only.
                Some(("/sys/fs/cgroup", options)) if is_runc => Some(format!(
                    "/sys/fs/cgroup {}",
                    options.replacen("rw", "ro", 1)
                )),
                // On a hybrid host Berth also binds the container's directory of the
                // cgroup2 hierarchy, which runc 1.1 leaves out.
                Some(("/sys/fs/cgroup/unified", _)) if !is_runc => None,
                _ => Some(line.to_owned()),
            })
            .collect()
    };
    let (ours, theirs) = (normalise(ours, false), normalise(theirs, true));
    ours.iter()
        .filter(|l| !theirs.contains(l))
        .map(|l| format!("  berth only: {l}"))
        .chain(
            theirs
                .iter()
                .filter(|l| !ours.contains(l))
                .map(|l| format!("  runc only:  {l}")),
        )
        .collect()
}
