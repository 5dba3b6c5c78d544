# tests/fs/: helpers shared by the fs test programs (the reference model and
# the command generator), linked into every build/tests/fs/test_*.
FS_TEST_HELPER_SRCS := tests/fs/model.c tests/fs/fs_test.c
FS_TEST_HELPER_OBJS := $(FS_TEST_HELPER_SRCS:%.c=$(BUILD)/%.o)
FS_TEST_BINS := $(filter $(BUILD)/tests/fs/%,$(UNIT_BINS))
DEPFILES += $(FS_TEST_HELPER_OBJS:.o=.d)

$(FS_TEST_BINS): $(FS_TEST_HELPER_OBJS)
$(FS_TEST_BINS): TEST_LIB_OBJS += $(FS_TEST_HELPER_OBJS)
