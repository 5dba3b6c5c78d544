/* The list of subcommands; each new command adds one line here. */
#include <stddef.h>

#include "tools/commands.h"

const struct command raftfs_commands[] = {
	{NULL, NULL, NULL},
};
