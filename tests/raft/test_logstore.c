/*
 * The log store (raft/logstore.h): round trips, truncation, group writes,
 * compaction, every refusal on open, and a failing write.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <leveldb/c.h>

#include "raft/logstore.h"
#include "tests/lib/test_main.h"

#define CID "0123456789abcdef0123456789abcdef"

struct fixture {
	char dir[64];  /* the temp dir */
	char path[96]; /* the store inside it */
	char err[512];
};

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/raftfs-logstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Payload of entry i: a few bytes that depend on i and the term. */
static uint32_t payload(uint64_t index, uint64_t term, uint8_t *buf)
{
	uint32_t size = 1 + (uint32_t)(index % 40);
	for (uint32_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(index * 7 + term * 13 + i);
	return size;
}

/* Persist entries from..to with term, hard state (term, vote). */
static int put_entries(struct raft_logstore *ls, uint64_t from, uint64_t to,
		       uint64_t term, uint64_t truncate_from, char *err,
		       size_t err_size)
{
	uint32_t n = (uint32_t)(to - from + 1);
	struct raft_entry *e = calloc(n, sizeof(*e));
	uint8_t(*bufs)[64] = calloc(n, 64);
	struct raft_logstore_write w = {
		.hard_state_changed = true,
		.hard_state = {term, 1},
		.truncate_from = truncate_from,
		.n_entries = n,
		.entries = e,
	};
	assert_non_null(e);
	assert_non_null(bufs);
	for (uint32_t i = 0; i < n; i++) {
		e[i].index = from + i;
		e[i].term = term;
		e[i].type = RAFT_ENTRY_NORMAL;
		e[i].size = payload(from + i, term, bufs[i]);
		e[i].data = bufs[i];
	}
	int rc = raft_logstore_write(ls, &w, 1, err, err_size);
	free(e);
	free(bufs);
	return rc;
}

static void expect_entry(struct raft_logstore *ls, uint64_t index,
			 uint64_t term)
{
	struct raft_entry e;
	void *buf = NULL;
	uint8_t want[64];
	uint32_t size = payload(index, term, want);

	assert_int_equal(raft_logstore_get(ls, index, &e, &buf), 0);
	assert_int_equal(e.index, index);
	assert_int_equal(e.term, term);
	assert_int_equal(e.type, RAFT_ENTRY_NORMAL);
	assert_int_equal(e.size, size);
	assert_memory_equal(e.data, want, size);
	free(buf);
}

static struct raft_logstore *open_ok(struct fixture *f,
				     struct raft_logstore_info *info)
{
	struct raft_logstore *ls = NULL;
	int rc = raft_logstore_open(f->path, CID, 1, true, &ls, info, f->err,
				    sizeof(f->err));
	if (rc != 0)
		fail_msg("open: %d %s", rc, f->err);
	return ls;
}

static void test_create_write_reopen(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, &info);

	assert_true(info.created);
	assert_int_equal(info.last_index, 0);
	assert_int_equal(info.first_index, 1);
	assert_int_equal(put_entries(ls, 1, 10, 2, 0, f->err, sizeof(f->err)),
			 0);
	raft_logstore_close(ls);

	ls = open_ok(f, &info);
	assert_false(info.created);
	assert_int_equal(info.hs.term, 2);
	assert_int_equal(info.hs.vote, 1);
	assert_int_equal(info.first_index, 1);
	assert_int_equal(info.last_index, 10);
	assert_int_equal(info.last_term, 2);
	for (uint64_t i = 1; i <= 10; i++)
		expect_entry(ls, i, 2);
	struct raft_entry e;
	void *buf = NULL;
	assert_int_equal(raft_logstore_get(ls, 11, &e, &buf), -ENOENT);
	raft_logstore_close(ls);
}

static void test_truncate_replaces_tail(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);

	assert_int_equal(put_entries(ls, 1, 8, 1, 0, f->err, sizeof(f->err)),
			 0);
	/* A new leader of term 3 replaces 5..8 with 5..6. */
	assert_int_equal(put_entries(ls, 5, 6, 3, 5, f->err, sizeof(f->err)),
			 0);
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 6);
	assert_int_equal(info.last_term, 3);
	expect_entry(ls, 4, 1);
	expect_entry(ls, 5, 3);
	expect_entry(ls, 6, 3);
	struct raft_entry e;
	void *buf = NULL;
	assert_int_equal(raft_logstore_get(ls, 7, &e, &buf), -ENOENT);
	raft_logstore_close(ls);
}

/* Several updates of the core in one batch, checked against each other. */
static void test_group_write(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);
	uint8_t b1[64], b2[64], b3[64];
	struct raft_entry e1 = {1, 1, RAFT_ENTRY_NORMAL, payload(1, 1, b1), b1};
	struct raft_entry e2 = {1, 2, RAFT_ENTRY_NORMAL, payload(2, 1, b2), b2};
	struct raft_entry e3 = {2, 2, RAFT_ENTRY_NORMAL, payload(2, 2, b3), b3};
	struct raft_logstore_write w[3] = {
		{true, {1, 1}, 0, 1, &e1, NULL, NULL, 0},
		{false, {0, 0}, 0, 1, &e2, NULL, NULL, 0},
		{true, {2, 0}, 2, 1, &e3, NULL, NULL, 0}, /* term 2 replaces entry 2 */
	};

	assert_int_equal(raft_logstore_write(ls, w, 3, f->err, sizeof(f->err)),
			 0);
	raft_logstore_info_get(ls, &info);
	assert_int_equal(info.last_index, 2);
	assert_int_equal(info.last_term, 2);
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.hs.term, 2);
	assert_int_equal(info.hs.vote, 0);
	expect_entry(ls, 1, 1);
	expect_entry(ls, 2, 2);
	raft_logstore_close(ls);
}

/* Writes the core would never hand out are refused and change nothing. */
static void test_bad_writes_refused(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);
	uint8_t b[64];
	struct raft_entry gap = {2, 7, RAFT_ENTRY_NORMAL, payload(7, 2, b), b};
	struct raft_entry back = {1, 6, RAFT_ENTRY_NORMAL, payload(6, 1, b), b};
	struct raft_entry future = {9, 6, RAFT_ENTRY_NORMAL, payload(6, 9, b), b};
	struct raft_logstore_write bad[] = {
		{false, {0, 0}, 0, 1, &gap, NULL, NULL, 0},      /* gap after 5 */
		{false, {0, 0}, 0, 1, &back, NULL, NULL, 0},     /* term 1 after term 2 */
		{false, {0, 0}, 0, 1, &future, NULL, NULL, 0},   /* above the current term */
		{true, {1, 1}, 0, 0, NULL, NULL, NULL, 0},       /* term goes back */
		{true, {2, 3}, 0, 0, NULL, NULL, NULL, 0},       /* a second vote in term 2 */
		{false, {0, 0}, 9, 0, NULL, NULL, NULL, 0},      /* truncation past the end */
	};

	assert_int_equal(put_entries(ls, 1, 5, 2, 0, f->err, sizeof(f->err)),
			 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f->err[0] = '\0';
		assert_int_equal(raft_logstore_write(ls, &bad[i], 1, f->err,
						     sizeof(f->err)),
				 -EINVAL);
		assert_true(strlen(f->err) > 0);
	}
	/* A valid update followed by an invalid one: the batch is refused
	 * whole. */
	uint8_t b6[64];
	struct raft_entry ok = {2, 6, RAFT_ENTRY_NORMAL, payload(6, 2, b6), b6};
	struct raft_logstore_write pair[2] = {{false, {0, 0}, 0, 1, &ok, NULL, NULL, 0},
					      bad[0]};
	pair[1].entries = &(struct raft_entry){2, 8, RAFT_ENTRY_NORMAL, 1, b};
	assert_int_equal(raft_logstore_write(ls, pair, 2, f->err,
					     sizeof(f->err)),
			 -EINVAL);
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 5);
	assert_int_equal(info.hs.term, 2);
	assert_int_equal(info.hs.vote, 1);
	raft_logstore_close(ls);
}

/* ---- tampering with the database underneath ---- */

static leveldb_t *raw_open(const char *path)
{
	leveldb_options_t *o = leveldb_options_create();
	char *err = NULL;
	leveldb_options_set_create_if_missing(o, 1);
	leveldb_t *db = leveldb_open(o, path, &err);
	leveldb_options_destroy(o);
	if (db == NULL)
		fail_msg("raw open: %s", err);
	return db;
}

static void raw_put(const char *path, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	leveldb_t *db = raw_open(path);
	leveldb_writeoptions_t *w = leveldb_writeoptions_create();
	char *err = NULL;
	leveldb_put(db, w, key, klen, val, vlen, &err);
	assert_null(err);
	leveldb_writeoptions_destroy(w);
	leveldb_close(db);
}

static void raw_delete(const char *path, const void *key, size_t klen)
{
	leveldb_t *db = raw_open(path);
	leveldb_writeoptions_t *w = leveldb_writeoptions_create();
	char *err = NULL;
	leveldb_delete(db, w, key, klen, &err);
	assert_null(err);
	leveldb_writeoptions_destroy(w);
	leveldb_close(db);
}

static void entry_key(uint8_t *k, uint64_t index)
{
	k[0] = 'e';
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(index >> (56 - 8 * i));
}

/* A store with entries 1..5 of term 2, closed. */
static void make_store(struct fixture *f)
{
	struct raft_logstore *ls = open_ok(f, NULL);
	assert_int_equal(put_entries(ls, 1, 5, 2, 0, f->err, sizeof(f->err)),
			 0);
	raft_logstore_close(ls);
}

/* Open must fail with want and a one-line message containing what. */
static void expect_refused(struct fixture *f, const char *cid, uint64_t node,
			   int want, const char *what)
{
	struct raft_logstore *ls = NULL;
	f->err[0] = '\0';
	int rc = raft_logstore_open(f->path, cid, node, true, &ls, NULL, f->err,
				    sizeof(f->err));
	if (rc != want || strstr(f->err, what) == NULL)
		fail_msg("open gave %d \"%s\", wanted %d with \"%s\"", rc,
			 f->err, want, what);
	assert_null(ls);
	assert_null(strchr(f->err, '\n'));
}

static void test_refuse_other_node(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	expect_refused(f, CID, 2, -EINVAL, "belongs to node 1, not node 2");
}

static void test_refuse_other_cluster(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	expect_refused(f, "ffffffffffffffffffffffffffffffff", 1, -EINVAL,
		       "belongs to cluster " CID);
}

static void test_refuse_newer_format(void **state)
{
	struct fixture *f = *state;
	uint8_t hdr[17 + 32] = {0x52, 0x46, 0x4c, 0x47, 0, 0, 0, 3,
				0, 0, 0, 0, 0, 0, 0, 1, 32};
	make_store(f);
	memcpy(hdr + 17, CID, 32);
	raw_put(f->path, "h", 1, hdr, sizeof(hdr));
	expect_refused(f, CID, 1, -EPROTONOSUPPORT, "format version 3 is newer");
}

static void test_refuse_gap(void **state)
{
	struct fixture *f = *state;
	uint8_t k[9];
	make_store(f);
	entry_key(k, 3);
	raw_delete(f->path, k, sizeof(k));
	expect_refused(f, CID, 1, -EUCLEAN, "gap in the log: entry 4 follows 2");
}

static void test_refuse_term_backwards(void **state)
{
	struct fixture *f = *state;
	uint8_t k[9], v[13] = {0, 0, 0, 0, 0, 0, 0, 1, RAFT_ENTRY_NORMAL, 0, 0,
			       0, 42};
	make_store(f);
	entry_key(k, 4);
	raw_put(f->path, k, sizeof(k), v, sizeof(v));
	expect_refused(f, CID, 1, -EUCLEAN, "term goes backwards at entry 4");
}

static void test_refuse_term_above_hard_state(void **state)
{
	struct fixture *f = *state;
	uint8_t hs[16] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	make_store(f);
	raw_put(f->path, "s", 1, hs, sizeof(hs));
	expect_refused(f, CID, 1, -EUCLEAN, "above the stored current term");
}

static void test_refuse_unknown_record(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	raw_put(f->path, "zz", 2, "x", 1);
	expect_refused(f, CID, 1, -EUCLEAN, "unknown record");
}

static void test_refuse_no_header(void **state)
{
	struct fixture *f = *state;
	raw_put(f->path, "s", 1, "0123456789abcdef", 16);
	expect_refused(f, CID, 1, -EUCLEAN, "no header record");
}

static void test_refuse_malformed_entry(void **state)
{
	struct fixture *f = *state;
	uint8_t k[9], v[12] = {0, 0, 0, 0, 0, 0, 0, 2, 99, 0, 0, 0};
	make_store(f);
	entry_key(k, 2);
	raw_put(f->path, k, sizeof(k), v, sizeof(v));
	expect_refused(f, CID, 1, -EUCLEAN, "malformed entry 2");
}

static void test_missing_without_create(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = NULL;
	assert_int_equal(raft_logstore_open(f->path, CID, 1, false, &ls, NULL,
					    f->err, sizeof(f->err)),
			 -ENOENT);
	assert_null(ls);
}

/* Flip one byte in the middle of the largest file named *suffix. */
static void corrupt_file(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char best[512] = "";
	off_t best_size = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), s = strlen(suffix);
		char path[512];
		struct stat st;
		if (n < s || strcmp(de->d_name + n - s, suffix) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && st.st_size > best_size) {
			best_size = st.st_size;
			snprintf(best, sizeof(best), "%s", path);
		}
	}
	closedir(d);
	assert_true(best_size > 64);
	int fd = open(best, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, best_size / 2), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, best_size / 2), 1);
	close(fd);
}

static void test_refuse_corrupt_log_file(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	corrupt_file(f->path, ".log");
	expect_refused(f, CID, 1, -EUCLEAN, "corrupt");
}

static void test_refuse_corrupt_table_file(void **state)
{
	struct fixture *f = *state;
	make_store(f);
	/* A reopen moves the recovered log into a table file. */
	raft_logstore_close(open_ok(f, NULL));
	corrupt_file(f->path, ".ldb");
	expect_refused(f, CID, 1, -EUCLEAN, "orrupt");
}

static struct raft_configuration conf3(void)
{
	struct raft_configuration c;
	memset(&c, 0, sizeof(c));
	c.n = 3;
	for (uint32_t i = 0; i < 3; i++) {
		c.members[i].id = i + 1;
		c.members[i].role = RAFT_VOTER;
		snprintf(c.members[i].address, RAFT_MAX_ADDRESS,
			 "127.0.0.%u:7000", i + 1);
	}
	return c;
}

static void test_compact(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);
	struct raft_snapshot_meta snap = {.index = 6, .term = 2,
					  .conf_index = 1, .conf = conf3()};
	struct raft_entry e;
	void *buf = NULL;

	assert_int_equal(put_entries(ls, 1, 10, 2, 0, f->err, sizeof(f->err)),
			 0);
	/* Not in the log, wrong term: refused. */
	snap.index = 11;
	assert_int_equal(raft_logstore_compact(ls, &snap, f->err,
					       sizeof(f->err)),
			 -EINVAL);
	snap.index = 6;
	snap.term = 3;
	assert_int_equal(raft_logstore_compact(ls, &snap, f->err,
					       sizeof(f->err)),
			 -EINVAL);
	snap.term = 2;
	assert_int_equal(raft_logstore_compact(ls, &snap, f->err,
					       sizeof(f->err)),
			 0);
	assert_int_equal(raft_logstore_get(ls, 6, &e, &buf), -ENOENT);
	expect_entry(ls, 7, 2);
	/* Truncating into the snapshot is refused. */
	assert_int_equal(put_entries(ls, 5, 5, 3, 5, f->err, sizeof(f->err)),
			 -EINVAL);
	raft_logstore_close(ls);

	ls = open_ok(f, &info);
	assert_true(info.has_snapshot);
	assert_int_equal(info.snapshot.index, 6);
	assert_int_equal(info.snapshot.conf.n, 3);
	assert_int_equal(info.first_index, 7);
	assert_int_equal(info.last_index, 10);

	/* The core restores from it. */
	struct raft_options o;
	struct raft *r = NULL;
	raft_options_default(&o, 1);
	assert_int_equal(raft_create(&o, &r), 0);
	assert_int_equal(raft_logstore_restore(ls, r, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(raft_last_index(r), 10);
	assert_int_equal(raft_term(r), 2);
	assert_int_equal(raft_term_at(r, 7), 2);
	raft_destroy(r);
	raft_logstore_close(ls);
}

static void test_restore_into_core(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = open_ok(f, NULL);
	struct raft_configuration c = conf3();
	uint8_t cbuf[4096];
	struct raft_entry ce = {1, 1, RAFT_ENTRY_CONFIG,
				(uint32_t)raft_configuration_encoded_size(3),
				cbuf};
	struct raft_logstore_write w = {true, {1, 0}, 0, 1, &ce, NULL, NULL, 0};
	raft_configuration_encode(&c, cbuf);
	assert_int_equal(raft_logstore_write(ls, &w, 1, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(put_entries(ls, 2, 40, 4, 0, f->err, sizeof(f->err)),
			 0);
	raft_logstore_close(ls);
	ls = open_ok(f, NULL);
	struct raft_options o;
	struct raft *r = NULL;
	raft_options_default(&o, 1);
	assert_int_equal(raft_create(&o, &r), 0);
	assert_int_equal(raft_logstore_restore(ls, r, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(raft_last_index(r), 40);
	assert_int_equal(raft_term(r), 4);
	assert_int_equal(raft_configuration(r)->n, 3);
	raft_destroy(r);
	raft_logstore_close(ls);
}

struct read_ctx {
	uint64_t next;
	uint64_t bytes;
};

static int read_one(void *ctx, const struct raft_entry *e)
{
	struct read_ctx *rc = ctx;
	uint8_t want[64];
	uint32_t size = payload(e->index, 2, want);
	if (e->index != rc->next || e->size != size ||
	    memcmp(e->data, want, size) != 0)
		return -EBADMSG;
	rc->next++;
	rc->bytes += e->size;
	return 0;
}

static void test_read_range(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = open_ok(f, NULL);
	struct read_ctx ctx = {3, 0};

	assert_int_equal(put_entries(ls, 1, 100, 2, 0, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(raft_logstore_read(ls, 3, 50, 1u << 20, read_one, &ctx),
			 48);
	assert_int_equal(ctx.next, 51);
	/* A byte budget stops early but reads at least one entry. */
	ctx.next = 60;
	assert_int_equal(raft_logstore_read(ls, 60, 100, 1, read_one, &ctx), 1);
	/* Beyond the end. */
	ctx.next = 99;
	assert_int_equal(raft_logstore_read(ls, 99, 101, 1u << 20, read_one,
					    &ctx),
			 -ENOENT);
	raft_logstore_close(ls);
}

/* A failing write (disk full) is reported, every later write fails, and
 * what was durable before survives. */
static void test_failed_write(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);

	assert_int_equal(put_entries(ls, 1, 5, 2, 0, f->err, sizeof(f->err)),
			 0);
	raft_logstore_fail_write_at(ls, 2, -ENOSPC);
	assert_int_equal(put_entries(ls, 6, 6, 2, 0, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(put_entries(ls, 7, 7, 2, 0, f->err, sizeof(f->err)),
			 -ENOSPC);
	assert_non_null(strstr(f->err, "disk full"));
	assert_non_null(strstr(f->err, "free space"));
	raft_logstore_fail_write_at(ls, 0, 0);
	assert_int_equal(put_entries(ls, 7, 7, 2, 0, f->err, sizeof(f->err)),
			 -EIO);
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 6);
	expect_entry(ls, 6, 2);
	raft_logstore_close(ls);
}

/* ---- payloads in segment files ---- */

#define BIG (RAFT_LOGSTORE_SEGMENT_MIN_BYTES + 1000u)

/* Entry i of term t is large when big(i): its size and bytes. */
static uint32_t big_payload(uint64_t index, uint64_t term, uint32_t size,
			    uint8_t *buf)
{
	for (uint32_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(index * 31 + term * 17 + i * 7 + (i >> 9));
	return size;
}

/* Sizes: every third entry small, the others large (of several sizes). */
static uint32_t size_of(uint64_t index)
{
	if (index % 3 == 0)
		return 1 + (uint32_t)(index % 40);
	return BIG + (uint32_t)(index % 7) * 4096u;
}

/* Persist entries from..to of term (sizes size_of) in one write. */
static int put_mixed(struct raft_logstore *ls, uint64_t from, uint64_t to,
		     uint64_t term, uint64_t truncate_from, char *err,
		     size_t err_size)
{
	uint32_t n = (uint32_t)(to - from + 1);
	struct raft_entry *e = calloc(n, sizeof(*e));
	uint8_t **bufs = calloc(n, sizeof(*bufs));
	struct raft_logstore_write w = {
		.hard_state_changed = true,
		.hard_state = {term, 1},
		.truncate_from = truncate_from,
		.n_entries = n,
		.entries = e,
	};
	assert_non_null(e);
	assert_non_null(bufs);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t size = size_of(from + i);
		bufs[i] = malloc(size);
		assert_non_null(bufs[i]);
		e[i].index = from + i;
		e[i].term = term;
		e[i].type = RAFT_ENTRY_NORMAL;
		e[i].size = big_payload(from + i, term, size, bufs[i]);
		e[i].data = bufs[i];
	}
	int rc = raft_logstore_write(ls, &w, 1, err, err_size);
	for (uint32_t i = 0; i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(e);
	return rc;
}

static void expect_mixed(struct raft_logstore *ls, uint64_t index,
			 uint64_t term)
{
	struct raft_entry e;
	void *buf = NULL;
	uint32_t size = size_of(index);
	uint8_t *want = malloc(size);

	assert_non_null(want);
	big_payload(index, term, size, want);
	assert_int_equal(raft_logstore_get(ls, index, &e, &buf), 0);
	assert_int_equal(e.index, index);
	assert_int_equal(e.term, term);
	assert_int_equal(e.size, size);
	assert_memory_equal(e.data, want, size);
	free(buf);
	free(want);
}

/* The segment files in the store, as a bit set of their numbers; bit 0
 * (no segment has number 0) stands for any numbered 64 or more. */
static uint64_t segments(struct fixture *f)
{
	DIR *d = opendir(f->path);
	struct dirent *de;
	uint64_t set = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		unsigned long long n;
		if (sscanf(de->d_name, "segment-%16llx", &n) == 1)
			set |= n < 64 ? 1ull << n : 1u;
	}
	closedir(d);
	return set;
}

static void seg_file(struct fixture *f, uint64_t n, char *path, size_t size)
{
	snprintf(path, size, "%s/segment-%016llx", f->path,
		 (unsigned long long)n);
}

static void raw_get(const char *path, const void *key, size_t klen,
		    char **val, size_t *vlen)
{
	leveldb_t *db = raw_open(path);
	leveldb_readoptions_t *r = leveldb_readoptions_create();
	char *err = NULL;
	*val = leveldb_get(db, r, key, klen, vlen, &err);
	assert_null(err);
	leveldb_readoptions_destroy(r);
	leveldb_close(db);
}

struct mixed_ctx {
	uint64_t next;
	uint64_t term;
};

static int read_mixed(void *ctx, const struct raft_entry *e)
{
	struct mixed_ctx *c = ctx;
	uint32_t size = size_of(e->index);
	uint8_t *want = malloc(size);
	int rc = 0;
	big_payload(e->index, c->term, size, want);
	if (e->index != c->next || e->size != size ||
	    memcmp(e->data, want, size) != 0)
		rc = -EBADMSG;
	free(want);
	c->next++;
	return rc;
}

/* Large payloads go to a segment, small ones stay in LevelDB; both read
 * back (get, read, after a reopen, restore). */
static void test_segment_round_trip(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);
	uint8_t k[9];
	char *val;
	size_t vlen;

	assert_int_equal(put_mixed(ls, 1, 10, 2, 0, f->err, sizeof(f->err)), 0);
	assert_int_equal(put_mixed(ls, 11, 20, 2, 0, f->err, sizeof(f->err)),
			 0);
	for (uint64_t i = 1; i <= 20; i++)
		expect_mixed(ls, i, 2);
	assert_int_equal(segments(f), 1u << 1);
	raft_logstore_close(ls);

	entry_key(k, 4);
	raw_get(f->path, k, sizeof(k), &val, &vlen);
	assert_int_equal(vlen, RAFT_LOGSTORE_ENTRY_REF_BYTES);
	leveldb_free(val);
	entry_key(k, 3);
	raw_get(f->path, k, sizeof(k), &val, &vlen);
	assert_int_equal(vlen, RAFT_LOGSTORE_ENTRY_HEADER_BYTES + size_of(3));
	leveldb_free(val);

	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 20);
	for (uint64_t i = 1; i <= 20; i++)
		expect_mixed(ls, i, 2);
	struct mixed_ctx ctx = {2, 2};
	assert_int_equal(raft_logstore_read(ls, 2, 20, 1u << 30, read_mixed,
					    &ctx),
			 19);
	/* Appends after a reopen go to a new segment. */
	assert_int_equal(put_mixed(ls, 21, 22, 2, 0, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 2));
	expect_mixed(ls, 22, 2);
	struct raft_options o;
	struct raft *r = NULL;
	raft_options_default(&o, 1);
	assert_int_equal(raft_create(&o, &r), 0);
	assert_int_equal(raft_logstore_restore(ls, r, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(raft_last_index(r), 22);
	raft_destroy(r);
	raft_logstore_close(ls);
}

/* A suffix truncation: the replaced entries' segment keeps what is still
 * referenced, a segment only the removed entries used is deleted, new
 * entries go to a new segment. */
static void test_segment_truncate(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);

	assert_int_equal(put_mixed(ls, 1, 5, 1, 0, f->err, sizeof(f->err)), 0);
	/* Term 2 replaces 4..5 with 4..8: segment 1 keeps 1..2, 2 has 4..8. */
	assert_int_equal(put_mixed(ls, 4, 8, 2, 4, f->err, sizeof(f->err)), 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 2));
	/* Term 3 replaces 4..8 with 4: segment 2 is no longer used. */
	assert_int_equal(put_mixed(ls, 4, 4, 3, 4, f->err, sizeof(f->err)), 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 3));
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 4);
	assert_int_equal(info.last_term, 3);
	expect_mixed(ls, 1, 1);
	expect_mixed(ls, 2, 1);
	expect_mixed(ls, 3, 1);
	expect_mixed(ls, 4, 3);
	struct raft_entry e;
	void *buf = NULL;
	assert_int_equal(raft_logstore_get(ls, 5, &e, &buf), -ENOENT);
	raft_logstore_close(ls);
}

/* A compaction deletes a segment once no kept entry references it, never
 * before; an install deletes them all. */
static void test_segment_compact(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);
	struct raft_snapshot_meta snap = {.index = 2, .term = 1,
					  .conf_index = 1, .conf = conf3()};

	assert_int_equal(put_mixed(ls, 1, 5, 1, 0, f->err, sizeof(f->err)), 0);
	assert_int_equal(put_mixed(ls, 5, 8, 2, 5, f->err, sizeof(f->err)), 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 2));
	/* 3 and 4 still in segment 1. */
	assert_int_equal(raft_logstore_compact(ls, &snap, f->err,
					       sizeof(f->err)),
			 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 2));
	expect_mixed(ls, 4, 1);
	/* Through 4: segment 1 goes, 2 stays. */
	snap.index = 4;
	assert_int_equal(raft_logstore_compact(ls, &snap, f->err,
					       sizeof(f->err)),
			 0);
	assert_int_equal(segments(f), 1u << 2);
	expect_mixed(ls, 5, 2);
	/* Through the compaction field of a write, keeping a tail. */
	struct raft_snapshot_meta s7 = {.index = 7, .term = 2,
					.conf_index = 1, .conf = conf3()};
	struct raft_logstore_write w = {.snapshot = &s7, .compact_below = 7};
	assert_int_equal(raft_logstore_write(ls, &w, 1, f->err, sizeof(f->err)),
			 0);
	assert_int_equal(segments(f), 1u << 2);
	expect_mixed(ls, 7, 2);
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.first_index, 7);
	expect_mixed(ls, 8, 2);
	/* An installed snapshot replaces everything. */
	struct raft_snapshot_meta s20 = {.index = 20, .term = 2,
					 .conf_index = 1, .conf = conf3()};
	struct raft_logstore_write iw = {.install = &s20};
	assert_int_equal(raft_logstore_write(ls, &iw, 1, f->err,
					     sizeof(f->err)),
			 0);
	assert_int_equal(segments(f), 0);
	assert_int_equal(put_mixed(ls, 21, 22, 2, 0, f->err, sizeof(f->err)),
			 0);
	expect_mixed(ls, 22, 2);
	assert_int_equal(segments(f), 1u << 3);
	raft_logstore_close(ls);
}

/* Payloads past RAFT_LOGSTORE_SEGMENT_BYTES roll over to a new file. */
static void test_segment_rolls(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = open_ok(f, NULL);
	uint32_t size = 1u << 20, per = RAFT_LOGSTORE_SEGMENT_BYTES / size;
	uint8_t *buf = malloc(size);
	struct raft_entry e[8];

	assert_non_null(buf);
	memset(buf, 0x5a, size);
	for (uint64_t i = 0; i < per + 8; i += 8) {
		for (uint32_t j = 0; j < 8; j++)
			e[j] = (struct raft_entry){1, i + j + 1,
						   RAFT_ENTRY_NORMAL, size, buf};
		struct raft_logstore_write w = {true, {1, 1}, 0, 8, e, NULL,
						NULL, 0};
		assert_int_equal(raft_logstore_write(ls, &w, 1, f->err,
						     sizeof(f->err)),
				 0);
	}
	assert_int_equal(segments(f), (1u << 1) | (1u << 2));
	struct stat st;
	char path[256];
	seg_file(f, 1, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= RAFT_LOGSTORE_SEGMENT_BYTES);
	raft_logstore_close(ls);
	ls = open_ok(f, NULL);
	struct raft_entry got;
	void *b = NULL;
	assert_int_equal(raft_logstore_get(ls, per + 3, &got, &b), 0);
	assert_memory_equal(got.data, buf, size);
	free(b);
	raft_logstore_close(ls);
	free(buf);
}

/* The payloads are synced but the batch is not written (a crash between
 * the two): the entries are not there, the bytes are never referenced,
 * and later writes do not append behind them. */
static void test_segment_crash_between(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore_info info;
	struct raft_logstore *ls = open_ok(f, NULL);

	assert_int_equal(put_mixed(ls, 1, 4, 1, 0, f->err, sizeof(f->err)), 0);
	raft_logstore_fail_write_at(ls, 1, -EIO);
	assert_int_equal(put_mixed(ls, 5, 8, 1, 0, f->err, sizeof(f->err)),
			 -EIO);
	raft_logstore_close(ls);
	/* A crash after a new segment was synced too. */
	char path[256];
	seg_file(f, 9, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "garbage", 7), 7);
	close(fd);

	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 4);
	/* The unreferenced file went; segment 1 keeps its extra bytes. */
	assert_int_equal(segments(f), 1u << 1);
	assert_int_equal(put_mixed(ls, 5, 8, 2, 0, f->err, sizeof(f->err)), 0);
	assert_int_equal(segments(f), (1u << 1) | (1u << 10));
	raft_logstore_close(ls);
	ls = open_ok(f, &info);
	assert_int_equal(info.last_index, 8);
	for (uint64_t i = 1; i <= 8; i++)
		expect_mixed(ls, i, i <= 4 ? 1 : 2);
	raft_logstore_close(ls);
}

/* Flip the byte at offset off of segment n. */
static void flip(struct fixture *f, uint64_t n, off_t off)
{
	char path[256];
	uint8_t b;
	seg_file(f, n, path, sizeof(path));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* A changed payload byte: reading the entry fails with -EUCLEAN and one
 * line naming the file; so does a restore; other entries still read. */
static void test_segment_corrupt_payload(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = open_ok(f, NULL);
	struct raft_entry e;
	void *buf = NULL;
	char msg[512];

	assert_int_equal(put_mixed(ls, 1, 2, 1, 0, f->err, sizeof(f->err)), 0);
	raft_logstore_close(ls);
	/* Entry 2's payload: after the file header, record 1 and entry 2's
	 * record header. */
	flip(f, 1, 32 + 32 + size_of(1) + 32 + 100);
	ls = open_ok(f, NULL);
	expect_mixed(ls, 1, 1);
	assert_int_equal(raft_logstore_get(ls, 2, &e, &buf), -EUCLEAN);
	assert_null(buf);
	raft_logstore_read_error(ls, msg, sizeof(msg));
	assert_non_null(strstr(msg, "segment-0000000000000001"));
	assert_non_null(strstr(msg, "checksum mismatch"));
	assert_null(strchr(msg, '\n'));
	struct mixed_ctx ctx = {1, 1};
	assert_int_equal(raft_logstore_read(ls, 1, 2, 1u << 30, read_mixed,
					    &ctx),
			 -EUCLEAN);
	struct raft_options o;
	struct raft *r = NULL;
	raft_options_default(&o, 1);
	assert_int_equal(raft_create(&o, &r), 0);
	assert_int_equal(raft_logstore_restore(ls, r, f->err, sizeof(f->err)),
			 -EUCLEAN);
	assert_non_null(strstr(f->err, "segment-0000000000000001"));
	raft_destroy(r);
	raft_logstore_close(ls);
	/* A changed record header: named too. */
	flip(f, 1, 32 + 32 + size_of(1) + 10);
	ls = open_ok(f, NULL);
	assert_int_equal(raft_logstore_get(ls, 2, &e, &buf), -EUCLEAN);
	raft_logstore_read_error(ls, msg, sizeof(msg));
	assert_non_null(strstr(msg, "segment-0000000000000001"));
	raft_logstore_close(ls);
}

/* A segment cut short, missing, or with a bad header: open refuses with
 * one line naming the file. */
static void test_segment_short_missing(void **state)
{
	struct fixture *f = *state;
	struct raft_logstore *ls = open_ok(f, NULL);
	char path[256];

	assert_int_equal(put_mixed(ls, 1, 5, 1, 0, f->err, sizeof(f->err)), 0);
	raft_logstore_close(ls);
	seg_file(f, 1, path, sizeof(path));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	expect_refused(f, CID, 1, -EUCLEAN,
		       "segment file segment-0000000000000001 is short");
	assert_int_equal(truncate(path, 10), 0);
	expect_refused(f, CID, 1, -EUCLEAN,
		       "segment file segment-0000000000000001 has no valid "
		       "header");
	assert_int_equal(unlink(path), 0);
	expect_refused(f, CID, 1, -EUCLEAN,
		       "segment file segment-0000000000000001: No such file");
}

/* A format-1 store (no segments) opens and works; its first large entry
 * raises the header to format 2. A format-1 header with a reference is
 * refused. */
static void test_segment_format1_store(void **state)
{
	struct fixture *f = *state;
	uint8_t hdr[17 + 32] = {0x52, 0x46, 0x4c, 0x47, 0, 0, 0, 1,
				0, 0, 0, 0, 0, 0, 0, 1, 32};
	struct raft_logstore_info info;
	char *val;
	size_t vlen;

	make_store(f);
	memcpy(hdr + 17, CID, 32);
	raw_put(f->path, "h", 1, hdr, sizeof(hdr));
	struct raft_logstore *ls = open_ok(f, &info);
	expect_entry(ls, 5, 2);
	put_entries(ls, 6, 6, 2, 0, f->err, sizeof(f->err));
	raft_logstore_close(ls);
	raw_get(f->path, "h", 1, &val, &vlen);
	assert_int_equal((uint8_t)val[7], 1);
	leveldb_free(val);
	ls = open_ok(f, &info);
	assert_int_equal(put_mixed(ls, 7, 8, 2, 0, f->err, sizeof(f->err)), 0);
	raft_logstore_close(ls);
	raw_get(f->path, "h", 1, &val, &vlen);
	assert_int_equal((uint8_t)val[7], 2);
	leveldb_free(val);
	ls = open_ok(f, &info);
	expect_mixed(ls, 8, 2);
	raft_logstore_close(ls);
	raw_put(f->path, "h", 1, hdr, sizeof(hdr));
	expect_refused(f, CID, 1, -EUCLEAN, "references a segment but the "
					    "store's format version is 1");
}

/* Readers racing with compactions that unlink segments: an entry is
 * either read whole or reported gone (-ENOENT), never damaged. */
struct race {
	struct raft_logstore *ls;
	uint64_t published; /* last index durable (atomic) */
	int stop;           /* atomic */
	uint64_t reads, gone;
	int bad;            /* first unexpected rc */
};

static int race_read_one(void *ctx, const struct raft_entry *e)
{
	(void)ctx;
	return e->size == size_of(e->index) ? 0 : -EBADMSG;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	uint64_t n = 0;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && r->bad == 0) {
		uint64_t last = __atomic_load_n(&r->published, __ATOMIC_ACQUIRE);
		struct raft_entry e;
		void *buf = NULL;
		int rc;
		if (last < 4)
			continue;
		uint64_t i = last - (n++ % 4);
		if (n % 2 == 0) {
			rc = raft_logstore_get(r->ls, i, &e, &buf);
			if (rc == 0 && e.size != size_of(i))
				rc = -EBADMSG;
			free(buf);
		} else {
			long got = raft_logstore_read(r->ls, i - 3 > 0 ? i - 3 : 1,
						      i, 1u << 30, race_read_one,
						      NULL);
			rc = got < 0 ? (int)got : 0;
		}
		if (rc == 0)
			r->reads++;
		else if (rc == -ENOENT)
			r->gone++;
		else
			r->bad = rc;
	}
	return NULL;
}

static void test_segment_read_races_compaction(void **state)
{
	struct fixture *f = *state;
	struct race r = {.ls = open_ok(f, NULL)};
	struct raft_snapshot_meta snap = {.term = 1, .conf_index = 1,
					  .conf = conf3()};
	pthread_t t;
	uint64_t last = 0;

	assert_int_equal(pthread_create(&t, NULL, race_reader, &r), 0);
	for (int round = 0; round < 150 && r.bad == 0; round++) {
		/* Four entries (a new segment: the last one was compacted
		 * away), then everything compacted (that segment unlinked). */
		assert_int_equal(put_mixed(r.ls, last + 1, last + 4, 1, 0, f->err,
					   sizeof(f->err)),
				 0);
		last += 4;
		__atomic_store_n(&r.published, last, __ATOMIC_RELEASE);
		usleep(200);
		snap.index = last;
		assert_int_equal(raft_logstore_compact(r.ls, &snap, f->err,
						       sizeof(f->err)),
				 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	if (r.bad != 0) {
		char msg[512];
		raft_logstore_read_error(r.ls, msg, sizeof(msg));
		fail_msg("a read racing a compaction gave %d (%s)", r.bad, msg);
	}
	fprintf(stderr, "# %llu reads, %llu found their entry compacted\n",
		(unsigned long long)r.reads, (unsigned long long)r.gone);
	/* Everything was compacted: no segment file is left. */
	assert_int_equal(segments(f), 0);
	raft_logstore_close(r.ls);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_create_write_reopen, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_truncate_replaces_tail, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_group_write, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_bad_writes_refused, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_other_node, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_other_cluster, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_newer_format, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_gap, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_term_backwards, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_term_above_hard_state,
					  setup, teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_unknown_record, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_no_header, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_malformed_entry, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_missing_without_create, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_corrupt_log_file, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_refuse_corrupt_table_file, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_restore_into_core, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_read_range, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_segment_round_trip, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_truncate, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_compact, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_rolls, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_segment_crash_between, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_corrupt_payload, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_short_missing, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_format1_store, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_segment_read_races_compaction,
					  setup, teardown))
