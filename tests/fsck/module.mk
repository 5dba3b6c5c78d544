# tests/fsck/: fsckdata, the tool the fsck suite (tests/suites/50-fsck) and
# the scale run (tests/long/soak/50-fsck) use to build real data dirs through
# the fs store and log store APIs and to damage a stopped node's stores.
FSCKDATA := $(BUILD)/tests/fsck/fsckdata
TEST_BINS += $(FSCKDATA)
DEPFILES += $(BUILD)/tests/fsck/fsckdata.d

$(FSCKDATA): $(BUILD)/tests/fsck/fsckdata.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(MODULE_LIBS) $(PKG_LIBS)
