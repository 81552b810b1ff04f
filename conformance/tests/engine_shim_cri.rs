//! Kubernetes' path through Berth's own shim: containerd's CRI plugin with the runtime
//! handler `berth-shim` of type `io.containerd.berth.v2` (the block docs/containerd.md
//! gives, as it stands there), the shim from `target/debug` on containerd's PATH, driven
//! by `crictl` as the kubelet drives it. Each test starts a private containerd, runs pods
//! on the host's network, removes them and checks that nothing is left: no process,
//! shim, shim socket, state dir, bundle, mount or cgroup.
//!
//! Under RUNTIME=/usr/sbin/runc the pods use the handler `runc` (the runc shim with runc)
//! instead, so that a difference between the two shims is a test that passes on one side
//! only. Build the shim first: `cargo build -p containerd-shim-berth-v2`.

use std::path::PathBuf;

use berth_conformance::cri::{Cri, Traces, GREETING_SLEEPER, PID_CONTAINER};
use berth_conformance::{is_berth, unique_name, wait_until, STATE_DEADLINE};
use serde_json::{json, Value};

/// The shim type the suite's handler runs.
fn shim_type() -> &'static str {
    if is_berth() {
        "io.containerd.berth.v2"
    } else {
        "io.containerd.runc.v2"
    }
}

/// A running pod sandbox: its id and the config it was made from.
struct Pod {
    id: String,
    config: PathBuf,
}

/// `crictl runp` of a pod with the kubelet's default pid mode.
#[track_caller]
fn run_pod(cri: &Cri) -> Pod {
    let (config, id) = cri.run_pod(&unique_name(), PID_CONTAINER);
    Pod { id, config }
}

/// `crictl create` and `start` of container `name` in `pod` running `command` with
/// `resources`; returns its id once it runs (or, for a command that ends at once, has
/// started).
#[track_caller]
fn start_container(cri: &Cri, pod: &Pod, name: &str, command: &[&str], resources: Value) -> String {
    let linux = json!({
        "resources": resources,
        "security_context": { "namespace_options": { "pid": PID_CONTAINER } },
    });
    let id = cri.create_container(&pod.id, &pod.config, name, command, linux);
    cri.crictl(&["start", &id]).ok();
    id
}

/// `stop` and `rm` of a container.
#[track_caller]
fn remove_container(cri: &Cri, id: &str) {
    cri.crictl(&["stop", "--timeout", "10", id]).ok();
    cri.crictl(&["rm", id]).ok();
}

/// `stopp` and `rmp` of a pod, which then is no longer listed.
#[track_caller]
fn remove_pod(cri: &Cri, pod: &Pod) {
    cri.crictl(&["stopp", &pod.id]).ok();
    cri.crictl(&["rmp", &pod.id]).ok();
    let listed = cri.crictl(&["pods", "-q"]);
    assert!(!listed.stdout.contains(&pod.id), "{}", listed.describe());
}

/// The container's v1 cgroup file `file` of `controller`, read on the host.
fn host_cgroup_value(cri: &Cri, controller: &str, id: &str, file: &str) -> String {
    let path = cri.cgroup_dir(controller, id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The whole life of a pod and its container through the shim, as the kubelet drives
/// it: runp, create, start, logs, exec -s, streaming exec, stats, update, stop, rm,
/// stopp, rmp.
#[test]
fn a_pod_runs_through_the_shim_and_leaves_nothing() {
    let Some(cri) = Cri::start_shim() else {
        return;
    };
    let pod = run_pod(&cri);
    let sandbox = cri.inspect("inspectp", &pod.id);
    assert_eq!(sandbox["status"]["state"], "SANDBOX_READY", "{sandbox}");
    assert_eq!(
        sandbox["status"]["runtimeHandler"],
        cri.handler(),
        "{sandbox}"
    );
    assert_eq!(sandbox["info"]["runtimeType"], shim_type(), "{sandbox}");
    let limits = json!({
        "memory_limit_in_bytes": 64 << 20,
        "cpu_period": 100000,
        "cpu_quota": 20000,
    });
    let container = start_container(&cri, &pod, "main", GREETING_SLEEPER, limits);
    cri.wait_container_state(&container, "CONTAINER_RUNNING");

    let logged = wait_until(STATE_DEADLINE, || {
        cri.crictl(&["logs", &container])
            .stdout
            .contains("hello-from-42")
    });
    assert!(logged, "{}", cri.crictl(&["logs", &container]).describe());

    // ExecSync (exec probes) and the streaming exec (`kubectl exec`), with exit codes.
    let probe = "echo pid1=$(cat /proc/1/comm) out-$((6*7)); echo to-stderr >&2; exit 3";
    let sync = cri.crictl(&[
        "exec",
        "--sync",
        &container,
        "sh",
        "-c",
        &probe.replace("exit 3", "exit 0"),
    ]);
    sync.ok();
    assert!(
        sync.stdout.contains("pid1=sh out-42"),
        "{}",
        sync.describe()
    );
    cri.crictl(&["exec", "--sync", &container, "sh", "-c", probe])
        .fails_with("exited with 3: to-stderr");
    let streamed = cri.crictl(&["exec", &container, "sh", "-c", probe]);
    assert!(
        streamed.stdout.contains("pid1=sh out-42") && streamed.stderr.contains("to-stderr"),
        "{}",
        streamed.describe()
    );
    streamed.fails_with("exit code 3");

    let stats = cri.crictl(&["stats", "-o", "json", "--id", &container]);
    stats.ok();
    let stats: Value = serde_json::from_str(&stats.stdout).expect("stats JSON");
    let entry = &stats["stats"][0];
    assert_eq!(entry["attributes"]["id"], container.as_str(), "{stats}");
    let positive = |value: &Value| {
        value
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n > 0))
    };
    assert!(
        positive(&entry["memory"]["workingSetBytes"]["value"]),
        "no memory working set: {stats}"
    );
    assert!(
        positive(&entry["cpu"]["usageCoreNanoSeconds"]["value"]),
        "no cpu usage: {stats}"
    );

    let memory = || host_cgroup_value(&cri, "memory", &container, "memory.limit_in_bytes");
    let quota = || host_cgroup_value(&cri, "cpu", &container, "cpu.cfs_quota_us");
    assert_eq!(
        (memory(), quota()),
        ((64u64 << 20).to_string(), "20000".into())
    );
    cri.crictl(&[
        "update",
        "--memory",
        &(96u64 << 20).to_string(),
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        &container,
    ])
    .ok();
    assert_eq!(
        (memory(), quota()),
        ((96u64 << 20).to_string(), "50000".into())
    );

    let traces = [
        cri.traces("inspect", &container),
        cri.traces("inspectp", &pod.id),
    ];
    cri.crictl(&["stop", "--timeout", "10", &container]).ok();
    // The TERM trap exits 0: the kubelet's "Completed".
    let status = cri.wait_container_state(&container, "CONTAINER_EXITED");
    assert_eq!(status["exitCode"], 0, "{status}");
    assert_eq!(status["reason"], "Completed", "{status}");
    cri.crictl(&["rm", &container]).ok();
    remove_pod(&cri, &pod);
    cri.assert_nothing_left(&traces);
}

/// One shim per pod: the sandbox and both containers of a pod (made concurrently) are
/// served by one shim process (one socket), which keeps no forker between requests
/// (docs/shim.md), another pod by another. Removing one container of the pod
/// leaves the other running, still served (exec) by the same shim; the shim exits with
/// the pod.
#[test]
fn a_pods_containers_share_one_shim_and_outlive_each_other() {
    let Some(cri) = Cri::start_shim() else {
        return;
    };
    let pod = run_pod(&cri);
    // Created and started at once, as the kubelet may: concurrent requests to one shim.
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| start_container(&cri, &pod, "one", GREETING_SLEEPER, json!({})));
        let two = s.spawn(|| start_container(&cri, &pod, "two", GREETING_SLEEPER, json!({})));
        (one.join(), two.join())
    });
    let (one, two) = (one.expect("create one"), two.expect("create two"));
    cri.wait_container_state(&one, "CONTAINER_RUNNING");
    cri.wait_container_state(&two, "CONTAINER_RUNNING");
    let shims = cri.shims();
    assert_eq!(shims.len(), 1, "one pod, one shim: {shims:#?}");
    if is_berth() {
        let none = wait_until(STATE_DEADLINE, || cri.forkers().is_empty());
        assert!(
            none,
            "a forker stays between requests: {:#?}",
            cri.forkers()
        );
    }
    let socket = cri.shim_socket(&pod.id);
    assert!(socket.is_some(), "no shim address for the sandbox");
    for container in [&one, &two] {
        assert_eq!(
            cri.shim_socket(container),
            socket,
            "container {container} has a shim of its own"
        );
    }

    let other = run_pod(&cri);
    let shims_of_two_pods = cri.shims();
    assert_eq!(
        shims_of_two_pods.len(),
        2,
        "two pods, two shims: {shims_of_two_pods:#?}"
    );
    assert_ne!(cri.shim_socket(&other.id), socket);

    let traces = [
        cri.traces("inspect", &one),
        cri.traces("inspect", &two),
        cri.traces("inspectp", &pod.id),
        cri.traces("inspectp", &other.id),
    ];
    remove_container(&cri, &one);
    let status = cri.inspect("inspect", &two)["status"].clone();
    assert_eq!(status["state"], "CONTAINER_RUNNING", "{status}");
    let exec = cri.crictl(&["exec", "--sync", &two, "sh", "-c", "echo still-$((6*7))"]);
    exec.ok();
    assert!(exec.stdout.contains("still-42"), "{}", exec.describe());
    assert_eq!(
        cri.shims(),
        shims_of_two_pods,
        "the shims changed when one container was removed"
    );

    remove_container(&cri, &two);
    remove_pod(&cri, &pod);
    remove_pod(&cri, &other);
    cri.assert_nothing_left(&traces);
    assert_eq!(
        cri.shims(),
        Vec::<String>::new(),
        "shims outlive their pods"
    );
}

/// A container's init killed from the host is exited with 137 and the reason `Error`;
/// the exit is its own: the pod's other container runs on.
#[test]
fn a_container_killed_from_the_host_is_exited_with_137_and_error() {
    let Some(cri) = Cri::start_shim() else {
        return;
    };
    let pod = run_pod(&cri);
    let killed = start_container(&cri, &pod, "killed", GREETING_SLEEPER, json!({}));
    let spared = start_container(&cri, &pod, "spared", GREETING_SLEEPER, json!({}));
    cri.wait_container_state(&killed, "CONTAINER_RUNNING");
    cri.wait_container_state(&spared, "CONTAINER_RUNNING");
    let traces = [
        cri.traces("inspect", &killed),
        cri.traces("inspect", &spared),
        cri.traces("inspectp", &pod.id),
    ];
    // SAFETY: kill(2) on the container's init, which this test's pod started.
    assert_eq!(
        unsafe { libc::kill(traces[0].pid as i32, libc::SIGKILL) },
        0
    );
    let status = cri.wait_container_state(&killed, "CONTAINER_EXITED");
    assert_eq!(status["exitCode"], 137, "{status}");
    assert_eq!(status["reason"], "Error", "{status}");
    let status = cri.inspect("inspect", &spared)["status"].clone();
    assert_eq!(status["state"], "CONTAINER_RUNNING", "{status}");
    let sandbox = cri.inspect("inspectp", &pod.id);
    assert_eq!(sandbox["status"]["state"], "SANDBOX_READY", "{sandbox}");
    remove_container(&cri, &killed);
    remove_container(&cri, &spared);
    remove_pod(&cri, &pod);
    cri.assert_nothing_left(&traces);
}

/// A container over its memory limit is exited with the reason `OOMKilled` (the shim's
/// TaskOOM event reached the CRI plugin before the exit).
#[test]
fn an_oom_killed_container_says_oomkilled() {
    let Some(cri) = Cri::start_shim() else {
        return;
    };
    let pod = run_pod(&cri);
    let sandbox_traces = cri.traces("inspectp", &pod.id);
    // dd fills a 64 MiB buffer: the cgroup's OOM killer ends it.
    let hog = [
        "sh",
        "-c",
        "echo allocating; dd if=/dev/zero of=/dev/null bs=64M count=1",
    ];
    let limits = json!({ "memory_limit_in_bytes": 16 << 20 });
    let container = start_container(&cri, &pod, "hog", &hog, limits);
    let status = cri.wait_container_reason(&container, "OOMKilled");
    assert_eq!(status["reason"], "OOMKilled", "{status}");
    assert_eq!(status["exitCode"], 137, "{status}");
    // The container exited at once: only what is named by its id can be checked.
    let traces = [
        Traces {
            id: container.clone(),
            pid: 0,
            shim_socket: None,
        },
        sandbox_traces,
    ];
    cri.crictl(&["rm", &container]).ok();
    remove_pod(&cri, &pod);
    cri.assert_nothing_left(&traces);
}
