"""Which functions of the shim binary each of its processes runs, for the link order
(docs/shim.md, "Code layout"). Run by scripts/shim-layout, as root.

    profile.py BINARY BUNDLE OUT

BINARY: an unstripped release build of containerd-shim-berth-v2. A uprobe is put at the
entry of each of its functions; a private containerd (benches/harness/engine.py) then
runs, through that binary, a CRI pod's life and a ctr task's life, and tracefs records
every entry with its process. OUT gets the functions' demangled names (nm -C: no crate
hashes, so the list outlives a rebuild), first those of the serving shims, then those of
their forkers, then their workers and exec waiters, then the `start` and `delete`
commands; each group in the order first run. scripts/link-in-order places them so at
the start of the binary's code.

Functions whose names mark them as glibc's vector string routines (memset's AVX-512
variant, and its kin) get no uprobe: the kernel's out-of-line step of their first
instruction left `start` spinning in memset (seen on 6.18). They are called by the rest,
which is enough to place their objects' code among the hot."""

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "benches", "harness"))
from engine import IMAGE, Containerd, crictl_path  # noqa: E402
import containerd_scenarios as cs  # noqa: E402

TRACING = "/sys/kernel/tracing"
GROUP = "berthshim"
SKIPPED = re.compile(r"avx|evex|sse|erms|_mmx|rtm")


def functions(binary: str) -> list[tuple[int, str, str]]:
    """(file offset, mangled name, demangled name) of each function in the text segment."""
    mangled = subprocess.run(["nm", "--defined-only", binary], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    demangled = subprocess.run(["nm", "-C", "--defined-only", binary], check=True,
                               capture_output=True, text=True).stdout.splitlines()
    text = text_segment(binary)
    out, seen = [], set()
    for raw, nice in zip(mangled, demangled):
        address, kind, name = raw.split(" ", 2)
        if kind not in "tTwW" or SKIPPED.search(name):
            continue
        address = int(address, 16)
        vaddr, offset, size = text
        if not vaddr <= address < vaddr + size or address in seen:
            continue
        seen.add(address)
        out.append((address - vaddr + offset, name, nice.split(" ", 2)[2]))
    return out


def text_segment(binary: str) -> tuple[int, int, int]:
    """The executable LOAD segment's (virtual address, file offset, size)."""
    headers = subprocess.run(["readelf", "-lW", binary], check=True, capture_output=True,
                             text=True).stdout
    for line in headers.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in fields[6:-1]:
            return int(fields[2], 16), int(fields[1], 16), int(fields[4], 16)
    raise SystemExit(f"{binary}: no executable LOAD segment")


def tracefs(name: str, value: str) -> None:
    with open(os.path.join(TRACING, name), "w") as f:
        f.write(value)


def probe(binary: str, funcs: list[tuple[int, str, str]]) -> None:
    tracefs("events/enable", "0")
    tracefs("uprobe_events", "")
    # One open and write a probe, as a shell's `>>` (tracefs refuses the seek to the end
    # that Python's "a" mode makes): 6,000 take a few seconds.
    for i, (offset, _, _) in enumerate(funcs):
        fd = os.open(os.path.join(TRACING, "uprobe_events"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, f"p:{GROUP}/f{i} {binary}:0x{offset:x}\n".encode())
        finally:
            os.close(fd)
    tracefs("trace", "")
    tracefs("buffer_size_kb", "65536")
    tracefs("options/record-tgid", "1")
    tracefs(f"events/{GROUP}/enable", "1")
    tracefs("tracing_on", "1")


def unprobe() -> None:
    """Removes the probes: about 50 ms each in the kernel, most of the profile's minutes."""
    tracefs("tracing_on", "0")
    try:
        tracefs(f"events/{GROUP}/enable", "0")
    except OSError:
        pass
    tracefs("uprobe_events", "")
    tracefs("options/record-tgid", "0")
    tracefs("buffer_size_kb", "1408")
    tracefs("tracing_on", "1")  # the kernel's default, as probe() found it


def workload(binary: str, bundle: str) -> None:
    """A CRI pod's life (runp, create, start, exec, stats, stop, rm) and a ctr task's (run
    -d, exec, metrics, pause, resume, kill, delete; run --rm), through `binary`."""
    work = tempfile.mkdtemp(prefix="shim-layout.", dir=os.path.join(HERE, "..", "..", "target"))
    variants = cs.variants("runc", "true", work)
    berth = [v for v in variants if v.runtime_type == cs.BERTH_SHIM_TYPE][0]
    # All three, as the benchmark's: the CRI plugin wants its default ("runc") among them.
    handlers = {v.handler: v.cri_handler() for v in variants}
    rootfs = os.path.join(bundle, "rootfs")

    engine = Containerd(os.path.join(work, "cri"), binary, os.path.join(work, "cd-shim"),
                        handlers, crictl_path())
    try:
        engine.import_image(rootfs)
        pod_config = engine.pod_config("layout")
        pod = engine.crictl("runp", "--runtime", berth.handler, pod_config).strip()
        cid = engine.crictl("create", "--no-pull", pod, engine.container_config("layout"),
                            pod_config).strip()
        engine.crictl("start", cid)
        time.sleep(1)
        engine.crictl("exec", cid, "true")
        engine.crictl("stats", cid)
        engine.crictl("inspect", cid)
        engine.crictl("stop", cid)
        engine.crictl("rm", cid)
        engine.crictl("stopp", pod)
        engine.crictl("rmp", pod)
    finally:
        engine.stop()

    engine = Containerd(os.path.join(work, "ctr"), binary, os.path.join(work, "cd-shim"))
    try:
        engine.import_image(rootfs)
        flags = berth.ctr_run_flags()
        engine.ctr("run", "-d", *flags, IMAGE, "layout")
        engine.ctr("task", "exec", "--exec-id", "e1", "layout", "true")
        engine.ctr("task", "metrics", "layout")
        engine.ctr("task", "pause", "layout")
        engine.ctr("task", "resume", "layout")
        engine.ctr("task", "kill", "-s", "SIGKILL", "layout")
        time.sleep(0.5)
        engine.ctr("task", "delete", "layout")
        engine.ctr("container", "rm", "layout")
        engine.ctr("run", "--rm", *flags, IMAGE, "layout-rm", "true")
    finally:
        engine.stop()


LINE = re.compile(r"\s*(.+?)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[\d+\].*?: f(\d+):")


def groups(trace: str, funcs: list[tuple[int, str, str]]) -> list[tuple[str, list[str]]]:
    """The traced entries as the four groups of the module's docstring."""
    by_process: dict[int, list[int]] = defaultdict(list)
    comms: dict[int, set[str]] = defaultdict(set)
    first: dict[int, int] = {}
    for n, line in enumerate(trace.splitlines()):
        m = LINE.match(line)
        if not m or not m.group(3).isdigit():
            continue
        tgid = int(m.group(3))
        first.setdefault(tgid, n)
        comms[tgid].add(m.group(1))
        by_process[tgid].append(int(m.group(4)))
    run_worker = {i for i, (_, _, name) in enumerate(funcs) if name.endswith("forker::run_worker")}

    def kind(tgid: int) -> int:
        if "client_handler" in comms[tgid]:
            return 0  # a serving shim: its ttrpc threads
        if run_worker & set(by_process[tgid]):
            return 1  # a forker: only it enters run_worker (its workers return from fork)
        if comms[tgid] & {"berth-forker", "berth-waiter"}:
            return 2  # a worker, or an exec's waiter
        return 3  # the start and delete commands
    order: list[list[int]] = [[], [], [], []]
    for tgid in sorted(by_process, key=first.__getitem__):
        order[kind(tgid)].extend(by_process[tgid])
    names = ["serving shim", "forker", "workers and waiters", "start and delete commands"]
    placed: set[str] = set()
    out = []
    for label, entries in zip(names, order):
        listed = []
        for i in entries:
            name = funcs[i][2]
            if name not in placed:
                placed.add(name)
                listed.append(name)
        out.append((label, listed))
    return out


def main() -> None:
    binary, bundle, out = sys.argv[1:4]
    binary = os.path.realpath(binary)
    funcs = functions(binary)
    if not funcs:
        raise SystemExit(f"{binary} has no symbols: build it unstripped")
    probe(binary, funcs)
    try:
        workload(binary, bundle)
        tracefs("tracing_on", "0")
        with open(os.path.join(TRACING, "trace")) as f:
            trace = f.read()
    finally:
        unprobe()
    listed = groups(trace, funcs)
    with open(out, "w") as f:
        f.write("# The shim's functions in the order scripts/link-in-order places them at the\n"
                "# start of its code (docs/shim.md, \"Code layout\"), by nm -C name. Made by\n"
                "# scripts/shim-layout; not edited by hand.\n")
        for label, names in listed:
            f.write(f"# {label}: {len(names)}\n")
            f.writelines(name + "\n" for name in names)
    for label, names in listed:
        print(f"{label}: {len(names)} functions")


if __name__ == "__main__":
    main()
