#!/usr/bin/env python3
"""Samples per job by process name and by the system call or fault they fall in.

Reads `perf script -F comm,tid,ip,sym` of a `perf record -g` (stacks needed) on stdin and
prints, for each process name (comm), its samples per job and, below, the outermost system
call (__x64_sys_*, __do_sys_*), page fault, fork return or exit its samples were taken in
("user": none of these). Measurement only (docs/performance.md, issue #11).

Usage: perf script -i perf.data -F comm,tid,ip,sym | bench/perf_by_syscall.py JOBS [COMM,...]
"""
import collections
import re
import sys

KERNEL_ENTRY = re.compile(
    r"\s(__x64_sys_\w+|__do_sys_\w+|exc_page_fault|do_group_exit|ret_from_fork\w*)")


def main():
    jobs = float(sys.argv[1])
    wanted = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    by_comm = collections.defaultdict(collections.Counter)
    comm, frames = None, []

    def flush():
        if comm is None or (wanted and comm not in wanted):
            return
        where = "user"
        for frame in frames:  # innermost first: the last match is the outermost
            m = KERNEL_ENTRY.search(frame)
            if m:
                where = m.group(1)
        by_comm[comm][where] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, frames = None, []
        elif line.startswith((" ", "\t")):
            frames.append(line)
        elif comm is None:
            comm = line.split()[0]
    flush()
    for name in sorted(by_comm, key=lambda c: -sum(by_comm[c].values())):
        print(f"{name:20s} {sum(by_comm[name].values()) / jobs:7.2f} samples/job")
        for where, n in by_comm[name].most_common(12):
            print(f"    {where:30s} {n / jobs:6.2f}")


if __name__ == "__main__":
    main()
