//! A container created from an `oci_spec::runtime::Spec` the caller built
//! (`CreateOptions::spec`) instead of the bundle's config.json: the bundle
//! directory still holds the rootfs and is what the state records, the file
//! is not read, and the config is checked exactly as the file would be.
//!
//! `create` forks, so this runs without libtest's harness (whose threads
//! it would refuse); the container is made as root on a busybox bundle,
//! the checks that need no container run anywhere.

use berth::oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use berth::{spec, CreateOptions, Error, SpecError, Status};
use std::path::{Path, PathBuf};

type Outcome = Result<(), String>;
/// A case: its name, its body (given a scratch directory), and whether it makes a container.
type Case = (&'static str, fn(&Path) -> Outcome, bool);
/// A change that makes a config bad, and what it is.
type Edit = (&'static str, fn(&mut Spec));

fn main() {
    let dir = std::env::temp_dir().join(format!("berth-config-from-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let can_create = nix::unistd::geteuid().is_root() && Path::new("/bin/busybox").exists();
    let cases: [Case; 3] = [
        (
            "a_given_spec_is_refused_as_the_same_config_json_is",
            same_refusals_as_the_file,
            false,
        ),
        (
            "a_bad_given_spec_fails_create_and_leaves_nothing",
            bad_spec_leaves_nothing,
            false,
        ),
        (
            "a_container_runs_from_a_given_spec_without_reading_config_json",
            runs_from_given_spec,
            true,
        ),
    ];
    let (mut failed, mut ignored) = (0, 0);
    for (n, (name, case, needs_root)) in cases.iter().enumerate() {
        if *needs_root && !can_create {
            ignored += 1;
            println!("test {name} ... ignored (needs root and /bin/busybox)");
            continue;
        }
        match case(&dir.join(format!("case-{n}"))) {
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
        "\ntest result: {status}. {} passed; {failed} failed; {ignored} ignored; 0 measured; 0 filtered out\n",
        cases.len() - failed - ignored
    );
    std::process::exit(i32::from(failed > 0));
}

/// A busybox bundle (rootfs only, or an empty rootfs without busybox) and
/// the config that would run `sh -c 'exit 3'` in it.
fn bundle(dir: &Path) -> Result<(PathBuf, Spec), String> {
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("make {}: {e}", bin.display()))?;
    if Path::new("/bin/busybox").exists() {
        std::fs::copy("/bin/busybox", bin.join("busybox")).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink("busybox", bin.join("sh")).map_err(|e| e.to_string())?;
    }
    let mut config = spec::default_spec(false);
    let mut process = config
        .process()
        .clone()
        .ok_or("default spec has no process")?;
    process.set_terminal(Some(false));
    process.set_args(Some(vec!["sh".into(), "-c".into(), "exit 3".into()]));
    config.set_process(Some(process));
    Ok((bundle, config))
}

/// Each bad config, given in memory and written as config.json, is refused
/// with the same error (the same variant and text but for the file's name).
fn same_refusals_as_the_file(dir: &Path) -> Outcome {
    let (bundle, good) = bundle(dir)?;
    spec::check(&good, &bundle).map_err(|e| format!("the good spec was refused: {e}"))?;
    let edits: [Edit; 4] = [
        ("a relative cwd", |s| {
            if let Some(p) = s.process_mut() {
                p.set_cwd("relative".into());
            }
        }),
        ("no args", |s| {
            if let Some(p) = s.process_mut() {
                p.set_args(Some(Vec::new()));
            }
        }),
        ("no root", |s| {
            s.set_root(None);
        }),
        ("a namespace twice", |s| {
            if let Some(linux) = s.linux_mut() {
                let mut namespaces = linux.namespaces().clone().unwrap_or_default();
                let mut uts = LinuxNamespace::default();
                uts.set_typ(LinuxNamespaceType::Uts);
                namespaces.push(uts.clone());
                namespaces.push(uts);
                linux.set_namespaces(Some(namespaces));
            }
        }),
    ];
    for (what, edit) in edits {
        let mut config = good.clone();
        edit(&mut config);
        let text = serde_json::to_string(&config).map_err(|e| e.to_string())?;
        std::fs::write(bundle.join("config.json"), text).map_err(|e| e.to_string())?;
        let from_file = spec::load(&bundle);
        let given = spec::check(&config, &bundle);
        match (from_file, given) {
            (Err(file), Err(given)) => {
                let file_text = file.to_string().replace(
                    &bundle.join("config.json").display().to_string(),
                    spec::GIVEN_SPEC,
                );
                if file_text != given.to_string()
                    || std::mem::discriminant(&file) != std::mem::discriminant(&given)
                {
                    return Err(format!("{what}: file {file:?}, given {given:?}"));
                }
            }
            (file, given) => return Err(format!("{what}: file {file:?}, given {given:?}")),
        }
    }
    // Normalised alike: a relative mount destination is made absolute.
    let mut config = good.clone();
    let mut mounts = config.mounts().clone().unwrap_or_default();
    let mut tmp = mounts.first().cloned().ok_or("no mounts")?;
    tmp.set_destination("scratch".into());
    mounts.push(tmp);
    config.set_mounts(Some(mounts));
    let checked = spec::check(&config, &bundle).map_err(|e| e.to_string())?;
    let last = checked.mounts().as_ref().and_then(|m| m.last().cloned());
    match last.map(|m| m.destination().clone()) {
        Some(d) if d == Path::new("/scratch") => Ok(()),
        other => Err(format!("relative destination not anchored: {other:?}")),
    }
}

/// create with a bad given spec: the typed error, no state directory.
fn bad_spec_leaves_nothing(dir: &Path) -> Outcome {
    let (bundle, mut config) = bundle(dir)?;
    if let Some(p) = config.process_mut() {
        p.set_cwd("relative".into());
    }
    let root = dir.join("state");
    let options = CreateOptions::new(&root, "bad", &bundle).spec(config);
    match berth::create(&options) {
        Err(Error::Spec(SpecError::RelativeCwd { .. })) => {}
        Ok(_) => {
            let _ = berth::container::delete(&root, "bad", true);
            return Err("create accepted a relative cwd".into());
        }
        Err(e) => return Err(format!("expected RelativeCwd, got {e:?}")),
    }
    match root.join("bad").exists() {
        true => Err("the failed create left its state directory".into()),
        false => Ok(()),
    }
}

/// The container runs the given spec's process; the bundle's config.json,
/// which is not even JSON, is never read; the state records the bundle.
fn runs_from_given_spec(dir: &Path) -> Outcome {
    let (bundle, config) = bundle(dir)?;
    std::fs::write(bundle.join("config.json"), "not JSON: must not be read")
        .map_err(|e| e.to_string())?;
    let root = dir.join("state");
    let id = format!("given-{}", std::process::id());
    let _signals = berth::foreground::prepare(false).map_err(|e| e.to_string())?;
    let options = CreateOptions::new(&root, &id, &bundle).spec(config);
    let outcome = run(&options);
    let _ = berth::container::delete(&root, &id, true);
    outcome
}

fn run(options: &CreateOptions) -> Outcome {
    let mut container = berth::create(options).map_err(|e| format!("create: {e}"))?;
    let state = container.state();
    if state.status != Status::Created || state.bundle != options.bundle {
        return Err(format!("unexpected state after create: {state:?}"));
    }
    let recorded = container.config().map_err(|e| format!("config: {e}"))?;
    let args = recorded.process().as_ref().and_then(|p| p.args().clone());
    if args.as_deref() != Some(&["sh".into(), "-c".into(), "exit 3".into()][..]) {
        return Err(format!("recorded config's args: {args:?}"));
    }
    container.start().map_err(|e| format!("start: {e}"))?;
    let code = berth::foreground::forward_until_exit(container.pid(), None)
        .map_err(|e| format!("wait: {e}"))?;
    if code != 3 {
        return Err(format!("exit code {code}, expected 3"));
    }
    container
        .delete(false)
        .map_err(|e| format!("delete: {e}"))?;
    Ok(())
}
