"""The containerd scenarios (issue 20): the same trivial container through containerd with
(a) the runc shim + runc, (b) the runc shim + berth as its runc binary (`BinaryName`),
(c) Berth's own shim (`io.containerd.berth.v2`), alternating a b c round by round as the
other scenarios alternate runtimes. Each returns {result key: {variant name: [samples]}}.

A variant that fails (Berth's shim under CRI before it supports pods, say) is dropped at
its first failure, and its error kept in `failures` for the report, so that the others
are still measured."""

import os
import time
from dataclasses import dataclass

from engine import IMAGE, Containerd, EngineFailed
from runtimes import Runtime

Samples = dict[str, list[float]]
RUNC_SHIM = "io.containerd.runc.v2"
BERTH_SHIM_TYPE = "io.containerd.berth.v2"
# How long a removed task's shim may take to exit before the next variant's are counted.
SHIM_EXIT_DEADLINE = 10
# Seconds the running tasks are left before their shims are read: the start's transient
# allocations (the Go shim's garbage, a reply buffer) settle as they would in a pod that
# has been running for a while.
SETTLE = 1.0


@dataclass
class Variant:
    """One way containerd runs a container: a shim, and for the runc shim its runc."""

    name: str
    label: str
    runtime_type: str
    binary: str | None
    root: str
    # The CRI runtime handler of this variant (a table of containerd's config).
    handler: str

    def ctr_run_flags(self) -> list[str]:
        if self.binary is None:
            return ["--runtime", self.runtime_type]
        return ["--runtime", self.runtime_type, "--runc-binary", self.binary, "--runc-root", self.root]

    def cri_handler(self) -> tuple[str, str | None, str]:
        return (self.runtime_type, self.binary, self.root)


def variants(runc: str, berth: str, roots: str) -> list[Variant]:
    return [
        Variant("runc-shim+runc", "(a)", RUNC_SHIM, runc, os.path.join(roots, "cd-runc"), "runc"),
        Variant("runc-shim+berth", "(b)", RUNC_SHIM, berth, os.path.join(roots, "cd-berth"), "berth"),
        Variant("berth-shim", "(c)", BERTH_SHIM_TYPE, None, os.path.join(roots, "cd-shim"),
                "berth-shim"),
    ]


class Timer:
    """Runs commands with stdin on /dev/null, stdout captured and stderr kept (and appended
    to a log); the wall time is from just before the spawn to the reaping."""

    def __init__(self, log: str):
        self.log = log

    def __call__(self, argv: list[str]) -> tuple[float, str]:
        out_path, err_path = self.log + ".out", self.log + ".err"
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644),
        ]
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        with open(out_path) as f:
            out = f.read()
        with open(err_path) as f:
            err = f.read()
        with open(self.log, "a") as f:
            f.write(err)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            last = "\n".join(err.strip().splitlines()[-3:])
            raise EngineFailed(f"{' '.join(argv)} exited {code}:\n{last}")
        return elapsed, out


def ctr_run(engine: Containerd, todo: list[Variant], alone: list[Runtime], bundle: str,
            rounds: int, timer: Timer, failures: dict[str, str]) -> dict[str, Samples]:
    """`ctr run --rm IMAGE ID /bin/true` per variant; and, in the same rounds, what the
    breakdown takes apart: `ctr version` (the client's start and one request), a snapshot
    prepared and removed by two ctr commands (the snapshotter's part of a run), and the
    runtimes' own `run` of a bundle of the same rootfs (`alone`)."""
    out: dict[str, Samples] = {"ctr_run_rm": {}, "ctr_version": {}, "ctr_snapshot": {},
                               "runtime_run": {}}
    parent = _committed_snapshot(engine)
    for i in range(rounds):
        for v in list(todo):
            argv = engine.ctr_argv("run", "--rm", *v.ctr_run_flags(), IMAGE, f"{v.handler}-run-{i}",
                                   "/bin/true")
            try:
                elapsed, _ = timer(argv)
                out["ctr_run_rm"].setdefault(v.name, []).append(elapsed)
            except EngineFailed as err:
                _drop(todo, v, failures, "ctr run --rm", err)
                engine.remove_all()
        out["ctr_version"].setdefault("ctr", []).append(timer(engine.ctr_argv("version"))[0])
        key = f"bench-snapshot-{i}"
        prepare = timer(engine.ctr_argv("snapshots", "prepare", key, parent))[0]
        remove = timer(engine.ctr_argv("snapshots", "rm", key))[0]
        out["ctr_snapshot"].setdefault("overlayfs", []).append(prepare + remove)
        for rt in alone:
            with rt.entered():
                out["runtime_run"].setdefault(rt.name, []).append(
                    rt.timed("run", "--bundle", bundle, f"{rt.name}-cdrun-{i}") * 1000)
    return out


def cri_pod(engine: Containerd, todo: list[Variant], rounds: int, timer: Timer,
            failures: dict[str, str]) -> dict[str, Samples]:
    """`crictl runp` of a pod (sandbox: the sleeper) + `crictl create` + `crictl start` of
    one container (the sleeper) in it: the sum of the three commands' wall time. The pod
    is stopped and removed after, untimed."""
    out: dict[str, Samples] = {"cri_pod_start": {}}
    for i in range(rounds):
        for v in list(todo):
            name = f"{v.handler}-pod-{i}"
            pod_config = engine.pod_config(name)
            ctr_config = engine.container_config(name)
            try:
                runp, pod = timer(engine.crictl_argv("runp", "--runtime", v.handler, pod_config))
                create, cid = timer(engine.crictl_argv("create", "--no-pull", pod.strip(),
                                                       ctr_config, pod_config))
                start, _ = timer(engine.crictl_argv("start", cid.strip()))
                out["cri_pod_start"].setdefault(v.name, []).append(runp + create + start)
            except EngineFailed as err:
                _drop(todo, v, failures, "CRI pod start", err)
            engine.remove_all()
    return out


def shim_memory(engine: Containerd, todo: list[Variant], rounds: int, pods: int, cri: bool,
                failures: dict[str, str]) -> dict[str, Samples]:
    """With `pods` tasks (ctr: `ctr run -d` of the sleeper) or pods (CRI: sandbox + one
    container) of a variant running, the shim processes of this containerd (and Berth's
    forker): Rss, Pss and Private_Dirty from /proc/PID/smaps_rollup, summed and divided
    by `pods`; and their number per pod. Pss shares each page among the processes
    mapping it, so the shims' common text counts once over all of them."""
    prefix = "cri" if cri else "ctr"
    out: dict[str, Samples] = {f"{prefix}_shim_{k}": {} for k in ("rss", "pss", "dirty", "processes")}
    for i in range(rounds):
        for v in list(todo):
            try:
                _wait_no_shims(engine)
                for n in range(pods):
                    name = f"{v.handler}-mem-{i}-{n}"
                    if cri:
                        _start_pod(engine, v, name)
                    else:
                        engine.ctr("run", "-d", *v.ctr_run_flags(), IMAGE, name)
                time.sleep(SETTLE)
                shims = engine.shim_pids()
                totals = {"rss": 0, "pss": 0, "dirty": 0}
                for pid in shims:
                    fields = _smaps_rollup(pid)
                    totals["rss"] += fields.get("Rss", 0)
                    totals["pss"] += fields.get("Pss", 0)
                    totals["dirty"] += fields.get("Private_Dirty", 0)
                for key, total in totals.items():
                    out[f"{prefix}_shim_{key}"].setdefault(v.name, []).append(total / pods)
                out[f"{prefix}_shim_processes"].setdefault(v.name, []).append(len(shims) / pods)
            except EngineFailed as err:
                _drop(todo, v, failures, f"{'CRI pods' if cri else 'ctr tasks'} for memory", err)
            finally:
                engine.remove_all()
    return out


def _start_pod(engine: Containerd, v: Variant, name: str) -> None:
    pod_config = engine.pod_config(name)
    pod = engine.crictl("runp", "--runtime", v.handler, pod_config).strip()
    cid = engine.crictl("create", "--no-pull", pod, engine.container_config(name), pod_config).strip()
    engine.crictl("start", cid)


def _wait_no_shims(engine: Containerd) -> None:
    deadline = time.monotonic() + SHIM_EXIT_DEADLINE
    while engine.shim_pids():
        if time.monotonic() > deadline:
            raise EngineFailed(f"shims still running after their tasks were removed: "
                               f"{sorted(engine.shim_pids())}")
        time.sleep(0.05)


def _committed_snapshot(engine: Containerd) -> str:
    """The image's unpacked layer, the parent of every container's snapshot."""
    for line in engine.ctr("snapshots", "ls").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[-1] == "Committed":
            return fields[0]
    raise EngineFailed("the image has no committed snapshot (was it unpacked?)")


def _smaps_rollup(pid: int) -> dict[str, int]:
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return fields


def _drop(todo: list[Variant], v: Variant, failures: dict[str, str], what: str,
          err: Exception) -> None:
    todo.remove(v)
    failures[f"{v.label} {v.name}: {what}"] = str(err)

