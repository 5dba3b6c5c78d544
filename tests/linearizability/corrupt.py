#!/usr/bin/env python3
"""corrupt: make a history certainly not linearizable, for testing lincheck.

    corrupt.py IN OUT

Swaps one register read's value for an older one: the read saw value v,
written by W, which completed before the read was invoked; the new value is
that of the last write that completed before W was invoked. Whatever the
order of the other operations, W comes after that write and before the
read, so the read is stale. Prints the read's id (the window lincheck
reports must hold it). Exit 1 when no read qualifies.
"""

import sys

import history


def corrupt_stale(ops, start_fraction=0.5):
    """Corrupt ops in place; return the changed read's id."""
    writes = {}
    for o in ops:
        if o.op == "write":
            writes.setdefault((o.key, o.arg), []).append(o)
    reads = sorted((o for o in ops if o.model == "register" and o.is_read()
                    and o.is_ok() and o.value is not None),
                   key=lambda o: o.invoke)
    for r in reads[int(len(reads) * start_fraction):]:
        ws = writes.get((r.key, r.value), [])
        if len(ws) != 1 or not ws[0].is_ok() or ws[0].complete >= r.invoke:
            continue
        w = ws[0]
        older = [o for o in ops if o.key == r.key and o.op == "write" and
                 o.is_ok() and o.complete < w.invoke and
                 len(writes[(o.key, o.arg)]) == 1]
        if older:
            r.value = max(older, key=lambda o: o.complete).arg
            return r.id
    raise LookupError("no register read to corrupt")


def main(argv):
    if len(argv) != 3:
        print("usage: corrupt.py IN OUT", file=sys.stderr)
        return 2
    ops = history.load(argv[1])
    try:
        rid = corrupt_stale(ops)
    except LookupError as e:
        print(f"corrupt: {e}", file=sys.stderr)
        return 1
    history.dump(ops, argv[2])
    print(rid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
