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
#include <unistd.h>

#include "tools/commands.h"
#include "tools/daemon.h"

#define ANSWER_TIMEOUT_MS 10000

int cmd_status(int argc, char **argv);

static int usage(void)
{
	fprintf(stderr, "usage: raftfs status --data DIR [--json] | raftfs "
			"status --connect HOST:PORT --certs DIR [--json]\n");
	return EXIT_USAGE;
}

/* The same, asked of a node over TLS with the administrator's
 * certificate (CERTS/admin.crt and admin.key, CERTS/ca.crt). */
static int status_remote(const char *address, const char *certs, bool json)
{
	char err[512], *answer;
	size_t len;

	if (admin_remote_call(address, certs, ADMIN_KIND_STATUS,
			      json ? "json" : "text", ANSWER_TIMEOUT_MS,
			      &answer, &len, err, sizeof(err)) != 0) {
		fprintf(stderr, "raftfs status: %s\n", err);
		return EXIT_FAIL;
	}
	fwrite(answer, 1, len, stdout);
	free(answer);
	return EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
	const char *data = NULL, *connect = NULL, *certs = NULL;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			data = argv[++i];
		} else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
			connect = argv[++i];
		} else if (strcmp(argv[i], "--certs") == 0 && i + 1 < argc) {
			certs = argv[++i];
		} else {
			fprintf(stderr, "raftfs status: unexpected argument "
					"'%s'; usage: raftfs status --data DIR "
					"[--json]\n",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (connect != NULL && certs != NULL && data == NULL)
		return status_remote(connect, certs, json);
	if (data == NULL || connect != NULL || certs != NULL)
		return usage();
	return control_print("status", data, json ? "status json" : "status text",
			     ANSWER_TIMEOUT_MS);
}
