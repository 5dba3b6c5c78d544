# Shared helpers for the suites in tests/suites/ (sourced, not run).
# A suite counts its checks with check/run_cmocka and ends with suite_end,
# which prints the "N passed, N failed" line tests/run reads.

SUITE_PASSED=0
SUITE_FAILED=0

# check NAME CMD...: one check, passed when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then
		SUITE_PASSED=$((SUITE_PASSED + 1))
		echo "PASS $name"
	else
		SUITE_FAILED=$((SUITE_FAILED + 1))
		echo "FAIL $name"
	fi
}

# run_cmocka BIN [ARGS...]: a cmocka program from tests/lib/test_main.h; its
# own "N passed, N failed" line is added to the suite's counts.
run_cmocka() {
	local bin=$1 out line p f rc
	shift
	out=$(mktemp)
	"$bin" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [[ -z "$line" ]]; then
		echo "FAIL $bin: exited $rc without a summary"
		SUITE_FAILED=$((SUITE_FAILED + 1))
		return
	fi
	p=${line%% passed*}
	f=${line#*, }
	f=${f%% failed*}
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		f=1
	fi
	SUITE_PASSED=$((SUITE_PASSED + p))
	SUITE_FAILED=$((SUITE_FAILED + f))
}

# scale N: a count scaled down for sanitizer builds (they run ~4x slower).
scale() {
	if [[ "${SANITIZE:-}" == "1" ]]; then
		echo $(($1 / 4 > 0 ? $1 / 4 : 1))
	else
		echo "$1"
	fi
}

suite_end() {
	echo "$SUITE_PASSED passed, $SUITE_FAILED failed"
	[[ $SUITE_FAILED -eq 0 ]]
}
