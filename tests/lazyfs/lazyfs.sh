# Helpers for tests that run on lazyfs (sourced, not run). Every mount made
# here is recorded and lazyfs_cleanup (install it in an EXIT trap) unmounts
# it and kills its daemon, also when a test fails.
#
#   lazyfs_mount BACKING MNT LOG   start lazyfs, wait until mounted
#   lazyfs_crash MNT [SEED]        power loss (torn last write with SEED)
#   lazyfs_umount MNT              clean unmount (everything written)
#   lazyfs_cleanup                 unmount and kill whatever is left

LAZYFS_BIN=${LAZYFS_BIN:-${BUILD:-build}/tests/lazyfs/lazyfs}
declare -A LAZYFS_PIDS=()

# Wait (at most 10 s) for the daemon of MNT to exit; kill it after that.
_lazyfs_reap() {
	local mnt=$1 pid=${LAZYFS_PIDS[$1]:-} i
	[[ -n "$pid" ]] || return 0
	for ((i = 0; i < 1000; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "lazyfs on $mnt did not exit; killing $pid" >&2
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	unset "LAZYFS_PIDS[$mnt]"
	# A daemon that died leaves a dead mount (ENOTCONN): clear it.
	if mountpoint -q "$mnt" 2>/dev/null || ! stat "$mnt" >/dev/null 2>&1; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	fi
	return 0
}

lazyfs_mount() {
	local backing=$1 mnt=$2 log=$3 i pid
	"$LAZYFS_BIN" "$backing" "$mnt" >>"$log" 2>&1 &
	pid=$!
	LAZYFS_PIDS[$mnt]=$pid
	for ((i = 0; i < 200; i++)); do
		if mountpoint -q "$mnt" && [[ -e "$mnt/.lazyfs" ]]; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "lazyfs exited before mounting $mnt:" >&2
			tail -n 5 "$log" >&2
			_lazyfs_reap "$mnt"
			return 1
		fi
		sleep 0.01
	done
	echo "lazyfs did not mount $mnt within 2 s" >&2
	return 1
}

lazyfs_crash() {
	local mnt=$1 seed=${2:-}
	if [[ -n "$seed" ]]; then
		echo "tear $seed" >"$mnt/.lazyfs" || return 1
	else
		echo crash >"$mnt/.lazyfs" || return 1
	fi
	_lazyfs_reap "$mnt"
}

lazyfs_umount() {
	local mnt=$1
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	_lazyfs_reap "$mnt"
}

lazyfs_cleanup() {
	local mnt pid
	for mnt in "${!LAZYFS_PIDS[@]}"; do
		pid=${LAZYFS_PIDS[$mnt]}
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
		kill "$pid" 2>/dev/null
		_lazyfs_reap "$mnt"
	done
}
