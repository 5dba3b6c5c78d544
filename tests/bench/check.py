#!/usr/bin/env python3
"""`make bench-check`: compare the latest recorded benchmark run with the
previous one of the same machine and mode and fail on a regression.

  check.py [DIR | OLD.json NEW.json] [--threshold PERCENT]

DIR (default docs/bench) holds the results files of `make bench`; the two
with the latest "started" among those of the newest run's machine and mode
are compared. A row regressed when its figure is worse by more than
PERCENT (default 15): a rate lower than (1 - P/100) x the old one, a time
or latency higher than (1 + P/100) x the old one, or no figure now where
there was one. Rows marked "info" (probes such as the disk's fdatasync
rate) are shown but never fail. Exit 0: no regression (or fewer than two
runs to compare, said in one line); 1: a regression; 2: bad usage or a
results file that cannot be read."""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows import META  # noqa: E402


class BadResults(Exception):
    pass


def load(path):
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        raise BadResults(f"{path}: {e}")
    if not isinstance(res, dict) or res.get("schema") != 1 or \
            not isinstance(res.get("values"), dict) or \
            not isinstance(res.get("started"), str):
        raise BadResults(f"{path}: not a results file of make bench "
                         "(schema 1)")
    return res


def latest_pair(d):
    """The paths of the previous and the latest run of the newest run's
    machine and mode in directory d, or None when there are fewer than two."""
    runs = []
    if not os.path.isdir(d):
        return None
    for n in sorted(os.listdir(d)):
        if n.endswith(".json"):
            p = os.path.join(d, n)
            r = load(p)
            runs.append((r["started"], p, r.get("machine"), r.get("mode")))
    if not runs:
        return None
    runs.sort()
    _, newest, machine, mode = runs[-1]
    same = [p for _, p, m, md in runs if m == machine and md == mode]
    return (same[-2], same[-1]) if len(same) >= 2 else None


def compare(old, new, threshold_pct):
    """Rows (rid, target, old, new, change %, verdict) and the number of
    regressions. change is new over old minus 1, in percent."""
    out, bad = [], 0
    limit = threshold_pct / 100.0
    for rid in META:
        ov, nv = old["values"].get(rid, {}), new["values"].get(rid, {})
        for t in sorted(set(ov) | set(nv)):
            a, b = ov.get(t), nv.get(t)
            better = META[rid][2]
            if a is None:
                continue
            if not isinstance(a, (int, float)) or (
                    b is not None and not isinstance(b, (int, float))):
                raise BadResults(f"{rid} ({t}): not a number")
            if b is None:
                verdict = "info" if better == "info" else "REGRESSION (no figure now)"
                bad += verdict.startswith("REGRESSION")
                out.append((rid, t, a, b, None, verdict))
                continue
            change = (b / a - 1) * 100 if a else 0.0
            worse = (better == "higher" and b < a * (1 - limit)) or \
                (better == "lower" and b > a * (1 + limit))
            verdict = "info" if better == "info" else (
                "REGRESSION" if worse else "ok")
            bad += worse and better != "info"
            out.append((rid, t, a, b, change, verdict))
    return out, bad


def main(argv):
    ap = argparse.ArgumentParser(description="fail on a benchmark regression")
    ap.add_argument("paths", nargs="*", default=["docs/bench"])
    ap.add_argument("--threshold", type=float, default=15.0)
    a = ap.parse_args(argv)
    try:
        if len(a.paths) == 1 and (os.path.isdir(a.paths[0]) or
                                  not os.path.exists(a.paths[0])):
            pair = latest_pair(a.paths[0])
            if pair is None:
                print(f"bench-check: fewer than two recorded runs of one "
                      f"machine and mode in {a.paths[0]}; nothing to compare")
                return 0
        elif len(a.paths) == 2:
            pair = tuple(a.paths)
        else:
            print("bench-check: give a directory or OLD.json NEW.json",
                  file=sys.stderr)
            return 2
        old, new = load(pair[0]), load(pair[1])
        rows, bad = compare(old, new, a.threshold)
    except BadResults as e:
        print(f"bench-check: {e}", file=sys.stderr)
        return 2
    print(f"bench-check: {os.path.basename(pair[0])} -> "
          f"{os.path.basename(pair[1])} (threshold {a.threshold:g} %)")
    for rid, t, x, y, ch, verdict in rows:
        chs = f"{ch:+.1f} %" if ch is not None else "—"
        ys = f"{y:.4g}" if y is not None else "—"
        print(f"  {rid:24} {t:12} {x:12.4g} {ys:>12} {chs:>9}  {verdict}")
    if bad:
        print(f"bench-check: {bad} regression(s) of more than "
              f"{a.threshold:g} %", file=sys.stderr)
        return 1
    print(f"bench-check: no regression of more than {a.threshold:g} % "
          f"in {len(rows)} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
