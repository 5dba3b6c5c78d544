/*
 * Determinism: fresh stores applying the same command log reach the same
 * state hash, whatever restarts happen in between; a deliberate bug that
 * reads the clock in apply is caught; subtree hashes narrow a mismatch down
 * to the inode that differs. DET_COMMANDS sets the log length, SEED the
 * log.
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

struct log {
	uint8_t **cmds;
	size_t *lens;
	size_t n;
};

static uint64_t seed;

/* A random command log (the model drives the generator). */
static void make_log(struct log *l, size_t n, uint64_t log_seed)
{
	struct model m;
	struct fst_gen g;
	struct fs_result r;
	struct fs_cmd c;

	l->cmds = calloc(n, sizeof(*l->cmds));
	l->lens = calloc(n, sizeof(*l->lens));
	l->n = n;
	model_init(&m);
	fst_gen_init(&g, &m, log_seed);
	for (size_t i = 0; i < n; i++) {
		l->cmds[i] = i == 0 ? fst_gen_init_cmd(&g, &l->lens[i])
				    : fst_gen_next(&g, &l->lens[i]);
		assert_int_equal(fs_cmd_decode(l->cmds[i], l->lens[i], &c), 0);
		model_apply(&m, i + 1, &c, &r);
	}
	fst_gen_release(&g);
	model_release(&m);
}

static void free_log(struct log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->cmds[i]);
	free(l->cmds);
	free(l->lens);
}

/* Apply the log to a fresh store in dir; reopen every reopen_every
 * commands (0: never). */
static struct fs_store *replay(const char *dir, const struct log *l,
			       size_t reopen_every, uint32_t bugs)
{
	struct fs_store *s = NULL;
	struct fs_result r;

	assert_int_equal(fs_store_open(dir, &s), 0);
	fs_store_set_test_bugs(s, bugs);
	for (size_t i = 0; i < l->n; i++) {
		assert_int_equal(fs_store_apply(s, i + 1, l->cmds[i],
						l->lens[i], &r),
				 0);
		if (reopen_every != 0 && (i + 1) % reopen_every == 0) {
			fs_store_close(s);
			assert_int_equal(fs_store_open(dir, &s), 0);
			fs_store_set_test_bugs(s, bugs);
		}
	}
	return s;
}

struct fix {
	struct log log;
	char *dir_a;
	char *dir_b;
	struct fs_store *a;
	struct fs_store *b;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	seed = fst_seed((uint64_t)time(NULL));
	make_log(&f->log, fst_env_count("DET_COMMANDS", 20000), seed);
	f->dir_a = fst_tmpdir("det-a");
	f->dir_b = fst_tmpdir("det-b");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	fs_store_close(f->a);
	fs_store_close(f->b);
	fst_rmrf(f->dir_a);
	fst_rmrf(f->dir_b);
	free(f->dir_a);
	free(f->dir_b);
	free_log(&f->log);
	free(f);
	return 0;
}

static void test_same_log_same_hash(void **state)
{
	struct fix *f = *state;
	uint8_t ha[FS_HASH_BYTES], hb[FS_HASH_BYTES];

	f->a = replay(f->dir_a, &f->log, 0, 0);
	f->b = replay(f->dir_b, &f->log, 1777, 0);
	assert_int_equal(fs_store_applied_index(f->a), f->log.n);
	assert_int_equal(fs_store_hash(f->a, ha), 0);
	assert_int_equal(fs_store_hash(f->b, hb), 0);
	if (memcmp(ha, hb, sizeof(ha)) != 0)
		fail_msg("state hashes differ (replay: SEED=%" PRIu64 ")", seed);
	assert_int_equal(fs_store_subtree_hash(f->a, FS_ROOT_INO, ha), 0);
	assert_int_equal(fs_store_subtree_hash(f->b, FS_ROOT_INO, hb), 0);
	assert_memory_equal(ha, hb, sizeof(ha));
	print_message("determinism: seed %" PRIu64 ": %zu commands, equal "
		      "hashes\n", seed, f->log.n);
}

static void test_clock_in_apply_is_caught(void **state)
{
	struct fix *f = *state;
	uint8_t ha[FS_HASH_BYTES], hb[FS_HASH_BYTES];

	f->a = replay(f->dir_a, &f->log, 0, 0);
	f->b = replay(f->dir_b, &f->log, 0, FS_BUG_CLOCK_IN_APPLY);
	assert_int_equal(fs_store_hash(f->a, ha), 0);
	assert_int_equal(fs_store_hash(f->b, hb), 0);
	assert_memory_not_equal(ha, hb, sizeof(ha));
}

struct find {
	struct fs_store *a;
	struct fs_store *b;
	uint64_t differs; /* the child whose subtree hash differs */
	int count;
};

static int compare_child(void *ctx, const struct fs_dirent *e)
{
	struct find *fd = ctx;
	uint8_t ha[FS_HASH_BYTES], hb[FS_HASH_BYTES];

	if (e->cookie <= 2)
		return 0;
	assert_int_equal(fs_store_subtree_hash(fd->a, e->ino, ha), 0);
	assert_int_equal(fs_store_subtree_hash(fd->b, e->ino, hb), 0);
	if (memcmp(ha, hb, sizeof(ha)) != 0) {
		fd->differs = e->ino;
		fd->count++;
	}
	return 0;
}

static void test_subtree_hash_narrows_a_mismatch_to_its_inode(void **state)
{
	struct fix *f = *state;
	struct fst_proposer p = {9, 1, 0, 1};
	uint64_t ino = FS_ROOT_INO, target = FS_ROOT_INO;
	uint8_t ha[FS_HASH_BYTES], hb[FS_HASH_BYTES];
	struct fs_result r;
	struct fs_attr at;
	struct fs_cmd c;
	uint8_t *buf;
	size_t len;

	f->a = replay(f->dir_a, &f->log, 0, 0);
	f->b = replay(f->dir_b, &f->log, 0, 0);
	/* The directory with the highest inode number (often deep). */
	for (uint64_t i = 2; i < 20000; i++)
		if (fs_getattr(f->a, i, &at) == 0 && S_ISDIR(at.mode))
			target = i;
	/* One change on b only: an xattr of that directory. */
	fst_cmd(&c, FS_OP_SETXATTR, &p, (struct fs_time){1, 0});
	c.ino = target;
	c.name = "user.diff";
	c.name_len = 9;
	c.data = "x";
	c.data_len = 1;
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_store_apply(f->b, f->log.n + 1, buf, len, &r), 0);
	assert_int_equal(r.err, 0);
	free(buf);
	assert_int_equal(fs_store_apply_other(f->a, f->log.n + 1), 0);
	assert_int_equal(fs_store_hash(f->a, ha), 0);
	assert_int_equal(fs_store_hash(f->b, hb), 0);
	assert_memory_not_equal(ha, hb, sizeof(ha));
	/* Descend from the root into the one child that differs. */
	for (;;) {
		struct find fd = {f->a, f->b, 0, 0};
		assert_int_equal(fs_store_subtree_hash(f->a, ino, ha), 0);
		assert_int_equal(fs_store_subtree_hash(f->b, ino, hb), 0);
		assert_memory_not_equal(ha, hb, sizeof(ha));
		assert_int_equal(fs_readdir(f->a, ino, 0, compare_child, &fd),
				 0);
		if (fd.count == 0)
			break;
		assert_int_equal(fd.count, 1);
		ino = fd.differs;
	}
	assert_int_equal(ino, target);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(test_same_log_same_hash), T(test_clock_in_apply_is_caught),
	  T(test_subtree_hash_narrows_a_mismatch_to_its_inode))
