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
	"$raftfs" cluster down --dir "$dir/c" >/dev/null 2>&1
	nft delete table inet "raftfs_chaos_$port" 2>/dev/null
	rm -rf "$keep"
	mkdir -p "$keep"
	cp -r "$dir/logs" "$keep/" 2>/dev/null
	for n in "$dir"/c/node*; do
		[[ -f "$n/raftfs.log" ]] && cp "$n/raftfs.log" "$keep/$(basename "$n").log"
	done
	rm -rf "$dir"
}
trap cleanup EXIT

args=(--dir "$dir" --port "$port" --nodes "$nodes" --duration "$duration" --raftfs "$raftfs")
[[ -n "$seed" ]] && args+=(--seed "$seed")
[[ -n "$faults" ]] && args+=(--faults "$faults")
# CHAOS_ARGS: more options of chaos.py (e.g. --log-per-node).
# shellcheck disable=SC2086 # words on purpose
python3 tests/chaos/chaos.py "${args[@]}" ${CHAOS_ARGS:-}
