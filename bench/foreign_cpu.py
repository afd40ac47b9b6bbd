#!/usr/bin/env python3
"""CPU time used by processes that are not part of the benchmark.

    foreign_cpu.py snapshot ROOT_PID FILE    # record every other process's CPU time
    foreign_cpu.py since ROOT_PID FILE       # CPU used by them since the snapshot

bench/run.sh takes a snapshot before each measured run and asks `since` after
it, to notice runs that something else on the machine (a build, a test
suite) disturbed, and redo them. A process is "ours" when ROOT_PID (the
run.sh shell) is among its ancestors; kernel threads (children of kthreadd,
such as ksoftirqd doing the benchmark's own network work) are not counted.
CPU time is utime + stime + cutime + cstime (so short-lived children that
were reaped meanwhile count towards their parent), in clock ticks.

`since` prints one line: `TICKS STEAL_TICKS TOP`, where STEAL_TICKS is the
hypervisor's steal time summed over all CPUs (from /proc/stat) and TOP
names the three busiest foreign processes (`name:ticks,...`, or `-`).
"""

import json
import os
import sys


def processes():
    """{pid: (ppid, starttime, ticks, name, kernel_thread)}"""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] is state (field 3 of stat); utime is field 14.
        ppid = int(fields[1])
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        starttime = int(fields[19])
        pid = int(entry)
        out[pid] = (ppid, starttime, ticks, name, pid == 2 or ppid == 2)
    return out


def foreign(root):
    procs = processes()
    ours = {}

    def is_ours(pid):
        seen = []
        while pid not in ours:
            if pid == root:
                ours[pid] = True
                break
            if pid not in procs or pid <= 1:
                ours[pid] = False
                break
            seen.append(pid)
            pid = procs[pid][0]
        result = ours[pid]
        for p in seen:
            ours[p] = result
        return result

    return {
        f"{pid}:{info[1]}": (info[2], info[3])
        for pid, info in procs.items()
        if not info[4] and not is_ours(pid)
    }


def steal():
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == "cpu":
                return int(parts[8])
    return 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("snapshot", "since"):
        print(__doc__, file=sys.stderr)
        return 64
    command, root, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    now = foreign(root)
    if command == "snapshot":
        with open(path, "w") as f:
            json.dump({"steal": steal(), "procs": {k: v[0] for k, v in now.items()}}, f)
        return 0
    with open(path) as f:
        before = json.load(f)
    used = []
    for key, (ticks, name) in now.items():
        delta = ticks - before["procs"].get(key, 0)
        if delta > 0:
            used.append((delta, name))
    used.sort(reverse=True)
    top = ",".join(f"{name.replace(' ', '_')}:{delta}" for delta, name in used[:3]) or "-"
    print(sum(d for d, _ in used), steal() - before["steal"], top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
