/*
 * The fs store, one behaviour per test: the command codec rejects what is
 * malformed, apply keeps its contracts (index order, duplicates, atomic
 * failure, times), and the reads see holes, sizes and limits right.
 */

#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "tests/fs/fs_test.h"

struct fix {
	char *dir;
	struct fs_store *s;
	uint64_t index;
	struct fst_proposer p;
	struct fs_time clock;
	uint32_t block_size;
	uint64_t capacity;
};

static int apply_cmd(struct fix *f, const struct fs_cmd *c,
		     struct fs_result *res)
{
	size_t len;
	uint8_t *buf = fst_encode(c, &len);
	int rc = fs_store_apply(f->s, f->index + 1, buf, len, res);

	free(buf);
	if (rc == 0)
		f->index++;
	return rc;
}

/* Apply and return the command's errno (the store must not fail). */
static int run(struct fix *f, const struct fs_cmd *c, struct fs_result *res)
{
	struct fs_result r;

	assert_int_equal(apply_cmd(f, c, res != NULL ? res : &r), 0);
	return (res != NULL ? res : &r)->err;
}

static void cmd(struct fix *f, struct fs_cmd *c, uint8_t op)
{
	f->clock.sec++;
	fst_cmd(c, op, &f->p, f->clock);
}

static int setup_with(void **state, uint32_t block_size, uint64_t capacity)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct fs_cmd c;

	f->dir = fst_tmpdir("store");
	f->p = (struct fst_proposer){1, 1, 0, 1};
	f->clock.sec = 1000;
	f->block_size = block_size;
	f->capacity = capacity;
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	cmd(f, &c, FS_OP_INIT);
	c.block_size = block_size;
	c.capacity_bytes = capacity;
	c.max_inodes = 100;
	c.name_max = 255;
	c.mode = 0755;
	assert_int_equal(run(f, &c, NULL), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 4096, 1 << 20);
}

static int teardown(void **state)
{
	struct fix *f = *state;

	fs_store_close(f->s);
	fst_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static uint64_t create(struct fix *f, uint64_t parent, const char *name,
		       uint32_t mode)
{
	struct fs_cmd c;
	struct fs_result r;

	cmd(f, &c, FS_OP_CREATE);
	c.ino = parent;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	c.mode = mode;
	assert_int_equal(run(f, &c, &r), 0);
	return r.ino;
}

static int write_at(struct fix *f, uint64_t ino, uint64_t off,
		    const void *data, uint32_t len)
{
	struct fs_cmd c;

	cmd(f, &c, FS_OP_WRITE);
	c.ino = ino;
	c.offset = off;
	c.data = data;
	c.data_len = len;
	return run(f, &c, NULL);
}

static void test_codec_rejects_every_truncation_and_corruption(void **state)
{
	struct fix *f = *state;
	struct fs_cmd c, d;
	uint8_t *buf, *copy;
	size_t len;
	uint64_t rng = 42;

	cmd(f, &c, FS_OP_RENAME);
	c.ino = 1;
	c.name = "a";
	c.name_len = 1;
	c.ino2 = 1;
	c.name2 = "b";
	c.name2_len = 1;
	c.n_holders = 2;
	c.holders[0] = 3;
	c.holders[1] = 2;
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_cmd_decode(buf, len, &d), 0);
	assert_int_equal(d.op, FS_OP_RENAME);
	assert_memory_equal(d.name2, "b", 1);
	assert_int_equal(d.holders[1], 2);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(fs_cmd_decode(buf, n, &d), -EBADMSG);
	copy = malloc(len + 1);
	memcpy(copy, buf, len);
	copy[len] = 0;
	assert_int_equal(fs_cmd_decode(copy, len + 1, &d), -EBADMSG);
	/* Random corruption: decoded or rejected, never a crash; the store
	 * answers a rejected command with a store error, changing nothing. */
	for (int i = 0; i < 20000; i++) {
		memcpy(copy, buf, len);
		copy[fst_below(&rng, len)] = (uint8_t)fst_rand(&rng);
		copy[fst_below(&rng, len)] = (uint8_t)fst_rand(&rng);
		(void)fs_cmd_decode(copy, len, &d);
	}
	copy[1] = 99; /* unknown op */
	{
		struct fs_result r;
		uint64_t before = fs_store_applied_index(f->s);
		assert_int_equal(fs_store_apply(f->s, f->index + 1, copy, len,
						&r),
				 -EBADMSG);
		assert_int_equal(fs_store_applied_index(f->s), before);
	}
	free(copy);
	free(buf);
}

static void test_codec_rejects_bad_names_and_fields(void **state)
{
	struct fix *f = *state;
	static const char *const bad[] = {".", "..", "a/b", ""};
	struct fs_cmd c;
	uint8_t buf[4096];

	for (size_t i = 0; i < 4; i++) {
		cmd(f, &c, FS_OP_CREATE);
		c.ino = 1;
		c.name = bad[i];
		c.name_len = (uint32_t)strlen(bad[i]);
		c.mode = S_IFREG | 0644;
		assert_int_equal(fs_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	}
	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = "a\0b";
	c.name_len = 3;
	c.mode = S_IFREG;
	assert_int_equal(fs_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	c.name_len = 1;
	c.mode = S_IFLNK | 0777; /* symlinks have their own op */
	assert_int_equal(fs_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	c.mode = S_IFREG;
	c.clock.nsec = 1000000000u;
	assert_int_equal(fs_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	c.clock.nsec = 0;
	c.proposal.low_water = c.proposal.id.seq + 1;
	assert_int_equal(fs_cmd_encode(&c, buf, sizeof(buf)), -EINVAL);
	c.proposal.low_water = 1;
	assert_int_equal(fs_cmd_encode(&c, buf, 10), -ENOSPC);
}

static void test_apply_requires_next_index(void **state)
{
	struct fix *f = *state;
	struct fs_cmd c;
	struct fs_result r;
	size_t len;
	uint8_t *buf;

	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = "x";
	c.name_len = 1;
	c.mode = S_IFREG | 0644;
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_store_apply(f->s, f->index + 2, buf, len, &r),
			 -EINVAL);
	assert_int_equal(fs_store_apply(f->s, f->index, buf, len, &r),
			 -EINVAL);
	assert_int_equal(fs_store_apply_other(f->s, f->index + 1), 0);
	f->index++;
	assert_int_equal(fs_store_apply(f->s, f->index + 1, buf, len, &r), 0);
	assert_int_equal(r.err, 0);
	free(buf);
}

static void test_duplicate_gets_original_result(void **state)
{
	struct fix *f = *state;
	struct fs_cmd c;
	struct fs_result r1, r2;
	struct fs_attr a;
	size_t len;
	uint8_t *buf;

	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = "once";
	c.name_len = 4;
	c.mode = S_IFREG | 0644;
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_store_apply(f->s, ++f->index, buf, len, &r1), 0);
	assert_int_equal(r1.err, 0);
	/* The retry: applied once, answered with the first result, not
	 * EEXIST. */
	assert_int_equal(fs_store_apply(f->s, ++f->index, buf, len, &r2), 0);
	assert_int_equal(r2.err, 0);
	assert_int_equal(r2.ino, r1.ino);
	assert_memory_equal(&r2.attr, &r1.attr, sizeof(r1.attr));
	assert_int_equal(fs_getattr(f->s, r1.ino + 1, &a), -ENOENT);
	/* Once the low-water mark passed it, a retry is stale. */
	f->p.low_water = f->p.seq + 1;
	cmd(f, &c, FS_OP_RELEASE);
	c.ino = 99;
	assert_int_equal(run(f, &c, NULL), ENOENT);
	assert_int_equal(fs_store_apply(f->s, ++f->index, buf, len, &r2), 0);
	assert_int_equal(r2.err, ESTALE);
	free(buf);
}

static void test_times_never_go_backwards(void **state)
{
	struct fix *f = *state;
	struct fs_cmd c;
	struct fs_result r1, r2;

	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = "t";
	c.name_len = 1;
	c.mode = S_IFREG | 0644;
	assert_int_equal(run(f, &c, &r1), 0);
	/* A proposer whose clock is behind. */
	fst_cmd(&c, FS_OP_SETATTR, &f->p, (struct fs_time){5, 0});
	c.ino = r1.ino;
	c.valid = FS_SET_MTIME | FS_SET_ATIME_NOW;
	c.mtime = (struct fs_time){7, 123};
	assert_int_equal(run(f, &c, &r2), 0);
	assert_int_equal(r2.attr.ctime.sec, r1.attr.ctime.sec);
	assert_int_equal(r2.attr.ctime.nsec, r1.attr.ctime.nsec + 1);
	assert_int_equal(r2.attr.atime.nsec, r1.attr.ctime.nsec + 1);
	/* Explicit times are stored as given. */
	assert_int_equal(r2.attr.mtime.sec, 7);
	assert_int_equal(r2.attr.mtime.nsec, 123);
}

static void test_sparse_file_holes_blocks_and_seek(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create(f, 1, "sparse", S_IFREG | 0644);
	uint8_t data[100], buf[20000];
	struct fs_attr a;
	struct fs_cmd c;
	uint64_t pos;
	size_t n;

	memset(data, 'd', sizeof(data));
	assert_int_equal(write_at(f, ino, 3 * 4096 + 10, data, 100), 0);
	assert_int_equal(fs_getattr(f->s, ino, &a), 0);
	assert_int_equal(a.size, 3 * 4096 + 110);
	/* The short last block: 110 bytes stored, one 512-byte unit. */
	assert_int_equal(a.blocks, 1);
	assert_int_equal(fs_read(f->s, ino, 0, sizeof(buf), buf, &n), 0);
	assert_int_equal(n, 3 * 4096 + 110);
	for (size_t i = 0; i < 3 * 4096 + 10; i++)
		assert_int_equal(buf[i], 0);
	assert_memory_equal(buf + 3 * 4096 + 10, data, 100);
	assert_int_equal(fs_lseek(f->s, ino, 0, SEEK_DATA, &pos), 0);
	assert_int_equal(pos, 3 * 4096);
	assert_int_equal(fs_lseek(f->s, ino, 0, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, 0);
	assert_int_equal(fs_lseek(f->s, ino, 3 * 4096, SEEK_HOLE, &pos), 0);
	assert_int_equal(pos, a.size);
	assert_int_equal(fs_lseek(f->s, ino, a.size, SEEK_DATA, &pos), -ENXIO);

	/* Punch the data away: the file keeps its size and takes no space. */
	cmd(f, &c, FS_OP_FALLOCATE);
	c.ino = ino;
	c.flags = FS_FALLOC_PUNCH_HOLE | FS_FALLOC_KEEP_SIZE;
	c.offset = 0;
	c.length = a.size;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_getattr(f->s, ino, &a), 0);
	assert_int_equal(a.size, 3 * 4096 + 110);
	assert_int_equal(a.blocks, 0);
	assert_int_equal(fs_lseek(f->s, ino, 0, SEEK_DATA, &pos), -ENXIO);
}

static void test_truncate_down_then_extend_reads_zeros(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create(f, 1, "trunc", S_IFREG | 0644);
	uint8_t data[10000], buf[10000];
	struct fs_cmd c;
	size_t n;

	memset(data, 0xab, sizeof(data));
	assert_int_equal(write_at(f, ino, 0, data, sizeof(data)), 0);
	cmd(f, &c, FS_OP_SETATTR);
	c.ino = ino;
	c.valid = FS_SET_SIZE;
	c.size = 5000;
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, &c, FS_OP_SETATTR);
	c.ino = ino;
	c.valid = FS_SET_SIZE;
	c.size = 10000;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_read(f->s, ino, 0, sizeof(buf), buf, &n), 0);
	assert_int_equal(n, 10000);
	assert_memory_equal(buf, data, 5000);
	for (size_t i = 5000; i < 10000; i++)
		assert_int_equal(buf[i], 0);
}

static void test_write_clears_setuid_and_group_exec_setgid(void **state)
{
	struct fix *f = *state;
	uint64_t a = create(f, 1, "suid", S_IFREG | 06755);
	uint64_t b = create(f, 1, "sgid-nox", S_IFREG | 02644);
	struct fs_attr at;
	struct fs_cmd c;

	assert_int_equal(write_at(f, a, 0, "x", 1), 0);
	assert_int_equal(fs_getattr(f->s, a, &at), 0);
	assert_int_equal(at.mode & 07777, 0755);
	assert_int_equal(write_at(f, b, 0, "x", 1), 0);
	assert_int_equal(fs_getattr(f->s, b, &at), 0);
	assert_int_equal(at.mode & 07777, 02644); /* not group-executable */
	cmd(f, &c, FS_OP_SETATTR);
	c.ino = a;
	c.valid = FS_SET_MODE;
	c.mode = 04755;
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, &c, FS_OP_SETATTR);
	c.ino = a;
	c.valid = FS_SET_UID;
	c.set_uid = 7;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_getattr(f->s, a, &at), 0);
	assert_int_equal(at.mode & 07777, 0755);
	assert_int_equal(at.uid, 7);
}

static void test_capacity_gives_enospc_and_changes_nothing(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create(f, 1, "big", S_IFREG | 0644);
	static uint8_t data[FS_WRITE_MAX];
	struct fs_statfs st;
	struct fs_attr a;
	struct fs_cmd c;

	memset(data, 1, sizeof(data));
	/* 1 MiB capacity: 1 MiB - 4 KiB fits, then one more block does not. */
	assert_int_equal(write_at(f, ino, 0, data, FS_WRITE_MAX - 4096), 0);
	assert_int_equal(write_at(f, ino, FS_WRITE_MAX, data, 8192), ENOSPC);
	assert_int_equal(fs_getattr(f->s, ino, &a), 0);
	assert_int_equal(a.size, FS_WRITE_MAX - 4096);
	assert_int_equal(fs_statfs(f->s, &st), 0);
	assert_int_equal(st.blocks_free, 1);
	cmd(f, &c, FS_OP_FALLOCATE);
	c.ino = ino;
	c.offset = 0;
	c.length = 2 * FS_WRITE_MAX;
	assert_int_equal(run(f, &c, NULL), ENOSPC);
	/* Freeing the file gives the space back: its last link goes (it
	 * stays an orphan held by the proposer), then its release. */
	cmd(f, &c, FS_OP_UNLINK);
	c.ino = 1;
	c.name = "big";
	c.name_len = 3;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_statfs(f->s, &st), 0);
	assert_int_equal(st.blocks_free, 1);
	cmd(f, &c, FS_OP_RELEASE);
	c.ino = ino;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_statfs(f->s, &st), 0);
	assert_int_equal(st.blocks_free, 256);
}

static void test_inode_limit_and_name_limit(void **state)
{
	struct fix *f = *state;
	char name[300];
	struct fs_cmd c;
	int rc = 0, i;

	memset(name, 'n', sizeof(name));
	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = name;
	c.name_len = 256;
	c.mode = S_IFREG | 0644;
	assert_int_equal(run(f, &c, NULL), ENAMETOOLONG);
	c.name_len = 255;
	cmd(f, &c, FS_OP_CREATE);
	c.ino = 1;
	c.name = name;
	c.name_len = 255;
	c.mode = S_IFREG | 0644;
	assert_int_equal(run(f, &c, NULL), 0);
	for (i = 0; i < 200 && rc == 0; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		cmd(f, &c, FS_OP_CREATE);
		c.ino = 1;
		c.name = name;
		c.name_len = (uint32_t)strlen(name);
		c.mode = S_IFREG | 0644;
		rc = run(f, &c, NULL);
	}
	assert_int_equal(rc, ENOSPC);
	assert_int_equal(i, 99); /* root + the long name + 98 */
}

static void test_orphan_lives_until_every_holder_releases(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create(f, 1, "open", S_IFREG | 0644);
	struct fst_proposer other = {2, 1, 0, 1};
	uint64_t h[FS_HOLDERS_MAX];
	uint32_t n;
	struct fs_attr a;
	struct fs_cmd c;
	uint8_t buf[4];
	size_t got;

	assert_int_equal(write_at(f, ino, 0, "data", 4), 0);
	cmd(f, &c, FS_OP_UNLINK);
	c.ino = 1;
	c.name = "open";
	c.name_len = 4;
	c.n_holders = 2;
	c.holders[0] = 2;
	c.holders[1] = 1;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_lookup(f->s, 1, "open", 4, &a), -ENOENT);
	assert_int_equal(fs_orphan_holders(f->s, ino, h, FS_HOLDERS_MAX, &n),
			 0);
	assert_int_equal(n, 2);
	assert_int_equal(h[0], 1);
	assert_int_equal(fs_read(f->s, ino, 0, 4, buf, &got), 0);
	assert_memory_equal(buf, "data", 4);
	cmd(f, &c, FS_OP_RELEASE);
	c.ino = ino;
	assert_int_equal(run(f, &c, NULL), 0);
	/* A retry of the release is a duplicate: 0 again, not ENOENT. */
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_getattr(f->s, ino, &a), 0);
	assert_int_equal(a.nlink, 0);
	fst_cmd(&c, FS_OP_RELEASE, &other, f->clock);
	c.ino = ino;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_getattr(f->s, ino, &a), -ENOENT);
}

/* APPEND writes at the size the file has when applied, whatever offset
 * the proposer believed; a duplicate does not append twice. */
static void test_append_writes_at_the_applied_size(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create(f, 1, "log", S_IFREG | 0644);
	struct fs_result r;
	struct fs_cmd c;
	char buf[16];
	size_t got;

	assert_int_equal(write_at(f, ino, 0, "one.", 4), 0);
	cmd(f, &c, FS_OP_APPEND);
	c.ino = ino;
	c.offset = 0; /* stale: not encoded, not used */
	c.data = "two.";
	c.data_len = 4;
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 4);
	assert_int_equal(r.attr.size, 8);
	assert_int_equal(run(f, &c, &r), 0); /* the same id: a duplicate */
	assert_int_equal(r.attr.size, 8);
	assert_int_equal(write_at(f, ino, 20, "x", 1), 0);
	cmd(f, &c, FS_OP_APPEND);
	c.ino = ino;
	c.data = "end";
	c.data_len = 3;
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.attr.size, 24);
	assert_int_equal(fs_read(f->s, ino, 0, sizeof(buf), buf, &got), 0);
	assert_int_equal(got, 16);
	assert_memory_equal(buf, "one.two.", 8);
	assert_int_equal(fs_read(f->s, ino, 20, sizeof(buf), buf, &got), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "xend", 4);
	cmd(f, &c, FS_OP_APPEND);
	c.ino = 1; /* a directory */
	assert_int_equal(run(f, &c, NULL), EISDIR);
}

static void test_state_survives_reopen(void **state)
{
	struct fix *f = *state;
	uint64_t d = create(f, 1, "dir", S_IFDIR | 0755);
	uint64_t x = create(f, d, "x", S_IFREG | 0600);
	struct fs_attr a;

	assert_int_equal(write_at(f, x, 70000, "end", 3), 0);
	fs_store_close(f->s);
	f->s = NULL;
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	assert_true(fs_store_is_formatted(f->s));
	assert_int_equal(fs_store_applied_index(f->s), f->index);
	assert_int_equal(fs_lookup(f->s, d, "x", 1, &a), 0);
	assert_int_equal(a.ino, x);
	assert_int_equal(a.size, 70003);
	assert_int_equal(fs_lookup(f->s, d, "..", 2, &a), 0);
	assert_int_equal(a.ino, 1);
}

static void test_corrupt_current_file_is_an_error(void **state)
{
	struct fix *f = *state;
	struct fs_store *s2 = NULL;
	char path[4096];
	FILE *fp;

	fs_store_close(f->s);
	f->s = NULL;
	snprintf(path, sizeof(path), "%s/CURRENT", f->dir);
	fp = fopen(path, "w");
	fputs("garbage\n", fp);
	fclose(fp);
	assert_int_equal(fs_store_open(f->dir, &s2), -EUCLEAN);
	fp = fopen(path, "w");
	fputs("store-1\n", fp);
	fclose(fp);
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(test_codec_rejects_every_truncation_and_corruption),
	  T(test_codec_rejects_bad_names_and_fields),
	  T(test_apply_requires_next_index),
	  T(test_duplicate_gets_original_result),
	  T(test_times_never_go_backwards),
	  T(test_sparse_file_holes_blocks_and_seek),
	  T(test_truncate_down_then_extend_reads_zeros),
	  T(test_write_clears_setuid_and_group_exec_setgid),
	  T(test_capacity_gives_enospc_and_changes_nothing),
	  T(test_inode_limit_and_name_limit),
	  T(test_orphan_lives_until_every_holder_releases),
	  T(test_append_writes_at_the_applied_size),
	  T(test_state_survives_reopen),
	  T(test_corrupt_current_file_is_an_error))
