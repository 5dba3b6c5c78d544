#!/usr/bin/env python3
"""latency.py MNT1 MNT2 N: lock latencies across nodes (tests/long/bench/
75-locks). Prints p50/p99 in ms of:
  - flock LOCK_EX then LOCK_UN, uncontended, on each mount (N times);
  - fcntl F_SETLK write lock then unlock of one byte, uncontended (N);
  - the hand-off: a process on MNT2 blocked in flock(LOCK_EX) while one on
    MNT1 holds the lock; the time from MNT1's LOCK_UN returning to MNT2's
    flock returning (N/4 times)."""
import fcntl
import os
import statistics
import sys
import time

m1, m2, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def show(name, xs):
    ms = [x * 1000 for x in xs]
    print("%-44s n=%4d p50 %7.2f ms  p99 %7.2f ms  mean %7.2f ms" %
          (name, len(ms), pct(ms, 50), pct(ms, 99), statistics.mean(ms)),
          flush=True)


for mnt in (m1, m2):
    path = os.path.join(mnt, "latency")
    open(path, "a").close()
    fd = os.open(path, os.O_RDWR)
    lk, un = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        fcntl.flock(fd, fcntl.LOCK_EX)
        t1 = time.perf_counter()
        fcntl.flock(fd, fcntl.LOCK_UN)
        t2 = time.perf_counter()
        lk.append(t1 - t0)
        un.append(t2 - t1)
    show("flock LOCK_EX on %s" % mnt, lk)
    show("flock LOCK_UN on %s" % mnt, un)
    lk, un = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        t1 = time.perf_counter()
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
        t2 = time.perf_counter()
        lk.append(t1 - t0)
        un.append(t2 - t1)
    show("fcntl F_SETLK F_WRLCK on %s" % mnt, lk)
    show("fcntl F_SETLK F_UNLCK on %s" % mnt, un)
    os.close(fd)

# Hand-off from node 1 to node 2.
p1, p2 = os.path.join(m1, "latency"), os.path.join(m2, "latency")
hand = []
for _ in range(max(1, n // 4)):
    r, w = os.pipe()
    fa = os.open(p1, os.O_RDWR)
    fcntl.flock(fa, fcntl.LOCK_EX)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fb = os.open(p2, os.O_RDWR)
        fcntl.flock(fb, fcntl.LOCK_EX)
        os.write(w, ("%.9f" % time.perf_counter()).encode())
        os._exit(0)
    os.close(w)
    time.sleep(0.2)  # the child is blocked by now
    fcntl.flock(fa, fcntl.LOCK_UN)
    t_un = time.perf_counter()
    got = float(os.read(r, 64).decode())
    os.waitpid(pid, 0)
    os.close(r)
    os.close(fa)
    hand.append(got - t_un)
show("hand-off node 1 LOCK_UN -> node 2 LOCK_EX", hand)
