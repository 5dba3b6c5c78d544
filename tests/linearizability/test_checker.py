#!/usr/bin/env python3
"""Unit tests of the checker on hand-written and generated histories.

Prints PASS/FAIL per test and "N passed, N failed" (tests/lib/suite.sh's
run_cmocka reads that line). A generated history prints its seed on failure;
LIN_SEED=N replays one.
"""

import io
import json
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import history  # noqa: E402
import lincheck  # noqa: E402
from corrupt import corrupt_stale  # noqa: E402
from search import Limits  # noqa: E402

MS = 1000000  # the tests write times in ms; histories hold ns


class H:
    """A hand-written history: h.w(...), h.r(...), h.a(...), h.lr(...)."""

    def __init__(self):
        self.ops = []

    def _add(self, key, model, op, start, end, p, outcome, arg=None,
             value=None):
        self.ops.append(history.Op(
            id=len(self.ops), process=p, node=None, key=key, model=model,
            op=op, arg=arg, invoke=start * MS,
            complete=None if end is None else end * MS, outcome=outcome,
            value=value, error=None if outcome == "ok" else "EIO"))
        return len(self.ops) - 1

    def w(self, value, start, end, p=0, outcome="ok", key="r"):
        return self._add(key, "register", "write", start, end, p, outcome,
                         arg=value)

    def r(self, value, start, end, p=1, outcome="ok", key="r"):
        return self._add(key, "register", "read", start, end, p, outcome,
                         value=value)

    def a(self, token, start, end, p=0, outcome="ok", key="l"):
        return self._add(key, "log", "append", start, end, p, outcome,
                         arg=token)

    def lr(self, tokens, start, end, p=1, outcome="ok", key="l"):
        return self._add(key, "log", "read", start, end, p, outcome,
                         value=list(tokens))

    def check(self, **kw):
        return lincheck.check(self.ops, Limits(**kw))


def expect(h, want, core=None):
    results, overall = h.check()
    if overall != want:
        out = io.StringIO()
        by_key = {}
        for o in h.ops:
            by_key.setdefault(o.key, []).append(o)
        lincheck.report_text(results, overall, 0, by_key, out)
        raise AssertionError(f"wanted {want}, got {overall}\n"
                             + out.getvalue())
    if core is not None:
        got = set()
        for res in results:
            if res.window:
                got |= {o.id for o in res.window[3]}
        assert got == set(core), f"core {sorted(got)}, wanted {sorted(core)}"
    return results


LIN, VIOL = lincheck.LINEARIZABLE, lincheck.VIOLATION

# ----------------------------------------------------------------------------
# Registers


def test_register_sequential():
    h = H()
    h.r(None, 0, 1)
    h.w("a", 2, 3)
    h.r("a", 4, 5)
    h.w("b", 6, 7)
    h.r("b", 8, 9)
    expect(h, LIN)


def test_register_concurrent_read_sees_either():
    h = H()
    h.w("a", 0, 1)
    h.w("b", 2, 10)
    h.r("a", 3, 4, p=1)
    h.r("b", 5, 6, p=2)
    h.r("b", 11, 12, p=3)
    expect(h, LIN)


def test_register_reads_order_concurrent_writes():
    # Two concurrent writes; readers agree on one order.
    h = H()
    h.w("a", 0, 10, p=0)
    h.w("b", 0, 10, p=1)
    h.r("b", 1, 2, p=2)
    h.r("a", 3, 4, p=3)
    h.r("a", 11, 12, p=2)
    expect(h, LIN)


def test_register_stale_read_after_completed_write():
    h = H()
    h.w("a", 0, 1)
    wb = h.w("b", 2, 3)
    r = h.r("a", 4, 5)
    expect(h, VIOL, core=[wb, r])


def test_register_read_of_value_never_written():
    h = H()
    h.w("a", 0, 1)
    h.r("a", 2, 3)
    r = h.r("zz", 4, 5)
    res = expect(h, VIOL, core=[r])
    t_start, t_end, ops, _ = res[0].window
    assert [o.id for o in ops] == [r], "window should be the read alone"


def test_register_reads_reverse_of_writes():
    h = H()
    h.w("a", 0, 1, p=0)
    h.w("b", 2, 20, p=0)
    r1 = h.r("b", 3, 4, p=1)
    r2 = h.r("a", 5, 6, p=2)
    expect(h, VIOL, core=[r1, r2])


def test_register_null_after_write():
    h = H()
    h.w("a", 0, 1)
    h.r(None, 2, 3)
    expect(h, VIOL)


def test_register_failed_write_appears_later():
    h = H()
    h.w("a", 0, 1)
    h.w("b", 2, 3, outcome="fail")
    h.r("a", 4, 5)
    h.r("b", 100, 101)
    h.r("b", 102, 103)
    expect(h, LIN)


def test_register_failed_write_never_appears():
    h = H()
    h.w("a", 0, 1)
    h.w("b", 2, None, outcome="timeout")
    h.r("a", 4, 5)
    h.r("a", 100, 101)
    expect(h, LIN)


def test_register_failed_write_appears_then_disappears():
    h = H()
    h.w("a", 0, 1)
    h.w("b", 2, 3, outcome="fail")
    r1 = h.r("b", 4, 5)
    r2 = h.r("a", 6, 7)
    expect(h, VIOL, core=[r1, r2])


def test_register_failed_read_constrains_nothing():
    h = H()
    h.w("a", 0, 1)
    h.r("zz", 2, 3, outcome="fail")
    h.r("a", 4, 5)
    expect(h, LIN)


def test_register_needs_backtracking():
    # Greedy by return time would put b first; only a, b, c works here.
    h = H()
    h.w("a", 0, 10, p=0)
    h.w("b", 0, 5, p=1)
    h.w("c", 0, 20, p=2)
    h.r("b", 11, 12, p=3)
    h.r("c", 21, 22, p=3)
    expect(h, LIN)


# ----------------------------------------------------------------------------
# Logs


def test_log_sequential_and_concurrent():
    h = H()
    h.lr([], 0, 1)
    h.a("x", 2, 3, p=0)
    h.a("y", 4, 10, p=0)
    h.a("z", 4, 10, p=2)
    h.lr(["x"], 5, 6, p=1)
    h.lr(["x", "z"], 7, 8, p=3)
    h.lr(["x", "z", "y"], 11, 12, p=1)
    expect(h, LIN)


def test_log_read_loses_token():
    h = H()
    h.a("x", 0, 1)
    h.a("y", 2, 3)
    h.lr(["x", "y"], 4, 5)
    r = h.lr(["x"], 6, 7, p=2)
    expect(h, VIOL)
    h2 = H()
    h2.a("x", 0, 1)
    h2.a("y", 2, 3)
    h2.lr(["x"], 4, 5)
    expect(h2, VIOL)
    assert r is not None


def test_log_read_reorders_tokens():
    h = H()
    h.a("x", 0, 1)
    h.a("y", 2, 3)
    h.lr(["y", "x"], 4, 5)
    expect(h, VIOL)
    h2 = H()
    h2.a("x", 0, 10, p=0)
    h2.a("y", 0, 10, p=2)
    h2.lr(["x", "y"], 1, 2, p=1)
    r2 = h2.lr(["y", "x"], 3, 4, p=3)
    expect(h2, VIOL)
    assert r2


def test_log_token_never_appended_or_twice():
    h = H()
    h.a("x", 0, 1)
    h.lr(["x", "q"], 2, 3)
    expect(h, VIOL)
    h2 = H()
    h2.a("x", 0, 1)
    h2.lr(["x", "x"], 2, 3)
    expect(h2, VIOL)


def test_log_failed_append_appears_later_or_never():
    h = H()
    h.a("x", 0, 1)
    h.a("y", 2, 3, outcome="fail")
    h.a("z", 4, None, outcome="timeout")
    h.lr(["x"], 5, 6)
    h.a("w", 7, 8)
    h.lr(["x", "w", "y"], 50, 51)
    h.lr(["x", "w", "y"], 52, 53)
    expect(h, LIN)


def test_log_failed_append_appears_then_disappears():
    h = H()
    h.a("x", 0, 1)
    h.a("y", 2, 3, outcome="fail")
    h.lr(["x", "y"], 4, 5)
    h.lr(["x"], 6, 7)
    expect(h, VIOL)


def test_keys_are_independent():
    h = H()
    h.w("a", 0, 1, key="r1")
    h.w("b", 0, 1, key="r2")
    h.r("a", 2, 3, key="r1")
    h.r("b", 2, 3, key="r2")
    h.a("x", 0, 1)
    h.lr(["x"], 2, 3)
    results = expect(h, LIN)
    assert [r.key for r in results] == ["l", "r1", "r2"]
    h.r("zz", 4, 5, key="r2")
    results = expect(h, VIOL)
    assert [r.result for r in results] == [LIN, LIN, VIOL]


def test_limits_give_unknown():
    # Concurrent writes that later reads order: the search has choices to
    # make, and a limit of no configurations at all cannot decide.
    h = H()
    for i in range(6):
        h.w(f"v{i}", 0, 10, p=i)
    for i in range(6):
        h.r(f"v{5 - i}", 1 + i, 1 + i, p=10 + i)
    results, overall = h.check(max_configs=0)
    assert overall == lincheck.UNKNOWN, overall
    assert results[0].reason, "no reason given"
    results, overall = h.check(seconds=0)
    assert overall == lincheck.UNKNOWN, overall
    results, overall = h.check()
    assert overall == LIN, overall


def test_history_format_errors():
    bad = [
        '{"process":0,"key":"r","model":"register","op":"write",'
        '"invoke":1,"complete":2,"outcome":"ok"}',        # no arg
        '{"process":0,"key":"r","model":"queue","op":"write","arg":"a",'
        '"invoke":1,"complete":2,"outcome":"ok"}',        # unknown model
        '{"process":0,"key":"r","model":"register","op":"read","value":1,'
        '"invoke":1,"complete":2,"outcome":"ok"}',        # value not str
        '{"process":0,"key":"r","model":"register","op":"read","value":"a",'
        '"invoke":3,"complete":2,"outcome":"ok"}',        # ends before start
        'not json',
    ]
    for line in bad:
        try:
            history.parse([line])
        except history.HistoryError:
            continue
        raise AssertionError(f"accepted: {line}")
    ops = history.parse([
        '{"process":0,"key":"r","model":"register","op":"write","arg":"a",'
        '"invoke":1,"complete":null,"outcome":"timeout"}', ''])
    assert len(ops) == 1 and ops[0].id == 0


# ----------------------------------------------------------------------------
# Generated histories: a simulated linearizable object, then corrupted


def generate(model, n_ops, procs, seed, fail_rate=0.02):
    """A linearizable history of one key: each operation takes effect at a
    random point of its interval (a failed write: within three times its
    duration after its invocation, or never)."""
    rng = random.Random(seed)
    clock = [rng.randrange(0, 1000) for _ in range(procs)]
    ops = []
    for i in range(n_ops):
        p = rng.randrange(procs)
        start = clock[p] + rng.randrange(0, 2000)
        dur = rng.randrange(200, 5000)
        clock[p] = start + dur
        kind = "read" if rng.random() < 0.5 else (
            "write" if model == "register" else "append")
        outcome = "fail" if rng.random() < fail_rate else "ok"
        point = rng.uniform(start, start + dur)
        if outcome == "fail" and kind != "read":
            point = rng.uniform(start, start + 3 * dur) \
                if rng.random() < 0.5 else None
        ops.append(dict(id=i, process=p, node=None, key="k", model=model,
                        op=kind, arg=None if kind == "read" else f"{p}.{i}",
                        invoke=start * 1000, complete=(start + dur) * 1000,
                        outcome=outcome, value=None, error=None,
                        point=point))
    state = None if model == "register" else []
    for o in sorted((o for o in ops if o["point"] is not None),
                    key=lambda o: o["point"]):
        if o["op"] == "write":
            state = o["arg"]
        elif o["op"] == "append":
            state = state + [o["arg"]]
        else:
            o["value"] = state if model == "register" else list(state)
    out = []
    for o in sorted(ops, key=lambda o: o["invoke"]):
        del o["point"]
        if o["op"] == "read" and o["outcome"] != "ok":
            o["value"] = "garbage"
        out.append(history.Op(**o))
    return out


def brute_force(ops):
    """Linearizability by definition, for a handful of operations: some
    order of the ok operations and of any subset of the unknown writes
    that respects real time and the sequential model."""
    ops = [o for o in ops if o.is_ok() or not o.is_read()]
    inf = float("inf")
    end = {o.id: (o.complete if o.is_ok() else inf) for o in ops}

    def go(state, left):
        if all(not o.is_ok() for o in left):
            return True
        for o in left:
            if any(end[p.id] < o.invoke for p in left if p is not o):
                continue
            if o.op == "write":
                new = o.arg
            elif o.op == "append":
                new = state + (o.arg,)
            else:
                want = o.value if o.model == "register" else tuple(o.value)
                if want != state:
                    continue
                new = state
            if go(new, [p for p in left if p is not o]):
                return True
        return False

    initial = None if ops and ops[0].model == "register" else ()
    return go(initial, ops)


def window_brute_force(recs, t_start, t_end):
    """Whether the window's problem (lincheck.build) can be linearized from
    some state it may start in, by trying every order."""
    import itertools
    pops, model = lincheck.build(recs, t_start=t_start, t_end=t_end)
    if model.name == "register":
        starts = [None] if t_start is None else list(model.allowed)
    else:
        pool = sorted(t for t, n in (model.allowed or {}).items()
                      for _ in range(n))
        starts = [()] if t_start is None else sorted({
            perm for k in range(len(pool) + 1)
            for perm in itertools.permutations(pool, k)})

    def go(state, left):
        if all(p.optional for p in left):
            return True
        for p in left:
            if any(q.ret < p.call for q in left if q is not p):
                continue
            if p.read:
                want = p.value if model.name == "register" else \
                    tuple(p.value)
                if want != state:
                    continue
                new = state
            elif model.name == "register":
                new = p.arg
            else:
                new = state + (p.arg,)
            if go(new, [q for q in left if q is not p]):
                return True
        return False

    return any(go(s, pops) for s in starts)


def random_small(rng, model, unique=True):
    h = H()
    n = rng.randrange(2, 8)
    values = []
    for i in range(n):
        start = rng.randrange(0, 20)
        end = start + rng.randrange(0, 8)
        outcome = "ok" if rng.random() < 0.8 else "fail"
        p = rng.randrange(4)
        if rng.random() < 0.5:
            v = f"v{i}" if unique else f"v{rng.randrange(2)}"
            values.append(v)
            if model == "register":
                h.w(v, start, end, p=p, outcome=outcome)
            else:
                h.a(v, start, end, p=p, outcome=outcome)
        else:
            h.ops.append(None)  # a read, filled in below
            h.ops[-1] = (start, end, p, outcome)
    for i, o in enumerate(h.ops):
        if isinstance(o, tuple):
            start, end, p, outcome = o
            if model == "register":
                v = rng.choice(values + [None, "zz"]) if values else None
                rec = history.Op(id=i, process=p, node=None, key="r",
                                 model="register", op="read", arg=None,
                                 invoke=start * MS, complete=end * MS,
                                 outcome=outcome, value=v, error=None)
            else:
                k = rng.randrange(0, len(values) + 1)
                v = rng.sample(values, k) if values else []
                rec = history.Op(id=i, process=p, node=None, key="l",
                                 model="log", op="read", arg=None,
                                 invoke=start * MS, complete=end * MS,
                                 outcome=outcome, value=v, error=None)
            h.ops[i] = rec
    return h


def test_agrees_with_brute_force():
    seed = seeds(1)[0]
    rng = random.Random(seed)
    counts = {LIN: 0, VIOL: 0}
    for n in range(3000):
        model = "register" if n % 2 else "log"
        h = random_small(rng, model, unique=n % 5 != 0)
        want = LIN if brute_force(h.ops) else VIOL
        results, got = h.check()
        counts[want] += 1
        if got != want:
            lines = "\n".join(json.dumps(o.to_dict()) for o in h.ops)
            raise AssertionError(f"seed {seed}, history {n}: brute force "
                                 f"says {want}, lincheck {got}\n{lines}")
        if got == VIOL:
            # The window found must be a violation whatever state it
            # starts from.
            t_start, t_end, _, _ = results[0].window
            recs = sorted(h.ops, key=lambda o: o.invoke)
            assert not window_brute_force(recs, t_start, t_end), \
                f"seed {seed}, history {n}: window is linearizable"
    assert min(counts.values()) > 300, counts


def seeds(n):
    if os.environ.get("LIN_SEED"):
        return [int(os.environ["LIN_SEED"])]
    return [int(time.time() * 1000) % 100000 + i for i in range(n)]


def test_generated_register_histories_pass():
    for seed in seeds(10):
        ops = generate("register", 400, 8, seed, fail_rate=0.05)
        _, overall = lincheck.check(ops, Limits())
        assert overall == LIN, f"seed {seed}: {overall}"


def test_generated_log_histories_pass():
    for seed in seeds(10):
        ops = generate("log", 300, 8, seed, fail_rate=0.05)
        _, overall = lincheck.check(ops, Limits())
        assert overall == LIN, f"seed {seed}: {overall}"


def test_corrupted_generated_history_fails_with_short_window():
    for seed in seeds(6):
        model = "register" if seed % 2 else "log"
        ops = generate(model, 400, 8, seed)
        bad = corrupt_stale(ops)
        results, overall = lincheck.check(ops, Limits())
        assert overall == VIOL, f"seed {seed}: {model}: {overall}"
        _, _, window, core = results[0].window
        ids = [o.id for o in window]
        assert bad in ids, f"seed {seed}: #{bad} not in window {ids}"
        assert bad in [o.id for o in core], f"seed {seed}: not in core"
        assert len(window) <= 40, f"seed {seed}: window of {len(window)}"


def test_thousands_of_ops_in_seconds():
    seed = seeds(1)[0]
    for model, n in (("register", 5000), ("log", 3000)):
        ops = generate(model, n, 16, seed, fail_rate=0.02)
        start = time.monotonic()
        _, overall = lincheck.check(ops, Limits(seconds=30))
        took = time.monotonic() - start
        assert overall == LIN, f"seed {seed}: {model}: {overall}"
        assert took < 10, f"seed {seed}: {model}: {n} ops took {took:.1f} s"
        print(f"  {model}: {n} ops, 16 processes: {took:.2f} s")


def main():
    tests = [(k, v) for k, v in sorted(globals().items())
             if k.startswith("test_") and callable(v)]
    if len(sys.argv) > 1:
        tests = [(k, v) for k, v in tests if any(a in k for a in sys.argv[1:])]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"PASS {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
