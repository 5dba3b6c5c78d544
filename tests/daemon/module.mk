# build/tests/daemon/raftfs-stall: raftfs with the test hook of
# fs/fuse_session.c (RAFTFS_TEST_STALL_READ: a FUSE_READ at or past 1 GiB is
# never answered), for tests/suites/61-mount-guard only; the product binary
# build/raftfs never has it.
STALL_OBJ := $(BUILD)/tests/daemon/fuse_session_stall.o
DEPFILES += $(STALL_OBJ:.o=.d)

$(STALL_OBJ): fs/fuse_session.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -DRAFTFS_TEST_STALL_READ -c $< -o $@

# The explicit object comes before libfs.a: its fuse_session.o is not used.
$(BUILD)/tests/daemon/raftfs-stall: $(TOOLS_OBJS) $(STALL_OBJ) $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(TOOLS_OBJS) $(STALL_OBJ) $(MODULE_LIBS) $(PKG_LIBS)

TEST_BINS += $(BUILD)/tests/daemon/raftfs-stall
