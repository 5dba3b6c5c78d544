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

/* Call fn for each item of a comma-separated list; stops at the first
 * error it returns. */
static int each_item(const char *list, struct serve_args *a, char *err,
		     size_t size,
		     int (*fn)(char *item, struct serve_args *a, char *err,
			       size_t size))
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == 0;
	     tok = strtok_r(NULL, ",", &save))
		rc = fn(tok, a, err, size);
	free(copy);
	return rc;
}

/* --peers: one ID=HOST:PORT. */
static int parse_peer(char *tok, struct serve_args *a, char *err,
		      size_t size)
{
	char *eq = strchr(tok, '=');
	struct serve_peer *p;
	uint64_t id;

	if (eq == NULL)
		return usage_err(err, size, "--peers: '%s' is not ID=HOST:PORT",
				 tok);
	*eq = '\0';
	if (!parse_u64(tok, NET_MAX_NODE_ID, &id) || id == 0)
		return usage_err(err, size, "--peers: bad node id '%s'", tok);
	if (!address_is_valid(eq + 1))
		return usage_err(err, size,
				 "--peers: bad address '%s' for node %s",
				 eq + 1, tok);
	for (uint32_t i = 0; i < a->n_peers; i++)
		if (a->peers[i].id == id)
			return usage_err(err, size,
					 "--peers: node %s named twice", tok);
	if (a->n_peers == RAFT_MAX_MEMBERS)
		return usage_err(err, size, "--peers: more than %u members",
				 RAFT_MAX_MEMBERS);
	p = &a->peers[a->n_peers++];
	p->id = id;
	snprintf(p->address, sizeof(p->address), "%s", eq + 1);
	return 0;
}

/* A numeric option's value in lo..max, or a usage error. */
static int option_u64(const char *name, const char *val, uint64_t lo,
		      uint64_t max, uint64_t *out, char *err, size_t size)
{
	if (!parse_u64(val, max, out) || *out < lo)
		return usage_err(err, size,
				 "-o %s: a number in %llu..%llu, not '%s'",
				 name, (unsigned long long)lo,
				 (unsigned long long)max, val);
	return 0;
}

/* -o: one of the mount and node options. */
static int parse_option(char *tok, struct serve_args *a, char *err,
			size_t size)
{
	char *eq = strchr(tok, '=');
	uint64_t v;
	int rc;

	if (eq != NULL)
		*eq = '\0';
	if (strcmp(tok, "allow_other") == 0 && eq == NULL) {
		a->allow_other = true;
	} else if (strcmp(tok, "debug") == 0 && eq == NULL) {
		a->fuse_debug = true;
	} else if (strcmp(tok, "timeout") == 0 && eq != NULL) {
		rc = option_u64("timeout (seconds)", eq + 1, 1, 3600, &v, err,
				size);
		if (rc != 0)
			return rc;
		a->op_timeout_ms = (uint32_t)v * 1000u;
	} else if (strcmp(tok, "max_threads") == 0 && eq != NULL) {
		rc = option_u64("max_threads", eq + 1, 1, 1024, &v, err, size);
		if (rc != 0)
			return rc;
		a->max_threads = (uint32_t)v;
	} else if (strcmp(tok, "cache") == 0 && eq != NULL) {
		if (strcmp(eq + 1, "relaxed") == 0)
			a->cache_relaxed = true;
		else if (strcmp(eq + 1, "strict") == 0)
			a->cache_relaxed = false;
		else
			return usage_err(err, size,
					 "-o cache: 'strict' (the default) or "
					 "'relaxed', not '%s'",
					 eq + 1);
	} else if (strcmp(tok, "cache_timeout") == 0 && eq != NULL) {
		rc = option_u64("cache_timeout (seconds)", eq + 1, 1, 3600, &v,
				err, size);
		if (rc != 0)
			return rc;
		a->cache_timeout_s = (uint32_t)v;
	} else if (strcmp(tok, "lease") == 0 && eq != NULL) {
		rc = option_u64("lease (seconds)", eq + 1, 1, 3600, &v, err,
				size);
		if (rc != 0)
			return rc;
		a->lease_ms = (uint32_t)v * 1000u;
	} else if (strcmp(tok, "snapshot_entries") == 0 && eq != NULL) {
		rc = option_u64("snapshot_entries", eq + 1, 0, 1000000000u,
				&a->snapshot_entries, err, size);
		if (rc != 0)
			return rc;
		a->has_snapshot_entries = true;
	} else if (strcmp(tok, "snapshot_keep") == 0 && eq != NULL) {
		rc = option_u64("snapshot_keep", eq + 1, 0, 1000000000u,
				&a->snapshot_keep, err, size);
		if (rc != 0)
			return rc;
		a->has_snapshot_keep = true;
	} else if (strcmp(tok, "restore") == 0 && eq != NULL) {
		if (eq[1] == '\0' ||
		    strlen(eq + 1) >= sizeof(a->restore))
			return usage_err(err, size,
					 "-o restore: a backup file's path");
		snprintf(a->restore, sizeof(a->restore), "%s", eq + 1);
	} else if (strcmp(tok, "feature_level") == 0 && eq != NULL) {
		rc = option_u64("feature_level", eq + 1, 1, FS_FEATURE_LEVEL,
				&v, err, size);
		if (rc != 0)
			return rc;
		a->feature_level = (uint32_t)v;
	} else {
		return usage_err(err, size,
				 "-o: unknown option '%s' (known: allow_other, "
				 "debug, timeout=S, max_threads=N, "
				 "cache=strict|relaxed, cache_timeout=S, "
				 "lease=S, snapshot_entries=N, snapshot_keep=N, "
				 "feature_level=N, restore=FILE)",
				 tok);
	}
	return 0;
}

int serve_args_parse(int argc, char **argv, struct serve_args *a, char *err,
		     size_t err_size)
{
	const char *peers = NULL;
	bool self_named = false;
	int rc;

	memset(a, 0, sizeof(*a));
	a->op_timeout_ms = SERVE_TIMEOUT_DEFAULT_MS;
	a->feature_level = FS_FEATURE_LEVEL;
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
			rc = each_item(val, a, err, err_size, parse_option);
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
	rc = each_item(peers, a, err, err_size, parse_peer);
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
