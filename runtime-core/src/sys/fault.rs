//! Fault injection for the conformance suite: `BERTH_FAULT_STOP_AT=<step>`
//! kills `create` at a named step of its setup, so a test can show that
//! `delete --force` cleans up after a create killed anywhere.
//!
//! Compiled in only with the `fault-injection` feature in a debug build
//! (`scripts/test` builds the tested binary so); otherwise every call is a
//! no-op and the variable is never read.
//!
//! Two kinds of step:
//! - `point` (the parent's steps): `create` kills itself with SIGKILL there.
//! - `hold` (the init's steps, named `init-…`): the init cannot kill the
//!   parent (it is outside the init's pid namespace) nor stop itself (a pid
//!   namespace's init ignores its own SIGSTOP), so it renames itself
//!   `HELD_COMM` and waits for SIGCONT. The test then SIGKILLs `create` (or
//!   the init) while the init is parked at that step, and may let it go on.

/// The environment variable naming the step to stop at.
#[cfg_attr(
    not(all(feature = "fault-injection", debug_assertions)),
    allow(dead_code)
)]
pub(crate) const ENV: &str = "BERTH_FAULT_STOP_AT";

/// What a held init calls itself (in `/proc/<pid>/comm`), so a test can find it.
#[cfg_attr(
    not(all(feature = "fault-injection", debug_assertions)),
    allow(dead_code)
)]
pub(crate) const HELD_COMM: &str = "berth-held";

/// The parent's steps, in the order `create` passes them. With the systemd
/// driver the cgroup is made with the scope, after the clone: `cgroup-made`
/// then only follows its plan being recorded, and `in-cgroup` the scope.
/// When the v1 directories are made while the init sets up (lifecycle/create/handoff.rs),
/// `cgroup-made` covers the v2 one, and `limits-set` follows `v1-cgroup-made`.
pub(crate) const PARENT_STEPS: &[&str] = &[
    "claimed",
    "cgroup-recorded",
    "cgroup-made",
    "limits-set",
    "barrier-made",
    "cloned",
    "in-cgroup",
    "proceed-sent",
    "v1-cgroup-made",
    "init-ready",
    "state-tmp-written",
    "state-written",
    "pid-file-written",
    "released",
];

/// The init's steps, in the order it passes them.
pub(crate) const INIT_STEPS: &[&str] = &[
    "init-started",
    "init-namespaces-joined",
    "init-mounted",
    "init-rootfs-done",
    "init-attributes-set",
];

#[cfg(all(feature = "fault-injection", debug_assertions))]
mod armed {
    use std::sync::OnceLock;

    fn armed_step() -> Option<&'static str> {
        static STEP: OnceLock<Option<String>> = OnceLock::new();
        STEP.get_or_init(|| std::env::var(super::ENV).ok())
            .as_deref()
    }

    /// Read the variable now, while the environment is the caller's: the init
    /// inherits the answer by memory.
    pub fn arm() {
        let _ = armed_step();
    }

    pub fn point(step: &str) {
        if armed_step() == Some(step) {
            // SAFETY: raise(2) with a constant signal number.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    }

    pub fn hold(step: &str) {
        if armed_step() != Some(step) {
            return;
        }
        let mut old_name = [0u8; 16];
        let held = std::ffi::CString::new(super::HELD_COMM).unwrap_or_default();
        // SAFETY: prctl(2) with a 16-byte buffer (PR_GET_NAME's size) and a NUL-terminated name.
        unsafe {
            libc::prctl(libc::PR_GET_NAME, old_name.as_mut_ptr());
            libc::prctl(libc::PR_SET_NAME, held.as_ptr());
        }
        // Blocked, SIGCONT is queued for sigwait even though the init of a pid
        // namespace would otherwise ignore it.
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGCONT);
        let mut old_mask = nix::sys::signal::SigSet::empty();
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&set),
            Some(&mut old_mask),
        );
        let _ = set.wait();
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old_mask),
            None,
        );
        // SAFETY: as above; old_name is NUL-terminated by PR_GET_NAME.
        unsafe { libc::prctl(libc::PR_SET_NAME, old_name.as_ptr()) };
    }
}

#[cfg(not(all(feature = "fault-injection", debug_assertions)))]
mod armed {
    pub fn arm() {}
    pub fn point(_: &str) {}
    pub fn hold(_: &str) {}
}

/// Read `BERTH_FAULT_STOP_AT` before anything forks.
pub(crate) fn arm() {
    armed::arm()
}

/// A parent's step: `create` dies here by SIGKILL if this step is armed.
pub(crate) fn point(step: &str) {
    debug_assert!(PARENT_STEPS.contains(&step), "unknown fault step {step}");
    armed::point(step)
}

/// An init's step: the init waits here for SIGCONT if this step is armed.
pub(crate) fn hold(step: &str) {
    debug_assert!(INIT_STEPS.contains(&step), "unknown fault step {step}");
    armed::hold(step)
}
