/* The list of subcommands; each new command adds one line here. */
#include <stddef.h>

#include "tools/commands.h"

int cmd_certs(int argc, char **argv); /* tools/cmd_certs.c */
int cmd_fsck(int argc, char **argv);  /* tools/cmd_fsck.c */

const struct command raftfs_commands[] = {
	{"certs", "create|add|renew the cluster's certificates", cmd_certs},
	{"fsck", "check a stopped node's stores; --resync marks it", cmd_fsck},
	{NULL, NULL, NULL},
};
