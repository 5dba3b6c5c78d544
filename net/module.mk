# net/: TLS connections, framing and message encoding -> libnet.a
NET_SRCS := $(wildcard net/*.c)
NET_OBJS := $(NET_SRCS:%.c=$(BUILD)/%.o)
DEPFILES += $(NET_OBJS:.o=.d)

$(BUILD)/libnet.a: $(NET_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
