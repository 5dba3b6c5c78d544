/*
 * The arguments of `raftfs serve` (../shared/DESIGN.md "Command-line
 * contract"): every value is checked here, before anything is opened.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage_err(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int usage_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/* "host:port" with a port in 1..65535 and a printable host. */
static bool address_is_valid(const char *a)
{
	const char *colon = strrchr(a, ':');
	uint64_t port;

	if (colon == NULL || colon == a || strlen(a) >= RAFT_MAX_ADDRESS)
		return false;
	for (const char *p = a; p < colon; p++)
		if (*p <= ' ' || *p > '~' || *p == ',' || *p == '=')
			return false;
	return parse_u64(colon + 1, 65535, &port) && port > 0;
}

static int parse_peers(const char *list, struct serve_args *a, char *err,
		       size_t size)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		struct serve_peer *p;
		uint64_t id;

		if (eq == NULL) {
			rc = usage_err(err, size,
				       "--peers: '%s' is not ID=HOST:PORT", tok);
			break;
		}
		*eq = '\0';
		if (!parse_u64(tok, NET_MAX_NODE_ID, &id) || id == 0) {
			rc = usage_err(err, size, "--peers: bad node id '%s'",
				       tok);
			break;
		}
		if (!address_is_valid(eq + 1)) {
			rc = usage_err(err, size,
				       "--peers: bad address '%s' for node %s",
				       eq + 1, tok);
			break;
		}
		for (uint32_t i = 0; i < a->n_peers; i++)
			if (a->peers[i].id == id)
				rc = usage_err(err, size,
					       "--peers: node %s named twice",
					       tok);
		if (rc != 0)
			break;
		if (a->n_peers == RAFT_MAX_MEMBERS) {
			rc = usage_err(err, size,
				       "--peers: more than %u members",
				       RAFT_MAX_MEMBERS);
			break;
		}
		p = &a->peers[a->n_peers++];
		p->id = id;
		snprintf(p->address, sizeof(p->address), "%s", eq + 1);
	}
	free(copy);
	return rc;
}

/* -o OPT,...: the mount and node options. */
static int parse_options(const char *list, struct serve_args *a, char *err,
			 size_t size)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t v;

		if (eq != NULL)
			*eq = '\0';
		if (strcmp(tok, "allow_other") == 0 && eq == NULL) {
			a->allow_other = true;
		} else if (strcmp(tok, "debug") == 0 && eq == NULL) {
			a->fuse_debug = true;
		} else if (strcmp(tok, "timeout") == 0 && eq != NULL) {
			if (!parse_u64(eq + 1, 3600, &v) || v == 0)
				rc = usage_err(err, size,
					       "-o timeout: seconds in 1..3600, "
					       "not '%s'", eq + 1);
			else
				a->op_timeout_ms = (uint32_t)v * 1000u;
		} else if (strcmp(tok, "max_threads") == 0 && eq != NULL) {
			if (!parse_u64(eq + 1, 1024, &v) || v == 0)
				rc = usage_err(err, size,
					       "-o max_threads: 1..1024, not "
					       "'%s'", eq + 1);
			else
				a->max_threads = (uint32_t)v;
		} else if (strcmp(tok, "snapshot_entries") == 0 && eq != NULL) {
			if (!parse_u64(eq + 1, 1000000000u, &v))
				rc = usage_err(err, size,
					       "-o snapshot_entries: 0..1000000000, "
					       "not '%s'", eq + 1);
			a->snapshot_entries = v;
			a->has_snapshot_entries = true;
		} else if (strcmp(tok, "snapshot_keep") == 0 && eq != NULL) {
			if (!parse_u64(eq + 1, 1000000000u, &v))
				rc = usage_err(err, size,
					       "-o snapshot_keep: 0..1000000000, "
					       "not '%s'", eq + 1);
			a->snapshot_keep = v;
			a->has_snapshot_keep = true;
		} else {
			rc = usage_err(err, size,
				       "-o: unknown option '%s' (known: "
				       "allow_other, debug, timeout=S, "
				       "max_threads=N, snapshot_entries=N, "
				       "snapshot_keep=N)", tok);
		}
	}
	free(copy);
	return rc;
}

int serve_args_parse(int argc, char **argv, struct serve_args *a, char *err,
		     size_t err_size)
{
	const char *peers = NULL;
	bool self_named = false;
	int rc;

	memset(a, 0, sizeof(*a));
	a->op_timeout_ms = SERVE_TIMEOUT_DEFAULT_MS;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (strcmp(opt, "-f") == 0) {
			a->foreground = true;
			takes = false;
		} else if (strcmp(opt, "-v") == 0) {
			a->verbose++;
			takes = false;
		} else if (strcmp(opt, "--bootstrap") == 0) {
			a->bootstrap = true;
			takes = false;
		} else if (strcmp(opt, "--join") == 0) {
			a->join = true;
			takes = false;
		} else if (val == NULL) {
			return usage_err(err, err_size, "%s needs a value",
					 opt);
		} else if (strcmp(opt, "--id") == 0) {
			if (!parse_u64(val, NET_MAX_NODE_ID, &a->id) ||
			    a->id == 0)
				return usage_err(err, err_size,
						 "--id: a node id in 1..%u, not "
						 "'%s'", NET_MAX_NODE_ID, val);
		} else if (strcmp(opt, "--data") == 0) {
			a->data = val;
		} else if (strcmp(opt, "--mount") == 0) {
			a->mount = val;
		} else if (strcmp(opt, "--listen") == 0) {
			if (!address_is_valid(val))
				return usage_err(err, err_size,
						 "--listen: HOST:PORT, not '%s'",
						 val);
			a->listen = val;
		} else if (strcmp(opt, "--peers") == 0) {
			peers = val;
		} else if (strcmp(opt, "--certs") == 0) {
			a->certs = val;
		} else if (strcmp(opt, "-o") == 0) {
			rc = parse_options(val, a, err, err_size);
			if (rc != 0)
				return rc;
		} else {
			return usage_err(err, err_size, "unknown option '%s'",
					 opt);
		}
		if (takes)
			i++;
	}
	if (a->id == 0 || a->data == NULL || a->mount == NULL ||
	    a->listen == NULL || peers == NULL || a->certs == NULL)
		return usage_err(err, err_size,
				 "--id, --data, --mount, --listen, --peers and "
				 "--certs are required");
	if (a->bootstrap == a->join)
		return usage_err(err, err_size,
				 "exactly one of --bootstrap (start a new "
				 "cluster) or --join (wait to be added) is "
				 "required");
	rc = parse_peers(peers, a, err, err_size);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < a->n_peers; i++)
		if (a->peers[i].id == a->id)
			self_named = true;
	if (!self_named) {
		/* This node is a member too: its address is --listen. */
		if (a->n_peers == RAFT_MAX_MEMBERS)
			return usage_err(err, err_size,
					 "--peers: more than %u members",
					 RAFT_MAX_MEMBERS);
		a->peers[a->n_peers].id = a->id;
		snprintf(a->peers[a->n_peers].address, RAFT_MAX_ADDRESS, "%s",
			 a->listen);
		a->n_peers++;
	}
	return 0;
}
