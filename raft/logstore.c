/*
 * The log store over LevelDB's C API (layout and contract in
 * raft/logstore.h). The only file of raft/ that includes LevelDB.
 */

#define _GNU_SOURCE
#include "raft/logstore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <leveldb/c.h>

#include "raft/logstore_segment.h"

#define KEY_HEADER 'h'
#define KEY_HARD_STATE 's'
#define KEY_SNAPSHOT 'p'
#define KEY_ENTRY 'e'
#define ENTRY_KEY_BYTES 9u
#define HEADER_FIXED_BYTES 17u
#define SNAPSHOT_FIXED_BYTES 24u
/* Entry value byte 9: the payload is in a segment. */
#define ENTRY_FLAG_SEGMENT 0x01u

struct raft_logstore {
	char *dir;
	char *cluster_id;
	uint64_t node_id;
	uint32_t format; /* the header's format version */
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
	leveldb_cache_t *cache;
	struct raft_logstore_info info; /* as of the last successful write */
	/* The first failed write's errno; every later write fails. */
	int failed;
	char failed_msg[512];
	uint64_t fail_countdown; /* fault injection: 0 off */
	int fail_errno;
	struct raft_seg_writer segw; /* segments (writer thread only) */
	/* The last failed read's message (any thread, under read_mu). */
	pthread_mutex_t read_mu;
	char read_err[384];
};

/* ---- encoding ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void entry_key(uint8_t *key, uint64_t index)
{
	key[0] = KEY_ENTRY;
	put_u64(key + 1, index);
}

static void seterr(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/* LevelDB reports errors as text ("IO error: ...: No space left on
 * device", "Corruption: ..."); map it to an errno. */
static int leveldb_errno(const char *msg)
{
	if (strstr(msg, "No space left") != NULL)
		return -ENOSPC;
	if (strncmp(msg, "Corruption", 10) == 0)
		return -EUCLEAN;
	return -EIO;
}

/* Decode an entry record. An inline payload: e->data points into val and
 * ref->segment is 0. A payload in a segment: e->data is NULL, e->size
 * its size, *ref where it is. */
static int entry_decode(uint64_t index, const uint8_t *val, size_t len,
			struct raft_entry *e, struct raft_seg_ref *ref)
{
	ref->segment = 0;
	if (len < RAFT_LOGSTORE_ENTRY_HEADER_BYTES ||
	    len - RAFT_LOGSTORE_ENTRY_HEADER_BYTES > RAFT_MAX_ENTRY_BYTES)
		return -EUCLEAN;
	e->index = index;
	e->term = get_u64(val);
	e->type = val[8];
	if ((val[9] & ~ENTRY_FLAG_SEGMENT) != 0 || val[10] != 0 ||
	    val[11] != 0 || e->term == 0)
		return -EUCLEAN;
	if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP &&
	    e->type != RAFT_ENTRY_CONFIG)
		return -EUCLEAN;
	if (val[9] & ENTRY_FLAG_SEGMENT) {
		/* Only normal entries of a size that belongs there. */
		if (len != RAFT_LOGSTORE_ENTRY_REF_BYTES ||
		    e->type != RAFT_ENTRY_NORMAL)
			return -EUCLEAN;
		raft_seg_ref_decode(val + RAFT_LOGSTORE_ENTRY_HEADER_BYTES, ref);
		if (ref->segment == 0 || ref->size == 0 ||
		    ref->size > RAFT_MAX_ENTRY_BYTES ||
		    ref->offset < RAFT_SEG_HEADER_BYTES ||
		    ref->offset > RAFT_LOGSTORE_SEGMENT_BYTES + RAFT_MAX_ENTRY_BYTES) {
			ref->segment = 0;
			return -EUCLEAN;
		}
		e->size = ref->size;
		e->data = NULL;
		return 0;
	}
	e->size = (uint32_t)(len - RAFT_LOGSTORE_ENTRY_HEADER_BYTES);
	e->data = val + RAFT_LOGSTORE_ENTRY_HEADER_BYTES;
	if (e->type == RAFT_ENTRY_CONFIG) {
		struct raft_configuration conf;
		if (raft_configuration_decode(e->data, e->size, &conf) != 0)
			return -EUCLEAN;
	}
	return 0;
}

/* ---- segments ---- */

static int fail_store(struct raft_logstore *ls, int rc, const char *what,
		      char *err, size_t err_size);

static void read_error(struct raft_logstore *ls, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Remember why a read failed (raft_logstore_read_error). */
static void read_error(struct raft_logstore *ls, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&ls->read_mu);
	va_start(ap, fmt);
	vsnprintf(ls->read_err, sizeof(ls->read_err), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&ls->read_mu);
}

void raft_logstore_read_error(struct raft_logstore *ls, char *buf,
			      size_t size)
{
	pthread_mutex_lock(&ls->read_mu);
	snprintf(buf, size, "%s",
		 ls->read_err[0] != '\0' ? ls->read_err : "no read failed");
	pthread_mutex_unlock(&ls->read_mu);
}

/* Write and sync the stage's payloads; a failure fails the store. */
static int write_segments(struct raft_logstore *ls, struct raft_seg_stage *g,
			  char *err, size_t err_size)
{
	char what[128];
	int rc = raft_seg_stage_write(g, &ls->segw, what, sizeof(what));

	if (rc == 0)
		return 0;
	if (rc == -ENOMEM) {
		seterr(err, err_size, "log store %s: out of memory", ls->dir);
		return rc;
	}
	return fail_store(ls, rc == -ENOSPC ? rc : -EIO, what, err, err_size);
}

/* ---- open and validation ---- */

void raft_logstore_close(struct raft_logstore *ls)
{
	if (ls == NULL)
		return;
	if (ls->db != NULL)
		leveldb_close(ls->db);
	if (ls->opts != NULL)
		leveldb_options_destroy(ls->opts);
	if (ls->cache != NULL)
		leveldb_cache_destroy(ls->cache);
	if (ls->ropts != NULL)
		leveldb_readoptions_destroy(ls->ropts);
	if (ls->wopts != NULL)
		leveldb_writeoptions_destroy(ls->wopts);
	raft_seg_writer_release(&ls->segw);
	pthread_mutex_destroy(&ls->read_mu);
	free(ls->dir);
	free(ls->cluster_id);
	free(ls);
}

/* A point read; -ENOENT when missing. *val is LevelDB's (leveldb_free). */
static int db_get(struct raft_logstore *ls, const void *key, size_t klen,
		  char **val, size_t *len, char *err, size_t err_size)
{
	char *lerr = NULL;

	*val = leveldb_get(ls->db, ls->ropts, key, klen, len, &lerr);
	if (lerr != NULL) {
		int rc = leveldb_errno(lerr);
		seterr(err, err_size, "log store %s: %s", ls->dir, lerr);
		leveldb_free(lerr);
		return rc;
	}
	return *val == NULL ? -ENOENT : 0;
}

/* The header record of (cluster_id, node_id) at format version format. */
static void put_header(leveldb_writebatch_t *wb, const char *cluster_id,
		       uint64_t node_id, uint32_t format)
{
	uint8_t buf[HEADER_FIXED_BYTES + RAFT_LOGSTORE_MAX_CLUSTER_ID];
	size_t cid_len = strlen(cluster_id);
	char key = KEY_HEADER;

	put_u32(buf, RAFT_LOGSTORE_MAGIC);
	put_u32(buf + 4, format);
	put_u64(buf + 8, node_id);
	buf[16] = (uint8_t)cid_len;
	memcpy(buf + HEADER_FIXED_BYTES, cluster_id, cid_len);
	leveldb_writebatch_put(wb, &key, 1, (const char *)buf,
			       HEADER_FIXED_BYTES + cid_len);
}

static int write_header(struct raft_logstore *ls, const char *cluster_id,
			uint64_t node_id, char *err, size_t err_size)
{
	char *lerr = NULL;
	leveldb_writebatch_t *wb = leveldb_writebatch_create();

	if (wb == NULL)
		return -ENOMEM;
	put_header(wb, cluster_id, node_id, RAFT_LOGSTORE_FORMAT);
	leveldb_write(ls->db, ls->wopts, wb, &lerr);
	leveldb_writebatch_destroy(wb);
	if (lerr != NULL) {
		int rc = leveldb_errno(lerr);
		seterr(err, err_size, "log store %s: cannot write its header: %s",
		       ls->dir, lerr);
		leveldb_free(lerr);
		return rc;
	}
	return 0;
}

static int check_header(struct raft_logstore *ls, const char *cluster_id,
			uint64_t node_id, char *err, size_t err_size)
{
	char key = KEY_HEADER;
	char *val = NULL;
	size_t len = 0;
	int rc = db_get(ls, &key, 1, &val, &len, err, err_size);
	const uint8_t *p = (const uint8_t *)val;

	if (rc == -ENOENT) {
		seterr(err, err_size,
		       "log store %s: no header record; not a raftfs log store "
		       "or damaged, refusing to start",
		       ls->dir);
		return -EUCLEAN;
	}
	if (rc != 0)
		return rc;
	if (len < HEADER_FIXED_BYTES || get_u32(p) != RAFT_LOGSTORE_MAGIC ||
	    p[16] == 0 || p[16] > RAFT_LOGSTORE_MAX_CLUSTER_ID ||
	    len != HEADER_FIXED_BYTES + p[16]) {
		seterr(err, err_size,
		       "log store %s: malformed header record, refusing to "
		       "start",
		       ls->dir);
		rc = -EUCLEAN;
	} else if (get_u32(p + 4) > RAFT_LOGSTORE_FORMAT) {
		seterr(err, err_size,
		       "log store %s: format version %" PRIu32
		       " is newer than this build supports (%u); run a newer "
		       "raftfs",
		       ls->dir, get_u32(p + 4), RAFT_LOGSTORE_FORMAT);
		rc = -EPROTONOSUPPORT;
	} else if (get_u32(p + 4) == 0) {
		seterr(err, err_size,
		       "log store %s: format version 0 is invalid, refusing "
		       "to start",
		       ls->dir);
		rc = -EUCLEAN;
	} else if (get_u64(p + 8) != node_id) {
		seterr(err, err_size,
		       "log store %s belongs to node %" PRIu64 ", not node %" PRIu64
		       "; check --id and --data",
		       ls->dir, get_u64(p + 8), node_id);
		rc = -EINVAL;
	} else if (p[16] != strlen(cluster_id) ||
		   memcmp(p + HEADER_FIXED_BYTES, cluster_id, p[16]) != 0) {
		seterr(err, err_size,
		       "log store %s belongs to cluster %.*s, not %s; check "
		       "--data and --certs",
		       ls->dir, (int)p[16],
		       (const char *)p + HEADER_FIXED_BYTES, cluster_id);
		rc = -EINVAL;
	} else {
		ls->format = get_u32(p + 4);
	}
	leveldb_free(val);
	return rc;
}

static int load_hard_state(struct raft_logstore *ls, char *err,
			   size_t err_size)
{
	char key = KEY_HARD_STATE;
	char *val = NULL;
	size_t len = 0;
	int rc = db_get(ls, &key, 1, &val, &len, err, err_size);

	if (rc == -ENOENT)
		return 0; /* term 0, no vote: nothing persisted yet */
	if (rc != 0)
		return rc;
	if (len != 16) {
		seterr(err, err_size,
		       "log store %s: malformed hard state record, refusing "
		       "to start",
		       ls->dir);
		rc = -EUCLEAN;
	} else {
		ls->info.hs.term = get_u64((const uint8_t *)val);
		ls->info.hs.vote = get_u64((const uint8_t *)val + 8);
	}
	leveldb_free(val);
	return rc;
}

static int snapshot_decode(const uint8_t *p, size_t len,
			   struct raft_snapshot_meta *snap)
{
	if (len < SNAPSHOT_FIXED_BYTES)
		return -EUCLEAN;
	memset(snap, 0, sizeof(*snap));
	snap->index = get_u64(p);
	snap->term = get_u64(p + 8);
	snap->conf_index = get_u64(p + 16);
	if (snap->index == 0 || snap->term == 0 ||
	    snap->conf_index > snap->index)
		return -EUCLEAN;
	if (raft_configuration_decode(p + SNAPSHOT_FIXED_BYTES,
				      len - SNAPSHOT_FIXED_BYTES,
				      &snap->conf) != 0)
		return -EUCLEAN;
	return 0;
}

static int load_snapshot(struct raft_logstore *ls, char *err, size_t err_size)
{
	char key = KEY_SNAPSHOT;
	char *val = NULL;
	size_t len = 0;
	int rc = db_get(ls, &key, 1, &val, &len, err, err_size);

	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	rc = snapshot_decode((const uint8_t *)val, len, &ls->info.snapshot);
	leveldb_free(val);
	if (rc != 0) {
		seterr(err, err_size,
		       "log store %s: malformed snapshot record, refusing to "
		       "start",
		       ls->dir);
		return rc;
	}
	ls->info.has_snapshot = true;
	return 0;
}

/* Entry index references ref: a format-2 store, noted for the checks of
 * raft_seg_writer_open_check. */
static int note_reference(struct raft_logstore *ls, uint64_t index,
			  const struct raft_seg_ref *ref, char *err,
			  size_t err_size)
{
	if (ls->format < 2) {
		seterr(err, err_size,
		       "log store %s: entry %" PRIu64 " references a segment "
		       "but the store's format version is %" PRIu32
		       ", refusing to start",
		       ls->dir, index, ls->format);
		return -EUCLEAN;
	}
	return raft_seg_writer_note(&ls->segw, index, ref);
}

/* Walk every record: known keys only, entries contiguous from the
 * snapshot, terms in order and within the hard state's. */
static int scan_records(struct raft_logstore *ls, char *err, size_t err_size)
{
	leveldb_iterator_t *it = leveldb_create_iterator(ls->db, ls->ropts);
	uint64_t expect = ls->info.has_snapshot ? ls->info.snapshot.index + 1
						: 1;
	uint64_t prev_term = ls->info.has_snapshot ? ls->info.snapshot.term : 0;
	bool first = true;
	char *lerr = NULL;
	int rc = 0;

	if (it == NULL)
		return -ENOMEM;
	ls->info.first_index = expect;
	ls->info.last_index = expect - 1;
	ls->info.last_term = prev_term;
	for (leveldb_iter_seek_to_first(it); rc == 0 && leveldb_iter_valid(it);
	     leveldb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &klen);
		const uint8_t *v = (const uint8_t *)leveldb_iter_value(it, &vlen);
		struct raft_seg_ref ref;
		struct raft_entry e;

		if (klen == 1 && (k[0] == KEY_HEADER || k[0] == KEY_HARD_STATE ||
				  k[0] == KEY_SNAPSHOT))
			continue;
		if (klen != ENTRY_KEY_BYTES || k[0] != KEY_ENTRY) {
			seterr(err, err_size,
			       "log store %s: unknown record (key of %zu bytes, "
			       "first 0x%02x), refusing to start",
			       ls->dir, klen, klen ? k[0] : 0);
			rc = -EUCLEAN;
			break;
		}
		uint64_t index = get_u64(k + 1);
		/* A kept tail: the log may start at or below the snapshot. */
		if (first && ls->info.has_snapshot && index < expect) {
			expect = index;
			prev_term = 0;
			ls->info.first_index = index;
			ls->info.last_index = index - 1;
		}
		first = false;
		if (index != expect) {
			seterr(err, err_size,
			       "log store %s: gap in the log: entry %" PRIu64
			       " follows %" PRIu64 ", refusing to start",
			       ls->dir, index, expect - 1);
			rc = -EUCLEAN;
			break;
		}
		if (entry_decode(index, v, vlen, &e, &ref) != 0) {
			seterr(err, err_size,
			       "log store %s: malformed entry %" PRIu64
			       ", refusing to start",
			       ls->dir, index);
			rc = -EUCLEAN;
			break;
		}
		if (ref.segment != 0) {
			rc = note_reference(ls, index, &ref, err, err_size);
			if (rc != 0)
				break;
		}
		if (e.term < prev_term) {
			seterr(err, err_size,
			       "log store %s: term goes backwards at entry %" PRIu64
			       " (%" PRIu64 " after %" PRIu64 "), refusing to start",
			       ls->dir, index, e.term, prev_term);
			rc = -EUCLEAN;
			break;
		}
		if (e.term > ls->info.hs.term) {
			seterr(err, err_size,
			       "log store %s: entry %" PRIu64 " has term %" PRIu64
			       " above the stored current term %" PRIu64
			       ", refusing to start",
			       ls->dir, index, e.term, ls->info.hs.term);
			rc = -EUCLEAN;
			break;
		}
		if (ls->info.has_snapshot && index == ls->info.snapshot.index &&
		    e.term != ls->info.snapshot.term) {
			seterr(err, err_size,
			       "log store %s: entry %" PRIu64 " has term %" PRIu64
			       " but the snapshot there says %" PRIu64
			       ", refusing to start",
			       ls->dir, index, e.term, ls->info.snapshot.term);
			rc = -EUCLEAN;
			break;
		}
		prev_term = e.term;
		ls->info.last_index = index;
		ls->info.last_term = e.term;
		expect++;
	}
	if (rc == 0 && ls->info.has_snapshot &&
	    ls->info.last_index < ls->info.snapshot.index) {
		if (ls->info.last_index >= ls->info.first_index) {
			seterr(err, err_size,
			       "log store %s: the log ends at %" PRIu64
			       ", below its snapshot %" PRIu64
			       ", refusing to start",
			       ls->dir, ls->info.last_index,
			       ls->info.snapshot.index);
			rc = -EUCLEAN;
		} else {
			ls->info.first_index = ls->info.snapshot.index + 1;
			ls->info.last_index = ls->info.snapshot.index;
			ls->info.last_term = ls->info.snapshot.term;
		}
	}
	if (rc == 0) {
		leveldb_iter_get_error(it, &lerr);
		if (lerr != NULL) {
			rc = leveldb_errno(lerr);
			seterr(err, err_size,
			       "log store %s: %s, refusing to start", ls->dir,
			       lerr);
			leveldb_free(lerr);
		}
	}
	leveldb_iter_destroy(it);
	if (rc == 0 && ls->info.has_snapshot &&
	    ls->info.snapshot.term > ls->info.hs.term) {
		seterr(err, err_size,
		       "log store %s: snapshot term %" PRIu64
		       " above the stored current term %" PRIu64
		       ", refusing to start",
		       ls->dir, ls->info.snapshot.term, ls->info.hs.term);
		rc = -EUCLEAN;
	}
	return rc;
}

static bool dir_exists(const char *dir)
{
	struct stat st;

	return stat(dir, &st) == 0;
}

static int db_open(struct raft_logstore *ls, bool create, char *err,
		   size_t err_size)
{
	char *lerr = NULL;

	ls->opts = leveldb_options_create();
	ls->ropts = leveldb_readoptions_create();
	ls->wopts = leveldb_writeoptions_create();
	ls->cache = leveldb_cache_create_lru(8u << 20);
	if (ls->opts == NULL || ls->ropts == NULL || ls->wopts == NULL ||
	    ls->cache == NULL)
		return -ENOMEM;
	leveldb_options_set_create_if_missing(ls->opts, create);
	leveldb_options_set_error_if_exists(ls->opts, create);
	/* Corruption anywhere but a torn tail refuses the open. */
	leveldb_options_set_paranoid_checks(ls->opts, 1);
	leveldb_options_set_cache(ls->opts, ls->cache);
	leveldb_options_set_write_buffer_size(ls->opts, 16u << 20);
	leveldb_options_set_compression(ls->opts, leveldb_no_compression);
	leveldb_readoptions_set_verify_checksums(ls->ropts, 1);
#ifdef RAFT_LOGSTORE_TEST_SKIP_SYNC
	/* Test-only (tests/powerloss/module.mk builds it into plstore-nosync
	 * alone): writes not synced, so the power-loss test must fail. */
	leveldb_writeoptions_set_sync(ls->wopts, 0);
#else
	leveldb_writeoptions_set_sync(ls->wopts, 1);
#endif
	ls->db = leveldb_open(ls->opts, ls->dir, &lerr);
	if (ls->db == NULL) {
		int rc = lerr != NULL ? leveldb_errno(lerr) : -EIO;
		if (rc == -EUCLEAN)
			seterr(err, err_size,
			       "log store %s is corrupt (%s), refusing to start; "
			       "the node must be restored from the cluster",
			       ls->dir, lerr);
		else
			seterr(err, err_size, "log store %s: cannot open: %s",
			       ls->dir, lerr != NULL ? lerr : "unknown error");
		leveldb_free(lerr);
		return rc;
	}
	return 0;
}

static int sync_parent(const char *dir)
{
	char *copy = strdup(dir);
	int fd, rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* A new store appears whole or not at all: it is built (header written
 * and synced) under dir.new, then renamed to dir. A crash in between
 * leaves only dir.new, which the next creation replaces. */
static int create_store(const char *dir, const char *cluster_id,
			uint64_t node_id, char *err, size_t err_size)
{
	struct raft_logstore *tmp = calloc(1, sizeof(*tmp));
	leveldb_options_t *opts = NULL;
	char *lerr = NULL;
	int rc;

	if (tmp != NULL) {
		raft_seg_writer_init(&tmp->segw, NULL, node_id);
		pthread_mutex_init(&tmp->read_mu, NULL);
	}
	if (tmp == NULL || asprintf(&tmp->dir, "%s.new", dir) < 0) {
		if (tmp != NULL)
			pthread_mutex_destroy(&tmp->read_mu);
		free(tmp);
		seterr(err, err_size, "log store %s: out of memory", dir);
		return -ENOMEM;
	}
	opts = leveldb_options_create();
	if (opts == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	leveldb_destroy_db(opts, tmp->dir, &lerr);
	leveldb_free(lerr);
	lerr = NULL;
	rc = db_open(tmp, true, err, err_size);
	if (rc == 0)
		rc = write_header(tmp, cluster_id, node_id, err, err_size);
	if (rc != 0)
		goto out;
	leveldb_close(tmp->db);
	tmp->db = NULL;
	if (rename(tmp->dir, dir) != 0) {
		rc = -errno;
		seterr(err, err_size, "log store %s: cannot create it: %s", dir,
		       strerror(errno));
		goto out;
	}
	rc = sync_parent(dir);
	if (rc != 0)
		seterr(err, err_size, "log store %s: cannot sync its parent: %s",
		       dir, strerror(-rc));
out:
	if (opts != NULL)
		leveldb_options_destroy(opts);
	raft_logstore_close(tmp);
	return rc;
}

int raft_logstore_open(const char *dir, const char *cluster_id,
		       uint64_t node_id, bool create,
		       struct raft_logstore **out,
		       struct raft_logstore_info *info, char *err,
		       size_t err_size)
{
	struct raft_logstore *ls = NULL;
	size_t cid_len = cluster_id != NULL ? strlen(cluster_id) : 0;
	bool fresh;
	int rc;

	*out = NULL;
	if (dir == NULL || node_id == 0 || cid_len == 0 ||
	    cid_len > RAFT_LOGSTORE_MAX_CLUSTER_ID) {
		seterr(err, err_size,
		       "log store: bad arguments (directory, node id, cluster "
		       "id of 1..%u bytes)",
		       RAFT_LOGSTORE_MAX_CLUSTER_ID);
		return -EINVAL;
	}
	fresh = !dir_exists(dir);
	if (fresh && !create) {
		seterr(err, err_size, "log store %s does not exist", dir);
		return -ENOENT;
	}
	if (fresh) {
		rc = create_store(dir, cluster_id, node_id, err, err_size);
		if (rc != 0)
			return rc;
	}
	ls = calloc(1, sizeof(*ls));
	if (ls == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	raft_seg_writer_init(&ls->segw, NULL, node_id);
	pthread_mutex_init(&ls->read_mu, NULL);
	ls->node_id = node_id;
	if ((ls->dir = strdup(dir)) == NULL ||
	    (ls->cluster_id = strdup(cluster_id)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	ls->segw.dir = ls->dir;
	rc = db_open(ls, false, err, err_size);
	if (rc != 0)
		goto fail;
	ls->info.created = fresh;
	rc = check_header(ls, cluster_id, node_id, err, err_size);
	if (rc != 0)
		goto fail;
	rc = load_hard_state(ls, err, err_size);
	if (rc == 0)
		rc = load_snapshot(ls, err, err_size);
	if (rc == 0)
		rc = scan_records(ls, err, err_size);
	if (rc == 0)
		rc = raft_seg_writer_open_check(&ls->segw, err, err_size);
	if (rc != 0)
		goto fail;
	if (info != NULL)
		*info = ls->info;
	*out = ls;
	return 0;
fail:
	if (rc == -ENOMEM)
		seterr(err, err_size, "log store %s: out of memory", dir);
	raft_logstore_close(ls);
	return rc;
}

void raft_logstore_info_get(const struct raft_logstore *ls,
			    struct raft_logstore_info *info)
{
	*info = ls->info;
}

/* ---- reads ---- */

/* Whether entry index still references ref (a reader that found ref's
 * segment gone raced with a compaction or truncation that removed the
 * entry first: then the entry is gone, not damaged). */
static bool still_referenced(struct raft_logstore *ls, uint64_t index,
			     const struct raft_seg_ref *ref)
{
	uint8_t key[ENTRY_KEY_BYTES];
	struct raft_seg_ref now;
	struct raft_entry e;
	char *val = NULL;
	size_t len = 0;
	int rc;

	entry_key(key, index);
	rc = db_get(ls, key, sizeof(key), &val, &len, NULL, 0);
	if (rc == -ENOENT)
		return false;
	if (rc != 0)
		return true;
	rc = entry_decode(index, (const uint8_t *)val, len, &e, &now);
	leveldb_free(val);
	return rc != 0 || (now.segment == ref->segment &&
			   now.offset == ref->offset);
}

/* Read the payload of e (its index and term) from the segment record ref
 * points at into *buf (grown to fit, *cap its size; the payload starts at
 * RAFT_SEG_RECORD_HEADER_BYTES), through *fd (open on segment *fd_seg,
 * reopened when another). 0, -ENOENT (the entry was removed meanwhile),
 * -EUCLEAN (missing or short file, a record that does not match: the
 * message for raft_logstore_read_error names the file), -EIO, -ENOMEM. */
static int seg_load(struct raft_logstore *ls, const struct raft_entry *e,
		    const struct raft_seg_ref *ref, int *fd, uint64_t *fd_seg,
		    uint8_t **buf, size_t *cap)
{
	size_t need = RAFT_SEG_RECORD_HEADER_BYTES + (size_t)ref->size;
	char path[4096], why[256];
	int rc = raft_seg_path(ls->dir, ref->segment, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (*cap < need) {
		uint8_t *b = realloc(*buf, need);
		if (b == NULL)
			return -ENOMEM;
		*buf = b;
		*cap = need;
	}
	if (*fd < 0 || *fd_seg != ref->segment) {
		if (*fd >= 0)
			close(*fd);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0) {
			int saved = errno;
			if (saved == ENOENT &&
			    !still_referenced(ls, e->index, ref))
				return -ENOENT;
			read_error(ls,
				   "log store %s: segment file %s: %s (entry "
				   "%" PRIu64 " references it); the node must "
				   "be restored from the cluster",
				   ls->dir, path, strerror(saved), e->index);
			return saved == ENOENT ? -EUCLEAN : -EIO;
		}
		*fd_seg = ref->segment;
	}
	rc = raft_seg_record_read(*fd, ref, e->index, e->term, *buf, why,
				  sizeof(why));
	if (rc != 0)
		read_error(ls,
			   "log store %s: segment file %s: %s; the node must be "
			   "restored from the cluster",
			   ls->dir, path, why);
	return rc;
}

int raft_logstore_get(struct raft_logstore *ls, uint64_t index,
		      struct raft_entry *e, void **buf)
{
	uint8_t key[ENTRY_KEY_BYTES];
	struct raft_seg_ref ref;
	char *val = NULL;
	size_t len = 0;
	void *copy;
	int rc;

	*buf = NULL;
	entry_key(key, index);
	rc = db_get(ls, key, sizeof(key), &val, &len, NULL, 0);
	if (rc != 0)
		return rc;
	rc = entry_decode(index, (const uint8_t *)val, len, e, &ref);
	if (rc == 0 && ref.segment != 0) {
		uint8_t *b = NULL;
		size_t cap = 0;
		uint64_t fd_seg = 0;
		int fd = -1;
		leveldb_free(val);
		rc = seg_load(ls, e, &ref, &fd, &fd_seg, &b, &cap);
		if (fd >= 0)
			close(fd);
		if (rc != 0) {
			free(b);
			return rc;
		}
		e->data = b + RAFT_SEG_RECORD_HEADER_BYTES;
		*buf = b;
		return 0;
	}
	if (rc != 0) {
		leveldb_free(val);
		read_error(ls, "log store %s: malformed entry %" PRIu64, ls->dir,
			   index);
		return rc;
	}
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		leveldb_free(val);
		return -ENOMEM;
	}
	memcpy(copy, val, len);
	leveldb_free(val);
	rc = entry_decode(index, copy, len, e, &ref);
	if (rc != 0) {
		free(copy);
		return rc;
	}
	*buf = copy;
	return 0;
}

long raft_logstore_read(struct raft_logstore *ls, uint64_t from, uint64_t to,
			uint64_t max_bytes,
			int (*fn)(void *ctx, const struct raft_entry *e),
			void *ctx)
{
	leveldb_iterator_t *it = leveldb_create_iterator(ls->db, ls->ropts);
	uint8_t key[ENTRY_KEY_BYTES];
	uint64_t bytes = 0, index = from;
	uint8_t *sbuf = NULL; /* segment payloads, reused */
	size_t scap = 0;
	uint64_t fd_seg = 0;
	int fd = -1;
	char *lerr = NULL;
	long count = 0;
	int rc = 0;

	if (it == NULL)
		return -ENOMEM;
	entry_key(key, from);
	leveldb_iter_seek(it, (const char *)key, sizeof(key));
	while (index <= to && (count == 0 || bytes < max_bytes)) {
		size_t klen, vlen;
		const uint8_t *k, *v;
		struct raft_seg_ref ref;
		struct raft_entry e;

		if (!leveldb_iter_valid(it)) {
			rc = -ENOENT;
			break;
		}
		k = (const uint8_t *)leveldb_iter_key(it, &klen);
		v = (const uint8_t *)leveldb_iter_value(it, &vlen);
		if (klen != ENTRY_KEY_BYTES || k[0] != KEY_ENTRY ||
		    get_u64(k + 1) != index) {
			rc = -ENOENT;
			break;
		}
		rc = entry_decode(index, v, vlen, &e, &ref);
		if (rc != 0)
			read_error(ls, "log store %s: malformed entry %" PRIu64,
				   ls->dir, index);
		if (rc == 0 && ref.segment != 0) {
			rc = seg_load(ls, &e, &ref, &fd, &fd_seg, &sbuf, &scap);
			if (rc == -ENOENT) /* removed meanwhile */
				break;
			if (rc == 0)
				e.data = sbuf + RAFT_SEG_RECORD_HEADER_BYTES;
		}
		if (rc == 0)
			rc = fn(ctx, &e);
		if (rc != 0)
			break;
		bytes += e.size;
		count++;
		index++;
		leveldb_iter_next(it);
	}
	if (rc == -ENOENT) {
		leveldb_iter_get_error(it, &lerr);
		if (lerr != NULL) {
			rc = leveldb_errno(lerr);
			leveldb_free(lerr);
		}
	}
	leveldb_iter_destroy(it);
	if (fd >= 0)
		close(fd);
	free(sbuf);
	return rc != 0 ? rc : count;
}

struct restore_ctx {
	struct raft *r;
};

static int restore_entry(void *ctx, const struct raft_entry *e)
{
	struct restore_ctx *rc = ctx;

	return raft_restore_entry(rc->r, e);
}

int raft_logstore_restore(struct raft_logstore *ls, struct raft *r, char *err,
			  size_t err_size)
{
	struct restore_ctx ctx = {r};
	int rc = raft_restore_begin(
		r, &ls->info.hs, ls->info.has_snapshot ? &ls->info.snapshot : NULL);
	uint64_t next = ls->info.first_index;

	while (rc == 0 && next <= ls->info.last_index) {
		long n = raft_logstore_read(ls, next, ls->info.last_index,
					    64u << 20, restore_entry, &ctx);
		if (n < 0)
			rc = (int)n;
		else
			next += (uint64_t)n;
	}
	if (rc == 0)
		rc = raft_restore_end(r);
	if (rc == -EUCLEAN)
		raft_logstore_read_error(ls, err, err_size);
	else if (rc != 0)
		seterr(err, err_size,
		       "log store %s: restoring the core failed at entry %" PRIu64
		       " (%s)",
		       ls->dir, next, strerror(-rc));
	return rc;
}

/* ---- writes ---- */

/* Fail the store for good after a failed write (see raft/logstore.h). */
static int fail_store(struct raft_logstore *ls, int rc, const char *what,
		      char *err, size_t err_size)
{
	ls->failed = rc;
	if (rc == -ENOSPC)
		snprintf(ls->failed_msg, sizeof(ls->failed_msg),
			 "log store %s: disk full (%s); free space on its "
			 "filesystem and restart the node",
			 ls->dir, what);
	else
		snprintf(ls->failed_msg, sizeof(ls->failed_msg),
			 "log store %s: write failed (%s); check the disk and "
			 "restart the node",
			 ls->dir, what);
	seterr(err, err_size, "%s", ls->failed_msg);
	return rc;
}

static int commit_batch(struct raft_logstore *ls, leveldb_writebatch_t *wb,
			char *err, size_t err_size)
{
	char *lerr = NULL;
	int rc;

	if (ls->fail_countdown > 0 && --ls->fail_countdown == 0) {
		ls->fail_countdown = 1; /* and every write after it */
		return fail_store(ls, ls->fail_errno, "injected failure", err,
				  err_size);
	}
	leveldb_write(ls->db, ls->wopts, wb, &lerr);
	if (lerr == NULL)
		return 0;
	rc = leveldb_errno(lerr);
	fail_store(ls, rc == -ENOSPC ? rc : -EIO, lerr, err, err_size);
	leveldb_free(lerr);
	return ls->failed;
}

/* The term of the entry at index as the pending batch leaves it: the
 * batch's earlier updates (pending[0..n_pending), latest first), then the
 * database. */
static int term_at(struct raft_logstore *ls, uint64_t index,
		   const struct raft_logstore_info *st,
		   const struct raft_logstore_write *pending, uint32_t n_pending,
		   uint64_t *term)
{
	uint8_t key[ENTRY_KEY_BYTES];
	struct raft_seg_ref ref;
	struct raft_entry e;
	char *val = NULL;
	size_t len = 0;
	int rc;

	for (uint32_t j = n_pending; j-- > 0;) {
		const struct raft_logstore_write *w = &pending[j];
		if (w->n_entries > 0 && index >= w->entries[0].index &&
		    index - w->entries[0].index < w->n_entries) {
			*term = w->entries[index - w->entries[0].index].term;
			return 0;
		}
		/* An install in the batch replaced everything before it;
		 * the database still holds what it deletes. */
		if (w->install != NULL) {
			if (index == w->install->index) {
				*term = w->install->term;
				return 0;
			}
			if (index == st->last_index) {
				*term = st->last_term;
				return 0;
			}
			return -ENOENT;
		}
	}
	if (index == 0) {
		*term = 0;
		return 0;
	}
	if (index == st->last_index) {
		*term = st->last_term;
		return 0;
	}
	if (st->has_snapshot && index == st->snapshot.index) {
		*term = st->snapshot.term;
		return 0;
	}
	/* The record alone: a payload in a segment is not read. */
	entry_key(key, index);
	rc = db_get(ls, key, sizeof(key), &val, &len, NULL, 0);
	if (rc != 0)
		return rc;
	rc = entry_decode(index, (const uint8_t *)val, len, &e, &ref);
	leveldb_free(val);
	if (rc == 0)
		*term = e.term;
	return rc;
}

static int put_snapshot(leveldb_writebatch_t *wb,
			const struct raft_snapshot_meta *snap)
{
	size_t conf_len = raft_configuration_encoded_size(snap->conf.n);
	uint8_t *val = malloc(SNAPSHOT_FIXED_BYTES + conf_len);
	char k = KEY_SNAPSHOT;

	if (val == NULL)
		return -ENOMEM;
	put_u64(val, snap->index);
	put_u64(val + 8, snap->term);
	put_u64(val + 16, snap->conf_index);
	raft_configuration_encode(&snap->conf, val + SNAPSHOT_FIXED_BYTES);
	leveldb_writebatch_put(wb, &k, 1, (const char *)val,
			       SNAPSHOT_FIXED_BYTES + conf_len);
	free(val);
	return 0;
}

static void delete_range(leveldb_writebatch_t *wb, uint64_t from, uint64_t to)
{
	uint8_t key[ENTRY_KEY_BYTES];

	for (uint64_t i = from; i <= to && i != 0; i++) {
		entry_key(key, i);
		leveldb_writebatch_delete(wb, (const char *)key, sizeof(key));
	}
}

static bool snapshot_meta_ok(const struct raft_snapshot_meta *snap)
{
	return snap->index > 0 && snap->term > 0 &&
	       snap->conf_index <= snap->index &&
	       raft_configuration_is_valid(&snap->conf);
}

/* An install or a compaction (see struct raft_logstore_write), checked
 * against st, added to wb, st advanced. */
static int add_snapshot(struct raft_logstore *ls, leveldb_writebatch_t *wb,
			struct raft_seg_stage *g,
			const struct raft_logstore_write *all, uint32_t i_w,
			struct raft_logstore_info *st, char *err,
			size_t err_size)
{
	const struct raft_logstore_write *w = &all[i_w];
	uint64_t term = 0;
	int rc;

	if (w->install != NULL) {
		const struct raft_snapshot_meta *m = w->install;
		if (!snapshot_meta_ok(m) || m->term > st->hs.term) {
			seterr(err, err_size,
			       "log store %s: refusing to install snapshot %" PRIu64
			       " term %" PRIu64 " (current term %" PRIu64 ")",
			       ls->dir, m->index, m->term, st->hs.term);
			return -EINVAL;
		}
		delete_range(wb, st->first_index, st->last_index);
		rc = raft_seg_stage_truncate(g, 0);
		if (rc == 0)
			rc = put_snapshot(wb, m);
		if (rc != 0)
			return rc;
		st->has_snapshot = true;
		st->snapshot = *m;
		st->first_index = m->index + 1;
		st->last_index = m->index;
		st->last_term = m->term;
	}
	if (w->snapshot != NULL) {
		const struct raft_snapshot_meta *m = w->snapshot;
		uint64_t base = st->has_snapshot ? st->snapshot.index : 0;
		if (!snapshot_meta_ok(m) || m->index <= base ||
		    m->index > st->last_index || w->compact_below > m->index + 1) {
			seterr(err, err_size,
			       "log store %s: cannot compact to %" PRIu64
			       " below %" PRIu64 " (log holds %" PRIu64
			       "..%" PRIu64 ", snapshot %" PRIu64 ")",
			       ls->dir, m->index, w->compact_below,
			       st->first_index, st->last_index, base);
			return -EINVAL;
		}
		rc = term_at(ls, m->index, st, all, i_w, &term);
		if (rc != 0 || term != m->term) {
			seterr(err, err_size,
			       "log store %s: cannot compact to %" PRIu64
			       ": its term is %" PRIu64 ", not %" PRIu64,
			       ls->dir, m->index, term, m->term);
			return rc != 0 ? rc : -EINVAL;
		}
		rc = put_snapshot(wb, m);
		if (rc != 0)
			return rc;
		if (w->compact_below > st->first_index) {
			delete_range(wb, st->first_index, w->compact_below - 1);
			st->first_index = w->compact_below;
			rc = raft_seg_stage_compact(g, w->compact_below);
			if (rc != 0)
				return rc;
		}
		st->has_snapshot = true;
		st->snapshot = *m;
	}
	return 0;
}

/* Check one update against the state st the earlier ones leave, add it to
 * wb and advance st. */
static int add_update(struct raft_logstore *ls, leveldb_writebatch_t *wb,
		      struct raft_seg_stage *g,
		      const struct raft_logstore_write *all, uint32_t i_w,
		      struct raft_logstore_info *st, char *err,
		      size_t err_size)
{
	const struct raft_logstore_write *w = &all[i_w];
	uint64_t base = st->has_snapshot ? st->snapshot.index : 0;
	uint64_t after = st->last_index;
	uint64_t term = st->hs.term;
	uint64_t prev_term;
	uint8_t key[ENTRY_KEY_BYTES];
	int rc;

	if (w->hard_state_changed) {
		if (w->hard_state.term < st->hs.term ||
		    (w->hard_state.term == st->hs.term && st->hs.vote != 0 &&
		     w->hard_state.vote != st->hs.vote)) {
			seterr(err, err_size,
			       "log store %s: refusing a hard state going "
			       "backwards (term %" PRIu64 " vote %" PRIu64
			       " after term %" PRIu64 " vote %" PRIu64 ")",
			       ls->dir, w->hard_state.term, w->hard_state.vote,
			       st->hs.term, st->hs.vote);
			return -EINVAL;
		}
		term = w->hard_state.term;
	}
	if (w->install != NULL || w->snapshot != NULL) {
		struct raft_logstore_info before = *st;
		if (w->hard_state_changed)
			st->hs = w->hard_state;
		rc = add_snapshot(ls, wb, g, all, i_w, st, err, err_size);
		if (rc != 0) {
			*st = before;
			return rc;
		}
		base = st->has_snapshot ? st->snapshot.index : 0;
		after = st->last_index;
	}
	if (w->truncate_from != 0) {
		if (w->truncate_from <= base || w->truncate_from > after + 1) {
			seterr(err, err_size,
			       "log store %s: truncation at %" PRIu64
			       " outside the log (%" PRIu64 "..%" PRIu64 ")",
			       ls->dir, w->truncate_from, base + 1, after);
			return -EINVAL;
		}
		after = w->truncate_from - 1;
	}
	if (after == st->last_index) {
		prev_term = st->last_term;
		rc = 0;
	} else {
		rc = term_at(ls, after, st, all, i_w, &prev_term);
	}
	if (rc != 0) {
		seterr(err, err_size,
		       "log store %s: cannot read entry %" PRIu64 ": %s", ls->dir,
		       after, strerror(-rc));
		return rc;
	}
	for (uint32_t i = 0; i < w->n_entries; i++) {
		const struct raft_entry *e = &w->entries[i];
		if (e->index != after + 1 + i || e->term < prev_term ||
		    e->term > term || e->term == 0 || e->size > RAFT_MAX_ENTRY_BYTES ||
		    (e->size > 0 && e->data == NULL)) {
			seterr(err, err_size,
			       "log store %s: refusing entry %" PRIu64
			       " term %" PRIu64 " after entry %" PRIu64
			       " term %" PRIu64 " (current term %" PRIu64 ")",
			       ls->dir, e->index, e->term, after + i, prev_term,
			       term);
			return -EINVAL;
		}
		prev_term = e->term;
	}
	/* Valid: add it. */
	if (w->hard_state_changed) {
		uint8_t hs[16];
		char k = KEY_HARD_STATE;
		put_u64(hs, w->hard_state.term);
		put_u64(hs + 8, w->hard_state.vote);
		leveldb_writebatch_put(wb, &k, 1, (const char *)hs, sizeof(hs));
		st->hs = w->hard_state;
	}
	uint64_t end = after + w->n_entries;
	/* Entries beyond the new end are removed (a truncation longer than
	 * what replaces it). */
	for (uint64_t i = end + 1; i <= st->last_index; i++) {
		entry_key(key, i);
		leveldb_writebatch_delete(wb, (const char *)key, sizeof(key));
	}
	if (after < st->last_index) {
		rc = raft_seg_stage_truncate(g, after + 1);
		if (rc != 0)
			return rc;
	}
	for (uint32_t i = 0; i < w->n_entries; i++) {
		const struct raft_entry *e = &w->entries[i];
		uint8_t ref_val[RAFT_LOGSTORE_ENTRY_REF_BYTES];
		size_t len = RAFT_LOGSTORE_ENTRY_HEADER_BYTES + e->size;
		uint8_t *val;
		if (e->size >= RAFT_LOGSTORE_SEGMENT_MIN_BYTES &&
		    e->type == RAFT_ENTRY_NORMAL) {
			/* A large payload: to a segment, a reference here. */
			struct raft_seg_ref ref;
			rc = raft_seg_stage_append(g, e, &ref);
			if (rc != 0)
				return rc;
			val = ref_val;
			len = sizeof(ref_val);
			val[9] = ENTRY_FLAG_SEGMENT;
			raft_seg_ref_encode(&ref,
					    val + RAFT_LOGSTORE_ENTRY_HEADER_BYTES);
		} else {
			val = malloc(len);
			if (val == NULL)
				return -ENOMEM;
			val[9] = 0;
			if (e->size > 0)
				memcpy(val + RAFT_LOGSTORE_ENTRY_HEADER_BYTES,
				       e->data, e->size);
		}
		put_u64(val, e->term);
		val[8] = e->type;
		val[10] = val[11] = 0;
		entry_key(key, e->index);
		leveldb_writebatch_put(wb, (const char *)key, sizeof(key),
				       (const char *)val, len);
		if (val != ref_val)
			free(val);
	}
	st->last_index = end;
	st->last_term = prev_term;
	if (end < st->first_index)
		st->first_index = end + 1;
	return 0;
}

int raft_logstore_write(struct raft_logstore *ls,
			const struct raft_logstore_write *w, uint32_t n,
			char *err, size_t err_size)
{
	struct raft_logstore_info st = ls->info;
	struct raft_seg_stage g;
	leveldb_writebatch_t *wb;
	bool upgrade = false;
	int rc = 0;

	if (ls->failed != 0) {
		seterr(err, err_size, "%s", ls->failed_msg);
		return -EIO;
	}
	wb = leveldb_writebatch_create();
	if (wb == NULL)
		return -ENOMEM;
	rc = raft_seg_stage_init(&g, &ls->segw);
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = add_update(ls, wb, &g, w, i, &st, err, err_size);
	if (rc == 0 && g.n_app > 0 && ls->format < RAFT_LOGSTORE_FORMAT) {
		/* The first reference to a segment in a format-1 store: from
		 * this batch on, builds that know no segments refuse it. */
		put_header(wb, ls->cluster_id, ls->node_id,
			   RAFT_LOGSTORE_FORMAT);
		upgrade = true;
	}
	/* The payloads first, synced; then the batch that references
	 * them. A crash between the two leaves bytes nothing references. */
	if (rc == 0 && g.n_app > 0)
		rc = write_segments(ls, &g, err, err_size);
	if (rc == 0)
		rc = commit_batch(ls, wb, err, err_size);
	if (rc == 0) {
		ls->info = st;
		raft_seg_stage_commit(&g, &ls->segw);
		if (upgrade)
			ls->format = RAFT_LOGSTORE_FORMAT;
	} else if (rc == -ENOMEM) {
		seterr(err, err_size, "log store %s: out of memory", ls->dir);
	}
	raft_seg_stage_free(&g);
	leveldb_writebatch_destroy(wb);
	return rc;
}

int raft_logstore_compact(struct raft_logstore *ls,
			  const struct raft_snapshot_meta *snap, char *err,
			  size_t err_size)
{
	struct raft_logstore_info st = ls->info;
	uint64_t base = st.has_snapshot ? st.snapshot.index : 0;
	uint8_t fixed[SNAPSHOT_FIXED_BYTES];
	uint8_t key[ENTRY_KEY_BYTES];
	uint64_t term = 0;
	struct raft_seg_stage g;
	leveldb_writebatch_t *wb;
	uint8_t *val;
	size_t conf_len;
	char k = KEY_SNAPSHOT;
	int rc;

	if (ls->failed != 0) {
		seterr(err, err_size, "%s", ls->failed_msg);
		return -EIO;
	}
	if (snap->index <= base || snap->index > st.last_index ||
	    snap->conf_index > snap->index || snap->conf.n == 0) {
		seterr(err, err_size,
		       "log store %s: cannot compact up to %" PRIu64
		       " (log holds %" PRIu64 "..%" PRIu64 ")",
		       ls->dir, snap->index, base + 1, st.last_index);
		return -EINVAL;
	}
	rc = term_at(ls, snap->index, &st, NULL, 0, &term);
	if (rc != 0 || term != snap->term) {
		seterr(err, err_size,
		       "log store %s: cannot compact up to %" PRIu64
		       ": its term is %" PRIu64 ", not %" PRIu64,
		       ls->dir, snap->index, term, snap->term);
		return rc != 0 ? rc : -EINVAL;
	}
	conf_len = raft_configuration_encoded_size(snap->conf.n);
	val = malloc(SNAPSHOT_FIXED_BYTES + conf_len);
	wb = leveldb_writebatch_create();
	if (val == NULL || wb == NULL) {
		free(val);
		if (wb != NULL)
			leveldb_writebatch_destroy(wb);
		return -ENOMEM;
	}
	put_u64(fixed, snap->index);
	put_u64(fixed + 8, snap->term);
	put_u64(fixed + 16, snap->conf_index);
	memcpy(val, fixed, sizeof(fixed));
	raft_configuration_encode(&snap->conf, val + SNAPSHOT_FIXED_BYTES);
	leveldb_writebatch_put(wb, &k, 1, (const char *)val,
			       SNAPSHOT_FIXED_BYTES + conf_len);
	free(val);
	for (uint64_t i = st.first_index; i <= snap->index; i++) {
		entry_key(key, i);
		leveldb_writebatch_delete(wb, (const char *)key, sizeof(key));
	}
	rc = raft_seg_stage_init(&g, &ls->segw);
	if (rc == 0)
		rc = raft_seg_stage_compact(&g, snap->index + 1);
	if (rc == 0)
		rc = commit_batch(ls, wb, err, err_size);
	if (rc == 0)
		raft_seg_stage_commit(&g, &ls->segw);
	raft_seg_stage_free(&g);
	leveldb_writebatch_destroy(wb);
	if (rc != 0)
		return rc;
	ls->info.has_snapshot = true;
	ls->info.snapshot = *snap;
	ls->info.first_index = snap->index + 1;
	return 0;
}

void raft_logstore_fail_write_at(struct raft_logstore *ls, uint64_t n,
				 int err_no)
{
	ls->fail_countdown = n;
	ls->fail_errno = err_no < 0 ? err_no : -err_no;
}
