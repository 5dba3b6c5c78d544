"""worker: one chaos client on one mount, and the model of what it did.

A worker owns a directory CHAOS/w<ID> (made before the faults start, with
its overwrite file "o" of BLOCKS blocks of BLOCK bytes) and appends to the
shared log CHAOS/shared/LOG_NAME ("log", the one every node appends to,
or "log<NODE>", its node's). Until its deadline it picks at random:

  create   open(O_CREAT|O_EXCL) a new name c<SEQ>, one write of unique data
  append   one write of the token "<ID>:<SEQ>:" plus 0-99 dashes and "\\n" to
           the shared log (O_APPEND): tokens of varied length often cross a
           page boundary, where the kernel once cut a cached write in two
  write    one pwrite of a whole block of "o" with unique data
  rename   a file it created (present for sure) to r<SEQ>
  unlink   a file it created or renamed (present for sure)
  read     a file whose content is known, "o", or the shared log: what it
           reads must be possible given what was acknowledged before

Every operation is logged before it starts ("inv") and when it returns
("done": ok or the errno name), one JSON line each, flushed, so a worker
killed mid-operation leaves an operation with an unknown outcome. A failed
operation also has an unknown outcome: it may have taken effect or not (an
EIO after the operation timeout may still commit). The model (class Model)
turns the log into the set of states each file may be in; the worker uses it
live for its reads, the driver replays the logs for the final check.
"""

import errno
import json
import os
import random
import time

BLOCK = 32
BLOCKS = 16


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else str(e)


class Model:
    """What one worker's files may hold, from its operation log.

    files: name -> set of possible contents (bytes; None = absent), for
    names touched only by operations with known outcomes or independently.
    pairs: (a, b, content) for renames with an unknown outcome: the content
    is under exactly one of the two names. Names in a pair are not used
    again. blocks: the possible values of each block of "o". tokens: the
    worker's appends, token -> "ok" or "unknown".
    """

    def __init__(self, wid):
        self.wid = wid
        self.files = {}
        self.pairs = []
        self.blocks = [{b"." * BLOCK} for _ in range(BLOCKS)]
        self.tokens = {}
        self.counts = {}      # kind -> [ok, failed (unknown outcome)]

    def definite(self, name):
        s = self.files.get(name)
        return s is not None and len(s) == 1

    def present_names(self):
        return [n for n, s in self.files.items()
                if len(s) == 1 and next(iter(s)) is not None]

    def apply(self, op, ok):
        """One operation with its outcome (True: acknowledged)."""
        kind = op["op"]
        c = self.counts.setdefault(kind, [0, 0])
        c[0 if ok else 1] += 1
        if kind == "read":
            return
        if kind == "create":
            data = op["data"].encode()
            self.files[op["name"]] = {data} if ok else {None, b"", data}
        elif kind == "append":
            self.tokens[op["token"]] = "ok" if ok else "unknown"
        elif kind == "write":
            data = op["data"].encode()
            i = op["block"]
            self.blocks[i] = {data} if ok else self.blocks[i] | {data}
        elif kind == "rename":
            src, dst = op["src"], op["dst"]
            content = next(iter(self.files[src]))
            if ok:
                self.files[src] = {None}
                self.files[dst] = {content}
            else:
                del self.files[src]
                self.pairs.append((src, dst, content))
        elif kind == "unlink":
            name = op["name"]
            self.files[name] = {None} if ok else self.files[name] | {None}

    def read_problem(self, op, got):
        """None when GOT (bytes, or None for ENOENT) is possible for read OP
        given every operation acknowledged before it; else a description."""
        what = op["what"]
        if what == "file":
            want = self.files.get(op["name"], set())
            if got in want:
                return None
            return f"read {op['name']}: got {got!r}, possible {sorted(map(repr, want))}"
        if what == "o":
            if got is None or len(got) != BLOCK * BLOCKS:
                return f"read o: got {None if got is None else len(got)} bytes"
            for i in range(BLOCKS):
                b = got[i * BLOCK:(i + 1) * BLOCK]
                if b not in self.blocks[i]:
                    return f"read o: block {i} is {b!r}, possible {sorted(map(repr, self.blocks[i]))}"
            return None
        if what == "log":
            if got is None:
                return "read log: the shared log is missing"
            lines = got.decode(errors="replace").split("\n")
            mine = [ln for ln in lines if ln.startswith(self.wid + ":")]
            seen = set()
            for t in mine:
                if t in seen:
                    return f"read log: token {t} twice"
                seen.add(t)
                if t not in self.tokens:
                    return f"read log: token {t} never appended"
            for t, st in self.tokens.items():
                if st == "ok" and t not in seen:
                    return f"read log: acknowledged token {t} missing"
            return None
        return f"unknown read {what}"


def setup(chaos_dir, wid):
    """Made by the driver before the faults: the worker's dir and "o"."""
    d = os.path.join(chaos_dir, "w" + wid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "o"), "wb") as f:
        f.write(b"." * BLOCK * BLOCKS)
        f.flush()
        os.fsync(f.fileno())


def _read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def run(mount, chaos_rel, wid, seed, deadline, out_path, op_weights=None,
        check_mounted=True, log_name="log"):
    """The worker loop (a process of its own; the driver may SIGKILL it).
    While MOUNT is not a mount (check_mounted: its device is its parent's,
    a node being restarted) nothing is done; tests on the local disk pass
    check_mounted=False."""
    rng = random.Random(seed)
    model = Model(wid)
    base = os.path.join(mount, chaos_rel)
    d = os.path.join(base, "w" + wid)
    log_path = os.path.join(base, "shared", log_name)
    parent_dev = os.stat(os.path.dirname(os.path.abspath(mount))).st_dev
    weights = op_weights or {"create": 25, "append": 25, "write": 20,
                             "rename": 10, "unlink": 8, "read": 12}
    kinds = list(weights)
    seq = 0
    out = open(out_path, "a", buffering=1)

    def log(obj):
        out.write(json.dumps(obj) + "\n")

    while time.time() < deadline:
        try:
            if check_mounted and os.stat(mount).st_dev == parent_dev:
                time.sleep(0.1)  # the node is being restarted
                continue
        except OSError:
            time.sleep(0.1)
            continue
        seq += 1
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        live = model.present_names()
        if kind in ("rename", "unlink") and not live:
            kind = "create"
        op = {"t": "inv", "n": seq, "op": kind}
        if kind == "create":
            op["name"] = f"c{seq}"
            op["data"] = f"{wid}:{seq}:" + "x" * rng.randrange(0, 200)
        elif kind == "append":
            op["token"] = f"{wid}:{seq}:" + "-" * rng.randrange(100)
        elif kind == "write":
            op["block"] = rng.randrange(BLOCKS)
            op["data"] = f"{wid}:{seq}:".ljust(BLOCK, "w")[:BLOCK]
        elif kind == "rename":
            op["src"] = rng.choice(live)
            op["dst"] = f"r{seq}"
        elif kind == "unlink":
            op["name"] = rng.choice(live)
        else:
            r = rng.random()
            readable = [n for n in model.files if model.definite(n)]
            if r < 0.4 and readable:
                op["what"], op["name"] = "file", rng.choice(readable)
            elif r < 0.7:
                op["what"] = "o"
            else:
                op["what"] = "log"
        log(op)
        ok, err, got = True, None, None
        try:
            if kind == "create":
                fd = os.open(os.path.join(d, op["name"]),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, op["data"].encode())
                finally:
                    os.close(fd)
            elif kind == "append":
                fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, (op["token"] + "\n").encode())
                finally:
                    os.close(fd)
            elif kind == "write":
                fd = os.open(os.path.join(d, "o"), os.O_WRONLY)
                try:
                    os.pwrite(fd, op["data"].encode(), op["block"] * BLOCK)
                finally:
                    os.close(fd)
            elif kind == "rename":
                os.rename(os.path.join(d, op["src"]), os.path.join(d, op["dst"]))
            elif kind == "unlink":
                os.unlink(os.path.join(d, op["name"]))
            else:
                path = {"file": lambda: os.path.join(d, op["name"]),
                        "o": lambda: os.path.join(d, "o"),
                        "log": lambda: log_path}[op["what"]]()
                got = _read_file(path)
        except OSError as e:
            ok, err = False, err_name(e)
        done = {"t": "done", "n": seq, "ok": ok, "err": err}
        if kind == "read" and ok:
            problem = model.read_problem(op, got)
            if problem is not None:
                done["violation"] = problem
        log(done)
        model.apply(op, ok)
        if not ok:
            time.sleep(0.05)  # a dead mount does not spin
    out.close()


def replay(path, wid):
    """The model of a worker's log, and the read violations it recorded.
    An operation without its "done" line has an unknown outcome."""
    model = Model(wid)
    violations = []
    pending = None
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a line cut by SIGKILL: the last one
            if rec["t"] == "inv":
                if pending is not None:
                    model.apply(pending, False)
                pending = rec
            else:
                if pending is None or rec["n"] != pending["n"]:
                    raise ValueError(f"{path}: done without its invocation")
                if "violation" in rec:
                    violations.append(f"worker {wid} op {rec['n']}: {rec['violation']}")
                model.apply(pending, rec["ok"])
                pending = None
    if pending is not None:
        model.apply(pending, False)
    return model, violations
