/* Backups (fs/backup.c): a store written to a file and restored into an
 * empty store holds the same tree; a file that is cut anywhere or has any
 * byte changed is refused and leaves the target store as it was. */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/sha256.h"
#include "raft/raft.h"
#include "tests/fs/fs_test.h"

struct fixture {
	char *dir;
	char src[4200], file[4200];
	struct fs_store *s;
	uint64_t index;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct model m;
	struct fst_gen g;
	struct fs_result r;
	struct fs_cmd c;
	size_t n = fst_env_count("BACKUP_COMMANDS", 3000);

	assert_non_null(f);
	f->dir = fst_tmpdir("backup");
	snprintf(f->src, sizeof(f->src), "%s/src", f->dir);
	snprintf(f->file, sizeof(f->file), "%s/backup.rfb", f->dir);
	assert_int_equal(fs_store_open(f->src, &f->s), 0);
	model_init(&m);
	fst_gen_init(&g, &m, fst_seed(7));
	for (size_t i = 0; i < n; i++) {
		size_t len;
		uint8_t *buf = i == 0 ? fst_gen_init_cmd(&g, &len)
				      : fst_gen_next(&g, &len);
		assert_int_equal(fs_cmd_decode(buf, len, &c), 0);
		model_apply(&m, i + 1, &c, &r);
		assert_int_equal(fs_store_apply(f->s, i + 1, buf, len, &r), 0);
		free(buf);
	}
	f->index = n;
	fst_gen_release(&g);
	model_release(&m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_store_close(f->s);
	fst_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

static void test_round_trip_same_tree(void **state)
{
	struct fixture *f = *state;
	struct fs_backup_info w, r;
	struct fs_store *t;
	uint8_t h1[FS_HASH_BYTES], h2[FS_HASH_BYTES];
	char dst[4300], err[600];
	struct stat st;

	assert_int_equal(fs_backup_write(f->s, 5, f->file, &w, err,
					 sizeof(err)),
			 0);
	assert_int_equal(w.index, f->index);
	assert_int_equal(w.term, 5);
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal((uint64_t)st.st_size, w.bytes);
	/* Never over an existing file. */
	assert_int_equal(fs_backup_write(f->s, 5, f->file, &w, err,
					 sizeof(err)),
			 -EEXIST);
	snprintf(dst, sizeof(dst), "%s/dst", f->dir);
	assert_int_equal(fs_store_open(dst, &t), 0);
	assert_int_equal(fs_backup_restore(t, f->file, &r, err, sizeof(err)),
			 0);
	assert_int_equal(r.index, f->index);
	assert_int_equal(r.bytes, (uint64_t)st.st_size);
	assert_int_equal(fs_store_applied_index(t), f->index);
	assert_int_equal(fs_store_subtree_hash(f->s, FS_ROOT_INO, h1), 0);
	assert_int_equal(fs_store_subtree_hash(t, FS_ROOT_INO, h2), 0);
	assert_memory_equal(h1, h2, sizeof(h1));
	/* Into a store that holds a filesystem: refused. */
	assert_int_equal(fs_backup_restore(t, f->file, &r, err, sizeof(err)),
			 -EEXIST);
	/* The restored store survives a reopen. */
	fs_store_close(t);
	assert_int_equal(fs_store_open(dst, &t), 0);
	assert_int_equal(fs_store_subtree_hash(t, FS_ROOT_INO, h2), 0);
	assert_memory_equal(h1, h2, sizeof(h1));
	fs_store_close(t);
}

/* Restore bad into a fresh store: refused, nothing there afterwards. */
static void expect_refused(struct fixture *f, const char *bad, int want,
			   int round)
{
	struct fs_backup_info r;
	struct fs_store *t;
	char dst[4300], err[600] = "";

	snprintf(dst, sizeof(dst), "%s/bad%d", f->dir, round);
	assert_int_equal(fs_store_open(dst, &t), 0);
	assert_int_equal(fs_backup_restore(t, bad, &r, err, sizeof(err)), want);
	assert_true(strlen(err) > 0);
	assert_false(fs_store_is_formatted(t));
	assert_int_equal(fs_store_applied_index(t), 0);
	fs_store_close(t);
	/* Nothing half-installed shows up at the next open either. */
	assert_int_equal(fs_store_open(dst, &t), 0);
	assert_false(fs_store_is_formatted(t));
	fs_store_close(t);
	fst_rmrf(dst);
}

static void test_damage_anywhere_refused(void **state)
{
	struct fixture *f = *state;
	struct fs_backup_info w;
	char bad[4300], err[600];
	uint64_t rng = fst_seed(11);
	uint8_t *buf;
	size_t len;
	int round = 0;

	assert_int_equal(fs_backup_write(f->s, 1, f->file, &w, err,
					 sizeof(err)),
			 0);
	buf = slurp(f->file, &len);
	snprintf(bad, sizeof(bad), "%s/bad.rfb", f->dir);
	/* Cut: at 0, inside the header, inside chunks, just before the
	 * end. */
	size_t cuts[] = {0, 10, 40, 45, len / 2, len - 30, len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		spill(bad, buf, cuts[i]);
		expect_refused(f, bad, -EBADMSG, round++);
	}
	/* One byte more. */
	{
		uint8_t *more = malloc(len + 1);
		memcpy(more, buf, len);
		more[len] = 0;
		spill(bad, more, len + 1);
		expect_refused(f, bad, -EBADMSG, round++);
		free(more);
	}
	/* One byte changed, anywhere (the header, chunk headers, records,
	 * the trailer). */
	for (int i = 0; i < 12; i++) {
		size_t at = i < 4 ? (size_t)i * 11 : i == 4 ? len - 1
						       : fst_below(&rng, len);
		buf[at] ^= 0x40;
		spill(bad, buf, len);
		expect_refused(f, bad, -EBADMSG, round++);
		buf[at] ^= 0x40;
	}
	/* Another format version, its header checksum right: not damage,
	 * a version this build does not read. */
	{
		uint32_t crc;
		buf[7] = 2;
		crc = raft_crc32c(0, buf, 32);
		buf[32] = (uint8_t)(crc >> 24);
		buf[33] = (uint8_t)(crc >> 16);
		buf[34] = (uint8_t)(crc >> 8);
		buf[35] = (uint8_t)crc;
		spill(bad, buf, len);
		expect_refused(f, bad, -EPROTONOSUPPORT, round++);
	}
	free(buf);
}

TEST_MAIN(cmocka_unit_test_setup_teardown(test_round_trip_same_tree, setup,
					  teardown),
	  cmocka_unit_test_setup_teardown(test_damage_anywhere_refused, setup,
					  teardown))
