# tests/fuzz/: libFuzzer targets, built with clang (-fsanitize=fuzzer,address)
# from the sources they test, independent of the gcc-built libraries.
#
#   build/tests/fuzz/fuzz_frame   the frame decoder (net/codec.c)
#
# Run by tests/long/fuzz/* (`make fuzz`, FUZZ_SECONDS, default 600) and for
# 30 seconds by the suite tests/suites/30-net.

FUZZ_CC ?= clang
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -I. $(WARN)

FUZZ_FRAME := $(BUILD)/tests/fuzz/fuzz_frame
TEST_BINS += $(FUZZ_FRAME)

$(FUZZ_FRAME): tests/fuzz/fuzz_frame.c net/codec.c net/net.h net/bytes.h \
		raft/raft.h | deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_frame.c net/codec.c
