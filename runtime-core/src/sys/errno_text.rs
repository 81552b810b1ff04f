//! errno texts as Go (runc) prints them.

/// `err`'s errno as Go prints it (runc's messages): in lower case ("no
/// such file or directory") and without Rust's "(os error N)"; an error
/// without an errno as it displays. For a front end that prints runc's texts.
///
/// ```
/// let err = std::io::Error::from_raw_os_error(libc::ENOENT);
/// assert_eq!(berth::error::go_errno_text(&err), "no such file or directory");
/// ```
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
