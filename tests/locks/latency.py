#!/usr/bin/env python3
"""latency.py MNT1 MNT2 N: lock latencies across nodes (tests/long/bench/
75-locks; `make bench` imports it, tests/bench/suite.py). Prints p50/p99 in
ms of:
  - flock LOCK_EX then LOCK_UN, uncontended, on each mount (N times);
  - fcntl F_SETLK write lock then unlock of one byte, uncontended (N);
  - the hand-off: a process on MNT2 blocked in flock(LOCK_EX) (and, in a
    second run, in fcntl F_SETLKW) while one on MNT1 holds the lock; the
    time from the start of MNT1's unlock call to MNT2's lock returning
    (the unlock's commit, its apply on MNT2's node, the grant's answer;
    N/4 times each)."""
import fcntl
import os
import select
import signal
import statistics
import sys
import time

# How long a hand-off waiter is given to block before the unlock (its
# LOCK is committed and queued by then on any machine this runs on).
BLOCK_S = 0.2


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def show(name, xs):
    if not xs:
        print("%-44s n=   0" % name, flush=True)
        return
    ms = [x * 1000 for x in xs]
    print("%-44s n=%4d p50 %7.2f ms  p99 %7.2f ms  mean %7.2f ms" %
          (name, len(ms), pct(ms, 50), pct(ms, 99), statistics.mean(ms)),
          flush=True)


def uncontended(mnt, n, deadline):
    """flock and fcntl lock/unlock of file "latency" on mnt, one at a time,
    n each or until time.monotonic() passes deadline: seconds per call in
    {"flock_lock", "flock_unlock", "fcntl_lock", "fcntl_unlock"}."""
    path = os.path.join(mnt, "latency")
    out = {k: [] for k in ("flock_lock", "flock_unlock", "fcntl_lock",
                           "fcntl_unlock")}
    open(path, "a").close()
    fd = os.open(path, os.O_RDWR)
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            t1 = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_UN)
            t2 = time.perf_counter()
            out["flock_lock"].append(t1 - t0)
            out["flock_unlock"].append(t2 - t1)
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            t1 = time.perf_counter()
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
            t2 = time.perf_counter()
            out["fcntl_lock"].append(t1 - t0)
            out["fcntl_unlock"].append(t2 - t1)
    finally:
        os.close(fd)
    return out


def _lock(fd, kind, how):
    if kind == "flock":
        fcntl.flock(fd, how)
    else:
        fcntl.lockf(fd, how, 0, 0)


def handoff(m1, m2, n, deadline, kind="flock"):
    """kind "flock" or "fcntl": a child blocked on m2's file while this
    process holds the lock through m1; seconds from the start of this
    unlock call to the child's lock returning, n times or until deadline.
    Raises RuntimeError when a waiter does not get the lock within 30 s."""
    p1, p2 = os.path.join(m1, "handoff"), os.path.join(m2, "handoff")
    open(p1, "a").close()
    hand = []
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        r, w = os.pipe()
        fa = os.open(p1, os.O_RDWR)
        _lock(fa, kind, fcntl.LOCK_EX)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                fb = os.open(p2, os.O_RDWR)
                _lock(fb, kind, fcntl.LOCK_EX)
                os.write(w, ("%.9f" % time.perf_counter()).encode())
            finally:
                os._exit(0)
        os.close(w)
        got = ""
        try:
            time.sleep(BLOCK_S)  # the child is blocked by now
            t_un = time.perf_counter()
            _lock(fa, kind, fcntl.LOCK_UN)
            ready, _, _ = select.select([r], [], [], 30)
            got = os.read(r, 64).decode() if ready else ""
        finally:
            if not got:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            os.close(fa)
        if not got:
            raise RuntimeError(f"{kind} hand-off: the waiter on {m2} did "
                               "not get the lock within 30 s")
        hand.append(float(got) - t_un)
    return hand


def main(argv):
    m1, m2, n = argv[1], argv[2], int(argv[3])
    deadline = time.monotonic() + 3600
    for mnt in (m1, m2):
        u = uncontended(mnt, n, deadline)
        show("flock LOCK_EX on %s" % mnt, u["flock_lock"])
        show("flock LOCK_UN on %s" % mnt, u["flock_unlock"])
        show("fcntl F_SETLK F_WRLCK on %s" % mnt, u["fcntl_lock"])
        show("fcntl F_SETLK F_UNLCK on %s" % mnt, u["fcntl_unlock"])
    show("hand-off node 1 LOCK_UN -> node 2 LOCK_EX",
         handoff(m1, m2, max(1, n // 4), deadline, "flock"))
    show("hand-off node 1 F_UNLCK -> node 2 F_SETLKW",
         handoff(m1, m2, max(1, n // 4), deadline, "fcntl"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
