/*
 * Applying the repair commands of `fsck --cluster --repair` (FS_OP_REPAIR_*,
 * docs/FSCK.md). A repair is proposed after a check found a structural
 * problem at a check point on every replica; it is applied like any other
 * command, so every replica changes the same way. Apply reads nothing but
 * the command and the replicated state, and first checks the command's
 * precondition: when the state moved since the check (the entry came
 * back, the inode was linked, ...), the command fails with ESTALE and
 * changes nothing. Repairs do not touch times, except the ctime of an
 * inode moved to /lost+found and the times of a /lost+found created here.
 */

#include "fs/apply_io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LOST_FOUND "lost+found"

/* Walk the stored keys in [lo, hi) with their value lengths, as they were
 * before this command: callers walk a range before they write into it. */
static int walk(struct fs_apply *a, const struct fs_key *lo,
		const struct fs_key *hi,
		int (*fn)(void *ctx, const uint8_t *k, size_t klen,
			  const uint8_t *v, size_t vlen),
		void *ctx)
{
	struct fs_kv_iter *it = NULL;
	int rc = fs_kv_iter_new(a->txn.s->kv, NULL, &it);

	if (rc != 0)
		return rc;
	for (fs_kv_iter_seek(it, lo->b, lo->len);
	     rc == 0 && fs_kv_iter_valid(it); fs_kv_iter_next(it)) {
		struct fs_key k;
		size_t vlen;
		const uint8_t *kb = fs_kv_iter_key(it, &k.len);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		if (k.len > FS_KEY_MAX)
			return fs_kv_iter_free(it), -EUCLEAN;
		memcpy(k.b, kb, k.len);
		if (fs_key_cmp(&k, hi) >= 0)
			break;
		rc = fn(ctx, kb, k.len, v, vlen);
	}
	if (rc == 0)
		rc = fs_kv_iter_status(it);
	fs_kv_iter_free(it);
	return rc;
}

static int exists(struct fs_apply *a, const struct fs_key *k)
{
	uint8_t *val = NULL;
	size_t len;
	int rc = fs_txn_get(&a->txn, k, &val, &len);

	free(val);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

/* ---- entries ---- */

static int entry_put(struct fs_apply *a, uint64_t dir, const uint8_t *name,
		     size_t len, uint64_t seq, uint64_t ino, uint32_t type,
		     bool by_name)
{
	uint8_t buf[12 + FS_NAME_CODEC_MAX];
	struct fs_wbuf w = {buf, sizeof(buf), 0, false};
	struct fs_key k;

	if (by_name) {
		fs_put_u64(&w, seq);
		fs_put_u64(&w, ino);
		fs_put_u32(&w, type);
		fs_key_name(&k, FS_KEY_DENTRY, dir, (const char *)name, len);
	} else {
		fs_put_u64(&w, ino);
		fs_put_u32(&w, type);
		fs_put_bytes(&w, name, len);
		fs_key2(&k, FS_KEY_COOKIE, dir, seq);
	}
	return w.overflow ? -EINVAL : fs_txn_put(&a->txn, &k, buf, w.len);
}

/* The entry by name from its record by cookie (dir, cookie). */
static int entry_from_cookie(struct fs_apply *a, struct fs_inode *dir)
{
	struct fs_key k;
	struct fs_dentry de;
	uint8_t *val = NULL;
	size_t len;
	int rc;

	fs_key2(&k, FS_KEY_COOKIE, dir->ino, a->c->offset);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc == -ENOENT)
		return ESTALE;
	if (rc != 0)
		return rc;
	if (len <= 12 || len - 12 > a->sb.name_max) {
		free(val);
		return EINVAL; /* malformed: not ours to guess */
	}
	rc = fs_dentry_load(a, dir->ino, (const char *)val + 12, len - 12, &de);
	if (rc == 0)
		rc = ESTALE; /* the name is there (again) */
	else if (rc == ENOENT)
		rc = entry_put(a, dir->ino, val + 12, len - 12, a->c->offset,
			       fs_rd64(val), (uint32_t)val[8] << 24 |
			       (uint32_t)val[9] << 16 |
			       (uint32_t)val[10] << 8 | val[11], true);
	free(val);
	return rc;
}

/* The record by cookie from the entry by name (dir, name). */
static int cookie_from_entry(struct fs_apply *a, struct fs_inode *dir)
{
	const struct fs_cmd *c = a->c;
	struct fs_dentry de;
	struct fs_key k;
	int rc = fs_dentry_load(a, dir->ino, c->name, c->name_len, &de);

	if (rc == ENOENT)
		return ESTALE;
	if (rc != 0)
		return rc;
	fs_key2(&k, FS_KEY_COOKIE, dir->ino, de.seq);
	rc = exists(a, &k);
	if (rc != 0)
		return rc == 1 ? EEXIST : rc; /* taken by another name */
	if (de.seq >= dir->next_seq) {
		dir->next_seq = de.seq + 1;
		rc = fs_inode_store(a, dir);
	}
	return rc ? rc : entry_put(a, dir->ino, (const uint8_t *)c->name,
				   c->name_len, de.seq, de.ino, de.type,
				   false);
}

/* Remove the entry (dir, name) pointing at missing inode ino2. */
static int entry_remove(struct fs_apply *a, struct fs_inode *dir)
{
	const struct fs_cmd *c = a->c;
	struct fs_dentry de;
	struct fs_inode in;
	int rc = fs_dentry_load(a, dir->ino, c->name, c->name_len, &de);

	if (rc == ENOENT)
		return ESTALE;
	if (rc != 0)
		return rc;
	if (de.ino != c->ino2)
		return ESTALE;
	rc = fs_inode_load(a, de.ino, &in);
	if (rc == 0)
		return ESTALE; /* not dangling */
	if (rc != ENOENT)
		return rc;
	rc = fs_dentry_remove(a, dir, c->name, c->name_len, &de);
	if (rc != 0)
		return rc;
	if (dir->entries == UINT64_MAX) /* it was counted 0: stays 0 */
		dir->entries = 0;
	if (de.type == S_IFDIR && dir->nlink > 2)
		dir->nlink--;
	return fs_inode_store(a, dir);
}

static int repair_entry(struct fs_apply *a)
{
	struct fs_inode dir;
	int rc = fs_dir_load(a, a->c->ino, &dir);

	if (rc != 0)
		return rc == ENOENT || rc == ENOTDIR ? ESTALE : rc;
	switch (a->c->flags) {
	case FS_REPAIR_ENTRY_NAME:
		return entry_from_cookie(a, &dir);
	case FS_REPAIR_ENTRY_COOKIE:
		return cookie_from_entry(a, &dir);
	default:
		return entry_remove(a, &dir);
	}
}

/* ---- records of a missing inode ---- */

static int sum_len(void *ctx, const uint8_t *k, size_t klen,
		   const uint8_t *v, size_t vlen)
{
	(void)k;
	(void)klen;
	(void)v;
	*(uint64_t *)ctx += vlen;
	return 0;
}

static int repair_free(struct fs_apply *a)
{
	static const uint8_t prefixes[] = {FS_KEY_BLOCK, FS_KEY_SYMLINK,
					   FS_KEY_XATTR, FS_KEY_ORPHAN,
					   FS_KEY_DENTRY, FS_KEY_COOKIE};
	struct fs_inode in;
	struct fs_key lo, hi;
	uint64_t bytes = 0;
	int rc = fs_inode_load(a, a->c->ino, &in);

	if (rc == 0)
		return ESTALE; /* inode numbers are never reused: damage */
	if (rc != ENOENT)
		return rc;
	fs_key1(&lo, FS_KEY_BLOCK, a->c->ino);
	fs_key1(&hi, FS_KEY_BLOCK, a->c->ino + 1);
	rc = walk(a, &lo, &hi, sum_len, &bytes);
	for (size_t i = 0; rc == 0 && i < sizeof(prefixes); i++) {
		fs_key1(&lo, prefixes[i], a->c->ino);
		fs_key1(&hi, prefixes[i], a->c->ino + 1);
		rc = fs_apply_delete_range(a, &lo, &hi);
	}
	/* used_bytes counts every stored block, strays too. */
	a->sb.used_bytes -= bytes < a->sb.used_bytes ? bytes
						      : a->sb.used_bytes;
	return rc;
}

/* ---- data beyond the size ---- */

struct trim {
	struct fs_apply *a;
	uint64_t ino;
	uint64_t size;
	uint64_t kept;    /* bytes in the blocks that stay */
	uint64_t dropped; /* bytes dropped */
	int rc;
};

static int trim_block(void *ctx, const uint8_t *k, size_t klen,
		      const uint8_t *v, size_t vlen)
{
	struct trim *t = ctx;
	uint64_t bs = t->a->sb.block_size, no, start, keep;
	struct fs_key key;

	if (klen != 17)
		return -EUCLEAN;
	no = fs_rd64(k + 9);
	start = no * bs;
	keep = t->size > start ? t->size - start : 0;
	if (no > UINT64_MAX / bs)
		keep = 0;
	if (keep >= vlen) {
		t->kept += vlen;
		return 0;
	}
	fs_key2(&key, FS_KEY_BLOCK, t->ino, no);
	t->dropped += vlen - keep;
	t->kept += keep;
	if (keep == 0)
		return fs_txn_del(&t->a->txn, &key);
	return fs_txn_put(&t->a->txn, &key, v, (size_t)keep);
}

static int repair_data(struct fs_apply *a)
{
	struct fs_inode in;
	struct fs_key lo, hi;
	struct trim t = {a, a->c->ino, 0, 0, 0, 0};
	int rc = fs_inode_load(a, a->c->ino, &in);

	if (rc != 0)
		return rc == ENOENT ? ESTALE : rc;
	if (!S_ISREG(in.mode))
		return EINVAL;
	t.size = in.size;
	fs_key1(&lo, FS_KEY_BLOCK, in.ino);
	fs_key1(&hi, FS_KEY_BLOCK, in.ino + 1);
	rc = walk(a, &lo, &hi, trim_block, &t);
	if (rc != 0)
		return rc;
	if (t.dropped == 0 && in.alloc_bytes == t.kept)
		return ESTALE; /* nothing to do (any more) */
	a->sb.used_bytes -= t.dropped < a->sb.used_bytes ? t.dropped
							  : a->sb.used_bytes;
	in.alloc_bytes = t.kept;
	return fs_inode_store(a, &in);
}

/* ---- /lost+found ---- */

struct points {
	uint64_t ino;
	bool found;
};

static int entry_points(void *ctx, const uint8_t *k, size_t klen,
			const uint8_t *v, size_t vlen)
{
	struct points *p = ctx;

	(void)k;
	(void)klen;
	if (vlen == 20 && fs_rd64(v + 8) == p->ino)
		p->found = true;
	return 0;
}

/* /lost+found, created (mode 0700, owned by root) when missing. */
static int lost_found(struct fs_apply *a, struct fs_inode *root,
		      struct fs_inode *lf)
{
	struct fs_dentry de;
	int rc = fs_dentry_load(a, FS_ROOT_INO, LOST_FOUND,
				strlen(LOST_FOUND), &de);

	if (rc == 0)
		return fs_dir_load(a, de.ino, lf) == 0 ? 0 : EEXIST;
	if (rc != ENOENT)
		return rc;
	memset(lf, 0, sizeof(*lf));
	lf->ino = a->sb.next_ino++;
	lf->mode = S_IFDIR | 0700;
	lf->nlink = 2;
	lf->generation = a->index;
	lf->atime = lf->mtime = lf->ctime = a->now;
	lf->parent = FS_ROOT_INO;
	lf->next_seq = 3;
	a->sb.used_inodes++;
	root->nlink++;
	root->mtime = root->ctime = a->now;
	rc = fs_dentry_add(a, root, LOST_FOUND, strlen(LOST_FOUND), lf->ino,
			   S_IFDIR);
	return rc ? rc : fs_inode_store(a, root);
}

static int repair_lost_found(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in, root, lf;
	struct fs_dentry de;
	struct fs_key k, lo, hi;
	char name[32];
	int rc = fs_inode_load(a, c->ino, &in);

	if (rc != 0)
		return rc == ENOENT ? ESTALE : rc;
	/* Any link, unlink or rename since the check changed these. */
	if (in.nlink != c->length || in.ctime.sec != c->mtime.sec ||
	    in.ctime.nsec != c->mtime.nsec)
		return ESTALE;
	fs_key1(&k, FS_KEY_ORPHAN, in.ino);
	if ((rc = exists(a, &k)) != 0)
		return rc == 1 ? ESTALE : rc;
	if (S_ISDIR(in.mode)) {
		/* Its parent holds no entry for it (or is gone). */
		struct points p = {in.ino, false};
		fs_key1(&lo, FS_KEY_DENTRY, in.parent);
		fs_key1(&hi, FS_KEY_DENTRY, in.parent + 1);
		if ((rc = walk(a, &lo, &hi, entry_points, &p)) != 0)
			return rc;
		if (p.found)
			return ESTALE;
	}
	if ((rc = fs_dir_load(a, FS_ROOT_INO, &root)) != 0)
		return rc == ENOENT ? EINVAL : rc;
	if ((rc = lost_found(a, &root, &lf)) != 0)
		return rc;
	if (lf.ino == in.ino)
		return EINVAL;
	snprintf(name, sizeof(name), "#%" PRIu64, in.ino);
	rc = fs_dentry_load(a, lf.ino, name, strlen(name), &de);
	if (rc == 0)
		return EEXIST;
	if (rc != ENOENT)
		return rc;
	if (S_ISDIR(in.mode)) {
		in.parent = lf.ino;
		lf.nlink++;
	} else {
		in.nlink = 1; /* no entry pointed at it */
	}
	in.ctime = a->now;
	lf.mtime = lf.ctime = a->now;
	rc = fs_dentry_add(a, &lf, name, strlen(name), in.ino,
			   in.mode & S_IFMT);
	if (rc == 0)
		rc = fs_inode_store(a, &lf);
	if (rc == 0)
		rc = fs_inode_store(a, &in);
	if (rc == 0) {
		a->res->ino = in.ino;
		fs_inode_attr(&in, a->sb.block_size, &a->res->attr);
	}
	return rc;
}

/* ---- link counts ---- */

struct recount {
	uint64_t entries;
	uint64_t subdirs;
	uint64_t max_seq;
};

static int count_entry(void *ctx, const uint8_t *k, size_t klen,
		       const uint8_t *v, size_t vlen)
{
	struct recount *r = ctx;

	(void)k;
	(void)klen;
	if (vlen != 20)
		return 0;
	r->entries++;
	if (((uint32_t)v[16] << 24 | (uint32_t)v[17] << 16 |
	     (uint32_t)v[18] << 8 | v[19]) == S_IFDIR)
		r->subdirs++;
	return 0;
}

static int max_cookie(void *ctx, const uint8_t *k, size_t klen,
		      const uint8_t *v, size_t vlen)
{
	struct recount *r = ctx;

	(void)v;
	(void)vlen;
	if (klen == 17 && fs_rd64(k + 9) > r->max_seq)
		r->max_seq = fs_rd64(k + 9);
	return 0;
}

static int repair_links(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	int rc = fs_inode_load(a, c->ino, &in);

	if (rc != 0)
		return rc == ENOENT ? ESTALE : rc;
	if (S_ISDIR(in.mode)) {
		struct recount r = {0, 0, 0};
		struct fs_key lo, hi;
		fs_key1(&lo, FS_KEY_DENTRY, in.ino);
		fs_key1(&hi, FS_KEY_DENTRY, in.ino + 1);
		rc = walk(a, &lo, &hi, count_entry, &r);
		fs_key1(&lo, FS_KEY_COOKIE, in.ino);
		fs_key1(&hi, FS_KEY_COOKIE, in.ino + 1);
		if (rc == 0)
			rc = walk(a, &lo, &hi, max_cookie, &r);
		if (rc != 0)
			return rc;
		if (r.subdirs + 2 > FS_LINK_MAX)
			return EMLINK;
		in.nlink = (uint32_t)(r.subdirs + 2);
		in.entries = r.entries;
		if (in.next_seq <= r.max_seq)
			in.next_seq = r.max_seq + 1;
		if (in.next_seq < 3)
			in.next_seq = 3;
		return fs_inode_store(a, &in);
	}
	if (in.nlink != c->length)
		return ESTALE;
	if (c->size == 0 || c->size > FS_LINK_MAX)
		return EINVAL; /* no entry: /lost+found's job, not this */
	in.nlink = (uint32_t)c->size;
	return fs_inode_store(a, &in);
}

/* ---- superblock counters ---- */

struct counters {
	uint64_t inodes;
	uint64_t max_ino;
	uint64_t bytes;
};

static int count_inode(void *ctx, const uint8_t *k, size_t klen,
		       const uint8_t *v, size_t vlen)
{
	struct counters *n = ctx;

	(void)v;
	(void)vlen;
	if (klen == 9) {
		n->inodes++;
		if (fs_rd64(k + 1) > n->max_ino)
			n->max_ino = fs_rd64(k + 1);
	}
	return 0;
}

static int repair_counters(struct fs_apply *a)
{
	struct counters n = {0, 0, 0};
	struct fs_key lo = {{FS_KEY_INODE}, 1}, hi = {{FS_KEY_INODE + 1}, 1};
	int rc = walk(a, &lo, &hi, count_inode, &n);

	lo = (struct fs_key){{FS_KEY_BLOCK}, 1};
	hi = (struct fs_key){{FS_KEY_BLOCK + 1}, 1};
	if (rc == 0)
		rc = walk(a, &lo, &hi, sum_len, &n.bytes);
	if (rc != 0)
		return rc;
	if (a->sb.used_inodes == n.inodes && a->sb.used_bytes == n.bytes &&
	    a->sb.next_ino > n.max_ino)
		return ESTALE;
	a->sb.used_inodes = n.inodes;
	a->sb.used_bytes = n.bytes;
	if (a->sb.next_ino <= n.max_ino)
		a->sb.next_ino = n.max_ino + 1;
	return 0;
}

int fs_apply_repair(struct fs_apply *a)
{
	switch (a->c->op) {
	case FS_OP_REPAIR_ENTRY:
		return repair_entry(a);
	case FS_OP_REPAIR_FREE:
		return repair_free(a);
	case FS_OP_REPAIR_DATA:
		return repair_data(a);
	case FS_OP_REPAIR_LOST_FOUND:
		return repair_lost_found(a);
	case FS_OP_REPAIR_LINKS:
		return repair_links(a);
	case FS_OP_REPAIR_COUNTERS:
		return repair_counters(a);
	}
	return -EBADMSG;
}
