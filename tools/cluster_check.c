/*
 * `raftfs fsck --cluster`: prove the replicas agree. The node asked
 * proposes a check point (FS_OP_CHECK) through the log; every replica,
 * right after applying it, keeps a view of its store at that index
 * (fs/raft_proposer.c). The node then asks every member for the hash of
 * its view (itself directly, the others over the transport's admin
 * requests), and when they differ, narrows the difference down to paths by
 * comparing directories' entries with their subtree hashes, descending
 * only where they differ. Replicas in the largest group of equal hashes
 * (ties: the group of the node asked) are the reference; each other one
 * is reported with its first differing paths.
 *
 * Queries between nodes are text: "check=ID hash" and
 * "check=ID dir=INO skip=N"; answers "pending" (not applied yet), "busy",
 * "hashing" (the store's hash is computed once per check point, after
 * that answer: the asker comes back for it), or lines
 * "index=", "hash=", "node=HASH mode=M", "entry=INO HASH NAME-IN-HEX",
 * "more=1". A replica answers on a thread of its own (never on the
 * transport's I/O thread: hashing a large tree takes seconds).
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"

#define ENTRIES_PER_ANSWER 80u
#define REPLICA_WAIT_MS 15000u
#define MAX_PATHS 20u
#define MAX_QUERIES 5000u
/* A replica hashes its whole store once per check point, after answering
 * "pending": seconds on a large tree (docs/FSCK.md has figures). */
#define HASH_WAIT_MS (10u * 60u * 1000u)

/* ---- the replica's side ---- */

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

struct page {
	struct text_buf t;
	uint64_t skip;
	uint32_t n;
	bool more;
};

static int page_entry(void *ctx, const char *name, size_t len, uint64_t ino,
		      const uint8_t hash[FS_HASH_BYTES])
{
	struct page *pg = ctx;
	char h[2 * FS_HASH_BYTES + 1], *nh;

	if (pg->skip > 0) {
		pg->skip--;
		return 0;
	}
	if (pg->n == ENTRIES_PER_ANSWER) {
		pg->more = true;
		return 1; /* stop: the asker comes back with skip */
	}
	nh = malloc(2 * len + 1);
	if (nh == NULL)
		return -ENOMEM;
	hex(hash, FS_HASH_BYTES, h);
	hex((const uint8_t *)name, len, nh);
	text_printf(&pg->t, "entry=%" PRIu64 " %s %s\n", ino, h, nh);
	free(nh);
	pg->n++;
	return 0;
}

size_t check_answer(struct fs_raft *fr, const char *query, char *out,
		    size_t size, bool *fill)
{
	unsigned long long id = 0, ino = 0, skip = 0;
	struct page pg = {{out, size, 0}, 0, 0, false};
	struct fs_check_view *v;
	uint8_t hash[FS_HASH_BYTES];
	char h[2 * FS_HASH_BYTES + 1];
	bool dir;
	int rc;

	out[0] = '\0';
	*fill = false;
	if (sscanf(query, "check=%llu", &id) != 1 || id == 0) {
		text_printf(&pg.t, "error: bad query\n");
		return pg.t.len;
	}
	dir = sscanf(query, "check=%*u dir=%llu skip=%llu", &ino, &skip) == 2;
	if (fs_raft_check_acquire(fr, id, &v) != 0) {
		text_printf(&pg.t, "pending\n");
		return pg.t.len;
	}
	if (!dir) {
		rc = fs_check_view_hash_peek(v, hash, fill);
		if (rc == -EINPROGRESS) {
			/* Hashed after this answer (check_hash_fill): the
			 * asker comes back for it. */
			fs_raft_check_release(fr, v);
			text_printf(&pg.t, "hashing\n");
			return pg.t.len;
		}
	}
	text_printf(&pg.t, "index=%" PRIu64 "\n", fs_check_view_index(v));
	if (!dir) {
		if (rc == 0) {
			hex(hash, sizeof(hash), h);
			text_printf(&pg.t, "hash=%s\n", h);
		}
	} else {
		uint32_t mode = 0;
		rc = fs_check_view_node_hash(v, ino, hash, &mode);
		if (rc == 0) {
			hex(hash, sizeof(hash), h);
			text_printf(&pg.t, "node=%s mode=%o\n", h, mode);
			pg.skip = skip;
			if (S_ISDIR(mode))
				rc = fs_check_view_entries(v, ino, page_entry,
							   &pg);
			if (rc == 1)
				rc = 0;
			if (pg.more)
				text_printf(&pg.t, "more=1\n");
		} else if (rc == -ENOENT) {
			text_printf(&pg.t, "missing=1\n");
			rc = 0;
		}
	}
	fs_raft_check_release(fr, v);
	if (rc != 0) {
		pg.t.len = 0;
		text_printf(&pg.t, "error: %s\n", strerror(-rc));
	}
	return pg.t.len;
}

void check_hash_fill(struct fs_raft *fr, const char *query)
{
	unsigned long long id = 0;
	struct fs_check_view *v;

	if (sscanf(query, "check=%llu", &id) != 1 ||
	    fs_raft_check_acquire(fr, id, &v) != 0)
		return;
	fs_check_view_hash_fill(v);
	fs_raft_check_release(fr, v);
}

/* ---- the asker's side ---- */

struct replica {
	uint64_t id;
	char address[RAFT_MAX_ADDRESS];
	bool self;
	bool reached;
	uint64_t index;
	char hash[2 * FS_HASH_BYTES + 1];
	int group; /* index of its hash group */
	char why[160];
};

struct checker {
	const struct control_source *src;
	uint64_t check_id;
	uint32_t queries;
	char *buf; /* NET_MAX_ADMIN_PAYLOAD_BYTES */
};

/* Ask replica r (retrying "pending" and "busy" until the deadline); the
 * answer (NUL-terminated) in c->buf. 0, or -1 with r->why. */
static int ask(struct checker *c, struct replica *r, const char *query,
	       uint32_t wait_ms)
{
	struct timespec start, now;
	bool hashing;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		size_t len = 0;
		if (++c->queries > MAX_QUERIES) {
			snprintf(r->why, sizeof(r->why), "too many queries");
			return -1;
		}
		if (r->self) {
			bool fill;
			len = check_answer(c->src->fr, query, c->buf,
					   NET_MAX_ADMIN_PAYLOAD_BYTES, &fill);
			if (fill)
				check_hash_fill(c->src->fr, query);
		} else {
			struct net_admin_msg req = {0}, resp;
			char err[256];
			req.kind = ADMIN_KIND_CHECK;
			req.request_id = c->queries;
			req.payload = (const uint8_t *)query;
			req.payload_bytes = (uint32_t)strlen(query);
			if (control_admin_call(c->src, r->address, &req,
					       (uint8_t *)c->buf,
					       NET_MAX_ADMIN_PAYLOAD_BYTES - 1,
					       &resp, err, sizeof(err)) != 0) {
				snprintf(r->why, sizeof(r->why), "%.150s", err);
				return -1;
			}
			len = resp.payload_bytes;
			memmove(c->buf, resp.payload, len);
		}
		c->buf[len] = '\0';
		if (strncmp(c->buf, "error: ", 7) == 0) {
			snprintf(r->why, sizeof(r->why), "%.150s", c->buf + 7);
			r->why[strcspn(r->why, "\n")] = '\0';
			return -1;
		}
		/* "hashing": it applied the check point and hashes its
		 * store now (seconds on a large tree): a longer wait. */
		hashing = strcmp(c->buf, "hashing\n") == 0;
		if (strcmp(c->buf, "pending\n") != 0 &&
		    strcmp(c->buf, "busy\n") != 0 && !hashing)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((int64_t)(now.tv_sec - start.tv_sec) * 1000 +
			    (int64_t)(now.tv_nsec - start.tv_nsec) / 1000000 >
		    (int64_t)(hashing ? HASH_WAIT_MS : wait_ms)) {
			if (hashing)
				snprintf(r->why, sizeof(r->why),
					 "did not finish hashing within %u s",
					 HASH_WAIT_MS / 1000u);
			else
				snprintf(r->why, sizeof(r->why),
					 "did not apply the check point within "
					 "%u s",
					 wait_ms / 1000u);
			return -1;
		}
		struct timespec ts = {0, (hashing ? 250 : 50) * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* One directory listing of a replica. */
struct listing {
	bool missing;
	char node[2 * FS_HASH_BYTES + 1];
	uint32_t mode;
	uint32_t n, cap;
	struct lentry {
		uint64_t ino;
		char hash[2 * FS_HASH_BYTES + 1];
		char *name; /* decoded, NUL-terminated */
	} *e;
};

static void listing_free(struct listing *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static int unhex_name(const char *h, char **out)
{
	size_t n = strlen(h) / 2;
	char *s = malloc(n + 1);

	if (s == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1) {
			free(s);
			return -EINVAL;
		}
		s[i] = (char)v;
	}
	s[n] = '\0';
	*out = s;
	return 0;
}

static int list_dir(struct checker *c, struct replica *r, uint64_t ino,
		    struct listing *l)
{
	uint64_t skip = 0;

	memset(l, 0, sizeof(*l));
	for (;;) {
		char query[128], *save = NULL, *line;
		bool more = false;
		snprintf(query, sizeof(query),
			 "check=%" PRIu64 " dir=%" PRIu64 " skip=%" PRIu64,
			 c->check_id, ino, skip);
		if (ask(c, r, query, REPLICA_WAIT_MS) != 0)
			return -1;
		for (line = strtok_r(c->buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned long long eino;
			char eh[2 * FS_HASH_BYTES + 1], en[2 * 4096 + 1];
			if (strcmp(line, "missing=1") == 0)
				l->missing = true;
			else if (strcmp(line, "more=1") == 0)
				more = true;
			else if (sscanf(line, "node=%64s mode=%o", l->node,
					&l->mode) == 2)
				;
			else if (sscanf(line, "entry=%llu %64s %8192s", &eino,
					eh, en) == 3) {
				struct lentry *e;
				if (l->n == l->cap) {
					uint32_t cap = l->cap ? 2 * l->cap : 64;
					void *p = realloc(l->e, cap * sizeof(*e));
					if (p == NULL)
						return -1;
					l->e = p;
					l->cap = cap;
				}
				e = &l->e[l->n];
				e->ino = eino;
				memcpy(e->hash, eh, sizeof(e->hash));
				if (unhex_name(en, &e->name) != 0)
					return -1;
				l->n++;
				skip++;
			}
		}
		if (!more)
			return 0;
	}
}

static const struct lentry *find(const struct listing *l, const char *name)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

static void difference(struct cluster_report *rep, const struct replica *d,
		       const char *path, const char *what)
{
	if (rep->paths >= MAX_PATHS)
		return;
	rep->paths++;
	rep->total++;
	if (rep->json) {
		text_printf(&rep->out, "%s\n  {\"node\": %" PRIu64 ", \"path\": ",
		    rep->total > 1 ? "," : "", d->id);
		text_json_str(&rep->out, path);
		text_printf(&rep->out, ", \"what\": ");
		text_json_str(&rep->out, what);
		text_printf(&rep->out, "}");
	} else {
		text_printf(&rep->out, "  node %" PRIu64 ": %s: %s\n", d->id, path, what);
	}
}

/* Compare directory ino (at path) of d against reference ref. */
static int narrow(struct checker *c, struct cluster_report *rep, struct replica *ref,
		  struct replica *d, uint64_t ino, const char *path,
		  unsigned depth)
{
	struct listing a, b;
	int rc = 0;

	if (rep->paths >= MAX_PATHS || depth > 256)
		return 0;
	if (list_dir(c, ref, ino, &a) != 0) {
		listing_free(&a);
		return -1;
	}
	if (list_dir(c, d, ino, &b) != 0) {
		listing_free(&a);
		listing_free(&b);
		return -1;
	}
	if (b.missing || a.missing) {
		difference(rep, d, path,
			   b.missing ? "missing here" : "extra here");
		goto out;
	}
	if (strcmp(a.node, b.node) != 0 || a.mode != b.mode)
		difference(rep, d, path,
			   S_ISDIR(a.mode) ? "attributes or xattrs differ"
					   : "content, attributes or xattrs "
					     "differ");
	if (!S_ISDIR(a.mode) || !S_ISDIR(b.mode))
		goto out;
	for (uint32_t i = 0; i < a.n && rc == 0; i++) {
		const struct lentry *x = &a.e[i], *y = find(&b, x->name);
		size_t plen = strlen(path) + strlen(x->name) + 2;
		char *child = malloc(plen);
		if (child == NULL) {
			rc = -1;
			break;
		}
		snprintf(child, plen, "%s%s%s", path,
			 strcmp(path, "/") == 0 ? "" : "/", x->name);
		if (y == NULL)
			difference(rep, d, child, "missing here");
		else if (x->ino != y->ino)
			difference(rep, d, child, "names another inode");
		else if (strcmp(x->hash, y->hash) != 0)
			rc = narrow(c, rep, ref, d, x->ino, child, depth + 1);
		free(child);
	}
	for (uint32_t i = 0; i < b.n && rc == 0; i++) {
		if (find(&a, b.e[i].name) == NULL) {
			size_t plen = strlen(path) + strlen(b.e[i].name) + 2;
			char *child = malloc(plen);
			if (child == NULL)
				break;
			snprintf(child, plen, "%s%s%s", path,
				 strcmp(path, "/") == 0 ? "" : "/",
				 b.e[i].name);
			difference(rep, d, child, "extra here");
			free(child);
		}
	}
out:
	listing_free(&a);
	listing_free(&b);
	return rc;
}

int cluster_compare(const struct control_source *src,
		    struct cluster_report *rep, uint64_t *check_id,
		    uint64_t *index)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct replica *rs = calloc(RAFT_MAX_MEMBERS, sizeof(*rs));
	bool json = rep->json;
	struct checker c = {src, 0, 0, malloc(NET_MAX_ADMIN_PAYLOAD_BYTES)};
	struct fs_proposer p;
	uint32_t n = 0, n_groups = 0, unreached = 0, best = 0;
	uint32_t group_size[RAFT_MAX_MEMBERS] = {0};
	int status = 0, rc;
	struct replica *ref = NULL;

	*check_id = 0;
	*index = 0;
	if (st == NULL || rs == NULL || c.buf == NULL) {
		text_printf(&rep->out, "error: out of memory\n");
		status = -1;
		goto done;
	}
	while (c.check_id == 0)
		if (getrandom(&c.check_id, sizeof(c.check_id), 0) !=
		    (ssize_t)sizeof(c.check_id))
			c.check_id = (uint64_t)time(NULL);
	fs_raft_proposer(src->fr, &p);
	rc = fs_check_point(&p, c.check_id);
	if (rc != 0) {
		text_printf(&rep->out, "error: the check point did not commit (%s); "
			  "is a majority up?\n",
		    strerror(-rc));
		status = -1;
		goto done;
	}
	*check_id = c.check_id;
	raft_runtime_status_get(src->rt, st);
	for (uint32_t i = 0; i < st->conf.n; i++) {
		const struct raft_member *m = &st->conf.members[i];
		if (m->role == RAFT_REMOVED)
			continue;
		rs[n].id = m->id;
		memcpy(rs[n].address, m->address, RAFT_MAX_ADDRESS);
		rs[n].self = m->id == src->args->id;
		n++;
	}
	/* Hashes: sequential is enough for a handful of members; each may
	 * take seconds on a large tree, the same on every replica. */
	for (uint32_t i = 0; i < n; i++) {
		char query[64];
		unsigned long long idx = 0;
		char h[2 * FS_HASH_BYTES + 1] = "";
		snprintf(query, sizeof(query), "check=%" PRIu64 " hash",
			 c.check_id);
		if (ask(&c, &rs[i], query, REPLICA_WAIT_MS) != 0)
			continue;
		if (sscanf(c.buf, "index=%llu\nhash=%64s", &idx, h) != 2) {
			snprintf(rs[i].why, sizeof(rs[i].why), "bad answer");
			continue;
		}
		rs[i].reached = true;
		rs[i].index = idx;
		memcpy(rs[i].hash, h, sizeof(rs[i].hash));
	}
	/* Group equal hashes (the index is part of what must agree). */
	for (uint32_t i = 0; i < n; i++) {
		rs[i].group = -1;
		if (!rs[i].reached) {
			unreached++;
			continue;
		}
		for (uint32_t j = 0; j < i; j++)
			if (rs[j].reached && rs[j].index == rs[i].index &&
			    strcmp(rs[j].hash, rs[i].hash) == 0) {
				rs[i].group = rs[j].group;
				break;
			}
		if (rs[i].group < 0)
			rs[i].group = (int)n_groups++;
		group_size[rs[i].group]++;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (!rs[i].reached)
			continue;
		uint32_t g = (uint32_t)rs[i].group;
		if (ref == NULL || group_size[g] > best ||
		    (group_size[g] == best && rs[i].self)) {
			ref = &rs[i];
			best = group_size[g];
		}
	}
	status = n_groups > 1 ? 1 : unreached > 0 ? 3 : 0;
	*index = ref ? ref->index : 0;
	if (json) {
		text_printf(&rep->out, "{\"check\": \"%016" PRIx64 "\", \"index\": %" PRIu64
			  ", \"identical\": %s, \"members\": [",
		    c.check_id, ref ? ref->index : 0,
		    status == 0 ? "true" : "false");
		for (uint32_t i = 0; i < n; i++) {
			text_printf(&rep->out, "%s\n  {\"id\": %" PRIu64 ", \"reachable\": %s",
			    i ? "," : "", rs[i].id,
			    rs[i].reached ? "true" : "false");
			if (rs[i].reached)
				text_printf(&rep->out, ", \"index\": %" PRIu64
					  ", \"hash\": \"%s\", \"agrees\": %s}",
				    rs[i].index, rs[i].hash,
				    rs[i].group == ref->group ? "true"
							       : "false");
			else {
				text_printf(&rep->out, ", \"error\": ");
				text_json_str(&rep->out, rs[i].why);
				text_printf(&rep->out, "}");
			}
		}
		text_printf(&rep->out, "\n], \"differences\": [");
	} else {
		text_printf(&rep->out, "check point %016" PRIx64 " at index %" PRIu64 "\n",
		    c.check_id, ref ? ref->index : 0);
		for (uint32_t i = 0; i < n; i++) {
			if (rs[i].reached)
				text_printf(&rep->out, "  node %" PRIu64 ": %s%s\n", rs[i].id,
				    rs[i].hash,
				    rs[i].group == ref->group ? ""
							       : "  DIFFERS");
			else
				text_printf(&rep->out, "  node %" PRIu64 ": not checked: %s\n",
				    rs[i].id, rs[i].why);
		}
	}
	for (uint32_t i = 0; i < n && n_groups > 1; i++) {
		if (!rs[i].reached || rs[i].group == ref->group)
			continue;
		if (!json)
			text_printf(&rep->out, "node %" PRIu64 " differs from node %" PRIu64
				  ":\n",
			    rs[i].id, ref->id);
		rep->paths = 0;
		if (narrow(&c, rep, ref, &rs[i], FS_ROOT_INO, "/", 0) != 0) {
			char what[200];
			snprintf(what, sizeof(what), "not narrowed down: %.150s",
				 rs[i].why[0] ? rs[i].why : ref->why);
			rep->paths = 0; /* always said */
			difference(rep, &rs[i], "/", what);
		} else if (rep->paths == 0) {
			difference(rep, &rs[i], "(outside the tree)",
				   "superblock, counters, orphan or duplicate "
				   "table differ");
		}
	}
	if (!json && status == 0)
		text_printf(&rep->out, "all %u replicas identical\n", n);
	else if (!json && status == 3)
		text_printf(&rep->out, "%u replica(s) could not be checked\n", unreached);
done:
	free(c.buf);
	free(rs);
	free(st);
	return status;
}
