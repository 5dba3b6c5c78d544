# Power-loss cycles of the Raft log store on lazyfs (sourced by
# tests/suites/45-powerloss and tests/long/soak/45-powerloss; needs
# tests/lazyfs/lazyfs.sh, BUILD, LZ_TMP and SEED).
#
# One cycle: mount lazyfs, start plstore writing (synced batches, term
# changes, compactions) into a store on it, let it run 10-90 ms, power loss
# (every other one with the newest write torn), SIGKILL the writer, mount
# again and check that the store opens cleanly with every acknowledged
# write. The store and the acknowledgements carry over to the next cycle.

# logstore_cycles BIN CYCLES NAME: 0 when every cycle's check passed.
# With STOP_AT_LOSS=1 it returns 0 at the first cycle that loses an
# acknowledged write (and 1 if none does): the skipped-sync run. That run
# starts from a store the normal build created and wrote (then a clean
# unmount), so what it must catch is lost entries, not a lost header.
# (The shell may report a writer's "Bus error": LevelDB touching a mapped
# table file after the power went, just before it is killed.)
logstore_cycles() {
	local bin=$1 cycles=$2 name=$3 c ms w kind rc i
	local b="$LZ_TMP/$name/backing" m="$LZ_TMP/$name/mnt" acks="$LZ_TMP/$name/acks"
	mkdir -p "$b" "$m"
	RANDOM=$SEED
	if [[ "${STOP_AT_LOSS:-0}" == 1 ]]; then
		lazyfs_mount "$b" "$m" "$LZ_TMP/lazyfs.log" || return 1
		"$BUILD/tests/powerloss/plstore" write "$m/log" "$acks" "$SEED" 2>/dev/null &
		w=$!
		sleep 0.1
		kill -9 "$w"
		wait "$w" 2>/dev/null
		lazyfs_umount "$m" || return 1
	fi
	for ((c = 1; c <= cycles; c++)); do
		lazyfs_mount "$b" "$m" "$LZ_TMP/lazyfs.log" || return 1
		"$bin" write "$m/log" "$acks" $((SEED + c)) 2>>"$LZ_TMP/$name/writer.log" &
		w=$!
		# Crash points start once a store exists: main's log store is
		# not yet created atomically (a crash inside its creation
		# leaves a store that is refused; docs/POWER_LOSS.md).
		for ((i = 0; i < 500; i++)); do
			grep -q '^o' "$acks" 2>/dev/null && break
			sleep 0.01
		done
		ms=$((10 + RANDOM % 80))
		sleep "0.$(printf %03d $ms)"
		if ((c % 2 == 0)) && [[ "${STOP_AT_LOSS:-0}" != 1 ]]; then
			kind="tear seed $((SEED + c))"
			lazyfs_crash "$m" $((SEED + c)) || return 1
		else
			kind="crash"
			lazyfs_crash "$m" || return 1
		fi
		kill -9 "$w" 2>/dev/null
		wait "$w" 2>/dev/null
		lazyfs_mount "$b" "$m" "$LZ_TMP/lazyfs.log" || return 1
		"$BUILD/tests/powerloss/plstore" check "$m/log" "$acks" >"$LZ_TMP/$name/check.out" 2>&1
		rc=$?
		lazyfs_umount "$m" || return 1
		if [[ "${STOP_AT_LOSS:-0}" == 1 ]]; then
			if ((rc != 0)); then
				echo "cycle $c ($kind after ${ms} ms): the loss was caught:"
				cat "$LZ_TMP/$name/check.out"
				return 0
			fi
			continue
		fi
		if ((rc != 0)); then
			echo "cycle $c ($kind after ${ms} ms, SEED=$SEED) lost acknowledged writes:"
			cat "$LZ_TMP/$name/check.out"
			return 1
		fi
	done
	if [[ "${STOP_AT_LOSS:-0}" == 1 ]]; then
		echo "$cycles power losses and no acknowledged write lost: not caught"
		return 1
	fi
	echo "$cycles power losses; last check: $(cat "$LZ_TMP/$name/check.out")"
	echo "acknowledged: $(grep -c '^e' "$acks") entry writes," \
		"$(grep -c '^h' "$acks") term changes, $(grep -c '^c' "$acks") compactions"
}
