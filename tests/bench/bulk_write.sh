#!/usr/bin/env bash
# Bulk write through the leader's mount of a fresh 3-node cluster, with the
# cost on each node (docs/BENCHMARKS.md, "Bulk data path"):
#
#   tests/bench/bulk_write.sh RAFTFS PORT [MIB] [LABEL]
#
# runs `RAFTFS cluster up` on PORT in a temporary dir under /tmp, then
# `dd if=/dev/zero of=MNT/f bs=1M count=MIB conv=fsync` (1024 by default)
# through the leader's mount, and prints one line: label, MB/s, CPU seconds
# of the three daemons (utime + stime from /proc/PID/stat, before/after)
# per GiB written, MiB each node wrote to disk (/proc/PID/io write_bytes),
# the size of each node's log store after the write, and the load average
# before. Alternate two binaries on the same port for an A/B comparison.
# The cluster is taken down and removed on exit, also on failure.
set -uo pipefail

bin=$(realpath "${1:?usage: bulk_write.sh RAFTFS PORT [MIB] [LABEL]}")
port=${2:?usage: bulk_write.sh RAFTFS PORT [MIB] [LABEL]}
mib=${3:-1024}
label=${4:-$(basename "$bin")}
dir=$(mktemp -d /tmp/raftfs-bulk.XXXXXX)

cleanup() {
	"$bin" cluster down --dir "$dir/c" >/dev/null 2>&1
	for n in 1 2 3; do
		fusermount3 -u "$dir/c/mnt/$n" 2>/dev/null
	done
	rm -rf "$dir"
}
trap cleanup EXIT

"$bin" cluster up --dir "$dir/c" --port "$port" >"$dir/up.log" 2>&1 || {
	echo "cluster up failed:" >&2
	tail -5 "$dir/up.log" >&2
	exit 1
}
leader=""
for _ in $(seq 50); do
	leader=$("$bin" status --data "$dir/c/node1" --json 2>/dev/null |
		python3 -c 'import json,sys; v=json.load(sys.stdin)["leader"]; print("" if v is None else v)' 2>/dev/null)
	[[ -n "$leader" ]] && break
	sleep 0.2
done
[[ -n "$leader" ]] || { echo "no leader" >&2; exit 1; }
pids=()
for n in 1 2 3; do
	pids+=("$(cat "$dir/c/node$n/raftfs.pid")")
done

ticks() { # the CPU ticks of the three daemons
	local t=0 p
	for p in "${pids[@]}"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
wbytes() { awk '/^write_bytes/{print $2}' "/proc/$1/io"; }

load=$(cut -d' ' -f1 /proc/loadavg)
t0=$(ticks)
w0=()
for p in "${pids[@]}"; do w0+=("$(wbytes "$p")"); done
start=$(date +%s%N)
timeout 600 dd if=/dev/zero of="$dir/c/mnt/$leader/f" bs=1M count="$mib" \
	conv=fsync 2>"$dir/dd.log" || {
	echo "dd failed:" >&2
	cat "$dir/dd.log" >&2
	exit 1
}
end=$(date +%s%N)
t1=$(ticks)
written=""
for i in 0 1 2; do
	written+="$(( ($(wbytes "${pids[$i]}") - ${w0[$i]}) >> 20 ))/"
done
logs=""
for n in 1 2 3; do
	logs+="$(du -sm "$dir/c/node$n/log" | cut -f1)/"
done
hz=$(getconf CLK_TCK)
awk -v l="$label" -v mib="$mib" -v ns=$((end - start)) -v dt=$((t1 - t0)) \
	-v hz="$hz" -v w="${written%/}" -v logs="${logs%/}" -v load="$load" \
	-v leader="$leader" 'BEGIN {
	printf "%s: %.1f MB/s, %.1f CPU s per GiB (3 daemons), MiB written per node %s (leader %s), log store MiB %s, load %s\n",
		l, mib * 1048576 / (ns / 1e9) / 1e6, dt / hz * 1024 / mib, w,
		leader, logs, load
}'
