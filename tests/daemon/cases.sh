# The tests of tests/suites/60-daemon (sourced after tests/daemon/lib.sh).
# They share one cluster: t_up starts it, t_down stops it and checks that
# nothing is left; the tests between leave it with every node running.

# a. `cluster up` brings up 3 mounted nodes with a leader.
t_up() {
	local out="$D_TMP/up.out" n pid json
	local opts=()
	[[ -n "$D_SERVE_OPTS" ]] && opts=(-o "$D_SERVE_OPTS")
	if ! timeout 120 "$D_RAFTFS" cluster up --dir "$D_DIR" --nodes "$D_NODES" \
		--port "$D_PORT" "${opts[@]}" >"$out" 2>&1; then
		echo "cluster up failed:"
		cat "$out"
		for n in $(seq "$D_NODES"); do
			echo "--- node$n/raftfs.log"
			tail -n 20 "$(d_data "$n")/raftfs.log" 2>/dev/null
		done
		return 1
	fi
	cat "$out"
	for n in $(seq "$D_NODES"); do
		d_is_mounted "$(d_mnt "$n")" || { echo "node $n not mounted"; return 1; }
		pid=$(d_pid "$n")
		kill -0 "$pid" 2>/dev/null || { echo "node $n: no process"; return 1; }
		grep -q "^$n .*127\.0\.0\.$n:$D_PORT .*$pid" "$out" ||
			{ echo "node $n missing from the table"; return 1; }
		json=$(d_status "$n") || { echo "status of node $n failed"; return 1; }
		echo "$json" | d_json_get 's["leader"] is not None and len(s["members"]) == 3' |
			grep -qx True || { echo "node $n status: $json"; return 1; }
	done
	grep -q "cluster down --dir $D_DIR" "$out"
}

# up again on a running cluster: says so, prints the table, exit 0.
t_up_again() {
	local out="$D_TMP/up2.out"
	timeout 60 "$D_RAFTFS" cluster up --dir "$D_DIR" >"$out" 2>&1 &&
		grep -q "already running" "$out" && grep -q "^3 " "$out" ||
		{ cat "$out"; return 1; }
}

# b. What node 1 wrote is what nodes 2 and 3 read right after the write
# returned, also when they had just read (and could have cached) the old
# content: same size, other sizes, an in-place change.
t_coherent() {
	local rounds i n v=$D_TMP/v f=coherent
	rounds=$(scale 8)
	mkdir -p "$(d_mnt 1)/$f" || return 1
	for i in $(seq "$rounds"); do
		head -c $((4096 + i * 1000)) /dev/urandom >"$v.1"
		head -c $((4096 + i * 1000)) /dev/urandom >"$v.2"   # same size
		head -c $((100 + i * 7919)) /dev/urandom >"$v.3"    # another size
		head -c 17 /dev/urandom >"$v.4"                     # smaller
		cp "$v.1" "$(d_mnt 1)/$f/x" || return 1
		for n in 2 3; do
			timeout 30 cmp "$(d_mnt $n)/$f/x" "$v.1" || { echo "round $i v1 node $n"; return 1; }
		done
		for k in 2 3 4; do
			cat "$v.$k" >"$(d_mnt 1)/$f/x" || return 1
			for n in 2 3; do
				timeout 30 cmp "$(d_mnt $n)/$f/x" "$v.$k" ||
					{ echo "round $i v$k node $n"; return 1; }
			done
		done
		# In place, size and (likely) mtime second unchanged.
		cp "$v.1" "$(d_mnt 1)/$f/y" && cat "$(d_mnt 2)/$f/y" "$(d_mnt 3)/$f/y" >/dev/null &&
			printf 'CHANGED' | dd of="$(d_mnt 1)/$f/y" bs=1 seek=100 conv=notrunc status=none &&
			printf 'CHANGED' | dd of="$v.1" bs=1 seek=100 conv=notrunc status=none || return 1
		for n in 2 3; do
			timeout 30 cmp "$(d_mnt $n)/$f/y" "$v.1" || { echo "round $i in place node $n"; return 1; }
		done
	done
}

# acked_at_least N: the writer of t_leader_kill has N acknowledged writes.
acked_at_least() { [[ $(wc -l <"$D_TMP/acked") -ge $1 ]]; }

# c. kill -9 of the leader during a stream of writes from a surviving node:
# a new leader, every acknowledged write present, the killed node back with
# `cluster start` (its dead mount cleared) and caught up.
t_leader_kill() {
	local leader w other acked="$D_TMP/acked" stopf="$D_TMP/stop-writer"
	local writer i n before after pid rc
	leader=$(d_wait_leader 20) || { echo "no leader"; return 1; }
	w=$((leader % D_NODES + 1))
	other=$(( (w % D_NODES) + 1 ))
	[[ $other -eq $leader ]] && other=$(( (other % D_NODES) + 1 ))
	d_log "leader $leader, writing from node $w, other survivor $other"
	mkdir -p "$(d_mnt "$w")/kill" || return 1
	: >"$acked"
	rm -f "$stopf"
	(
		for i in $(seq 1 100000); do
			[[ -e "$stopf" ]] && break
			if printf 'write %d\n' "$i" >"$(d_mnt "$w")/kill/f$i" 2>/dev/null; then
				echo "$i" >>"$acked"
			fi
		done
	) &
	writer=$!
	d_until 20 acked_at_least 30 || { echo "writes do not progress"; touch "$stopf"; wait "$writer"; return 1; }
	pid=$(d_pid "$leader")
	before=$(wc -l <"$acked")
	kill -9 "$pid"
	d_log "killed node $leader (pid $pid) after $before acknowledged writes"
	n=$(d_wait_leader 30 "$leader")
	rc=$?
	d_log "new leader: ${n:-none}"
	if [[ $rc -eq 0 ]]; then
		d_until 30 acked_at_least $((before + 30))
		rc=$?
	fi
	touch "$stopf"
	wait "$writer"
	after=$(wc -l <"$acked")
	d_log "$after writes acknowledged in all"
	[[ $rc -eq 0 ]] || { echo "no progress after the kill ($before -> $after)"; return 1; }
	# Every acknowledged write is on both survivors.
	for n in "$w" "$other"; do
		while read -r i; do
			[[ "$(timeout 10 cat "$(d_mnt "$n")/kill/f$i")" == "write $i" ]] ||
				{ echo "acknowledged write $i missing on node $n"; return 1; }
		done <"$acked"
	done
	timeout 120 "$D_RAFTFS" cluster start --dir "$D_DIR" --node "$leader" ||
		{ tail -n 20 "$(d_data "$leader")/raftfs.log"; return 1; }
	d_is_mounted "$(d_mnt "$leader")" || { echo "node $leader not mounted again"; return 1; }
	d_until 30 timeout 20 diff -r "$(d_mnt "$leader")/kill" "$(d_mnt "$w")/kill" >/dev/null ||
		{ echo "node $leader did not catch up"; timeout 20 diff -r "$(d_mnt "$leader")/kill" "$(d_mnt "$w")/kill" | head; return 1; }
}

# timed_eio PATH...: on each path, one open(O_CREAT) of PATH/new and one
# open+read of PATH/old, each timed; prints "op errno seconds" lines.
timed_eio() {
	python3 - "$@" <<'PY'
import errno, os, sys, time
for d in sys.argv[1:]:
    for op in ("create", "read"):
        t = time.monotonic()
        try:
            if op == "create":
                os.close(os.open(d + "/new", os.O_CREAT | os.O_WRONLY, 0o644))
            else:
                fd = os.open(d + "/old", os.O_RDONLY)
                os.read(fd, 100)
                os.close(fd)
            e = "ok"
        except OSError as x:
            e = errno.errorcode.get(x.errno, str(x.errno))
        print(op, e, "%.2f" % (time.monotonic() - t))
PY
}

# d. A node cut off with nftables: its operations fail with EIO within the
# operation timeout (each system call) while the majority keeps working;
# healed, it catches up.
t_partition() {
	local leader cut ok_node i touch_rc cat_rc py_pid touch_pid cat_pid
	local out="$D_TMP/eio.out"
	leader=$(d_wait_leader 20) || { echo "no leader"; return 1; }
	cut=$((leader % D_NODES + 1))
	ok_node=$leader
	mkdir -p "$(d_mnt "$ok_node")/part" && echo before >"$(d_mnt "$ok_node")/part/old" || return 1
	d_until 10 test -e "$(d_mnt "$cut")/part/old" || return 1
	d_cut "$cut" || { echo "nft failed"; d_heal; return 1; }
	d_log "cut node $cut off (leader $leader)"
	local limit=$((D_OP_TIMEOUT_S * 3 + 10))
	timeout "$limit" bash -c "$(declare -f timed_eio); timed_eio '$(d_mnt "$cut")/part'" >"$out" 2>&1 &
	py_pid=$!
	timeout "$limit" touch "$(d_mnt "$cut")/part/new" 2>"$D_TMP/touch.err" &
	touch_pid=$!
	timeout "$limit" cat "$(d_mnt "$cut")/part/old" >/dev/null 2>"$D_TMP/cat.err" &
	cat_pid=$!
	# The majority keeps committing meanwhile.
	for i in $(seq 20); do
		echo "m$i" >"$(d_mnt "$ok_node")/part/m$i" || { echo "majority write $i failed"; wait; d_heal; return 1; }
	done
	wait "$py_pid"
	wait "$touch_pid"
	touch_rc=$?
	wait "$cat_pid"
	cat_rc=$?
	d_log "on the cut node: $(tr '\n' ' ' <"$out")| touch exit $touch_rc: $(cat "$D_TMP/touch.err") | cat exit $cat_rc: $(cat "$D_TMP/cat.err")"
	d_heal
	# Each system call: EIO, not before and not long after the timeout.
	awk -v t="$D_OP_TIMEOUT_S" 'NF == 3 { n++; if ($2 != "EIO" || $3 < t - 0.5 || $3 > t + 2) bad++ }
		END { exit !(n == 2 && bad == 0) }' "$out" ||
		{ echo "not EIO within ${D_OP_TIMEOUT_S}s: $(cat "$out")"; return 1; }
	[[ $touch_rc -ne 0 && $touch_rc -ne 124 ]] && grep -q "Input/output error" "$D_TMP/touch.err" ||
		{ echo "touch on the cut node did not fail with EIO"; return 1; }
	[[ $cat_rc -ne 0 && $cat_rc -ne 124 ]] && grep -q "Input/output error" "$D_TMP/cat.err" ||
		{ echo "cat on the cut node did not fail with EIO"; return 1; }
	# Healed: the cut node sees what the majority wrote, and writes again.
	d_until 30 timeout 20 diff -r "$(d_mnt "$cut")/part" "$(d_mnt "$ok_node")/part" >/dev/null ||
		{ echo "node $cut did not catch up"; return 1; }
	echo after >"$(d_mnt "$cut")/part/after" && timeout 10 cmp "$(d_mnt "$ok_node")/part/after" - <<<after
}

# e. Errors: usage (2), a missing mount point, a second serve on a data dir
# in use, a data dir of another cluster (1), each with one line on stderr.
E_DIR=""
E_ERR=""
E_PEERS="1=127.0.0.1:$D_PORT,2=127.0.0.2:$D_PORT,3=127.0.0.3:$D_PORT"

# expect RC CMD...: exit RC with exactly one line on stderr (in $E_ERR).
expect() {
	local want=$1 rc
	shift
	E_DIR="$D_TMP/e"
	E_ERR="$D_TMP/e.err"
	mkdir -p "$E_DIR/m"
	timeout 90 "$@" >"$E_DIR/out" 2>"$E_ERR"
	rc=$?
	[[ $rc -eq $want ]] || { echo "exit $rc, expected $want: $*"; cat "$E_DIR/out" "$E_ERR"; return 1; }
	echo "  exit $rc: $(head -c 300 "$E_ERR")"
	d_one_line "$E_ERR"
}

t_usage_cluster_status() {
	local e="$D_TMP/e"
	expect 2 "$D_RAFTFS" status || return 1
	expect 2 "$D_RAFTFS" status --data "$e/none" --bogus || return 1
	expect 2 "$D_RAFTFS" cluster up || return 1
	expect 2 "$D_RAFTFS" cluster sideways --dir "$e/x" || return 1
	expect 2 "$D_RAFTFS" cluster up --dir "$e/x" --nodes 8 || return 1
	expect 2 "$D_RAFTFS" cluster up --dir "$e/x" --port 65536 || return 1
	expect 2 "$D_RAFTFS" cluster stop --dir "$D_DIR" --node 0 || return 1
	expect 2 "$D_RAFTFS" cluster start --dir "$D_DIR" || return 1
	expect 2 "$D_RAFTFS" cluster down --dir "$D_DIR" --node 1 || return 1
	expect 1 "$D_RAFTFS" cluster start --dir "$D_DIR" --node 4 || return 1
	expect 1 "$D_RAFTFS" cluster start --dir "$e/none" --node 1 || return 1
	expect 1 "$D_RAFTFS" status --data "$e/none" || return 1
}

t_usage_serve() {
	local e="$D_TMP/e"
	expect 2 "$D_RAFTFS" serve || return 1
	expect 2 "$D_RAFTFS" serve --id 1 --data "$e/d" || return 1
	expect 2 "$D_RAFTFS" serve --id 0 --data "$e/d" --mount "$e/m" \
		--listen "127.0.0.1:$((D_PORT + 1))" --peers "$E_PEERS" \
		--certs "$D_DIR/certs" --join || return 1
	expect 2 "$D_RAFTFS" serve --id 1 --data "$e/d" --mount "$e/m" \
		--listen "127.0.0.1:$((D_PORT + 1))" --peers "$E_PEERS" \
		--certs "$D_DIR/certs" || return 1   # neither --bootstrap nor --join
}

# A missing mount point, on a cluster of its own.
t_missing_mount() {
	local e="$D_TMP/e"
	mkdir -p "$e"
	"$D_RAFTFS" certs create --dir "$e/certs" --nodes 3 >/dev/null || return 1
	expect 1 "$D_RAFTFS" serve --id 1 --data "$e/d1" --mount "$e/no-such-dir" \
		--listen "127.0.0.1:$((D_PORT + 1))" --peers "1=127.0.0.1:$((D_PORT + 1))" \
		--certs "$e/certs" --bootstrap || return 1
	grep -qi "mount" "$E_ERR" || { echo "no word about the mount point: $(cat "$E_ERR")"; return 1; }
}

# A second serve on node 2's data dir while node 2 runs.
t_data_dir_in_use() {
	local e="$D_TMP/e"
	expect 1 "$D_RAFTFS" serve --id 2 --data "$(d_data 2)" --mount "$e/m" \
		--listen "127.0.0.2:$((D_PORT + 2))" --peers "$E_PEERS" \
		--certs "$D_DIR/certs" --join || return 1
	grep -qi "in use" "$E_ERR" || { echo "no 'in use': $(cat "$E_ERR")"; return 1; }
	d_is_mounted "$(d_mnt 2)" && kill -0 "$(d_pid 2)" || { echo "node 2 hurt by the second serve"; return 1; }
}

# Node 3's data dir with the certificates of another cluster (made by
# t_missing_mount), then node 3 back with its own.
t_other_cluster() {
	local e="$D_TMP/e" rc=0
	[[ -f "$e/certs/ca.crt" ]] || "$D_RAFTFS" certs create --dir "$e/certs" --nodes 3 >/dev/null || return 1
	timeout 60 "$D_RAFTFS" cluster stop --dir "$D_DIR" --node 3 >/dev/null || return 1
	expect 1 "$D_RAFTFS" serve --id 3 --data "$(d_data 3)" --mount "$(d_mnt 3)" \
		--listen "127.0.0.3:$D_PORT" --peers "$E_PEERS" --certs "$e/certs" --join || rc=1
	[[ $rc -eq 0 ]] && ! grep -qi "cluster" "$E_ERR" && { echo "no word about the cluster: $(cat "$E_ERR")"; rc=1; }
	timeout 120 "$D_RAFTFS" cluster start --dir "$D_DIR" --node 3 >/dev/null ||
		{ echo "node 3 did not come back"; return 1; }
	echo back >"$(d_mnt 3)/e-back" && timeout 10 cmp "$(d_mnt 1)/e-back" - <<<back || return 1
	return $rc
}

# stop of a node killed with -9 (stale pid file, dead mount): exit 0, the
# mount cleared; start brings it back.
t_stop_killed() {
	local out="$D_TMP/stop.out" pid
	pid=$(d_pid 1)
	kill -9 "$pid" || return 1
	d_until 10 eval '! kill -0 '"$pid"' 2>/dev/null' || return 1
	timeout 60 "$D_RAFTFS" cluster stop --dir "$D_DIR" --node 1 >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	grep -q "was not running; its dead mount was cleared" "$out" || return 1
	! grep -q " $(d_mnt 1) " /proc/mounts || { echo "still mounted"; return 1; }
	timeout 120 "$D_RAFTFS" cluster start --dir "$D_DIR" --node 1 >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	d_is_mounted "$(d_mnt 1)" && echo one >"$(d_mnt 1)/stop-killed" &&
		timeout 10 cmp "$(d_mnt 2)/stop-killed" - <<<one
}

# No sanitizer report in any node's log (make check builds them with ASan).
t_logs_clean() {
	local bad
	bad=$(grep -lE "AddressSanitizer|LeakSanitizer|runtime error:" "$D_DIR"/node*/raftfs.log 2>/dev/null)
	[[ -z "$bad" ]] || { grep -hE -A20 "Sanitizer|runtime error:" $bad | head -60; return 1; }
}

# a (end). `cluster down` leaves nothing mounted and no process running;
# down again is fine.
t_down() {
	local out="$D_TMP/down.out"
	timeout 90 "$D_RAFTFS" cluster down --dir "$D_DIR" >"$out" 2>&1 || { cat "$out"; return 1; }
	cat "$out"
	[[ -z "$(d_mounts_under)" ]] || { echo "still mounted: $(d_mounts_under)"; return 1; }
	[[ -z "$(d_leftover_pids)" ]] || { echo "still running: $(d_leftover_pids)"; return 1; }
	timeout 60 "$D_RAFTFS" cluster down --dir "$D_DIR" >"$out" 2>&1 || { cat "$out"; return 1; }
	grep -q "was not running" "$out"
}
