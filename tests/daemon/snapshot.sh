#!/usr/bin/env bash
# A follower brought back by a snapshot, end to end with real daemons: 3
# nodes of `raftfs serve` on 127.0.0.N:780N with a small snapshot policy
# (-o snapshot_entries=..,snapshot_keep=..), node 3 stopped, FILES files
# written through node 1 until the leader's log is compacted past node 3's
# last entry, node 3 started again: its mount must equal node 1's
# (diff -r) within a bounded wait, it must have installed a snapshot, and
# every stopped data dir must pass `raftfs fsck --data`.
#
# Usage: tests/daemon/snapshot.sh [FILES]   (BUILD=build by default)
set -uo pipefail
BUILD=${BUILD:-build}
RAFTFS=$BUILD/raftfs
FILES=${1:-2000}
ENTRIES=${SNAPSHOT_ENTRIES:-400}
KEEP=${SNAPSHOT_KEEP:-50}
PORT_BASE=7800
WAIT_S=${WAIT_S:-90}

dir=$(mktemp -d /tmp/raftfs-snap-XXXXXX)
peers="1=127.0.0.1:$((PORT_BASE + 1)),2=127.0.0.2:$((PORT_BASE + 2)),3=127.0.0.3:$((PORT_BASE + 3))"

say() { echo "# $*"; }
fail() {
	echo "FAIL: $*" >&2
	for n in 1 2 3; do
		[[ -f $dir/node$n/raftfs.log ]] || continue
		echo "--- node$n/raftfs.log (last lines)" >&2
		tail -n 15 "$dir/node$n/raftfs.log" >&2
	done
	exit 1
}

stop_node() {
	local n=$1 pid
	[[ -f $dir/node$n/raftfs.pid ]] || return 0
	pid=$(cat "$dir/node$n/raftfs.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

cleanup() {
	for n in 1 2 3; do stop_node "$n"; done
	for n in 1 2 3; do
		mountpoint -q "$dir/mnt/$n" 2>/dev/null &&
			fusermount3 -u -z "$dir/mnt/$n" 2>/dev/null
	done
	[[ -n ${KEEP_DIR:-} ]] && echo "# kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT

start_node() {
	local n=$1
	mkdir -p "$dir/mnt/$n"
	"$RAFTFS" serve --id "$n" --data "$dir/node$n" --mount "$dir/mnt/$n" \
		--listen "127.0.0.$n:$((PORT_BASE + n))" --peers "$peers" \
		--certs "$dir/certs" --bootstrap \
		-o "snapshot_entries=$ENTRIES,snapshot_keep=$KEEP" >/dev/null ||
		fail "node $n did not start"
}

wait_mounted() {
	local n=$1
	for _ in $(seq 600); do
		mountpoint -q "$dir/mnt/$n" && stat "$dir/mnt/$n" >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	fail "node $n never mounted"
}

"$RAFTFS" certs create --dir "$dir/certs" --nodes 3 >/dev/null ||
	fail "certs create"
# Started together: each waits (up to 60 s) for a leader, which needs two.
for n in 1 2 3; do start_node "$n" & done
wait
for n in 1 2 3; do wait_mounted "$n"; done
say "3 nodes mounted"

mkdir "$dir/mnt/1/before" || fail "mkdir through node 1"
for i in $(seq 20); do echo "before $i" >"$dir/mnt/1/before/f$i" || fail "write"; done
# Node 3 has everything so far, then stops.
for _ in $(seq 100); do
	diff -r "$dir/mnt/1" "$dir/mnt/3" >/dev/null 2>&1 && break
	sleep 0.1
done
stop_node 3
last3=$("$RAFTFS" fsck --data "$dir/node3" --json 2>/dev/null |
	grep -oE '"last_index": *[0-9]+' | grep -oE '[0-9]+$')
say "node 3 stopped at log index ${last3:-?}"
[[ -n $last3 ]] || fail "cannot read node 3's last index"

t0=$(date +%s.%N)
mkdir "$dir/mnt/1/d" || fail "mkdir d"
for i in $(seq "$FILES"); do
	echo "file $i of the snapshot test" >"$dir/mnt/1/d/f$i" || fail "write f$i"
done
# BIG_MB=N (a measurement, not in the suite): N files of 1 MiB more.
for i in $(seq "${BIG_MB:-0}"); do
	dd if=/dev/urandom of="$dir/mnt/1/d/big$i" bs=1M count=1 status=none ||
		fail "write big$i"
done
t1=$(date +%s.%N)
say "wrote $FILES files (and ${BIG_MB:-0} MiB) through node 1 in $(echo "$t1 - $t0" | bc) s"

# Some node's log (the leader compacts like every node) must start past
# node 3's last entry: node 3 cannot catch up from the log alone.
compacted=0
for _ in $(seq 100); do
	for n in 1 2; do
		c=$(grep -oE 'log compacted below [0-9]+' "$dir/node$n/raftfs.log" |
			tail -n 1 | grep -oE '[0-9]+$')
		if [[ -n $c && $c -gt $((last3 + 1)) ]]; then
			compacted=$c
		fi
	done
	[[ $compacted -gt 0 ]] && break
	sleep 0.1
done
[[ $compacted -gt 0 ]] || fail "no log compacted past node 3's index $last3"
say "logs compacted below $compacted (node 3 holds up to $last3)"
du1=$(du -sk "$dir/node1/log" | cut -f1)
say "node 1 log store: $du1 KiB"

# For scale (MEASURE=1): how long one diff -r of two up-to-date mounts
# takes; node 3's catch-up time below includes one.
if [[ -n ${MEASURE:-} ]]; then
	td0=$(date +%s.%N)
	diff -r "$dir/mnt/1" "$dir/mnt/2" >/dev/null 2>&1 || fail "nodes 1 and 2 differ"
	td1=$(date +%s.%N)
	say "diff -r of nodes 1 and 2 (both up to date): $(echo "$td1 - $td0" | bc) s"
fi

t2=$(date +%s.%N)
start_node 3
wait_mounted 3
ok=0
for _ in $(seq $((WAIT_S * 2))); do
	if diff -r "$dir/mnt/1" "$dir/mnt/3" >"$dir/diff.out" 2>&1; then
		ok=1
		break
	fi
	[[ -n ${VERBOSE:-} ]] && { date +%T.%N; head -3 "$dir/diff.out"; }
	sleep 0.5
done
t3=$(date +%s.%N)
[[ $ok -eq 1 ]] || fail "node 3's mount differs from node 1's after ${WAIT_S} s"
grep -q "installed snapshot at" "$dir/node3/raftfs.log" ||
	fail "node 3 caught up without installing a snapshot"
say "node 3 caught up in $(echo "$t3 - $t2" | bc) s: $(grep -oE 'installed snapshot at .*' "$dir/node3/raftfs.log" | tail -n 1)"

# A write after the install reaches node 3 too.
echo after >"$dir/mnt/3/after" || fail "write through node 3"
grep -q after "$dir/mnt/1/after" || fail "node 1 does not see node 3's write"

for n in 3 2 1; do stop_node "$n"; done
for n in 1 2 3; do
	"$RAFTFS" fsck --data "$dir/node$n" >"$dir/fsck$n.out" 2>&1 ||
		{ cat "$dir/fsck$n.out" >&2; fail "fsck of node $n"; }
done
say "fsck clean on all three nodes"
if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' \
	"$dir"/node*/raftfs.log >/dev/null 2>&1; then
	fail "a sanitizer report in a node's log"
fi
echo "PASS snapshot catch-up"
