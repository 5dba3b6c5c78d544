#!/usr/bin/env python3
"""posix_locks.py MNT_A MNT_B: fcntl byte-range locks between two nodes'
mounts of one cluster (tests/suites/75-locks). Prints one line per check,
"PASS name" or "FAIL name: why"; exits 1 when any failed."""
import errno
import fcntl
import os
import signal
import struct
import sys
import time

a, b = sys.argv[1], sys.argv[2]
failed = 0


def check(name, ok, why=""):
    global failed
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + why),
          flush=True)
    if not ok:
        failed += 1


def getlk(fd, typ, start, length):
    fl = struct.pack("hhqqi", typ, os.SEEK_SET, start, length, 0)
    r = fcntl.fcntl(fd, fcntl.F_GETLK, fl)
    return struct.unpack("hhqqi", r)


def in_child(fn):
    """Run fn in a child process (locks belong to processes); its exit
    status is fn's return value."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(fn())
        except BaseException:
            os._exit(99)
    return pid


def wait_status(pid, timeout):
    end = time.time() + timeout
    while time.time() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


path_a, path_b = os.path.join(a, "ranges"), os.path.join(b, "ranges")
with open(path_a, "wb") as f:
    f.write(b"x" * 100)

# A holds a write lock on [0, 10) and a read lock on [50, EOF).
fa = os.open(path_a, os.O_RDWR)
fcntl.lockf(fa, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
fcntl.lockf(fa, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 50)


def try_b():
    fb = os.open(path_b, os.O_RDWR)
    res = 0
    # Conflicts: write over A's write range, write over A's read range.
    for (kind, length, start, want) in [
            (fcntl.LOCK_EX, 1, 5, errno.EAGAIN),
            (fcntl.LOCK_EX, 0, 60, errno.EAGAIN),
            (fcntl.LOCK_SH, 1, 5, errno.EAGAIN)]:
        try:
            fcntl.lockf(fb, kind | fcntl.LOCK_NB, length, start)
            res |= 1
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                res |= 2
    # No conflict: reading where A reads, anything in [10, 50).
    try:
        fcntl.lockf(fb, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 70)
        fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 40, 10)
    except OSError:
        res |= 4
    # F_GETLK names A's lock.
    t, _, start, length, pid = getlk(fb, fcntl.F_WRLCK, 3, 1)
    if t != fcntl.F_WRLCK or start != 0 or length != 10 or pid != os.getppid():
        res |= 8
    return res


st = wait_status(in_child(try_b), 30)
check("conflicts-across-nodes", st == 0, "status %r" % st)

# A blocked F_SETLKW on node B is interrupted by a signal: EINTR.


class Alarm(Exception):
    pass


def blocked_interrupted():
    def on_alarm(sig, frm):
        raise Alarm()
    signal.signal(signal.SIGALRM, on_alarm)
    fb = os.open(path_b, os.O_RDWR)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        fcntl.lockf(fb, fcntl.LOCK_EX, 1, 5)
        return 1
    except Alarm:
        return 0


st = wait_status(in_child(blocked_interrupted), 30)
check("setlkw-interrupted", st == 0, "status %r" % st)

# A blocked waiter on B proceeds when A unlocks (split: A unlocks [4, 6)).


def blocked_then_granted():
    fb = os.open(path_b, os.O_RDWR)
    t0 = time.time()
    fcntl.lockf(fb, fcntl.LOCK_EX, 2, 4)
    return 0 if time.time() - t0 >= 0.3 else 1


child = in_child(blocked_then_granted)
time.sleep(0.8)
fcntl.lockf(fa, fcntl.LOCK_UN, 2, 4)
st = wait_status(child, 30)
check("setlkw-granted-after-unlock", st == 0, "status %r" % st)

# A deadlock across nodes: B holds [20, 21) and waits for A's [0, 1);
# A asking for [20, 21) gets EDEADLK.


def holds_then_waits():
    fb = os.open(path_b, os.O_RDWR)
    fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 20)
    fcntl.lockf(fb, fcntl.LOCK_EX, 1, 0)  # blocks until A closes
    return 0


child = in_child(holds_then_waits)
time.sleep(1.0)
try:
    fcntl.lockf(fa, fcntl.LOCK_EX, 1, 20)
    check("edeadlk", False, "granted")
except OSError as e:
    check("edeadlk", e.errno == errno.EDEADLK, os.strerror(e.errno))
# Closing A's descriptor releases every lock of A: B proceeds.
os.close(fa)
st = wait_status(child, 30)
check("close-releases", st == 0, "status %r" % st)
sys.exit(1 if failed else 0)
