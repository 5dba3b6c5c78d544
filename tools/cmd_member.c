/*
 * raftfs member add ID=HOST:PORT --data DIR | member remove ID --data DIR
 * raftfs leader transfer [ID] --data DIR
 * (or --connect HOST:PORT --certs DIR instead of --data DIR)
 *
 * Asked of the node running on DIR (its control socket), which has the
 * leader carry out the change and reports its progress line by line
 * (tools/membership.c); the last line of its answer, "exit N", is the exit
 * status. A new member must be running `raftfs serve --join` (with --peers
 * naming the cluster) so that the leader can reach it.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/commands.h"
#include "tools/daemon.h"

/* A catch-up of a big tree reports every 2 s; silence this long is a
 * dead node. */
#define IDLE_TIMEOUT_MS (120 * 1000)
/* Over TLS the answer comes whole: a catch-up may take this long. */
#define REMOTE_TIMEOUT_MS (15 * 60 * 1000)

int cmd_member(int argc, char **argv);
int cmd_leader(int argc, char **argv);

/* Prints every line but "exit N", which it keeps. */
struct printer {
	char line[1024];
	size_t len;
	int exit_status;
};

static void print_line(struct printer *p)
{
	int status;

	p->line[p->len] = '\0';
	if (sscanf(p->line, "exit %d", &status) == 1 && p->len < 12)
		p->exit_status = status;
	else if (strncmp(p->line, "error: ", 7) == 0)
		fprintf(stderr, "raftfs: %s\n", p->line + 7);
	else
		printf("%s\n", p->line);
	fflush(stdout);
	p->len = 0;
}

static void on_chunk(void *ctx, const char *s, size_t n)
{
	struct printer *p = ctx;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' || p->len + 1 == sizeof(p->line))
			print_line(p);
		if (s[i] != '\n')
			p->line[p->len++] = s[i];
	}
}

/* The last line, and the exit status the answer ended with. */
static int finish(const char *what, struct printer *p)
{
	if (p->len > 0)
		print_line(p);
	if (p->exit_status < 0) {
		fprintf(stderr, "raftfs %s: the node stopped answering before "
				"the change finished; check 'raftfs status'\n",
			what);
		return EXIT_FAIL;
	}
	return p->exit_status;
}

static int run(const char *what, const char *data, const char *request)
{
	struct printer p = {"", 0, -1};
	char err[512];

	if (control_request_stream(data, request, IDLE_TIMEOUT_MS, on_chunk, &p,
				   err, sizeof(err)) != 0) {
		fprintf(stderr, "raftfs %s: %s\n", what, err);
		return EXIT_FAIL;
	}
	return finish(what, &p);
}

/* The same request over TLS (--connect): the whole answer at its end. */
static int run_remote(const char *what, const char *address,
		      const char *certs, const char *request)
{
	struct printer p = {"", 0, -1};
	char err[512], *answer;
	size_t len;

	if (admin_remote_call(address, certs, ADMIN_KIND_CONTROL, request,
			      REMOTE_TIMEOUT_MS, &answer, &len, err,
			      sizeof(err)) != 0) {
		fprintf(stderr, "raftfs %s: %s\n", what, err);
		return EXIT_FAIL;
	}
	on_chunk(&p, answer, len);
	free(answer);
	return finish(what, &p);
}

static bool parse_id(const char *s, uint64_t *id)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '1' || *s > '9')
		return false;
	v = strtoull(s, &end, 10);
	if (*end != '\0' && *end != '=')
		return false;
	if (v == 0 || v > NET_MAX_NODE_ID)
		return false;
	*id = v;
	return true;
}

/* ID=HOST:PORT */
static bool parse_member(const char *s, uint64_t *id, const char **address)
{
	const char *eq = strchr(s, '=');
	const char *colon;

	if (!parse_id(s, id) || eq == NULL)
		return false;
	*address = eq + 1;
	colon = strrchr(*address, ':');
	if (colon == NULL || colon == *address || colon[1] == '\0' ||
	    strlen(*address) >= RAFT_MAX_ADDRESS)
		return false;
	for (const char *c = *address; *c; c++)
		if (*c <= ' ' || *c > '~')
			return false;
	return true;
}

/* Where to ask: --data DIR (the control socket), or --connect
 * HOST:PORT with --certs DIR (TLS, the administrator's certificate). */
struct target {
	const char *data, *connect, *certs;
};

/* The target options anywhere after the subcommand; the one free
 * argument. */
static bool split_args(int argc, char **argv, int first, struct target *t,
		       const char **arg)
{
	*t = (struct target){NULL, NULL, NULL};
	*arg = NULL;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			t->data = argv[++i];
		else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
			t->connect = argv[++i];
		else if (strcmp(argv[i], "--certs") == 0 && i + 1 < argc)
			t->certs = argv[++i];
		else if (*arg == NULL && argv[i][0] != '-')
			*arg = argv[i];
		else
			return false;
	}
	if (t->data != NULL)
		return t->connect == NULL && t->certs == NULL;
	return t->connect != NULL && t->certs != NULL;
}

static int ask(const char *what, const struct target *t, const char *request)
{
	if (t->data != NULL)
		return run(what, t->data, request);
	return run_remote(what, t->connect, t->certs, request);
}

int cmd_member(int argc, char **argv)
{
	struct target t;
	const char *arg, *address;
	char request[300];
	uint64_t id;

	if (argc >= 2 && strcmp(argv[1], "add") == 0 &&
	    split_args(argc, argv, 2, &t, &arg) && arg != NULL &&
	    parse_member(arg, &id, &address)) {
		snprintf(request, sizeof(request), "member add %" PRIu64 " %s",
			 id, address);
		return ask("member add", &t, request);
	}
	if (argc >= 2 && strcmp(argv[1], "remove") == 0 &&
	    split_args(argc, argv, 2, &t, &arg) && arg != NULL &&
	    parse_id(arg, &id) && strchr(arg, '=') == NULL) {
		snprintf(request, sizeof(request), "member remove %" PRIu64, id);
		return ask("member remove", &t, request);
	}
	fprintf(stderr, "usage: raftfs member add ID=HOST:PORT | member "
			"remove ID, then --data DIR or --connect HOST:PORT "
			"--certs DIR\n");
	return EXIT_USAGE;
}

int cmd_leader(int argc, char **argv)
{
	struct target t;
	const char *arg;
	char request[64];
	uint64_t id = 0;

	if (argc >= 2 && strcmp(argv[1], "transfer") == 0 &&
	    split_args(argc, argv, 2, &t, &arg) &&
	    (arg == NULL || (parse_id(arg, &id) && strchr(arg, '=') == NULL))) {
		snprintf(request, sizeof(request), "leader transfer %" PRIu64,
			 id);
		return ask("leader transfer", &t, request);
	}
	fprintf(stderr, "usage: raftfs leader transfer [ID] (--data DIR | "
			"--connect HOST:PORT --certs DIR)\n");
	return EXIT_USAGE;
}
