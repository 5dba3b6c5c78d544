# tests/powerloss: the Raft log store under power loss on lazyfs
# (docs/POWER_LOSS.md). plstore-nosync links a log store built with the
# test-only RAFT_LOGSTORE_TEST_SKIP_SYNC (its writes, LevelDB batches and
# segment files alike, are not synced), to
# show the power-loss check catches a missing sync.
DEPFILES += $(BUILD)/tests/powerloss/plstore.d \
	$(BUILD)/tests/powerloss/logstore-nosync.d \
	$(BUILD)/tests/powerloss/logstore-segment-write-nosync.d
TEST_BINS += $(BUILD)/tests/powerloss/plstore $(BUILD)/tests/powerloss/plstore-nosync

$(BUILD)/tests/powerloss/plstore: $(BUILD)/tests/powerloss/plstore.o $(BUILD)/libraft.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/powerloss/logstore-nosync.o: raft/logstore.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DRAFT_LOGSTORE_TEST_SKIP_SYNC $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/tests/powerloss/logstore-segment-write-nosync.o: raft/logstore_segment_write.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DRAFT_LOGSTORE_TEST_SKIP_SYNC $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/tests/powerloss/plstore-nosync: $(BUILD)/tests/powerloss/plstore.o \
		$(BUILD)/tests/powerloss/logstore-nosync.o \
		$(BUILD)/tests/powerloss/logstore-segment-write-nosync.o $(BUILD)/libraft.a
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
