"""Reads `strace -f -tt -T` output of one `berth run` and says where its wall time went.

Usage: strace_summary.py TRACE. Prints, per process, its lifetime and the syscalls that
took the most wall time in all (blocking included), then the longest single calls and the
longest stretches between calls (time in user space, or off the CPU between calls).
strace slows every call; read the shares, not the absolute numbers."""

import collections
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+):(\d+):([\d.]+) (.*)$")
CALL = re.compile(r"^(?:<\.\.\. )?(\w+)")
DURATION = re.compile(r"<([\d.]+)>$")


def parse(path):
    events = []
    for line in open(path):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        pid, h, mi, s, rest = m.groups()
        t = int(h) * 3600 + int(mi) * 60 + float(s)
        name = CALL.match(rest)
        dur = DURATION.search(rest)
        events.append((int(pid), t, name.group(1) if name else "?", float(dur.group(1)) if dur else None, rest))
    return events


def main(path):
    events = parse(path)
    start, end = events[0][1], events[-1][1]
    print(f"traced wall time: {(end - start) * 1000:.1f} ms (under strace), {len(events)} lines")
    by_pid = collections.defaultdict(list)
    for e in events:
        by_pid[e[0]].append(e)
    for pid, evs in by_pid.items():
        exe = next((e[4].split('"')[1] for e in evs if e[2] == "execve" and '"' in e[4]), "")
        per_call = collections.Counter()
        counts = collections.Counter()
        for _, _, name, dur, _ in evs:
            if dur is not None:
                per_call[name] += dur
                counts[name] += 1
        life = (evs[-1][1] - evs[0][1]) * 1000
        print(f"\npid {pid} {exe}: {life:.1f} ms from first to last call, {sum(counts.values())} calls")
        for name, total in per_call.most_common(10):
            print(f"  {total * 1000:8.2f} ms  {counts[name]:4d}x {name}")
    print("\nlongest single calls:")
    calls = sorted((e for e in events if e[3] is not None), key=lambda e: e[3], reverse=True)
    for pid, t, _, dur, rest in calls[:12]:
        print(f"  {dur * 1000:8.2f} ms  pid {pid} at +{(t - start) * 1000:6.1f} ms  {rest[:110]}")
    print("\nlongest stretches between one process's calls (user space or scheduling):")
    gaps = []
    for pid, evs in by_pid.items():
        for a, b in zip(evs, evs[1:]):
            finished = a[1] + (a[3] or 0)
            gaps.append((b[1] - finished, pid, a[4][:60], b[4][:60], a[1] - start))
    for gap, pid, before, after, at in sorted(gaps, reverse=True)[:8]:
        print(f"  {gap * 1000:8.2f} ms  pid {pid} at +{at * 1000:6.1f} ms  after {before!r}  before {after!r}")


if __name__ == "__main__":
    main(sys.argv[1])
