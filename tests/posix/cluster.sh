# A 3-node raftfs cluster of real daemons for the POSIX suite (sourced).
# Node N listens on 127.0.0.N:$PC_PORT, keeps its data in $PC_DIR/nodeN and
# its mount at $PC_DIR/mnt/N. pc_cleanup stops every node it started (by
# the pid in its pid file) and clears any mount left behind.

PC_RAFTFS=${PC_RAFTFS:-$(realpath "${BUILD:-build}/raftfs")}
PC_PORT=${PC_PORT:-7911}
PC_DIR=""
PC_N=3

pc_mnt() { echo "$PC_DIR/mnt/$1"; }
pc_pid() { cat "$PC_DIR/node$1/raftfs.pid" 2>/dev/null; }
pc_is_mounted() { grep -q " $(pc_mnt "$1") fuse" /proc/mounts; }

pc_peers() {
	local i out=""
	for i in $(seq "$PC_N"); do out+="${out:+,}$i=127.0.0.$i:$PC_PORT"; done
	echo "$out"
}

# pc_start N [extra serve args]: start node N (returns when it mounted).
pc_start() {
	local n=$1
	shift
	mkdir -p "$(pc_mnt "$n")"
	"$PC_RAFTFS" serve --id "$n" --data "$PC_DIR/node$n" --mount "$(pc_mnt "$n")" \
		--listen "127.0.0.$n:$PC_PORT" --peers "$(pc_peers)" \
		--certs "$PC_DIR/certs" --bootstrap -o "timeout=${PC_TIMEOUT:-10},allow_other" "$@" \
		>>"$PC_DIR/serve$n.out" 2>&1
}

# pc_up DIR: certificates and three nodes started in parallel.
pc_up() {
	local i rc=0 pids=()
	PC_DIR=$1
	mkdir -p "$PC_DIR"
	chmod 0755 "$PC_DIR"
	"$PC_RAFTFS" certs create --dir "$PC_DIR/certs" --nodes "$PC_N" >/dev/null || return 1
	for i in $(seq "$PC_N"); do
		pc_start "$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	for i in $(seq "$PC_N"); do pc_is_mounted "$i" || rc=1; done
	[[ $rc -eq 0 ]] && { pc_wait_level || rc=1; }
	[[ $rc -eq 0 ]] || { tail -n 5 "$PC_DIR"/serve*.out "$PC_DIR"/node*/raftfs.log; }
	return $rc
}

# pc_wait_level: wait (at most 30 s) until the new cluster's leader has
# raised its feature level to this build's (locks need it: docs/FS_STORE.md,
# "Feature level"), as `raftfs cluster up` does.
pc_wait_level() {
	local want got
	want=$(sed -n 's/^#define FS_FEATURE_LEVEL \([0-9]*\)u.*/\1/p' fs/fs.h)
	for _ in $(seq 150); do
		got=$("$PC_RAFTFS" status --data "$PC_DIR/node1" --json 2>/dev/null |
			python3 -c 'import json,sys; print(json.load(sys.stdin).get("feature_level"))' 2>/dev/null)
		[[ "$got" == "$want" ]] && return 0
		sleep 0.2
	done
	echo "feature level still '$got', not $want, after 30 s"
	return 1
}

# pc_stop N: SIGTERM node N and wait for it to exit.
pc_stop() {
	local pid
	pid=$(pc_pid "$1")
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	pc_is_mounted "$1" && fusermount3 -u -z "$(pc_mnt "$1")" 2>/dev/null
	return 0
}

# pc_kill N: SIGKILL node N (a dead mount stays until the next start).
pc_kill() {
	local pid
	pid=$(pc_pid "$1")
	[[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	rm -f "$PC_DIR/node$1/raftfs.pid"
}

pc_cleanup() {
	local i
	[[ -n "$PC_DIR" ]] || return 0
	for i in $(seq "$PC_N"); do pc_stop "$i"; done
	for i in $(seq "$PC_N"); do
		pc_is_mounted "$i" && fusermount3 -u -z "$(pc_mnt "$i")" 2>/dev/null
	done
	return 0
}
