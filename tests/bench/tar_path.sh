#!/usr/bin/env bash
# Where `tar x` spends its requests (docs/BENCHMARKS.md, "tar x of
# /usr/include"): a 3-node `raftfs cluster up` on 127.0.0.1-3, then
# `tar xf TARBALL` on one node's mount, timed; prints the seconds, the
# entries, the commits (the leader's applied index before and after) per
# entry and, with TAR_PATH_DEBUG=1 (the daemons run with -o debug, which
# slows them: the time is then not comparable), the FUSE requests of the
# mount's daemon by opcode (libfuse's debug lines in its log).
#
#   tests/bench/tar_path.sh [RAFTFS] [TARBALL]
#     RAFTFS default build/raftfs; TARBALL default: a tarball of
#     /usr/include/linux made in the work dir. TAR_PATH_PORT (default
#     8950), TAR_PATH_NODE (leader | follower, default leader).
set -euo pipefail

bin=$(readlink -f "${1:-build/raftfs}")
port=${TAR_PATH_PORT:-8950}
which=${TAR_PATH_NODE:-leader}
debug=${TAR_PATH_DEBUG:-0}
dir=$(mktemp -d /tmp/tar_path.XXXXXX)
opt=()
[[ "$debug" == 1 ]] && opt=(-o debug)

cleanup() {
	"$bin" cluster down --dir "$dir/c" >/dev/null 2>&1 || true
	for m in "$dir"/c/mnt/*; do
		fusermount3 -u -z "$m" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

tarball=${2:-}
if [[ -z "$tarball" ]]; then
	tarball=$dir/linux.tar
	tar cf "$tarball" -C /usr/include linux
fi
tarball=$(readlink -f "$tarball")
entries=$(tar tf "$tarball" | wc -l)

timeout 60 "$bin" cluster up --dir "$dir/c" --port "$port" "${opt[@]}" \
	>/dev/null
json() { "$bin" status --data "$dir/c/node$1" --json; }
leader=$(json 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["leader"])')
[[ "$leader" =~ ^[1-3]$ ]] || { echo "tar_path: no leader" >&2; exit 1; }
node=$leader
[[ "$which" == follower ]] && node=$((leader % 3 + 1))
applied() {
	json "$leader" | python3 -c "import json, sys
d = json.load(sys.stdin)
print([m['applied'] for m in d['members'] if m['id'] == $leader][0])"
}
mnt=$dir/c/mnt/$node
mkdir "$mnt/t"
log=$dir/c/node$node/raftfs.log
lines0=$(wc -l < "$log")
a0=$(applied)
t0=$(date +%s.%N)
timeout 600 tar xf "$tarball" -C "$mnt/t"
t1=$(date +%s.%N)
sleep 0.3 # the releases of orphans (100 ms windows) land
a1=$(applied)
echo "tar x of $entries entries on node $node's mount (leader $leader)," \
	"load $(cut -d' ' -f1 /proc/loadavg):" \
	"$(echo "$t1 - $t0" | bc) s, $((a1 - a0)) commits," \
	"$(echo "scale=2; ($a1 - $a0) / $entries" | bc) per entry"
if [[ "$debug" == 1 ]]; then
	echo "FUSE requests of node $node's daemon, by opcode:"
	tail -n +"$((lines0 + 1))" "$log" | grep -o 'opcode: [A-Z_]*' |
		sort | uniq -c | sort -rn
fi
