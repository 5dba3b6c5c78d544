# tests/fs/: helpers shared by the fs test programs (the reference model and
# the command generator), linked into every build/tests/fs/test_*.
FS_TEST_HELPER_SRCS := tests/fs/model.c tests/fs/fs_test.c
FS_TEST_HELPER_OBJS := $(FS_TEST_HELPER_SRCS:%.c=$(BUILD)/%.o)
FS_TEST_BINS := $(filter $(BUILD)/tests/fs/%,$(UNIT_BINS))
DEPFILES += $(FS_TEST_HELPER_OBJS:.o=.d)

$(FS_TEST_BINS): $(FS_TEST_HELPER_OBJS)
$(FS_TEST_BINS): TEST_LIB_OBJS += $(FS_TEST_HELPER_OBJS)

# The apply and snapshot benchmark, run by tests/long/bench/20-fs (make bench).
BENCH_FS := $(BUILD)/tests/fs/bench_fs
TEST_BINS += $(BENCH_FS)
DEPFILES += $(BUILD)/tests/fs/bench_fs.d

$(BENCH_FS): $(BUILD)/tests/fs/bench_fs.o $(FS_TEST_HELPER_OBJS) $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(FS_TEST_HELPER_OBJS) $(MODULE_LIBS) $(PKG_LIBS)
