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
	char ca[4200], crt[4200], key[4200], err[512];
	struct net_client_options o = {0};
	struct net_admin_msg req = {0}, resp;
	uint8_t *buf = malloc(NET_MAX_ADMIN_PAYLOAD_BYTES + 1);
	int rc;

	if (buf == NULL)
		return EXIT_FAIL;
	snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
	snprintf(crt, sizeof(crt), "%s/admin.crt", certs);
	snprintf(key, sizeof(key), "%s/admin.key", certs);
	o.ca_file = ca;
	o.cert_file = crt;
	o.key_file = key;
	o.timeout_ms = ANSWER_TIMEOUT_MS;
	req.kind = ADMIN_KIND_STATUS;
	req.request_id = 1;
	req.payload = (const uint8_t *)(json ? "json" : "text");
	req.payload_bytes = 4;
	/* A busy node (4 slow requests at once) says so: ask again. */
	for (int tries = 0; tries < 20; tries++) {
		rc = net_admin_call(address, &o, &req, buf,
				    NET_MAX_ADMIN_PAYLOAD_BYTES, &resp, err,
				    sizeof(err));
		if (rc != 0 || resp.payload_bytes != 5 ||
		    memcmp(resp.payload, "busy\n", 5) != 0)
			break;
		usleep(100 * 1000);
	}
	if (rc != 0) {
		fprintf(stderr, "raftfs status: %s\n", err);
		free(buf);
		return EXIT_FAIL;
	}
	fwrite(resp.payload, 1, resp.payload_bytes, stdout);
	free(buf);
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
