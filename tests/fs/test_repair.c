/*
 * The repairs of `fsck --cluster --repair` (fs/apply_repair.c): a store
 * damaged the way an apply bug would (an entry by name lost, a wrong link
 * count, data beyond a file's size, a stray block, counters off) is
 * checked with fs_fsck_store, the repairs it names are proposed through a
 * proposer (fs_fix_propose) phase by phase until the check is clean; each
 * repair refuses (ESTALE, nothing changed) when its precondition no longer
 * holds; the codec refuses malformed repair commands.
 */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/codec.h"
#include "fs/fs.h"
#include "fs/store.h"
#include "fs/store_kv.h"
#include "tests/fs/fs_test.h"

struct fix {
	char *dir;
	char fs[4200];
	struct fs_store *s;
	uint64_t index;
	struct fst_proposer p;
	struct fs_time clock;
	uint64_t a, d, g, sub; /* /a (file), /d, /d/g, /d/sub */
};

static int apply(struct fix *f, struct fs_cmd *c, struct fs_result *res)
{
	struct fs_result r;
	size_t len;
	uint8_t *buf = fst_encode(c, &len);

	assert_int_equal(fs_store_apply(f->s, f->index + 1, buf, len,
					res ? res : &r),
			 0);
	free(buf);
	f->index++;
	return (res ? res : &r)->err;
}

static void cmd(struct fix *f, struct fs_cmd *c, uint8_t op)
{
	f->clock.sec++;
	fst_cmd(c, op, &f->p, f->clock);
}

static uint64_t create(struct fix *f, uint64_t dir, const char *name,
		       uint32_t mode)
{
	struct fs_cmd c;
	struct fs_result r;

	cmd(f, &c, FS_OP_CREATE);
	c.ino = dir;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	c.mode = mode;
	assert_int_equal(apply(f, &c, &r), 0);
	return r.ino;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	static uint8_t data[5000];
	struct fs_cmd c;

	f->dir = fst_tmpdir("repair");
	snprintf(f->fs, sizeof(f->fs), "%s/fs", f->dir);
	assert_int_equal(fs_store_open(f->fs, &f->s), 0);
	f->p = (struct fst_proposer){1, 1, 0, 0};
	cmd(f, &c, FS_OP_INIT);
	c.block_size = 4096;
	c.capacity_bytes = 1u << 30;
	c.max_inodes = 1000;
	c.name_max = 255;
	c.mode = 0755;
	assert_int_equal(apply(f, &c, NULL), 0);
	/* The repairs need feature level 3. */
	cmd(f, &c, FS_OP_FEATURE);
	c.flags = FS_FEATURE_LEVEL;
	assert_int_equal(apply(f, &c, NULL), 0);
	f->a = create(f, FS_ROOT_INO, "a", S_IFREG | 0644);
	f->d = create(f, FS_ROOT_INO, "d", S_IFDIR | 0755);
	f->g = create(f, f->d, "g", S_IFREG | 0600);
	f->sub = create(f, f->d, "sub", S_IFDIR | 0700);
	memset(data, 'x', sizeof(data));
	cmd(f, &c, FS_OP_WRITE);
	c.ino = f->a;
	c.data = data;
	c.data_len = sizeof(data);
	assert_int_equal(apply(f, &c, NULL), 0);
	*state = f;
	return 0;
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

/* ---- damage, as fsckdata does: LevelDB written behind apply's back ---- */

static void kv_put(struct fix *f, const struct fs_key *k, const void *v,
		   size_t len)
{
	struct fs_kv_batch *b = NULL;

	assert_int_equal(fs_kv_batch_new(&b), 0);
	if (v != NULL)
		fs_kv_batch_put(b, k->b, k->len, v, len);
	else
		fs_kv_batch_delete(b, k->b, k->len);
	assert_int_equal(fs_kv_write(f->s->kv, b, true), 0);
	fs_kv_batch_free(b);
}

static void damage(struct fix *f)
{
	struct fs_key k;
	struct fs_inode in;
	uint8_t buf[FS_INODE_BYTES];
	void *v = NULL;
	size_t len;

	fs_key_name(&k, FS_KEY_DENTRY, f->d, "g", 1);
	kv_put(f, &k, NULL, 0);
	fs_key_name(&k, FS_KEY_DENTRY, f->d, "sub", 3);
	kv_put(f, &k, NULL, 0);
	fs_key1(&k, FS_KEY_INODE, f->a);
	assert_int_equal(fs_kv_get(f->s->kv, NULL, k.b, k.len, &v, &len), 0);
	assert_int_equal(fs_inode_decode(v, len, &in), 0);
	fs_kv_free(v);
	in.nlink = 3;
	kv_put(f, &k, buf, fs_inode_encode(&in, buf));
	fs_key2(&k, FS_KEY_BLOCK, f->a, 7);
	kv_put(f, &k, "beyond", 6);
	fs_key2(&k, FS_KEY_BLOCK, 900, 0);
	kv_put(f, &k, "stray", 5);
	/* An inode no entry points at, not an orphan. */
	memset(&in, 0, sizeof(in));
	in.ino = 800;
	in.mode = S_IFREG | 0644;
	in.nlink = 1;
	in.generation = 1;
	fs_key1(&k, FS_KEY_INODE, in.ino);
	kv_put(f, &k, buf, fs_inode_encode(&in, buf));
}

/* ---- the check and its fixes ---- */

struct found {
	uint64_t problems;
	uint32_t n;
	struct fs_fsck_fix fix[64];
	uint8_t name[64][256];
};

static void on_problem(void *ctx, const struct fs_fsck_problem *p)
{
	struct found *fd = ctx;

	fd->problems++;
	if (p->fix.kind == FS_FIX_NONE || fd->n == 64)
		return;
	fd->fix[fd->n] = p->fix;
	if (p->fix.name_len > 0) {
		assert_true(p->fix.name_len <= 256);
		memcpy(fd->name[fd->n], p->fix.name, p->fix.name_len);
		fd->fix[fd->n].name = fd->name[fd->n];
	}
	fd->n++;
}

static void check(struct fix *f, struct found *fd)
{
	struct fs_fsck_options opt = {0, on_problem, NULL, fd};
	struct fs_fsck_summary sum;
	char err[256];

	memset(fd, 0, sizeof(*fd));
	memset(&sum, 0, sizeof(sum));
	fs_store_close(f->s);
	f->s = NULL;
	assert_int_equal(fs_fsck_store(f->fs, &opt, &sum, err, sizeof(err)), 0);
	assert_int_equal(sum.problems, fd->problems);
	assert_int_equal(fs_store_open(f->fs, &f->s), 0);
	f->index = fs_store_applied_index(f->s);
}

static bool has(const struct found *fd, uint8_t kind)
{
	for (uint32_t i = 0; i < fd->n; i++)
		if (fd->fix[i].kind == kind)
			return true;
	return false;
}

static void repairs_make_it_clean(void **state)
{
	struct fix *f = *state;
	struct found *fd = calloc(1, sizeof(*fd));
	struct fs_attr attr;
	int rounds = 0;

	assert_non_null(fd);
	damage(f);
	check(f, fd);
	assert_true(fd->problems > 0);
	assert_true(has(fd, FS_FIX_ENTRY_NAME));
	assert_true(has(fd, FS_FIX_LINKS));
	assert_true(has(fd, FS_FIX_DATA));
	assert_true(has(fd, FS_FIX_FREE));
	assert_true(has(fd, FS_FIX_LOST_FOUND));
	while (fd->problems > 0 && rounds < 6) {
		struct fs_local_proposer *lp;
		struct fs_proposer p;
		int phase = 0;
		for (uint32_t i = 0; i < fd->n; i++) {
			int ph = fs_fix_phase(&fd->fix[i]);
			if (phase == 0 || ph < phase)
				phase = ph;
		}
		assert_true(phase > 0); /* everything here is repairable */
		assert_int_equal(fs_local_proposer_start(f->s, 1, 10 + (uint64_t)rounds,
							 &lp), 0);
		fs_local_proposer_get(lp, &p);
		for (uint32_t i = 0; i < fd->n; i++) {
			if (fs_fix_phase(&fd->fix[i]) != phase)
				continue;
			int rc = fs_fix_propose(&p, &fd->fix[i]);
			/* A duplicate of a fix already applied is stale. */
			assert_true(rc == 0 || rc == -ESTALE);
		}
		fs_local_proposer_stop(lp);
		rounds++;
		check(f, fd);
	}
	assert_int_equal(fd->problems, 0);
	/* The lost names are back, the stray inode is in /lost+found. */
	assert_int_equal(fs_lookup(f->s, f->d, "g", 1, &attr), 0);
	assert_int_equal(attr.ino, f->g);
	assert_int_equal(fs_lookup(f->s, f->d, "sub", 3, &attr), 0);
	assert_int_equal(fs_getattr(f->s, f->a, &attr), 0);
	assert_int_equal(attr.nlink, 1);
	assert_int_equal(attr.size, 5000);
	assert_int_equal(fs_lookup(f->s, FS_ROOT_INO, "lost+found", 10, &attr), 0);
	assert_int_equal(attr.mode, S_IFDIR | 0700);
	assert_int_equal(fs_lookup(f->s, attr.ino, "#800", 4, &attr), 0);
	assert_int_equal(attr.nlink, 1);
	free(fd);
}

/* Each repair checks its precondition: nothing happens when it fails. */
static void stale_repairs_change_nothing(void **state)
{
	struct fix *f = *state;
	struct fs_attr a;
	struct fs_cmd c;

	assert_int_equal(fs_getattr(f->s, f->a, &a), 0);

	cmd(f, &c, FS_OP_REPAIR_LINKS); /* nlink is not the one checked */
	c.ino = f->a;
	c.length = 3;
	c.size = 1;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_FREE); /* the inode exists */
	c.ino = f->g;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_ENTRY); /* the name is there */
	c.ino = f->d;
	c.flags = FS_REPAIR_ENTRY_NAME;
	c.offset = 3;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_ENTRY); /* its target exists */
	c.ino = FS_ROOT_INO;
	c.flags = FS_REPAIR_ENTRY_REMOVE;
	c.name = "a";
	c.name_len = 1;
	c.ino2 = f->a;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_LOST_FOUND); /* linked or changed since */
	c.ino = f->a;
	c.length = a.nlink;
	c.mtime = (struct fs_time){a.ctime.sec - 1, 0};
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_LOST_FOUND); /* its parent holds its entry */
	c.ino = f->sub;
	assert_int_equal(fs_getattr(f->s, f->sub, &a), 0);
	c.length = a.nlink;
	c.mtime = a.ctime;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_DATA); /* nothing beyond the size */
	c.ino = f->a;
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_COUNTERS); /* the counters are right */
	assert_int_equal(apply(f, &c, NULL), ESTALE);
	cmd(f, &c, FS_OP_REPAIR_LINKS); /* a directory: recounted, the same */
	c.ino = f->d;
	assert_int_equal(apply(f, &c, NULL), 0);

	assert_int_equal(fs_getattr(f->s, f->d, &a), 0);
	assert_int_equal(a.nlink, 3);
	assert_int_equal(fs_getattr(f->s, f->a, &a), 0);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(fs_lookup(f->s, FS_ROOT_INO, "lost+found", 10, &a),
			 -ENOENT);
}

static void codec_refuses_malformed_repairs(void **state)
{
	struct fix *f = *state;
	struct fs_cmd c;

	cmd(f, &c, FS_OP_REPAIR_ENTRY);
	c.ino = f->d;
	c.flags = 4;
	c.name = "g";
	c.name_len = 1;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	c.flags = FS_REPAIR_ENTRY_NAME; /* by cookie: no name */
	c.offset = 3;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	c.flags = FS_REPAIR_ENTRY_REMOVE; /* which missing inode? */
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	c.ino2 = 77;
	assert_true(fs_cmd_encoded_size(&c) > 0);
	cmd(f, &c, FS_OP_REPAIR_FREE);
	c.ino = FS_ROOT_INO;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	cmd(f, &c, FS_OP_REPAIR_LINKS);
	c.ino = f->a;
	c.size = 1ull << 33;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(repairs_make_it_clean), T(stale_repairs_change_nothing),
	  T(codec_refuses_malformed_repairs))
