"""The targets of issue 16 and the GlusterFS figures no raftfs row may fall
below, checked against one run's results (docs/BENCHMARKS.md, "Targets").

A goal is met only by a figure measured to completion. A row that has no
figure (it hit its cap, failed, or ran out of time) or one measured on
less than the work it is defined on (RSS before all its files existed) is
a MISS, never "nothing": a capped row proves nothing either way, so it
cannot count as met. A column the run's plan does not run a row in (the
method section says which and why) is listed as "not run", not as met.

Each check: (row id, columns, "<=" or ">=", needed, kind, what). needed is
a number or a function of the results' values giving one (None when the
figures it needs are missing: then the goal is a MISS too). kind is
"hard" (issue 16's "Done when": the GlusterFS figures and the consensus
targets) or "target"."""

from rows import META

# Written by suite.py in a row's note when the plan leaves the row out of
# a column on purpose (docs/BENCHMARKS.md, method).
NOT_RUN = "not run in this mode"

RAFTFS = ("leader", "follower", "relaxed")


def _value(vals, rid, col):
    return vals.get(rid, {}).get(col)


def _consensus_rate(vals):
    sync = _value(vals, "disk.fdatasync", "cluster")
    return 10 * sync if sync else None


def _consensus_p50(vals):
    sync = _value(vals, "disk.fdatasync_p50", "cluster")
    rtt = _value(vals, "net.rtt_p50", "cluster")
    return 2 * (sync + rtt) if sync and rtt else None


def _cold_read(vals):
    pt = _value(vals, "seq.read", "passthrough")
    return 0.8 * pt if pt else None


CHECKS = [
    ("small1.create", RAFTFS, ">=", 159, "hard",
     "GlusterFS creates 159 files/s"),
    ("tar.x", RAFTFS, "<=", 86, "hard", "GlusterFS untars in 86 s"),
    ("seq.write", RAFTFS, ">=", 76, "hard", "GlusterFS writes 76 MB/s"),
    ("consensus.128.rate", ("cluster",), ">=", _consensus_rate, "hard",
     "128 proposers: 10 x the disk's fdatasync rate"),
    ("consensus.1.p50", ("cluster",), "<=", _consensus_p50, "hard",
     "1 proposer: p50 within 2 x (fdatasync p50 + round trip)"),
    ("small1.create", ("leader",), ">=", 1000, "target", "1 worker"),
    ("floor.ratio", ("cluster",), "<=", 1.5, "target",
     "per-file latency within 1.5 x the commit floor"),
    ("small16.create", ("leader",), ">=", 5000, "target", "16 workers"),
    ("tar.x", ("leader",), "<=", 15, "target", "tar x of /usr/include"),
    ("seq.write", ("leader",), ">=", 200, "target", "dd conv=fsync"),
    ("seq.read", ("leader",), ">=", _cold_read, "target",
     "cold read: 80 % of passthrough_ll"),
    ("failover.p50", ("cluster",), "<=", 400, "target", "failover p50"),
    ("failover.p99", ("cluster",), "<=", 1000, "target", "failover p99"),
    ("catchup.rate", ("cluster",), ">=", 100, "target", "catch-up"),
    ("rss.max", ("cluster",), "<=", 256, "target", "RSS per node"),
]

# Rows whose figure means something only once all their work was done
# (a rate over part of the work is still a rate; RSS at 50,000 files is not
# RSS at 200,000).
WHOLE = {"rss.max"}


def evaluate(res):
    """One dict per (check, column): rid, col, op, needed, value, kind,
    what, verdict ("met", "MISS" or "not run") and why (for a MISS
    without a figure, or a not-run column: the row's note)."""
    vals, notes = res.get("values", {}), res.get("notes", {})
    out = []
    for rid, cols, op, needed, kind, what in CHECKS:
        assert rid in META, rid
        need = needed(vals) if callable(needed) else needed
        for col in cols:
            v = _value(vals, rid, col)
            note = notes.get(rid, {}).get(col, "")
            ran = rid in vals and col in vals[rid]
            if col != "cluster" and col not in res.get("targets", {}) \
                    and not ran:
                continue  # a mode this build does not have
            if note.startswith(NOT_RUN):
                verdict, why = "not run", note
            elif v is None:
                verdict = "MISS"
                why = "not measured: " + (note or "no figure")
            elif need is None:
                verdict, why = "MISS", "its reference figure is missing"
            elif rid in WHOLE and " of " in note and " cap" in note:
                verdict = "MISS"
                why = "not measured on all its work: " + note
            else:
                ok = v <= need if op == "<=" else v >= need
                verdict, why = ("met" if ok else "MISS"), ""
            out.append({"rid": rid, "col": col, "op": op, "needed": need,
                        "value": v, "kind": kind, "what": what,
                        "verdict": verdict, "why": why})
    return out


def summary(checks):
    """(met, missed, missed among the hard ones, not run)."""
    met = sum(c["verdict"] == "met" for c in checks)
    miss = [c for c in checks if c["verdict"] == "MISS"]
    return met, len(miss), sum(c["kind"] == "hard" for c in miss), \
        sum(c["verdict"] == "not run" for c in checks)
