#!/usr/bin/env python3
"""record: run concurrent clients on mounts and record their history.

    record.py --out HISTORY [--duration S] [--workers N] [--registers N]
              [--logs N] [--dir NAME] [--seed N] [--append-own-node] MOUNT...

Worker w uses mount number w mod (number of mounts) and, until the duration
is over, picks at random: a register write (the value written to a fresh
temporary file, then rename() over the key), a register read (open and
read the whole file; no file reads as null), a log append (one write() of a
unique token and a newline through O_APPEND) or a log read (the whole file,
one token per line). Values and tokens are "WORKER.SEQ", unique.

An operation's invocation and completion times are CLOCK_MONOTONIC
nanoseconds (one clock on one machine); an error (EIO after the operation
timeout, ENOTCONN from a killed node's mount) records the operation as
"fail", a worker still blocked when the grace time is over is killed and its
operation recorded as "timeout". Both have an unknown outcome. Steps that
cannot have an effect on the key (writing the temporary file, opening the
log) are not operations: when one fails nothing is recorded.

Appends to every log key come from every mount (an append is applied at
the file's size then, and an O_APPEND handle is direct I/O so the kernel
does not cut a write in two: docs/FUSE.md, gap 5), or with
--append-own-node to key k through mount k mod mounts only. Reads of every
key and register writes come from every mount.

Exit status 0 once the history is written, 2 on a usage error or when the
keys already exist in the directory (a history needs fresh keys).
"""

import argparse
import errno
import json
import os
import random
import signal
import sys
import tempfile
import time

import history

FAIL_PAUSE_S = 0.05  # after a failed operation, so a dead mount does not spin


def _err(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else str(e)


class NotMounted(Exception):
    """The mount point is not a live mount (a node being restarted)."""


class Worker:
    def __init__(self, w, mount_index, mount, args, deadline_ns, out):
        self.w = w
        self.node = mount_index + 1
        self.base = os.path.join(mount, args.dir)
        self.parent_dev = os.stat(
            os.path.dirname(os.path.abspath(mount))).st_dev
        self.fd = None  # the key directory, opened through the mount
        self.args = args
        self.deadline_ns = deadline_ns
        self.out = out
        self.seq = 0
        self.rng = random.Random(args.seed * 1009 + w)
        nm = len(args.mounts)
        self.appendable = [k for k in range(args.logs)
                           if not args.append_own_node or k % nm == mount_index]

    def event(self, **fields):
        self.out.write(json.dumps(fields, separators=(",", ":")) + "\n")

    def invoke(self, key, model, op, arg=None):
        self.event(e="i", w=self.w, s=self.seq, node=self.node, key=key,
                   model=model, op=op, arg=arg, t=time.monotonic_ns())

    def complete(self, outcome, value=None, error=None):
        self.event(e="c", w=self.w, s=self.seq, t=time.monotonic_ns(),
                   outcome=outcome, value=value, error=error)

    def dir_fd(self):
        """The key directory, opened once per life of the mount.

        Between clearing a killed node's dead mount and mounting again, the
        mount point is a bare directory of the local disk: a path through it
        would reach that directory, not the filesystem. Every operation goes
        through this descriptor instead, checked to be on another device
        than the mount point's parent; a dead mount makes it fail with
        ENOTCONN and it is opened again (drop_dir) after any error.
        """
        if self.fd is None:
            try:
                fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as e:
                raise NotMounted(_err(e)) from None
            try:
                dev = os.fstat(fd).st_dev
            except OSError as e:
                os.close(fd)
                raise NotMounted(_err(e)) from None
            if dev == self.parent_dev:
                os.close(fd)
                raise NotMounted("not mounted")
            self.fd = fd
        return self.fd

    def drop_dir(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def read_all(self, key):
        """The file's bytes, or None when it does not exist."""
        try:
            fd = os.open(key, os.O_RDONLY, dir_fd=self.dir_fd())
        except FileNotFoundError:
            return None
        try:
            chunks = []
            while True:
                b = os.read(fd, 1 << 16)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        finally:
            os.close(fd)

    def register_write(self, key):
        value = f"{self.w}.{self.seq}"
        tmp = f".{key}.{value}.tmp"
        dfd = self.dir_fd()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                         dir_fd=dfd)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError:
            return False  # never renamed: no operation on the key
        self.invoke(key, "register", "write", value)
        try:
            os.rename(tmp, key, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            self.complete("fail", error=_err(e))
            return False
        self.complete("ok")
        return True

    def register_read(self, key):
        self.dir_fd()
        self.invoke(key, "register", "read")
        try:
            data = self.read_all(key)
        except OSError as e:
            self.complete("fail", error=_err(e))
            return False
        if data is None:
            self.complete("ok", value=None, error="ENOENT")
            return True
        self.complete("ok", value=data.decode("utf-8", "replace"))
        return True

    def log_append(self, key):
        token = f"{self.w}.{self.seq}"
        data = (token + "\n").encode()
        try:
            fd = os.open(key, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644,
                         dir_fd=self.dir_fd())
        except OSError:
            return False  # no write: no operation on the key
        try:
            self.invoke(key, "log", "append", token)
            try:
                n = os.write(fd, data)
            except OSError as e:
                self.complete("fail", error=_err(e))
                return False
            if n != len(data):
                self.complete("fail", error=f"short write {n}")
                return False
            self.complete("ok")
            return True
        finally:
            try:
                os.close(fd)
            except OSError:
                pass

    def log_read(self, key):
        self.dir_fd()
        self.invoke(key, "log", "read")
        try:
            data = self.read_all(key)
        except OSError as e:
            self.complete("fail", error=_err(e))
            return False
        if data is None:
            self.complete("ok", value=[], error="ENOENT")
            return True
        text = data.decode("utf-8", "replace")
        tokens = text.split("\n")
        if tokens[-1] == "":
            tokens.pop()
        else:
            tokens[-1] = "<torn>" + tokens[-1]  # no token looks like this
        self.complete("ok", value=tokens)
        return True

    def one_op(self, x):
        args = self.args
        if x < 0.5 or not args.logs:
            key = f"r{self.rng.randrange(args.registers)}"
            if x < 0.25:
                return self.register_write(key)
            return self.register_read(key)
        if x < 0.75 and self.appendable:
            return self.log_append(f"l{self.rng.choice(self.appendable)}")
        return self.log_read(f"l{self.rng.randrange(args.logs)}")

    def run(self):
        while time.monotonic_ns() < self.deadline_ns:
            self.seq += 1
            try:
                ok = self.one_op(self.rng.random())
            except NotMounted:
                ok = False
            if not ok:
                self.drop_dir()
                time.sleep(FAIL_PAUSE_S)


def merge(paths):
    """History records (dicts) from the workers' event files: an invocation
    without a completion is a timeout."""
    ops = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed worker
                k = (ev["w"], ev["s"])
                if ev["e"] == "i":
                    ops[k] = dict(process=ev["w"], node=ev["node"],
                                  key=ev["key"], model=ev["model"],
                                  op=ev["op"], arg=ev["arg"],
                                  invoke=ev["t"], complete=None,
                                  outcome="timeout", value=None, error=None)
                elif k in ops:
                    ops[k].update(complete=ev["t"], outcome=ev["outcome"],
                                  value=ev["value"], error=ev["error"])
    out = sorted(ops.values(), key=lambda o: (o["invoke"], o["process"]))
    for i, o in enumerate(out):
        o["id"] = i
    return out


def prepare_dir(args):
    """Create the directory through the first mount; refuse used keys."""
    base = os.path.join(args.mounts[0], args.dir)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.makedirs(base, exist_ok=True)
            break
        except OSError as e:
            if time.monotonic() > deadline:
                raise SystemExit(f"record: cannot create {base}: {e}")
            time.sleep(0.2)
    keys = [f"r{i}" for i in range(args.registers)] + \
        [f"l{i}" for i in range(args.logs)]
    used = [k for k in keys if os.path.lexists(os.path.join(base, k))]
    if used:
        print(f"record: {base} already holds {', '.join(used)}; a history "
              "needs fresh keys (use another --dir)", file=sys.stderr)
        sys.exit(2)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run concurrent register and log clients over mounts "
        "and record a history for lincheck.py.")
    ap.add_argument("mounts", nargs="+", metavar="MOUNT",
                    help="one mount point per node")
    ap.add_argument("--out", required=True, help="the history file")
    ap.add_argument("--duration", type=float, default=8.0, metavar="S")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--registers", type=int, default=2)
    ap.add_argument("--logs", type=int, default=2)
    ap.add_argument("--dir", default="lin",
                    help="directory in the mounts holding the keys")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--grace", type=float, default=15.0, metavar="S",
                    help="after the duration, how long to wait for blocked "
                    "workers before killing them (default 15)")
    ap.add_argument("--append-own-node", action="store_true",
                    help="append to log k through mount k mod mounts only "
                    "(default: to every log from every mount)")
    args = ap.parse_args(argv)
    if args.workers < 1 or args.registers < 1 or args.logs < 0 or \
            args.duration <= 0:
        ap.error("need at least one worker and one register, duration > 0")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    prepare_dir(args)
    tmpdir = tempfile.mkdtemp(prefix="lin-record-")
    paths = []
    pids = []
    deadline_ns = time.monotonic_ns() + int(args.duration * 1e9)
    for w in range(args.workers):
        m = w % len(args.mounts)
        path = os.path.join(tmpdir, f"w{w}.jsonl")
        paths.append(path)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                with open(path, "w", buffering=1, encoding="utf-8") as out:
                    Worker(w, m, args.mounts[m], args, deadline_ns,
                           out).run()
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            os._exit(code)
        pids.append(pid)
    stop_ns = deadline_ns + int(args.grace * 1e9)
    left = set(pids)
    killed = 0
    while left:
        for pid in list(left):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                left.discard(pid)
        if left and time.monotonic_ns() > stop_ns:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            for pid in left:
                os.waitpid(pid, 0)
            left.clear()
        time.sleep(0.05)
    ops = merge(paths)
    for p in paths:
        os.unlink(p)
    os.rmdir(tmpdir)
    history.dump(ops, args.out)
    counts = {}
    for o in ops:
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"record: {len(ops)} operations ({summary}) by {args.workers} "
          f"workers on {len(args.mounts)} mounts in {args.duration:g} s, "
          f"seed {args.seed}{f', {killed} workers killed' if killed else ''}"
          f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
