# tests/bench: benchmark programs (run by `make bench`, never by make test).
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)
DEPFILES += $(BENCH_SRCS:%.c=$(BUILD)/%.d)
TEST_BINS += $(BENCH_BINS)

$(BENCH_BINS): $(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(MODULE_LIBS) $(PKG_LIBS)
