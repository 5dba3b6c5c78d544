#!/usr/bin/env python3
"""Where a failover's time goes (docs/BENCHMARKS.md, "Failover"): the
bench's failover trials (suite.failover: a steady writer on a follower's
mount, kill -9 of the leader, the time to the writer's first success that
began after the kill) on one fresh 3-node cluster, then, per trial, from
the survivors' logs (millisecond timestamps, wall clock): when the first
election timer fired ("became precandidate"), when a leader was elected,
and the writer's success.

  tests/bench/failover_path.py [RAFTFS] [TRIALS]
    RAFTFS default build/raftfs, TRIALS default 10; FAILOVER_PATH_PORT
    (default 8962)."""

import datetime
import glob
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402
import targets as tg  # noqa: E402
import workloads as wl  # noqa: E402

EVENT = re.compile(r"(\S+Z) \w+ node=\d .*became (\w+) in term (\d+)")


def events(d):
    """(wall time, node, role) of every role change in the nodes' logs."""
    out = []
    for n in (1, 2, 3):
        for p in glob.glob(f"{d}/node{n}/*.log"):
            with open(p, errors="replace") as f:
                for line in f:
                    m = EVENT.match(line)
                    if m:
                        t = datetime.datetime.strptime(
                            m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                            tzinfo=datetime.timezone.utc).timestamp()
                        out.append((t, n, m.group(2)))
    return sorted(out)


def main():
    raftfs = os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                             else "build/raftfs")
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    port = int(os.environ.get("FAILOVER_PATH_PORT", "8962"))
    work = tempfile.mkdtemp(prefix="failover_path.", dir="/tmp")
    c = tg.Cluster(raftfs, work, "c", port)
    kills = []
    kill9 = c.kill9

    def timed_kill(node):
        kills.append((time.time(), node))
        kill9(node)

    c.kill9 = timed_kill
    res = suite.Results()
    try:
        suite.failover(c, trials, suite.Budget(100000, reserve=0), res)
        ev = events(c.d)
    finally:
        c.close()
        shutil.rmtree(work, ignore_errors=True)
    gaps = res.extra["failover_ms"]
    parts = []
    for (tk, dead), gap in zip(kills, gaps):
        after = [e for e in ev if tk <= e[0] < tk + 5 and e[1] != dead]
        pre = next((e[0] for e in after if e[2] == "precandidate"), None)
        lead = next((e[0] for e in after if e[2] == "leader"), None)
        if pre is None or lead is None:
            print(f"kill of node {dead}: no election found in the logs")
            continue
        t = ((pre - tk) * 1000, (lead - pre) * 1000, gap - (lead - tk) * 1000)
        parts.append(t)
        print(f"kill of node {dead}: timer {t[0]:4.0f} ms, election "
              f"{t[1]:3.0f} ms, writer after it {t[2]:3.0f} ms = {gap:4.0f} ms")
    print(f"{len(gaps)} trials, load {os.getloadavg()[0]:.1f}: failover p50 "
          f"{wl.pct(gaps, 0.5):.0f} ms, p99 {wl.pct(gaps, 0.99):.0f} ms")
    for k, name in enumerate(("timer (kill -> first precandidate)",
                              "election (-> leader)",
                              "writer (leader -> its next success)")):
        xs = [p[k] for p in parts]
        if xs:
            print(f"  {name}: median {statistics.median(xs):.0f} ms, "
                  f"max {max(xs):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
