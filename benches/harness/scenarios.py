"""The scenarios. Each alternates the runtimes round by round (A B C A B C ...) so that
drift on the machine falls on all alike, and returns {runtime name: [samples]}.

Container ids start with the runtime's name: the default cgroupsPath is derived from the
id, so two runtimes' containers of one id would share cgroups."""

import json
import os
import time

from memory import container_memory, live_pids
from runtimes import Floor, Runtime

Samples = dict[str, list[float]]


def _ms(seconds: float) -> float:
    return seconds * 1000


def run(runtimes: list[Runtime], bundle: str, rounds: int) -> Samples:
    """Sequential `run` of /bin/true."""
    times: Samples = {rt.name: [] for rt in runtimes}
    for i in range(rounds):
        for rt in runtimes:
            with rt.entered():
                times[rt.name].append(_ms(rt.timed("run", "--bundle", bundle, f"{rt.name}-run-{i}")))
    return times


def run_peak_rss(runtimes: list[Runtime], bundle: str, rounds: int) -> Samples:
    """Peak RSS (KiB) of a `run` of /bin/true: the runtime's and its children's largest."""
    peaks: Samples = {rt.name: [] for rt in runtimes}
    for i in range(rounds):
        for rt in runtimes:
            with rt.entered():
                peaks[rt.name].append(rt.peak_rss("run", "--bundle", bundle, f"{rt.name}-peak-{i}"))
    return peaks


def create_start_delete(runtimes: list[Runtime], bundle: str, rounds: int) -> Samples:
    """create, start and delete as three commands; the sample is their sum.

    delete is --force: /bin/true has normally exited by then (and --force then costs nothing
    more); if it has not, stopping it is part of the cost."""
    times: Samples = {rt.name: [] for rt in runtimes}
    for i in range(rounds):
        for rt in runtimes:
            cid = f"{rt.name}-csd-{i}"
            with rt.entered():
                total = rt.timed("create", "--bundle", bundle, cid)
                total += rt.timed("start", cid)
                total += rt.timed("delete", "--force", cid)
            times[rt.name].append(_ms(total))
    return times


def parallel(runtimes: list[Runtime], bundle: str, rounds: int, count: int, width: int) -> Samples:
    """`count` runs of /bin/true, `width` at a time; the sample is the total wall time."""
    times: Samples = {rt.name: [] for rt in runtimes}
    for i in range(rounds):
        for rt in runtimes:
            with rt.entered():
                times[rt.name].append(_ms(_parallel_once(rt, bundle, f"{rt.name}-par-{i}", count, width)))
    return times


def _parallel_once(rt: Runtime, bundle: str, prefix: str, count: int, width: int) -> float:
    running: dict[int, list[str]] = {}
    failed: list[tuple[list[str], int]] = []
    start = time.perf_counter()
    for n in range(count):
        if len(running) == width:
            pid, status = os.wait()
            argv = running.pop(pid)
            if status:
                failed.append((argv, status))
        argv = rt.argv("run", "--bundle", bundle, f"{prefix}-{n}")
        running[rt.spawn(argv)] = argv
    while running:
        pid, status = os.wait()
        argv = running.pop(pid)
        if status:
            failed.append((argv, status))
    elapsed = time.perf_counter() - start
    for argv, status in failed:
        rt.check(argv, status)
    return elapsed


def created_memory(runtimes: list[Runtime], bundle: str, rounds: int) -> dict[str, Samples]:
    """Memory of what each runtime leaves behind for one created container.

    Returns {"rss_kib": samples, "private_kib": samples, "processes": samples}."""
    out: dict[str, Samples] = {"rss_kib": {}, "private_kib": {}, "dirty_kib": {}, "processes": {}}
    # A binary just built sits dirty in the page cache, and its text would count as the
    # container's dirty memory until written back.
    os.sync()
    for i in range(rounds):
        for rt in runtimes:
            if isinstance(rt, Floor):
                continue
            cid = f"{rt.name}-mem-{i}"
            pid_file = os.path.join(os.path.dirname(rt.log), f"{rt.name}-{cid}.pid")
            with rt.entered():
                before = live_pids()
                rt.call("create", "--bundle", bundle, "--pid-file", pid_file, cid)
                try:
                    with open(pid_file) as f:
                        init = int(f.read())
                    mem = container_memory(init, rt.binary, before)
                finally:
                    rt.call("delete", "--force", cid)
            for key, value in mem.items():
                out[key].setdefault(rt.name, []).append(value)
    return out


def exec_true(runtimes: list[Runtime], sleep_bundle: str, rounds: int) -> Samples:
    """`exec` of /bin/true into a running container whose process is `sleep`.

    The floors exec into Berth's container: the simple floor as the exec floor (setns into
    its namespaces, fork, exec), the true floor with the cgroups and process settings of
    the config as well (benches/floor/src/exec.rs)."""
    floors = [rt for rt in runtimes if isinstance(rt, Floor)]
    runtimes = [rt for rt in runtimes if not isinstance(rt, Floor)]
    for rt in runtimes:
        with rt.entered():
            rt.call("create", "--bundle", sleep_bundle, f"{rt.name}-exec")
            rt.call("start", f"{rt.name}-exec")
    berth = next((rt for rt in runtimes if rt.name == "berth"), None)
    if berth:
        target = json.loads(berth.output("state", "berth-exec"))["pid"]
        for floor in floors:
            floor.exec_target = target
        runtimes += floors
    times: Samples = {rt.name: [] for rt in runtimes}
    try:
        for _ in range(rounds):
            for rt in runtimes:
                with rt.entered():
                    times[rt.name].append(_ms(rt.timed("exec", f"{rt.name}-exec", "/bin/true")))
    finally:
        for rt in runtimes:
            if not isinstance(rt, Floor):
                with rt.entered():
                    rt.call("delete", "--force", f"{rt.name}-exec")
    return times


def list_and_state(runtimes: list[Runtime], bundle: str, rounds: int, count: int) -> dict[str, Samples]:
    """`list` and `state` with `count` created containers (real ones: an init each, waiting
    for start, with its cgroups and state) in each runtime's state root.

    Returns {"list": samples, "state": samples}."""
    runtimes = [rt for rt in runtimes if not isinstance(rt, Floor)]
    ids = {rt.name: [f"{rt.name}-many-{n:04d}" for n in range(count)] for rt in runtimes}
    made: dict[str, list[str]] = {rt.name: [] for rt in runtimes}
    out: dict[str, Samples] = {"list": {}, "state": {}}
    try:
        for rt in runtimes:
            with rt.entered():
                for cid in ids[rt.name]:
                    rt.call("create", "--bundle", bundle, cid)
                    made[rt.name].append(cid)
        listed = {rt.name: rt.output("list", "-q").split() for rt in runtimes}
        for rt in runtimes:
            if len(listed[rt.name]) != count:
                raise RuntimeError(f"{rt.name} lists {len(listed[rt.name])} containers, not {count}")
        for _ in range(rounds):
            for rt in runtimes:
                with rt.entered():
                    out["list"].setdefault(rt.name, []).append(_ms(rt.timed("list")))
                    out["state"].setdefault(rt.name, []).append(_ms(rt.timed("state", ids[rt.name][count // 2])))
    finally:
        for rt in runtimes:
            with rt.entered():
                for cid in made[rt.name]:
                    rt.call("delete", "--force", cid)
    return out
