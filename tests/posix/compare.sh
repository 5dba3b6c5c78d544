#!/usr/bin/env bash
# The POSIX comparison (issue 15): one sequence of operations run in two
# directories, one on the local disk and one on a raftfs mount, and every
# difference of their results reported.
#
#   tests/posix/compare.sh OPS_FILE LOCAL_DIR RAFTFS_DIR OUT_DIR
#
# OPS_FILE has one step per line (blank lines and lines starting with # are
# skipped), run with the directory as the working directory:
#   op ARGS...      posix_op (tests/posix/posix_op.c): OK [value] or an errno
#   sh COMMAND      a shell command (ordinary tools); its output and status
#   u STEP          STEP as uid/gid 4242 (no supplementary groups)
#   tsnap PATH      remember PATH's atime, mtime and ctime
#   tcmp PATH       which of them changed since its tsnap (same/newer/older)
#   state           every entry: type, mode, links, size (not of dirs), owner,
#                   content hash, symlink target, xattrs
# A step ending in "@gapN" may differ: it shows known gap N of docs/FUSE.md.
# A step ending in "@local" may differ because of a limit of the local
# disk's file system that POSIX does not ask for (ext4: an xattr value must
# fit in one block, so 64 KiB values are ENOSPC there); each is reported.
#
# Output: OUT_DIR/local.out and OUT_DIR/raftfs.out (one line per step), and
# on stdout every step whose results differ. Exit 0 when the only
# differences are on @gap and @local steps and every such step does differ
# (a gap that is gone must leave docs/FUSE.md); 1 otherwise.
set -uo pipefail
ops=$(realpath "$1") dirs=("$2" "$3") out=$4
OP=$(realpath "${POSIX_OP:-${BUILD:-build}/tests/posix/posix_op}")
U_ID=4242

# A step's output, one line.
run_step() {
	local kind=$1 rest=$2 prefix=()
	if [[ $kind == u ]]; then
		prefix=(setpriv --reuid=$U_ID --regid=$U_ID --clear-groups)
		kind=${rest%% *}
		rest=${rest#"$kind"}
		rest=${rest# }
	fi
	case $kind in
	op) # shellcheck disable=SC2086 # the step's words
		"${prefix[@]}" "$OP" $rest 2>&1 ;;
	sh) "${prefix[@]}" bash -c "$rest" 2>&1; echo "rc=$?" ;;
	tsnap) stat -c '%.9X %.9Y %.9Z' "$rest" > "$tdir/snap$(echo "$rest" | tr / _)" 2>&1; echo snap ;;
	tcmp)
		local a b n
		read -r -a a < "$tdir/snap$(echo "$rest" | tr / _)"
		read -r -a b < <(stat -c '%.9X %.9Y %.9Z' "$rest")
		for n in 0 1 2; do
			if [[ "${a[n]}" == "${b[n]}" ]]; then printf '%s=same ' "${name[n]}"
			elif [[ $(echo "${b[n]} > ${a[n]}" | bc) == 1 ]]; then printf '%s=newer ' "${name[n]}"
			else printf '%s=older ' "${name[n]}"; fi
		done
		echo ;;
	state)
		find . -mindepth 1 | LC_ALL=C sort | while read -r f; do
			local t h=""
			t=$(stat -c '%F %a %h %u:%g' "$f")
			[[ -f "$f" && ! -L "$f" ]] && h="size=$(stat -c %s "$f") sha=$(sha256sum < "$f" | cut -c1-12)"
			[[ -L "$f" ]] && h="-> $(readlink "$f")"
			printf '%s: %s %s %s; ' "$f" "$t" "$h" \
				"$(getfattr -h -d -m - --absolute-names -e hex "$f" 2>/dev/null | grep -v '^#' | sed '/^$/d' | tr '\n' ' ')"
		done
		echo ;;
	*) echo "compare.sh: unknown step '$kind'" >&2; return 2 ;;
	esac
}

name=(atime mtime ctime)
mkdir -p "$out"
for side in 0 1; do
	tdir=$(mktemp -d)
	(
		cd "${dirs[side]}" || exit 2
		umask 022
		ln=0
		while IFS= read -r line; do
			ln=$((ln + 1))
			[[ -z "$line" || $line == \#* ]] && continue
			step=${line%@gap*}
			step=${step%@local}
			step=${step%"${step##*[! ]}"}
			kind=${step%% *}
			rest=${step#"$kind"}
			rest=${rest# }
			printf '%d\t%s\t%s\n' "$ln" "$line" "$(run_step "$kind" "$rest" | tr '\n\0' '|.')"
		done < "$ops"
	) > "$out/$([[ $side == 0 ]] && echo local || echo raftfs).out"
	rm -rf "$tdir"
done

rc=0 steps=0 diffs=0 gaps=0 locals=0
declare -A gap_seen=()
while IFS=$'\t' read -r ln line a && IFS=$'\t' read -r ln2 _ b <&3; do
	steps=$((steps + 1))
	[[ $ln == "$ln2" ]] || { echo "compare.sh: the two runs went out of step at line $ln"; exit 1; }
	gap=""
	[[ $line =~ @gap([0-9]+)$ ]] && gap=${BASH_REMATCH[1]}
	[[ $line =~ @local$ ]] && gap=local
	if [[ "$a" != "$b" ]]; then
		if [[ $gap == local ]]; then
			locals=$((locals + 1))
			echo "a limit of the local disk, line $ln: $line"
		elif [[ -n $gap ]]; then
			gaps=$((gaps + 1))
			gap_seen[$gap]=1
			echo "gap $gap (docs/FUSE.md), line $ln: $line"
		else
			diffs=$((diffs + 1))
			rc=1
			echo "DIFFERENCE, line $ln: $line"
		fi
		echo "    local:  $a"
		echo "    raftfs: $b"
	elif [[ -n $gap ]]; then
		echo "GAP GONE, line $ln: '$line' is the same on both: update docs/FUSE.md and the step"
		rc=1
	fi
done < "$out/local.out" 3< "$out/raftfs.out"
echo "compare: $steps steps, $diffs unexplained differences, $gaps on known gaps (${!gap_seen[*]}), $locals on limits of the local disk"
exit $rc
