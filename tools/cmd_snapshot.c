/*
 * raftfs snapshot --data DIR: the node running on DIR takes a snapshot now
 * (its fs store synced, its log compacted below it, keeping the configured
 * tail) and prints its index and size.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/daemon.h"

#define ANSWER_TIMEOUT_MS 70000

int cmd_snapshot(int argc, char **argv);

int cmd_snapshot(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--data") != 0) {
		fprintf(stderr, "usage: raftfs snapshot --data DIR\n");
		return EXIT_USAGE;
	}
	return control_print("snapshot", argv[2], "snapshot", ANSWER_TIMEOUT_MS);
}
