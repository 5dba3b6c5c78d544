/*
 * raftfs snapshot --data DIR: the node running on DIR takes a snapshot now
 * (its fs store synced, its log compacted below it, keeping the configured
 * tail) and prints its index and size.
 *
 * raftfs snapshot --data DIR --out FILE: a backup instead: the node,
 * once it has applied every change committed before the request, writes
 * its tree to FILE (fs/backup.c: a version and checksums; FILE must not
 * exist) and prints the index and the file's size. The log is not
 * compacted. FILE is written by the node's process: a relative name is
 * taken from this directory.
 *
 * raftfs snapshot --connect HOST:PORT --certs DIR: the first form, asked
 * over TLS with the administrator's certificate. A backup names a file on
 * the node's machine: only with --data.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/commands.h"
#include "tools/daemon.h"

#define ANSWER_TIMEOUT_MS 70000
#define BACKUP_TIMEOUT_MS (3600 * 1000)

int cmd_snapshot(int argc, char **argv);

static int usage(void)
{
	fprintf(stderr, "usage: raftfs snapshot --data DIR [--out FILE] | "
			"raftfs snapshot --connect HOST:PORT --certs DIR\n");
	return EXIT_USAGE;
}

static int snapshot_remote(const char *address, const char *certs)
{
	char err[512], *answer;
	size_t len;
	int status = EXIT_OK;

	if (admin_remote_call(address, certs, ADMIN_KIND_CONTROL, "snapshot",
			      ANSWER_TIMEOUT_MS, &answer, &len, err,
			      sizeof(err)) != 0) {
		fprintf(stderr, "raftfs snapshot: %s\n", err);
		return EXIT_FAIL;
	}
	if (strncmp(answer, "error: ", 7) == 0) {
		fprintf(stderr, "raftfs snapshot: %s", answer + 7);
		status = EXIT_FAIL;
	} else {
		fwrite(answer, 1, len, stdout);
	}
	free(answer);
	return status;
}

int cmd_snapshot(int argc, char **argv)
{
	const char *data = NULL, *outfile = NULL, *connect = NULL,
		   *certs = NULL;
	char request[4200], cwd[PATH_MAX];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc && !data)
			data = argv[++i];
		else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc &&
			 !connect)
			connect = argv[++i];
		else if (strcmp(argv[i], "--certs") == 0 && i + 1 < argc &&
			 !certs)
			certs = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc &&
			 !outfile)
			outfile = argv[++i];
		else
			return usage();
	}
	if (connect != NULL && certs != NULL && data == NULL &&
	    outfile == NULL)
		return snapshot_remote(connect, certs);
	if (data == NULL || connect != NULL || certs != NULL)
		return usage();
	if (outfile == NULL)
		return control_print("snapshot", data, "snapshot",
				     ANSWER_TIMEOUT_MS);
	if (outfile[0] == '\0' || strchr(outfile, '\n') != NULL)
		return usage();
	if (outfile[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
		perror("raftfs snapshot: getcwd");
		return EXIT_FAIL;
	}
	if ((size_t)snprintf(request, sizeof(request), "backup %s%s%s",
			     outfile[0] == '/' ? "" : cwd,
			     outfile[0] == '/' ? "" : "/",
			     outfile) >= 4096) {
		fprintf(stderr, "raftfs snapshot: --out: path too long\n");
		return EXIT_USAGE;
	}
	return control_print("snapshot", data, request, BACKUP_TIMEOUT_MS);
}
