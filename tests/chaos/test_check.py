#!/usr/bin/env python3
"""Tests of the chaos checker (chaos.check_final, worker.Model/replay)
without a cluster: real workers run for a moment on a directory of the
local disk, the check passes; then each kind of damage a faulty file system
could do is made to a copy, and the check must name it. Also a history with
unknown outcomes (a worker killed mid-operation, failed operations) allows
either result. Prints "N passed, N failed" (tests/lib/suite.sh's
run_cmocka reads it)."""

import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chaos  # noqa: E402
import worker  # noqa: E402

passed = failed = 0


def expect(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


class FakeCluster:
    def __init__(self, root):
        self.root = root
        self.members = [1]

    def mount(self, i):
        return self.root


def check(root, logs):
    problems = []
    list(chaos.check_final(FakeCluster(root), logs, problems))
    return problems


def main():
    tmp = tempfile.mkdtemp()
    try:
        good = os.path.join(tmp, "good")
        base = os.path.join(good, "chaos")
        os.makedirs(os.path.join(base, "shared"))
        open(os.path.join(base, "shared", "log"), "wb").close()
        logs = []
        for wid in ("1.0", "2.0"):
            worker.setup(base, wid)
            out = os.path.join(tmp, f"w{wid}.jsonl")
            worker.run(good, "chaos", wid, 7, time.time() + 0.5, out,
                       check_mounted=False)
            logs.append((wid, out))
        problems = check(good, logs)
        expect("real workers on the local disk: the check passes", not problems, problems[:3])
        m, _ = worker.replay(logs[0][1], "1.0")
        expect("the workers did every kind of operation",
               all(m.counts.get(k, [0])[0] > 0 for k in
                   ("create", "append", "write", "rename", "unlink", "read")), m.counts)

        def damaged(name, damage, want):
            root = os.path.join(tmp, name)
            shutil.copytree(good, root)
            damage(os.path.join(root, "chaos"), m)
            p = check(root, logs)
            expect(f"{name}: found", any(want in x for x in p), p[:3])

        def lose_file(b, model):
            n = model.present_names()[0]
            os.unlink(os.path.join(b, "w1.0", n))

        def extra_file(b, model):
            open(os.path.join(b, "w1.0", "c999999"), "w").close()

        def changed_file(b, model):
            n = model.present_names()[0]
            with open(os.path.join(b, "w1.0", n), "ab") as f:
                f.write(b"!")

        def undo_unlink(b, model):
            gone = [n for n, s in model.files.items() if s == {None}]
            open(os.path.join(b, "w1.0", gone[0]), "w").close()

        def block(b, model):
            with open(os.path.join(b, "w1.0", "o"), "r+b") as f:
                f.seek(worker.BLOCK * 3)
                f.write(b"Z" * worker.BLOCK)

        def dup_token(b, model):
            t = next(t for t, s in model.tokens.items() if s == "ok")
            with open(os.path.join(b, "shared", "log"), "ab") as f:
                f.write((t + "\n").encode())

        def lost_token(b, model):
            p = os.path.join(b, "shared", "log")
            t = next(t for t, s in model.tokens.items() if s == "ok")
            lines = open(p).read().split("\n")
            open(p, "w").write("\n".join(x for x in lines if x != t))

        def garbage(b, model):
            with open(os.path.join(b, "shared", "log"), "ab") as f:
                f.write(b"\0\0\0\0\n")

        damaged("an acknowledged create lost", lose_file, "holds None")
        damaged("a file no operation made", extra_file, "no operation made it")
        damaged("a file's content changed", changed_file, "holds")
        damaged("an acknowledged unlink undone", undo_unlink, "holds b''")
        damaged("a block of o overwritten", block, "block 3")
        damaged("a token appended twice", dup_token, "2 times")
        damaged("an acknowledged token lost", lost_token, "missing")
        damaged("a garbage line in the shared log", garbage, "never appended")

        # Unknown outcomes: a failed create may or may not be there; a
        # rename cut off must leave the file under exactly one name; an
        # operation without "done" (worker killed) is unknown too.
        root = os.path.join(tmp, "unknown")
        d = os.path.join(root, "chaos", "w9.0")
        os.makedirs(os.path.join(root, "chaos", "shared"))
        worker.setup(os.path.join(root, "chaos"), "9.0")
        log = os.path.join(tmp, "w9.jsonl")
        recs = [
            {"t": "inv", "n": 1, "op": "create", "name": "c1", "data": "9.0:1:"},
            {"t": "done", "n": 1, "ok": True, "err": None},
            {"t": "inv", "n": 2, "op": "rename", "src": "c1", "dst": "r2"},
            {"t": "done", "n": 2, "ok": False, "err": "EIO"},
            {"t": "inv", "n": 3, "op": "create", "name": "c3", "data": "9.0:3:"},
            {"t": "done", "n": 3, "ok": False, "err": "ENOTCONN"},
            {"t": "inv", "n": 4, "op": "append", "token": "9.0:4"},
        ]
        with open(log, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in recs))
        with open(os.path.join(root, "chaos", "shared", "log"), "w") as f:
            f.write("9.0:4\n")
        open(os.path.join(d, "r2"), "w").write("9.0:1:")
        p = check(root, [("9.0", log)])
        expect("unknown outcomes: renamed, create absent, cut-off append present: passes", not p, p)
        open(os.path.join(d, "c1"), "w").write("9.0:1:")
        p = check(root, [("9.0", log)])
        expect("unknown rename: under both names is found", any("exactly one" in x for x in p), p)
        os.unlink(os.path.join(d, "c1"))
        os.unlink(os.path.join(d, "r2"))
        p = check(root, [("9.0", log)])
        expect("unknown rename: under neither name is found", any("exactly one" in x for x in p), p)
        open(os.path.join(d, "r2"), "w").write("9.0:1:")
        open(os.path.join(d, "c3"), "w").write("9.0:3:")
        p = check(root, [("9.0", log)])
        expect("failed create that took effect: passes", not p, p)
        recs[1:2] = [{"t": "done", "n": 1, "ok": True, "err": None,
                      "violation": "read x: got 'y'"}]
        with open(log, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in recs))
        p = check(root, [("9.0", log)])
        expect("a read violation a worker recorded is reported", any("read x" in x for x in p), p)
    finally:
        shutil.rmtree(tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
