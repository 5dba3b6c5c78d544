#!/usr/bin/env python3
"""dir_flock.py MNT1 MNT2: flock(2) on a directory of the mount goes with
the directory's last close (tests/suites/75-locks; docs/LOCKS.md,
"Locks on directories"). A directory opened and locked on MNT1 excludes
another open of it on MNT1; a dup closed leaves it locked; the last close,
and the end of a holder killed -9 with its child, release it: then MNT1
and MNT2 both lock it at once. `flock DIR true` from the shell in a loop,
alternating nodes, never waits. Whether MNT2 was excluded while MNT1 held
the lock is printed: the kernel (6.x) sends no lock request for a
directory to a FUSE file system, so such locks are the node's own.
Prints one line per failure, exits 1 on any."""
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time

DEADLINE_S = 20.0  # a release's commit on a loaded 2-core machine
failures = []


def check(name, ok):
    if not ok:
        failures.append(name)
        print(f"FAIL {name}")


def opendir(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def try_lock(path):
    """Whether a new open of path takes LOCK_EX|LOCK_NB (then closes)."""
    fd = opendir(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
            raise
        return False
    finally:
        os.close(fd)
    return True


def lockable_within(path, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if try_lock(path):
            return True
        time.sleep(0.05)
    return False


def main(argv):
    m1, m2 = argv[1], argv[2]
    d1, d2 = os.path.join(m1, "lockdir"), os.path.join(m2, "lockdir")
    os.mkdir(d1)

    fd = opendir(d1)
    fcntl.flock(fd, fcntl.LOCK_EX)
    check("a directory locked excludes another open on its node",
          not try_lock(d1))
    across = not try_lock(d2)
    dup = os.dup(fd)
    os.close(fd)
    check("closing a dup keeps the lock", not try_lock(d1))
    os.close(dup)
    check("the last close releases it (node 1)", lockable_within(d1, DEADLINE_S))
    check("the last close releases it (node 2)", lockable_within(d2, DEADLINE_S))

    # Locked, unlocked and locked again through one descriptor, closed.
    fd = opendir(d1)
    fcntl.flock(fd, fcntl.LOCK_SH)
    fcntl.flock(fd, fcntl.LOCK_UN)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.close(fd)
    check("a relock released at close", lockable_within(d2, DEADLINE_S) and
          lockable_within(d1, DEADLINE_S))

    # A holder killed -9: flock(1) passes its descriptor to its child
    # (`sleep`), which keeps the lock until it ends too: kill both.
    holder = subprocess.Popen(["flock", "-x", d1, "sleep", "600"],
                              start_new_session=True)
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end and try_lock(d1):
        time.sleep(0.05)
    check("flock(1) holds the directory", not try_lock(d1))
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    check("a holder killed -9 (with its child) releases at exit",
          lockable_within(d1, DEADLINE_S) and lockable_within(d2, DEADLINE_S))

    # flock(1) on the directory from both nodes in turn: nothing is left
    # locked by an earlier round, so none waits.
    slow = 0
    for i in range(20):
        d = d1 if i % 2 == 0 else d2
        t0 = time.monotonic()
        rc = subprocess.run(["flock", "-x", "-w", str(int(DEADLINE_S)), d,
                             "true"]).returncode
        slow += rc != 0 or time.monotonic() - t0 > DEADLINE_S / 2
    check(f"20 alternating flock(1) rounds ({slow} waited)", slow == 0)
    os.rmdir(d1)
    print(f"directory flock: {len(failures)} failures; node 2 excluded "
          f"while node 1 held it: {'yes' if across else 'no (node-local)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
