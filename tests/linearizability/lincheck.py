#!/usr/bin/env python3
"""lincheck: is a recorded history linearizable? (README.md)

    lincheck.py [--json] [--time-limit S] [--max-configs N] HISTORY

Checks every key on its own (P-compositionality: a history of independent
objects is linearizable when each object's sub-history is). For a key that
is not linearizable it looks for the shortest window of time whose
operations cannot be linearized whatever happened before it, and within it
the core: the operations that cannot be relaxed (a read dropped, a write
given an unknown outcome) without the violation going away.

Exit status: 0 linearizable, 1 a violation, 3 could not decide within the
limits, 2 a usage error or a malformed history.
"""

import argparse
import json
import sys
import time

import history
from models import MODELS
from models import Prepared
from search import INF
from search import Limits
from search import Undecided
from search import linearizable

LINEARIZABLE, VIOLATION, UNKNOWN = "linearizable", "violation", "unknown"
EXIT = {LINEARIZABLE: 0, VIOLATION: 1, UNKNOWN: 3}
CORE_MAX_OPS = 400  # windows longer than this are not minimized


def build(recs, t_start=None, t_end=None, relax=None):
    """The search problem (prepared operations, model) for one key's records
    cut to the window [t_start, t_end] (None: no cut on that side).

    - Reads that failed are dropped: they constrain nothing.
    - Writes and appends that failed or timed out may take effect at any
      time after their invocation or never: their return is at infinity.
    - After t_end: operations invoked later are left out; reads still running
      at t_end are dropped and writes running then become unknown.
    - Before t_start: operations that completed earlier are left out; those
      invoked earlier and still running become unknown (writes) or are
      dropped (reads); the state at t_start is one built from the writes
      invoked before it (see models.py). Whatever a linearization of the whole
      history does before t_start, its operations after the last one that
      completed before t_start form a linearization of this window, so a
      window that cannot be linearized proves the violation.
    - relax maps an operation id to "drop" (a read) or "unknown" (a write):
      each removes constraints, so a violation that remains is still one.
    - An unknown write that no read observes is dropped (never taking effect
      is always a valid choice for it); one whose unique value is observed
      and cannot come from before the window must precede the first read
      that observes it to complete: its return moves there.
    """
    relax = relax or {}
    model_cls = MODELS[recs[0].model]
    allowed = None
    if t_start is not None:
        allowed = {}  # value -> how many writes of it before t_start
        if model_cls.name == "register":
            allowed[None] = 1
    writers = {}
    for r in recs:
        if not r.is_read():
            for v in model_cls.effect(r):
                writers[v] = writers.get(v, 0) + 1
    pops = []
    for r in recs:
        how = relax.get(r.id)
        if how == "drop":
            continue
        ok = r.outcome == "ok" and how != "unknown"
        if t_end is not None and r.invoke > t_end:
            continue
        cut = t_start is not None and r.invoke < t_start
        if r.is_read():
            if not ok or cut or (t_end is not None and r.complete > t_end):
                continue
            pops.append(Prepared(r, r.invoke, r.complete))
            continue
        if cut:
            for v in model_cls.effect(r):
                allowed[v] = allowed.get(v, 0) + 1
            if ok and r.complete < t_start:
                continue
        unknown = (not ok or cut or
                   (t_end is not None and r.complete > t_end))
        if unknown:
            pops.append(Prepared(r, r.invoke, INF, optional=True, cut=cut))
        else:
            pops.append(Prepared(r, r.invoke, r.complete))
    first_seen = {}
    for p in pops:
        if p.read:
            for v in model_cls.shows(p.rec):
                if v not in first_seen or p.ret < first_seen[v]:
                    first_seen[v] = p.ret
    kept = []
    for p in pops:
        if p.optional:
            v = p.arg
            if v not in first_seen:
                continue
            if not p.cut and writers.get(v) == 1 and \
                    (allowed is None or v not in allowed):
                p.ret = first_seen[v]
                p.optional = False
        kept.append(p)
    kept.sort(key=lambda p: (p.call, p.ret))
    model = model_cls(allowed, writers)
    for p in kept:
        model.prepare(p)
    model.setup(kept)
    return kept, model


def decide(recs, limits, **cut):
    """(answer, configurations) for build(recs, **cut); answer is None when
    the limits were passed."""
    pops, model = build(recs, **cut)
    try:
        return linearizable(pops, model, limits)
    except Undecided:
        return None, 0


def fails(recs, limits, **cut):
    return decide(recs, limits, **cut)[0] is False


def find_window(recs, limits):
    """The shortest violating window found: (t_start or None, t_end, relax).

    The end is the earliest completion time at which the history cut there
    is already not linearizable (cutting is monotone: a prefix of a
    linearizable history is linearizable); the start the latest invocation
    time from which the window still cannot be linearized. Both by binary
    search; a probe that passes the limits counts as "not proven" so the
    window only ever shrinks to what was proven.
    """
    ends = sorted({r.complete for r in recs if r.outcome == "ok"})
    lo, hi = 0, len(ends) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if fails(recs, limits, t_end=ends[mid]):
            hi = mid
        else:
            lo = mid + 1
    t_end = ends[hi] if ends else None
    if t_end is None or not fails(recs, limits, t_end=t_end):
        t_end = None
    starts = sorted({r.invoke for r in recs
                     if t_end is None or r.invoke <= t_end})
    lo, hi = -1, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fails(recs, limits, t_start=starts[mid], t_end=t_end):
            lo = mid
        else:
            hi = mid - 1
    t_start = starts[lo] if lo >= 0 else None
    relax = {}
    window = window_ops(recs, t_start, t_end)
    if len(window) <= CORE_MAX_OPS:
        for r in sorted(window, key=lambda r: not r.is_read()):
            if r.outcome != "ok" or limits.left() <= 0:
                continue
            relax[r.id] = "drop" if r.is_read() else "unknown"
            if not fails(recs, limits, t_start=t_start, t_end=t_end,
                         relax=relax):
                del relax[r.id]
    return t_start, t_end, relax


def window_ops(recs, t_start, t_end):
    """The operations of a window that the check of it uses."""
    pops, _ = build(recs, t_start=t_start, t_end=t_end)
    return [p.rec for p in pops]


class KeyResult:
    def __init__(self, key, model, ops):
        self.key = key
        self.model = model
        self.ops = ops
        self.result = UNKNOWN
        self.configs = 0
        self.seconds = 0.0
        self.reason = ""
        self.window = None  # (t_start, t_end, [ops], [core ops])


def check_key(key, recs, limits):
    res = KeyResult(key, recs[0].model, len(recs))
    start = time.monotonic()
    answer, res.configs = decide(recs, limits)
    if answer is None:
        res.reason = "search limits passed"
    elif answer:
        res.result = LINEARIZABLE
    else:
        res.result = VIOLATION
        t_start, t_end, relax = find_window(recs, limits)
        ops = window_ops(recs, t_start, t_end)
        core = [r for r in ops if r.outcome == "ok" and r.id not in relax]
        res.window = (t_start, t_end, ops, core)
    res.seconds = time.monotonic() - start
    return res


def check(ops, limits=None, keys=None):
    """KeyResults for every key of a history, and the overall result."""
    limits = limits or Limits()
    by_key = {}
    for op in ops:
        if keys is None or op.key in keys:
            by_key.setdefault(op.key, []).append(op)
    results = [check_key(k, sorted(v, key=lambda o: o.invoke), limits)
               for k, v in sorted(by_key.items())]
    kinds = {r.result for r in results}
    if VIOLATION in kinds:
        overall = VIOLATION
    elif UNKNOWN in kinds:
        overall = UNKNOWN
    else:
        overall = LINEARIZABLE
    return results, overall


# ----------------------------------------------------------------------------
# Reporting

def _ms(t, t0):
    return "inf" if t is None or t == INF else f"{(t - t0) / 1e6:+.3f}"


def _short(v, width=40):
    s = json.dumps(v)
    return s if len(s) <= width else s[:width - 3] + "..."


def _value(op):
    if op.model == "log":
        if op.is_read():
            v = op.value or []
            tail = ", ".join(json.dumps(t) for t in v[-3:])
            more = "... " if len(v) > 3 else ""
            return f"[{len(v)} tokens: {more}{tail}]" if v else "[]"
        return _short(op.arg)
    return _short(op.value if op.is_read() else op.arg)


def _op_line(op, t0, mark):
    what = f"{op.op:6} {_value(op)}"
    node = f" n{op.node}" if op.node is not None else ""
    err = f" {op.error}" if op.error else ""
    return (f"  {mark} #{op.id:<6} p{op.process}{node}  "
            f"[{_ms(op.invoke, t0)}, {_ms(op.complete, t0)}] ms  "
            f"{op.outcome}{err}  {what}")


def explain(recs, core, t0):
    """One line per read of the core: where its value came from."""
    lines = []
    writers = {}
    for r in recs:
        if not r.is_read():
            writers.setdefault(r.arg, []).append(r)
    prev_log = None
    for r in sorted(core, key=lambda o: o.invoke):
        if not r.is_read():
            continue
        if r.model == "register":
            if r.value is None:
                lines.append(f"#{r.id} read null: the file did not exist")
                continue
            ws = writers.get(r.value, [])
            if not ws:
                lines.append(f"#{r.id} read {_short(r.value)}, "
                             "which no operation wrote")
            for w in ws:
                lines.append(f"#{r.id} read {_short(r.value)}, written by "
                             f"#{w.id} ({w.outcome}, "
                             f"[{_ms(w.invoke, t0)}, {_ms(w.complete, t0)}])")
            continue
        v = r.value or []
        shown = set(v)
        for a in core:
            if a.op == "append" and a.is_ok() and a.complete < r.invoke \
                    and a.arg not in shown:
                lines.append(f"#{r.id} lacks {_short(a.arg)}, appended by "
                             f"#{a.id}, which completed before #{r.id} "
                             "began")
        for t in v:
            if t not in writers:
                lines.append(f"#{r.id} shows {_short(t)}, which no "
                             "operation appended")
                break
        if len(set(v)) != len(v):
            lines.append(f"#{r.id} shows a token twice")
        if prev_log is not None:
            a, b = prev_log.value or [], v
            n = min(len(a), len(b))
            diff = next((i for i in range(n) if a[i] != b[i]), n)
            if diff < len(a):
                got = _short(b[diff]) if diff < len(b) else "the end"
                lines.append(f"#{r.id} is not an extension of #{prev_log.id}"
                             f": at position {diff} #{prev_log.id} has "
                             f"{_short(a[diff])}, #{r.id} {got}")
        prev_log = r
    return lines


def report_text(results, overall, t0, by_key, out):
    for res in results:
        head = (f"key {res.key} ({res.model}): {res.ops} ops, "
                f"{res.result}")
        out.write(f"{head} ({res.configs} configurations, "
                  f"{res.seconds:.2f} s)"
                  f"{': ' + res.reason if res.reason else ''}\n")
        if res.window is None:
            continue
        t_start, t_end, ops, core = res.window
        lo = t_start if t_start is not None else min(o.invoke for o in ops)
        core_ids = {o.id for o in core}
        out.write(f"  violating window: {_ms(lo, t0)} .. {_ms(t_end, t0)} ms"
                  f" ({(t_end - lo) / 1e6:.3f} ms, {len(ops)} ops; "
                  f"the {len(core)} marked * cannot be relaxed)\n")
        if t_start is None:
            out.write("  (from the start of the history: the initial state "
                      "is part of it)\n")
        for op in ops:
            out.write(_op_line(op, t0, "*" if op.id in core_ids else " ")
                      + "\n")
        for line in explain(by_key[res.key], core, t0):
            out.write(f"  {line}\n")
    out.write(f"result: {overall}\n")


def report_json(results, overall, t0):
    keys = []
    for res in results:
        k = {"key": res.key, "model": res.model, "ops": res.ops,
             "result": res.result, "configurations": res.configs,
             "seconds": round(res.seconds, 3)}
        if res.reason:
            k["reason"] = res.reason
        if res.window is not None:
            t_start, t_end, ops, core = res.window
            lo = t_start if t_start is not None else \
                min(o.invoke for o in ops)
            k["window"] = {"start": lo, "end": t_end,
                           "from_history_start": t_start is None,
                           "span_ms": round((t_end - lo) / 1e6, 3),
                           "ops": [o.id for o in ops],
                           "core": [o.id for o in core]}
        keys.append(k)
    return json.dumps({"result": overall, "t0": t0, "keys": keys}, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check that a recorded history is linearizable "
        "(exit 0), find a violation (1) or give up within the limits (3).")
    ap.add_argument("history", help="JSON lines, one operation each")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object instead of text")
    ap.add_argument("--time-limit", type=float, default=60.0, metavar="S",
                    help="seconds for the whole check (default 60)")
    ap.add_argument("--max-configs", type=int, default=500000, metavar="N",
                    help="configurations per search (default 500000)")
    ap.add_argument("--key", action="append",
                    help="check only this key (repeatable)")
    args = ap.parse_args(argv)
    try:
        ops = history.load(args.history)
    except (OSError, history.HistoryError) as e:
        print(f"lincheck: {e}", file=sys.stderr)
        return 2
    limits = Limits(args.max_configs, args.time_limit)
    results, overall = check(ops, limits, args.key)
    t0 = min((o.invoke for o in ops), default=0)
    if args.json:
        print(report_json(results, overall, t0))
    else:
        by_key = {}
        for o in ops:
            by_key.setdefault(o.key, []).append(o)
        report_text(results, overall, t0, by_key, sys.stdout)
    return EXIT[overall]


if __name__ == "__main__":
    sys.exit(main())
