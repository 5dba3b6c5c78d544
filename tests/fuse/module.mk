# tests/fuse/: localfs, a single-node raftfs mount without Raft: the FUSE
# front end over the local proposer and a store in a data directory. Used by
# tests/suites/55-fuse-local.
LOCALFS := $(BUILD)/tests/fuse/localfs
TEST_BINS += $(LOCALFS)
DEPFILES += $(BUILD)/tests/fuse/localfs.d

$(LOCALFS): $(BUILD)/tests/fuse/localfs.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(MODULE_LIBS) $(PKG_LIBS)
