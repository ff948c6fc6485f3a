#!/usr/bin/env python3
"""Splits a perf.data of a server's handshake ramp (bench/handshake-perf.sh)
by where the CPU went, in microseconds per handshake: each sample goes to
the first category whose pattern matches a frame of its stack.

    python3 bench/perfsplit.py OUT.data CONNECTIONS
"""
import collections
import re
import subprocess
import sys

RULES = [
    ("GC and allocation", r"gcBgMarkWorker|gcDrain|runtime\.mallocgc|bgsweep|gcAssist|wbBufFlush|bgscavenge|markroot"),
    ("runtime sysmon", r"runtime\.sysmon"),
    ("syscall accept4", r"__x64_sys_accept4"),
    ("syscall read", r"ksys_read|__x64_sys_read$|sock_read_iter"),
    ("syscall write(v) (with loopback delivery)", r"do_writev|ksys_write|__x64_sys_writev|__x64_sys_write$|sock_write_iter"),
    ("syscall epoll_ctl", r"__x64_sys_epoll_ctl"),
    ("syscall epoll_wait", r"__x64_sys_epoll_pwait|__x64_sys_epoll_wait"),
    ("syscall other", r"__x64_sys_|x64_sys_call"),
    ("runtime scheduler", r"runtime\.(schedule|findRunnable|mcall|park_m|goschedImpl|stopm|startm|notesleep|futex)"),
    ("user: request parse", r"codec\.(\(\*Request\)\.)?parse|codec\.ParseHTTPRequest|gobwas/ws\.Upgrader|httphead"),
    ("user: Accept (query, token, session)", r"push\.\(\*App\)\.Accept"),
    ("user: OnOpen (subscribe, reply)", r"push\.\(\*App\)\.OnOpen"),
    ("user: accept and open bookkeeping", r"epollLoop\)\.open|server\.\(\*Server\)\.open|handler\)\.OnOpen|eventloop\)\.accept|register0|OnOpen"),
    ("user: rest of the loop", r"epollLoop|eventloop|OnTraffic|server\.|poller\.|gnet"),
]


def stacks(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "period,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    period, frames = None, []
    for line in out.split("\n"):
        if not line.strip():
            if period is not None:
                yield period, frames
            period, frames = None, []
            continue
        if period is None:
            head = line.split(None, 2)
            period = int(head[0])
            if len(head) > 2:
                frames.append(head[2])
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[-1])
    if period is not None:
        yield period, frames


def main():
    path, n = sys.argv[1], int(sys.argv[2])
    total, by = 0, collections.Counter()
    for period, frames in stacks(path):
        total += period
        s = "\n".join(frames)
        for name, rx in RULES:
            if re.search(rx, s, re.M):
                by[name] += period
                break
        else:
            by["other"] += period
    print(f"{total / n / 1000:.1f} µs per handshake")
    for name, _ in RULES + [("other", "")]:
        print(f"  {name:44s} {by[name] / n / 1000:5.1f}")


if __name__ == "__main__":
    main()
