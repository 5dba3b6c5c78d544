/*
 * raftfs certs create|add|renew: argument parsing and messages only; the
 * certificates are made by net/ (net_certs_*).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "tools/commands.h"

int cmd_certs(int argc, char **argv);

static void usage(void)
{
	fprintf(stderr, "usage: raftfs certs create --dir DIR --nodes N\n"
			"       raftfs certs add --dir DIR --node ID\n"
			"       raftfs certs renew --dir DIR --node ID\n");
}

/* A decimal number in 1..max, the whole string. */
static int parse_count(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int cmd_certs(int argc, char **argv)
{
	const char *dir = NULL, *count = NULL;
	const char *count_flag = NULL;
	char err[512];
	uint64_t n;
	int rc;
	if (argc < 2) {
		usage();
		return EXIT_USAGE;
	}
	const char *verb = argv[1];
	bool create = !strcmp(verb, "create");
	if (!create && strcmp(verb, "add") && strcmp(verb, "renew")) {
		fprintf(stderr, "raftfs certs: unknown action '%s'\n", verb);
		usage();
		return EXIT_USAGE;
	}
	const char *want = create ? "--nodes" : "--node";
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc) {
			fprintf(stderr, "raftfs certs: %s needs a value\n",
				argv[i]);
			return EXIT_USAGE;
		}
		if (!strcmp(argv[i], "--dir")) {
			dir = argv[i + 1];
		} else if (!strcmp(argv[i], want)) {
			count = argv[i + 1];
			count_flag = argv[i];
		} else {
			fprintf(stderr, "raftfs certs %s: unknown option '%s'\n",
				verb, argv[i]);
			usage();
			return EXIT_USAGE;
		}
	}
	if (dir == NULL || count == NULL) {
		fprintf(stderr, "raftfs certs %s: needs --dir and %s\n", verb,
			want);
		usage();
		return EXIT_USAGE;
	}
	if (parse_count(count, NET_MAX_NODE_ID, &n) < 0) {
		fprintf(stderr, "raftfs certs %s: %s must be a number in 1..%u\n",
			verb, count_flag, NET_MAX_NODE_ID);
		return EXIT_USAGE;
	}
	if (create)
		rc = net_certs_create(dir, (uint32_t)n, err, sizeof(err));
	else if (!strcmp(verb, "add"))
		rc = net_certs_add(dir, n, err, sizeof(err));
	else
		rc = net_certs_renew(dir, n, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "raftfs certs %s: %s\n", verb, err);
		return EXIT_FAIL;
	}
	if (create) {
		struct net_identity id;
		char path[4096];
		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		if (net_cert_identity(path, &id, err, sizeof(err)) < 0) {
			fprintf(stderr, "raftfs certs create: %s\n", err);
			return EXIT_FAIL;
		}
		printf("cluster %s: %s/ca.crt, node1..node%" PRIu64
		       ".crt/.key, admin.crt/.key\n",
		       id.cluster_id, dir, n);
	} else {
		printf("%s/node%" PRIu64 ".crt, %s/node%" PRIu64 ".key\n", dir,
		       n, dir, n);
	}
	return EXIT_OK;
}
