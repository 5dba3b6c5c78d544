/*
 * The offline check of a log store (raft/logstore_check.h): the same rules
 * raft_logstore_open enforces (raft/logstore.h), but every problem is
 * reported and the walk goes on, so an operator sees all of them at once.
 * Reads only; the database is opened without creating anything.
 */

#define _GNU_SOURCE
#include "raft/logstore_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <leveldb/c.h>

#include "raft/logstore_segment.h"

#define KEY_HEADER 'h'
#define KEY_HARD_STATE 's'
#define KEY_SNAPSHOT 'p'
#define KEY_ENTRY 'e'
#define ENTRY_KEY_BYTES 9u
#define HEADER_FIXED_BYTES 17u
#define SNAPSHOT_FIXED_BYTES 24u
#define PROGRESS_EVERY 65536u
#define ENTRY_FLAG_SEGMENT 0x01u

/* A segment file some entry references. */
struct seg_seen {
	uint64_t num;
	int state;       /* 0 usable, else -errno of its open or header */
	uint64_t first;  /* entries referencing it: lowest, highest, count */
	uint64_t last;
	uint64_t count;
};

struct check {
	void (*problem)(void *ctx, uint64_t index, const char *code,
			const char *detail);
	void *ctx;
	struct raft_logstore_check *out;
	const char *dir;
	struct seg_seen *segs;
	size_t n_segs, cap_segs;
	int fd;           /* open on segment fd_seg, or -1 */
	uint64_t fd_seg;
	uint8_t *buf;     /* one record */
	size_t cap;
	bool format_reported;
};

static void report(struct check *c, uint64_t index, const char *code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(struct check *c, uint64_t index, const char *code,
		   const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->out->problems++;
	if (c->problem != NULL)
		c->problem(c->ctx, index, code, detail);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static void check_header(struct check *c, const uint8_t *v, size_t len)
{
	struct raft_logstore_check *o = c->out;

	if (len < HEADER_FIXED_BYTES || rd32(v) != RAFT_LOGSTORE_MAGIC ||
	    v[16] == 0 || v[16] > RAFT_LOGSTORE_MAX_CLUSTER_ID ||
	    len != HEADER_FIXED_BYTES + v[16]) {
		report(c, 0, "header", "malformed header record (%zu bytes)",
		       len);
		return;
	}
	o->format = rd32(v + 4);
	o->node_id = rd64(v + 8);
	memcpy(o->cluster_id, v + HEADER_FIXED_BYTES, v[16]);
	o->cluster_id[v[16]] = '\0';
	o->has_header = true;
	if (o->format == 0 || o->format > RAFT_LOGSTORE_FORMAT)
		report(c, 0, "format",
		       "log store format version %" PRIu32
		       " is not known to this build (%u)",
		       o->format, RAFT_LOGSTORE_FORMAT);
	if (o->node_id == 0)
		report(c, 0, "header", "the header names node id 0");
}

static void check_snapshot(struct check *c, const uint8_t *v, size_t len)
{
	struct raft_configuration conf;
	uint64_t index, term, conf_index;

	if (len < SNAPSHOT_FIXED_BYTES) {
		report(c, 0, "snapshot", "malformed snapshot record (%zu bytes)",
		       len);
		return;
	}
	index = rd64(v);
	term = rd64(v + 8);
	conf_index = rd64(v + 16);
	if (index == 0 || term == 0 || conf_index > index ||
	    raft_configuration_decode(v + SNAPSHOT_FIXED_BYTES,
				      len - SNAPSHOT_FIXED_BYTES, &conf) != 0) {
		report(c, index, "snapshot",
		       "malformed snapshot record (index %" PRIu64
		       ", term %" PRIu64 ", configuration index %" PRIu64 ")",
		       index, term, conf_index);
		return;
	}
	c->out->has_snapshot = true;
	c->out->snapshot_index = index;
	c->out->snapshot_term = term;
}

static struct seg_seen *seen_get(struct check *c, uint64_t num)
{
	for (size_t i = c->n_segs; i-- > 0;)
		if (c->segs[i].num == num)
			return &c->segs[i];
	if (c->n_segs == c->cap_segs) {
		size_t cap = c->cap_segs ? c->cap_segs * 2 : 16;
		struct seg_seen *v = realloc(c->segs, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		c->segs = v;
		c->cap_segs = cap;
	}
	c->segs[c->n_segs] = (struct seg_seen){num, 0, UINT64_MAX, 0, 0};
	return &c->segs[c->n_segs++];
}

/* Open segment s (its header checked) as c->fd; s->state says why not. */
static void seg_open(struct check *c, struct seg_seen *s)
{
	uint8_t head[RAFT_SEG_HEADER_BYTES];
	char name[RAFT_SEG_NAME_BYTES], path[4096];

	if (c->fd >= 0 && c->fd_seg == s->num)
		return;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	raft_seg_name(name, s->num);
	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	c->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0) {
		s->state = -errno;
		return;
	}
	c->fd_seg = s->num;
	if (pread(c->fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    raft_seg_header_check(head, s->num, c->out->node_id) != 0) {
		s->state = -EUCLEAN;
		close(c->fd);
		c->fd = -1;
	}
}

/* An entry whose payload is in a segment: the reference, the file, the
 * record and the payload's checksum. */
static void check_reference(struct check *c, uint64_t index, uint64_t term,
			    uint8_t type, const uint8_t *v, size_t len)
{
	char name[RAFT_SEG_NAME_BYTES], why[256];
	struct raft_seg_ref ref;
	struct seg_seen *s;
	int rc;

	if (len != RAFT_LOGSTORE_ENTRY_REF_BYTES || type != RAFT_ENTRY_NORMAL) {
		report(c, index, "entry",
		       "entry %" PRIu64 ": malformed segment reference (%zu "
		       "bytes, type %u)", index, len, type);
		return;
	}
	if (c->out->format < 2 && !c->format_reported) {
		c->format_reported = true;
		report(c, index, "format",
		       "entry %" PRIu64 " references a segment but the store's "
		       "format version is %" PRIu32, index, c->out->format);
	}
	raft_seg_ref_decode(v + RAFT_LOGSTORE_ENTRY_HEADER_BYTES, &ref);
	raft_seg_name(name, ref.segment);
	if (ref.segment == 0 || ref.size == 0 ||
	    ref.size > RAFT_MAX_ENTRY_BYTES ||
	    ref.offset < RAFT_SEG_HEADER_BYTES) {
		report(c, index, "segment",
		       "entry %" PRIu64 ": malformed segment reference "
		       "(segment %" PRIu64 ", offset %" PRIu64 ", %" PRIu32
		       " bytes)", index, ref.segment, ref.offset, ref.size);
		return;
	}
	s = seen_get(c, ref.segment);
	if (s == NULL) {
		report(c, index, "segment", "out of memory");
		return;
	}
	if (index < s->first)
		s->first = index;
	s->last = index;
	s->count++;
	if (s->state == 0)
		seg_open(c, s);
	if (s->state != 0)
		return; /* reported once per file, at the end */
	if (c->cap < RAFT_SEG_RECORD_HEADER_BYTES + (size_t)ref.size) {
		size_t cap = RAFT_SEG_RECORD_HEADER_BYTES + RAFT_MAX_ENTRY_BYTES;
		uint8_t *b = realloc(c->buf, cap);
		if (b == NULL) {
			report(c, index, "segment", "out of memory");
			return;
		}
		c->buf = b;
		c->cap = cap;
	}
	rc = raft_seg_record_read(c->fd, &ref, index, term, c->buf, why,
				  sizeof(why));
	if (rc != 0)
		report(c, index, "segment", "entry %" PRIu64 ": segment file %s: %s",
		       index, name, why);
}

/* After the walk: each unusable referenced file once, and every segment
 * file no entry references. */
static void check_segment_files(struct check *c)
{
	char name[RAFT_SEG_NAME_BYTES];
	struct dirent *de;
	DIR *d;

	for (size_t i = 0; i < c->n_segs; i++) {
		const struct seg_seen *s = &c->segs[i];
		if (s->state == 0)
			continue;
		raft_seg_name(name, s->num);
		report(c, s->first, "segment",
		       "segment file %s %s; %" PRIu64 " entries (%" PRIu64
		       "..%" PRIu64 ") reference it",
		       name,
		       s->state == -ENOENT    ? "is missing"
		       : s->state == -EUCLEAN ? "has no valid header"
					      : "cannot be read",
		       s->count, s->first, s->last);
	}
	d = opendir(c->dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		uint64_t num = raft_seg_parse_name(de->d_name);
		bool used = false;
		if (num == 0)
			continue;
		c->out->segments++;
		for (size_t i = 0; i < c->n_segs && !used; i++)
			used = c->segs[i].num == num;
		if (!used)
			report(c, 0, "orphan-segment",
			       "segment file %s is not referenced by any entry "
			       "(left by a crash or an interrupted deletion; "
			       "the node removes it when it starts)",
			       de->d_name);
	}
	closedir(d);
}

/* One entry record: its own encoding, then its place in the log. */
static void check_entry(struct check *c, uint64_t index, const uint8_t *v,
			size_t len, uint64_t *expect, uint64_t *prev_term)
{
	struct raft_logstore_check *o = c->out;
	struct raft_configuration conf;
	uint64_t term;
	uint8_t type;

	/* A compaction keeps a tail of entries the snapshot covers: the
	 * log's first entry may lie at or below the snapshot index. */
	if (o->has_snapshot && o->entries == 0 && index < *expect) {
		*expect = index;
		*prev_term = 0;
	}
	if (index <= (o->has_snapshot ? o->snapshot_index : 0) &&
	    index != *expect) {
		report(c, index, "compacted",
		       "entry %" PRIu64 " is at or below the snapshot index %"
		       PRIu64 " and not part of a kept tail", index,
		       o->snapshot_index);
		return;
	}
	if (index != *expect)
		report(c, *expect, "gap",
		       "gap in the log: entries %" PRIu64 "..%" PRIu64
		       " are missing (entry %" PRIu64 " follows %" PRIu64 ")",
		       *expect, index - 1, index, *expect - 1);
	*expect = index + 1;
	o->entries++;
	if (o->first_index == 0)
		o->first_index = index;
	o->last_index = index;
	if (len < RAFT_LOGSTORE_ENTRY_HEADER_BYTES ||
	    len - RAFT_LOGSTORE_ENTRY_HEADER_BYTES > RAFT_MAX_ENTRY_BYTES) {
		report(c, index, "entry",
		       "entry %" PRIu64 ": malformed record (%zu bytes)", index,
		       len);
		return;
	}
	term = rd64(v);
	type = v[8];
	if (term == 0 || (v[9] & ~ENTRY_FLAG_SEGMENT) != 0 || v[10] != 0 ||
	    v[11] != 0 ||
	    (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_NOOP &&
	     type != RAFT_ENTRY_CONFIG))
		report(c, index, "entry",
		       "entry %" PRIu64 ": malformed header (term %" PRIu64
		       ", type %u)", index, term, type);
	else if (v[9] & ENTRY_FLAG_SEGMENT)
		check_reference(c, index, term, type, v, len);
	else if (type == RAFT_ENTRY_CONFIG &&
		 raft_configuration_decode(v + RAFT_LOGSTORE_ENTRY_HEADER_BYTES,
					   len - RAFT_LOGSTORE_ENTRY_HEADER_BYTES,
					   &conf) != 0)
		report(c, index, "entry",
		       "entry %" PRIu64 ": malformed configuration", index);
	if (term < *prev_term)
		report(c, index, "term-order",
		       "term goes backwards at entry %" PRIu64 " (%" PRIu64
		       " after %" PRIu64 ")", index, term, *prev_term);
	if (term > o->hs.term)
		report(c, index, "term-order",
		       "entry %" PRIu64 " has term %" PRIu64
		       " above the stored current term %" PRIu64, index, term,
		       o->hs.term);
	if (o->has_snapshot && index == o->snapshot_index &&
	    term != o->snapshot_term)
		report(c, index, "snapshot",
		       "entry %" PRIu64 " has term %" PRIu64
		       " but the snapshot there says %" PRIu64, index, term,
		       o->snapshot_term);
	if (term >= *prev_term)
		*prev_term = term;
}

static int walk(struct check *c, leveldb_t *db, leveldb_readoptions_t *ro,
		void (*progress)(void *ctx, uint64_t records), char *err,
		size_t err_size)
{
	struct raft_logstore_check *o = c->out;
	leveldb_iterator_t *it = leveldb_create_iterator(db, ro);
	uint64_t expect, prev_term, records = 0;
	bool seen_header = false;
	char *lerr = NULL;

	if (it == NULL)
		return -ENOMEM;
	/* The fixed records first: entries are judged against them. */
	for (int i = 0; i < 3; i++) {
		static const char keys[3] = {KEY_HEADER, KEY_HARD_STATE,
					     KEY_SNAPSHOT};
		size_t vlen = 0;
		char *val = leveldb_get(db, ro, &keys[i], 1, &vlen, &lerr);
		const uint8_t *v = (const uint8_t *)val;
		if (lerr != NULL) {
			snprintf(err, err_size, "cannot read the log store: %s",
				 lerr);
			leveldb_free(lerr);
			leveldb_iter_destroy(it);
			return -EIO;
		}
		if (val == NULL)
			continue;
		if (keys[i] == KEY_HEADER) {
			seen_header = true;
			check_header(c, v, vlen);
		} else if (keys[i] == KEY_HARD_STATE && vlen != 16) {
			report(c, 0, "hard-state",
			       "malformed hard state record (%zu bytes)", vlen);
		} else if (keys[i] == KEY_HARD_STATE) {
			o->hs.term = rd64(v);
			o->hs.vote = rd64(v + 8);
		} else {
			check_snapshot(c, v, vlen);
		}
		leveldb_free(val);
	}
	if (!seen_header)
		report(c, 0, "header",
		       "no header record: not a raftfs log store, or damaged");
	expect = o->has_snapshot ? o->snapshot_index + 1 : 1;
	prev_term = o->has_snapshot ? o->snapshot_term : 0;
	/* Then every record, in key order. */
	for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &klen);
		const uint8_t *v =
			(const uint8_t *)leveldb_iter_value(it, &vlen);
		if (++records % PROGRESS_EVERY == 0 && progress != NULL)
			progress(c->ctx, records);
		if (klen == 1 && (k[0] == KEY_HEADER || k[0] == KEY_HARD_STATE ||
				  k[0] == KEY_SNAPSHOT))
			continue;
		if (klen != ENTRY_KEY_BYTES || k[0] != KEY_ENTRY) {
			report(c, 0, "unknown-record",
			       "unknown record (key of %zu bytes, first 0x%02x)",
			       klen, klen ? k[0] : 0);
			continue;
		}
		check_entry(c, rd64(k + 1), v, vlen, &expect, &prev_term);
	}
	leveldb_iter_get_error(it, &lerr);
	leveldb_iter_destroy(it);
	if (lerr != NULL) {
		snprintf(err, err_size, "cannot read the log store: %s", lerr);
		leveldb_free(lerr);
		return -EIO;
	}
	check_segment_files(c);
	return 0;
}

int raft_logstore_check(const char *dir,
			void (*problem)(void *ctx, uint64_t index,
					const char *code, const char *detail),
			void (*progress)(void *ctx, uint64_t records),
			void *ctx, struct raft_logstore_check *out, char *err,
			size_t err_size)
{
	struct check c = {.problem = problem, .ctx = ctx, .out = out,
			  .dir = dir, .fd = -1};
	leveldb_options_t *opts = NULL;
	leveldb_readoptions_t *ro = NULL;
	leveldb_cache_t *cache = NULL;
	leveldb_t *db = NULL;
	char *lerr = NULL;
	struct stat st;
	int rc;

	memset(out, 0, sizeof(*out));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, err_size, "no log store at %s", dir);
		return -ENOENT;
	}
	opts = leveldb_options_create();
	ro = leveldb_readoptions_create();
	cache = leveldb_cache_create_lru(8u << 20);
	if (opts == NULL || ro == NULL || cache == NULL) {
		rc = -ENOMEM;
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	leveldb_options_set_create_if_missing(opts, 0);
	leveldb_options_set_paranoid_checks(opts, 1);
	leveldb_options_set_cache(opts, cache);
	leveldb_readoptions_set_verify_checksums(ro, 1);
	leveldb_readoptions_set_fill_cache(ro, 0);
	db = leveldb_open(opts, dir, &lerr);
	if (db == NULL) {
		snprintf(err, err_size,
			 "cannot open the log store %s: %s (corrupt, or the "
			 "node is running)",
			 dir, lerr != NULL ? lerr : "unknown error");
		leveldb_free(lerr);
		rc = -EIO;
		goto out;
	}
	rc = walk(&c, db, ro, progress, err, err_size);
out:
	if (c.fd >= 0)
		close(c.fd);
	free(c.segs);
	free(c.buf);
	if (db != NULL)
		leveldb_close(db);
	if (opts != NULL)
		leveldb_options_destroy(opts);
	if (cache != NULL)
		leveldb_cache_destroy(cache);
	if (ro != NULL)
		leveldb_readoptions_destroy(ro);
	return rc;
}
