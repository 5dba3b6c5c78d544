#!/usr/bin/env bash
# The fsx run on a real cluster, for tests/suites/76-integrity and
# tests/long/soak/76-integrity:
#   tests/fsx/integrity.sh OPS PORT [fsx options...]
# starts a 3-node cluster (`raftfs cluster up`, node N on 127.0.0.N:PORT),
# runs fsx for OPS operations on the mount of a node that is not the leader
# (`raftfs status --json`), with the reader on a third node's mount; then
# `fsck --cluster` must find the replicas identical and, once the cluster is
# down, `fsck --data` every data dir clean. Seed: FSX_SEED (default: time).
# Exit 0 when all of it passed; the cluster is taken down and removed
# whatever happens (trap EXIT).
set -uo pipefail
ops=${1:?usage: integrity.sh OPS PORT [fsx options...]}
port=${2:?usage: integrity.sh OPS PORT [fsx options...]}
shift 2
BUILD=${BUILD:-build}
raftfs=$(realpath "$BUILD/raftfs")
fsx=$(realpath "$BUILD/tests/fsx/fsx")
seed=${FSX_SEED:-$(( $(date +%s%N) % 1000000007 ))}
dir=$(mktemp -d /tmp/raftfs-integrity.XXXXXX)

cleanup() {
	"$raftfs" cluster down --dir "$dir/c" >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT

t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

if ! "$raftfs" cluster up --dir "$dir/c" --port "$port" >"$dir/up.out" 2>&1; then
	cat "$dir/up.out"
	echo "integrity: the cluster did not come up"
	exit 1
fi
leader=""
for _ in $(seq 50); do
	leader=$("$raftfs" status --data "$dir/c/node1" --json 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"] or "")' 2>/dev/null)
	[[ -n "$leader" ]] && break
	sleep 0.1
done
if [[ -z "$leader" ]]; then
	echo "integrity: no leader"
	exit 1
fi
# The writer on a follower, the reader on the other follower.
followers=()
for n in 1 2 3; do [[ $n != "$leader" ]] && followers+=("$n"); done
w=${followers[0]} r=${followers[1]}
echo "integrity: cluster up in $(ms) ms; leader node $leader, fsx on node $w, reader on node $r"

rc=0
t1=$(date +%s%N)
"$fsx" -N "$ops" -S "$seed" -r "$dir/c/mnt/$r/fsx.file" "$@" "$dir/c/mnt/$w/fsx.file" || rc=1
echo "integrity: fsx took $(( ($(date +%s%N) - t1) / 1000000 )) ms"
now=$("$raftfs" status --data "$dir/c/node1" --json 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"] or "")' 2>/dev/null)
[[ "$now" == "$leader" ]] || echo "integrity: note: the leader changed to node ${now:-none} during the run"

if ! "$raftfs" fsck --cluster --data "$dir/c/node1"; then
	echo "integrity: fsck --cluster found the replicas different"
	rc=1
fi
"$raftfs" cluster down --dir "$dir/c" >/dev/null 2>&1
# The three offline checks at once (each reads its own data dir).
pids=()
for n in 1 2 3; do
	"$raftfs" fsck --data "$dir/c/node$n" >"$dir/fsck$n.out" 2>&1 &
	pids+=($!)
done
for n in 1 2 3; do
	if ! wait "${pids[n - 1]}"; then
		cat "$dir/fsck$n.out"
		echo "integrity: fsck --data of node $n is not clean"
		rc=1
	fi
done
[[ $rc -eq 0 ]] && echo "integrity: fsck --data clean on nodes 1-3; seed $seed; $(ms) ms in all"
[[ $rc -eq 0 ]] || echo "integrity: FAILED, seed $seed (FSX_SEED=$seed to run it again)"
exit $rc
