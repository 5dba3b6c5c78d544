# tests/sim: the cluster simulator as a library (used by the scenario tests)
# and the raftsim program; raftsim-bugs links a build of the Raft core with
# the test-only deliberate bugs compiled in (RAFT_TEST_BUGS), to show the
# checks can fail.
SIM_LIB_SRCS := tests/sim/cluster.c tests/sim/checker.c tests/sim/figure8.c \
	tests/sim/machine.c tests/sim/log.c
SIM_LIB_OBJS := $(SIM_LIB_SRCS:%.c=$(BUILD)/%.o)
SIM_LIB := $(BUILD)/tests/sim/libsim.a
DEPFILES += $(SIM_LIB_OBJS:.o=.d) $(BUILD)/tests/sim/main.d
TEST_EXTRA_LIBS += $(SIM_LIB)
TEST_BINS += $(BUILD)/tests/sim/raftsim $(BUILD)/tests/sim/raftsim-bugs

$(SIM_LIB): $(SIM_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/sim/raftsim: $(BUILD)/tests/sim/main.o $(SIM_LIB) $(BUILD)/libraft.a
	$(CC) $(LDFLAGS) -o $@ $^

# The core again, with the deliberate bugs available.
BUGS_RAFT_OBJS := $(RAFT_SRCS:%.c=$(BUILD)/testbugs/%.o)
DEPFILES += $(BUGS_RAFT_OBJS:.o=.d)

$(BUILD)/testbugs/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DRAFT_TEST_BUGS $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/testbugs/libraft.a: $(BUGS_RAFT_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/sim/raftsim-bugs: $(BUILD)/tests/sim/main.o $(SIM_LIB) $(BUILD)/testbugs/libraft.a
	$(CC) $(LDFLAGS) -o $@ $^
