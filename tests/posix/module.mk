# tests/posix/: posix_op, one system call from the command line (renameat2
# with its flags, xattrs with a given buffer size, SEEK_DATA/SEEK_HOLE, ...)
# for tests/suites/65-posix.
POSIX_OP := $(BUILD)/tests/posix/posix_op
TEST_BINS += $(POSIX_OP)
DEPFILES += $(BUILD)/tests/posix/posix_op.d

$(POSIX_OP): $(BUILD)/tests/posix/posix_op.o
	$(CC) $(LDFLAGS) -o $@ $<
