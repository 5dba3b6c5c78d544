# tests/bench: benchmark programs (run by `make bench`, never by make test).
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
DEPFILES += $(BENCH_SRCS:%.c=$(BUILD)/%.d)
TEST_BINS += $(BENCH_BINS)

$(BENCH_BINS): $(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(MODULE_LIBS) $(PKG_LIBS)

# logstore_sizes-inline: the same benchmark with every payload in LevelDB
# (the log store built with a threshold no entry reaches), for comparison.
DEPFILES += $(BUILD)/tests/bench/logstore-inline.d
TEST_BINS += $(BUILD)/tests/bench/logstore_sizes-inline

$(BUILD)/tests/bench/logstore-inline.o: raft/logstore.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DRAFT_LOGSTORE_SEGMENT_MIN_BYTES=0xffffffffu $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/tests/bench/logstore_sizes-inline: $(BUILD)/tests/bench/logstore_sizes.o \
		$(BUILD)/tests/bench/logstore-inline.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
