/* Inodes, directory entries and file blocks as one command changes them. */

#include "fs/apply_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int fs_inode_load(struct fs_apply *a, uint64_t ino, struct fs_inode *in)
{
	struct fs_key k;
	uint8_t *val = NULL;
	size_t len;
	int rc;

	if (ino == 0)
		return ENOENT;
	fs_key1(&k, FS_KEY_INODE, ino);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc == -ENOENT)
		return ENOENT;
	if (rc != 0)
		return rc;
	rc = fs_inode_decode(val, len, in);
	free(val);
	if (rc == 0 && in->ino != ino)
		rc = -EUCLEAN;
	return rc;
}

/* Note that ino's attributes changed (for the store's hook). */
static void changed_inode(struct fs_apply *a, uint64_t ino)
{
	struct fs_store_event *ev = &a->ev;

	for (uint32_t i = 0; i < ev->n_inodes; i++)
		if (ev->inodes[i] == ino)
			return;
	if (ev->n_inodes < FS_CHANGE_INODES_MAX)
		ev->inodes[ev->n_inodes++] = ino;
	else
		ev->all = true;
}

/* Note that the entry (dir, name) changed; removed: the inode it named. */
static void changed_entry(struct fs_apply *a, uint64_t dir, const char *name,
			  size_t len, uint64_t removed)
{
	struct fs_store_event *ev = &a->ev;

	/* One name changed twice (a rename over it: removed, then added):
	 * its last state counts. */
	for (uint32_t i = 0; i < ev->n_entries; i++) {
		struct fs_change_entry *e = &ev->entries[i];
		if (e->dir == dir && e->name_len == len &&
		    memcmp(e->name, name, len) == 0) {
			e->removed = removed;
			return;
		}
	}
	if (ev->n_entries < FS_CHANGE_ENTRIES_MAX)
		ev->entries[ev->n_entries++] = (struct fs_change_entry){
			dir, name, (uint32_t)len, removed};
	else
		ev->all = true;
}

int fs_inode_store(struct fs_apply *a, const struct fs_inode *in)
{
	struct fs_key k;
	uint8_t buf[FS_INODE_BYTES];
	size_t len = fs_inode_encode(in, buf);

	fs_key1(&k, FS_KEY_INODE, in->ino);
	changed_inode(a, in->ino);
	return fs_txn_put(&a->txn, &k, buf, len);
}

int fs_dir_load(struct fs_apply *a, uint64_t ino, struct fs_inode *dir)
{
	int rc = fs_inode_load(a, ino, dir);

	if (rc != 0)
		return rc;
	return S_ISDIR(dir->mode) ? 0 : ENOTDIR;
}

int fs_dentry_load(struct fs_apply *a, uint64_t dir, const char *name,
		   size_t len, struct fs_dentry *de)
{
	struct fs_key k;
	struct fs_rbuf r;
	uint8_t *val = NULL;
	size_t vlen;
	int rc;

	fs_key_name(&k, FS_KEY_DENTRY, dir, name, len);
	rc = fs_txn_get(&a->txn, &k, &val, &vlen);
	if (rc == -ENOENT)
		return ENOENT;
	if (rc != 0)
		return rc;
	r = (struct fs_rbuf){val, vlen, 0, false};
	de->seq = fs_get_u64(&r);
	de->ino = fs_get_u64(&r);
	de->type = fs_get_u32(&r);
	rc = fs_rbuf_done(&r) && de->ino != 0 ? 0 : -EUCLEAN;
	free(val);
	return rc;
}

static int dentry_put(struct fs_apply *a, uint64_t dir, const char *name,
		      size_t len, uint64_t seq, uint64_t ino, uint32_t type)
{
	uint8_t dbuf[20], cbuf[12 + FS_NAME_CODEC_MAX];
	struct fs_wbuf w = {dbuf, sizeof(dbuf), 0, false};
	struct fs_key k;
	int rc;

	fs_put_u64(&w, seq);
	fs_put_u64(&w, ino);
	fs_put_u32(&w, type);
	fs_key_name(&k, FS_KEY_DENTRY, dir, name, len);
	rc = fs_txn_put(&a->txn, &k, dbuf, w.len);
	if (rc != 0)
		return rc;
	w = (struct fs_wbuf){cbuf, sizeof(cbuf), 0, false};
	fs_put_u64(&w, ino);
	fs_put_u32(&w, type);
	fs_put_bytes(&w, name, len);
	fs_key2(&k, FS_KEY_COOKIE, dir, seq);
	return fs_txn_put(&a->txn, &k, cbuf, w.len);
}

int fs_dentry_add(struct fs_apply *a, struct fs_inode *dir, const char *name,
		  size_t len, uint64_t ino, uint32_t type)
{
	uint64_t seq = dir->next_seq++;

	dir->entries++;
	changed_entry(a, dir->ino, name, len, 0);
	return dentry_put(a, dir->ino, name, len, seq, ino, type);
}

int fs_dentry_remove(struct fs_apply *a, struct fs_inode *dir,
		     const char *name, size_t len, const struct fs_dentry *de)
{
	struct fs_key k;
	int rc;

	fs_key_name(&k, FS_KEY_DENTRY, dir->ino, name, len);
	changed_entry(a, dir->ino, name, len, de->ino);
	rc = fs_txn_del(&a->txn, &k);
	if (rc != 0)
		return rc;
	fs_key2(&k, FS_KEY_COOKIE, dir->ino, de->seq);
	dir->entries--;
	return fs_txn_del(&a->txn, &k);
}

int fs_dentry_retarget(struct fs_apply *a, uint64_t dir, const char *name,
		       size_t len, uint64_t seq, uint64_t ino, uint32_t type)
{
	changed_entry(a, dir, name, len, 0);
	return dentry_put(a, dir, name, len, seq, ino, type);
}

int fs_apply_delete_range(struct fs_apply *a, const struct fs_key *lo,
			  const struct fs_key *hi)
{
	struct fs_key *keys = NULL;
	size_t n = 0;
	int rc = fs_txn_keys(&a->txn, lo, hi, &keys, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fs_txn_del(&a->txn, &keys[i]);
	free(keys);
	return rc;
}

int fs_inode_free(struct fs_apply *a, const struct fs_inode *in)
{
	struct fs_key k, hi;
	int rc;

	fs_key1(&k, FS_KEY_INODE, in->ino);
	changed_inode(a, in->ino);
	rc = fs_txn_del(&a->txn, &k);
	if (rc == 0 && S_ISREG(in->mode)) {
		fs_key1(&k, FS_KEY_BLOCK, in->ino);
		fs_key1(&hi, FS_KEY_BLOCK, in->ino + 1);
		rc = fs_apply_delete_range(a, &k, &hi);
	}
	if (rc == 0 && S_ISLNK(in->mode)) {
		fs_key1(&k, FS_KEY_SYMLINK, in->ino);
		rc = fs_txn_del(&a->txn, &k);
	}
	if (rc == 0) {
		fs_key1(&k, FS_KEY_XATTR, in->ino);
		fs_key1(&hi, FS_KEY_XATTR, in->ino + 1);
		rc = fs_apply_delete_range(a, &k, &hi);
	}
	if (rc == 0) {
		fs_key1(&k, FS_KEY_ORPHAN, in->ino);
		rc = fs_txn_del(&a->txn, &k);
	}
	if (rc == 0) {
		/* Locks of a freed inode mean nothing (its holders have
		 * closed it: their locks went with the close). */
		fs_key1(&k, FS_KEY_LOCKS, in->ino);
		rc = fs_txn_del(&a->txn, &k);
	}
	if (rc != 0)
		return rc;
	a->sb.used_inodes--;
	a->sb.used_bytes -= in->alloc_bytes;
	if (S_ISDIR(in->mode)) {
		a->dir_freed = true;
		fs_inode_attr(in, a->sb.block_size, &a->dir_attr);
		a->dir_attr.nlink = 0;
		a->dir_attr.ctime = a->now;
	}
	return 0;
}

int fs_inode_unlink(struct fs_apply *a, struct fs_inode *in)
{
	uint64_t h[FS_HOLDERS_MAX];
	uint8_t buf[4 + 8 * FS_HOLDERS_MAX];
	struct fs_wbuf w = {buf, sizeof(buf), 0, false};
	struct fs_key k;
	uint32_t n = 0;
	int rc;

	in->nlink--;
	in->ctime = a->now;
	if (in->nlink > 0)
		return fs_inode_store(a, in);
	rc = fs_orphan_holders_compute(a, in, h, &n);
	if (rc != 0)
		return rc;
	if (n == 0)
		return fs_inode_free(a, in);
	fs_put_u32(&w, n);
	for (uint32_t i = 0; i < n; i++)
		fs_put_u64(&w, h[i]);
	fs_key1(&k, FS_KEY_ORPHAN, in->ino);
	rc = fs_txn_put(&a->txn, &k, buf, w.len);
	if (rc != 0)
		return rc;
	a->orphaned = in->ino;
	return fs_inode_store(a, in);
}

/* ---------------------------------------------------------------------- */
/* Blocks: block b of inode ino holds the bytes [b * bs, b * bs + len) of  */
/* the file; a missing block, or bytes past len, are a hole (zeros).       */
/* Stored bytes never reach past the file size.                            */

struct block {
	uint64_t no;
	uint8_t *data; /* malloc'd, NULL when missing */
	size_t len;
};

static int block_load(struct fs_apply *a, uint64_t ino, uint64_t no,
		      struct block *b)
{
	struct fs_key k;
	int rc;

	b->no = no;
	b->data = NULL;
	b->len = 0;
	fs_key2(&k, FS_KEY_BLOCK, ino, no);
	rc = fs_txn_get(&a->txn, &k, &b->data, &b->len);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && (b->len == 0 || b->len > a->sb.block_size)) {
		free(b->data);
		b->data = NULL;
		return -EUCLEAN;
	}
	return rc;
}

/* Store (or delete, when len is 0) a block; accounts the size change. */
static int block_store(struct fs_apply *a, struct fs_inode *in, uint64_t no,
		       const uint8_t *data, size_t len, size_t old_len)
{
	struct fs_key k;
	int rc;

	fs_key2(&k, FS_KEY_BLOCK, in->ino, no);
	if (len == 0)
		rc = fs_txn_del(&a->txn, &k);
	else
		rc = fs_txn_put(&a->txn, &k, data, len);
	if (rc != 0)
		return rc;
	in->alloc_bytes = in->alloc_bytes - old_len + len;
	a->sb.used_bytes = a->sb.used_bytes - old_len + len;
	return 0;
}

/* The same with a malloc'd block the txn takes over (len > 0). */
static int block_store_owned(struct fs_apply *a, struct fs_inode *in,
			     uint64_t no, uint8_t *data, size_t len,
			     size_t old_len)
{
	struct fs_key k;
	int rc;

	fs_key2(&k, FS_KEY_BLOCK, in->ino, no);
	rc = fs_txn_put_owned(&a->txn, &k, data, len);
	if (rc != 0)
		return rc;
	in->alloc_bytes = in->alloc_bytes - old_len + len;
	a->sb.used_bytes = a->sb.used_bytes - old_len + len;
	return 0;
}

/* The stored blocks of in numbered [first, last]. */
static int block_keys(struct fs_apply *a, uint64_t ino, uint64_t first,
		      uint64_t last, struct fs_key **keys, size_t *n)
{
	struct fs_key lo, hi;

	fs_key2(&lo, FS_KEY_BLOCK, ino, first);
	if (last == UINT64_MAX)
		fs_key1(&hi, FS_KEY_BLOCK, ino + 1);
	else
		fs_key2(&hi, FS_KEY_BLOCK, ino, last + 1);
	return fs_txn_keys(&a->txn, &lo, &hi, keys, n);
}

int fs_data_truncate(struct fs_apply *a, struct fs_inode *in, uint64_t size)
{
	uint64_t bs = a->sb.block_size;
	struct fs_key *keys = NULL;
	size_t n = 0;
	struct block b = {0, NULL, 0};
	int rc;

	if (size >= in->size)
		return 0;
	rc = block_keys(a, in->ino, size / bs, UINT64_MAX, &keys, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t no = fs_rd64(keys[i].b + 9);
		uint64_t keep = size > no * bs ? size - no * bs : 0;
		rc = block_load(a, in->ino, no, &b);
		if (rc == 0 && b.len > keep)
			rc = block_store(a, in, no, b.data, keep, b.len);
		free(b.data);
		b.data = NULL;
	}
	free(keys);
	return rc;
}

int fs_data_write(struct fs_apply *a, struct fs_inode *in, uint64_t offset,
		  const uint8_t *data, size_t len)
{
	uint64_t bs = a->sb.block_size, end = offset + len;
	uint64_t first = offset / bs, last = (end - 1) / bs;
	size_t nb = (size_t)(last - first + 1);
	struct block *blocks = calloc(nb, sizeof(*blocks));
	uint64_t grow = 0;
	int rc = 0;

	if (blocks == NULL)
		return -ENOMEM;
	for (size_t i = 0; rc == 0 && i < nb; i++) {
		uint64_t no = first + i;
		uint64_t e = (end < (no + 1) * bs ? end : (no + 1) * bs) -
			     no * bs;
		/* Stored bytes never reach past the size: a block starting
		 * at or after it is a hole, no need to look (appends). */
		if (no * bs < in->size)
			rc = block_load(a, in->ino, no, &blocks[i]);
		else
			blocks[i].no = no;
		if (rc == 0 && e > blocks[i].len)
			grow += e - blocks[i].len;
	}
	if (rc != 0)
		goto out;
	if (grow > a->sb.capacity_bytes - a->sb.used_bytes) {
		rc = ENOSPC;
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < nb; i++) {
		uint64_t no = first + i, base = no * bs;
		uint64_t s = offset > base ? offset - base : 0;
		uint64_t e = (end < base + bs ? end : base + bs) - base;
		size_t nlen = blocks[i].len > e ? blocks[i].len : (size_t)e;
		/* Each new block is built in its own buffer, which the txn
		 * keeps: no second copy. */
		uint8_t *buf = malloc(nlen);

		if (buf == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (s > 0 || blocks[i].len > e) {
			memset(buf, 0, nlen);
			if (blocks[i].len > 0)
				memcpy(buf, blocks[i].data, blocks[i].len);
		}
		memcpy(buf + s, data + (base + s - offset), (size_t)(e - s));
		rc = block_store_owned(a, in, no, buf, nlen, blocks[i].len);
	}
	if (rc == 0 && end > in->size)
		in->size = end;
out:
	for (size_t i = 0; i < nb; i++)
		free(blocks[i].data);
	free(blocks);
	return rc;
}

int fs_data_punch(struct fs_apply *a, struct fs_inode *in, uint64_t off,
		  uint64_t end)
{
	uint64_t bs = a->sb.block_size;
	struct fs_key *keys = NULL;
	struct block b = {0, NULL, 0};
	size_t n = 0;
	int rc;

	if (end > in->size)
		end = in->size;
	if (off >= end)
		return 0;
	rc = block_keys(a, in->ino, off / bs, (end - 1) / bs, &keys, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t no = fs_rd64(keys[i].b + 9), base = no * bs;
		uint64_t s = off > base ? off - base : 0;
		uint64_t e = (end < base + bs ? end : base + bs) - base;
		size_t nlen;

		rc = block_load(a, in->ino, no, &b);
		if (rc != 0 || b.data == NULL)
			break;
		if (s < b.len)
			memset(b.data + s, 0,
			       (size_t)((e < b.len ? e : b.len) - s));
		nlen = b.len;
		while (nlen > 0 && b.data[nlen - 1] == 0)
			nlen--;
		if (nlen != b.len || s < b.len)
			rc = block_store(a, in, no, b.data, nlen, b.len);
		free(b.data);
		b.data = NULL;
	}
	free(b.data);
	free(keys);
	return rc;
}

int fs_data_allocate(struct fs_apply *a, struct fs_inode *in, uint64_t off,
		     uint64_t end)
{
	uint64_t bs = a->sb.block_size;
	uint64_t first = off / bs, last = (end - 1) / bs;
	uint64_t need = (last - first) * bs + (end - last * bs);
	struct fs_key *keys = NULL;
	struct block b = {0, NULL, 0};
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc;

	/* Bytes to add: each block of the range must store a prefix up to
	 * the range's end in it; stored bytes already count. */
	rc = block_keys(a, in->ino, first, last, &keys, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint64_t no = fs_rd64(keys[i].b + 9);
		uint64_t e = (end < (no + 1) * bs ? end : (no + 1) * bs) -
			     no * bs;
		rc = block_load(a, in->ino, no, &b);
		if (rc == 0)
			need -= b.len < e ? b.len : e;
		free(b.data);
		b.data = NULL;
	}
	free(keys);
	if (rc != 0)
		return rc;
	if (need > a->sb.capacity_bytes - a->sb.used_bytes)
		return ENOSPC;
	buf = malloc(bs);
	if (buf == NULL)
		return -ENOMEM;
	for (uint64_t no = first; rc == 0 && no <= last; no++) {
		uint64_t e = (end < (no + 1) * bs ? end : (no + 1) * bs) -
			     no * bs;
		rc = block_load(a, in->ino, no, &b);
		if (rc == 0 && b.len < e) {
			memset(buf, 0, (size_t)e);
			if (b.len > 0)
				memcpy(buf, b.data, b.len);
			rc = block_store(a, in, no, buf, (size_t)e, b.len);
		}
		free(b.data);
		b.data = NULL;
	}
	free(buf);
	return rc;
}
