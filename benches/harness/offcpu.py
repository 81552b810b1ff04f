"""Where `berth run` waits: off-CPU time by the kernel stack it blocked in.

Usage: offcpu.py TIMEHIST RUNS COMM... where TIMEHIST is `perf sched timehist` output (with
call chains) of RUNS runs. Each line is a task switching out, with the stack it switched
out in; the time until it ran again is on that task's next line (wait + scheduling delay).
The container's init is a clone of berth, so it is counted as berth until it execs."""

import collections
import re
import sys

LINE = re.compile(r"\s*[\d.]+\s+\[\d+\]\s+(\S+)\[(\d+)\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*(.*)$")


def main(path: str, runs: int, comms: set[str]) -> None:
    last: dict[int, tuple[str, str]] = {}
    off = collections.Counter()
    events = collections.Counter()
    on = collections.Counter()
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, wait, delay, run, stack = m.groups()
        if comm in comms:
            on[comm] += float(run)
        if int(pid) in last:
            prev_comm, prev_stack = last[int(pid)]
            if prev_comm in comms:
                off[(prev_comm, prev_stack)] += float(wait) + float(delay)
                events[(prev_comm, prev_stack)] += 1
        last[int(pid)] = (comm, " <- ".join(stack.split(" <- ")[:4]))
    for comm in sorted(comms):
        total_off = sum(v for (c, _), v in off.items() if c == comm)
        print(f"{comm}: on CPU {on[comm] / runs:.2f} ms/run, off CPU {total_off / runs:.2f} ms/run")
    print("off-CPU ms/run  switches  task   blocked in")
    for (comm, stack), value in off.most_common(12):
        print(f"{value / runs:14.2f}  {events[(comm, stack)]:8d}  {comm:6} {stack[:120]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), set(sys.argv[3:]))
