# The mount guard's tests (sourced by tests/suites/61-mount-guard): a node
# whose notifier is stuck in the kernel on a page locked by a reader (the
# reader's FUSE_READ is never answered: build/tests/daemon/raftfs-stall
# leaves every read at or past 1 GiB unanswered) and then killed with -9.
# Without its guard the process cannot finish exiting and the mount hangs;
# with it the connection is aborted, the process exits, the node starts
# again and catches up.

G_FILE=guarded        # 1 GiB + 8 KiB, sparse; its page at 1 GiB stalls
G_OFF=$((1 << 30))
G_NODE=3              # the node killed
G_READER=""

# g_guard_pid N: the guard of node N (the child named raftfs-guard).
g_guard_pid() {
	local pid c
	pid=$(d_pid "$1") || return 1
	for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
		[[ $(cat /proc/"$c"/comm 2>/dev/null) == raftfs-guard ]] && { echo "$c"; return 0; }
	done
	return 1
}

# g_stuck PID: some thread of PID sleeps uninterruptibly (the notifier in
# invalidate_inode_pages2_range).
g_stuck() {
	local t
	for t in /proc/"$1"/task/*; do
		[[ $(awk '{ print $3 }' "$t/stat" 2>/dev/null) == D ]] && return 0
	done
	return 1
}

# g_hang_node: a reader of node G_NODE waits on the stalled page, node 1
# writes that page, so node G_NODE's notifier waits on the reader's page
# lock; prints the daemon's pid once a thread of it is stuck.
g_hang_node() {
	local pid mnt
	pid=$(d_pid "$G_NODE")
	mnt=$(d_mnt "$G_NODE")
	# The reader holds the file open: node G_NODE's notifier invalidates
	# its pages when another node changes it.
	dd if="$mnt/$G_FILE" of=/dev/null bs=4096 skip=$((G_OFF / 4096)) count=1 2>/dev/null &
	G_READER=$!
	sleep 1
	kill -0 "$G_READER" 2>/dev/null || { echo "the reader did not stall" >&2; return 1; }
	# Any data change invalidates every page of the file (fs/fuse_notify.c).
	printf 'changed' | timeout 20 dd of="$(d_mnt 1)/$G_FILE" conv=notrunc 2>/dev/null ||
		{ echo "the write on node 1 failed" >&2; return 1; }
	d_until 15 g_stuck "$pid" || { echo "node $G_NODE's notifier did not get stuck" >&2; return 1; }
	echo "$pid"
}

g_setup() {
	local mnt1
	mnt1=$(d_mnt 1)
	echo start >"$mnt1/$G_FILE" && truncate -s $((G_OFF + 8192)) "$mnt1/$G_FILE" &&
		d_until 10 test -s "$(d_mnt "$G_NODE")/$G_FILE"
}

# a: every node runs a guard; a stop leaves none (checked at the end too).
t_guards_running() {
	local n
	for n in $(seq "$D_NODES"); do
		g_guard_pid "$n" >/dev/null || { echo "node $n has no guard"; return 1; }
	done
	g_setup
}

# b: the bug, guard killed first: the process cannot exit and the mount
# hangs (bounded wait); `umount -f` releases it.
t_hang_without_guard() {
	local pid guard
	guard=$(g_guard_pid "$G_NODE") || { echo "no guard"; return 1; }
	kill -9 "$guard"
	pid=$(g_hang_node) || return 1
	d_log "node $G_NODE ($pid) stuck; kill -9"
	kill -9 "$pid"
	sleep 3
	if [[ ! -d /proc/$pid/task ]] || ! g_stuck "$pid"; then
		echo "the daemon exited without its guard: the hang was not reproduced"
		return 1
	fi
	timeout 5 stat "$(d_mnt "$G_NODE")/$G_FILE" >/dev/null 2>&1 &&
		{ echo "the mount answered"; return 1; }
	d_log "hung as expected; umount -f"
	# Aborts the connection; "target is busy" (the reader) leaves the
	# aborted mount for the start to clear.
	timeout 10 umount -f "$(d_mnt "$G_NODE")" 2>&1
	[[ $? -ne 124 ]] || { echo "umount -f hung"; return 1; }
	d_until 10 eval '! kill -0 '"$pid"' 2>/dev/null' || { echo "still running after umount -f"; return 1; }
	d_until 10 eval '! kill -0 '"$G_READER"' 2>/dev/null' || { echo "the reader still waits"; return 1; }
	g_restart
}

# g_restart: cluster start of node G_NODE; it mounts and catches up.
g_restart() {
	local out="$D_TMP/start.out" t0=$SECONDS
	timeout 60 "$D_RAFTFS" cluster start --dir "$D_DIR" --node "$G_NODE" >"$out" 2>&1 ||
		{ cat "$out"; return 1; }
	d_is_mounted "$(d_mnt "$G_NODE")" || { echo "not mounted"; return 1; }
	echo "caught-up $t0" >"$(d_mnt 1)/after-$t0" &&
		d_until 10 eval 'cmp -s "$(d_mnt '"$G_NODE"')/after-'"$t0"'" "$(d_mnt 1)/after-'"$t0"'"' ||
		{ echo "node $G_NODE did not catch up"; return 1; }
	# The change made while it hung is there too.
	# (Read below 1 GiB: the stall binary never answers past it.)
	[[ $(timeout 10 head -c 7 "$(d_mnt "$G_NODE")/$G_FILE") == changed ]] ||
		{ echo "the write of node 1 is not on node $G_NODE"; return 1; }
	g_guard_pid "$G_NODE" >/dev/null || { echo "no guard after the start"; return 1; }
}

# c: the fix: with its guard, the killed daemon's connection is aborted,
# the process exits, the reader gets an error, the node starts again.
t_guard_aborts() {
	local pid guard
	guard=$(g_guard_pid "$G_NODE") || { echo "no guard"; return 1; }
	pid=$(g_hang_node) || return 1
	d_log "node $G_NODE ($pid) stuck; kill -9"
	kill -9 "$pid"
	d_until 10 eval '! kill -0 '"$pid"' 2>/dev/null' || { echo "the daemon did not exit"; return 1; }
	d_until 5 eval '! kill -0 '"$guard"' 2>/dev/null' || { echo "the guard stayed"; return 1; }
	d_until 10 eval '! kill -0 '"$G_READER"' 2>/dev/null' || { echo "the reader still waits"; return 1; }
	grep -q "raftfs-guard: the daemon (pid $pid) died with .* mounted; aborted its FUSE connection" \
		"$(d_data "$G_NODE")/raftfs.log" || { echo "no guard line in the log"; return 1; }
	# Nothing blocks on the mount point now: dead (ECONNABORTED) or gone.
	timeout 5 stat "$(d_mnt "$G_NODE")" >/dev/null 2>&1
	[[ $? -ne 124 ]] || { echo "the mount point still hangs"; return 1; }
	g_restart
}

# d: kill -9 of an idle node: the guard leaves no hang either; stop, down.
t_idle_kill() {
	local pid
	pid=$(d_pid "$G_NODE")
	kill -9 "$pid"
	d_until 10 eval '! kill -0 '"$pid"' 2>/dev/null' || { echo "the daemon did not exit"; return 1; }
	timeout 5 stat "$(d_mnt "$G_NODE")" >/dev/null 2>&1
	[[ $? -ne 124 ]] || { echo "the mount point hangs"; return 1; }
	g_restart
}

# e: SIGTERM stops a node at once and leaves no guard behind.
t_clean_stop() {
	local pid guard t0
	pid=$(d_pid "$G_NODE")
	guard=$(g_guard_pid "$G_NODE") || { echo "no guard"; return 1; }
	t0=$(date +%s%N)
	kill -TERM "$pid"
	d_until 20 eval '! kill -0 '"$pid"' 2>/dev/null' || { echo "the daemon did not stop"; return 1; }
	echo "  stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	! kill -0 "$guard" 2>/dev/null || { echo "the guard stayed"; return 1; }
	! d_is_mounted "$(d_mnt "$G_NODE")" || { echo "still mounted"; return 1; }
	g_restart
}
