# tests/: unit tests (cmocka), simulator, end-to-end, fuzz and bench programs.
#
# Every tests/<dir>/test_*.c is one cmocka program build/tests/<dir>/test_*,
# linked with tests/lib and all module libraries. Folders that build something
# else (the simulator, fuzz targets, benchmarks) add a tests/<dir>/module.mk.

TEST_LIB_SRCS := $(wildcard tests/lib/*.c)
TEST_LIB_OBJS := $(TEST_LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/*/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
DEPFILES += $(TEST_LIB_OBJS:.o=.d) $(UNIT_SRCS:%.c=$(BUILD)/%.d)
TEST_BINS += $(UNIT_BINS)

# Fragments may add libraries every unit test links (TEST_EXTRA_LIBS, e.g.
# the simulator's), so they are read before the unit rule.
TEST_EXTRA_LIBS :=
-include $(wildcard tests/*/module.mk)

$(UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_LIB_OBJS) $(TEST_EXTRA_LIBS) $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIB_OBJS) $(TEST_EXTRA_LIBS) $(MODULE_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS)

# Long runs. Each has bounded defaults; a target whose module is not built
# yet says so in one line.
sim: tests
	@tests/long-run sim

soak: tests
	@tests/long-run soak

chaos: tests
	@tests/long-run chaos

fuzz: tests
	@tests/long-run fuzz

# make bench: the comparison suite of docs/BENCHMARKS.md (local disk,
# passthrough_ll, raftfs leader/follower/relaxed, consensus, failover,
# catch-up, RSS, lock latency); BENCH_QUICK=1 for a short unrecorded run.
# bench-check compares the two latest recorded runs of this machine (fails on a
# regression of more than 15 %). bench-modules: each module's own benchmark
# (tests/long/bench/).
bench: all $(BUILD)/tests/runtime/bench_runtime
	@BUILD=$(BUILD) tests/bench/suite.py

bench-large: all $(BUILD)/tests/runtime/bench_runtime
	@BUILD=$(BUILD) BENCH_LARGE=1 tests/bench/suite.py

bench-check:
	@tests/bench/check.py $(if $(BENCH_OUT),$(BENCH_OUT),docs/bench)

bench-modules: tests
	@tests/long-run bench

