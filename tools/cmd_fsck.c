/*
 * raftfs fsck: the offline check of a stopped node's data dir and the
 * RESYNC request (../shared/DESIGN.md "Command-line contract";
 * docs/FSCK.md). The checking is fs_fsck_data_dir's; this file parses
 * arguments, prints problems as text or JSON, shows progress and maps the
 * outcome to the exit status: 0 clean, 1 problems found, 2 usage, 3 could
 * not check.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "tools/commands.h"
#include "tools/daemon.h"

enum { EXIT_CANNOT_CHECK = 3 };

/* A check point hashes every replica's tree: minutes for large trees. */
#define CLUSTER_CHECK_TIMEOUT_MS (30 * 60 * 1000)

int cmd_fsck(int argc, char **argv);

struct out {
	bool json;
	uint64_t printed;
	double last_progress; /* seconds, monotonic */
	double start;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A JSON string: quotes, backslashes and control bytes escaped; bytes
 * above 0x7f as \u00XX, so any name gives valid JSON. */
static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void on_problem(void *ctx, const struct fs_fsck_problem *p)
{
	struct out *o = ctx;

	if (o->json) {
		printf("%s\n    {\"store\": ", o->printed ? "," : "");
		json_str(p->store);
		printf(", \"code\": ");
		json_str(p->code);
		printf(", \"ino\": %" PRIu64 ", \"path\": ", p->ino);
		if (p->path != NULL)
			json_str(p->path);
		else
			printf("null");
		printf(", \"index\": %" PRIu64 ", \"detail\": ", p->index);
		json_str(p->detail);
		printf("}");
	} else {
		printf("%s %s", p->store, p->code);
		if (p->ino != 0)
			printf(" ino=%" PRIu64, p->ino);
		if (p->path != NULL)
			printf(" path=%s", p->path);
		if (p->index != 0)
			printf(" index=%" PRIu64, p->index);
		printf(": %s\n", p->detail);
	}
	o->printed++;
}

/* A line on stderr at most every 2 seconds, so small trees print none. */
static void on_progress(void *ctx, const char *phase, uint64_t done,
			uint64_t total)
{
	struct out *o = ctx;
	double t = now_s();

	if (t - o->last_progress < 2.0)
		return;
	o->last_progress = t;
	if (total > 0)
		fprintf(stderr, "fsck: %s %" PRIu64 " of %" PRIu64 " (%.0f s)\n",
			phase, done, total, t - o->start);
	else
		fprintf(stderr, "fsck: %s %" PRIu64 " (%.0f s)\n", phase, done,
			t - o->start);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: raftfs fsck --data DIR [--json] [--window-inodes N]\n"
		"       raftfs fsck --data DIR --resync\n"
		"       raftfs fsck --cluster --data DIR [--repair]\n");
}

/* A running node holds DIR/LOCK; checking under it would race apply. */
static int node_running(const char *dir)
{
	char path[4096];
	int fd, busy = 0;

	if (snprintf(path, sizeof(path), "%s/LOCK", dir) >= (int)sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		busy = 1;
	close(fd);
	return busy;
}

static int run_check(const char *dir, bool json, uint64_t window)
{
	struct out o = {json, 0, 0, 0};
	struct fs_fsck_options opt = {window, on_problem, on_progress, &o};
	struct fs_fsck_summary sum;
	char err[512] = "";
	int rc;

	o.start = o.last_progress = now_s();
	if (node_running(dir)) {
		fprintf(stderr,
			"raftfs fsck: the node using %s is running (its LOCK "
			"is held); stop it first\n", dir);
		return EXIT_CANNOT_CHECK;
	}
	if (json) {
		printf("{\n  \"data\": ");
		json_str(dir);
		printf(",\n  \"problems\": [");
	}
	rc = fs_fsck_data_dir(dir, &opt, &sum, err, sizeof(err));
	if (json) {
		printf("%s],\n", o.printed ? "\n  " : "");
		if (rc != 0) {
			printf("  \"clean\": false,\n  \"error\": ");
			json_str(err);
			printf("\n}\n");
		} else {
			printf("  \"clean\": %s,\n  \"problem_count\": %" PRIu64
			       ",\n  \"formatted\": %s,\n  \"applied_index\": %"
			       PRIu64 ",\n  \"inodes\": %" PRIu64
			       ",\n  \"entries\": %" PRIu64
			       ",\n  \"passes\": %" PRIu64 ",\n  \"log\": "
			       "{\"first_index\": %" PRIu64
			       ", \"last_index\": %" PRIu64
			       ", \"snapshot_index\": %" PRIu64
			       ", \"segments\": %" PRIu64 "}\n}\n",
			       sum.problems ? "false" : "true", sum.problems,
			       sum.formatted ? "true" : "false",
			       sum.applied_index, sum.inodes, sum.entries,
			       sum.passes, sum.log_first_index,
			       sum.log_last_index, sum.log_snapshot_index,
			       sum.log_segments);
		}
	}
	fflush(stdout);
	if (rc != 0) {
		fprintf(stderr, "raftfs fsck: could not check %s: %s\n", dir,
			err);
		return EXIT_CANNOT_CHECK;
	}
	if (!json)
		printf("fsck %s: %" PRIu64 " problem%s; %" PRIu64
		       " inodes, %" PRIu64 " entries, applied index %" PRIu64
		       ", log %" PRIu64 "..%" PRIu64 " (snapshot %" PRIu64
		       ")\n", dir, sum.problems, sum.problems == 1 ? "" : "s",
		       sum.inodes, sum.entries, sum.applied_index,
		       sum.log_first_index, sum.log_last_index,
		       sum.log_snapshot_index);
	return sum.problems ? EXIT_FAIL : EXIT_OK;
}

static int run_resync(const char *dir)
{
	char err[512] = "";

	if (fs_data_dir_request_resync(dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "raftfs fsck: %s\n", err);
		return EXIT_FAIL;
	}
	printf("marked %s/RESYNC: on its next start the node sets its fs "
	       "store aside and rebuilds the tree by replaying its log (refused, "
	       "old store kept, when the log was compacted)\n", dir);
	return EXIT_OK;
}

/* fsck --cluster: the node running on dir does the work
 * (tools/cluster_check.c); its answer starts with "exit N". */
static int run_cluster_check(const char *dir, bool json, bool repair)
{
	char err[512], *answer, *body;
	size_t len;
	int status;

	if (control_request(dir, json ? (repair ? "fsck cluster json repair"
					        : "fsck cluster json")
				      : (repair ? "fsck cluster text repair"
					        : "fsck cluster text"),
			    CLUSTER_CHECK_TIMEOUT_MS, &answer, &len, err,
			    sizeof(err)) != 0) {
		fprintf(stderr, "raftfs fsck --cluster: %s\n", err);
		return EXIT_CANNOT_CHECK;
	}
	if (sscanf(answer, "exit %d", &status) != 1 ||
	    (body = strchr(answer, '\n')) == NULL) {
		fprintf(stderr, "raftfs fsck --cluster: %s", answer);
		free(answer);
		return EXIT_CANNOT_CHECK;
	}
	body++;
	if (strncmp(body, "error: ", 7) == 0)
		fprintf(stderr, "raftfs fsck --cluster: %s", body + 7);
	else
		fputs(body, stdout);
	free(answer);
	(void)len;
	return status;
}

int cmd_fsck(int argc, char **argv)
{
	const char *dir = NULL;
	bool json = false, resync = false, cluster = false, repair = false;
	uint64_t window = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--data") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--resync")) {
			resync = true;
		} else if (!strcmp(a, "--cluster")) {
			cluster = true;
		} else if (!strcmp(a, "--repair")) {
			repair = true;
		} else if (!strcmp(a, "--window-inodes") && i + 1 < argc) {
			char *end;
			errno = 0;
			window = strtoull(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || window == 0 ||
			    argv[i][0] == '-') {
				fprintf(stderr, "raftfs fsck: --window-inodes "
						"takes a positive number\n");
				return EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "raftfs fsck: unexpected argument "
					"'%s'\n", a);
			usage();
			return EXIT_USAGE;
		}
	}
	if (dir == NULL || (resync && (json || cluster || repair)) ||
	    (repair && !cluster)) {
		usage();
		return EXIT_USAGE;
	}
	if (cluster)
		return run_cluster_check(dir, json, repair);
	if (resync)
		return run_resync(dir);
	return run_check(dir, json, window);
}
