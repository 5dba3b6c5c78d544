# tests/runtime/: the Raft runtime's tests. harness.c (an in-process cluster
# of runtimes over a loopback transport, real stores) is linked into every
# build/tests/runtime/test_* and into the programs listed in RT_PROGS.
RT_TEST_HELPER_SRCS := tests/runtime/harness.c
RT_TEST_HELPER_OBJS := $(RT_TEST_HELPER_SRCS:%.c=$(BUILD)/%.o)
RT_TEST_BINS := $(filter $(BUILD)/tests/runtime/%,$(UNIT_BINS))
RT_PROGS := $(BUILD)/tests/runtime/crashnode $(BUILD)/tests/runtime/bench_runtime \
	$(BUILD)/tests/runtime/bench_read
DEPFILES += $(RT_TEST_HELPER_OBJS:.o=.d) $(RT_PROGS:%=%.d)
TEST_BINS += $(RT_PROGS)

$(RT_TEST_BINS): $(RT_TEST_HELPER_OBJS)
$(RT_TEST_BINS): TEST_LIB_OBJS += $(RT_TEST_HELPER_OBJS)

$(RT_PROGS): $(BUILD)/tests/runtime/%: $(BUILD)/tests/runtime/%.o $(RT_TEST_HELPER_OBJS) $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(RT_TEST_HELPER_OBJS) $(MODULE_LIBS) $(PKG_LIBS)
