# Helpers for the end-to-end suite tests/suites/60-daemon (sourced): a real
# cluster of `raftfs serve` processes with real FUSE mounts, made with
# `raftfs cluster up` in a temporary directory on a port of this suite's own
# (7300 by default, never make run's 7100), and everything it leaves behind
# removed by d_cleanup (trap EXIT) also when a test fails.

D_RAFTFS=$(realpath "$BUILD/raftfs")
D_PORT=${DAEMON_PORT:-7300}
D_TMP=$(mktemp -d /tmp/raftfs-daemon.XXXXXX)
D_DIR="$D_TMP/c"
D_NODES=3
D_NFT_TABLE="raftfs_test_$$"
D_NFT_MADE=""
# Options for every node's serve (`cluster up -o`): a 3 s operation timeout
# so that the cut-off node's EIO arrives quickly (serve's default is 10 s).
D_SERVE_OPTS=${DAEMON_SERVE_OPTS-timeout=3}
# The operation timeout the nodes run with, in seconds.
D_OP_TIMEOUT_S=10
if [[ ",$D_SERVE_OPTS," =~ ,timeout=([0-9]+), ]]; then
	D_OP_TIMEOUT_S=${BASH_REMATCH[1]}
fi

d_log() { echo "  [$(date +%T.%3N)] $*"; }

d_mnt() { echo "$D_DIR/mnt/$1"; }
d_data() { echo "$D_DIR/node$1"; }
d_pid() { cat "$D_DIR/node$1/raftfs.pid" 2>/dev/null; }

# d_is_mounted PATH: a fuse.raftfs mount at PATH.
d_is_mounted() {
	awk -v p="$1" '$2 == p && $3 == "fuse.raftfs" { f = 1 } END { exit !f }' /proc/mounts
}

# d_until SECS CMD...: run CMD every 0.2 s until it succeeds; fails after SECS.
d_until() {
	local secs=$1 end
	shift
	end=$(($(date +%s%N) + secs * 1000000000))
	while ! "$@"; do
		if [[ $(date +%s%N) -ge $end ]]; then
			return 1
		fi
		sleep 0.2
	done
}

# d_status N: `raftfs status --data DIR/nodeN --json` (bounded).
d_status() { timeout 15 "$D_RAFTFS" status --data "$(d_data "$1")" --json; }

# d_json_get EXPR: evaluate a Python expression over the JSON object read
# from stdin (bound to s); prints the result, fails on bad JSON.
d_json_get() {
	python3 -c 'import json, sys
s = json.load(sys.stdin)
v = eval(sys.argv[1])
print("" if v is None else v)' "$1"
}

# d_leader N: the leader id node N reports, or nothing.
d_leader() { d_status "$1" 2>/dev/null | d_json_get 's["leader"]' 2>/dev/null; }

# d_wait_leader SECS [NOT]: wait until a running node reports a leader
# (other than NOT) and print it.
d_wait_leader() {
	local secs=$1 not=${2:-} end n l
	end=$(($(date +%s) + secs))
	while [[ $(date +%s) -le $end ]]; do
		for n in $(seq "$D_NODES"); do
			[[ "$n" == "$not" ]] && continue
			l=$(d_leader "$n")
			if [[ -n "$l" && "$l" != "$not" ]]; then
				echo "$l"
				return 0
			fi
		done
		sleep 0.2
	done
	return 1
}

# d_one_line FILE: FILE holds exactly one non-empty line.
d_one_line() {
	[[ $(grep -c . "$1") -eq 1 && $(wc -l <"$1") -le 1 ]] || {
		echo "expected one line on stderr, got:"
		cat "$1"
		return 1
	}
}

# d_cut N: drop every packet of this suite's port between 127.0.0.N and the
# other nodes, both directions (a table of our own, deleted by d_heal).
d_cut() {
	local n=$1 others="" m
	for m in $(seq "$D_NODES"); do
		[[ $m -eq $n ]] || others+="${others:+, }127.0.0.$m"
	done
	nft add table inet "$D_NFT_TABLE" || return 1
	D_NFT_MADE=1
	nft add chain inet "$D_NFT_TABLE" input \
		'{ type filter hook input priority -10 ; policy accept ; }' &&
		nft add rule inet "$D_NFT_TABLE" input ip saddr 127.0.0.$n \
			ip daddr "{ $others }" tcp sport "$D_PORT" drop &&
		nft add rule inet "$D_NFT_TABLE" input ip saddr 127.0.0.$n \
			ip daddr "{ $others }" tcp dport "$D_PORT" drop &&
		nft add rule inet "$D_NFT_TABLE" input ip daddr 127.0.0.$n \
			ip saddr "{ $others }" tcp sport "$D_PORT" drop &&
		nft add rule inet "$D_NFT_TABLE" input ip daddr 127.0.0.$n \
			ip saddr "{ $others }" tcp dport "$D_PORT" drop
}

d_heal() {
	if [[ -n "$D_NFT_MADE" ]]; then
		nft delete table inet "$D_NFT_TABLE" 2>/dev/null
		D_NFT_MADE=""
	fi
	return 0
}

# Pids of processes whose command line names the suite's directory.
d_leftover_pids() {
	local p
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} -eq $$ ]] && continue
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$D_TMP/"; then
			echo "${p#/proc/}"
		fi
	done
}

# Mount points below the suite's directory.
d_mounts_under() {
	awk -v p="$D_TMP/" 'index($2, p) == 1 { print $2 }' /proc/mounts
}

d_cleanup() {
	local m p
	d_heal
	if [[ -f "$D_DIR/cluster.conf" ]]; then
		timeout 60 "$D_RAFTFS" cluster down --dir "$D_DIR" >/dev/null 2>&1
	fi
	for p in $(d_leftover_pids); do
		kill -9 "$p" 2>/dev/null
	done
	for m in $(d_mounts_under); do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$D_TMP"
}
