"""A private containerd for the containerd scenarios, as conformance/src/containerd.rs and
cri.rs start one for the tests: its own config.toml, socket, root and state under the
work directory, a busybox image built offline with umoci and imported, `ctr` and
`crictl` pointed at it. `stop` removes what it started: pods, tasks, containerd, the
shims of its socket (by pid) and the cgroups of its namespace."""

import json
import os
import shutil
import signal
import subprocess
import time

from runtimes import tail

IMAGE = "berth.test/busybox:latest"
# The image's command, and so the CRI sandbox's ("pause") process: idles until SIGTERM.
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]
IMAGE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CRI_NAMESPACE = "k8s.io"
# The shim of runtime type io.containerd.berth.v2, found by containerd on its PATH.
BERTH_SHIM = "containerd-shim-berth-v2"
TOOLS = ["containerd", "ctr", "umoci", "containerd-shim-runc-v2"]


class EngineFailed(Exception):
    pass


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not shutil.which(tool)]


def crictl_path() -> str | None:
    """Where scripts/build-crictl leaves crictl (as conformance/src/cri.rs looks), or PATH's."""
    if os.environ.get("CRICTL"):
        return os.environ["CRICTL"]
    cache = os.environ.get("BERTH_CACHE") or "/var/cache/berth"
    built = os.path.join(cache, "cri-tools-1.26.1", "crictl")
    return built if os.access(built, os.X_OK) else shutil.which("crictl")


class Containerd:
    """One private containerd; `handlers` ({name: (runtime type, BinaryName or None)})
    turns its CRI plugin on with those runtime handlers (else CRI is disabled, as for the
    conformance tests' ctr runs)."""

    def __init__(self, dir: str, shim: str, shim_root: str, handlers: dict | None = None,
                 crictl: str | None = None):
        self.dir = dir
        self.socket = os.path.join(dir, "containerd.sock")
        self.namespace = CRI_NAMESPACE if handlers else f"berth-bench-{os.getpid()}"
        self.cgroup_parent = f"berth-bench-cri-{os.getpid()}"
        self.crictl_binary = crictl
        self.log = os.path.join(dir, "containerd.log")
        os.makedirs(os.path.join(dir, "bin"), exist_ok=True)
        os.makedirs(os.path.join(dir, "pods"), exist_ok=True)
        for sub in ("cni/bin", "cni/net.d"):
            os.makedirs(os.path.join(dir, sub), exist_ok=True)
        os.symlink(shim, os.path.join(dir, "bin", BERTH_SHIM))
        config = os.path.join(dir, "config.toml")
        with open(config, "w") as f:
            f.write(config_toml(dir, self.socket, handlers))
        env = dict(os.environ, PATH=os.path.join(dir, "bin") + ":" + os.environ.get("PATH", ""),
                   BERTH_SHIM_ROOT=shim_root)
        with open(self.log, "w") as log:
            self.daemon = subprocess.Popen(["containerd", "--config", config], env=env,
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while self.ctr_status("version") != 0:
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise EngineFailed(f"containerd did not come up; log {self.log}:\n{tail(self.log)}")
            time.sleep(0.1)

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "-a", self.socket, "-n", self.namespace, *args]

    def ctr_status(self, *args: str) -> int:
        return subprocess.run(self.ctr_argv(*args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    def ctr(self, *args: str) -> str:
        """Runs ctr untimed; its stdout, or EngineFailed with its stderr."""
        return _checked(self.ctr_argv(*args))

    def crictl_argv(self, *args: str) -> list[str]:
        endpoint = f"unix://{self.socket}"
        return [self.crictl_binary, "--runtime-endpoint", endpoint, "--image-endpoint", endpoint,
                "--timeout", "60s", *args]

    def crictl(self, *args: str) -> str:
        return _checked(self.crictl_argv(*args))

    def import_image(self, rootfs: str) -> None:
        """A one-layer OCI image of `rootfs` whose command is the sleeper, imported; for CRI,
        waits until the CRI plugin sees it."""
        layout = os.path.join(self.dir, "image")
        ref = f"{layout}:latest"
        config = ["umoci", "config", "--image", ref, "--config.env", IMAGE_PATH]
        for word in SLEEPER:
            config += ["--config.cmd", word]
        for argv in (["umoci", "init", "--layout", layout], ["umoci", "new", "--image", ref],
                     ["umoci", "insert", "--image", ref, rootfs, "/"], config):
            _checked(argv)
        tar = os.path.join(self.dir, "image.tar")
        _checked(["tar", "-C", layout, "-cf", tar, "."])
        self.ctr("image", "import", "--base-name", "berth.test/busybox", tar)
        if self.crictl_binary:
            deadline = time.monotonic() + 60
            while subprocess.run(self.crictl_argv("inspecti", IMAGE), capture_output=True).returncode:
                if time.monotonic() > deadline:
                    raise EngineFailed(f"the CRI plugin does not see {IMAGE}")
                time.sleep(0.2)

    def pod_config(self, name: str) -> str:
        """A pod on the host's network (no CNI), each container in a pid namespace of its
        own (the kubelet's default), its cgroups under this containerd's parent."""
        logs = os.path.join(self.dir, "pods", name)
        os.makedirs(logs, exist_ok=True)
        config = {
            "metadata": {"name": name, "namespace": "bench", "uid": name, "attempt": 0},
            "log_directory": logs,
            "linux": {"cgroup_parent": f"/{self.cgroup_parent}",
                      "security_context": {"namespace_options": {"network": 2, "pid": 1}}},
        }
        return _write_json(os.path.join(self.dir, f"{name}.pod.json"), config)

    def container_config(self, name: str) -> str:
        config = {"metadata": {"name": name}, "image": {"image": IMAGE},
                  "command": SLEEPER, "log_path": f"{name}.log"}
        return _write_json(os.path.join(self.dir, f"{name}.ctr.json"), config)

    def shim_pids(self) -> set[int]:
        """The shims serving this containerd (their argv names its socket) and their
        children that run the same binary (Berth's forker)."""
        shims = set()
        for pid in _pids():
            argv = _cmdline(pid)
            if argv and os.path.basename(argv[0]).startswith("containerd-shim") and \
                    self.socket in argv:
                shims.add(pid)
        forkers = set()
        for pid in _pids():
            parent = _ppid(pid)
            if parent in shims and _exe(pid) == _exe(parent):
                forkers.add(pid)
        return shims | forkers

    def remove_all(self) -> None:
        """Removes every pod, task and container of this containerd (untimed cleanup)."""
        if self.crictl_binary:
            subprocess.run(self.crictl_argv("rmp", "--all", "--force"), capture_output=True)
        listed = subprocess.run(self.ctr_argv("container", "ls", "-q"), capture_output=True, text=True)
        for cid in listed.stdout.split():
            for args in (("task", "kill", "-s", "SIGKILL", cid), ("task", "delete", "-f", cid),
                         ("container", "rm", cid)):
                subprocess.run(self.ctr_argv(*args), capture_output=True)

    def stop(self) -> None:
        shims = set()
        try:
            self.remove_all()
            shims = self.shim_pids()
        finally:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait()
        # A shim whose task was removed exits by itself; one that did not is ours to end.
        for pid in shims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for name in (self.namespace, self.cgroup_parent):
            _remove_cgroups(name)


def config_toml(dir: str, socket: str, handlers: dict | None) -> str:
    """containerd's config: private paths, no plugin reaching outside; CRI disabled, or
    enabled with `handlers` and the busybox image as the sandbox image."""
    disabled = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
    if not handlers:
        disabled.insert(0, "io.containerd.grpc.v1.cri")
    lines = [
        "version = 2",
        f'root = "{dir}/root"',
        f'state = "{dir}/state"',
        "disabled_plugins = [" + ", ".join(f'"{p}"' for p in disabled) + "]",
        "[grpc]", f'  address = "{socket}"',
        "[ttrpc]", f'  address = "{socket}.ttrpc"',
        "[debug]", '  address = ""',
        "[metrics]", '  address = ""',
    ]
    if handlers:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        lines += [
            f"[{cri}]",
            f'  sandbox_image = "{IMAGE}"',
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            "  disable_apparmor = true",
            "  restrict_oom_score_adj = true",
            "  enable_selinux = false",
            f"[{cri}.cni]", f'  bin_dir = "{dir}/cni/bin"', f'  conf_dir = "{dir}/cni/net.d"',
            f"[{cri}.containerd]", '  snapshotter = "overlayfs"',
        ]
        for name, (runtime_type, binary, root) in handlers.items():
            lines += [f"[{cri}.containerd.runtimes.{name}]", f'  runtime_type = "{runtime_type}"']
            if binary:
                lines += [f"[{cri}.containerd.runtimes.{name}.options]",
                          f'  BinaryName = "{binary}"', f'  Root = "{root}"']
    return "\n".join(lines) + "\n"


def _checked(argv: list[str]) -> str:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineFailed(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _write_json(path: str, value: dict) -> str:
    with open(path, "w") as f:
        json.dump(value, f)
    return path


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _remove_cgroups(name: str) -> None:
    """rmdir of /sys/fs/cgroup/*/<name> and what is under it, deepest first (empty ones)."""
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", hierarchy, name)
        if not os.path.isdir(top):
            continue
        for path, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            try:
                os.rmdir(path)
            except OSError:
                pass
