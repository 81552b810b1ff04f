"""Summaries, the printed table and the JSON results file."""

import json
import statistics

# What each result is, its unit, and which floor sample its ratios are taken against: the
# simple floor's ("floor") and the true floor's ("floor-true") of that scenario.
SCENARIOS = {
    "run": ("sequential run of /bin/true", "ms", "run"),
    "create_start_delete": ("create + start + delete (sum)", "ms", "run"),
    "parallel": ("{count} runs, {width} at a time (total)", "ms", "parallel"),
    "exec": ("exec /bin/true into a running container", "ms", "exec"),
    "list": ("list, {many} containers in the root", "ms", None),
    "state": ("state, {many} containers in the root", "ms", None),
    "run_peak_rss": ("run: peak RSS (largest process)", "KiB", "run_peak_rss"),
    "created_rss": ("created container: RSS left behind", "KiB", None),
    "created_private": ("created container: private memory left behind", "KiB", None),
    "created_dirty": ("created container: private dirty", "KiB", None),
    "created_processes": ("created container: processes left behind", "", None),
}


def summarise(samples: dict[str, dict[str, list[float]]], params: dict) -> dict:
    """{scenario: {runtime: {median, min, max, n, x_floor, x_true_floor, x_berth}}} from raw
    samples."""
    out = {}
    for key, per_runtime in samples.items():
        _, _, floor_key = SCENARIOS[key]
        floor = samples.get(floor_key, {}).get("floor") if floor_key else None
        true_floor = samples.get(floor_key, {}).get("floor-true") if floor_key else None
        berth = per_runtime.get("berth")
        rows = {}
        for name, values in per_runtime.items():
            med = statistics.median(values)
            rows[name] = {
                "median": med,
                "min": min(values),
                "max": max(values),
                "n": len(values),
                "x_floor": med / statistics.median(floor) if floor else None,
                "x_true_floor": med / statistics.median(true_floor) if true_floor else None,
                "x_berth": med / statistics.median(berth) if berth else None,
            }
        out[key] = {"title": title(key, params), "unit": SCENARIOS[key][1], "runtimes": rows}
    return out


def title(key: str, params: dict) -> str:
    return SCENARIOS[key][0].format(**params)


def parallel_speedup(summary: dict, count: int) -> dict[str, float]:
    """How many sequential runs' worth of time the parallel batch saved: count x run / batch."""
    if "parallel" not in summary or "run" not in summary:
        return {}
    runs = summary["run"]["runtimes"]
    return {
        name: count * runs[name]["median"] / row["median"]
        for name, row in summary["parallel"]["runtimes"].items()
        if name in runs
    }


def table(summary: dict, speedup: dict[str, float], cores: int) -> str:
    lines = [f"{'scenario':48} {'runtime':10} {'median':>9} {'min':>9} {'max':>9} {'unit':4} "
             f"{'x floor':>7} {'x true':>7} {'x berth':>7}"]
    for key, result in summary.items():
        for name, row in result["runtimes"].items():
            lines.append(
                f"{result['title']:48.48} {name:10} {_num(row['median'])} {_num(row['min'])} "
                f"{_num(row['max'])} {result['unit']:4} {_ratio(row['x_floor'])} "
                f"{_ratio(row['x_true_floor'])} {_ratio(row['x_berth'])}")
    if speedup:
        parts = ", ".join(f"{name} {value:.2f}x" for name, value in speedup.items())
        lines.append(f"parallel speedup over sequential runs ({cores} cores): {parts}")
    lines.append("x floor: against the simple floor (namespaces, rootfs, /proc; for exec: setns, "
                 "fork, exec); x true: against the true floor (all the kernel work of the config)")
    return "\n".join(lines)


def binaries_table(binaries: dict) -> str:
    return "\n".join(f"{name:12} {info['bytes'] / 1024:8.0f} KiB  {info['path']}"
                     for name, info in binaries.items())


def _num(value: float) -> str:
    return f"{value:9.2f}" if value < 1000 else f"{value:9.0f}"


def _ratio(value: float | None) -> str:
    return f"{value:7.2f}" if value is not None else f"{'-':>7}"


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
