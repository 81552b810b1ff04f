//! The checkpoint and restore command lines the engines send.

use super::super::{parse, Command, LogFormat};

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}
fn cmd(s: &str) -> Command {
    parse(&argv(s))
        .unwrap_or_else(|e| panic!("{s}: {}", e.message("runc")))
        .1
}

/// What podman and containerd's runc shim send (logged from a wrapper runtime):
/// each parses, with every flag it names.
#[test]
fn the_engines_checkpoint_and_restore_invocations_parse() {
    let (g, c) = parse(&argv(
        "--root /r --log /l/log.json --log-format json checkpoint --image-path /i \
         --work-path /w/criu-work --file-locks --leave-running --leave-running c1",
    ))
    .expect("containerd's checkpoint");
    assert_eq!(g.log_format, LogFormat::Json);
    let Command::Checkpoint(a) = c else {
        panic!("{c:?}")
    };
    assert_eq!(a.id, "c1");
    assert!(a.leave_running && a.criu.file_locks);
    assert_eq!(
        a.criu.work_path.as_deref(),
        Some(std::path::Path::new("/w/criu-work"))
    );
    let c = cmd(
        "restore --image-path /i --work-path /w --detach --pid-file /w/init.pid \
         -no-subreaper --bundle /b c1",
    );
    let Command::Restore(a) = c else {
        panic!("{c:?}")
    };
    assert!(a.detach && a.no_subreaper);
    assert_eq!(
        a.pid_file.as_deref(),
        Some(std::path::Path::new("/w/init.pid"))
    );
    assert_eq!(a.bundle.as_deref(), Some(std::path::Path::new("/b")));
    let c = cmd(
        "checkpoint --tcp-established --ext-unix-sk --shell-job --lazy-pages --status-fd 5 \
         --page-server 10.0.0.1:27 --pre-dump --parent-path ../p --manage-cgroups-mode full \
         --empty-ns network --auto-dedup c1",
    );
    let Command::Checkpoint(a) = c else {
        panic!("{c:?}")
    };
    assert!(a.criu.tcp_established && a.criu.ext_unix_sk && a.criu.shell_job);
    assert!(a.criu.lazy_pages && a.pre_dump && a.criu.auto_dedup);
    assert_eq!(a.status_fd, Some(5));
    assert_eq!(a.page_server.as_deref(), Some("10.0.0.1:27"));
    assert_eq!(a.criu.manage_cgroups_mode.as_deref(), Some("full"));
    assert_eq!(a.criu.empty_ns, ["network"]);
    let c = cmd("restore --console-socket /s --no-pivot --lsm-profile apparmor:p --lsm-mount-context ctx c1");
    let Command::Restore(a) = c else {
        panic!("{c:?}")
    };
    assert!(a.no_pivot);
    assert_eq!(a.lsm_profile.as_deref(), Some("apparmor:p"));
    assert_eq!(a.lsm_mount_context.as_deref(), Some("ctx"));
    assert_eq!(
        a.console_socket.as_deref(),
        Some(std::path::Path::new("/s"))
    );
}
