# The layer's own checks (sourced by tests/suites/45-powerloss): each one
# mounts lazyfs over a fresh backing dir in $LZ_TMP, does something, crashes
# or unmounts, mounts again and looks at what survived. Each returns 0 when
# the model of docs/POWER_LOSS.md held.

_lz_case=0
# Fresh backing dir and mount point: sets B and M, mounts.
lz_fresh() {
	_lz_case=$((_lz_case + 1))
	B="$LZ_TMP/c$_lz_case/backing"
	M="$LZ_TMP/c$_lz_case/mnt"
	mkdir -p "$B" "$M"
	lazyfs_mount "$B" "$M" "$LZ_TMP/lazyfs.log"
}

lz_remount() { lazyfs_mount "$B" "$M" "$LZ_TMP/lazyfs.log"; }

# A synced file: content and entry made durable (file and directory fsync).
lz_durable_file() {
	printf '%s' "$2" >"$M/$1" && sync "$M/$1" && sync "$(dirname "$M/$1")"
}

unsynced_data_lost() {
	lz_fresh || return 1
	lz_durable_file f old || return 1
	printf 'new data' >"$M/f"
	[[ "$(cat "$M/f")" == "new data" ]] || { echo "not visible before the crash"; return 1; }
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/f")" == old ]] || { echo "got: $(cat "$M/f")"; return 1; }
	lazyfs_umount "$M"
}

synced_data_kept() {
	lz_fresh || return 1
	lz_durable_file f old || return 1
	printf 'fsynced' >"$M/f" && sync "$M/f" || return 1
	printf 'fdatasynced' >"$M/g" && sync -d "$M/g" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/f")" == fsynced && "$(cat "$M/g")" == fdatasynced ]] || return 1
	lazyfs_umount "$M"
}

new_entry_without_sync_lost() {
	lz_fresh || return 1
	mkdir "$M/d" && sync "$M/d" && sync "$M" || return 1
	printf x >"$M/d/a" && mkdir "$M/d/sub" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ -d "$M/d" && ! -e "$M/d/a" && ! -e "$M/d/sub" ]] || { ls -la "$M/d"; return 1; }
	lazyfs_umount "$M"
}

new_entry_kept_by_file_fsync() {
	lz_fresh || return 1
	mkdir -p "$M/d/e" || return 1
	printf data >"$M/d/e/a" && sync "$M/d/e/a" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/d/e/a")" == data ]] || { ls -laR "$M"; return 1; }
	lazyfs_umount "$M"
}

new_entry_kept_by_dir_fsync() {
	lz_fresh || return 1
	printf data >"$M/a" && sync "$M" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	# The entry is durable, its unsynced data is not.
	[[ -f "$M/a" && ! -s "$M/a" ]] || { ls -la "$M"; return 1; }
	lazyfs_umount "$M"
}

rename_without_sync_lost() {
	lz_fresh || return 1
	lz_durable_file a one && lz_durable_file b two || return 1
	mv "$M/a" "$M/c" && mv -f "$M/b" "$M/c" || return 1
	[[ "$(cat "$M/c")" == two && ! -e "$M/a" ]] || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/a")" == one && "$(cat "$M/b")" == two && ! -e "$M/c" ]] || { ls -la "$M"; return 1; }
	lazyfs_umount "$M"
}

rename_kept_by_dir_fsync() {
	lz_fresh || return 1
	lz_durable_file tmp new && lz_durable_file cur old || return 1
	mv -f "$M/tmp" "$M/cur" && sync "$M" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/cur")" == new && ! -e "$M/tmp" ]] || { ls -la "$M"; return 1; }
	lazyfs_umount "$M"
}

unlink_without_sync_lost() {
	lz_fresh || return 1
	mkdir "$M/d" && lz_durable_file d/a keep && sync "$M" || return 1
	rm "$M/d/a" && rmdir "$M/d" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/d/a")" == keep ]] || return 1
	rm "$M/d/a" && sync "$M/d" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ -d "$M/d" && ! -e "$M/d/a" ]] || return 1
	lazyfs_umount "$M"
}

truncate_without_sync_lost() {
	lz_fresh || return 1
	lz_durable_file f 0123456789 || return 1
	truncate -s 4 "$M/f" && truncate -s 6 "$M/f" || return 1
	[[ "$(od -An -c "$M/f" | tr -d ' \n')" == '0123\0\0' ]] || { od -c "$M/f"; return 1; }
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/f")" == 0123456789 ]] || return 1
	truncate -s 3 "$M/f" && sync "$M/f" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ "$(cat "$M/f")" == 012 ]] || return 1
	lazyfs_umount "$M"
}

# The newest unsynced write lands torn: a prefix of it over the old bytes.
torn_last_write() {
	local seed=$1 k size
	lz_fresh || return 1
	head -c 1000 /dev/zero | tr '\0' A >"$M/f" && sync "$M/f" || return 1
	head -c 3000 /dev/zero | tr '\0' B |
		dd of="$M/f" bs=3000 seek=500 oflag=seek_bytes conv=notrunc status=none || return 1
	lazyfs_crash "$M" "$seed" && lz_remount || return 1
	k=$(tr -d A <"$M/f" | wc -c)
	size=$(stat -c %s "$M/f")
	echo "seed $seed: torn to $k of 3000 bytes, size $size"
	# A's, then k B's from offset 500, then the old A's up to 1000.
	((k < 3000)) || return 1
	[[ "$(head -c 500 "$M/f" | tr -d A | wc -c)" == 0 ]] || return 1
	[[ "$(tail -c +501 "$M/f" | head -c "$k" | tr -d B | wc -c)" == 0 ]] || return 1
	((size == (500 + k > 1000 ? 500 + k : 1000))) || return 1
	lazyfs_umount "$M"
}

clean_unmount_writes_everything() {
	lz_fresh || return 1
	mkdir -p "$M/x/y" && printf abc >"$M/x/y/f" && mv "$M/x/y/f" "$M/x/g" || return 1
	lazyfs_umount "$M" && lz_remount || return 1
	[[ "$(cat "$M/x/g")" == abc && -d "$M/x/y" && ! -e "$M/x/y/f" ]] || return 1
	lazyfs_umount "$M"
}

# A Unix socket (a daemon's control socket in its data dir) binds, takes
# connections and is unlinked like on a disk; it lives in memory only, so
# neither a crash nor a clean unmount leaves it, and the files beside it
# keep the model. Renaming it is refused (not modelled).
socket_in_memory_only() {
	lz_fresh || return 1
	mkdir -p "$M/d" && lz_durable_file d/f kept || return 1
	python3 - "$M/d/s.sock" <<'PY' || return 1
import os, socket, stat, sys, threading
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(p)
os.chmod(p, 0o600)
s.listen(1)
st = os.stat(p)
assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
assert sorted(os.listdir(os.path.dirname(p))) == ["f", "s.sock"]
def serve():
    c, _ = s.accept()
    c.sendall(c.recv(16).upper())
    c.close()
t = threading.Thread(target=serve)
t.start()
c = socket.socket(socket.AF_UNIX)
c.connect(p)
c.sendall(b"ping")
assert c.recv(16) == b"PING"
t.join()
try:
    os.rename(p, p + ".x")
    sys.exit("renaming a socket worked")
except PermissionError:
    pass
s.close()
os.unlink(p)      # a stale socket replaced, as a daemon does at start
s = socket.socket(socket.AF_UNIX)
s.bind(p)
PY
	[[ -S "$M/d/s.sock" ]] || { echo "the socket is gone before the crash"; return 1; }
	sync "$M/d" || return 1
	lazyfs_crash "$M" && lz_remount || return 1
	[[ ! -e "$M/d/s.sock" && "$(cat "$M/d/f")" == kept ]] || { echo "after the crash: $(ls "$M/d")"; return 1; }
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$M/d/s.sock" || return 1
	lazyfs_umount "$M" || return 1
	[[ ! -e "$B/d/s.sock" && "$(cat "$B/d/f")" == kept ]] || { echo "backing: $(ls "$B/d")"; return 1; }
}

# Random writes, truncates, renames and unlinks give the same contents on
# lazyfs as on a plain directory (the current view is right) and, after a
# clean unmount, in the backing dir.
same_view_as_plain_dir() {
	local seed=$1 plain="$LZ_TMP/plain$1" i op a b off len
	lz_fresh || return 1
	mkdir -p "$plain"
	RANDOM=$seed
	for ((i = 0; i < 150; i++)); do
		a=f$((RANDOM % 6)) b=f$((RANDOM % 6))
		off=$((RANDOM % 20000)) len=$((RANDOM % 9000 + 1))
		op=$((RANDOM % 10))
		head -c "$len" /dev/urandom >"$LZ_TMP/chunk$i"
		for root in "$M" "$plain"; do
			case $op in
			0 | 1 | 2 | 3 | 4)
				dd if="$LZ_TMP/chunk$i" of="$root/$a" bs="$len" seek="$off" \
					oflag=seek_bytes conv=notrunc status=none ;;
			5) [[ -e "$root/$a" ]] && truncate -s "$off" "$root/$a" ;;
			6) [[ -e "$root/$a" && $a != "$b" ]] && mv -f "$root/$a" "$root/$b" ;;
			7) rm -f "$root/$a" ;;
			8) [[ -e "$root/$a" ]] && sync "$root/$a" ;;
			9) sync "$root" ;;
			esac
		done
		rm -f "$LZ_TMP/chunk$i"
	done
	diff -r "$M" "$plain" >/dev/null || { echo "seed $seed: views differ"; diff -rq "$M" "$plain"; return 1; }
	lazyfs_umount "$M" || return 1
	diff -r "$B" "$plain" >/dev/null || { echo "seed $seed: backing differs after unmount"; return 1; }
}
