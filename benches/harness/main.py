"""Berth's benchmark driver: called by benches/run with the binaries and bundles it built."""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tomllib

import containerd_bench
import floors
import plot
import report
import scenarios
from runtimes import Floor, Runtime, RuntimeFailed, crun_namespace

PEERS = ["runc", "crun", "youki"]
ALL = ["run", "create_start_delete", "parallel", "memory", "exec", "list_state",
       *containerd_bench.SCENARIOS]
# Names for several scenarios at once.
GROUPS = {"containerd": containerd_bench.SCENARIOS}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benches/run", description=__doc__)
    p.add_argument("--rounds", type=int, help="rounds of the per-command scenarios (default 30)")
    p.add_argument("--quick", action="store_true", help="a smoke run: small counts, 2 rounds unless --rounds")
    p.add_argument("--full", action="store_true", help="1,000 containers for list/state (default 100)")
    p.add_argument("--only", default=",".join(ALL),
                   help=f"comma-separated scenarios ({','.join(ALL)}; containerd: the last three)")
    p.add_argument("--runtimes", default="berth,runc,crun,youki,floor,floor-true",
                   help="comma-separated runtimes (floor: the simple floor; floor-true: the true floor)")
    for peer in PEERS:
        p.add_argument(f"--{peer}", metavar="PATH",
                       help=f"the {peer} binary to compare (default: {peer} on PATH, if any)")
    p.add_argument("--baseline", help="another berth binary (a build of an earlier commit), "
                                      "measured in the same run as the runtime berth-base")
    p.add_argument("--results", help="directory for results.json, table.txt, ratios.svg "
                                     "(default benches/results/<time>)")
    # Given by benches/run:
    p.add_argument("--top", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--berth", required=True)
    p.add_argument("--floor", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--sleep-bundle", required=True)
    p.add_argument("--shim", help="containerd-shim-berth-v2, for the containerd scenarios")
    args = p.parse_args()
    if args.rounds is None:
        args.rounds = 2 if args.quick else 30
    args.only = [name for word in args.only.split(",") for name in GROUPS.get(word, [word])]
    unknown = set(args.only) - set(ALL)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": os.uname().release,
        "cgroups": cgroup_mode(),
        "memory_mib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def cgroup_mode() -> str:
    fstypes = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstypes[fields[4]] = fields[fields.index("-") + 1]
    if fstypes.get("/sys/fs/cgroup") == "cgroup2":
        return "v2"
    return "hybrid" if fstypes.get("/sys/fs/cgroup/unified") == "cgroup2" else "v1"


def versions(runtimes: list[Runtime]) -> dict[str, str]:
    """Each runtime's `--version` first line (the floors are this tree's)."""
    out = {}
    for rt in runtimes:
        if isinstance(rt, Floor):
            out[rt.name] = "benches/floor of this tree"
            continue
        try:
            text = subprocess.run([rt.binary, "--version"], capture_output=True, text=True).stdout
        except OSError as err:
            text = f"? ({err})"
        out[rt.name] = text.splitlines()[0] if text else "?"
    return out


def binaries(runtimes: list[Runtime], shim: str | None = None) -> dict:
    paths = {rt.name: rt.binary for rt in runtimes}
    if shim:
        paths["berth-shim"] = shim
    return {name: {"path": os.path.realpath(path), "bytes": os.stat(path).st_size}
            for name, path in paths.items()}


def release_profile(top: str) -> dict:
    with open(os.path.join(top, "Cargo.toml"), "rb") as f:
        return tomllib.load(f).get("profile", {}).get("release", {})


def make_runtimes(args, mntns: int | None, host_mntns: int) -> list[Runtime]:
    wanted = args.runtimes.split(",")
    candidates = {"berth": args.berth}
    for peer in PEERS:
        candidates[peer] = getattr(args, peer) or shutil.which(peer)
    if args.baseline:
        candidates["berth-base"] = args.baseline
        if "berth-base" not in wanted:
            wanted.insert(1, "berth-base")
    out: list[Runtime] = []
    for name in wanted:
        log = os.path.join(args.work, f"{name}.log")
        if name in ("floor", "floor-true"):
            floor = floors.make(name, args.floor, args.bundle, args.berth, args.work, log)
            if floor:
                out.append(floor)
            continue
        binary = candidates.get(name)
        if not binary:
            print(f"skipping {name}: not installed", file=sys.stderr)
            continue
        # benches/run mounts a tmpfs on roots/ (as /run is); without it, the work dir.
        roots = os.path.join(args.work, "roots")
        root = os.path.join(roots if os.path.isdir(roots) else args.work, f"root-{name}")
        ns = mntns if name == "crun" else None
        out.append(Runtime(name, binary, root, log, mntns=ns, host_mntns=host_mntns))
    return [rt for rt in out if probe(rt, args.bundle)]


def probe(rt: Runtime, bundle: str) -> bool:
    """Keeps the runtimes that can run the bundle here (one untimed run)."""
    try:
        with rt.entered():
            rt.call("run", "--bundle", bundle, "probe")
        return True
    except (RuntimeFailed, OSError) as err:
        print(f"skipping {rt.name}: it cannot run the bundle here: {err}", file=sys.stderr)
        return False


def leftovers(rt: Runtime) -> None:
    """Deletes whatever a failed scenario left in the runtime's state root."""
    if isinstance(rt, Floor):
        return
    try:
        for cid in rt.output("list", "-q").split():
            with rt.entered():
                rt.call("delete", "--force", cid)
    except (RuntimeFailed, subprocess.CalledProcessError, OSError) as err:
        print(f"benches: cleaning up {rt.name}: {err}", file=sys.stderr)


def measure(args, runtimes: list[Runtime], params: dict) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {}
    if "run" in args.only:
        say("sequential run")
        samples["run"] = scenarios.run(runtimes, args.bundle, args.rounds)
    if "create_start_delete" in args.only:
        say("create + start + delete")
        samples["create_start_delete"] = scenarios.create_start_delete(
            [rt for rt in runtimes if not isinstance(rt, Floor)], args.bundle, args.rounds)
    if "parallel" in args.only:
        say(f"{params['count']} runs, {params['width']} at a time")
        samples["parallel"] = scenarios.parallel(
            runtimes, args.bundle, params["parallel_rounds"], params["count"], params["width"])
    if "memory" in args.only:
        say("memory: peak during run, created container")
        samples["run_peak_rss"] = scenarios.run_peak_rss(runtimes, args.bundle, params["memory_rounds"])
        mem = scenarios.created_memory(runtimes, args.bundle, params["memory_rounds"])
        samples["created_rss"] = mem["rss_kib"]
        samples["created_private"] = mem["private_kib"]
        samples["created_dirty"] = mem["dirty_kib"]
        samples["created_processes"] = mem["processes"]
    if "exec" in args.only:
        say("exec")
        samples["exec"] = scenarios.exec_true(runtimes, args.sleep_bundle, args.rounds)
    if "list_state" in args.only:
        say(f"list and state with {params['many']} containers")
        many = scenarios.list_and_state(runtimes, args.bundle, args.rounds, params["many"])
        samples["list"] = many["list"]
        samples["state"] = many["state"]
    return samples


def say(text: str) -> None:
    print(f"benches: {text} ...", file=sys.stderr, flush=True)


def main() -> int:
    args = parse_args()
    params = {
        "count": 20 if args.quick else 100,
        "width": 4,
        "many": 1000 if args.full else (10 if args.quick else 100),
        "parallel_rounds": 1 if args.quick else 5,
        "memory_rounds": min(args.rounds, 5),
        # Tasks or pods running at once when the shims' memory is read.
        "pods": 2 if args.quick else 4,
    }
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = args.results or os.path.join(args.top, "benches", "results", stamp)
    os.makedirs(results, exist_ok=True)

    host_mntns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    holder, mntns = (None, None)
    if cgroup_mode() == "hybrid" and "crun" in args.runtimes.split(","):
        holder, mntns = crun_namespace()
    runtimes: list[Runtime] = []
    engine_samples, engine_failures = ({}, {})
    try:
        runtimes = make_runtimes(args, mntns, host_mntns)
        if not any(rt.name == "berth" for rt in runtimes):
            print("benches: berth cannot run here; nothing to compare", file=sys.stderr)
            return 1
        samples = measure(args, runtimes, params)
        if set(args.only) & set(containerd_bench.SCENARIOS):
            engine_samples, engine_failures = containerd_bench.measure(args, runtimes, params, say)
    finally:
        for rt in runtimes:
            leftovers(rt)
        if holder:
            holder.kill()
            holder.wait()

    summary = report.summarise(samples, params)
    speedup = report.parallel_speedup(summary, params["count"])
    info = machine()
    named = versions(runtimes)
    text = "\n".join([
        f"machine: {info['cores']} cores, {info['cpu']}, kernel {info['kernel']}, "
        f"cgroups {info['cgroups']}, {info['memory_mib']} MiB",
        f"rounds: {args.rounds} (parallel {params['parallel_rounds']}, memory {params['memory_rounds']}); "
        f"alternating {' '.join(rt.name for rt in runtimes)}",
        "versions: " + "; ".join(f"{name} {version}" for name, version in named.items()),
        "",
        *([report.table(summary, speedup, info["cores"]), ""] if summary else []),
        "binaries:",
        report.binaries_table(binaries(runtimes, args.shim if engine_samples else None)),
        f"release profile: {release_profile(args.top)}",
    ])
    engine_summary = containerd_bench.summarise(engine_samples)
    if engine_summary or engine_failures:
        text += "\n\n" + "\n".join([
            containerd_bench.table(engine_summary),
            *containerd_bench.goals(engine_summary),
            *containerd_bench.breakdown(engine_summary),
            *(f"not measured: {what}: {why}" for what, why in engine_failures.items()),
        ])
    print(text)
    document = {
        "machine": info,
        "versions": named,
        "parameters": {**params, "rounds": args.rounds, "quick": args.quick, "full": args.full},
        "crun_mount_namespace": mntns is not None,
        "binaries": binaries(runtimes, args.shim if engine_samples else None),
        "release_profile": release_profile(args.top),
        "results": summary,
        "parallel_speedup": speedup,
        "samples": samples,
        "containerd": {"results": engine_summary, "samples": engine_samples,
                       "not_measured": engine_failures},
    }
    report.write_json(os.path.join(results, "results.json"), document)
    with open(os.path.join(results, "table.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(results, "ratios.svg"), "w") as f:
        f.write(plot.ratios_svg(summary))
    print(f"\nresults: {results}/results.json, table.txt, ratios.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
