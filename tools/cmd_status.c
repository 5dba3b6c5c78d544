/*
 * raftfs status --data DIR [--json]: ask the node running on DIR, through
 * its control socket, for the cluster's status as it sees it (it asks the
 * other members and takes replication progress from the leader). A node
 * that is not running: exit 1.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/daemon.h"

#define ANSWER_TIMEOUT_MS 10000

int cmd_status(int argc, char **argv);

static int usage(void)
{
	fprintf(stderr, "usage: raftfs status --data DIR [--json]\n");
	return EXIT_USAGE;
}

int cmd_status(int argc, char **argv)
{
	const char *data = NULL;
	bool json = false;
	char err[512], *answer;
	size_t len;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			data = argv[++i];
		} else {
			fprintf(stderr, "raftfs status: unexpected argument "
					"'%s'; usage: raftfs status --data DIR "
					"[--json]\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (data == NULL)
		return usage();
	if (control_request(data, json ? "status json" : "status text",
			    ANSWER_TIMEOUT_MS, &answer, &len, err,
			    sizeof(err)) != 0) {
		fprintf(stderr, "raftfs status: %s\n", err);
		return EXIT_FAIL;
	}
	if (strncmp(answer, "error: ", 7) == 0) {
		fprintf(stderr, "raftfs status: %s", answer + 7);
		free(answer);
		return EXIT_FAIL;
	}
	fwrite(answer, 1, len, stdout);
	free(answer);
	return EXIT_OK;
}
