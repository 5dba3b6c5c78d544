# raftfs — one non-recursive Makefile; each folder adds its part in module.mk.
#
#   make            build build/raftfs (installs missing Debian packages first)
#   make test       every suite of docs/TESTING.md, within its time budget
#   make check      the same tests built with AddressSanitizer + UBSan
#   make run        a local 3-node cluster with mounts
#   make sim|soak|chaos|fuzz|bench   long runs with bounded defaults
#   make bench-check  fail on a > 15 % regression between the two latest
#                     recorded benchmark runs (docs/bench/)
#   make install    PREFIX=/usr/local DESTDIR= UNITDIR=$(PREFIX)/lib/systemd/system
#   make clean

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
UNITDIR  ?= $(PREFIX)/lib/systemd/system
CC       ?= gcc
OPT      ?= -O2
SANITIZE ?=

.DEFAULT_GOAL := all

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wwrite-strings \
	-Wimplicit-fallthrough -fno-common

# Package flags come from pkg-config, which only works once the -dev packages
# are there; $(BUILD)/config.mk is generated (after tools/install-deps) and
# make restarts with it. Debian's LevelDB ships no .pc file.
NO_CONFIG_GOALS := clean help bench-check
ifeq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
else
-include $(BUILD)/config.mk
endif

# LevelDB is linked statically so that raft/crc32c.c's hardware CRC-32C
# replaces the library's table-driven one (Debian builds it without its
# hardware path): -u makes the linker take that definition from libraft.a
# before it searches libleveldb.a. A binary without libraft.a gets LevelDB's
# own. LevelDB needs libsnappy and libstdc++ when linked statically.
LEVELDB_LIBS := -Wl,-u,_ZN7leveldb6crc32c6ExtendEjPKcm \
	-Wl,-Bstatic -lleveldb -Wl,-Bdynamic -lsnappy -lstdc++

$(BUILD)/config.mk: tools/install-deps Makefile
	@mkdir -p $(@D)
	@tools/install-deps
	@{ echo "PKG_CFLAGS := $$(pkg-config --cflags fuse3 openssl cmocka)"; \
	   echo "PKG_LIBS := $$(pkg-config --libs fuse3 openssl) $(LEVELDB_LIBS) -lpthread"; \
	   echo "CMOCKA_LIBS := $$(pkg-config --libs cmocka)"; } > $@.tmp
	@mv $@.tmp $@

ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
OPT := -O1
endif

CFLAGS := -std=gnu11 -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=314 \
	$(WARN) $(OPT) -g $(SAN_FLAGS) -MMD -MP -I. $(EXTRA_CFLAGS)
LDFLAGS := $(SAN_FLAGS) $(EXTRA_LDFLAGS)

# Every object is built the same way; the module fragments only list sources.
$(BUILD)/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

# Filled by the fragments.
LIBS_ALL :=
TEST_BINS :=
TOOL_BINS :=
DEPFILES :=

include raft/module.mk
include net/module.mk
include fs/module.mk
include tools/module.mk
include tests/module.mk

-include $(DEPFILES)

.PHONY: all deps test check run sim soak chaos fuzz bench bench-large bench-check \
	bench-modules install clean help tests

all: $(BUILD)/raftfs $(TOOL_BINS)

deps:
	@tools/install-deps

tests: all $(TEST_BINS)

# The runner prints each suite's summary and wall time and ends with one line
# "N passed, N failed"; it fails when any suite fails or the budget is blown.
# Its first suite (00-build) builds everything, so the build is timed too.
test: deps
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) MAKE="$(MAKE)" tests/run $(SUITES)

check:
	@$(MAKE) --no-print-directory BUILD=build/check SANITIZE=1 test

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/raftfs $(DESTDIR)$(PREFIX)/bin/raftfs
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' tools/systemd/raftfs@.service \
		>$(DESTDIR)$(UNITDIR)/raftfs@.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/raftfs@.service.tmp
	mv $(DESTDIR)$(UNITDIR)/raftfs@.service.tmp $(DESTDIR)$(UNITDIR)/raftfs@.service

clean:
	rm -rf build

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'
