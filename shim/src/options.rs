//! The task's runtime options as containerd sends them: the runc shim's
//! `containerd.runc.v1.Options` (ctr sends them to runtimes named
//! `io.containerd.runc.*`), or, from ctr to any other runtime, the older
//! `containerd.linux.runc.CreateOptions` (`runtime/linux/runctypes`),
//! which is how `ctr run --uidmap/--gidmap` names the owner of the stdio
//! (`io_uid`, `io_gid`) to this shim; or, from containerd's CRI plugin to a
//! runtime whose type is not runc's, `runtimeoptions.v1.Options`, whose
//! `config_path` names a TOML file of runc's options (`options_file.rs`).
//! The protos crate has no type for the latter two, so the few fields the
//! shim uses are read here.

use containerd_shim as shim;
use shim::api;
use shim::protos::protobuf::rt::WireType;
use shim::protos::protobuf::{CodedInputStream, Message};

/// The options in `any` as the runc shim's type (default when none).
pub fn decode(
    any: Option<&shim::protos::protobuf::well_known_types::any::Any>,
) -> Result<api::Options, String> {
    match any {
        Some(any) if any.type_url.ends_with("runc.v1.Options") => {
            api::Options::parse_from_bytes(&any.value).map_err(|e| e.to_string())
        }
        Some(any)
            if any
                .type_url
                .ends_with("containerd.linux.runc.CreateOptions") =>
        {
            create_options(&any.value)
                .map_err(|e| format!("containerd.linux.runc.CreateOptions: {e}"))
        }
        Some(any) if any.type_url.ends_with("runtimeoptions.v1.Options") => {
            let path =
                config_path(&any.value).map_err(|e| format!("runtimeoptions.v1.Options: {e}"))?;
            match path {
                // The handler's `options` table without `ConfigPath`.
                None => Ok(api::Options::default()),
                Some(path) => crate::options_file::read(std::path::Path::new(&path)),
            }
        }
        _ => Ok(api::Options::default()),
    }
}

/// `runtimeoptions.v1.Options`' field 2, `config_path` (field 1,
/// `type_url`, says what the file holds to a shim that reads several
/// kinds; this one reads only runc's option names, so it is not read).
fn config_path(bytes: &[u8]) -> shim::protos::protobuf::Result<Option<String>> {
    let mut path = String::new();
    let mut input = CodedInputStream::from_bytes(bytes);
    while let Some(tag) = input.read_raw_tag_or_eof()? {
        let wire = wire_type(tag)?;
        match (tag >> 3, wire) {
            (2, WireType::LengthDelimited) => path = input.read_string()?,
            _ => input.skip_field(wire)?,
        }
    }
    Ok((!path.is_empty()).then_some(path))
}

fn wire_type(tag: u32) -> shim::protos::protobuf::Result<WireType> {
    WireType::new(tag & 7).ok_or(shim::protos::protobuf::Error::from(std::io::Error::other(
        format!("bad tag {tag}"),
    )))
}

/// CreateOptions' fields that have a counterpart in `Options`: 1
/// no_pivot_root, 8 no_new_keyring, 10 io_uid, 11 io_gid.
fn create_options(bytes: &[u8]) -> shim::protos::protobuf::Result<api::Options> {
    let mut options = api::Options::default();
    let mut input = CodedInputStream::from_bytes(bytes);
    while let Some(tag) = input.read_raw_tag_or_eof()? {
        let wire = wire_type(tag)?;
        match (tag >> 3, wire) {
            (1, WireType::Varint) => options.no_pivot_root = input.read_bool()?,
            (8, WireType::Varint) => options.no_new_keyring = input.read_bool()?,
            (10, WireType::Varint) => options.io_uid = input.read_uint32()?,
            (11, WireType::Varint) => options.io_gid = input.read_uint32()?,
            _ => input.skip_field(wire)?,
        }
    }
    Ok(options)
}

/// The owner of the stdio pipes: none for root's (0, 0), as the default.
pub fn io_owner(options: &api::Options) -> crate::pipes::Owner {
    (options.io_uid != 0 || options.io_gid != 0).then_some((options.io_uid, options.io_gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shim::protos::protobuf::well_known_types::any::Any;
    use shim::protos::protobuf::CodedOutputStream;

    /// CreateOptions as ctr's `WithUIDOwner`/`WithGIDOwner` make it, with a
    /// string field (9, shim_cgroup) and a repeated one (6) to skip.
    #[test]
    fn create_options_give_the_io_owner() {
        let mut bytes = Vec::new();
        {
            let mut out = CodedOutputStream::vec(&mut bytes);
            out.write_bool(1, true).unwrap();
            out.write_string(6, "network").unwrap();
            out.write_string(9, "/shim").unwrap();
            out.write_uint32(10, 100000).unwrap();
            out.write_uint32(11, 100001).unwrap();
            out.flush().unwrap();
        }
        let any = shim::protos::protobuf::well_known_types::any::Any {
            type_url: "containerd.linux.runc.CreateOptions".into(),
            value: bytes,
            ..Default::default()
        };
        let options = decode(Some(&any)).unwrap();
        assert!(options.no_pivot_root);
        assert_eq!(io_owner(&options), Some((100000, 100001)));
    }

    /// The CRI plugin's options for a handler of another type than runc's:
    /// `TypeUrl` and `ConfigPath` as its config.toml table spells them.
    fn runtime_options(type_url: &str, config_path: &str) -> Any {
        let mut bytes = Vec::new();
        {
            let mut out = CodedOutputStream::vec(&mut bytes);
            if !type_url.is_empty() {
                out.write_string(1, type_url).unwrap();
            }
            if !config_path.is_empty() {
                out.write_string(2, config_path).unwrap();
            }
            out.flush().unwrap();
        }
        Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: bytes,
            ..Default::default()
        }
    }

    #[test]
    fn runtime_options_name_the_file_of_runc_options() {
        let dir = std::env::temp_dir().join(format!("berth-shim-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("shim.toml");
        std::fs::write(
            &file,
            "Root = \"/run/elsewhere\"\nShimCgroup = \"/shims\"\n",
        )
        .unwrap();
        let any = runtime_options("io.containerd.berth.v2.options", file.to_str().unwrap());
        let options = decode(Some(&any));
        std::fs::remove_dir_all(&dir).unwrap();
        let options = options.unwrap();
        assert_eq!(options.root, "/run/elsewhere");
        assert_eq!(options.shim_cgroup, "/shims");
    }

    #[test]
    fn runtime_options_without_a_file_are_the_defaults_and_a_missing_file_is_an_error() {
        let options = decode(Some(&runtime_options("x", ""))).unwrap();
        assert_eq!(options, api::Options::default());
        let error = decode(Some(&runtime_options("", "/nonexistent/berth.toml"))).unwrap_err();
        assert!(error.contains("/nonexistent/berth.toml"), "{error}");
    }

    #[test]
    fn runc_options_give_the_io_owner_and_none_is_roots() {
        let runc = api::Options {
            io_uid: 1000,
            io_gid: 1000,
            ..Default::default()
        };
        let any = shim::protos::protobuf::well_known_types::any::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: runc.write_to_bytes().unwrap(),
            ..Default::default()
        };
        assert_eq!(io_owner(&decode(Some(&any)).unwrap()), Some((1000, 1000)));
        assert_eq!(io_owner(&decode(None).unwrap()), None);
    }
}
