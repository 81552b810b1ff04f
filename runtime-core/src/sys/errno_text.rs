//! errno texts as Go (runc) prints them.

/// Go prints errno texts in lower case ("no such file or directory") and without "(os error N)".
pub fn go_errno_text(err: &std::io::Error) -> String {
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    // SAFETY: strerror returns a pointer to a NUL-terminated static or thread-local string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
    let text = text.to_string_lossy();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
