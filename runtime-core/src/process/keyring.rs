//! The container's session keyring, `_ses.<id>` as runc names it: the
//! container cannot read the caller's session keys, and processes exec'd
//! later join the same keyring by name.

// linux/keyctl.h
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_DESCRIBE: libc::c_long = 6;
/// Lets a later `exec` (same user) find the keyring by name to join it.
const KEY_USR_SEARCH: u32 = 0x0008_0000;

/// Join (creating it if missing) the container's session keyring. Kernels
/// without keyrings are not an error.
pub fn join_session(id: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| "container id holds a NUL byte".to_string())?;
    // SAFETY: keyctl reads a NUL-terminated name that outlives the call.
    let serial =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if serial < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOSYS) => Ok(()),
            _ => Err(format!("join session keyring _ses.{id}: {err}")),
        };
    }
    let perm = permissions(serial)
        .ok_or_else(|| format!("read the permissions of session keyring _ses.{id}"))?;
    // SAFETY: keyctl with integer arguments only.
    if unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            serial,
            perm | KEY_USR_SEARCH,
        )
    } < 0
    {
        return Err(format!(
            "set the permissions of session keyring _ses.{id}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A key's permission mask, from its description "type;uid;gid;perm;name".
fn permissions(serial: libc::c_long) -> Option<u32> {
    let mut buf = [0u8; 512];
    // SAFETY: the kernel writes at most buf.len() bytes into the live buffer.
    let len = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_DESCRIBE,
            serial,
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    let text = buf.get(..usize::try_from(len).ok()?)?;
    parse_perm(std::str::from_utf8(text).ok()?)
}

fn parse_perm(description: &str) -> Option<u32> {
    let field = description.trim_end_matches('\0').split(';').nth(3)?;
    u32::from_str_radix(field, 16).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_permission_field_is_hex() {
        assert_eq!(
            super::parse_perm("keyring;0;0;3f130000;_ses.c1\0"),
            Some(0x3f13_0000)
        );
        assert_eq!(super::parse_perm("keyring;0;0"), None);
    }
}
