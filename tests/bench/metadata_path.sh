#!/usr/bin/env bash
# The metadata path through real daemons (docs/BENCHMARKS.md, "Metadata
# path"): a 3-node `raftfs cluster up` on 127.0.0.1-3, then on one node's
# mount, one phase at a time, build/tests/bench/meta_ops (create 4 KiB
# files with 1 worker, stat, unlink; create with 16 workers in one
# directory and in a directory each; mkdir, rmdir). For every phase it
# prints the rate and p50/p99 per call, the commits per call (the leader's
# applied index before and after) and, per call, the context switches and
# CPU time of each daemon (from /proc, all threads).
#
#   tests/bench/metadata_path.sh [RAFTFS] [N]
#     RAFTFS default build/raftfs; N files per phase, default 1000
#     METADATA_PATH_PORT (default 7970), METADATA_PATH_NODE (leader |
#     follower, default leader), METADATA_PATH_MODE (strict | relaxed)
set -euo pipefail

bin=$(readlink -f "${1:-build/raftfs}")
n=${2:-1000}
port=${METADATA_PATH_PORT:-7970}
which=${METADATA_PATH_NODE:-leader}
mode=${METADATA_PATH_MODE:-strict}
ops=$(readlink -f "$(dirname "$0")/../../build/tests/bench/meta_ops")
[[ -x "$ops" ]] || { echo "metadata_path: build $ops first (make)" >&2; exit 1; }
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 16 && "$n" -le 100000 ]] ||
	{ echo "metadata_path: N must be 16..100000" >&2; exit 2; }
dir=$(mktemp -d /tmp/metadata_path.XXXXXX)
opt=()
[[ "$mode" == relaxed ]] && opt=(-o cache=relaxed)

cleanup() {
	"$bin" cluster down --dir "$dir/c" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

timeout 60 "$bin" cluster up --dir "$dir/c" --port "$port" "${opt[@]}" \
	>/dev/null
leader=$("$bin" status --data "$dir/c/node1" |
	sed -n 's/.* leader \([0-9]\).*/\1/p' | head -1)
[[ -n "$leader" ]] || { echo "metadata_path: no leader" >&2; exit 1; }
node=$leader
[[ "$which" == follower ]] && node=$((leader % 3 + 1))
mnt=$dir/c/mnt/$node
echo "raftfs $("$bin" version 2>/dev/null | head -1); mode $mode;" \
	"mount of node $node (leader $leader); load $(cut -d' ' -f1 /proc/loadavg)"

applied() {
	"$bin" status --data "$dir/c/node$leader" |
		awk -v l="$leader" '$1 == l { print $6 }'
}
# Context switches and CPU ticks of each daemon, all threads.
counters() {
	for i in 1 2 3; do
		local pid
		pid=$(cat "$dir/c/node$i/raftfs.pid")
		awk '/ctxt_switches/ { s += $2 } END { printf "%d ", s }' \
			/proc/"$pid"/task/*/status
		awk '{ s += $14 + $15 } END { printf "%d ", s }' \
			/proc/"$pid"/task/*/stat
	done
}
phase() { # count, then meta_ops arguments
	local count=$1 a0 a1 c0 c1 out
	shift
	a0=$(applied)
	c0=($(counters))
	out=$(timeout 300 "$ops" "$@")
	sleep 0.3 # the releases of orphans (100 ms windows) land
	a1=$(applied)
	c1=($(counters))
	local tick_us=$((1000000 / $(getconf CLK_TCK)))
	printf '%s\n    commits/call %s; per call, node 1/2/3: cs %s/%s/%s, cpu %s/%s/%s us\n' \
		"$out" "$(awk -v d=$((a1 - a0)) -v n="$count" 'BEGIN { printf "%.2f", d / n }')" \
		$(( (c1[0] - c0[0]) / count )) $(( (c1[2] - c0[2]) / count )) \
		$(( (c1[4] - c0[4]) / count )) \
		$(( (c1[1] - c0[1]) * tick_us / count )) \
		$(( (c1[3] - c0[3]) * tick_us / count )) \
		$(( (c1[5] - c0[5]) * tick_us / count ))
}

mkdir "$mnt/one" "$mnt/shared" "$mnt/each" "$mnt/dirs"
phase "$n" create "$mnt/one" "$n" 1
phase "$n" stat "$mnt/one" "$n" 1
phase "$n" unlink "$mnt/one" "$n" 1
phase "$n" create "$mnt/shared" "$n" 16
phase "$n" create "$mnt/each" "$n" 16 --per-dir
phase "$n" mkdir "$mnt/dirs" "$n" 1
phase "$n" rmdir "$mnt/dirs" "$n" 1
