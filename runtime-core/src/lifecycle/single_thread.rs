//! The one precondition of the calls that fork: a single-threaded caller.
//!
//! `create`, `exec` and `restore` fork (clone3) and run this crate's code
//! in the child until it execs. A fork copies only the calling thread: a
//! lock another thread held at that moment (the allocator's, stdio's, a
//! `Mutex` of the embedder's) stays held forever in the child, and the
//! child's first allocation may hang on it. Nothing can make that safe
//! after the fact, so these calls refuse up front, before anything exists,
//! with [`Error::Threaded`]; docs/architecture.md ("The library's
//! contract") says how a threaded program embeds Berth instead.

use crate::lifecycle::error::{Error, Result};
use std::path::Path;

/// Refuse to go on when the calling process has more than one thread.
pub(crate) fn refuse_threaded() -> Result<()> {
    match thread_count(Path::new("/proc/self/task")) {
        Some(threads) if threads > 1 => Err(Error::Threaded { threads }),
        // Without a /proc to count in, nothing else in Berth works either:
        // the call fails later with the reason that names /proc.
        _ => Ok(()),
    }
}

/// The entries of a `/proc/<pid>/task` directory: one per thread.
fn thread_count(task_dir: &Path) -> Option<usize> {
    Some(std::fs::read_dir(task_dir).ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted_from_the_task_directory() {
        let (stop, parked) = std::sync::mpsc::channel::<()>();
        let extra = std::thread::spawn(move || {
            let _ = parked.recv();
        });
        let counted = thread_count(Path::new("/proc/self/task")).unwrap();
        // The harness's main thread, this test's thread, and `extra` at least.
        assert!(counted >= 3, "{counted}");
        assert!(matches!(
            refuse_threaded(),
            Err(Error::Threaded { threads }) if threads >= 3
        ));
        stop.send(()).unwrap();
        extra.join().unwrap();
        assert_eq!(thread_count(Path::new("/nonexistent/task")), None);
    }
}
