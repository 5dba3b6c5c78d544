# tests/lazyfs: the power-loss filesystem layer (docs/POWER_LOSS.md) and
# ldbcrash, LevelDB's own crash check on it.
LAZYFS_OBJS := $(BUILD)/tests/lazyfs/lazyfs.o $(BUILD)/tests/lazyfs/state.o
DEPFILES += $(LAZYFS_OBJS:.o=.d) $(BUILD)/tests/lazyfs/ldbcrash.d
TEST_BINS += $(BUILD)/tests/lazyfs/lazyfs $(BUILD)/tests/lazyfs/ldbcrash

$(BUILD)/tests/lazyfs/lazyfs: $(LAZYFS_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/lazyfs/ldbcrash: $(BUILD)/tests/lazyfs/ldbcrash.o
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
