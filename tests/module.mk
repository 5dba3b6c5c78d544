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

bench: tests
	@tests/long-run bench

