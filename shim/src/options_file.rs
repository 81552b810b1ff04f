//! The shim's options in a TOML file of its own, for containerd's CRI
//! plugin. The plugin sends a runtime whose type is not runc's only
//! `runtimeoptions.v1.Options`, decoded from the handler's `options` table
//! in config.toml; its `ConfigPath` names this file (as gVisor's and Kata's
//! shims name theirs). Its keys are runc's option names as a runc handler's
//! `options` table in config.toml spells them, so that moving a handler from
//! the runc shim to this one is moving those lines into the file.
//!
//! Every key is checked: one the shim does not read, or a value of the
//! wrong type, is an error naming the file and the key, not an option
//! silently ignored (a node whose `SystemdCgroup` was misspelt would run its
//! pods under the other cgroup driver than its kubelet's).

use std::path::Path;

use containerd_shim as shim;
use shim::api;
use toml::Value;

/// The keys read, in the order the error for an unknown one lists them.
const KEYS: &[&str] = &[
    "SystemdCgroup",
    "Root",
    "ShimCgroup",
    "NoPivotRoot",
    "NoNewKeyring",
    "IoUid",
    "IoGid",
];

/// runc's options as the file at `path` sets them (the defaults for the
/// others); an error names the file, and the key when one is wrong.
pub fn read(path: &Path) -> Result<api::Options, String> {
    let name = format!("the shim's options file {} (ConfigPath)", path.display());
    // A relative path would be relative to the first container's bundle,
    // the shim's working directory.
    if !path.is_absolute() {
        return Err(format!("{name}: the path must be absolute"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {name}: {e}"))?;
    parse(&text).map_err(|e| format!("{name}: {e}"))
}

/// The options `text` sets.
fn parse(text: &str) -> Result<api::Options, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The crate's message spans lines (a caret under the place);
        // containerd shows one line.
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    let mut options = api::Options::default();
    for (key, value) in &table {
        match key.as_str() {
            "SystemdCgroup" => options.systemd_cgroup = boolean(key, value)?,
            "NoPivotRoot" => options.no_pivot_root = boolean(key, value)?,
            "NoNewKeyring" => options.no_new_keyring = boolean(key, value)?,
            "IoUid" => options.io_uid = id(key, value)?,
            "IoGid" => options.io_gid = id(key, value)?,
            "Root" => {
                let root = string(key, value)?;
                // Relative, it would hang off the shim's working directory
                // (a bundle), and `delete` after a dead shim, which runs in
                // another bundle, would not find the state.
                if !Path::new(&root).is_absolute() {
                    return Err(format!("Root {root:?} must be an absolute path"));
                }
                options.root = root;
            }
            "ShimCgroup" => options.shim_cgroup = string(key, value)?,
            _ => {
                return Err(format!(
                    "unknown key {key:?} (the shim reads {})",
                    KEYS.join(", ")
                ))
            }
        }
    }
    Ok(options)
}

fn wrong_type(key: &str, wanted: &str, value: &Value) -> String {
    format!("{key} must be {wanted}, not {} {value}", article(value))
}

/// "a string", "an integer"... for a value's TOML type.
fn article(value: &Value) -> String {
    let kind = value.type_str();
    let an = kind.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {kind}", if an { "an" } else { "a" })
}

fn boolean(key: &str, value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type(key, "true or false", value))
}

fn string(key: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong_type(key, "a string", value))
}

/// A uid or gid: an integer from 0 to 2^32-1.
fn id(key: &str, value: &Value) -> Result<u32, String> {
    let n = value
        .as_integer()
        .ok_or_else(|| wrong_type(key, "an integer", value))?;
    u32::try_from(n).map_err(|_| format!("{key} {n} is not a uid or gid (0 to 4294967295)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_sets_its_option() {
        let options = parse(
            "SystemdCgroup = true\nRoot = \"/run/b\"\nShimCgroup = \"/shims\"\n\
             NoPivotRoot = true\nNoNewKeyring = true\nIoUid = 100000\nIoGid = 100001\n",
        )
        .unwrap();
        let expected = api::Options {
            systemd_cgroup: true,
            root: "/run/b".into(),
            shim_cgroup: "/shims".into(),
            no_pivot_root: true,
            no_new_keyring: true,
            io_uid: 100000,
            io_gid: 100001,
            ..Default::default()
        };
        assert_eq!(options, expected);
        assert_eq!(parse("# nothing\n").unwrap(), api::Options::default());
    }

    #[test]
    fn an_unknown_key_or_a_wrong_type_is_an_error_naming_the_key() {
        let cases = [
            (
                "BinaryName = \"/usr/bin/runc\"",
                "unknown key \"BinaryName\"",
            ),
            ("systemdCgroup = true", "unknown key \"systemdCgroup\""),
            (
                "SystemdCgroup = \"yes\"",
                "SystemdCgroup must be true or false, not a string \"yes\"",
            ),
            ("IoUid = -1", "IoUid -1 is not a uid or gid"),
            ("IoGid = 1.5", "IoGid must be an integer, not a float 1.5"),
            (
                "Root = \"run/b\"",
                "Root \"run/b\" must be an absolute path",
            ),
            ("[ShimCgroup]", "ShimCgroup must be a string, not a table"),
        ];
        for (text, wanted) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(wanted), "{text}: {error}");
        }
        let error = parse("SystemdCgroup = \n").unwrap_err();
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn the_file_is_named_in_its_errors_and_must_be_absolute() {
        let error = read(Path::new("/nonexistent/berth-shim.toml")).unwrap_err();
        assert!(
            error.starts_with("read the shim's options file /nonexistent/berth-shim.toml"),
            "{error}"
        );
        let error = read(Path::new("berth-shim.toml")).unwrap_err();
        assert!(error.contains("must be absolute"), "{error}");
    }
}
