#!/usr/bin/env bash
# counter.sh FILE N: N times, under `flock -x` on FILE itself, read the
# number in FILE and write it back plus one (tests/suites/75-locks).
set -u
f=$1
n=$2
for ((i = 0; i < n; i++)); do
	flock -x "$f" bash -c 'read -r v <"$1" && echo $((v + 1)) >"$1"' _ "$f" ||
		exit 1
done
