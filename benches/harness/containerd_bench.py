"""The containerd part of benches/run (`--only containerd`, or its scenarios `ctr_run`,
`cri_pod`, `shim_memory`): a private containerd 1.6 with (a) the runc shim + runc,
(b) the runc shim + berth, (c) Berth's shim, and its report: medians, ratios against (a),
the issue's goals, and where the time of a `ctr run --rm` goes."""

import os
import shutil
import statistics
import subprocess

import containerd_scenarios as cs
from engine import Containerd, EngineFailed, crictl_path, missing_tools
from runtimes import Runtime

SCENARIOS = ["ctr_run", "cri_pod", "shim_memory"]
BASE = "runc-shim+runc"
GOAL_TIME = 0.5
GOAL_MEMORY = 0.25

# What each result is and its unit, in the order of the table.
TITLES = {
    "ctr_run_rm": ("ctr run --rm of /bin/true", "ms"),
    "cri_pod_start": ("CRI: runp + create + start of 1 container", "ms"),
    "ctr_shim_rss": ("ctr task running: shim RSS per task", "KiB"),
    "ctr_shim_pss": ("ctr task running: shim PSS per task", "KiB"),
    "ctr_shim_dirty": ("ctr task running: shim private dirty/task", "KiB"),
    "ctr_shim_processes": ("ctr task running: shim processes per task", ""),
    "cri_shim_rss": ("CRI pod running: shim RSS per pod", "KiB"),
    "cri_shim_pss": ("CRI pod running: shim PSS per pod", "KiB"),
    "cri_shim_dirty": ("CRI pod running: shim private dirty per pod", "KiB"),
    "cri_shim_processes": ("CRI pod running: shim processes per pod", ""),
    "ctr_version": ("breakdown: ctr version (client, 1 request)", "ms"),
    "ctr_snapshot": ("breakdown: snapshot prepare + rm (2 ctr)", "ms"),
    "runtime_run": ("breakdown: the runtime's own run (bundle)", "ms"),
}


def measure(args, runtimes: list[Runtime], params: dict, say) -> tuple[dict, dict[str, str]]:
    """Samples {result key: {variant: [values]}} and what could not be measured, why."""
    failures: dict[str, str] = {}
    missing = missing_tools()
    if missing:
        return {}, {"containerd scenarios": f"not installed: {', '.join(missing)}"}
    roots = os.path.join(args.work, "roots")
    roots = roots if os.path.isdir(roots) else args.work
    runc = args.runc or shutil.which("runc")
    variants = cs.variants(runc or "runc", args.berth, roots)
    if not runc:
        variants = variants[1:]
        failures[f"(a) {BASE}"] = "runc is not installed"
    if not (args.shim and os.access(args.shim, os.X_OK)):
        variants = [v for v in variants if v.binary is not None]
        failures["(c) berth-shim"] = f"no shim binary at {args.shim}"
    alone = [rt for rt in runtimes if rt.name in ("runc", "berth")]
    rootfs = os.path.join(args.bundle, "rootfs")
    timer = cs.Timer(os.path.join(args.work, "containerd-commands.log"))
    shim_root = os.path.join(roots, "cd-shim")
    samples: dict = {}
    wanted = set(args.only)

    if wanted & {"ctr_run", "shim_memory"}:
        try:
            engine = Containerd(os.path.join(args.work, "cd"), args.shim, shim_root)
        except EngineFailed as err:
            failures["ctr scenarios"] = str(err)
            engine = None
    if wanted & {"ctr_run", "shim_memory"} and engine:
        try:
            engine.import_image(rootfs)
            if "ctr_run" in wanted:
                say("containerd: ctr run --rm, alternating " + " ".join(v.name for v in variants))
                samples.update(cs.ctr_run(engine, list(variants), alone, args.bundle, args.rounds,
                                          timer, failures))
            if "shim_memory" in wanted:
                say(f"containerd: shim memory with {params['pods']} tasks running")
                samples.update(cs.shim_memory(engine, list(variants), params["memory_rounds"],
                                              params["pods"], False, failures))
        except EngineFailed as err:
            failures["ctr scenarios"] = str(err)
        finally:
            engine.stop()

    if wanted & {"cri_pod", "shim_memory"}:
        crictl = crictl_path()
        if not crictl:
            failures["CRI scenarios"] = "crictl is not built (scripts/build-crictl)"
            return samples, failures
        handlers = {v.handler: v.cri_handler() for v in variants}
        try:
            engine = Containerd(os.path.join(args.work, "cri"), args.shim, shim_root, handlers, crictl)
        except EngineFailed as err:
            failures["CRI scenarios"] = str(err)
            return samples, failures
        try:
            engine.import_image(rootfs)
            if "cri_pod" in wanted:
                say("containerd: CRI pod sandbox + container start")
                samples.update(cs.cri_pod(engine, list(variants), args.rounds, timer, failures))
            if "shim_memory" in wanted:
                say(f"containerd: shim memory with {params['pods']} CRI pods running")
                samples.update(cs.shim_memory(engine, list(variants), params["memory_rounds"],
                                              params["pods"], True, failures))
        except EngineFailed as err:
            failures["CRI scenarios"] = str(err)
        finally:
            engine.stop()
    return samples, failures


def summarise(samples: dict) -> dict:
    """{key: {title, unit, variants: {name: {median, min, max, n, x_a}}}}, in TITLES' order."""
    out = {}
    for key, (title, unit) in TITLES.items():
        per_variant = samples.get(key)
        if not per_variant:
            continue
        base = per_variant.get(BASE)
        rows = {}
        for name, values in per_variant.items():
            if not values:
                continue
            med = statistics.median(values)
            rows[name] = {"median": med, "min": min(values), "max": max(values), "n": len(values),
                          "x_a": med / statistics.median(base) if base and statistics.median(base) else None}
        out[key] = {"title": title, "unit": unit, "variants": rows}
    return out


def table(summary: dict) -> str:
    lines = [f"{'containerd scenario':46} {'variant':16} {'median':>9} {'min':>9} {'max':>9} "
             f"{'unit':4} {'x (a)':>6}"]
    for result in summary.values():
        for name, row in result["variants"].items():
            ratio = f"{row['x_a']:6.2f}" if row["x_a"] is not None else f"{'-':>6}"
            lines.append(f"{result['title']:46.46} {name:16} {_num(row['median'])} "
                         f"{_num(row['min'])} {_num(row['max'])} {result['unit']:4} {ratio}")
    lines.append("(a) runc shim + runc, (b) runc shim + berth (BinaryName), (c) Berth's shim "
                 f"io.containerd.berth.v2; x (a): median against (a)'s; {containerd_version()}")
    return "\n".join(lines)


def containerd_version() -> str:
    try:
        out = subprocess.run(["containerd", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "containerd ?"
    return out.strip() or "containerd ?"


def goals(summary: dict) -> list[str]:
    """The issue's goals: (c) at most half of (a)'s `ctr run --rm` time, at most a quarter
    of its shim memory per pod."""
    lines = []
    checks = [("ctr_run_rm", GOAL_TIME, "ctr run --rm time")]
    checks += [(key, GOAL_MEMORY, TITLES[key][0]) for key in
               ("ctr_shim_rss", "ctr_shim_pss", "cri_shim_rss", "cri_shim_pss")]
    for key, goal, what in checks:
        row = summary.get(key, {}).get("variants", {}).get("berth-shim")
        if row is None or row["x_a"] is None:
            lines.append(f"goal: {what}: (c) <= {goal:.2f}x (a): not measured")
            continue
        verdict = "met" if row["x_a"] <= goal else "missed"
        base = summary[key]["variants"][BASE]["median"]
        lines.append(f"goal: {what}: (c) <= {goal:.2f}x (a): (c) {row['median']:.1f} against "
                     f"{base:.1f} {summary[key]['unit']} = {row['x_a']:.2f}x: {verdict}")
    return lines


def breakdown(summary: dict) -> list[str]:
    """Each variant's median `ctr run --rm` taken apart by the breakdown rows: the ctr
    client (`ctr version`), the snapshot's prepare and remove (net of their two ctr
    starts), the runtime's own `run` (runc for (a), berth for (b), and for (c) berth's
    `run`, the same library calls in one process); the rest is containerd itself, the
    shim's start and requests, the rootfs mount, and, under the runc shim, the runtime
    started as separate create, start, state and delete commands."""
    runs = summary.get("ctr_run_rm", {}).get("variants", {})
    client = _median(summary, "ctr_version", "ctr")
    snapshot = _median(summary, "ctr_snapshot", "overlayfs")
    if not runs or client is None or snapshot is None:
        return []
    snapshot_net = max(snapshot - 2 * client, 0.0)
    lines = ["where a ctr run --rm goes (medians, ms): total = ctr client + snapshot (prepare + "
             "rm less two ctr versions; 0 within their noise) + the runtime's own run + the rest "
             "(containerd, the shim, mounts, runc-shim's commands)"]
    for name, row in runs.items():
        runtime = _median(summary, "runtime_run", "runc" if name == BASE else "berth")
        if runtime is None:
            continue
        rest = row["median"] - client - snapshot_net - runtime
        lines.append(f"  {name:16} {row['median']:7.1f} = {client:5.1f} + {snapshot_net:5.1f} + "
                     f"{runtime:5.1f} + {rest:6.1f}")
    return lines


def _median(summary: dict, key: str, name: str) -> float | None:
    row = summary.get(key, {}).get("variants", {}).get(name)
    return row["median"] if row else None


def _num(value: float) -> str:
    return f"{value:9.2f}" if value < 1000 else f"{value:9.0f}"
