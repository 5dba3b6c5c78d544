"""What `make bench` runs its workloads against: a directory on the local
disk, libfuse's passthrough_ll example (compiled at bench time from the
Debian package's examples, never copied into the repository) mounted over
such a directory, and local 3-node raftfs clusters (`raftfs cluster up`).
Every mount is under the bench's work dir in /tmp and is unmounted by
close(), also after a failure."""

import json
import os
import shutil
import subprocess
import time

EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"
PASSTHROUGH_OPTS = "source={src},cache=auto"
PASSTHROUGH_DESC = ("passthrough_ll -o source=DIR,cache=auto (libfuse 3.14 "
                    "defaults: entry/attr timeout 1 s, no writeback cache, "
                    "no xattr, multithreaded)")


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_for(pred, timeout_s, step_s=0.05):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


def build_passthrough(out_dir):
    """Compile passthrough_ll.c from the libfuse3-dev examples into
    out_dir; returns the binary's path or raises RuntimeError."""
    src = os.path.join(EXAMPLES, "passthrough_ll.c")
    if not os.path.exists(src):
        gz = src + ".gz"
        if not os.path.exists(gz):
            raise RuntimeError(f"{src} not found: apt-get install libfuse3-dev")
        src = os.path.join(out_dir, "passthrough_ll.c")
        with open(src, "wb") as f:
            subprocess.run(["gzip", "-dc", gz], stdout=f, check=True)
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, "passthrough_ll")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"],
                           capture_output=True, text=True, check=True).stdout
    r = subprocess.run(["gcc", "-O2", "-Wall", "-I", EXAMPLES, src, "-o",
                        binary] + flags.split() + ["-lpthread"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("passthrough_ll did not compile: " +
                           r.stderr.strip()[-300:])
    return binary


class Local:
    name = "local"

    def __init__(self, work):
        self.root = os.path.join(work, "local")
        os.makedirs(self.root)
        self.desc = f"a directory on the local disk ({self.root})"

    def dir(self):
        return self.root

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Passthrough:
    name = "passthrough"

    def __init__(self, work, binary):
        self.src = os.path.join(work, "pt-src")
        self.mnt = os.path.join(work, "pt-mnt")
        os.makedirs(self.src)
        os.makedirs(self.mnt)
        opts = PASSTHROUGH_OPTS.format(src=self.src)
        self.desc = PASSTHROUGH_DESC
        r = subprocess.run([binary, "-o", opts, self.mnt],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or not wait_for(lambda: is_mounted(self.mnt), 10):
            raise RuntimeError("passthrough_ll did not mount: " +
                               (r.stderr or "").strip()[-200:])

    def dir(self):
        return self.mnt

    def close(self):
        subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                       capture_output=True)
        shutil.rmtree(self.src, ignore_errors=True)


class Cluster:
    """A local 3-node raftfs cluster on 127.0.0.N:port."""

    def __init__(self, raftfs, work, name, port, opts=None):
        self.raftfs = raftfs
        self.d = os.path.join(work, name)
        self.port = port
        args = [raftfs, "cluster", "up", "--dir", self.d, "--port", str(port)]
        if opts:
            args += ["-o", opts]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            self.close()
            raise RuntimeError(f"cluster up ({' '.join(args[2:])}) failed: " +
                               (r.stderr or r.stdout).strip()[-300:])
        if not wait_for(lambda: self.leader() is not None, 30, 0.1):
            self.close()
            raise RuntimeError("cluster up: no leader within 30 s")

    def status(self, node):
        r = subprocess.run([self.raftfs, "status", "--data",
                            f"{self.d}/node{node}", "--json"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def leader(self, ask=(1, 2, 3)):
        for n in ask:
            s = self.status(n)
            if s and s.get("leader"):
                return int(s["leader"])
        return None

    def member(self, ask, node, key):
        s = self.status(ask)
        if not s:
            return None
        for m in s.get("members", []):
            if m.get("id") == node:
                return m.get(key)
        return None

    def applied(self, node):
        """The node's own applied index, as it reports it."""
        return self.member(node, node, "applied")

    def mnt(self, node):
        return f"{self.d}/mnt/{node}"

    def pid(self, node):
        try:
            with open(f"{self.d}/node{node}/raftfs.pid") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def rss_kb(self, node):
        """(VmRSS, VmHWM) in KiB of the node's process, or (None, None)."""
        pid = self.pid(node)
        vals = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "VmHWM"):
                        vals[k] = int(v.split()[0])
        except (OSError, ValueError, TypeError):
            pass
        return vals.get("VmRSS"), vals.get("VmHWM")

    def kill9(self, node):
        pid = self.pid(node)
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10)

    def node_cmd(self, verb, node, timeout=120):
        r = subprocess.run([self.raftfs, "cluster", verb, "--dir", self.d,
                            "--node", str(node)], capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"cluster {verb} --node {node} exit "
                               f"{r.returncode}: " +
                               (r.stderr or r.stdout).strip()[-400:])

    def close(self):
        try:
            subprocess.run([self.raftfs, "cluster", "down", "--dir", self.d],
                           capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            pass
        for n in range(1, 6):
            pid = self.pid(n)
            if pid and os.path.exists(f"/proc/{pid}"):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            m = self.mnt(n)
            if os.path.isdir(m) and is_mounted(m):
                subprocess.run(["fusermount3", "-u", "-z", m],
                               capture_output=True)
        shutil.rmtree(self.d, ignore_errors=True)


class ClusterMount:
    """One node's mount of a cluster as a workload target."""

    def __init__(self, name, cluster, node, desc):
        self.name = name
        self.cluster = cluster
        self.node = node
        self.desc = desc
        self.root = os.path.join(cluster.mnt(node), "bench")
        os.mkdir(self.root)

    def dir(self):
        return self.root

    def close(self):
        self.cluster.close()


def relaxed_supported(raftfs):
    """Whether `raftfs serve` accepts -o cache=relaxed: its argument parser
    rejects an unknown or bad -o option before it asks for the required
    arguments, so an accepted option leaves only "... are required"."""
    r = subprocess.run([raftfs, "serve", "-o", "cache=relaxed"],
                       capture_output=True, text=True, timeout=30)
    msg = (r.stderr + r.stdout).lower()
    return "unknown option" not in msg and "are required" in msg
