/* Helpers shared by the fs tests. */

#define _GNU_SOURCE /* nftw flags */

#include "tests/fs/fs_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *fst_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/raftfs-%s-XXXXXX", base, tag) < 0)
		abort();
	if (mkdtemp(path) == NULL)
		abort();
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void fst_rmrf(const char *path)
{
	if (path != NULL)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t fst_env_count(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		return def;
	return strtoull(v, NULL, 0);
}

uint64_t fst_seed(uint64_t def)
{
	return fst_env_count("SEED", def);
}

uint64_t fst_rand(uint64_t *s)
{
	/* splitmix64: any seed, including 0, gives a good stream */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t fst_below(uint64_t *s, uint64_t n)
{
	return n == 0 ? 0 : fst_rand(s) % n;
}

void fst_cmd(struct fs_cmd *c, uint8_t op, struct fst_proposer *p,
	     struct fs_time clock)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	p->seq++;
	if (p->low_water == 0)
		p->low_water = 1;
	c->proposal.id.node = p->node;
	c->proposal.id.epoch = p->epoch;
	c->proposal.id.seq = p->seq;
	c->proposal.low_water = p->low_water;
	c->clock = clock;
	c->uid = 1000;
	c->gid = 1000;
}

uint8_t *fst_encode(const struct fs_cmd *c, size_t *len)
{
	size_t n = fs_cmd_encoded_size(c);
	uint8_t *buf;

	if (n == 0)
		abort();
	buf = malloc(n);
	if (buf == NULL || fs_cmd_encode(c, buf, n) != (long)n)
		abort();
	*len = n;
	return buf;
}

/* ---------------------------------------------------------------------- */
/* The command generator.                                                  */

static const char *const names[] = {"a", "b", "c", "d", "e", "f",
				    "g", "h", "dir", "file", "x.txt", "y"};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

void fst_gen_init(struct fst_gen *g, struct model *m, uint64_t seed)
{
	memset(g, 0, sizeof(*g));
	g->rng = seed;
	g->m = m;
	for (int i = 0; i < 3; i++) {
		g->prop[i].node = (uint64_t)i + 1;
		g->prop[i].epoch = 1;
		g->prop[i].low_water = 1;
	}
	g->clock.sec = 1700000000;
	g->last_dir = FS_ROOT_INO;
	g->block_size = 4096;
	g->max_inodes = 1000;
	g->max_offset = 96 * 1024;
}

void fst_gen_release(struct fst_gen *g)
{
	for (size_t i = 0; i < FST_HISTORY; i++)
		free(g->history[i]);
	memset(g, 0, sizeof(*g));
}

static struct fst_proposer *pick_proposer(struct fst_gen *g)
{
	struct fst_proposer *p = &g->prop[fst_below(&g->rng, 3)];
	uint64_t back;

	/* The proposer learns outcomes out of order: its low-water mark
	 * trails its sequence by a few. */
	back = fst_below(&g->rng, 8);
	if (p->seq + 1 > back && p->seq + 1 - back > p->low_water)
		p->low_water = p->seq + 1 - back;
	if (fst_below(&g->rng, 3000) == 0) {
		p->epoch++; /* a restart */
		p->seq = 0;
		p->low_water = 1;
	}
	return p;
}

static void tick(struct fst_gen *g)
{
	g->clock.nsec += (uint32_t)fst_below(&g->rng, 2000000);
	if (g->clock.nsec >= 1000000000u) {
		g->clock.nsec -= 1000000000u;
		g->clock.sec++;
	}
}

static struct fs_time reading(struct fst_gen *g)
{
	struct fs_time t = g->clock;

	/* Proposers' clocks disagree: sometimes a reading from the past. */
	if (fst_below(&g->rng, 20) == 0)
		t.sec -= (int64_t)fst_below(&g->rng, 2);
	return t;
}

static uint64_t pick_ino(struct fst_gen *g)
{
	uint64_t n = g->m->next_ino ? g->m->next_ino : 2;

	return 1 + fst_below(&g->rng, n + 1); /* sometimes a missing one */
}

static uint64_t pick_dir(struct fst_gen *g)
{
	struct model_inode *last = model_inode(g->m, g->last_dir);

	if (fst_below(&g->rng, 3) == 0 && last != NULL && S_ISDIR(last->mode))
		return g->last_dir;
	for (int i = 0; i < 8; i++) {
		uint64_t ino = pick_ino(g);
		struct model_inode *in = model_inode(g->m, ino);
		if (in != NULL && S_ISDIR(in->mode))
			return ino;
	}
	return fst_below(&g->rng, 50) == 0 ? pick_ino(g) : FS_ROOT_INO;
}

static uint64_t pick_file(struct fst_gen *g)
{
	for (int i = 0; i < 8; i++) {
		uint64_t ino = pick_ino(g);
		struct model_inode *in = model_inode(g->m, ino);
		if (in != NULL && S_ISREG(in->mode))
			return ino;
	}
	return pick_ino(g);
}

/* A name in dir: often an existing one, sometimes a too-long one. */
static void pick_name(struct fst_gen *g, uint64_t dir, char *buf,
		      uint32_t *len, uint64_t exist_pct)
{
	struct model_inode *d = model_inode(g->m, dir);
	uint64_t r = fst_below(&g->rng, 100);

	if (r < 2) {
		*len = 256 + (uint32_t)fst_below(&g->rng, 3);
		memset(buf, 'n', *len);
		return;
	}
	if (d != NULL && S_ISDIR(d->mode) && d->n_entries > 0 &&
	    r < 2 + exist_pct) {
		struct model_entry *e =
			&d->entries[fst_below(&g->rng, d->n_entries)];
		memcpy(buf, e->name, e->name_len);
		*len = (uint32_t)e->name_len;
		return;
	}
	{
		const char *n = names[fst_below(&g->rng, N_NAMES)];
		*len = (uint32_t)strlen(n);
		memcpy(buf, n, *len);
	}
}

static void pick_holders(struct fst_gen *g, struct fs_cmd *c)
{
	c->n_holders = 0;
	if (fst_below(&g->rng, 3) != 0)
		return;
	c->n_holders = 1 + (uint32_t)fst_below(&g->rng, 3);
	for (uint32_t i = 0; i < c->n_holders; i++)
		c->holders[i] = 1 + fst_below(&g->rng, 3);
}

static void remember(struct fst_gen *g, const uint8_t *buf, size_t len)
{
	size_t slot = g->n_history++ % FST_HISTORY;

	free(g->history[slot]);
	g->history[slot] = malloc(len);
	if (g->history[slot] == NULL)
		abort();
	memcpy(g->history[slot], buf, len);
	g->history_len[slot] = len;
}

uint8_t *fst_gen_init_cmd(struct fst_gen *g, size_t *len)
{
	struct fs_cmd c;

	fst_cmd(&c, FS_OP_INIT, &g->prop[0], g->clock);
	c.uid = 0;
	c.gid = 0;
	memcpy(c.fs_id, "raftfs-test-fsid", 16);
	c.block_size = g->block_size;
	c.capacity_bytes = 1ull << 40;
	c.max_inodes = g->max_inodes;
	c.name_max = 255;
	c.mode = 0755;
	return fst_encode(&c, len);
}

static const uint32_t create_types[] = {S_IFREG, S_IFREG, S_IFREG, S_IFDIR,
					S_IFDIR, S_IFIFO, S_IFSOCK, S_IFCHR,
					S_IFBLK};

uint8_t *fst_gen_next(struct fst_gen *g, size_t *len)
{
	char name[FS_NAME_CODEC_MAX + 1], name2[FS_NAME_CODEC_MAX + 1];
	uint8_t data[20000], *out;
	struct fst_proposer *p;
	struct fs_cmd c;
	uint64_t r;

	tick(g);
	if (g->n_history > 0 && fst_below(&g->rng, 100) < 4) {
		/* A retry of a recent proposal, byte for byte. */
		size_t n = g->n_history < FST_HISTORY ? g->n_history
						      : FST_HISTORY;
		size_t slot = (size_t)fst_below(&g->rng, n);
		out = malloc(g->history_len[slot]);
		if (out == NULL)
			abort();
		memcpy(out, g->history[slot], g->history_len[slot]);
		*len = g->history_len[slot];
		return out;
	}
	p = pick_proposer(g);
	r = fst_below(&g->rng, 100);
	/* Near the inode limit, remove more than create. */
	if (r < 22 && g->m->used_inodes * 10 > g->max_inodes * 8 &&
	    fst_below(&g->rng, 2) == 0)
		r = 31 + fst_below(&g->rng, 13);
	if (r < 22) {
		fst_cmd(&c, FS_OP_CREATE, p, reading(g));
		c.ino = pick_dir(g);
		pick_name(g, c.ino, name, &c.name_len, 15);
		c.name = name;
		c.mode = create_types[fst_below(&g->rng, 9)] |
			 (uint32_t)fst_below(&g->rng, 010000);
		c.rdev = fst_below(&g->rng, 1000);
		c.uid = (uint32_t)fst_below(&g->rng, 3);
		c.gid = (uint32_t)fst_below(&g->rng, 3);
	} else if (r < 25) {
		fst_cmd(&c, FS_OP_SYMLINK, p, reading(g));
		c.ino = pick_dir(g);
		pick_name(g, c.ino, name, &c.name_len, 15);
		c.name = name;
		c.data_len = fst_below(&g->rng, 50) == 0 ? 4096 + 10
			     : 1 + (uint32_t)fst_below(&g->rng, 40);
		memset(data, 'T', c.data_len);
		c.data = data;
	} else if (r < 31) {
		fst_cmd(&c, FS_OP_LINK, p, reading(g));
		c.ino = pick_file(g);
		c.ino2 = pick_dir(g);
		pick_name(g, c.ino2, name, &c.name_len, 15);
		c.name = name;
	} else if (r < 39) {
		fst_cmd(&c, FS_OP_UNLINK, p, reading(g));
		c.ino = pick_dir(g);
		pick_name(g, c.ino, name, &c.name_len, 85);
		c.name = name;
		pick_holders(g, &c);
	} else if (r < 44) {
		fst_cmd(&c, FS_OP_RMDIR, p, reading(g));
		c.ino = pick_dir(g);
		pick_name(g, c.ino, name, &c.name_len, 85);
		c.name = name;
	} else if (r < 55) {
		uint64_t f = fst_below(&g->rng, 20);
		fst_cmd(&c, FS_OP_RENAME, p, reading(g));
		c.ino = pick_dir(g);
		pick_name(g, c.ino, name, &c.name_len, 85);
		c.name = name;
		c.ino2 = fst_below(&g->rng, 3) == 0 ? c.ino : pick_dir(g);
		pick_name(g, c.ino2, name2, &c.name2_len, 40);
		c.name2 = name2;
		c.flags = f < 14 ? 0 : f < 16 ? FS_RENAME_NOREPLACE
				   : f < 19   ? FS_RENAME_EXCHANGE
					      : 3;
		pick_holders(g, &c);
	} else if (r < 64) {
		fst_cmd(&c, FS_OP_SETATTR, p, reading(g));
		c.ino = fst_below(&g->rng, 2) ? pick_file(g) : pick_ino(g);
		c.valid = (uint32_t)fst_below(&g->rng, FS_SET_ALL + 1);
		if ((c.valid & FS_SET_ATIME) && (c.valid & FS_SET_ATIME_NOW))
			c.valid &= ~(uint32_t)FS_SET_ATIME_NOW;
		if ((c.valid & FS_SET_MTIME) && (c.valid & FS_SET_MTIME_NOW))
			c.valid &= ~(uint32_t)FS_SET_MTIME_NOW;
		c.mode = (uint32_t)fst_below(&g->rng, 010000);
		c.set_uid = (uint32_t)fst_below(&g->rng, 3);
		c.set_gid = (uint32_t)fst_below(&g->rng, 3);
		c.size = fst_below(&g->rng, g->max_offset);
		c.atime.sec = (int64_t)fst_below(&g->rng, 2000000000);
		c.atime.nsec = (uint32_t)fst_below(&g->rng, 1000000000);
		c.mtime.sec = (int64_t)fst_below(&g->rng, 2000000000);
		c.mtime.nsec = (uint32_t)fst_below(&g->rng, 1000000000);
	} else if (r < 80) {
		fst_cmd(&c, FS_OP_WRITE, p, reading(g));
		c.ino = pick_file(g);
		c.data_len = (uint32_t)fst_below(&g->rng, 3) == 0
				     ? (uint32_t)fst_below(&g->rng, 64)
				     : (uint32_t)fst_below(&g->rng,
							   sizeof(data));
		c.offset = fst_below(&g->rng, g->max_offset - c.data_len);
		for (uint32_t i = 0; i < c.data_len; i++)
			data[i] = (uint8_t)fst_rand(&g->rng);
		if (c.data_len > 0 && fst_below(&g->rng, 4) == 0)
			memset(data, 0, c.data_len / 2); /* zeros are data */
		c.data = data;
	} else if (r < 86) {
		static const uint32_t modes[] = {
			0, FS_FALLOC_KEEP_SIZE,
			FS_FALLOC_PUNCH_HOLE | FS_FALLOC_KEEP_SIZE,
			FS_FALLOC_PUNCH_HOLE | FS_FALLOC_KEEP_SIZE,
			FS_FALLOC_ZERO_RANGE,
			FS_FALLOC_ZERO_RANGE | FS_FALLOC_KEEP_SIZE,
			FS_FALLOC_PUNCH_HOLE, 0x08};
		fst_cmd(&c, FS_OP_FALLOCATE, p, reading(g));
		c.ino = pick_file(g);
		c.flags = modes[fst_below(&g->rng, 8)];
		c.offset = fst_below(&g->rng, g->max_offset);
		c.length = fst_below(&g->rng, g->max_offset - c.offset);
	} else if (r < 92) {
		static const char *const xn[] = {"user.a", "user.b",
						 "trusted.c", "user.d"};
		const char *n = xn[fst_below(&g->rng, 4)];
		fst_cmd(&c, FS_OP_SETXATTR, p, reading(g));
		c.ino = pick_ino(g);
		c.name = n;
		c.name_len = (uint32_t)strlen(n);
		c.flags = (uint32_t)fst_below(&g->rng, 4);
		c.data_len = (uint32_t)fst_below(&g->rng, 100);
		memset(data, (int)fst_below(&g->rng, 256), c.data_len);
		c.data = data;
	} else if (r < 95) {
		static const char *const xn[] = {"user.a", "user.b",
						 "trusted.c"};
		const char *n = xn[fst_below(&g->rng, 3)];
		fst_cmd(&c, FS_OP_REMOVEXATTR, p, reading(g));
		c.ino = pick_ino(g);
		c.name = n;
		c.name_len = (uint32_t)strlen(n);
	} else if (r < 98) {
		fst_cmd(&c, FS_OP_RELEASE, p, reading(g));
		c.ino = pick_ino(g);
	} else {
		fst_cmd(&c, FS_OP_CHECK, p, reading(g));
		c.offset = 1 + fst_below(&g->rng, 1000);
	}
	out = fst_encode(&c, len);
	if (c.op == FS_OP_CREATE && S_ISDIR(c.mode))
		g->last_dir = g->m->next_ino; /* the ino it will get */
	remember(g, out, *len);
	return out;
}
