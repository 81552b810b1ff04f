//! Checkpoint and restore through the engines, with the runtime under test as
//! their OCI runtime: `podman container checkpoint/restore --runtime R` and
//! containerd's runc shim (`ctr containers checkpoint --task`, `ctr
//! containers restore --live`) with R as its runc binary. The engines find
//! CRIU as a user's would: `criu` on PATH, which podman, containerd, conmon
//! and the shim hand down to the runtime. Each test puts the directory of
//! the CRIU that passes `criu check` here first on PATH.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_conformance::containerd::Containerd;
use berth_conformance::criu::{criu_on_path, wait_count, STOPPABLE_COUNTER};
use berth_conformance::podman::{Podman, RUN_FLAGS};
use berth_conformance::{berth_only, pid_alive, unique_name, HostDir};

/// The status the counter exits with when asked to stop.
const COUNTER_EXIT: &str = "7";

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The counter stays where it is for a while (nothing runs it).
#[track_caller]
fn assert_count_stays(shared: &Path) {
    let before = berth_conformance::criu::read_count(shared);
    std::thread::sleep(Duration::from_millis(500));
    let after = berth_conformance::criu::read_count(shared);
    assert_eq!(after, before, "the counter went on while checkpointed");
}

/// The counter, once restored, goes on from `from` (not from zero): it
/// shows `from` or a little more at once, and then more.
#[track_caller]
fn assert_count_resumes(shared: &Path, from: u64) {
    let now = berth_conformance::criu::read_count(shared);
    assert!(
        now >= from,
        "the restored counter restarted: {now} after {from}"
    );
    let later = wait_count(shared, now + 3);
    assert!(later > from, "the restored counter does not count");
}

// ---------------------------------------------------------------- podman

/// A podman running the counter as `name`, with `shared` on /out, from
/// the busybox rootfs directory, or from `image` when given.
fn podman_counter(
    podman: &Podman,
    name: &str,
    shared: &Path,
    image: Option<&str>,
) -> (String, i64, i64) {
    let volume = format!("{}:/out", shared.display());
    let flags = ["-d", "--name", name, "-v", &volume];
    let command = ["sh", "-c", STOPPABLE_COUNTER];
    let args = match image {
        None => podman.run_args(&flags, &command),
        Some(image) => {
            let mut args = vec!["run".to_owned()];
            args.extend(flags.iter().chain(RUN_FLAGS).map(|f| f.to_string()));
            args.push(image.to_owned());
            args.extend(command.iter().map(|c| c.to_string()));
            args
        }
    };
    podman.podman(&strs(&args)).ok();
    wait_count(shared, 3);
    podman_pids(podman, name)
}

/// (id, init pid, conmon pid) of a podman container.
fn podman_pids(podman: &Podman, name: &str) -> (String, i64, i64) {
    let id = podman.inspect(name, "{{.Id}}");
    let pid = podman.inspect(name, "{{.State.Pid}}").parse().unwrap_or(0);
    let conmon = podman
        .inspect(name, "{{.State.ConmonPid}}")
        .parse()
        .unwrap_or(0);
    (id, pid, conmon)
}

#[test]
fn podman_checkpoint_and_restore_resume_the_counter() {
    if !criu_on_path() {
        return;
    }
    let Some(podman) = Podman::new() else { return };
    let shared = HostDir::new();
    let name = unique_name();
    let (id, pid, conmon) = podman_counter(&podman, &name, shared.path(), None);

    podman.podman(&["container", "checkpoint", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    assert_eq!(podman.inspect(&name, "{{.State.Checkpointed}}"), "true");
    assert_count_stays(shared.path());
    let at = berth_conformance::criu::read_count(shared.path());

    podman.podman(&["container", "restore", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(podman.inspect(&name, "{{.State.Restored}}"), "true");
    assert_count_resumes(shared.path(), at);
    let (_, restored_pid, restored_conmon) = podman_pids(&podman, &name);
    assert!(
        restored_pid > 0 && pid_alive(restored_pid),
        "podman's pid {restored_pid} for the restored container (from the runtime's pid file) is not a process"
    );

    // The restored container is an ordinary one: exec, and a second
    // checkpoint/restore round.
    let out = podman.podman(&["exec", &name, "cat", "/out/count"]);
    out.ok();
    podman.podman(&["container", "checkpoint", &name]).ok();
    let at = berth_conformance::criu::read_count(shared.path());
    podman.podman(&["container", "restore", &name]).ok();
    assert_count_resumes(shared.path(), at);
    let (_, last_pid, last_conmon) = podman_pids(&podman, &name);

    // The restored init's exit reaches conmon and podman.
    std::fs::write(shared.path().join("stop"), "").expect("write stop");
    podman.podman(&["wait", &name]).ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    assert_eq!(podman.inspect(&name, "{{.State.ExitCode}}"), COUNTER_EXIT);

    podman.podman(&["rm", "-f", "-t", "0", &name]).ok();
    podman.assert_nothing_left(
        &id,
        &[
            pid,
            conmon,
            restored_pid,
            restored_conmon,
            last_pid,
            last_conmon,
        ],
    );
}

#[test]
fn podman_checkpoint_leave_running_keeps_counting() {
    if !criu_on_path() {
        return;
    }
    let Some(podman) = Podman::new() else { return };
    let shared = HostDir::new();
    let name = unique_name();
    let (id, pid, conmon) = podman_counter(&podman, &name, shared.path(), None);

    podman
        .podman(&["container", "checkpoint", "--leave-running", &name])
        .ok();
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(
        podman.inspect(&name, "{{.State.Pid}}"),
        pid.to_string(),
        "--leave-running replaced the container's init"
    );
    let now = berth_conformance::criu::read_count(shared.path());
    wait_count(shared.path(), now + 3);

    podman.podman(&["rm", "-f", "-t", "0", &name]).ok();
    podman.assert_nothing_left(&id, &[pid, conmon]);
}

/// The busybox rootfs as an image in this podman's storage (`podman
/// import` of a tar made in the directory `scratch`): a checkpoint exported from a
/// `--rootfs` container cannot be imported (podman 4.3 looks up its empty
/// image name), one from an image can.
fn podman_image(podman: &Podman, scratch: &Path) -> String {
    let tar = scratch.join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(podman.rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of the busybox rootfs failed");
    let image = "berth.test/busybox-checkpoint:latest";
    podman
        .podman(&["import", &tar.to_string_lossy(), image])
        .ok();
    let _ = std::fs::remove_file(&tar);
    image.to_owned()
}

#[test]
fn podman_export_remove_and_import_under_a_new_name() {
    if !criu_on_path() {
        return;
    }
    let Some(podman) = Podman::new() else { return };
    let shared = HostDir::new();
    let name = unique_name();
    // The archives live apart from the container's /out, and go with it.
    let files = HostDir::new();
    let image = podman_image(&podman, files.path());
    let (id, pid, conmon) = podman_counter(&podman, &name, shared.path(), Some(&image));
    let archive: PathBuf = files.path().join("checkpoint.tar.gz");
    let export = format!("--export={}", archive.display());

    podman
        .podman(&["container", "checkpoint", &export, &name])
        .ok();
    assert!(archive.exists(), "no archive at {}", archive.display());
    assert_count_stays(shared.path());
    let at = berth_conformance::criu::read_count(shared.path());
    podman.podman(&["rm", &name]).ok();
    podman.assert_nothing_left(&id, &[pid, conmon]);

    let copy = unique_name();
    let import = format!("--import={}", archive.display());
    podman
        .podman(&["container", "restore", &import, "--name", &copy])
        .ok();
    assert_eq!(podman.inspect(&copy, "{{.State.Status}}"), "running");
    assert_count_resumes(shared.path(), at);
    let (copy_id, copy_pid, copy_conmon) = podman_pids(&podman, &copy);
    assert_ne!(copy_id, id, "the import reused the removed container's id");

    podman.podman(&["rm", "-f", "-t", "0", &copy]).ok();
    podman.assert_nothing_left(&copy_id, &[copy_pid, copy_conmon]);
}

/// A TCP connection inside the container (busybox nc to a nc listener on
/// lo) survives `--tcp-established`; without it the checkpoint is refused
/// and the container keeps running.
#[test]
fn podman_tcp_established_connection_survives() {
    if !criu_on_path() {
        return;
    }
    let Some(podman) = Podman::new() else { return };
    let shared = HostDir::new();
    let name = unique_name();
    let volume = format!("{}:/out", shared.path().display());
    // The server counts the lines it receives over the connection; its
    // stdin is a pipe that stays open (busybox nc ends at its stdin's EOF).
    let script = "sleep 100000 | nc -l -p 5000 | (i=0; while read l; do i=$((i+1)); \
                  echo $i > /out/count.tmp; mv /out/count.tmp /out/count; done) & \
                  sleep 0.5; while :; do echo tick; sleep 0.1; done | nc 127.0.0.1 5000";
    let args = podman.run_args(
        &["-d", "--name", &name, "-v", &volume],
        &["sh", "-c", script],
    );
    podman.podman(&strs(&args)).ok();
    wait_count(shared.path(), 3);
    let (id, pid, conmon) = podman_pids(&podman, &name);

    let refused = podman.podman(&["container", "checkpoint", &name]);
    assert!(
        !refused.success(),
        "an established connection was dumped without --tcp-established: {}",
        refused.describe()
    );
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    let now = berth_conformance::criu::read_count(shared.path());
    wait_count(shared.path(), now + 3);

    podman
        .podman(&["container", "checkpoint", "--tcp-established", &name])
        .ok();
    assert_count_stays(shared.path());
    let at = berth_conformance::criu::read_count(shared.path());
    if !berth_only("under runc 1.1.5 CRIU cannot reconnect the socket on restore (restore.log: Can't connect inet socket back: Network is unreachable)") {
        podman.podman(&["rm", "-f", "-t", "0", &name]).ok();
        podman.assert_nothing_left(&id, &[pid, conmon]);
        return;
    }
    podman
        .podman(&["container", "restore", "--tcp-established", &name])
        .ok();
    assert_count_resumes(shared.path(), at);
    let (_, restored_pid, restored_conmon) = podman_pids(&podman, &name);

    podman.podman(&["rm", "-f", "-t", "0", &name]).ok();
    podman.assert_nothing_left(&id, &[pid, conmon, restored_pid, restored_conmon]);
}

// ------------------------------------------------------------ containerd

/// `ctr run -d` of the counter with `shared` bound on /out; the init's pid.
fn ctr_counter(containerd: &Containerd, id: &str, shared: &Path) -> i64 {
    let mount = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        shared.display()
    );
    containerd
        .run(
            id,
            &["-d", "--mount", &mount],
            &["sh", "-c", STOPPABLE_COUNTER],
        )
        .ok();
    let pid = containerd.running_pid(id);
    wait_count(shared, 3);
    pid
}

#[test]
fn containerd_checkpoint_and_restore_resume_the_counter() {
    if !criu_on_path() {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let shared = HostDir::new();
    let id = unique_name();
    let pid = ctr_counter(&containerd, &id, shared.path());
    let reference = format!("berth.test/checkpoint/{id}:1");

    // A checkpoint image of the task (the task goes on running), then the
    // task and container removed.
    containerd
        .ctr(&["containers", "checkpoint", "--task", &id, &reference])
        .ok();
    let listed = containerd.ctr(&["images", "ls", "-q"]);
    assert!(
        listed.stdout.lines().any(|l| l.trim() == reference),
        "no checkpoint image {reference}: {}",
        listed.describe()
    );
    containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    containerd.wait_task_status(&id, "STOPPED");
    let at = berth_conformance::criu::read_count(shared.path());
    containerd.delete_and_check(&id, pid);
    assert_count_stays(shared.path());

    // Restored from the image: the count goes on from the checkpoint's.
    containerd
        .ctr(&["containers", "restore", "--live", &id, &reference])
        .ok();
    containerd.wait_task_status(&id, "RUNNING");
    let restored = containerd
        .task(&id)
        .map(|(pid, _)| pid)
        .expect("a restored task has a pid");
    assert_ne!(restored, pid, "the restored task kept the killed pid");
    assert!(
        pid_alive(restored),
        "the shim's pid {restored} for the restored task (from the runtime's pid file) is not a process"
    );
    let now = berth_conformance::criu::read_count(shared.path());
    assert!(
        now <= at + 5,
        "the count {now} is past the checkpoint's {at} plus the time since"
    );
    wait_count(shared.path(), now + 3);

    // The restored init's exit status reaches the shim.
    std::fs::write(shared.path().join("stop"), "").expect("write stop");
    containerd.wait_task_status(&id, "STOPPED");
    let deleted = containerd.ctr(&["task", "delete", &id]);
    deleted.ok();
    // ctr reports a non-zero exit status when it deletes the task.
    assert!(
        deleted
            .stderr
            .contains(&format!("exit code {COUNTER_EXIT}")),
        "the restored task's exit status was lost: {}",
        deleted.describe()
    );
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.ctr(&["images", "rm", &reference]).ok();
    containerd.assert_nothing_left(&id, restored);
}

/// `ctr task checkpoint --exit`: the task is dumped and stops; the
/// container's record stays for a later restore.
#[test]
fn containerd_task_checkpoint_exit_stops_the_task() {
    if !criu_on_path() {
        return;
    }
    let Some(containerd) = Containerd::start() else {
        return;
    };
    let shared = HostDir::new();
    let id = unique_name();
    let pid = ctr_counter(&containerd, &id, shared.path());

    let out = containerd.ctr(&["task", "checkpoint", "--exit", &id]);
    out.ok();
    let reference = out.stdout.trim().to_owned();
    assert!(!reference.is_empty(), "no checkpoint reference printed");
    containerd.wait_task_status(&id, "STOPPED");
    assert_count_stays(shared.path());

    containerd.ctr(&["task", "delete", &id]).ok();
    containerd.ctr(&["container", "rm", &id]).ok();
    containerd.ctr(&["images", "rm", &reference]).ok();
    containerd.assert_nothing_left(&id, pid);
}
