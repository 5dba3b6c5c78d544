#!/usr/bin/env python3
"""corrupt: make a history certainly not linearizable, for testing lincheck.

    corrupt.py IN OUT [KEY...]

Changes one read of the first KEY (any key without one) that has a read
that qualifies, in the second half of the history:
- register: the read saw value v, written by W, which completed before the
  read was invoked; its value becomes that of the last write that completed
  before W was invoked. Whatever the order of the other operations, W comes
  after that write and before the read: the read is stale.
- log: one token goes missing from the read, a token whose append completed
  before the read was invoked: the read has lost it.
Prints the read's id (the window lincheck reports must hold it) and its key.
Exit 1 when no read qualifies.
"""

import sys

import history


def _unique(ops, key):
    seen = {}
    for o in ops:
        if o.key == key and not o.is_read():
            seen.setdefault(o.arg, []).append(o)
    return {v: ws[0] for v, ws in seen.items() if len(ws) == 1}


def corrupt_register(ops, key, start_fraction=0.5):
    """Make one read of a register key stale; return its id or None."""
    writer = _unique(ops, key)
    reads = sorted((o for o in ops if o.key == key and o.is_read() and
                    o.is_ok() and o.value is not None),
                   key=lambda o: o.invoke)
    for r in reads[int(len(reads) * start_fraction):]:
        w = writer.get(r.value)
        if w is None or not w.is_ok() or w.complete >= r.invoke:
            continue
        older = [o for o in writer.values()
                 if o.is_ok() and o.complete < w.invoke]
        if older:
            r.value = max(older, key=lambda o: o.complete).arg
            return r.id
    return None


def corrupt_log(ops, key, start_fraction=0.5):
    """Drop a surely appended token from one read of a log key."""
    writer = _unique(ops, key)
    reads = sorted((o for o in ops if o.key == key and o.is_read() and
                    o.is_ok() and o.value),
                   key=lambda o: o.invoke)
    for r in reads[int(len(reads) * start_fraction):]:
        for i, t in enumerate(r.value):
            a = writer.get(t)
            if a is not None and a.is_ok() and a.complete < r.invoke:
                del r.value[i]
                return r.id
    return None


def corrupt_stale(ops, keys=None):
    """Corrupt ops in place; return the changed read's id."""
    models = {}
    for o in ops:
        models.setdefault(o.key, o.model)
    for key in keys or sorted(models):
        fn = corrupt_register if models.get(key) == "register" else \
            corrupt_log
        rid = fn(ops, key)
        if rid is not None:
            return rid
    raise LookupError("no read to corrupt")


def main(argv):
    if len(argv) < 3:
        print("usage: corrupt.py IN OUT [KEY...]", file=sys.stderr)
        return 2
    ops = history.load(argv[1])
    try:
        rid = corrupt_stale(ops, argv[3:])
    except LookupError as e:
        print(f"corrupt: {e}", file=sys.stderr)
        return 1
    history.dump(ops, argv[2])
    print(rid, next(o.key for o in ops if o.id == rid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
