#!/usr/bin/env bash
# A chaos run (tests/chaos/chaos.py) with everything it starts cleared
# whatever happens:
#   tests/chaos/run.sh DURATION NODES PORT [SEED] [FAULTS]
# The workers' logs, the linearizability history and each node's log are
# kept in $BUILD/test-logs/chaos-PORT/ for a look after a failure.
set -uo pipefail
duration=${1:?usage: run.sh DURATION NODES PORT [SEED] [FAULTS]}
nodes=${2:?usage: run.sh DURATION NODES PORT [SEED] [FAULTS]}
port=${3:?usage: run.sh DURATION NODES PORT [SEED] [FAULTS]}
seed=${4:-}
faults=${5:-}
BUILD=${BUILD:-build}
raftfs=$(realpath "$BUILD/raftfs")
keep="$BUILD/test-logs/chaos-$port"
dir=$(mktemp -d /tmp/raftfs-chaos.XXXXXX)

cleanup() {
	local n i
	"$raftfs" cluster down --dir "$dir/c" >/dev/null 2>&1
	nft delete table inet "raftfs_chaos_$port" 2>/dev/null
	rm -rf "$keep"
	mkdir -p "$keep"
	cp -r "$dir/logs" "$keep/" 2>/dev/null
	for n in "$dir"/c/node*; do
		[[ -f "$n/raftfs.log" ]] && cp "$n/raftfs.log" "$keep/$(basename "$n").log"
	done
	# powerloss runs: data dirs that are still lazyfs mounts (chaos.py
	# unmounts them unless it was killed); a clean unmount ends lazyfs.
	for n in "$dir"/c/node*; do
		if mountpoint -q "$n" 2>/dev/null || ! stat "$n" >/dev/null 2>&1; then
			fusermount3 -u "$n" 2>/dev/null || fusermount3 -uz "$n" 2>/dev/null
		fi
	done
	for ((i = 0; i < 100; i++)); do
		grep -q " $dir/c/node" /proc/mounts || break
		sleep 0.1
	done
	for n in "$dir"/backing/node*; do
		[[ -f "$n/raftfs.log" && ! -f "$keep/$(basename "$n").log" ]] &&
			cp "$n/raftfs.log" "$keep/$(basename "$n").log"
	done
	if grep -q " $dir/" /proc/mounts; then
		echo "run.sh: mounts left under $dir; not removing it" >&2
		return
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

args=(--dir "$dir" --port "$port" --nodes "$nodes" --duration "$duration" --raftfs "$raftfs"
	--lazyfs "$BUILD/tests/lazyfs/lazyfs")
[[ -n "$seed" ]] && args+=(--seed "$seed")
[[ -n "$faults" ]] && args+=(--faults "$faults")
# CHAOS_ARGS: more options of chaos.py (e.g. --log-per-node).
# shellcheck disable=SC2086 # words on purpose
python3 tests/chaos/chaos.py "${args[@]}" ${CHAOS_ARGS:-}
