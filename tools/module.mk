# tools/: the raftfs command (one binary, many subcommands)
TOOLS_SRCS := $(wildcard tools/*.c)
TOOLS_OBJS := $(TOOLS_SRCS:%.c=$(BUILD)/%.o)
DEPFILES += $(TOOLS_OBJS:.o=.d)

# Link order: tools -> fs -> net -> raft.
MODULE_LIBS := $(BUILD)/libfs.a $(BUILD)/libnet.a $(BUILD)/libraft.a

$(BUILD)/raftfs: $(TOOLS_OBJS) $(MODULE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(TOOLS_OBJS) $(MODULE_LIBS) $(PKG_LIBS)

# `make run`: a local 3-node cluster with mounts, in the git-ignored run/.
run: all
	@BUILD=$(BUILD) tools/run-cluster
