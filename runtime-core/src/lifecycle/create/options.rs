//! What `create` takes besides the bundle's config.json, and a builder over it.

use crate::Stdio;
use oci_spec::runtime::Spec;
use std::path::PathBuf;

/// Everything `create` takes besides the bundle's config.json. Build it with
/// [`CreateOptions::new`] and the setters, or fill the fields directly.
///
/// Not `Clone`: it may own the descriptors given for the container's stdio
/// ([`CreateOptions::stdio`](#structfield.stdio)), which one container alone can have.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// The state root (runc's `--root`).
    pub root: PathBuf,
    /// The container's id: letters, digits and `_+-.` (see [`crate::state::validate_id`]).
    pub id: String,
    /// The bundle directory, holding config.json (unless [`spec`](#structfield.spec)
    /// is given): where a relative `root.path` and bind sources resolve, and
    /// the bundle the state records.
    pub bundle: PathBuf,
    /// The config, when the caller built it: used instead of
    /// `<bundle>/config.json`, which is then not read, and checked as that
    /// file would be ([`spec::check`](crate::spec::check)).
    pub spec: Option<Spec>,
    /// Where to write the init's host pid once it is set up (atomically, no newline).
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (`process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// Where to send a pidfd of the init (runc 1.2's `--pidfd-socket`).
    pub pidfd_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// runc's rootless mode: a cgroup this user may not make is done
    /// without, as long as the config asks for no limits.
    pub rootless: bool,
    /// Keep the caller's session keyring instead of a new one per container.
    pub no_new_keyring: bool,
    /// Pass file descriptors 3 .. 3+N of the caller to the container.
    pub preserve_fds: u32,
    /// Added to the process's environment after config.json's (the CLI's
    /// LISTEN_FDS and LISTEN_PID for socket-activation descriptors).
    pub extra_env: Vec<String>,
    /// Whether the caller returns without waiting (create, run -d), for the terminal checks:
    /// with `process.terminal` and no console socket, a detaching caller is refused, and one
    /// that stays gets the terminal's master from [`Container::take_console`](crate::Container::take_console).
    pub detach: bool,
    /// runc's `--systemd-cgroup`: the cgroup is a systemd scope, cgroupsPath `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The caller has a `NOTIFY_SOCKET`: give the container a socket at
    /// `/run/notify/notify.sock` for `start` to relay from (see [`crate::lifecycle::notify`]).
    pub notify_socket: bool,
    /// The init dies (SIGKILL) when the caller does: a foreground `run`
    /// that is killed leaves no container running with nobody to forward
    /// its signals, reap it or delete it. For this create alone (a pidfd of
    /// the caller, inherited by the init); a detaching caller must not ask.
    pub die_with_caller: bool,
    /// Keep the caller non-dumpable after the fork (dumpable for a
    /// rootless container whose id maps the runtime writes), as `berth`
    /// does; otherwise its dumpable flag is put back once the init is
    /// cloned (see `caller_effects`).
    pub leave_caller_non_dumpable: bool,
    /// The init's stdin, stdout and stderr, in place of the caller's (by
    /// default, each inherited). `create` takes them out of the options,
    /// and closes the caller's copies once the init is cloned: a pipe's
    /// reader sees end-of-file when the container's processes are gone.
    /// Refused with `process.terminal` ([`crate::StdioError::WithTerminal`]).
    pub stdio: Stdio,
}

/// A builder over the fields, for callers that set a few of them: every
/// option not named keeps its default (off, none, zero).
///
/// ```
/// use berth::CreateOptions;
///
/// let options = CreateOptions::new("/run/berth", "web", "/srv/bundles/web")
///     .pid_file("/run/web.pid")
///     .preserve_fds(2)
///     .extra_env(["LISTEN_FDS=2"]);
/// assert_eq!(options.id, "web");
/// assert_eq!(options.pid_file.as_deref(), Some(std::path::Path::new("/run/web.pid")));
/// assert_eq!(options.preserve_fds, 2);
/// assert!(options.console_socket.is_none() && !options.detach);
/// ```
impl CreateOptions {
    /// Container `id` from the bundle at `bundle`, its state under `root`.
    pub fn new(
        root: impl Into<PathBuf>,
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
    ) -> CreateOptions {
        CreateOptions {
            root: root.into(),
            id: id.into(),
            bundle: bundle.into(),
            ..Default::default()
        }
    }

    /// See [`CreateOptions::spec`](#structfield.spec).
    pub fn spec(mut self, spec: Spec) -> CreateOptions {
        self.spec = Some(spec);
        self
    }

    /// See [`CreateOptions::die_with_caller`](#structfield.die_with_caller).
    pub fn die_with_caller(mut self, die_with_caller: bool) -> CreateOptions {
        self.die_with_caller = die_with_caller;
        self
    }

    /// See [`CreateOptions::leave_caller_non_dumpable`](#structfield.leave_caller_non_dumpable).
    pub fn leave_caller_non_dumpable(mut self, leave: bool) -> CreateOptions {
        self.leave_caller_non_dumpable = leave;
        self
    }

    /// See [`CreateOptions::pid_file`](#structfield.pid_file).
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> CreateOptions {
        self.pid_file = Some(path.into());
        self
    }

    /// See [`CreateOptions::console_socket`](#structfield.console_socket).
    pub fn console_socket(mut self, path: impl Into<PathBuf>) -> CreateOptions {
        self.console_socket = Some(path.into());
        self
    }

    /// See [`CreateOptions::pidfd_socket`](#structfield.pidfd_socket).
    pub fn pidfd_socket(mut self, path: impl Into<PathBuf>) -> CreateOptions {
        self.pidfd_socket = Some(path.into());
        self
    }

    /// See [`CreateOptions::no_pivot`](#structfield.no_pivot).
    pub fn no_pivot(mut self, no_pivot: bool) -> CreateOptions {
        self.no_pivot = no_pivot;
        self
    }

    /// See [`CreateOptions::rootless`](#structfield.rootless).
    pub fn rootless(mut self, rootless: bool) -> CreateOptions {
        self.rootless = rootless;
        self
    }

    /// See [`CreateOptions::no_new_keyring`](#structfield.no_new_keyring).
    pub fn no_new_keyring(mut self, no_new_keyring: bool) -> CreateOptions {
        self.no_new_keyring = no_new_keyring;
        self
    }

    /// See [`CreateOptions::preserve_fds`](#structfield.preserve_fds).
    pub fn preserve_fds(mut self, count: u32) -> CreateOptions {
        self.preserve_fds = count;
        self
    }

    /// Adds to [`CreateOptions::extra_env`](#structfield.extra_env).
    pub fn extra_env<S: Into<String>>(mut self, env: impl IntoIterator<Item = S>) -> CreateOptions {
        self.extra_env.extend(env.into_iter().map(Into::into));
        self
    }

    /// See [`CreateOptions::detach`](#structfield.detach).
    pub fn detach(mut self, detach: bool) -> CreateOptions {
        self.detach = detach;
        self
    }

    /// See [`CreateOptions::systemd_cgroup`](#structfield.systemd_cgroup).
    pub fn systemd_cgroup(mut self, systemd_cgroup: bool) -> CreateOptions {
        self.systemd_cgroup = systemd_cgroup;
        self
    }

    /// See [`CreateOptions::notify_socket`](#structfield.notify_socket).
    pub fn notify_socket(mut self, notify_socket: bool) -> CreateOptions {
        self.notify_socket = notify_socket;
        self
    }
}
