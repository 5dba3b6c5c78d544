#!/usr/bin/env bash
# sqlite_cpu.sh [RAFTFS] [N]: the CPU one SQLite transaction costs the
# cluster (docs/LOCKS.md, "What changed"): a fresh 3-node cluster of
# `raftfs serve` (tests/posix/cluster.sh, -o lease=3, port
# SQLITE_CPU_PORT, default 8945), one writer (tests/locks/sqlite_insert.py)
# inserting N rows (default 400), one transaction each, on node 1's mount;
# prints the wall time and the three daemons' CPU (utime + stime of
# /proc/PID/stat) per transaction. Run the old and the new binary back to
# back, more than once, and compare.
set -uo pipefail
cd "$(dirname "$0")/../.."
PC_RAFTFS=$(realpath "${1:-build/raftfs}")
n=${2:-400}
PC_PORT=${SQLITE_CPU_PORT:-8945}
PC_TIMEOUT="10,lease=3"
. tests/posix/cluster.sh
work=$(mktemp -d /tmp/raftfs-sqlcpu.XXXXXX)
trap 'cd /; pc_cleanup; rm -rf "$work"' EXIT
pc_up "$work" >/dev/null || { echo "cluster did not start"; exit 1; }
m=$(pc_mnt 1)
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER, i INTEGER)'); c.commit()" "$m/db"
cpu_ticks() {
	local s=0 i
	for i in 1 2 3; do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$(pc_pid "$i")/stat")))
	done
	echo "$s"
}
hz=$(getconf CLK_TCK)
c0=$(cpu_ticks)
t0=$EPOCHREALTIME
timeout 900 python3 tests/locks/sqlite_insert.py "$m/db" 1 "$n" || { echo "writer failed"; exit 1; }
t1=$EPOCHREALTIME
c1=$(cpu_ticks)
echo "$PC_RAFTFS: $n transactions in $(echo "$t1 - $t0" | bc) s;" \
	"daemons' CPU $(((c1 - c0) * 1000 / hz)) ms, $(((c1 - c0) * 1000 / hz / n)) ms a transaction;" \
	"load average $(cut -d' ' -f1 /proc/loadavg)"
