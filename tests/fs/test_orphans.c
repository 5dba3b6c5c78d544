/*
 * Open-but-unlinked files across nodes (fs/orphans.c): a regular file that
 * loses its last link is held by every member of the configuration in
 * force, each node releases it (RELEASE, or RELEASE_ALL when it starts),
 * nodes that leave the configuration are released by its apply; the
 * orphan hook tells the front end; fsck accepts all of it.
 */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs.h"
#include "tests/fs/fs_test.h"

struct fix {
	char *dir;
	struct fs_store *s;
	uint64_t index;
	struct fst_proposer p[4]; /* p[1..3]: nodes 1..3 */
	struct fs_time clock;
};

static int run_as(struct fix *f, int node, struct fs_cmd *c,
		  struct fs_result *res)
{
	struct fs_result r;
	size_t len;
	uint8_t *buf;
	int rc;

	(void)node;
	buf = fst_encode(c, &len);
	rc = fs_store_apply(f->s, f->index + 1, buf, len, res ? res : &r);
	free(buf);
	assert_int_equal(rc, 0);
	f->index++;
	return (res ? res : &r)->err;
}

static void cmd(struct fix *f, int node, struct fs_cmd *c, uint8_t op)
{
	f->clock.sec++;
	fst_cmd(c, op, &f->p[node], f->clock);
}

static void config(struct fix *f, const uint64_t *ids, uint32_t n)
{
	assert_int_equal(fs_store_apply_config(f->s, f->index + 1, ids, n), 0);
	f->index++;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	uint64_t three[] = {3, 1, 2};
	struct fs_cmd c;

	f->dir = fst_tmpdir("orphans");
	for (int i = 1; i <= 3; i++)
		f->p[i] = (struct fst_proposer){(uint64_t)i, 1, 0, 1};
	f->clock.sec = 1000;
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	/* As in a bootstrapped cluster: the configuration at index 1. */
	config(f, three, 3);
	cmd(f, 1, &c, FS_OP_INIT);
	c.block_size = 4096;
	c.capacity_bytes = 1 << 20;
	c.max_inodes = 100;
	c.name_max = 255;
	c.mode = 0755;
	assert_int_equal(run_as(f, 1, &c, NULL), 0);
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

static uint64_t create_file(struct fix *f, const char *name, uint32_t mode)
{
	struct fs_result r;
	struct fs_cmd c;

	cmd(f, 1, &c, mode == (S_IFLNK | 0777) ? FS_OP_SYMLINK : FS_OP_CREATE);
	c.ino = FS_ROOT_INO;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	c.mode = mode;
	if (c.op == FS_OP_SYMLINK) {
		c.data = "target";
		c.data_len = 6;
	}
	assert_int_equal(run_as(f, 1, &c, &r), 0);
	if (S_ISREG(mode)) {
		cmd(f, 1, &c, FS_OP_WRITE);
		c.ino = r.ino;
		c.data = "0123456789";
		c.data_len = 10;
		assert_int_equal(run_as(f, 1, &c, NULL), 0);
	}
	return r.ino;
}

static int unlink_as(struct fix *f, int node, const char *name)
{
	struct fs_cmd c;

	cmd(f, node, &c, FS_OP_UNLINK);
	c.ino = FS_ROOT_INO;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	return run_as(f, node, &c, NULL);
}

static int release_as(struct fix *f, int node, uint64_t ino)
{
	struct fs_cmd c;

	cmd(f, node, &c, ino == 0 ? FS_OP_RELEASE_ALL : FS_OP_RELEASE);
	c.ino = ino;
	return run_as(f, node, &c, NULL);
}

static uint32_t holders(struct fix *f, uint64_t ino, uint64_t *h)
{
	uint32_t n = 0;

	assert_int_equal(fs_orphan_holders(f->s, ino, h, FS_HOLDERS_MAX, &n),
			 0);
	return n;
}

static bool exists(struct fix *f, uint64_t ino)
{
	struct fs_attr a;

	return fs_getattr(f->s, ino, &a) == 0;
}

static void test_every_member_holds_an_unlinked_file(void **state)
{
	struct fix *f = *state;
	uint64_t ino = create_file(f, "f", S_IFREG | 0644), h[FS_HOLDERS_MAX];
	struct fs_statfs before, after;
	char buf[10];
	size_t n;

	assert_int_equal(fs_statfs(f->s, &before), 0);
	assert_int_equal(unlink_as(f, 2, "f"), 0);
	assert_int_equal(holders(f, ino, h), 3);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[2], 3);
	assert_int_equal(fs_read(f->s, ino, 0, 10, buf, &n), 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(release_as(f, 1, ino), 0);
	assert_int_equal(release_as(f, 1, ino), ENOENT); /* a new one */
	assert_int_equal(release_as(f, 3, ino), 0);
	assert_true(exists(f, ino));
	assert_int_equal(release_as(f, 2, ino), 0);
	assert_false(exists(f, ino));
	assert_int_equal(fs_statfs(f->s, &after), 0);
	assert_int_equal(after.files_free, before.files_free + 1);
	assert_true(after.blocks_free >= before.blocks_free);
}

static void test_other_types_are_freed_at_once(void **state)
{
	struct fix *f = *state;
	uint64_t l = create_file(f, "l", S_IFLNK | 0777);
	uint64_t p = create_file(f, "p", S_IFIFO | 0644), h[FS_HOLDERS_MAX];

	assert_int_equal(unlink_as(f, 1, "l"), 0);
	assert_int_equal(unlink_as(f, 3, "p"), 0);
	assert_false(exists(f, l));
	assert_false(exists(f, p));
	assert_int_equal(
	    fs_orphan_holders(f->s, l, h, FS_HOLDERS_MAX, &(uint32_t){0}),
	    -ENOENT);
}

static void test_release_all_releases_the_node_everywhere(void **state)
{
	struct fix *f = *state;
	uint64_t a = create_file(f, "a", S_IFREG | 0644);
	uint64_t b = create_file(f, "b", S_IFREG | 0644), h[FS_HOLDERS_MAX];

	assert_int_equal(unlink_as(f, 1, "a"), 0);
	assert_int_equal(unlink_as(f, 1, "b"), 0);
	assert_int_equal(release_as(f, 1, a), 0);
	assert_int_equal(release_as(f, 3, a), 0);
	/* Node 2 restarts: it holds nothing open. a was its last. */
	assert_int_equal(release_as(f, 2, 0), 0);
	assert_false(exists(f, a));
	assert_int_equal(holders(f, b, h), 2);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 3);
	/* Nothing held: still a success, nothing changes. */
	assert_int_equal(release_as(f, 2, 0), 0);
	assert_int_equal(release_as(f, 1, 0), 0);
	assert_int_equal(release_as(f, 3, 0), 0);
	assert_false(exists(f, b));
}

static void test_a_node_leaving_the_configuration_is_released(void **state)
{
	struct fix *f = *state;
	uint64_t a = create_file(f, "a", S_IFREG | 0644), h[FS_HOLDERS_MAX];
	uint64_t two[] = {1, 3}, four[] = {1, 3, 4}, one[] = {4};

	assert_int_equal(unlink_as(f, 1, "a"), 0);
	config(f, two, 2);
	assert_int_equal(holders(f, a, h), 2);
	assert_int_equal(h[1], 3);
	/* A new member holds only what loses its last link afterwards. */
	config(f, four, 3);
	assert_int_equal(holders(f, a, h), 2);
	assert_int_equal(create_file(f, "b", S_IFREG | 0644) > a, true);
	assert_int_equal(unlink_as(f, 3, "b"), 0);
	assert_int_equal(release_as(f, 3, a), 0);
	config(f, one, 1);
	assert_false(exists(f, a));
	assert_int_equal(fs_store_apply_config(f->s, f->index + 5, one, 1),
			 -EINVAL);
	assert_int_equal(fs_store_apply_config(f->s, f->index + 1, one, 0),
			 -EINVAL);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int b = 0; b < 8; b++)
		p[b] = (uint8_t)(v >> (56 - 8 * b));
}

static void test_release_list_releases_those_held(void **state)
{
	struct fix *f = *state;
	uint64_t a = create_file(f, "a", S_IFREG | 0644);
	uint64_t b = create_file(f, "b", S_IFREG | 0644), h[FS_HOLDERS_MAX];
	uint8_t list[4 * 8];
	struct fs_cmd c, d;
	uint8_t *buf;
	size_t len;

	assert_int_equal(unlink_as(f, 1, "a"), 0);
	assert_int_equal(unlink_as(f, 1, "b"), 0);
	assert_int_equal(release_as(f, 2, b), 0);
	/* a, b (no longer held by 2), an unknown inode, a again. */
	put_be64(list, a);
	put_be64(list + 8, b);
	put_be64(list + 16, 999);
	put_be64(list + 24, a);
	cmd(f, 2, &c, FS_OP_RELEASE_LIST);
	c.data = list;
	c.data_len = sizeof(list);
	assert_int_equal(run_as(f, 2, &c, NULL), 0);
	assert_int_equal(holders(f, a, h), 2);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 3);
	assert_int_equal(holders(f, b, h), 2);
	cmd(f, 1, &c, FS_OP_RELEASE_LIST);
	c.data = list;
	c.data_len = 16;
	assert_int_equal(run_as(f, 1, &c, NULL), 0);
	cmd(f, 3, &c, FS_OP_RELEASE_LIST);
	c.data = list;
	c.data_len = 16;
	assert_int_equal(run_as(f, 3, &c, NULL), 0);
	assert_false(exists(f, a));
	assert_false(exists(f, b));
	/* The codec: 1..FS_RELEASE_LIST_MAX whole inode numbers. */
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_cmd_decode(buf, len, &d), 0);
	assert_int_equal(d.data_len, 16);
	free(buf);
	c.data_len = 12;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	c.data_len = 0;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
	c.data_len = 8 * FS_RELEASE_LIST_MAX + 8;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
}

struct hook_seen {
	struct fs_store *s;
	uint64_t ino;
	uint32_t holders;
	int calls;
	int dirs;
	struct fs_attr dir;
	/* FS_EVENT_CHANGED: how many, and the last one (names copied) */
	int changes;
	struct fs_store_event change;
	char names[FS_CHANGE_ENTRIES_MAX][16];
};

static void hook(void *ctx, const struct fs_store_event *ev)
{
	struct hook_seen *hs = ctx;
	uint64_t h[FS_HOLDERS_MAX], ino = ev->ino;

	if (ev->kind == FS_EVENT_DIR_FREED) {
		hs->dirs++;
		hs->dir = ev->attr;
		return;
	}
	if (ev->kind == FS_EVENT_CHANGED) {
		hs->changes++;
		hs->change = *ev;
		for (uint32_t i = 0; i < ev->n_entries; i++) {
			const struct fs_change_entry *e = &ev->entries[i];
			assert_true(e->name_len < sizeof(hs->names[i]));
			memcpy(hs->names[i], e->name, e->name_len);
			hs->names[i][e->name_len] = '\0';
		}
		return;
	}
	assert_int_equal(ev->kind, FS_EVENT_ORPHANED);
	hs->ino = ino;
	hs->calls++;
	/* The store's lock is free: the hook may read. */
	assert_int_equal(
	    fs_orphan_holders(hs->s, ino, h, FS_HOLDERS_MAX, &hs->holders), 0);
}

static void test_hook_tells_each_new_orphan(void **state)
{
	struct fix *f = *state;
	uint64_t a = create_file(f, "a", S_IFREG | 0644);
	struct hook_seen hs = {.s = f->s};
	struct fs_cmd c;

	fs_store_set_hook(f->s, hook, &hs);
	create_file(f, "b", S_IFREG | 0644);
	assert_int_equal(hs.calls, 0);
	/* A rename over a file orphans the file it replaces. */
	cmd(f, 2, &c, FS_OP_RENAME);
	c.ino = FS_ROOT_INO;
	c.name = "b";
	c.name_len = 1;
	c.ino2 = FS_ROOT_INO;
	c.name2 = "a";
	c.name2_len = 1;
	assert_int_equal(run_as(f, 2, &c, NULL), 0);
	assert_int_equal(hs.calls, 1);
	assert_int_equal(hs.ino, a);
	assert_int_equal(hs.holders, 3);
	/* A failed command and a duplicate tell nothing. */
	assert_int_equal(unlink_as(f, 1, "zz"), ENOENT);
	assert_int_equal(hs.calls, 1);
	fs_store_set_hook(f->s, NULL, NULL);
	assert_int_equal(unlink_as(f, 1, "a"), 0);
	assert_int_equal(hs.calls, 1);
}

static void test_hook_tells_a_removed_directory(void **state)
{
	struct fix *f = *state;
	uint64_t d = create_file(f, "d", S_IFDIR | 0750);
	struct hook_seen hs = {.s = f->s};
	struct fs_cmd c;

	fs_store_set_hook(f->s, hook, &hs);
	cmd(f, 2, &c, FS_OP_RMDIR);
	c.ino = FS_ROOT_INO;
	c.name = "d";
	c.name_len = 1;
	assert_int_equal(run_as(f, 2, &c, NULL), 0);
	assert_int_equal(hs.dirs, 1);
	assert_int_equal(hs.calls, 0);
	assert_int_equal(hs.dir.ino, d);
	assert_int_equal(hs.dir.nlink, 0);
	assert_int_equal(hs.dir.mode, S_IFDIR | 0750);
	assert_int_equal(hs.dir.ctime.sec, f->clock.sec);
	fs_store_set_hook(f->s, NULL, NULL);
}

static bool has(const uint64_t *v, uint32_t n, uint64_t x)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void test_hook_tells_what_changed(void **state)
{
	struct fix *f = *state;
	uint64_t a = create_file(f, "a", S_IFREG | 0644);
	uint64_t b = create_file(f, "b", S_IFREG | 0644);
	struct hook_seen hs = {.s = f->s};
	struct fs_store_event *ev = &hs.change;
	struct fs_cmd c;

	fs_store_set_hook(f->s, hook, &hs);
	/* A write: the inode, its contents; the index and the proposer. */
	cmd(f, 2, &c, FS_OP_APPEND);
	c.ino = a;
	c.data = "xy";
	c.data_len = 2;
	assert_int_equal(run_as(f, 2, &c, NULL), 0);
	assert_int_equal(hs.changes, 1);
	assert_int_equal(ev->index, f->index);
	assert_int_equal(ev->node, 2);
	assert_true(ev->append);
	assert_int_equal(ev->n_inodes, 1);
	assert_int_equal(ev->inodes[0], a);
	assert_int_equal(ev->n_data, 1);
	assert_int_equal(ev->data[0], a);
	assert_int_equal(ev->n_entries, 0);
	/* A chmod: attributes only. */
	cmd(f, 3, &c, FS_OP_SETATTR);
	c.ino = a;
	c.valid = FS_SET_MODE;
	c.mode = 0600;
	assert_int_equal(run_as(f, 3, &c, NULL), 0);
	assert_int_equal(hs.changes, 2);
	assert_int_equal(ev->node, 3);
	assert_false(ev->append);
	assert_int_equal(ev->n_data, 0);
	assert_true(has(ev->inodes, ev->n_inodes, a));
	/* A rename over b: both names, the directory, both inodes; the name
	 * removed tells the inode it named. */
	cmd(f, 1, &c, FS_OP_RENAME);
	c.ino = FS_ROOT_INO;
	c.name = "a";
	c.name_len = 1;
	c.ino2 = FS_ROOT_INO;
	c.name2 = "b";
	c.name2_len = 1;
	assert_int_equal(run_as(f, 1, &c, NULL), 0);
	assert_int_equal(hs.changes, 3);
	assert_false(ev->all);
	assert_true(has(ev->inodes, ev->n_inodes, FS_ROOT_INO));
	assert_true(has(ev->inodes, ev->n_inodes, a));
	assert_true(has(ev->inodes, ev->n_inodes, b));
	assert_int_equal(ev->n_entries, 2);
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(ev->entries[i].dir, FS_ROOT_INO);
		if (strcmp(hs.names[i], "a") == 0)
			assert_int_equal(ev->entries[i].removed, a);
		else
			assert_string_equal(hs.names[i], "b");
	}
	/* A failed command, and the release of an orphan, tell nothing. */
	assert_int_equal(unlink_as(f, 1, "zz"), ENOENT);
	assert_int_equal(release_as(f, 1, b), 0);
	assert_int_equal(hs.changes, 3);
	/* An unlink: the name and the inode it named. */
	assert_int_equal(unlink_as(f, 2, "b"), 0);
	assert_int_equal(hs.changes, 4);
	assert_int_equal(ev->n_entries, 1);
	assert_string_equal(hs.names[0], "b");
	assert_int_equal(ev->entries[0].removed, a);
	fs_store_set_hook(f->s, NULL, NULL);
}

static int count_held(void *ctx, uint64_t ino)
{
	(void)ino;
	(*(int *)ctx)++;
	return 0;
}

static void installed_hook(void *ctx, const struct fs_store_event *ev)
{
	if (ev->kind == FS_EVENT_INSTALLED)
		(*(int *)ctx)++;
}

/* A snapshot carries the members and the orphans; installing it tells
 * the hook, and the orphans a node holds can be listed. */
static void test_install_tells_and_orphans_can_be_listed(void **state)
{
	struct fix *f = *state;
	uint8_t *buf = malloc(FS_CHUNK_MIN), h1[FS_HASH_BYTES],
		h2[FS_HASH_BYTES];
	char *dir2 = fst_tmpdir("orphans-install");
	struct fs_snapshot *snap = NULL;
	struct fs_install *in = NULL;
	struct fs_store *s2 = NULL;
	int held = 0, installs = 0;
	bool last = false;
	size_t len;

	create_file(f, "a", S_IFREG | 0644);
	create_file(f, "b", S_IFREG | 0644);
	assert_int_equal(unlink_as(f, 1, "a"), 0);
	assert_int_equal(unlink_as(f, 1, "b"), 0);
	assert_int_equal(release_as(f, 3, 0), 0);
	assert_int_equal(fs_orphans_held_by(f->s, 2, count_held, &held), 0);
	assert_int_equal(held, 2);
	held = 0;
	assert_int_equal(fs_orphans_held_by(f->s, 3, count_held, &held), 0);
	assert_int_equal(held, 0);

	assert_int_equal(fs_store_open(dir2, &s2), 0);
	fs_store_set_hook(s2, installed_hook, &installs);
	assert_int_equal(fs_snapshot_begin(f->s, 1, &snap), 0);
	assert_int_equal(fs_install_begin(s2, f->index, 1, &in), 0);
	while (!last) {
		assert_int_equal(
		    fs_snapshot_next(snap, buf, FS_CHUNK_MIN, &len, &last), 0);
		assert_int_equal(fs_install_chunk(in, buf, len), 0);
	}
	fs_snapshot_end(snap);
	assert_int_equal(fs_install_finish(in), 0);
	assert_int_equal(installs, 1);
	held = 0;
	assert_int_equal(fs_orphans_held_by(s2, 2, count_held, &held), 0);
	assert_int_equal(held, 2);
	assert_int_equal(fs_store_hash(f->s, h1), 0);
	assert_int_equal(fs_store_hash(s2, h2), 0);
	assert_memory_equal(h1, h2, FS_HASH_BYTES);
	fs_store_set_hook(s2, NULL, NULL);
	fs_store_close(s2);
	fst_rmrf(dir2);
	free(dir2);
	free(buf);
}

static void fsck_problem(void *ctx, const struct fs_fsck_problem *p)
{
	(void)ctx;
	print_error("fsck: %s %s\n", p->code, p->detail);
}

static void test_fsck_and_hash_accept_members_and_orphans(void **state)
{
	struct fix *f = *state;
	struct fs_fsck_options o = {0, fsck_problem, NULL, NULL};
	struct fs_fsck_summary sum;
	uint8_t h1[FS_HASH_BYTES], h2[FS_HASH_BYTES];
	char err[256];

	create_file(f, "a", S_IFREG | 0644);
	assert_int_equal(unlink_as(f, 1, "a"), 0);
	assert_int_equal(fs_store_hash(f->s, h1), 0);
	fs_store_close(f->s);
	f->s = NULL;
	memset(&sum, 0, sizeof(sum));
	assert_int_equal(fs_fsck_store(f->dir, &o, &sum, err, sizeof(err)), 0);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	assert_int_equal(fs_store_hash(f->s, h2), 0);
	assert_memory_equal(h1, h2, FS_HASH_BYTES);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(test_every_member_holds_an_unlinked_file),
	  T(test_other_types_are_freed_at_once),
	  T(test_release_all_releases_the_node_everywhere),
	  T(test_a_node_leaving_the_configuration_is_released),
	  T(test_release_list_releases_those_held),
	  T(test_hook_tells_each_new_orphan),
	  T(test_hook_tells_a_removed_directory),
	  T(test_hook_tells_what_changed),
	  T(test_install_tells_and_orphans_can_be_listed),
	  T(test_fsck_and_hash_accept_members_and_orphans))
