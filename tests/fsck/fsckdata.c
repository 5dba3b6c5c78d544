/*
 * fsckdata: builds data dirs for the fsck tests and damages them.
 *
 *   fsckdata build DIR [--files N] [--dirs D]
 *       DIR/fs through fs_store_apply and DIR/log through the log store
 *       API, holding the same commands: a small tree with every kind of
 *       inode (directories, files with data over several blocks, a
 *       symlink, a hard link, a fifo, xattrs, an orphan held by node 2, a
 *       renamed directory), plus N empty files spread over D directories.
 *   fsckdata ino DIR PATH              print the inode number of PATH
 *   fsckdata damage DIR KIND [ARGS]    change the stopped node's stores:
 *       del-entry PATH       delete the entry key by name (the cookie
 *                            record stays)
 *       add-orphan           an inode no entry points at, not in the
 *                            orphan table (prints its number; created
 *                            at the root's log index, so the same on
 *                            every replica)
 *       nlink PATH N         set the inode's link count
 *       stray-block          a data block of an inode that does not exist
 *                            (prints its number)
 *       beyond-size PATH     a data block past the file's size
 *       flip-byte PATH OFF   change one byte of file data (not structural;
 *                            prints the old and new byte)
 *       bad-members          a malformed members record (M)
 *       cut-log INDEX        delete one log entry
 *       super-version N      write format version N into the superblock
 *       super-garbage        replace the superblock with garbage bytes
 *
 * Exit 0 on success, 1 with one line on stderr otherwise. The data dir
 * must not be in use.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <leveldb/c.h>

#include "fs/codec.h"
#include "fs/fs.h"
#include "fs/store.h"
#include "fs/store_kv.h"
#include "raft/logstore.h"

#define CLUSTER_ID "fsck-test"
#define LOG_BATCH 4096u

static int die(const char *fmt, const char *arg)
	__attribute__((format(printf, 1, 0)));

static int die(const char *fmt, const char *arg)
{
	fprintf(stderr, "fsckdata: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
	fprintf(stderr, "\n");
	return 1;
}

/* ---------------------------------------------------------------------- */
/* build                                                                   */

struct builder {
	struct fs_store *fs;
	struct raft_logstore *log;
	uint64_t index;
	uint64_t seq;
	int64_t clock;
	/* Pending log entries (their payloads owned here). */
	struct raft_entry entries[LOG_BATCH];
	uint8_t *payloads[LOG_BATCH];
	uint32_t n;
	struct fs_result last;
};

static int flush_log(struct builder *b)
{
	struct raft_logstore_write w = {false, {0, 0}, 0, b->n, b->entries, NULL, NULL, 0};
	char err[256];
	int rc = 0;

	if (b->n > 0 && raft_logstore_write(b->log, &w, 1, err,
					    sizeof(err)) != 0) {
		fprintf(stderr, "fsckdata: %s\n", err);
		rc = -EIO;
	}
	for (uint32_t i = 0; i < b->n; i++)
		free(b->payloads[i]);
	b->n = 0;
	return rc;
}

/* Apply one command as the next log entry and log it. */
static int run(struct builder *b, struct fs_cmd *c)
{
	size_t size;
	uint8_t *buf;
	long n;
	int rc;

	c->proposal.id.node = 1;
	c->proposal.id.epoch = 1;
	c->proposal.id.seq = ++b->seq;
	c->proposal.low_water = b->seq;
	c->clock.sec = ++b->clock;
	size = fs_cmd_encoded_size(c);
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return -ENOMEM;
	n = fs_cmd_encode(c, buf, size);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	rc = fs_store_apply(b->fs, ++b->index, buf, (size_t)n, &b->last);
	if (rc == 0 && b->last.err != 0)
		rc = -b->last.err;
	b->entries[b->n] = (struct raft_entry){1, b->index, RAFT_ENTRY_NORMAL,
					       (uint32_t)n, buf};
	b->payloads[b->n++] = buf;
	if (rc == 0 && b->n == LOG_BATCH)
		rc = flush_log(b);
	return rc;
}

static void named(struct fs_cmd *c, uint8_t op, uint64_t ino,
		  const char *name)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->ino = ino;
	c->name = name;
	c->name_len = (uint32_t)strlen(name);
}

/* Create name in dir with mode; the new inode number. */
static int create(struct builder *b, uint64_t dir, const char *name,
		  uint32_t mode, uint64_t *ino)
{
	struct fs_cmd c;
	int rc;

	named(&c, FS_OP_CREATE, dir, name);
	c.mode = mode;
	rc = run(b, &c);
	*ino = b->last.ino;
	return rc;
}

static int write_data(struct builder *b, uint64_t ino, uint64_t off,
		      size_t len)
{
	uint8_t *data = malloc(len);
	struct fs_cmd c;
	int rc;

	if (data == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + off);
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_WRITE;
	c.ino = ino;
	c.offset = off;
	c.data = data;
	c.data_len = (uint32_t)len;
	rc = run(b, &c);
	free(data);
	return rc;
}

/* The fixed small tree: every kind of inode and record. */
static int build_tree(struct builder *b)
{
	uint64_t docs, sub, file, big, tmp, x;
	struct fs_cmd c;
	int rc = 0;

	rc = create(b, FS_ROOT_INO, "docs", S_IFDIR | 0755, &docs);
	if (rc == 0)
		rc = create(b, docs, "sub", S_IFDIR | 0755, &sub);
	if (rc == 0)
		rc = create(b, docs, "readme.txt", S_IFREG | 0644, &file);
	if (rc == 0)
		rc = write_data(b, file, 0, 1000);
	if (rc == 0)
		rc = create(b, sub, "big.bin", S_IFREG | 0600, &big);
	if (rc == 0) /* three blocks of 4 KiB, the middle one a hole */
		rc = write_data(b, big, 0, 4096);
	if (rc == 0)
		rc = write_data(b, big, 8192, 3000);
	if (rc == 0) {
		named(&c, FS_OP_SYMLINK, FS_ROOT_INO, "link");
		c.data = "docs/readme.txt";
		c.data_len = 15;
		rc = run(b, &c);
	}
	if (rc == 0) {
		named(&c, FS_OP_LINK, file, "hard.txt");
		c.ino = file;
		c.ino2 = FS_ROOT_INO;
		rc = run(b, &c);
	}
	if (rc == 0)
		rc = create(b, sub, "pipe", S_IFIFO | 0644, &x);
	if (rc == 0) {
		named(&c, FS_OP_SETXATTR, file, "user.tag");
		c.data = "v1";
		c.data_len = 2;
		rc = run(b, &c);
	}
	if (rc == 0) /* an orphan: unlinked while node 2 holds it open */
		rc = create(b, docs, "open-then-unlinked", S_IFREG | 0644, &tmp);
	if (rc == 0)
		rc = write_data(b, tmp, 0, 100);
	if (rc == 0) {
		named(&c, FS_OP_UNLINK, docs, "open-then-unlinked");
		c.n_holders = 1;
		c.holders[0] = 2;
		rc = run(b, &c);
	}
	/* Three writes of 256 KiB: log entries whose payloads the log store
	 * keeps in a segment file (RAFT_LOGSTORE_SEGMENT_MIN_BYTES). */
	if (rc == 0)
		rc = create(b, docs, "large.bin", S_IFREG | 0644, &x);
	for (uint64_t off = 0; rc == 0 && off < (768u << 10); off += 256u << 10)
		rc = write_data(b, x, off, 256u << 10);
	if (rc == 0)
		rc = create(b, FS_ROOT_INO, "old", S_IFDIR | 0700, &x);
	if (rc == 0) {
		named(&c, FS_OP_RENAME, FS_ROOT_INO, "old");
		c.ino2 = docs;
		c.name2 = "moved";
		c.name2_len = 5;
		rc = run(b, &c);
	}
	return rc;
}

static int build_many(struct builder *b, uint64_t files, uint64_t dirs)
{
	uint64_t *dir_ino = calloc(dirs ? dirs : 1, sizeof(*dir_ino));
	char name[64];
	int rc = 0;

	if (dir_ino == NULL)
		return -ENOMEM;
	for (uint64_t d = 0; rc == 0 && d < dirs; d++) {
		snprintf(name, sizeof(name), "d%" PRIu64, d);
		rc = create(b, FS_ROOT_INO, name, S_IFDIR | 0755, &dir_ino[d]);
	}
	for (uint64_t f = 0; rc == 0 && f < files; f++) {
		uint64_t ino;
		snprintf(name, sizeof(name), "f%" PRIu64, f);
		rc = create(b, dirs ? dir_ino[f % dirs] : FS_ROOT_INO, name,
			    S_IFREG | 0644, &ino);
	}
	free(dir_ino);
	return rc;
}

static int cmd_build(const char *dir, uint64_t files, uint64_t dirs)
{
	struct builder *b = calloc(1, sizeof(*b));
	struct raft_logstore_write w = {true, {1, 1}, 0, 0, NULL, NULL, NULL, 0};
	char path[4096], err[256];
	struct fs_cmd c;
	int rc;

	if (b == NULL)
		return die("%s", "out of memory");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		free(b);
		return die("cannot create %s", dir);
	}
	snprintf(path, sizeof(path), "%s/fs", dir);
	rc = fs_store_open(path, &b->fs);
	snprintf(path, sizeof(path), "%s/log", dir);
	if (rc == 0 && raft_logstore_open(path, CLUSTER_ID, 1, true, &b->log,
					  NULL, err, sizeof(err)) != 0)
		rc = -EIO;
	if (rc == 0 && raft_logstore_write(b->log, &w, 1, err, sizeof(err)))
		rc = -EIO;
	if (rc == 0) {
		memset(&c, 0, sizeof(c));
		c.op = FS_OP_INIT;
		memcpy(c.fs_id, "fsck-test-fs-id!", 16);
		c.block_size = 4096;
		c.capacity_bytes = 1ull << 40;
		c.max_inodes = 1ull << 32;
		c.name_max = FS_NAME_MAX;
		c.mode = 0755;
		rc = run(b, &c);
	}
	if (rc == 0)
		rc = build_tree(b);
	if (rc == 0)
		rc = build_many(b, files, dirs);
	if (rc == 0)
		rc = flush_log(b);
	if (rc == 0)
		rc = fs_store_sync(b->fs);
	for (uint32_t i = 0; i < b->n; i++)
		free(b->payloads[i]);
	fs_store_close(b->fs);
	raft_logstore_close(b->log);
	free(b);
	if (rc != 0)
		return die("cannot build the data dir: %s", strerror(-rc));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* damage                                                                  */

/* Resolve an absolute path; the parent directory too. */
static int resolve(struct fs_store *s, const char *path, uint64_t *parent,
		   const char **leaf, struct fs_attr *attr)
{
	const char *p = path;

	*parent = FS_ROOT_INO;
	*leaf = NULL;
	if (fs_getattr(s, FS_ROOT_INO, attr) != 0)
		return -ENOENT;
	while (*p == '/')
		p++;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		*parent = attr->ino;
		*leaf = p;
		if (fs_lookup(s, attr->ino, p, len, attr) != 0)
			return -ENOENT;
		p += len;
		while (*p == '/')
			p++;
	}
	return 0;
}

static int kv_put(struct fs_store *s, const struct fs_key *k, const void *v,
		  size_t len)
{
	struct fs_kv_batch *b = NULL;
	int rc = fs_kv_batch_new(&b);

	if (rc != 0)
		return rc;
	if (v != NULL)
		fs_kv_batch_put(b, k->b, k->len, v, len);
	else
		fs_kv_batch_delete(b, k->b, k->len);
	rc = fs_kv_write(s->kv, b, true);
	fs_kv_batch_free(b);
	return rc;
}

static int super_put(struct fs_store *s, const struct fs_super *sb)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	uint8_t buf[FS_SUPER_BYTES];

	return kv_put(s, &k, buf, fs_super_encode(sb, buf));
}

static int inode_rw(struct fs_store *s, uint64_t ino, uint32_t nlink)
{
	struct fs_key k;
	uint8_t buf[FS_INODE_BYTES];
	struct fs_inode in;
	void *v = NULL;
	size_t len;
	int rc;

	fs_key1(&k, FS_KEY_INODE, ino);
	rc = fs_kv_get(s->kv, NULL, k.b, k.len, &v, &len);
	if (rc != 0)
		return rc;
	rc = fs_inode_decode(v, len, &in);
	fs_kv_free(v);
	if (rc != 0)
		return rc;
	in.nlink = nlink;
	return kv_put(s, &k, buf, fs_inode_encode(&in, buf));
}

static int damage_fs(struct fs_store *s, int argc, char **argv)
{
	const char *kind = argv[0], *leaf = NULL;
	struct fs_attr attr;
	struct fs_key k;
	uint64_t parent;
	uint8_t buf[FS_INODE_BYTES];
	int rc;

	if ((!strcmp(kind, "del-entry") || !strcmp(kind, "nlink") ||
	     !strcmp(kind, "beyond-size") || !strcmp(kind, "flip-byte")) &&
	    (argc < 2 || resolve(s, argv[1], &parent, &leaf, &attr) != 0 ||
	     leaf == NULL))
		return -ENOENT;
	if (!strcmp(kind, "del-entry")) {
		fs_key_name(&k, FS_KEY_DENTRY, parent, leaf, strlen(leaf));
		return kv_put(s, &k, NULL, 0);
	}
	if (!strcmp(kind, "nlink") && argc == 3)
		return inode_rw(s, attr.ino, (uint32_t)strtoul(argv[2], NULL, 10));
	if (!strcmp(kind, "beyond-size")) {
		uint64_t no = attr.size / s->sb.block_size + 2;
		fs_key2(&k, FS_KEY_BLOCK, attr.ino, no);
		return kv_put(s, &k, "beyond", 6);
	}
	if (!strcmp(kind, "flip-byte") && argc == 3) {
		uint64_t off = strtoull(argv[2], NULL, 10);
		void *v = NULL;
		size_t len;
		fs_key2(&k, FS_KEY_BLOCK, attr.ino, off / s->sb.block_size);
		rc = fs_kv_get(s->kv, NULL, k.b, k.len, &v, &len);
		if (rc != 0 || off % s->sb.block_size >= len) {
			fs_kv_free(v);
			return rc ? rc : -ENOENT;
		}
		uint8_t *byte = (uint8_t *)v + off % s->sb.block_size;
		printf("%02x %02x\n", *byte, *byte ^ 0x5a);
		*byte ^= 0x5a;
		rc = kv_put(s, &k, v, len);
		fs_kv_free(v);
		return rc;
	}
	if (!strcmp(kind, "add-orphan")) {
		struct fs_inode in;
		struct fs_super sb = s->sb;
		struct fs_attr root;
		memset(&in, 0, sizeof(in));
		in.ino = sb.next_ino++;
		in.mode = S_IFREG | 0644;
		in.nlink = 1;
		/* The root's: the same on every replica, whatever index each
		 * stopped at (the same damage keeps replicas identical). */
		if (fs_getattr(s, FS_ROOT_INO, &root) != 0)
			return -ENOENT;
		in.generation = root.generation;
		sb.used_inodes++;
		fs_key1(&k, FS_KEY_INODE, in.ino);
		rc = kv_put(s, &k, buf, fs_inode_encode(&in, buf));
		if (rc == 0)
			rc = super_put(s, &sb);
		if (rc == 0)
			printf("%" PRIu64 "\n", in.ino);
		return rc;
	}
	if (!strcmp(kind, "stray-block")) {
		struct fs_super sb = s->sb;
		uint64_t ino = sb.next_ino + 1000;
		sb.used_bytes += 10;
		fs_key2(&k, FS_KEY_BLOCK, ino, 0);
		rc = kv_put(s, &k, "0123456789", 10);
		if (rc == 0)
			rc = super_put(s, &sb);
		if (rc == 0)
			printf("%" PRIu64 "\n", ino);
		return rc;
	}
	if (!strcmp(kind, "super-version") && argc == 2) {
		struct fs_super sb = s->sb;
		sb.version = (uint32_t)strtoul(argv[1], NULL, 10);
		return super_put(s, &sb);
	}
	if (!strcmp(kind, "bad-members")) {
		/* Two ids, descending: the members record must ascend. */
		static const uint8_t v[] = {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3,
					    0, 0, 0, 0, 0, 0, 0, 1};
		k.b[0] = FS_KEY_MEMBERS;
		k.len = 1;
		return kv_put(s, &k, v, sizeof(v));
	}
	if (!strcmp(kind, "super-garbage")) {
		fs_key1(&k, FS_KEY_SUPER, 0);
		k.len = 1;
		return kv_put(s, &k, "garbage", 7);
	}
	return -EINVAL;
}

static int cut_log(const char *dir, uint64_t index)
{
	char path[4096], *err = NULL;
	leveldb_options_t *opts = leveldb_options_create();
	leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
	leveldb_t *db;
	uint8_t key[9] = {'e'};

	for (int i = 0; i < 8; i++)
		key[1 + i] = (uint8_t)(index >> (56 - 8 * i));
	snprintf(path, sizeof(path), "%s/log", dir);
	db = leveldb_open(opts, path, &err);
	if (db != NULL) {
		leveldb_writeoptions_set_sync(wo, 1);
		leveldb_delete(db, wo, (const char *)key, sizeof(key), &err);
		leveldb_close(db);
	}
	leveldb_options_destroy(opts);
	leveldb_writeoptions_destroy(wo);
	if (err != NULL) {
		fprintf(stderr, "fsckdata: %s\n", err);
		leveldb_free(err);
		return -EIO;
	}
	return 0;
}

static int cmd_damage(const char *dir, int argc, char **argv)
{
	struct fs_store *s = NULL;
	char path[4096];
	int rc;

	if (argc < 1)
		return die("%s", "damage: which kind?");
	if (!strcmp(argv[0], "cut-log")) {
		if (argc != 2)
			return die("%s", "cut-log INDEX");
		return cut_log(dir, strtoull(argv[1], NULL, 10)) ? 1 : 0;
	}
	snprintf(path, sizeof(path), "%s/fs", dir);
	rc = fs_store_open(path, &s);
	if (rc != 0)
		return die("cannot open the fs store: %s", strerror(-rc));
	rc = damage_fs(s, argc, argv);
	fs_store_close(s);
	if (rc != 0)
		return die("damage failed: %s", strerror(-rc));
	return 0;
}

static int cmd_ino(const char *dir, const char *p)
{
	struct fs_store *s = NULL;
	struct fs_attr attr;
	const char *leaf;
	uint64_t parent;
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/fs", dir);
	rc = fs_store_open(path, &s);
	if (rc == 0)
		rc = resolve(s, p, &parent, &leaf, &attr);
	fs_store_close(s);
	if (rc != 0)
		return die("no such path: %s", p);
	printf("%" PRIu64 "\n", attr.ino);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t files = 0, dirs = 0;

	if (argc >= 3 && !strcmp(argv[1], "build")) {
		for (int i = 3; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--files"))
				files = strtoull(argv[i + 1], NULL, 10);
			else if (!strcmp(argv[i], "--dirs"))
				dirs = strtoull(argv[i + 1], NULL, 10);
			else
				return die("unknown option %s", argv[i]);
		}
		return cmd_build(argv[2], files, dirs);
	}
	if (argc == 4 && !strcmp(argv[1], "ino"))
		return cmd_ino(argv[2], argv[3]);
	if (argc >= 4 && !strcmp(argv[1], "damage"))
		return cmd_damage(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: fsckdata build DIR [--files N] [--dirs D] | "
			"ino DIR PATH | damage DIR KIND [ARGS]\n");
	return 2;
}
