/*
 * `raftfs status --data DIR/nodeN --json`, run as a child process and read
 * back: the leader, the term and each member's role. The parser is a small
 * strict JSON reader that keeps the fields named in the command-line
 * contract and skips everything else, so status may print more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cluster.h"

#define JSON_MAX_DEPTH 32

struct json {
	const char *p;
};

static void skip_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static bool eat(struct json *j, char c)
{
	skip_ws(j);
	if (*j->p != c)
		return false;
	j->p++;
	return true;
}

/* A string into out (cut to out_size - 1; out may be NULL); escapes other
 * than \uXXXX decoded, \uXXXX outside ASCII kept as '?'. */
static int parse_string(struct json *j, char *out, size_t out_size)
{
	size_t len = 0;

	if (!eat(j, '"'))
		return -EINVAL;
	for (;;) {
		char c = *j->p++;

		if (c == '\0' || (unsigned char)c < 0x20)
			return -EINVAL;
		if (c == '"')
			break;
		if (c == '\\') {
			char e = *j->p++;

			switch (e) {
			case '"': case '\\': case '/': c = e; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;

				for (int i = 0; i < 4; i++) {
					char h = *j->p++;

					v <<= 4;
					if (h >= '0' && h <= '9')
						v |= (unsigned)(h - '0');
					else if (h >= 'a' && h <= 'f')
						v |= (unsigned)(h - 'a' + 10);
					else if (h >= 'A' && h <= 'F')
						v |= (unsigned)(h - 'A' + 10);
					else
						return -EINVAL;
				}
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			default:
				return -EINVAL;
			}
		}
		if (out != NULL && len + 1 < out_size)
			out[len++] = c;
	}
	if (out != NULL && out_size > 0)
		out[len] = '\0';
	return 0;
}

static int parse_number(struct json *j, double *out)
{
	char *end;

	skip_ws(j);
	if (*j->p != '-' && (*j->p < '0' || *j->p > '9'))
		return -EINVAL;
	*out = strtod(j->p, &end);
	if (end == j->p)
		return -EINVAL;
	j->p = end;
	return 0;
}

static bool literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	skip_ws(j);
	if (strncmp(j->p, word, n) != 0)
		return false;
	j->p += n;
	return true;
}

static int skip_value(struct json *j, int depth)
{
	double d;

	if (depth > JSON_MAX_DEPTH)
		return -EINVAL;
	skip_ws(j);
	switch (*j->p) {
	case '"':
		return parse_string(j, NULL, 0);
	case '{':
		j->p++;
		if (eat(j, '}'))
			return 0;
		do {
			if (parse_string(j, NULL, 0) < 0 || !eat(j, ':') ||
			    skip_value(j, depth + 1) < 0)
				return -EINVAL;
		} while (eat(j, ','));
		return eat(j, '}') ? 0 : -EINVAL;
	case '[':
		j->p++;
		if (eat(j, ']'))
			return 0;
		do {
			if (skip_value(j, depth + 1) < 0)
				return -EINVAL;
		} while (eat(j, ','));
		return eat(j, ']') ? 0 : -EINVAL;
	default:
		if (literal(j, "true") || literal(j, "false") ||
		    literal(j, "null"))
			return 0;
		return parse_number(j, &d);
	}
}

/* A non-negative integer (JSON number without fraction). */
static int parse_u64(struct json *j, uint64_t *out)
{
	double d;

	if (parse_number(j, &d) < 0 || d < 0 || d > 9007199254740992.0 ||
	    d != (double)(uint64_t)d)
		return -EINVAL;
	*out = (uint64_t)d;
	return 0;
}

static int parse_member(struct json *j, struct cluster_member *m)
{
	char key[32];

	memset(m, 0, sizeof(*m));
	if (!eat(j, '{'))
		return -EINVAL;
	if (eat(j, '}'))
		return 0;
	do {
		int rc;

		if (parse_string(j, key, sizeof(key)) < 0 || !eat(j, ':'))
			return -EINVAL;
		if (!strcmp(key, "id"))
			rc = parse_u64(j, &m->id);
		else if (!strcmp(key, "address"))
			rc = parse_string(j, m->address, sizeof(m->address));
		else if (!strcmp(key, "role"))
			rc = parse_string(j, m->role, sizeof(m->role));
		else if (!strcmp(key, "applied") || !strcmp(key, "commit")) {
			uint64_t *v = key[0] == 'a' ? &m->applied : &m->commit;
			/* null for a member the node knows nothing of */
			if (literal(j, "null"))
				rc = 0;
			else if ((rc = parse_u64(j, v)) == 0 && key[0] == 'a')
				m->has_applied = true;
		} else if (!strcmp(key, "reachable")) {
			m->reachable = literal(j, "true");
			rc = m->reachable || literal(j, "false") ? 0 : -EINVAL;
		} else
			rc = skip_value(j, 1);
		if (rc < 0)
			return rc;
	} while (eat(j, ','));
	return eat(j, '}') ? 0 : -EINVAL;
}

int cluster_status_parse(const char *text, struct cluster_status *st)
{
	struct json j = {text};
	bool seen_leader = false, seen_term = false, seen_members = false;
	char key[32];

	memset(st, 0, sizeof(*st));
	if (!eat(&j, '{'))
		return -EINVAL;
	if (!eat(&j, '}')) {
		do {
			int rc = 0;

			if (parse_string(&j, key, sizeof(key)) < 0 ||
			    !eat(&j, ':'))
				return -EINVAL;
			if (!strcmp(key, "leader")) {
				seen_leader = true;
				if (!literal(&j, "null")) {
					rc = parse_u64(&j, &st->leader);
					st->has_leader = rc == 0;
				}
			} else if (!strcmp(key, "term")) {
				seen_term = true;
				rc = parse_u64(&j, &st->term);
			} else if (!strcmp(key, "feature_level")) {
				uint64_t v = 0;

				if (!literal(&j, "null")) {
					rc = parse_u64(&j, &v);
					if (rc == 0 && v > UINT32_MAX)
						rc = -EINVAL;
				}
				st->feature_level = (uint32_t)v;
			} else if (!strcmp(key, "members")) {
				seen_members = true;
				if (!eat(&j, '['))
					return -EINVAL;
				if (!eat(&j, ']')) {
					do {
						struct cluster_member m;

						rc = parse_member(&j, &m);
						if (rc < 0)
							return rc;
						if (st->members_count <
						    CLUSTER_STATUS_MEMBERS)
							st->members
							    [st->members_count++] =
							    m;
					} while (eat(&j, ','));
					if (!eat(&j, ']'))
						return -EINVAL;
				}
			} else {
				rc = skip_value(&j, 1);
			}
			if (rc < 0)
				return rc;
		} while (eat(&j, ','));
		if (!eat(&j, '}'))
			return -EINVAL;
	}
	skip_ws(&j);
	if (*j.p != '\0' || !seen_leader || !seen_term || !seen_members)
		return -EINVAL;
	return 0;
}

int cluster_status_query(const struct cluster *c, unsigned node,
			 int timeout_ms, struct cluster_status *st, char *err,
			 size_t err_size)
{
	char data[PATH_MAX + 32], out[16384], errline[512];
	char *argv[] = {(char *)"raftfs", (char *)"status", (char *)"--data",
			data, (char *)"--json", NULL};
	int rc;

	cluster_node_dir(c, node, NULL, data, sizeof(data));
	rc = cluster_run("/proc/self/exe", argv, timeout_ms, out, sizeof(out),
			 errline, sizeof(errline));
	if (rc == -ETIMEDOUT) {
		snprintf(err, err_size, "status did not answer within %d ms",
			 timeout_ms);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, err_size, "cannot run status: %s", strerror(-rc));
		return rc;
	}
	if (rc != 0) {
		snprintf(err, err_size, "%s",
			 errline[0] ? errline : "status failed");
		return rc == 1 ? -ESRCH : -EIO;
	}
	if (cluster_status_parse(out, st) < 0) {
		snprintf(err, err_size, "status printed no JSON object with "
					"leader, term and members");
		return -EINVAL;
	}
	return 0;
}
