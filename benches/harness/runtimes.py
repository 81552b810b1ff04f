"""How each runtime is invoked and timed: argv, spawning, the wait, crun's mount namespace."""

import ctypes
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
_libc = ctypes.CDLL(None, use_errno=True)


class RuntimeFailed(Exception):
    pass


@dataclass
class Runtime:
    """One runtime under test. `mntns` is a mount-namespace fd the runtime is run in (crun)."""

    name: str
    binary: str
    root: str
    log: str
    mntns: int | None = None
    host_mntns: int | None = field(default=None, repr=False)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    @contextmanager
    def entered(self):
        """Runs the block in the runtime's mount namespace; children spawned there inherit it.

        setns(CLONE_NEWNS) needs a single-threaded caller: the driver has no threads.
        The working directory resets to / on every switch, so all paths are absolute."""
        if self.mntns is None:
            yield
            return
        _setns(self.mntns)
        try:
            yield
        finally:
            _setns(self.host_mntns)

    def spawn(self, argv: list[str]) -> int:
        """Starts argv with stdin and stdout on /dev/null and stderr appended to the log."""
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        ]
        return os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)

    def timed(self, *args: str) -> float:
        """Runs the runtime with args; returns the seconds of wall time until it is reaped."""
        argv = self.argv(*args)
        start = time.perf_counter()
        pid = self.spawn(argv)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
        self.check(argv, status)
        return elapsed

    def peak_rss(self, *args: str) -> int:
        """Runs the runtime with args under GNU time; returns ru_maxrss in KiB: the largest
        peak of the runtime and of the children it reaped (the container's processes).

        Not from the driver's own wait4: a child spawned by Python keeps, in its maxrss, the
        peak of the Python image it was cloned from. time's image is ~1 MiB, so a peak below
        that reads as about 1 MiB."""
        out = self.log + ".rss"
        argv = ["/usr/bin/time", "-f", "%M", "-o", out, *self.argv(*args)]
        _, status = os.waitpid(self.spawn(argv), 0)
        self.check(argv, status)
        with open(out) as f:
            return int(f.read().split()[-1])

    def call(self, *args: str) -> None:
        """Runs the runtime untimed (setup and teardown)."""
        argv = self.argv(*args)
        _, status, _ = os.wait4(self.spawn(argv), 0)
        self.check(argv, status)

    def output(self, *args: str) -> str:
        with self.entered():
            return subprocess.run(self.argv(*args), check=True, capture_output=True, text=True).stdout

    def check(self, argv: list[str], status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeFailed(f"{' '.join(argv)} exited {code}; stderr in {self.log}:\n{tail(self.log)}")


@dataclass
class Floor(Runtime):
    """The simple floor (benches/floor, simple.rs): only a `run`, with the rootfs as its
    argument; for `exec`, the exec floor into process `exec_target`."""

    rootfs: str = ""
    exec_target: int | None = None

    def argv(self, *args: str) -> list[str]:
        if args and args[0] == "exec":
            return [self.binary, "--exec", str(self.exec_target), *args[2:]]
        return [self.binary, self.rootfs]


@dataclass
class TrueFloor(Floor):
    """The true floor (benches/floor, full.rs): all the kernel work of runc's default
    config for a `run` (the id, last of the run's arguments, names its cgroups); for
    `exec`, the exec floor with the cgroups and process settings of that config."""

    hostname: str = ""
    program: list[str] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        if args and args[0] == "exec":
            return [self.binary, "--exec", "--full", str(self.exec_target), *args[2:]]
        return [self.binary, "--full", self.rootfs, args[-1], self.hostname, *self.program]


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def tail(path: str, lines: int = 5) -> str:
    try:
        with open(path) as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def crun_namespace() -> tuple[subprocess.Popen, int]:
    """A mount namespace with the host's cgroup2 mount hidden, and a process holding it.

    crun 1.8.1 refuses to run at all on a hybrid host whose cgroup2 hierarchy has a
    controller (here hugetlb), even with --cgroup-manager=disabled. Without that mount it
    sees a cgroup v1 host and does the same cgroup work as runc and Berth on their v1
    hierarchies, so its numbers stay comparable."""
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         "umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep infinity"],
        stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    return holder, os.open(f"/proc/{holder.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
