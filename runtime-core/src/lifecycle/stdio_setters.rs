//! The setters of the stdio fields of the create and exec options, one
//! macro for both (the type itself is `init::stdio::Stdio`).

use std::os::fd::OwnedFd;

/// The setters of [`CreateOptions::stdio`](crate::CreateOptions::stdio)
/// and [`ExecOptions::stdio`](crate::lifecycle::exec::ExecOptions::stdio), here beside
/// what they set.
macro_rules! stdio_setters {
    ($options:ty, $whose:literal) => {
        impl $options {
            #[doc = concat!("The ", $whose, "'s stdin (see the `stdio` field).")]
            pub fn stdin(mut self, fd: impl Into<OwnedFd>) -> $options {
                self.stdio = std::mem::take(&mut self.stdio).stdin(fd);
                self
            }

            #[doc = concat!("The ", $whose, "'s stdout (see the `stdio` field).")]
            pub fn stdout(mut self, fd: impl Into<OwnedFd>) -> $options {
                self.stdio = std::mem::take(&mut self.stdio).stdout(fd);
                self
            }

            #[doc = concat!("The ", $whose, "'s stderr (see the `stdio` field).")]
            pub fn stderr(mut self, fd: impl Into<OwnedFd>) -> $options {
                self.stdio = std::mem::take(&mut self.stdio).stderr(fd);
                self
            }
        }
    };
}

stdio_setters!(crate::CreateOptions, "init");
stdio_setters!(crate::lifecycle::exec::ExecOptions, "process");
