# raft/: the pure consensus core, its log store and driver -> libraft.a
RAFT_SRCS := $(wildcard raft/*.c)
RAFT_OBJS := $(RAFT_SRCS:%.c=$(BUILD)/%.o)
DEPFILES += $(RAFT_OBJS:.o=.d)

$(BUILD)/libraft.a: $(RAFT_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
