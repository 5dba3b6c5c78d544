#!/usr/bin/env bash
# sqlite_bench.sh [RAFTFS] [ROWS] [WRITERS]: issue 17's SQLite workload
# alone, measured (docs/LOCKS.md, "Speed"): a fresh 3-node cluster of
# `raftfs serve` (tests/posix/cluster.sh, -o lease=3, port
# SQLITE_BENCH_PORT, default 8940), then WRITERS (default 3) processes of
# tests/locks/sqlite_insert.py, writer N on node N's mount (1..3, round
# robin), ROWS (default 500) rows each, one transaction per row, into one
# database in the default journal mode (SQLITE_BENCH_JOURNAL overrides:
# wal needs shared memory, which FUSE does not give across nodes). Prints
# the wall time, rows per second, ms per row, log entries per row (node
# 1's applied index after minus before), the fcntl calls per row and how
# many failed with EAGAIN (SQLITE_BENCH_STRACE=1: strace -f -c of the
# writers, slower), and checks the row count and PRAGMA integrity_check.
set -uo pipefail
cd "$(dirname "$0")/../.."
PC_RAFTFS=$(realpath "${1:-build/raftfs}")
rows=${2:-500}
writers=${3:-3}
PC_PORT=${SQLITE_BENCH_PORT:-8940}
PC_TIMEOUT="10,lease=3"
journal=${SQLITE_BENCH_JOURNAL:-delete}
. tests/posix/cluster.sh
work=$(mktemp -d /tmp/raftfs-sqlbench.XXXXXX)
trap 'cd /; pc_cleanup; rm -rf "$work"' EXIT
pc_up "$work" >/dev/null || { echo "cluster did not start"; exit 1; }
m1=$(pc_mnt 1)
applied() {
	"$PC_RAFTFS" status --data "$PC_DIR/node1" --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); print([m["applied"] for m in d["members"] if m["id"]==1][0])'
}
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=' + sys.argv[2]); c.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER, i INTEGER)'); c.commit()" "$m1/db" "$journal" >/dev/null
a0=$(applied)
t0=$EPOCHREALTIME
pids=()
for w in $(seq "$writers"); do
	n=$(((w - 1) % 3 + 1))
	if [[ ${SQLITE_BENCH_STRACE:-0} == 1 ]]; then
		timeout 1500 strace -f -c -e trace=fcntl -o "$work/strace.$w" \
			python3 tests/locks/sqlite_insert.py "$(pc_mnt $n)/db" "$w" "$rows" &
	else
		timeout 1500 python3 tests/locks/sqlite_insert.py "$(pc_mnt $n)/db" "$w" "$rows" &
	fi
	pids+=($!)
done
ok=true
for p in "${pids[@]}"; do wait "$p" || ok=false; done
t1=$EPOCHREALTIME
a1=$(applied)
total=$((rows * writers))
got=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM t').fetchone()[0], c.execute('PRAGMA integrity_check').fetchone()[0])" "$(pc_mnt 2)/db")
python3 - "$t0" "$t1" "$total" "$a0" "$a1" "$ok" "$got" <<'EOF'
import sys
t0, t1, total, a0, a1 = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = t1 - t0
print(f"rows {total} in {s:.1f} s: {total / s:.1f} rows/s, {1000 * s / total:.1f} ms/row, "
      f"{(a1 - a0) / total:.1f} log entries/row; writers ok: {sys.argv[6]}; count, integrity: {sys.argv[7]}")
EOF
if [[ ${SQLITE_BENCH_STRACE:-0} == 1 ]]; then
	calls=0 errs=0
	for w in $(seq "$writers"); do
		read -r c e < <(awk '$NF=="fcntl" {print $(NF-2), ($(NF-1) ~ /^[0-9]+$/ ? $(NF-1) : 0)}' "$work/strace.$w")
		calls=$((calls + ${c:-0})); errs=$((errs + ${e:-0}))
	done
	echo "fcntl calls $calls ($((calls / total)) per row), failed $errs"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ $ok == true && $got == "$total ok" ]]
