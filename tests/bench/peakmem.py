#!/usr/bin/env python3
"""peakmem.py OUT CMD...: run CMD, write its peak anonymous memory to OUT.

Peak RSS (getrusage, /usr/bin/time %M) counts the pages of files a
process maps, such as a store read through SQLite's mmap: page cache that
the kernel can drop, not memory the process holds. This samples RssAnon
(heap, stacks, private copies) of CMD's whole process tree below its
first process (so with CMD = /usr/bin/time ..., time itself is left out)
every 20 ms and writes the highest sum in KiB to OUT. Exits with CMD's
status; CMD inherits every open descriptor (a passphrase on fd 3).
"""
import os
import subprocess
import sys
import time


def children(pid):
    kids = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return kids


def anon_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: peakmem.py OUT CMD...")
    out, cmd = sys.argv[1], sys.argv[2:]
    p = subprocess.Popen(cmd, close_fds=False)
    peak = 0
    while p.poll() is None:
        total, todo = 0, children(p.pid)
        while todo:
            pid = todo.pop()
            total += anon_kib(pid)
            todo += children(pid)
        peak = max(peak, total)
        time.sleep(0.02)
    with open(out, "w") as f:
        f.write("%d\n" % peak)
    sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)


if __name__ == "__main__":
    main()
