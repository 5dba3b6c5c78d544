"""The rows of the benchmark table: id -> (what, unit, better), in table
order. better is "higher" or "lower" (bench-check needs the direction) or
"info" (context such as a probe, never called a regression)."""

ROWS = [
    ("small1.create", "create 4 KiB files, 1 worker", "files/s", "higher"),
    ("small1.latency_p50", "  per-file latency p50, 1 worker", "ms", "lower"),
    ("small1.stat", "stat those files, 1 worker", "stats/s", "higher"),
    ("small1.delete", "delete those files, 1 worker", "files/s", "higher"),
    ("small16.create", "create 4 KiB files, 16 workers", "files/s", "higher"),
    ("small16.stat", "stat those files, 16 workers", "stats/s", "higher"),
    ("small16.delete", "delete those files, 16 workers", "files/s", "higher"),
    ("mkdir.create", "mkdir of a 1,000-directory tree", "dirs/s", "higher"),
    ("mkdir.rmrf", "rm -rf of that tree", "dirs/s", "higher"),
    ("tar.x", "tar x of /usr/include (quick: /usr/include/linux)", "s",
     "lower"),
    ("tar.rmrf", "rm -rf of that tree", "s", "lower"),
    ("git.clone", "git clone (file://) of a local repository", "s", "lower"),
    ("git.fsck", "git fsck --full of the clone", "s", "lower"),
    ("seq.write", "sequential write, dd bs=1M conv=fsync", "MB/s", "higher"),
    ("seq.read", "cold sequential read (caches dropped)", "MB/s", "higher"),
    ("fio.randwrite", "fio 4 KiB random writes", "IOPS", "higher"),
    ("fio.randwrite_fsync", "fio 4 KiB random writes, fsync each", "IOPS",
     "higher"),
    ("bigdir.create", "big directory: create entries, 16 workers",
     "files/s", "higher"),
    ("bigdir.ls", "big directory: ls -l", "s", "lower"),
    ("bigdir.lookup", "big directory: random lookups (stat)", "lookups/s",
     "higher"),
    # One value each (target "cluster"): the consensus layer alone, the
    # commit floor, failover, catch-up, memory.
    ("disk.fdatasync", "disk: 4 KiB append + fdatasync (probe)", "/s", "info"),
    ("disk.fdatasync_p50", "disk: fdatasync p50 (probe)", "µs", "info"),
    ("net.rtt_p50", "loopback TCP round trip p50 (probe)", "µs", "info"),
    ("consensus.1.rate", "consensus, 1 proposer", "commits/s", "higher"),
    ("consensus.1.p50", "  commit latency p50, 1 proposer", "µs", "lower"),
    ("consensus.1.p99", "  commit latency p99, 1 proposer", "µs", "lower"),
    ("consensus.16.rate", "consensus, 16 proposers", "commits/s", "higher"),
    ("consensus.16.p50", "  commit latency p50, 16 proposers", "µs", "lower"),
    ("consensus.16.p99", "  commit latency p99, 16 proposers", "µs", "lower"),
    ("consensus.128.rate", "consensus, 128 proposers", "commits/s", "higher"),
    ("consensus.128.p50", "  commit latency p50, 128 proposers", "µs",
     "lower"),
    ("consensus.128.p99", "  commit latency p99, 128 proposers", "µs",
     "lower"),
    ("floor.commits_per_file", "commits per 4 KiB file created (leader)",
     "commits", "info"),
    ("floor.latency", "commit floor per file = commits × (fdatasync p50 + "
     "RTT)", "ms", "info"),
    ("floor.ratio", "per-file latency p50 (leader) ÷ commit floor", "x",
     "lower"),
    ("failover.p50", "failover: kill -9 leader → writer's next success, p50",
     "ms", "lower"),
    ("failover.p99", "failover: same, p99", "ms", "lower"),
    ("catchup.rate", "catch-up of a follower that missed the data", "MB/s",
     "higher"),
    ("catchup.seconds", "  catch-up time (start → applied = commit)", "s",
     "lower"),
    ("rss.max", "RSS of the largest node after creating the files", "MB",
     "lower"),
]

# Cluster-wide locks (target "cluster"): lock and unlock, one at a time,
# through the leader's and a follower's mount; the hand-off from an unlock
# on the leader to a waiter blocked on a follower (tests/locks/latency.py).
LOCK_OPS = [("flock_lock", "flock LOCK_EX"), ("flock_unlock", "flock LOCK_UN"),
            ("fcntl_lock", "fcntl F_SETLK F_WRLCK, 1 byte"),
            ("fcntl_unlock", "fcntl F_SETLK F_UNLCK, 1 byte")]
for _node in ("leader", "follower"):
    for _op, _what in LOCK_OPS:
        ROWS.append((f"locks.{_op}.{_node}.p50",
                     f"lock: {_what}, {_node}'s mount, p50", "ms", "lower"))
        ROWS.append((f"locks.{_op}.{_node}.p99", "  same, p99", "ms",
                     "lower"))
for _kind, _what in (("flock", "flock LOCK_UN → blocked LOCK_EX"),
                     ("fcntl", "F_UNLCK → blocked F_SETLKW")):
    ROWS.append((f"locks.handoff_{_kind}.p50",
                 f"lock hand-off leader → follower: {_what}, p50", "ms",
                 "lower"))
    ROWS.append((f"locks.handoff_{_kind}.p99", "  same, p99", "ms", "lower"))

META = {rid: (what, unit, better) for rid, what, unit, better in ROWS}
TARGETS = ["local", "passthrough", "leader", "follower", "relaxed"]
TARGET_TITLES = {
    "local": "(a) local",
    "passthrough": "(b) passthrough_ll",
    "leader": "(c) raftfs leader",
    "follower": "(d) raftfs follower",
    "relaxed": "(e) raftfs relaxed",
    "cluster": "raftfs",
}
