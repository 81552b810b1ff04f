//! `run` for a library caller: create, start, wait, delete in one call.

use crate::lifecycle::create::{create, CreateOptions};
use crate::lifecycle::error::Result;

/// Create the container, start it, wait for its init to exit and delete
/// it; the init's exit code as `runc run` reports it (the code, or 128 +
/// the signal that killed it).
///
/// The container is deleted whatever happens after `create`: a failed
/// `start` (a poststart hook), a failed wait, or SIGTERM, SIGINT or SIGHUP
/// to the caller while it waits ([`Error::Interrupted`](crate::Error::Interrupted):
/// those three are blocked on the calling thread for the wait alone and
/// read from a signalfd). The first error is the one returned.
///
/// The wait is on the init's pidfd; no signal is forwarded to the container
/// and no terminal relayed (for that, see [`crate::lifecycle::foreground`]). A config
/// with `process.terminal` needs a
/// [`console_socket`](CreateOptions::console_socket) then, or its output
/// stalls once the terminal's buffer is full. Forks: call it from a
/// single-threaded process ([`Error::Threaded`](crate::Error::Threaded)).
pub fn run(options: &CreateOptions) -> Result<i32> {
    let mut container = create(options)?;
    let waited = container.start().and_then(|()| {
        crate::sys::stop_signals::wait_readable(container.pidfd()?, "the container's init exited")?;
        container.wait()
    });
    let deleted = container.delete(true);
    let status = waited?;
    deleted?;
    Ok(status.code())
}
