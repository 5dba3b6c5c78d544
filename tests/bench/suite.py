#!/usr/bin/env python3
"""`make bench`: the same workloads, in one run, against (a) a directory on
the local disk, (b) libfuse's passthrough_ll over such a directory, (c) a
3-node raftfs cluster through the leader's mount, (d) through a follower's
mount, (e) the relaxed cache mode (when this build's `raftfs serve` accepts
-o cache=relaxed); then the consensus layer alone, failover, catch-up and
memory, cluster-wide lock latency. Writes results (JSON), a table, gnuplot plots and, for a recorded
run, the section of docs/BENCHMARKS.md (tests/bench/report.py).

Environment:
  BENCH_QUICK=1   small sizes, whole run about 3 minutes (not recorded)
  BENCH_LARGE=1   the default run with RSS measured at 1,000,000 files
  BENCH_OUT=DIR   where results, table and plots go (default: docs/bench
                  for a recorded run, build/bench for a quick one); only a
                  run into docs/bench rewrites docs/BENCHMARKS.md
  BENCH_PORT=P    first TCP port (default 8400); uses P..P+4 and, for the
                  consensus probe, BENCH_CONSENSUS_PORT..+3 (default P+40)
  BUILD=DIR       build directory holding raftfs (default build)

Every phase has a time cap and the whole run a time budget; a phase that
hits its cap reports what it did, one that cannot start is skipped with the
reason in its note. Docs: docs/BENCHMARKS.md."""

import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import targets as tg  # noqa: E402
import workloads as wl  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "locks"))
import latency as lat  # noqa: E402
from goals import NOT_RUN  # noqa: E402
from rows import META  # noqa: E402

SIZES = {
    "quick": dict(small=500, cap=3, big=1500, lookup_s=1,
                  tar_src="/usr/include/linux", seq_mib=64, fio_s=1,
                  fio_short_s=1, fio_mib=16, consensus_s=1, failover=3,
                  catch_mib=32, catch_files=300, rss_files=5000, locks_n=40,
                  # the caps of the phases timed whole (reserved first)
                  tar_cap=12, seq_cap=6, read_cap=4, git_cap=12,
                  # seconds of the whole run, then of each part of it
                  budget=196, local=13, passthrough=15, leader=56,
                  follower=22, relaxed=22, failover_s=13, catchup_s=11,
                  rss_s=12, locks_s=16),
    "default": dict(small=10000, cap=30, big=100000, lookup_s=5,
                    tar_src="/usr/include", seq_mib=1024, fio_s=20,
                    fio_short_s=10, fio_mib=256, consensus_s=5, failover=20,
                    catch_mib=1024, catch_files=10000, rss_files=200000,
                    locks_n=400,
                    # tar x: GlusterFS's 86 s and more; dd: 1 GiB at
                    # 27 MB/s (GlusterFS: 76); git clone: 5x the leader's
                    tar_cap=130, seq_cap=40, read_cap=20, git_cap=30,
                    budget=905, local=80, passthrough=85, leader=320,
                    follower=80, relaxed=80, failover_s=70, catchup_s=70,
                    rss_s=45, locks_s=40),
}
SIZES["large"] = dict(SIZES["default"], rss_files=1000000, rss_s=900,
                      budget=905 + 850)

# What each raftfs target leaves out so that the default run stays within
# 15 minutes on 2 cores (docs/BENCHMARKS.md, method): the rows timed whole
# that take minutes (tar x of /usr/include, dd of 1 GiB) run on the
# leader's mount only, and fio runs fio_short_s there.
PLAN = {
    "follower": {"skip": ("tar", "seq"), "fio": "fio_short_s"},
    "relaxed": {"skip": ("tar", "seq"), "fio": "fio_short_s"},
}

RESERVE_S = 10  # kept back from the budget for clean-up and the report


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Budget:
    """Time left: of the whole run, or of a slice of it (a part's share)."""

    def __init__(self, seconds, parent=None, reserve=RESERVE_S):
        self.end = time.monotonic() + seconds - reserve
        if parent is not None:
            self.end = min(self.end, parent.end)

    def left(self):
        return self.end - time.monotonic()

    def cap(self, want):
        return max(0.0, min(want, self.left()))

    def slice(self, seconds):
        return Budget(seconds, self, 0)


class Results:
    def __init__(self):
        self.values = {}
        self.notes = {}
        self.extra = {}

    def put(self, target, rid, value, note=""):
        assert rid in META, rid
        self.values.setdefault(rid, {})[target] = value
        if note:
            self.notes.setdefault(rid, {})[target] = note

    def put_rows(self, target, rows):
        for r in rows:
            self.put(target, r["id"], r["value"], r["note"])

    def skip(self, target, rids, why):
        for rid in rids:
            self.put(target, rid, None, why)


TARGET_ROWS = [rid for rid in META if rid.split(".")[0] in
               ("small1", "small16", "mkdir", "tar", "git", "seq", "fio",
                "bigdir")]


# The workloads of one target in table order: (step, weight, phases,
# reserve). On the raftfs targets a step's reserve is the cap of its phase
# timed whole (tar x, git clone, the dd write and cold read), set aside
# before anything else so that a slow target still measures those rows to
# completion (their other phase, rm -rf or git fsck, is paid by weight);
# on the local disk and passthrough_ll, which take seconds, such a phase
# gets 70 % of its step's weighted share, at most 3 x the nominal cap. The
# fio runs always take their fixed time. A phase paid by weight gets
# weight / (weights of the steps left) of the time left after the reserves
# and fio runs still to come, split evenly among the step's phases, at
# most the nominal cap; time a step does not use goes to the steps after
# it.
STEPS = [
    ("small1", 3, 3, None), ("small16", 2, 3, None), ("mkdir", 1, 2, None),
    ("tar", 4, 2, "tar_cap"), ("git", 2, 2, "git_cap"),
    ("seq", 3, 2, ("seq_cap", "read_cap")), ("fio", 0, 0, "fio"),
    ("fio_fsync", 0, 0, "fio"), ("bigdir", 2, 2, None),
]
RAFTFS_TARGETS = ("leader", "follower", "relaxed")


def step_rows(step):
    if step.startswith("fio"):
        return ["fio.randwrite_fsync" if step == "fio_fsync"
                else "fio.randwrite"]
    return [r for r in TARGET_ROWS if r.startswith(step + ".")]


def step_plan(name, sz):
    """[(step, weight, phases paid by weight, reserved seconds, whole)]
    for target name: whole says the step has a phase timed whole."""
    plan = PLAN.get(name, {})
    out = []
    for step, weight, phases, key in STEPS:
        if step in plan.get("skip", ()):
            out.append((step, 0, 0, 0.0, False))
        elif key == "fio":
            out.append((step, 0, 0, sz[plan.get("fio", "fio_s")] + 2.0,
                        True))
        elif key is not None and name in RAFTFS_TARGETS:
            keys = key if isinstance(key, tuple) else (key,)
            left = phases - len(keys)
            out.append((step, weight * left // phases, left,
                        float(sum(sz[k] for k in keys)), True))
        else:
            out.append((step, weight, phases, 0.0, key is not None))
    return out


def run_workloads(t, res, sz, part, ctx, on_created=None):
    """Every per-target workload against target t within the Budget part,
    less what PLAN leaves out for t."""
    root = t.dir()
    name = t.name
    plan = PLAN.get(name, {})
    fio_s = sz[plan.get("fio", "fio_s")]
    steps = step_plan(name, sz)
    reserved_left = sum(st[3] for st in steps)
    weight_left = sum(st[1] for st in steps)

    for step, weight, phases, own, has_whole in steps:
        rids = step_rows(step)
        if step in plan.get("skip", ()):
            res.skip(name, rids, f"{NOT_RUN} (the default run's time "
                     "budget: rows timed whole that take minutes run on "
                     "the leader's mount only; docs/BENCHMARKS.md, method)")
            continue
        reserved_left -= own
        # This step's reserve, less what the reserves still to come need;
        # its weighted share of what is left beyond every reserve.
        whole = min(own, max(0.0, part.left() - reserved_left))
        free = max(0.0, part.left() - reserved_left - whole)
        share = free * weight / weight_left if weight_left else 0.0
        weight_left -= weight
        if has_whole and own == 0:  # local disk, passthrough_ll
            whole = min(sz["cap"] * 3, share * 0.7)
            share -= whole
            phases -= 1  # the rest of the share is for the other one
        cap = min(sz["cap"], share / phases) if phases else 0.0
        if whole + share < 0.3:
            res.skip(name, rids, "skipped: the time budget ran out")
            continue
        log(f"{name}: {step} (whole {whole:.1f} s, per phase {cap:.1f} s)")
        try:
            if step in ("small1", "small16"):
                workers = 1 if step == "small1" else 16
                rows, extra = wl.small_files(root, sz["small"], workers, cap,
                                             on_created)
                if workers == 1:
                    res.extra.setdefault("small1", {})[name] = extra
            elif step == "mkdir":
                rows = wl.mkdir_tree(root, cap)
            elif step == "tar":
                rows = wl.tar_x(root, ctx["tarball"], ctx["tar_entries"],
                                whole, max(1.0, cap))
            elif step == "git":
                if not ctx["repo"]:
                    res.skip(name, rids, "no git repository to clone "
                             "(not run from a clone)")
                    continue
                rows = wl.git_clone(root, ctx["repo"], whole, max(1.0, cap))
            elif step == "seq":
                w = whole * sz["seq_cap"] / (sz["seq_cap"] + sz["read_cap"])
                rows = wl.sequential(root, sz["seq_mib"], w, whole - w)
            elif step.startswith("fio"):
                secs = max(1, int(min(fio_s, whole - 2)))
                rows = wl.fio_randwrite(root, secs, sz["fio_mib"],
                                        step == "fio_fsync")
            else:
                rows, d = wl.big_dir(root, sz["big"], cap,
                                     min(sz["lookup_s"], max(0.5, cap / 4)))
                if name in ("local", "passthrough"):  # clusters go whole
                    shutil.rmtree(d, ignore_errors=True)
            res.put_rows(name, rows)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            res.skip(name, rids, f"failed: {e}"[:200])


def consensus(build, work, port, seconds, res):
    """bench_runtime (tests/runtime/bench_runtime.c): the disk's fdatasync
    probe, the loopback round trip, then 1, 16 and 128 proposers."""
    b = os.path.join(build, "tests/runtime/bench_runtime")
    d = os.path.join(work, "consensus")
    os.makedirs(d)
    r = subprocess.run([b, "--seconds", str(seconds), "--transport", "tls",
                        "--port", str(port), "--dir", d],
                       capture_output=True, text=True,
                       timeout=60 + 4 * seconds)
    shutil.rmtree(d, ignore_errors=True)
    res.extra["consensus_output"] = r.stdout
    if r.returncode != 0:
        raise RuntimeError(f"bench_runtime exit {r.returncode}: "
                           f"{r.stderr.strip()[-200:]}")
    m = re.search(r"fdatasync (\d+)/s, p50 (\d+) us; loopback TCP round trip"
                  r" p50 (\d+) us", r.stdout)
    if not m:
        raise RuntimeError("bench_runtime output not understood")
    res.put("cluster", "disk.fdatasync", float(m.group(1)))
    res.put("cluster", "disk.fdatasync_p50", float(m.group(2)))
    res.put("cluster", "net.rtt_p50", float(m.group(3)))
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 6 and f[0] in ("1", "16", "128"):
            note = f"{f[4]} errors" if f[4] != "0" else ""
            res.put("cluster", f"consensus.{f[0]}.rate", float(f[1]), note)
            res.put("cluster", f"consensus.{f[0]}.p50", float(f[2]))
            res.put("cluster", f"consensus.{f[0]}.p99", float(f[3]))


def commit_floor(res):
    """commits per file (leader's applied index over the 1-worker create)
    × (fdatasync p50 + loopback round trip), next to the measured p50."""
    s = res.extra.get("small1", {}).get("leader")
    sync = res.values.get("disk.fdatasync_p50", {}).get("cluster")
    rtt = res.values.get("net.rtt_p50", {}).get("cluster")
    lat = res.values.get("small1.latency_p50", {}).get("leader")
    if not s or not s.get("files") or s.get("index_before") is None or \
            s.get("index_after") is None or sync is None or rtt is None:
        res.skip("cluster", ["floor.commits_per_file", "floor.latency",
                             "floor.ratio"], "needs the leader's 1-worker "
                 "create and the consensus probes")
        return
    cpf = (s["index_after"] - s["index_before"]) / s["files"]
    floor_ms = cpf * (sync + rtt) / 1000
    res.put("cluster", "floor.commits_per_file", cpf,
            f"{s['index_after'] - s['index_before']:,} log entries for "
            f"{s['files']:,} files")
    res.put("cluster", "floor.latency", floor_ms,
            f"{cpf:.2f} × ({sync:.0f} + {rtt:.0f}) µs = "
            f"{1000 / floor_ms:,.0f} files/s" if floor_ms else "")
    if lat and floor_ms:
        res.put("cluster", "floor.ratio", lat / floor_ms, "target ≤ 1.5")


class Writer:
    """A steady writer on one mount: creates small numbered files one after
    another, recording (start, end, ok) of each; stops when told."""

    def __init__(self, d):
        self.d = d
        self.ops = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop.is_set() and i < 1000000:
            t0 = time.monotonic()
            ok = True
            try:
                fd = os.open(f"{self.d}/w{i}", os.O_CREAT | os.O_WRONLY, 0o644)
                try:
                    os.write(fd, b"steady writer\n")
                finally:
                    os.close(fd)
            except OSError:
                ok = False
                time.sleep(0.01)
            self.ops.append((t0, time.monotonic(), ok))
            i += 1

    def first_success_after(self, t):
        for t0, t1, ok in list(self.ops):
            if ok and t0 >= t:
                return t1
        return None

    def finish(self, timeout_s):
        self.stop.set()
        self.t.join(timeout_s)
        return not self.t.is_alive()


def caught_up(c, node, index, timeout_s):
    return tg.wait_for(lambda: (c.applied(node) or 0) >= index, timeout_s, 0.1)


def failover(c, trials, part, res):
    """kill -9 of the leader under a steady writer on a surviving node; the
    gap is from the kill to the end of the writer's first successful write
    that started after the kill. The killed node is restarted and caught up
    before the next trial."""
    gaps, notes = [], []
    for k in range(trials):
        if part.left() < 3:
            notes.append(f"stopped after {k} of {trials} trials: time budget")
            break
        lead = c.leader()
        if lead is None:
            notes.append(f"trial {k}: no leader")
            break
        w = next(n for n in (1, 2, 3) if n != lead)
        d = f"{c.mnt(w)}/failover{k}"
        os.mkdir(d)
        writer = Writer(d)
        time.sleep(0.5)
        t_kill = time.monotonic()
        c.kill9(lead)
        ok = tg.wait_for(lambda: writer.first_success_after(t_kill)
                         is not None, 20, 0.01)
        t1 = writer.first_success_after(t_kill)
        if not writer.finish(30):
            notes.append(f"trial {k}: the writer on node {w} hung > 30 s "
                         "after its stop")
        if not ok:
            notes.append(f"trial {k}: no successful write within 20 s")
        else:
            gaps.append((t1 - t_kill) * 1000)
        c.node_cmd("start", lead)
        commit = c.member(w, w, "commit") or 0
        if not caught_up(c, lead, commit, 60):
            notes.append(f"trial {k}: node {lead} did not catch up in 60 s")
            break
    res.extra["failover_ms"] = gaps
    note = "; ".join([f"{len(gaps)} trials"] + notes)
    res.put("cluster", "failover.p50", wl.pct(gaps, 0.5), note)
    res.put("cluster", "failover.p99", wl.pct(gaps, 0.99), note)


def catch_up(c, sz, part, res):
    """A follower stopped while MIB of sequential data and FILES files of
    4 KiB are written through the leader; then started: the time until its
    own applied index reaches the leader's commit index."""
    lead = c.leader()
    f = next(n for n in (1, 2, 3) if n != lead)
    c.node_cmd("stop", f)
    root = f"{c.mnt(lead)}/catchup"
    os.mkdir(root)
    cap = part.left() * 0.4
    sec, note = wl.timed_cmd(["dd", "if=/dev/zero", f"of={root}/big",
                              "bs=1M", f"count={sz['catch_mib']}"], cap)
    size = os.path.getsize(f"{root}/big")
    data = b"c" * wl.FILE_BYTES
    os.mkdir(f"{root}/files")

    def create(p):
        with open(p, "wb") as fh:
            fh.write(data)

    names = [f"{root}/files/f{i}" for i in range(sz["catch_files"])]
    done = wl.parallel(names, 16, part.left() * 0.4, create)[0]
    total = size + done * wl.FILE_BYTES
    target = c.member(lead, lead, "commit")
    t0 = time.monotonic()
    start_err = ""
    try:
        c.node_cmd("start", f)
    except RuntimeError as e:
        # `cluster start` gives up on a node whose mount does not answer
        # while it catches up; the node itself may still be running.
        start_err = f"; {e}"
        if not c.pid(f) or not os.path.exists(f"/proc/{c.pid(f)}"):
            raise
    ok = caught_up(c, f, target, max(10.0, part.left()))
    el = time.monotonic() - t0
    what = f"missed {size / 1048576:,.0f} MiB and {done:,} files " \
        f"({total / 1e6:,.0f} MB), log index {target:,}{start_err}"
    if not ok:
        res.skip("cluster", ["catchup.rate", "catchup.seconds"],
                 f"not caught up within the cap; {what}")
        return
    res.put("cluster", "catchup.seconds", el, what)
    res.put("cluster", "catchup.rate", total / 1e6 / el, what)


def rss(c, files, cap, res):
    """Create files (16 workers, 1,000 per directory) then read VmRSS of
    each node once the followers applied everything."""
    lead = c.leader()
    root = f"{c.mnt(lead)}/rss"
    os.mkdir(root)
    dirs = (files + 999) // 1000
    for k in range(dirs):
        os.mkdir(f"{root}/d{k}")
    names = [f"{root}/d{i // 1000}/f{i}" for i in range(files)]

    def create(p):
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))

    done, _, _, err, _ = wl.parallel(names, 16, cap, create)
    commit = c.member(lead, lead, "commit") or 0
    for n in (1, 2, 3):
        caught_up(c, n, commit, 60)
    per = {}
    for n in (1, 2, 3):
        cur, hwm = c.rss_kb(n)
        per[n] = (cur, hwm)
    res.extra["rss_kb"] = per
    vals = [v[0] for v in per.values() if v[0]]
    note = f"{done:,} files" + (f" of {files:,} in the {cap:.0f} s cap"
                               if done < files else "")
    note += "; " + ", ".join(f"node {n} {v[0] / 1024:.0f} MB (peak "
                             f"{v[1] / 1024:.0f})" for n, v in per.items()
                             if v[0])
    if err:
        note += f"; stopped by an error: {err}"
    res.put("cluster", "rss.max", max(vals) / 1024 if vals else None, note)


def locks(c, sz, part, res):
    """Cluster-wide lock latency (tests/locks/latency.py): flock and fcntl
    lock/unlock, one at a time, uncontended, locks_n each through the
    leader's mount then a follower's; then the hand-off from an unlock on
    the leader to a waiter blocked on the follower, locks_n / 8 times for
    flock and for fcntl. Each part stops at its share of the time left."""
    lead = c.leader()
    if lead is None:
        raise RuntimeError("no leader")
    fol = next(n for n in (1, 2, 3) if n != lead)
    n = sz["locks_n"]
    extra = {}
    # Shares of the time left: 25 % per mount, 25 % per hand-off kind.
    for node, name in ((lead, "leader"), (fol, "follower")):
        want = max(1, n)
        t0 = time.monotonic()
        u = lat.uncontended(c.mnt(node), want, t0 + part.left() * 0.25)
        for op, xs in u.items():
            note = "" if len(xs) >= want else \
                f"{len(xs)} of {want} in the cap"
            ms = [x * 1000 for x in xs]
            extra[f"{op}.{name}"] = len(ms)
            res.put("cluster", f"locks.{op}.{name}.p50", wl.pct(ms, 0.5),
                    note)
            res.put("cluster", f"locks.{op}.{name}.p99", wl.pct(ms, 0.99),
                    note)
    for k, kind in enumerate(("flock", "fcntl")):
        want = max(1, n // 8)
        share = part.left() * (0.5 if k == 0 else 0.9)
        try:
            xs = lat.handoff(c.mnt(lead), c.mnt(fol), want,
                             time.monotonic() + share, kind)
        except (RuntimeError, OSError) as e:
            res.skip("cluster", [f"locks.handoff_{kind}.p50",
                                 f"locks.handoff_{kind}.p99"],
                     f"failed: {e}"[:200])
            continue
        ms = [x * 1000 for x in xs]
        extra[f"handoff_{kind}"] = len(ms)
        note = "" if len(ms) >= want else \
            f"{len(ms)} of {want} in the cap"
        res.put("cluster", f"locks.handoff_{kind}.p50", wl.pct(ms, 0.5),
                note)
        res.put("cluster", f"locks.handoff_{kind}.p99", wl.pct(ms, 0.99),
                note)
    res.extra["locks_counts"] = extra


def machine_name():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def ensure_tools():
    """Bench-only tools (fio, gnuplot, git, gcc, tar) are installed here,
    by the bench itself, when missing (Debian)."""
    need = {"fio": "fio", "gnuplot": "gnuplot-nox", "git": "git",
            "gcc": "gcc", "tar": "tar", "fusermount3": "fuse3",
            "pkg-config": "pkg-config"}
    missing = [p for cmd, p in need.items() if not shutil.which(cmd)]
    if not os.path.exists(os.path.join(tg.EXAMPLES, "passthrough_ll.c")) and \
            not os.path.exists(os.path.join(tg.EXAMPLES, "passthrough_ll.c.gz")):
        missing.append("libfuse3-dev")
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-q"], env=env,
                   capture_output=True)
    r = subprocess.run(sudo + ["apt-get", "install", "-y", "-q",
                               "--no-install-recommends"] + missing, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: apt-get install {' '.join(missing)} failed;"
                         " run it by hand to see why")


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    large = os.environ.get("BENCH_LARGE") == "1"
    mode = "quick" if quick else ("large" if large else "default")
    sz = SIZES[mode]
    build = os.path.abspath(os.environ.get("BUILD", "build"))
    raftfs = os.path.join(build, "raftfs")
    port = int(os.environ.get("BENCH_PORT", "8400"))
    src = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    out = os.environ.get("BENCH_OUT") or os.path.join(
        src, "build/bench" if quick else "docs/bench")
    os.makedirs(out, exist_ok=True)
    budget = Budget(sz["budget"])
    started = datetime.datetime.now(datetime.timezone.utc)
    load0 = os.getloadavg()
    ensure_tools()
    work = tempfile.mkdtemp(prefix="raftfs-bench-", dir="/tmp")
    os.chmod(work, 0o755)
    res = Results()
    opened = []

    def cleanup(*_):
        for t in reversed(opened):
            try:
                t.close()
            except Exception:  # clean-up goes on whatever one step raised
                pass
        opened.clear()
        shutil.rmtree(work, ignore_errors=True)

    def on_signal(signum, _):
        cleanup()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log(f"mode {mode}, work dir {work}, budget {sz['budget']} s, "
            f"load {load0[0]:.2f}")
        tarball = os.path.join(work, "include.tar")
        parent, base = os.path.split(sz["tar_src"])
        subprocess.run(["tar", "cf", tarball, "-C", parent, base], check=True,
                       capture_output=True)
        entries = len(subprocess.run(["tar", "tf", tarball], check=True,
                                     capture_output=True,
                                     text=True).stdout.splitlines())
        r = subprocess.run(["git", "-C", src, "rev-parse",
                            "--path-format=absolute", "--git-common-dir"],
                           capture_output=True, text=True)
        repo = r.stdout.strip() if r.returncode == 0 else None
        commit = subprocess.run(["git", "-C", src, "rev-parse", "--short",
                                 "HEAD"], capture_output=True,
                                text=True).stdout.strip() or None
        ctx = {"tarball": tarball, "tar_entries": entries, "repo": repo}
        descs = {}

        log("consensus alone (bench_runtime)")
        try:
            consensus(build, work, int(os.environ.get(
                "BENCH_CONSENSUS_PORT", port + 40)), sz["consensus_s"], res)
        except (RuntimeError, subprocess.SubprocessError, OSError) as e:
            res.skip("cluster", [r for r in META if r.startswith(
                ("disk.", "net.", "consensus."))], f"failed: {e}"[:200])

        t = tg.Local(work)
        opened.append(t)
        descs["local"] = t.desc
        run_workloads(t, res, sz, budget.slice(sz["local"]), ctx)
        t.close()
        opened.remove(t)

        try:
            binary = tg.build_passthrough(os.path.join(build, "bench"))
            t = tg.Passthrough(work, binary)
            opened.append(t)
            descs["passthrough"] = t.desc
            run_workloads(t, res, sz, budget.slice(sz["passthrough"]), ctx)
            t.close()
            opened.remove(t)
        except (RuntimeError, subprocess.SubprocessError) as e:
            res.skip("passthrough", TARGET_ROWS, f"failed: {e}"[:200])

        relaxed = tg.relaxed_supported(raftfs)
        plan = [("leader", port, None), ("follower", port + 1, None)]
        if relaxed:
            plan.append(("relaxed", port + 2, "cache=relaxed"))
        else:
            res.skip("relaxed", TARGET_ROWS, "not available in this build "
                     "(raftfs serve does not accept -o cache=relaxed)")
            descs["relaxed"] = "not available in this build"
        for name, p, opts in plan:
            if budget.left() < 20:
                res.skip(name, TARGET_ROWS, "skipped: time budget")
                continue
            # Without a relaxed mode its time goes to the follower.
            part = budget.slice(sz[name] + (0 if relaxed or name != "follower"
                                            else sz["relaxed"]))
            try:
                c = tg.Cluster(raftfs, work, f"c-{name}", p, opts)
            except (RuntimeError, subprocess.SubprocessError) as e:
                res.skip(name, TARGET_ROWS, f"failed: {e}"[:200])
                continue
            opened.append(c)
            lead = c.leader()
            node = lead if name != "follower" else \
                next(n for n in (1, 2, 3) if n != lead)
            desc = (f"raftfs, 3 nodes on 127.0.0.1-3:{p}, "
                    f"`cluster up`{' -o ' + opts if opts else ''} (defaults "
                    f"otherwise), mount of node {node} ({name})")
            t = tg.ClusterMount(name, c, node, desc)
            descs[name] = desc

            def index():
                return c.member(lead, lead, "applied")
            run_workloads(t, res, sz, part, ctx, index)
            c.close()
            opened.remove(c)

        commit_floor(res)

        def with_cluster(what, rid, name, p, seconds, fn):
            part = budget.slice(seconds)
            if part.left() < 5:
                res.put("cluster", rid, None, "skipped: time budget")
                return
            log(what)
            c = None
            try:
                c = tg.Cluster(raftfs, work, name, p)
                opened.append(c)
                fn(c, part)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                res.put("cluster", rid, None, f"failed: {e}"[:500])
            finally:
                if c is not None:
                    c.close()
                    opened.remove(c)

        lock_rows = [r for r in META if r.startswith("locks.")]

        def run_locks(c, part):
            try:
                locks(c, sz, part, res)
            except (RuntimeError, OSError) as e:
                res.skip("cluster", lock_rows, f"failed: {e}"[:200])
        with_cluster("cluster-wide locks", lock_rows[0], "c-locks",
                     port + 3, sz["locks_s"], run_locks)
        with_cluster("failover", "failover.p50", "c-failover", port + 3,
                     sz["failover_s"],
                     lambda c, part: failover(c, sz["failover"], part, res))
        with_cluster("catch-up", "catchup.rate", "c-catchup", port + 3,
                     sz["catchup_s"], lambda c, part: catch_up(c, sz, part,
                                                               res))
        with_cluster(f"rss ({sz['rss_files']:,} files)", "rss.max", "c-rss",
                     port + 4, sz["rss_s"],
                     lambda c, part: rss(c, sz["rss_files"],
                                         max(1.0, part.left() - 8), res))
    finally:
        cleanup()

    ended = datetime.datetime.now(datetime.timezone.utc)
    stem = started.strftime("%Y-%m-%dT%H%MZ") + "-" + machine_name() + \
        ("-quick" if quick else "") + ("-large" if large else "")
    results = {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((ended - started).total_seconds(), 1),
        "machine": machine_name(),
        "mode": mode,
        "commit": commit,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "sizes": sz,
        "tar_entries": entries,
        "targets": descs,
        "values": res.values,
        "notes": res.notes,
        "extra": res.extra,
        "command": ("BENCH_QUICK=1 " if quick else "") +
                   ("make bench-large" if large else "make bench"),
    }
    path = os.path.join(out, stem + ".json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
        fh.write("\n")
    log(f"results: {path}")
    # Only a recorded run (default or large, into docs/bench) rewrites the
    # section of docs/BENCHMARKS.md.
    recorded = os.path.realpath(out) == os.path.realpath(
        os.path.join(src, "docs/bench"))
    report.write_all(path, out, os.path.join(src, "docs/BENCHMARKS.md")
                     if recorded and not quick else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
