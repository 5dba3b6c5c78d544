# tests/fsx/: fsx, the random data-integrity exerciser (one file, compared
# with an in-memory copy after every operation) for tests/suites/76-integrity
# and the soak run tests/long/soak/76-integrity.
FSX := $(BUILD)/tests/fsx/fsx
TEST_BINS += $(FSX)
DEPFILES += $(BUILD)/tests/fsx/fsx.d

$(FSX): $(BUILD)/tests/fsx/fsx.o
	$(CC) $(LDFLAGS) -o $@ $<
