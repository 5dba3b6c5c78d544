/* The list of subcommands; each new command adds one line here. */
#include <stddef.h>

#include "tools/commands.h"

int cmd_certs(int argc, char **argv); /* tools/cmd_certs.c */
int cmd_fsck(int argc, char **argv);  /* tools/cmd_fsck.c */
int cmd_serve(int argc, char **argv); /* tools/serve.c */
int cmd_status(int argc, char **argv); /* tools/cmd_status.c */
int cmd_member(int argc, char **argv); /* tools/cmd_member.c */
int cmd_leader(int argc, char **argv); /* tools/cmd_member.c */
int cmd_snapshot(int argc, char **argv); /* tools/cmd_snapshot.c */
int cmd_cluster(int argc, char **argv); /* tools/cmd_cluster.c */

const struct command raftfs_commands[] = {
	{"certs", "create|add|renew the cluster's certificates", cmd_certs},
	{"cluster", "up|start|stop|down a local cluster on 127.0.0.N", cmd_cluster},
	{"fsck", "check a stopped node's stores; --resync marks it", cmd_fsck},
	{"serve", "run one node: its log, its peers and its mount", cmd_serve},
	{"status", "the cluster as a running node sees it", cmd_status},
	{"member", "add ID=HOST:PORT | remove ID: change the members", cmd_member},
	{"leader", "transfer [ID]: hand leadership to another voter", cmd_leader},
	{"snapshot", "take a snapshot now: sync the tree, compact the log", cmd_snapshot},
	{NULL, NULL, NULL},
};
