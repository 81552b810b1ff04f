"""What a created container costs in memory: every process the runtime leaves behind for it."""

import os


def live_pids() -> set[int]:
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}


def container_memory(init: int, runtime_binary: str, before: set[int]) -> dict[str, float]:
    """Sums VmRSS, Private_Clean + Private_Dirty, and Private_Dirty alone (smaps_rollup),
    in KiB, over the container's init, its descendants, and any process running the
    runtime's binary that was not there before the create (a monitor or helper the runtime
    left behind). Private_Clean is mostly the runtime's own text while no other process
    maps it: a second waiting container shares those pages. Private_Dirty is what each
    container costs on its own."""
    pids = _descendants(init) | (_running(os.path.realpath(runtime_binary)) - before)
    rss = private = dirty = 0
    for pid in pids:
        rss += _field(f"/proc/{pid}/status", "VmRSS:")
        dirty += _field(f"/proc/{pid}/smaps_rollup", "Private_Dirty:")
        private += _field(f"/proc/{pid}/smaps_rollup", "Private_Clean:")
    return {"rss_kib": rss, "private_kib": private + dirty, "dirty_kib": dirty, "processes": len(pids)}


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    # The command name may hold spaces and parentheses: split after the last ')'.
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parents


def _descendants(root: int) -> set[int]:
    parents = _parents()
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _running(binary: str) -> set[int]:
    """Processes whose executable or argv[0] is the binary (`runc init` runs from a copy)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
                if os.readlink(f"/proc/{entry}/exe") == binary or argv0 == binary:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def _field(path: str, name: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
