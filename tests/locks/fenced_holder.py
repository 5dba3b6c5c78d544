#!/usr/bin/env python3
"""fenced_holder.py FILE READY GO RESULT: take flock LOCK_EX on FILE, write
"holder-1", create READY; once GO exists, write "holder-2" through the same
descriptor and write to RESULT "ok" or the errno name it got
(tests/suites/75-locks: a holder whose node was paused past its lease
must not be able to write). Gives up after 120 s."""
import errno
import fcntl
import os
import sys
import time

path, ready, go, result = sys.argv[1:5]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b"holder-1\n", 0)
open(ready, "w").close()
end = time.time() + 120
while not os.path.exists(go) and time.time() < end:
    time.sleep(0.05)
try:
    os.pwrite(fd, b"holder-2\n", 0)
    out = "ok"
except OSError as e:
    out = errno.errorcode.get(e.errno, str(e.errno))
with open(result, "w") as f:
    f.write(out + "\n")
