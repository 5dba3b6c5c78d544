"""The workloads of `make bench` (docs/BENCHMARKS.md), each run against a
directory that is either the local disk, a passthrough_ll mount or a raftfs
mount. Every workload is bounded in time: a phase stops at its cap and
reports what it did (a rate over the work done, with "n of N" in its note),
or, for a phase timed as a whole (tar x, git clone), reports no figure and
says it did not finish within the cap. Nothing here is extrapolated.

Each function returns a list of rows: dicts with id, value (None when not
measured), and note (free text, may be empty)."""

import os
import random
import shutil
import subprocess
import threading
import time

FILE_BYTES = 4096


def now():
    return time.monotonic()


def pct(values, p):
    """The p-quantile (0..1) of values, nearest rank; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p * len(s) + 0.5)) - 1))
    return s[k]


def row(rid, value, note=""):
    return {"id": rid, "value": value, "note": note}


def parallel(items, workers, cap_s, op):
    """Run op(item) over items split round-robin among workers threads
    (each syscall releases the GIL), stopping at cap_s seconds. Returns
    (done, elapsed_s, latencies_s, first_error, items done in no
    particular order)."""
    deadline = now() + cap_s
    lat = [[] for _ in range(workers)]
    done_items = [[] for _ in range(workers)]
    errors = []
    stop = threading.Event()

    def work(k):
        for item in items[k::workers]:
            if stop.is_set() or now() > deadline:
                return
            t0 = now()
            try:
                op(item)
            except OSError as e:
                errors.append(f"{item}: {e}")
                stop.set()
                return
            lat[k].append(now() - t0)
            done_items[k].append(item)

    t0 = now()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = now() - t0
    all_lat = [x for part in lat for x in part]
    items = [x for part in done_items for x in part]
    return len(all_lat), elapsed, all_lat, (errors[0] if errors else None), \
        items


def rate_note(done, total, elapsed, cap_s, err):
    parts = []
    if total == 0:
        return "nothing to do: no file was created"
    if done < total:
        parts.append(f"{done:,} of {total:,} in the {cap_s:.{0 if cap_s >= 10 else 1}f} s cap")
    if err:
        parts.append(f"stopped by an error: {err}")
    return "; ".join(parts)


def rate(done, elapsed):
    return done / elapsed if done and elapsed > 0 else None


def small_files(root, n, workers, cap_s, on_created=None):
    """Create n files of 4 KiB (open O_CREAT|O_EXCL, write, close) with
    workers threads in one directory, then stat each, then delete each."""
    d = os.path.join(root, f"small{workers}")
    os.mkdir(d)
    names = [os.path.join(d, f"f{i:06d}") for i in range(n)]
    data = b"r" * FILE_BYTES

    def create(p):
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    pre = on_created() if on_created else None
    done, el, lat, err, made = parallel(names, workers, cap_s, create)
    post = on_created() if on_created else None
    tag = f"small{workers}"
    rows = [row(f"{tag}.create", rate(done, el),
                rate_note(done, n, el, cap_s, err))]
    if workers == 1:
        p50 = pct(lat, 0.5)
        rows.append(row(f"{tag}.latency_p50", p50 * 1000 if p50 else None))
    created = made
    sdone, sel, _, serr, _ = parallel(created, workers, cap_s, os.stat)
    rows.append(row(f"{tag}.stat", rate(sdone, sel),
                    rate_note(sdone, len(created), sel, cap_s, serr)))
    ddone, delapsed, _, derr, _ = parallel(created, workers, cap_s, os.unlink)
    rows.append(row(f"{tag}.delete", rate(ddone, delapsed),
                    rate_note(ddone, len(created), delapsed, cap_s, derr)))
    if ddone == len(created):
        os.rmdir(d)
    extra = {"files": done, "index_before": pre, "index_after": post}
    return rows, extra


def timed_cmd(args, cap_s, cwd=None):
    """Run a command with a time cap. Returns (seconds or None, note)."""
    t0 = now()
    try:
        r = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                           timeout=cap_s)
    except subprocess.TimeoutExpired:
        return None, f"did not finish within the {cap_s:.{0 if cap_s >= 10 else 1}f} s cap"
    el = now() - t0
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        return None, f"exit {r.returncode}: {msg[-1] if msg else ''}"[:200]
    return el, ""


def mkdir_tree(root, cap_s):
    """A 1,000-directory tree (10 dirs, each 9 subdirs, each 10 leaves:
    10 + 90 + 900), made one mkdir at a time, then `rm -rf` of it."""
    top = os.path.join(root, "tree")
    os.mkdir(top)
    paths = []
    for a in range(10):
        pa = os.path.join(top, f"a{a}")
        paths.append(pa)
        for b in range(9):
            pb = os.path.join(pa, f"b{b}")
            paths.append(pb)
            for c in range(10):
                paths.append(os.path.join(pb, f"c{c}"))
    done, el, _, err, _ = parallel(paths, 1, cap_s, os.mkdir)
    rows = [row("mkdir.create", rate(done, el),
                rate_note(done, len(paths), el, cap_s, err))]
    sec, note = timed_cmd(["rm", "-rf", top], cap_s)
    rows.append(row("mkdir.rmrf", done / sec if sec and done else None,
                    note or (f"{done:,} dirs" if done < len(paths) else "")))
    return rows


def tar_x(root, tarball, entries, cap_s, rm_cap_s):
    """`tar xf` of a tarball of /usr/include (within cap_s), then `rm -rf`
    of the tree (within rm_cap_s)."""
    d = os.path.join(root, "tar")
    os.mkdir(d)
    sec, note = timed_cmd(["tar", "xf", tarball, "-C", d], cap_s)
    rows = [row("tar.x", sec, note)]
    sec2, note2 = timed_cmd(["rm", "-rf", d], rm_cap_s)
    rows.append(row("tar.rmrf", sec2 if sec is not None else None,
                    note2 or ("" if sec is not None else "tar x incomplete")))
    return rows


def git_clone(root, repo, cap_s, fsck_cap_s):
    """`git clone` over the git protocol from a local repository
    (file://, within cap_s), then `git fsck --full` of the clone (within
    fsck_cap_s), then rm -rf (untimed, within fsck_cap_s)."""
    d = os.path.join(root, "clone")
    sec, note = timed_cmd(["git", "clone", "-q", "file://" + repo, d], cap_s)
    rows = [row("git.clone", sec, note)]
    if sec is not None:
        sec2, note2 = timed_cmd(["git", "-C", d, "fsck", "--full",
                                 "--no-progress"], fsck_cap_s)
    else:
        sec2, note2 = None, "clone incomplete"
    rows.append(row("git.fsck", sec2, note2))
    timed_cmd(["rm", "-rf", d], fsck_cap_s)
    return rows


def drop_caches():
    """Write back dirty pages and drop the page, dentry and inode caches;
    False when not allowed (not root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def sequential(root, mib, cap_s, read_cap_s):
    """`dd bs=1M count=MIB conv=fsync` (MB/s over the whole dd, fsync
    included; within cap_s), then a cold read with dd after dropping the
    caches (within read_cap_s)."""
    f = os.path.join(root, "seq.dat")
    sec, note = timed_cmd(["dd", "if=/dev/zero", f"of={f}", "bs=1M",
                           f"count={mib}", "conv=fsync"], cap_s)
    mb = mib * 1048576 / 1e6
    rows = [row("seq.write", mb / sec if sec else None, note)]
    if sec is not None:
        cold = drop_caches()
        sec2, note2 = timed_cmd(["dd", f"if={f}", "of=/dev/null", "bs=1M"],
                                read_cap_s)
        if not cold:
            note2 = (note2 + "; " if note2 else "") + "warm: could not drop caches"
        rows.append(row("seq.read", mb / sec2 if sec2 else None, note2))
    else:
        rows.append(row("seq.read", None, "write incomplete"))
    try:
        os.unlink(f)
    except OSError:
        pass
    return rows


def fio_randwrite(root, seconds, size_mib, fsync):
    """fio 4 KiB random writes (psync, 1 job, queue depth 1) over one file of
    size_mib for a fixed time; with fsync: an fsync after every write."""
    rid = "fio.randwrite_fsync" if fsync else "fio.randwrite"
    args = ["fio", "--name=randwrite", f"--directory={root}",
            f"--size={size_mib}M", "--bs=4k", "--rw=randwrite",
            "--ioengine=psync", "--fallocate=none", f"--runtime={seconds}",
            "--time_based", "--output-format=json", "--randrepeat=1",
            f"--fsync={1 if fsync else 0}"]
    try:
        r = subprocess.run(args, capture_output=True, text=True,
                           timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        return [row(rid, None, f"fio did not end within {seconds + 60} s")]
    finally:
        for n in os.listdir(root):
            if n.startswith("randwrite."):
                try:
                    os.unlink(os.path.join(root, n))
                except OSError:
                    pass
    if r.returncode != 0:
        return [row(rid, None, f"fio exit {r.returncode}: {r.stderr.strip()[:150]}")]
    import json
    out = r.stdout[r.stdout.find("{"):]
    try:
        iops = json.loads(out)["jobs"][0]["write"]["iops"]
    except (ValueError, KeyError, IndexError):
        return [row(rid, None, "fio output not understood")]
    return [row(rid, iops)]


def big_dir(root, n, cap_s, lookup_s, seed=16):
    """A directory of n entries: create them (16 threads, empty files),
    `ls -l` of it, then random lookups (stat of random names) for
    lookup_s seconds. Left in place (the caller discards the target)."""
    d = os.path.join(root, "bigdir")
    os.mkdir(d)
    names = [os.path.join(d, f"entry-{i:07d}") for i in range(n)]

    def create(p):
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))

    done, el, _, err, created = parallel(names, 16, cap_s, create)
    rows = [row("bigdir.create", rate(done, el),
                rate_note(done, n, el, cap_s, err))]
    t0 = now()
    try:
        with open(os.devnull, "w") as null:
            r = subprocess.run(["ls", "-l", d], stdout=null,
                               stderr=subprocess.PIPE, timeout=cap_s)
        sec = now() - t0 if r.returncode == 0 else None
        note = "" if sec else f"ls exit {r.returncode}"
    except subprocess.TimeoutExpired:
        sec, note = None, f"did not finish within the {cap_s:.{0 if cap_s >= 10 else 1}f} s cap"
    rows.append(row("bigdir.ls", sec,
                    note or (f"{done:,} entries" if done < n else "")))
    rnd = random.Random(seed)
    count, t0 = 0, now()
    lerr = ""
    while created and now() - t0 < lookup_s:
        try:
            os.stat(created[rnd.randrange(len(created))])
        except OSError as e:
            lerr = str(e)
            break
        count += 1
    rows.append(row("bigdir.lookup", rate(count, now() - t0),
                    lerr or (f"in a directory of {len(created):,}"
                             if done < n else "")))
    return rows, d
