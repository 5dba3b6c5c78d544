# fs/: the filesystem state machine, its store and the FUSE front end -> libfs.a
FS_SRCS := $(wildcard fs/*.c)
FS_OBJS := $(FS_SRCS:%.c=$(BUILD)/%.o)
DEPFILES += $(FS_OBJS:.o=.d)

$(BUILD)/libfs.a: $(FS_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
