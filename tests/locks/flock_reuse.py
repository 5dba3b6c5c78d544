#!/usr/bin/env python3
"""flock_reuse.py MNT1 MNT2 N: N times, on MNT1, open the file, flock it
exclusively and close it, then at once open it again and flock it (the
kernel's open file, whose address was the old flock lock owner, is often
the same memory again while the first close's FUSE_RELEASE is still on its
way); then, while the second open holds the lock, a non-blocking flock
from MNT2 must fail. Exit 1 with the count when it ever succeeds
(tests/suites/75-locks; docs/LOCKS.md, "Owners")."""
import fcntl
import os
import sys
import time

m1, m2, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p1, p2 = os.path.join(m1, "reuse"), os.path.join(m2, "reuse")
open(p1, "a").close()
bad = 0
for _ in range(n):
    a = os.open(p1, os.O_RDWR)
    fcntl.flock(a, fcntl.LOCK_EX)
    os.close(a)
    b = os.open(p1, os.O_RDWR)
    fcntl.flock(b, fcntl.LOCK_EX)
    time.sleep(0.03)  # a late release of the first open lands by now
    c = os.open(p2, os.O_RDWR)
    try:
        fcntl.flock(c, fcntl.LOCK_EX | fcntl.LOCK_NB)
        bad += 1
        fcntl.flock(c, fcntl.LOCK_UN)
    except BlockingIOError:
        pass
    os.close(c)
    fcntl.flock(b, fcntl.LOCK_UN)
    os.close(b)
print(f"{bad} of {n}: the other node got the lock while it was held")
sys.exit(1 if bad else 0)
