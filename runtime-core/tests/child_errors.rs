//! A failed setup step of the container's init comes back to the caller as
//! a value it can match on (`Error::Init(ChildError)`: step, errno, config
//! field, path), while its text stays what `berth` prints.
//!
//! `create` forks, so this runs without libtest's harness (whose threads
//! it would refuse), as root on a busybox bundle; elsewhere it says why it
//! did not run.

use berth::{ChildStep, CreateOptions, Error};
use std::path::{Path, PathBuf};

fn main() {
    let busybox = Path::new("/bin/busybox");
    if !nix::unistd::geteuid().is_root() || !busybox.exists() {
        println!("note: child_errors needs root and /bin/busybox; not run");
        println!("\ntest result: ok. 0 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out\n");
        return;
    }
    let dir = std::env::temp_dir().join(format!("berth-child-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cases: [Case; 2] = [
        (
            "a_cwd_that_is_a_file_is_the_rootfs_step_with_enotdir_and_the_field",
            |c| {
                // Not a directory: a missing one would be made, as runc makes it.
                c["process"]["cwd"] = "/bin/busybox".into();
            },
            |e| {
                let Error::Init(child) = e else {
                    return Err(format!("not Init: {e:?}"));
                };
                check(child.step == ChildStep::Rootfs, child)?;
                check(child.errno == Some(libc::ENOTDIR), child)?;
                check(child.field.as_deref() == Some("process.cwd"), child)?;
                check(
                    child.path.as_deref() == Some(Path::new("/bin/busybox")),
                    child,
                )?;
                check(
                    e.to_string().starts_with(
                        "unable to start container process: error during container init: create the working directory /bin/busybox",
                    ),
                    child,
                )
            },
        ),
        (
            "a_missing_program_is_the_exec_step_with_its_path",
            |c| {
                c["process"]["args"] = serde_json::json!(["/no-such-program"]);
            },
            |e| {
                let Error::Init(child) = e else {
                    return Err(format!("not Init: {e:?}"));
                };
                check(child.step == ChildStep::Exec, child)?;
                check(child.field.as_deref() == Some("process.args"), child)?;
                check(
                    child.path.as_deref() == Some(Path::new("/no-such-program")),
                    child,
                )
            },
        ),
    ];
    let mut failed = 0;
    for (n, (name, edit, expect)) in cases.iter().enumerate() {
        let outcome = bundle(&dir.join(format!("bundle-{n}")), *edit)
            .map_err(|e| format!("make the bundle: {e}"))
            .and_then(|bundle| {
                let root = dir.join("state");
                let id = format!("child-errors-{n}");
                match berth::create(&CreateOptions::new(&root, &id, &bundle)) {
                    Ok(_) => {
                        let _ = berth::container::delete(&root, &id, true);
                        Err("create succeeded".into())
                    }
                    Err(e) => expect(&e).and_then(|()| match root.join(&id).exists() {
                        true => Err("the failed create left its state directory".into()),
                        false => Ok(()),
                    }),
                }
            });
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n",
        cases.len() - failed
    );
    std::process::exit(i32::from(failed > 0));
}

/// A case: its name, its change to the config, and what the error must be.
type Case = (
    &'static str,
    fn(&mut serde_json::Value),
    fn(&Error) -> Result<(), String>,
);

fn check(ok: bool, child: &berth::ChildError) -> Result<(), String> {
    match ok {
        true => Ok(()),
        false => Err(format!("unexpected: {child:?}")),
    }
}

/// A busybox bundle whose config `edit` changes.
fn bundle(path: &Path, edit: fn(&mut serde_json::Value)) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(path.join("rootfs/bin"))?;
    std::fs::copy("/bin/busybox", path.join("rootfs/bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", path.join("rootfs/bin/sh"))?;
    let mut config = serde_json::to_value(berth::spec::default_spec(false))?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["sh", "-c", "exit 0"]);
    edit(&mut config);
    std::fs::write(path.join("config.json"), config.to_string())?;
    Ok(path.to_path_buf())
}
