#!/usr/bin/env python3
"""chaos: faults on a real raftfs cluster while clients on every mount work.

    chaos.py --dir DIR --port P [--nodes N] [--duration S] [--seed N]
             [--workers-per-node K] [--faults KIND,...] [--raftfs BIN]
             [--lazyfs BIN]

1. `raftfs cluster up` of N nodes (127.0.0.1..N, port P, operation timeout
   3 s) in DIR/c; each worker's directory made on node 1's mount.
2. K workers per mount (tests/chaos/worker.py: creates, appends to one
   shared log from every node, block overwrites, renames, unlinks, reads,
   each logged with its outcome) and the linearizability recorder
   (tests/linearizability/record.py, registers and logs) over all mounts.
3. Until the duration is over, faults on a seeded random schedule, one at a
   time, each held 1.5-4 s and healed, 0.3-1.5 s apart:
     kill       kill -9 of a node (the leader one time in three), restarted
                with `raftfs cluster start`
     powerloss  kill -9 of a node and a power loss of its data dir (every
                data dir is a lazyfs mount, tests/lazyfs: what the node did
                not sync is dropped, the newest unsynced write torn one time
                in two), lazyfs mounted again, the node restarted
     pause      SIGSTOP of a node (the leader one time in three), SIGCONT
     partition  nftables: a random minority cut off from the majority
     isolate    nftables: the leader cut off from everyone
     oneway     nftables: packets from one node to another dropped, not back
     flap       nftables: one node cut off and reconnected every 0.2-0.6 s
     transfer   `raftfs leader transfer` to a random other node
     replace    `member remove` of a member (the leader one time in three)
                and `cluster add` of a new node (ids are not reused, so at
                most 7 - N times), which gets workers of its own
   nftables rules live in a table of their own (raftfs_chaos_P) and match
   only TCP port P between the cluster's addresses; the table is deleted at
   the end and on any exit.
4. Heal everything, let the workers finish (killed after a grace time: their
   last operation is then unknown), wait until `fsck --cluster` finds every
   replica identical, then check through node 1's mount: every acknowledged
   create, rename, unlink and block write is there, every file holds one of
   the contents its operations allow (unknown outcomes: either), no file is
   there that no operation made, every acknowledged append is in the shared
   log exactly once and any other token at most once, no line is garbage;
   the reads the workers checked as they went; the recorder's history is
   linearizable (lincheck.py). Then `cluster down` and `fsck --data` of every
   node must be clean.

Prints the seed, the count of each fault, the operations done and checked;
exit 0 when nothing was lost, duplicated, diverged or non-linearizable, 1
otherwise, 2 on a usage error.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import worker  # noqa: E402

LIN = os.path.join(os.path.dirname(HERE), "linearizability")
OP_TIMEOUT_S = 3
FAULTS = ["kill", "powerloss", "pause", "partition", "isolate", "oneway", "flap",
          "transfer", "replace"]
FAULT_WEIGHTS = {"kill": 3, "powerloss": 2, "pause": 2, "partition": 3,
                 "isolate": 2, "oneway": 2, "flap": 1, "transfer": 2,
                 "replace": 1}


def now():
    return time.monotonic()


def kill_group(p):
    """SIGKILL a recorder and its workers (a session of their own)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        p.kill()


class Cluster:
    def __init__(self, args):
        self.raftfs = args.raftfs
        self.dir = os.path.join(args.dir, "c")
        self.n = args.nodes
        self.port = args.port
        self.table = f"raftfs_chaos_{args.port}"
        self.nft_made = False
        self.stopped = set()   # SIGSTOPped node ids
        # powerloss: every data dir DIR/c/nodeI is a lazyfs mount over
        # DIR/backing/nodeI (None: plain directories).
        self.lazyfs = args.lazyfs if "powerloss" in args.kinds else None
        self.backing = os.path.join(args.dir, "backing")
        self.lazy = {}         # node id -> its lazyfs process
        self.lazy_log = os.path.join(args.dir, "logs", "lazyfs.log")
        self.members = list(range(1, self.n + 1))  # ids of the configuration
        self.ever = list(self.members)             # every node started
        self.t0 = now()

    def say(self, msg):
        print(f"[{now() - self.t0:7.1f} s] {msg}", flush=True)

    def mount(self, i):
        return os.path.join(self.dir, "mnt", str(i))

    def data(self, i):
        return os.path.join(self.dir, f"node{i}")

    def pid(self, i):
        try:
            with open(os.path.join(self.data(i), "raftfs.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def run(self, *argv, timeout=90):
        try:
            p = subprocess.run([self.raftfs, *argv], capture_output=True,
                               text=True, timeout=timeout)
            return p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {timeout} s"

    # --- lazyfs (powerloss) ------------------------------------------

    def lazy_mount(self, i):
        """Mount lazyfs on node i's data dir (made if need be); True when
        mounted, or when the run does not use lazyfs."""
        if self.lazyfs is None:
            return True
        b, d = os.path.join(self.backing, f"node{i}"), self.data(i)
        if i in self.lazy and self.lazy[i].poll() is None and os.path.ismount(d):
            return True  # mounted before (an add that did not take)
        os.makedirs(b, mode=0o700, exist_ok=True)
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(self.lazy_log, "ab") as log:
            p = subprocess.Popen([self.lazyfs, b, d], stdout=log, stderr=log)
        self.lazy[i] = p
        end = now() + 5
        while now() < end:
            if os.path.ismount(d) and os.path.exists(os.path.join(d, ".lazyfs")):
                return True
            if p.poll() is not None:
                break
            time.sleep(0.02)
        self.say(f"lazyfs did not mount on {d} (see {self.lazy_log})")
        return False

    def lazy_reap(self, i, timeout=10):
        """Wait for node i's lazyfs to exit (killed after timeout) and clear
        a dead mount."""
        p = self.lazy.pop(i, None)
        if p is not None:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.path.ismount(self.data(i)):
            subprocess.run(["fusermount3", "-u", self.data(i)], capture_output=True)
        elif not os.path.exists(self.data(i)):  # a dead mount (ENOTCONN)
            subprocess.run(["fusermount3", "-uz", self.data(i)], capture_output=True)

    def power_loss(self, i, tear_seed):
        """Node i is dead: drop what its data dir did not sync (tear the
        newest unsynced write when tear_seed is not None), mount again.
        The daemon's own log is unsynced and lost too: its tail is kept
        in logs/ first."""
        try:
            with open(os.path.join(self.data(i), "raftfs.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - (256 << 10)))
                tail = f.read()
            with open(os.path.join(os.path.dirname(self.lazy_log),
                                   f"node{i}.before-powerloss.log"), "ab") as f:
                f.write(tail + b"\n---- power loss ----\n")
        except OSError:
            pass
        cmd = "crash" if tear_seed is None else f"tear {tear_seed}"
        with open(os.path.join(self.data(i), ".lazyfs"), "w") as f:
            f.write(cmd + "\n")
        self.lazy_reap(i)
        return self.lazy_mount(i)

    def lazy_umount_all(self):
        """A clean unmount of every lazyfs (everything written first)."""
        for i in list(self.lazy):
            subprocess.run(["fusermount3", "-u", self.data(i)], capture_output=True)
            self.lazy_reap(i, timeout=60)

    def conf_nodes(self):
        """The node count of DIR/c/cluster.conf (ids 1..count are taken)."""
        with open(os.path.join(self.dir, "cluster.conf")) as f:
            for line in f:
                if line.startswith("nodes="):
                    return int(line.split("=", 1)[1])
        raise RuntimeError("cluster.conf without nodes=")

    def wait_mounted(self, i, timeout):
        """Node i's mount answers a stat (True) within timeout seconds."""
        end = now() + timeout
        while now() < end:
            try:
                os.stat(os.path.join(self.mount(i), "chaos"))
                return True
            except OSError:
                time.sleep(1)
        return False

    def up(self):
        for i in range(1, self.n + 1):
            if not self.lazy_mount(i):
                return False
        rc, out = self.run("cluster", "up", "--dir", self.dir, "--nodes",
                           str(self.n), "--port", str(self.port), "-o",
                           f"timeout={OP_TIMEOUT_S}", timeout=120)
        if rc != 0:
            print(out)
        return rc == 0

    def leader(self):
        """The leader named by the first running, unpaused node that knows."""
        for i in self.members:
            if i in self.stopped or self.pid(i) is None:
                continue
            rc, out = self.run("status", "--data", self.data(i), "--json",
                               timeout=5)
            if rc == 0:
                try:
                    lead = json.loads(out)["leader"]
                except (ValueError, KeyError):
                    continue
                if lead:
                    return int(lead)
        return None

    def start(self, i):
        rc, out = self.run("cluster", "start", "--dir", self.dir, "--node",
                           str(i), timeout=90)
        if rc != 0:
            self.say(f"cluster start of node {i} failed: {out.strip()}")
        return rc == 0

    # --- nftables -------------------------------------------------------

    def nft(self, script):
        p = subprocess.run(["nft", "-f", "-"], input=script, text=True,
                           capture_output=True, timeout=10)
        if p.returncode != 0:
            raise RuntimeError(f"nft: {p.stderr.strip()}")

    def cut(self, pairs):
        """Drop TCP port P packets from a to b for each (a, b) in pairs."""
        lines = []
        if not self.nft_made:
            lines.append(f"add table inet {self.table}")
            lines.append(f"add chain inet {self.table} input "
                         "{ type filter hook input priority -10 ; policy accept ; }")
            self.nft_made = True
        lines.append(f"flush chain inet {self.table} input")
        for a, b in pairs:
            for dir_ in ("sport", "dport"):
                lines.append(f"add rule inet {self.table} input ip saddr 127.0.0.{a} "
                             f"ip daddr 127.0.0.{b} tcp {dir_} {self.port} drop")
        self.nft("\n".join(lines) + "\n")

    def heal_net(self):
        if self.nft_made:
            subprocess.run(["nft", "delete", "table", "inet", self.table],
                           capture_output=True, timeout=10)
            self.nft_made = False

    def heal_all(self):
        self.heal_net()
        for i in list(self.stopped):
            pid = self.pid(i)
            if pid:
                os.kill(pid, signal.SIGCONT)
            self.stopped.discard(i)
        for i in self.members:
            if self.lazyfs is not None and not os.path.ismount(self.data(i)):
                self.say(f"node {i}: lazyfs not mounted, mounting it")
                self.lazy_reap(i)
                self.lazy_mount(i)
            if self.pid(i) is None:
                self.say(f"node {i} is not running: cluster start")
                self.start(i)

    def down(self):
        self.heal_all_quiet()
        self.run("cluster", "down", "--dir", self.dir, timeout=120)

    def heal_all_quiet(self):
        try:
            self.heal_net()
            for i in list(self.stopped):
                pid = self.pid(i)
                if pid:
                    os.kill(pid, signal.SIGCONT)
            self.stopped.clear()
        except Exception:  # cleanup goes on whatever happens
            pass


class Faults:
    def __init__(self, cluster, rng, kinds):
        self.c = cluster
        self.rng = rng
        self.kinds = kinds
        self.counts = {k: 0 for k in kinds}
        self.failed = {k: 0 for k in kinds}
        self.new_node = None   # called with the id of a node added

    def pick_node(self, prefer_leader=True):
        if prefer_leader and self.rng.random() < 1 / 3:
            lead = self.c.leader()
            if lead:
                return lead
        return self.rng.choice(self.c.members)

    def others(self, i):
        return [j for j in self.c.members if j != i]

    def one(self, hold_s):
        kind = self.rng.choices(self.kinds, [FAULT_WEIGHTS[k] for k in self.kinds])[0]
        c = self.c
        ok = True
        if kind == "kill":
            i = self.pick_node()
            pid = c.pid(i)
            if pid is None:
                ok = False
            else:
                c.say(f"kill -9 node {i} (leader {c.leader()}), restart in {hold_s:.1f} s")
                os.kill(pid, signal.SIGKILL)
                time.sleep(hold_s)
                ok = c.start(i)
        elif kind == "powerloss":
            i = self.pick_node()
            pid = c.pid(i)
            if pid is None:
                ok = False
            else:
                tear = self.rng.randrange(1 << 30) if self.rng.random() < 0.5 else None
                c.say(f"power loss of node {i} (leader {c.leader()})"
                      f"{'' if tear is None else f', newest write torn (seed {tear})'}"
                      f", restart in {hold_s:.1f} s")
                os.kill(pid, signal.SIGKILL)
                for _ in range(100):  # its files closed, its flock gone
                    try:
                        os.kill(pid, 0)
                    except OSError:
                        break
                    time.sleep(0.02)
                ok = c.power_loss(i, tear)
                time.sleep(hold_s)
                ok = c.start(i) and ok
        elif kind == "pause":
            i = self.pick_node()
            pid = c.pid(i)
            if pid is None:
                ok = False
            else:
                c.say(f"SIGSTOP node {i} for {hold_s:.1f} s")
                os.kill(pid, signal.SIGSTOP)
                c.stopped.add(i)
                time.sleep(hold_s)
                os.kill(pid, signal.SIGCONT)
                c.stopped.discard(i)
        elif kind in ("partition", "isolate") and len(c.members) < 3:
            ok = False  # no minority to cut off
        elif kind in ("partition", "isolate"):
            if kind == "isolate":
                lead = c.leader()
                minority = [lead] if lead else [self.rng.choice(c.members)]
            else:
                size = self.rng.randrange(1, (len(c.members) - 1) // 2 + 1)
                minority = self.rng.sample(c.members, size)
            majority = [j for j in c.members if j not in minority]
            c.say(f"{kind}: {sorted(minority)} | {majority} for {hold_s:.1f} s")
            pairs = [(a, b) for a in minority for b in majority]
            c.cut(pairs + [(b, a) for a, b in pairs])
            time.sleep(hold_s)
            c.heal_net()
        elif kind == "oneway":
            a = self.pick_node()
            b = self.rng.choice(self.others(a))
            c.say(f"one-way cut {a} -> {b} for {hold_s:.1f} s")
            c.cut([(a, b)])
            time.sleep(hold_s)
            c.heal_net()
        elif kind == "flap":
            i = self.pick_node()
            pairs = [(i, j) for j in self.others(i)]
            pairs += [(j, i) for j in self.others(i)]
            end = now() + hold_s
            flips = 0
            while now() < end:
                if flips % 2 == 0:
                    c.cut(pairs)
                else:
                    c.heal_net()
                flips += 1
                time.sleep(self.rng.uniform(0.2, 0.6))
            c.heal_net()
            c.say(f"flapped node {i} {flips} times over {hold_s:.1f} s")
        elif kind == "replace":
            ok = self.replace()
        elif kind == "transfer":
            lead = c.leader()
            if lead is None:
                ok = False
            else:
                to = self.rng.choice(self.others(lead))
                rc, out = c.run("leader", "transfer", str(to), "--data",
                                c.data(lead), timeout=20)
                c.say(f"leader transfer {lead} -> {to}: exit {rc}")
                ok = rc == 0
        self.counts[kind] += 1
        if not ok:
            self.failed[kind] += 1


    def replace(self):
        """A membership change: `member remove` of a random member (the
        leader one time in three) through another member, then `cluster
        add` of a new node (ids are never reused; at most 7 in all)."""
        c = self.c
        if max(c.ever) >= 7:
            return False
        victim = self.pick_node()
        via = self.rng.choice(self.others(victim))
        rc, out = c.run("member", "remove", str(victim), "--data", c.data(via),
                        timeout=60)
        c.say(f"member remove {victim} (through node {via}): exit {rc}")
        if rc != 0:
            c.say("  " + out.strip().replace("\n", "\n  ")[-300:])
            return False
        c.members.remove(victim)
        # A removed node stops its mount; the process is stopped here.
        c.run("cluster", "stop", "--dir", c.dir, "--node", str(victim), timeout=60)
        new = c.conf_nodes() + 1   # the id `cluster add` gives
        if not c.lazy_mount(new):
            return False
        rc, out = c.run("cluster", "add", "--dir", c.dir, timeout=180)
        c.say(f"cluster add (node {new}): exit {rc}")
        if rc != 0:
            c.say("  " + out.strip().replace("\n", "\n  ")[-300:])
            if c.conf_nodes() < new or c.pid(new) is None:
                return False
            # A member that was not ready within add's wait (a long
            # catch-up): it is in the configuration and running.
            c.say(f"node {new} is a member all the same; waiting for its mount")
        c.members.append(new)
        c.ever.append(new)
        if not c.wait_mounted(new, 120):
            c.say(f"node {new}: its mount is not ready after 120 s; no workers on it")
        elif self.new_node is not None:
            self.new_node(new)
        return rc == 0


def start_workers(args, cluster, nodes, deadline, outdir, rng):
    """K workers on the mount of each of NODES; their directories are made
    through that mount first (on a node just added, once it mounted)."""
    procs = []
    for i in nodes:
        base = os.path.join(cluster.mount(i), "chaos")
        log_name = f"log{i}" if args.log_per_node else "log"
        open(os.path.join(base, "shared", log_name), "ab").close()
        for k in range(args.workers_per_node):
            worker.setup(base, f"{i}.{k}")
        for k in range(args.workers_per_node):
            wid = f"{i}.{k}"
            out = os.path.join(outdir, f"w{wid}.jsonl")
            code = ("import sys; sys.path.insert(0, sys.argv[1]); import worker; "
                    "worker.run(sys.argv[2], 'chaos', sys.argv[3], int(sys.argv[4]), "
                    "float(sys.argv[5]), sys.argv[6], log_name=sys.argv[7])")
            p = subprocess.Popen([sys.executable, "-c", code, HERE, cluster.mount(i),
                                  wid, str(rng.randrange(1 << 30)), str(deadline), out,
                                  log_name])
            procs.append((wid, out, p))
    return procs


def check_final(cluster, logs, problems):
    """Every worker's files and the shared log, through the mount of the
    first member (node 1 unless it was removed)."""
    base = os.path.join(cluster.mount(cluster.members[0]), "chaos")
    checked = 0
    all_tokens = {}
    for wid, path in logs:
        model, violations = worker.replay(path, wid)
        problems.extend(violations)
        d = os.path.join(base, "w" + wid)
        names = os.listdir(d)
        if len(names) != len(set(names)):
            problems.append(f"worker {wid}: a name listed twice in {d}")
        known = set(model.files) | {"o"}
        for a, b, _ in model.pairs:
            known |= {a, b}
        for n in names:
            if n not in known:
                problems.append(f"worker {wid}: {n} exists but no operation made it")

        def read(n):
            try:
                with open(os.path.join(d, n), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        # Read in parallel: a read waits for a read barrier, and concurrent
        # reads share its rounds.
        wanted = sorted(known)
        with ThreadPoolExecutor(max_workers=16) as pool:
            contents = dict(zip(wanted, pool.map(read, wanted)))

        def content(n):
            return contents[n]
        for n, possible in model.files.items():
            got = content(n)
            checked += 1
            if got not in possible:
                problems.append(f"worker {wid}: {n} holds {got!r}, possible "
                                f"{sorted(map(repr, possible))}")
        for a, b, data in model.pairs:
            checked += 1
            ga, gb = content(a), content(b)
            if not ((ga == data and gb is None) or (ga is None and gb == data)):
                problems.append(f"worker {wid}: unknown rename {a} -> {b}: "
                                f"{a} holds {ga!r}, {b} holds {gb!r}, want the "
                                "content under exactly one of them")
        got = content("o")
        checked += 1
        p = model.read_problem({"what": "o"}, got)
        if p:
            problems.append(f"worker {wid}: final {p}")
        all_tokens.update(model.tokens)
        yield wid, model
    lines = []
    shared = os.path.join(base, "shared")
    for name in sorted(os.listdir(shared)):
        with open(os.path.join(shared, name), "rb") as f:
            data = f.read()
        part = data.decode(errors="replace").split("\n")
        if part[-1] != "":
            problems.append(f"shared {name}: does not end with a newline ({part[-1]!r})")
        lines.extend(part[:-1])
    seen = {}
    for ln in lines:
        seen[ln] = seen.get(ln, 0) + 1
    for ln, k in seen.items():
        if ln not in all_tokens:
            problems.append(f"shared logs: line {ln[:60]!r} was never appended")
        elif k > 1:
            problems.append(f"shared logs: token {ln} {k} times")
    for t, st in all_tokens.items():
        checked += 1
        if st == "ok" and t not in seen:
            problems.append(f"shared logs: acknowledged token {t} missing")
    check_final.checked = checked
    check_final.log_lines = len(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers-per-node", type=int, default=2)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--raftfs", default="build/raftfs")
    ap.add_argument("--lazyfs", default="build/tests/lazyfs/lazyfs",
                    help="the lazyfs binary (powerloss faults)")
    ap.add_argument("--log-per-node", action="store_true",
                    help="a log per node, appended to by that node's workers "
                    "(default: every worker of every node appends to one log)")
    ap.add_argument("--lin-window", type=float, default=300, metavar="S",
                    help="length of each linearizability recorder window")
    args = ap.parse_args(argv)
    kinds = [k for k in args.faults.split(",") if k]
    if (args.nodes not in (3, 5, 7) or args.duration <= 0 or args.duration > 86400
            or not kinds or any(k not in FAULTS for k in kinds)):
        ap.error(f"--nodes 3, 5 or 7; --duration 1..86400; --faults from {FAULTS}")
    args.kinds = kinds
    args.raftfs = os.path.abspath(args.raftfs)
    args.lazyfs = os.path.abspath(args.lazyfs)
    if "powerloss" in kinds and not os.access(args.lazyfs, os.X_OK):
        ap.error(f"powerloss needs lazyfs: {args.lazyfs} (make tests)")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"chaos: seed {seed}, {args.nodes} nodes, {args.duration:.0f} s, "
          f"{args.workers_per_node} workers per node, faults {','.join(kinds)}",
          flush=True)
    os.makedirs(args.dir, exist_ok=True)
    outdir = os.path.join(args.dir, "logs")
    os.makedirs(outdir, exist_ok=True)
    cluster = Cluster(args)
    problems = []
    procs = []
    recorders = []
    try:
        if not cluster.up():
            print("chaos: the cluster did not come up")
            return 1
        cluster.say(f"cluster up, leader {cluster.leader()}")
        base = os.path.join(cluster.mount(1), "chaos")
        os.makedirs(os.path.join(base, "shared"), exist_ok=True)
        deadline = time.time() + args.duration
        procs = start_workers(args, cluster, range(1, args.nodes + 1), deadline,
                              outdir, rng)
        # The recorder in windows of --lin-window seconds, each on fresh
        # keys (lin<K>) with a history of its own: a long run's history
        # stays checkable and its logs short.
        recorders = []

        def start_recorder():
            k = len(recorders)
            length = min(args.lin_window, deadline - time.time())
            hist = os.path.join(outdir, f"lin{k}.jsonl")
            p = subprocess.Popen(
                [sys.executable, os.path.join(LIN, "record.py"), "--out", hist,
                 "--duration", f"{length:.1f}", "--workers", str(args.nodes),
                 "--dir", f"lin{k}", "--seed", str(seed + k),
                 "--grace", str(OP_TIMEOUT_S * 4 + 20),
                 *[cluster.mount(i) for i in cluster.members]],
                stdout=subprocess.DEVNULL, start_new_session=True)
            recorders.append((hist, p))
            return time.time() + length
        next_window = start_recorder()
        faults = Faults(cluster, rng, kinds)

        def new_node(i):
            if time.time() < deadline - 5:
                try:
                    procs.extend(start_workers(args, cluster, [i], deadline, outdir, rng))
                    cluster.say(f"{args.workers_per_node} workers started on node {i}")
                except OSError as e:
                    cluster.say(f"no workers on node {i}: {e}")
        faults.new_node = new_node
        time.sleep(min(2.0, args.duration / 10))
        while time.time() < deadline - 2:
            if time.time() >= next_window and time.time() < deadline - 10:
                next_window = start_recorder()
            hold = rng.uniform(1.5, 4.0)
            hold = min(hold, max(0.5, deadline - time.time() - 1))
            try:
                faults.one(hold)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                cluster.say(f"fault failed: {e}")
                cluster.heal_all()
            time.sleep(rng.uniform(0.3, 1.5))
        cluster.say("duration over: healing everything")
        cluster.heal_all()

        grace = OP_TIMEOUT_S * 4 + 20
        end = time.time() + grace
        killed = 0
        for _, _, p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                killed += 1
        for hist, rec in recorders:
            # Its own grace, then merging the workers' events (minutes for a
            # long window on a loaded machine).
            try:
                rec.wait(timeout=max(1, end - time.time()) + 600)
            except subprocess.TimeoutExpired:
                kill_group(rec)
                rec.wait()
                problems.append(f"the linearizability recorder of {hist} did not finish")
        cluster.say(f"workers done ({killed} killed after the grace time)")

        # Convergence: every replica identical.
        ok_fsck = False
        for _ in range(20):
            rc, out = cluster.run("fsck", "--cluster", "--data",
                                  cluster.data(cluster.members[0]),
                                  timeout=60)
            if rc == 0:
                ok_fsck = True
                break
            if rc == 1:
                print(out)
                break
            time.sleep(3)
        cluster.say(f"fsck --cluster: {'identical' if ok_fsck else 'NOT identical'}")
        if not ok_fsck:
            problems.append(f"fsck --cluster: {out.strip()[-600:]}")

        try:
            models = list(check_final(cluster, [(w, o) for w, o, _ in procs], problems))
        except OSError as e:
            problems.append(f"the final check could not read node 1's mount: {e}")
            models = []
            check_final.checked = check_final.log_lines = 0
        counts = {}
        for _, m in models:
            for k, (a, b) in m.counts.items():
                c = counts.setdefault(k, [0, 0])
                c[0] += a
                c[1] += b

        cluster.say(f"final check: {len(problems)} problems so far")
        for p in problems[:20]:
            print("PROBLEM: " + p, flush=True)
        lin_rcs = []
        lin_ops = 0
        for hist, _ in recorders:
            cluster.say(f"lincheck {os.path.basename(hist)}")
            if not os.path.exists(hist):
                problems.append(f"no linearizability history {hist}")
                continue
            with open(hist) as f:
                lin_ops += sum(1 for _ in f)
            p = subprocess.run([sys.executable, os.path.join(LIN, "lincheck.py"),
                                "--time-limit", "300", hist],
                               capture_output=True, text=True, timeout=900)
            lin_rcs.append(p.returncode)
            print(p.stdout.strip()[-1500:])
            if p.returncode == 1:
                problems.append(f"lincheck {hist}: a linearizability violation")
            elif p.returncode != 0:
                problems.append(f"lincheck {hist}: could not decide (exit {p.returncode})")
        lin_rc = max(lin_rcs) if lin_rcs else None

        cluster.say("cluster down")
        cluster.run("cluster", "down", "--dir", cluster.dir, timeout=120)
        cluster.say("fsck --data of every node")
        checks = [(i, subprocess.Popen([cluster.raftfs, "fsck", "--data", cluster.data(i)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True))
                  for i in cluster.ever]
        for i, p in checks:
            try:
                out, _ = p.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            if p.returncode != 0:
                problems.append(f"fsck --data node {i}: exit {p.returncode}: {out.strip()[-400:]}")
        cluster.say(f"fsck --data of {len(cluster.ever)} nodes: "
                    f"{'clean' if not any('fsck --data' in p for p in problems) else 'NOT clean'}")

        print(f"chaos: seed {seed}, {args.nodes} nodes, {args.duration:.0f} s; "
              f"members at the end {cluster.members}, {len(procs)} workers")
        print("chaos: faults " + ", ".join(
            f"{k} {faults.counts[k]}" + (f" ({faults.failed[k]} did not take)" if faults.failed[k] else "")
            for k in kinds))
        total_ok = sum(a for a, _ in counts.values())
        total_unknown = sum(b for _, b in counts.values())
        print("chaos: operations " + ", ".join(
            f"{k} {a} ok + {b} failed" for k, (a, b) in sorted(counts.items())))
        print(f"chaos: {total_ok} acknowledged, {total_unknown} failed or cut off "
              f"(unknown outcome); {check_final.checked} files, blocks and tokens "
              f"checked; shared logs {check_final.log_lines} lines; "
              f"linearizability histories: {len(recorders)} windows, {lin_ops} ops, "
              f"lincheck exit {lin_rc}")
        for p in problems[:50]:
            print("PROBLEM: " + p)
        if len(problems) > 50:
            print(f"... and {len(problems) - 50} more problems")
        print(f"chaos: {'PASS' if not problems else 'FAIL'} (seed {seed})")
        return 0 if not problems else 1
    finally:
        for _, _, p in procs:
            if p.poll() is None:
                p.kill()
        for _, rec in recorders:
            kill_group(rec)  # its workers too, also when it exited first
        cluster.down()
        cluster.lazy_umount_all()


if __name__ == "__main__":
    sys.exit(main())
