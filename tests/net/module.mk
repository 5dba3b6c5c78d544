# tests/net/: besides the cmocka programs (test_*.c, built by tests/module.mk)
# the transport benchmark, run by tests/long/bench/30-net-tls (`make bench`).

BENCH_NET := $(BUILD)/tests/net/bench_net
TEST_BINS += $(BENCH_NET)
DEPFILES += $(BUILD)/tests/net/bench_net.d

$(BENCH_NET): $(BUILD)/tests/net/bench_net.o $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(MODULE_LIBS) $(PKG_LIBS)
