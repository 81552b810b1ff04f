//! `checkpoint` and `restore` refused or failing: each with a clear error,
//! the dumped container left as it was, and a failed restore leaving no
//! state directory, cgroup, mount or process behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_conformance::criu::{
    checkpoint, counter_bundle, criu_or_skip, read_count, restore, wait_count,
};
use berth_conformance::{berth_only, skip, Bundle, HostDir, Runtime};

/// A "criu" that fails at once, as a broken or foreign binary would.
fn failing_criu(dir: &Path) -> PathBuf {
    let path = dir.join("criu-that-fails");
    fs::write(
        &path,
        "#!/bin/sh\necho 'this criu always fails' >&2\nexit 1\n",
    )
    .expect("write stub");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
    path
}

/// A running counter, and its images dumped with `--leave-running`.
fn running_counter_with_images(rt: &Runtime, criu: &str) -> (String, Bundle, PathBuf, HostDir) {
    let (bundle, shared) = counter_bundle();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    let images = HostDir::new();
    checkpoint(rt, criu, &id, images.path(), &["--leave-running"]).ok();
    (id, bundle, shared, images)
}

fn assert_still_running(rt: &Runtime, id: &str, shared: &Path) {
    let state = rt.state(id);
    assert_eq!(state["status"], "running", "{state}");
    let now = read_count(shared);
    wait_count(shared, now + 2);
}

#[test]
fn restore_from_a_missing_image_directory_fails_and_leaves_nothing() {
    let Some(criu) = criu_or_skip() else { return };
    let (bundle, _shared) = counter_bundle();
    bundle.write_config();
    let rt = Runtime::new();
    let id = rt.new_id();
    let missing = HostDir::new().path().join("no-such-images");
    let err = restore(&rt, &criu, &id, &bundle, &missing, &[]).fails();
    assert!(
        err.contains("no-such-images"),
        "the error does not name the directory: {err}"
    );
    if berth_only("runc's restore makes the missing image directory and leaves it") {
        assert!(!missing.exists(), "restore made the image directory");
    }
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn restore_onto_a_running_container_id_fails_and_leaves_it_running() {
    let Some(criu) = criu_or_skip() else { return };
    let rt = Runtime::new();
    let (id, bundle, shared, images) = running_counter_with_images(&rt, &criu);
    let pid = rt.state(&id)["pid"].clone();
    let err = restore(&rt, &criu, &id, &bundle, images.path(), &[]).fails();
    assert!(err.contains("exists"), "{err}");
    assert_eq!(
        rt.state(&id)["pid"],
        pid,
        "the running container's record changed"
    );
    assert_still_running(&rt, &id, &shared);
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn checkpoint_of_a_created_or_stopped_container_fails_and_changes_nothing() {
    let Some(criu) = criu_or_skip() else { return };
    let rt = Runtime::new();
    let created = rt.new_id();
    let bundle = Bundle::sleeper();
    rt.create(&created, &bundle, &[]).ok();
    let images = HostDir::new();
    let err = checkpoint(&rt, &criu, &created, images.path(), &[]).fails();
    if berth_only("runc words this differently") {
        assert!(err.contains("created"), "{err}");
    }
    assert_eq!(rt.state(&created)["status"], "created");
    rt.start(&created).ok();
    rt.kill_and_delete(&created, &bundle);

    let stopped = rt.new_id();
    let quick = Bundle::busybox(&["true"]);
    rt.run(&stopped, &quick, &["-d"]).ok();
    rt.wait_status(&stopped, "stopped");
    let err = checkpoint(&rt, &criu, &stopped, images.path(), &[]).fails();
    if berth_only("runc words this differently") {
        assert!(err.contains("stopped"), "{err}");
    }
    assert_eq!(rt.state(&stopped)["status"], "stopped");
    rt.delete(&stopped).ok();
    rt.assert_nothing_left(&stopped, &quick);
}

#[test]
fn a_criu_that_fails_leaves_the_container_running_and_restores_nothing() {
    let Some(criu) = criu_or_skip() else { return };
    let rt = Runtime::new();
    let (id, bundle, shared, images) = running_counter_with_images(&rt, &criu);
    let stubs = HostDir::new();
    let bad = failing_criu(stubs.path());
    let bad = bad.to_str().expect("utf-8 path");
    let other_images = HostDir::new();
    let err = checkpoint(&rt, bad, &id, other_images.path(), &[]).fails();
    if berth_only("the wording is Berth's") {
        assert!(
            err.contains(bad),
            "the error does not name the criu it ran: {err}"
        );
    }
    assert_still_running(&rt, &id, &shared);
    // A binary that is not there at all.
    let err = checkpoint(&rt, "/nonexistent/criu", &id, other_images.path(), &[]).fails();
    assert!(
        err.contains("/nonexistent/criu") || err.contains("no such file"),
        "{err}"
    );
    assert_still_running(&rt, &id, &shared);

    let new_id = rt.new_id();
    let err = restore(&rt, bad, &new_id, &bundle, images.path(), &[]).fails();
    assert!(!err.is_empty());
    // The dumped container still runs from the same rootfs: only what the restore would own counts.
    let state_dir = rt.root().join(&new_id);
    assert!(
        !state_dir.exists(),
        "state dir {} left",
        state_dir.display()
    );
    assert_eq!(
        berth_conformance::cgroups_named(&new_id),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        berth_conformance::mounts_mentioning(&state_dir),
        Vec::<String>::new()
    );
    assert_still_running(&rt, &id, &shared);
    rt.kill_and_delete(&id, &bundle);
}

/// A "criu" that never answers, as a dump or a lazy-pages restore that
/// hangs does, and sends the runtime (its parent) `signal` after a second:
/// TERM as an engine's timeout or a user's ^C would, KILL as an OOM killer
/// would. It gives up after 30 s, so a runtime that waits for it still returns.
fn hanging_criu(dir: &Path, signal: &str) -> PathBuf {
    let path = dir.join(format!("criu-that-hangs-{signal}"));
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho $$ >\"$0.pid\"\n(sleep 1; kill -{signal} $PPID) &\nexec sleep 30\n"
        ),
    )
    .expect("write stub");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
    path
}

/// Whether the last process started from the stub at `path` still runs (it
/// writes its pid to `path.pid`, then execs `sleep`); a zombie has ended.
fn runs(path: &Path) -> bool {
    let pid_file = format!("{}.pid", path.display());
    let pid = fs::read_to_string(&pid_file).expect("the stub wrote its pid");
    fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

#[test]
fn a_runtime_stopped_while_criu_hangs_stops_criu_and_undoes_the_request() {
    let Some(criu) = criu_or_skip() else { return };
    if !berth_only("runc dies of SIGTERM and leaves its criu running") {
        return;
    }
    let rt = Runtime::new();
    let (id, bundle, shared, images) = running_counter_with_images(&rt, &criu);
    let stubs = HostDir::new();
    let hung = hanging_criu(stubs.path(), "TERM");
    let hung_str = hung.to_str().expect("utf-8 path");

    let started = std::time::Instant::now();
    let other_images = HostDir::new();
    let err = checkpoint(&rt, hung_str, &id, other_images.path(), &[]).fails();
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "checkpoint waited for the hung criu"
    );
    assert!(!runs(&hung), "the hung criu outlived the checkpoint");
    assert_still_running(&rt, &id, &shared);

    let new_id = rt.new_id();
    let started = std::time::Instant::now();
    let err = restore(&rt, hung_str, &new_id, &bundle, images.path(), &[]).fails();
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "restore waited for the hung criu"
    );
    assert!(!runs(&hung), "the hung criu outlived the restore");
    let state_dir = rt.root().join(&new_id);
    assert!(
        !state_dir.exists(),
        "state dir {} left",
        state_dir.display()
    );
    assert_eq!(
        berth_conformance::cgroups_named(&new_id),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        berth_conformance::mounts_mentioning(&state_dir),
        Vec::<String>::new()
    );
    assert_still_running(&rt, &id, &shared);
    rt.kill_and_delete(&id, &bundle);
}

/// A restore killed outright (nothing to catch) leaves what a killed create
/// does: `delete --force` then removes its cgroup, the rootfs bind CRIU
/// worked in, and its state directory.
#[test]
fn delete_force_cleans_up_after_a_killed_restore() {
    let Some(criu) = criu_or_skip() else { return };
    if !berth_only("runc's delete of a half-restored id has no cgroup plan to go by") {
        return;
    }
    let rt = Runtime::new();
    let (id, bundle, shared, images) = running_counter_with_images(&rt, &criu);
    let stubs = HostDir::new();
    let hung = hanging_criu(stubs.path(), "KILL");

    let new_id = rt.new_id();
    let out = restore(
        &rt,
        hung.to_str().expect("utf-8 path"),
        &new_id,
        &bundle,
        images.path(),
        &[],
    );
    assert!(
        !out.success(),
        "a killed restore succeeded: {}",
        out.describe()
    );
    assert!(
        runs(&hung),
        "the stub criu did not outlive its killed runtime"
    );
    let state_dir = rt.root().join(&new_id);
    assert!(
        state_dir.exists(),
        "the killed restore left nothing to clean up"
    );
    assert_ne!(
        berth_conformance::cgroups_named(&new_id),
        Vec::<PathBuf>::new()
    );

    rt.cmd(&["delete", "--force", &new_id]).ok();
    assert!(
        !runs(&hung),
        "delete left the criu the restore put in its cgroup"
    );
    assert!(
        !state_dir.exists(),
        "state dir {} left",
        state_dir.display()
    );
    assert_eq!(
        berth_conformance::cgroups_named(&new_id),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        berth_conformance::mounts_mentioning(&state_dir),
        Vec::<String>::new()
    );
    assert_still_running(&rt, &id, &shared);
    rt.kill_and_delete(&id, &bundle);
}

#[test]
fn a_restore_criu_fails_midway_names_its_log_and_leaves_nothing() {
    let Some(criu) = criu_or_skip() else { return };
    let rt = Runtime::new();
    let (bundle, shared) = counter_bundle();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    let images = HostDir::new();
    checkpoint(&rt, &criu, &id, images.path(), &[]).ok();
    // The process tree's image, emptied: CRIU starts, sets up, then fails.
    fs::write(images.path().join("pstree.img"), b"").expect("truncate pstree.img");
    let new_id = rt.new_id();
    let err = restore(&rt, &criu, &new_id, &bundle, images.path(), &[]).fails();
    if berth_only("runc names only the log's file name") {
        let log = images.path().join("restore.log");
        assert!(
            err.contains(log.to_str().unwrap()),
            "the error does not name CRIU's log: {err}"
        );
        assert!(log.exists(), "no CRIU log at {}", log.display());
    }
    rt.assert_nothing_left(&new_id, &bundle);
    rt.assert_nothing_left(&id, &bundle);
}

#[test]
fn pre_dump_is_refused_where_the_kernel_has_no_soft_dirty_tracking() {
    let Some(criu) = criu_or_skip() else { return };
    let tracks = Command::new(&criu)
        .args(["check", "--feature", "mem_dirty_track"])
        .output()
        .is_ok_and(|o| o.status.success());
    if tracks {
        skip("this kernel tracks soft-dirty pages: pre-dump can work");
        return;
    }
    let rt = Runtime::new();
    let (bundle, shared) = counter_bundle();
    let id = rt.new_id();
    rt.run(&id, &bundle, &["-d"]).ok();
    wait_count(&shared, 2);
    let images = HostDir::new();
    for flags in [&["--pre-dump"][..], &["--parent-path", "../parent"][..]] {
        let err = checkpoint(&rt, &criu, &id, images.path(), flags).fails();
        if berth_only("runc lets CRIU fail and reports only its log") {
            assert!(err.contains("soft-dirty"), "{flags:?}: {err}");
        }
        assert_still_running(&rt, &id, &shared);
    }
    rt.kill_and_delete(&id, &bundle);
}
