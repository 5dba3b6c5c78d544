/*
 * The fs store against the reference model (tests/fs/model.c): random
 * command sequences are applied to both; every result and, periodically,
 * the whole tree must match. MODEL_COMMANDS sets the count (default
 * 100,000), SEED replays a run; a mismatch prints the seed and index.
 */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "tests/fs/fs_test.h"
#include "tests/fs/model.h"

static uint64_t seed;
static uint64_t cur_index;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			print_message("mismatch at index %" PRIu64             \
				      " (replay: SEED=%" PRIu64 "): ",          \
				      cur_index, seed);                        \
			print_message(__VA_ARGS__);                            \
			print_message("\n");                                   \
			fail();                                                \
		}                                                              \
	} while (0)

static bool time_eq(struct fs_time a, struct fs_time b)
{
	return a.sec == b.sec && a.nsec == b.nsec;
}

static void check_attr(const struct fs_attr *s, const struct fs_attr *m,
		       const char *what)
{
	CHECK(s->ino == m->ino, "%s: ino %" PRIu64 " vs model %" PRIu64, what,
	      s->ino, m->ino);
	CHECK(s->mode == m->mode, "%s ino %" PRIu64 ": mode %o vs model %o",
	      what, m->ino, s->mode, m->mode);
	CHECK(s->nlink == m->nlink, "%s ino %" PRIu64 ": nlink %u vs %u", what,
	      m->ino, s->nlink, m->nlink);
	CHECK(s->uid == m->uid && s->gid == m->gid,
	      "%s ino %" PRIu64 ": owner", what, m->ino);
	CHECK(s->rdev == m->rdev, "%s ino %" PRIu64 ": rdev", what, m->ino);
	CHECK(s->size == m->size,
	      "%s ino %" PRIu64 ": size %" PRIu64 " vs %" PRIu64, what, m->ino,
	      s->size, m->size);
	CHECK(time_eq(s->atime, m->atime), "%s ino %" PRIu64 ": atime", what,
	      m->ino);
	CHECK(time_eq(s->mtime, m->mtime), "%s ino %" PRIu64 ": mtime", what,
	      m->ino);
	CHECK(time_eq(s->ctime, m->ctime), "%s ino %" PRIu64 ": ctime", what,
	      m->ino);
	CHECK(s->generation == m->generation, "%s ino %" PRIu64 ": generation",
	      what, m->ino);
	CHECK(s->blksize == m->blksize, "%s: blksize", what);
	/* Stored bytes never reach past the size. */
	CHECK(s->blocks * 512 <= (s->size + 511) / 512 * 512 ||
		      !S_ISREG(s->mode),
	      "%s ino %" PRIu64 ": %" PRIu64 " blocks for size %" PRIu64,
	      what, m->ino, s->blocks, s->size);
}

static void check_result(const struct fs_result *s, const struct fs_result *m,
			 uint8_t op)
{
	CHECK(s->err == m->err, "op %u: errno %d vs model %d", op, s->err,
	      m->err);
	if (m->err != 0)
		return;
	CHECK(s->ino == m->ino, "op %u: result ino", op);
	CHECK(s->count == m->count, "op %u: count", op);
	check_attr(&s->attr, &m->attr, "result");
}

struct dir_walk {
	struct model_inode *dir;
	size_t seen;
	uint64_t last_cookie;
	uint64_t parent;
};

static int dir_entry(void *ctx, const struct fs_dirent *e)
{
	struct dir_walk *w = ctx;
	struct model_entry *me;

	CHECK(e->cookie > w->last_cookie, "readdir cookies not increasing");
	w->last_cookie = e->cookie;
	if (e->cookie == 1) {
		CHECK(e->ino == w->dir->ino, "readdir: . of %" PRIu64,
		      w->dir->ino);
		return 0;
	}
	if (e->cookie == 2) {
		CHECK(e->ino == w->parent, "readdir: .. of %" PRIu64,
		      w->dir->ino);
		return 0;
	}
	me = model_find(w->dir, e->name, e->name_len);
	CHECK(me != NULL, "readdir of %" PRIu64 ": unexpected %.*s",
	      w->dir->ino, (int)e->name_len, e->name);
	CHECK(me->ino == e->ino && me->seq == e->cookie,
	      "readdir of %" PRIu64 ": %.*s ino/cookie", w->dir->ino,
	      (int)e->name_len, e->name);
	w->seen++;
	return 0;
}

static void check_tree(struct fs_store *s, struct model *m)
{
	static uint8_t buf[256 * 1024];
	struct fs_statfs st;

	for (uint64_t ino = 1; ino < m->next_ino + 2; ino++) {
		struct model_inode *mi = model_inode(m, ino);
		struct fs_attr sa, ma;
		int rc = fs_getattr(s, ino, &sa);

		if (mi == NULL) {
			CHECK(rc == -ENOENT, "ino %" PRIu64 " should not exist",
			      ino);
			continue;
		}
		CHECK(rc == 0, "getattr %" PRIu64 ": %d", ino, rc);
		model_attr(m, mi, &ma);
		check_attr(&sa, &ma, "tree");
		if (S_ISREG(mi->mode)) {
			size_t n = 0;
			CHECK(mi->size <= sizeof(buf), "file too big for test");
			rc = fs_read(s, ino, 0, sizeof(buf), buf, &n);
			CHECK(rc == 0 && n == mi->size,
			      "read %" PRIu64 ": rc %d n %zu", ino, rc, n);
			CHECK(n == 0 || memcmp(buf, mi->data, n) == 0,
			      "data of %" PRIu64 " differs", ino);
		} else if (S_ISLNK(mi->mode)) {
			size_t n = 0;
			rc = fs_readlink(s, ino, (char *)buf, sizeof(buf), &n);
			CHECK(rc == 0 && n == mi->target_len &&
				      memcmp(buf, mi->target, n) == 0,
			      "symlink %" PRIu64, ino);
		} else if (S_ISDIR(mi->mode)) {
			struct dir_walk w = {mi, 0, 0, mi->parent};
			rc = fs_readdir(s, ino, 0, dir_entry, &w);
			CHECK(rc == 0 && w.seen == mi->n_entries,
			      "readdir %" PRIu64 ": %zu of %zu entries", ino,
			      w.seen, mi->n_entries);
		}
		{
			size_t n = 0, names = 0;
			rc = fs_listxattr(s, ino, (char *)buf, sizeof(buf), &n);
			CHECK(rc == 0, "listxattr %" PRIu64, ino);
			for (size_t off = 0; off < n; off += strlen((char *)buf + off) + 1)
				names++;
			CHECK(names == mi->n_xattrs, "xattr count of %" PRIu64,
			      ino);
			for (size_t i = 0; i < mi->n_xattrs; i++) {
				static uint8_t v[FS_XATTR_VALUE_MAX];
				size_t vn = 0;
				rc = fs_getxattr(s, ino, mi->xattrs[i].name,
						 mi->xattrs[i].name_len, v,
						 sizeof(v), &vn);
				CHECK(rc == 0 && vn == mi->xattrs[i].len &&
					      memcmp(v, mi->xattrs[i].value,
						     vn) == 0,
				      "xattr %s of %" PRIu64,
				      mi->xattrs[i].name, ino);
			}
		}
		if (mi->nlink == 0) {
			uint64_t h[FS_HOLDERS_MAX];
			uint32_t n = 0;
			rc = fs_orphan_holders(s, ino, h, FS_HOLDERS_MAX, &n);
			CHECK(rc == 0 && n == mi->n_holders,
			      "orphan %" PRIu64 " holders", ino);
			for (uint32_t i = 0; i < n; i++) {
				bool found = false;
				for (uint32_t j = 0; j < mi->n_holders; j++)
					found = found || mi->holders[j] == h[i];
				CHECK(found, "orphan %" PRIu64 " holder", ino);
			}
		}
	}
	CHECK(fs_statfs(s, &st) == 0, "statfs");
	CHECK(st.files_free == m->max_inodes - m->used_inodes,
	      "statfs files_free %" PRIu64 " vs %" PRIu64, st.files_free,
	      m->max_inodes - m->used_inodes);
	CHECK(fs_store_applied_index(s) == m->applied, "applied index");
}

static void run_model(uint64_t run_seed, uint64_t n, uint64_t check_every)
{
	char *dir = fst_tmpdir("model");
	struct fs_store *s = NULL;
	struct model m;
	struct fst_gen g;
	struct fs_result rs, rm;
	struct fs_cmd cmd;
	uint8_t *buf;
	size_t len;
	uint64_t counts[4] = {0};

	seed = run_seed;
	assert_int_equal(fs_store_open(dir, &s), 0);
	model_init(&m);
	fst_gen_init(&g, &m, run_seed);
	for (cur_index = 1; cur_index <= n; cur_index++) {
		buf = cur_index == 1 ? fst_gen_init_cmd(&g, &len)
				     : fst_gen_next(&g, &len);
		CHECK(fs_store_apply(s, cur_index, buf, len, &rs) == 0,
		      "store error");
		CHECK(fs_cmd_decode(buf, len, &cmd) == 0, "decode");
		model_apply(&m, cur_index, &cmd, &rm);
		check_result(&rs, &rm, cmd.op);
		counts[rm.err == 0 ? 0 : rm.err == ESTALE ? 1 : 2]++;
		if (getenv("MODEL_TRACE") != NULL)
			print_message("trace %u %d\n", cmd.op, rm.err);
		free(buf);
		if (cur_index % check_every == 0)
			check_tree(s, &m);
	}
	cur_index = n;
	check_tree(s, &m);
	print_message("model: seed %" PRIu64 ": %" PRIu64 " commands, %" PRIu64
		      " succeeded, %" PRIu64 " failed with an errno, %" PRIu64
		      " stale ids, %zu results in the duplicate table\n",
		      run_seed, n, counts[0], counts[2], counts[1],
		      raft_dedup_table_count(m.dedup));
	fst_gen_release(&g);
	model_release(&m);
	fs_store_close(s);
	fst_rmrf(dir);
	free(dir);
}

static void test_model_random_commands(void **state)
{
	uint64_t n = fst_env_count("MODEL_COMMANDS", 100000);
	uint64_t runs = fst_env_count("MODEL_RUNS", 1);
	uint64_t base = fst_seed((uint64_t)time(NULL));

	(void)state;
	/* Several shorter runs from different seeds reach more states than
	 * one long one (fresh trees, fresh proposers). */
	for (uint64_t r = 0; r < runs; r++)
		run_model(base + r, n / runs, 1000);
}

TEST_MAIN(cmocka_unit_test(test_model_random_commands))
