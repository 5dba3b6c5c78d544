/*
 * Reads for the front end, from the local store. Each read holds the
 * store's lock shared, so it sees the state between two applied commands.
 * No read changes the store: atime is never updated by reads (no log write
 * for a read; see docs/FS_STORE.md).
 */

#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */

#include "fs/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int get_inode(struct fs_store *s, uint64_t ino, struct fs_inode *in)
{
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	if (ino == 0)
		return -ENOENT;
	fs_key1(&k, FS_KEY_INODE, ino);
	rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
	if (rc != 0)
		return rc;
	rc = fs_inode_decode(val, len, in);
	fs_kv_free(val);
	if (rc == 0 && in->ino != ino)
		rc = -EUCLEAN;
	return rc == -EUCLEAN ? -EIO : rc;
}

int fs_getattr(struct fs_store *s, uint64_t ino, struct fs_attr *attr)
{
	struct fs_inode in;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc == 0)
		fs_inode_attr(&in, s->sb.block_size, attr);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_lookup(struct fs_store *s, uint64_t parent, const char *name,
	      size_t name_len, struct fs_attr *attr)
{
	struct fs_inode dir, in;
	struct fs_key k;
	void *val = NULL;
	size_t len;
	uint64_t ino;
	int rc;

	if (name_len == 0 || name_len > FS_NAME_CODEC_MAX)
		return name_len == 0 ? -ENOENT : -ENAMETOOLONG;
	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, parent, &dir);
	if (rc != 0)
		goto out;
	if (!S_ISDIR(dir.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (name_len == 1 && name[0] == '.') {
		ino = dir.ino;
	} else if (name_len == 2 && name[0] == '.' && name[1] == '.') {
		ino = dir.parent;
	} else {
		fs_key_name(&k, FS_KEY_DENTRY, parent, name, name_len);
		rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
		if (rc != 0)
			goto out;
		ino = len == 20 ? fs_rd64((uint8_t *)val + 8) : 0;
		fs_kv_free(val);
	}
	rc = get_inode(s, ino, &in);
	if (rc == -ENOENT)
		rc = -EIO; /* an entry without its inode */
	if (rc == 0)
		fs_inode_attr(&in, s->sb.block_size, attr);
out:
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_readdir(struct fs_store *s, uint64_t ino, uint64_t cookie,
	       int (*fn)(void *ctx, const struct fs_dirent *e), void *ctx)
{
	struct fs_kv_iter *it = NULL;
	struct fs_inode dir;
	struct fs_dirent e;
	struct fs_key lo;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &dir);
	if (rc != 0)
		goto out;
	if (!S_ISDIR(dir.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	e.type = S_IFDIR;
	if (cookie < 1) {
		e = (struct fs_dirent){1, dir.ino, S_IFDIR, ".", 1};
		if ((rc = fn(ctx, &e)) != 0)
			goto out;
	}
	if (cookie < 2) {
		e = (struct fs_dirent){2, dir.parent, S_IFDIR, "..", 2};
		if ((rc = fn(ctx, &e)) != 0)
			goto out;
	}
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc != 0)
		goto out;
	fs_key2(&lo, FS_KEY_COOKIE, ino, cookie < 2 ? 3 : cookie + 1);
	for (fs_kv_iter_seek(it, lo.b, lo.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		if (klen != 17 || k[0] != FS_KEY_COOKIE ||
		    fs_rd64(k + 1) != ino)
			break;
		if (vlen < 13) {
			rc = -EIO;
			goto out;
		}
		e.cookie = fs_rd64(k + 9);
		e.ino = fs_rd64(v);
		e.type = (uint32_t)v[8] << 24 | (uint32_t)v[9] << 16 |
			 (uint32_t)v[10] << 8 | v[11];
		e.name = (const char *)v + 12;
		e.name_len = vlen - 12;
		if ((rc = fn(ctx, &e)) != 0)
			goto out;
	}
	rc = fs_kv_iter_status(it);
out:
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_read(struct fs_store *s, uint64_t ino, uint64_t offset, size_t len,
	    void *buf, size_t *n)
{
	struct fs_kv_iter *it = NULL;
	struct fs_inode in;
	struct fs_key lo;
	uint64_t bs, end;
	int rc;

	*n = 0;
	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc != 0)
		goto out;
	if (S_ISDIR(in.mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (!S_ISREG(in.mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (offset >= in.size || len == 0)
		goto out;
	end = in.size - offset < len ? in.size : offset + len;
	memset(buf, 0, (size_t)(end - offset));
	bs = s->sb.block_size;
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc != 0)
		goto out;
	fs_key2(&lo, FS_KEY_BLOCK, ino, offset / bs);
	for (fs_kv_iter_seek(it, lo.b, lo.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		uint64_t base, s0, e0;
		if (klen != 17 || k[0] != FS_KEY_BLOCK || fs_rd64(k + 1) != ino)
			break;
		base = fs_rd64(k + 9) * bs;
		if (base >= end)
			break;
		if (vlen > bs) {
			rc = -EIO;
			goto out;
		}
		s0 = offset > base ? offset : base;
		e0 = base + vlen < end ? base + vlen : end;
		if (s0 < e0)
			memcpy((uint8_t *)buf + (s0 - offset), v + (s0 - base),
			       (size_t)(e0 - s0));
	}
	rc = fs_kv_iter_status(it);
	if (rc == 0)
		*n = (size_t)(end - offset);
out:
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_lseek(struct fs_store *s, uint64_t ino, uint64_t offset, int whence,
	     uint64_t *out)
{
	struct fs_kv_iter *it = NULL;
	struct fs_inode in;
	struct fs_key lo;
	uint64_t bs, pos = offset;
	int rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc != 0)
		goto out;
	if (offset >= in.size) {
		rc = -ENXIO;
		goto out;
	}
	if (!S_ISREG(in.mode)) {
		*out = whence == SEEK_DATA ? offset : in.size;
		goto out;
	}
	bs = s->sb.block_size;
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc != 0)
		goto out;
	fs_key2(&lo, FS_KEY_BLOCK, ino, offset / bs);
	/* Stored extents [base, base + len) in order: data is where one
	 * covers pos; a hole where none does (the size ends the last). */
	for (fs_kv_iter_seek(it, lo.b, lo.len);; fs_kv_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const uint8_t *k = NULL;
		uint64_t base, ext_end;
		bool more = fs_kv_iter_valid(it);
		if (more) {
			k = fs_kv_iter_key(it, &klen);
			fs_kv_iter_value(it, &vlen);
			more = klen == 17 && k[0] == FS_KEY_BLOCK &&
			       fs_rd64(k + 1) == ino;
		}
		if (!more) {
			if (whence == SEEK_DATA)
				rc = -ENXIO;
			else
				*out = pos;
			break;
		}
		base = fs_rd64(k + 9) * bs;
		ext_end = base + vlen;
		if (ext_end <= pos)
			continue;
		if (base > pos) {
			/* pos is in a hole */
			*out = whence == SEEK_HOLE ? pos : base;
			break;
		}
		if (whence == SEEK_DATA) {
			*out = pos;
			break;
		}
		pos = ext_end; /* data up to here; look for the hole */
	}
	if (rc == 0)
		rc = fs_kv_iter_status(it);
	if (rc == 0 && *out > in.size)
		*out = in.size;
out:
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_readlink(struct fs_store *s, uint64_t ino, char *buf, size_t size,
		size_t *n)
{
	struct fs_inode in;
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc == 0 && !S_ISLNK(in.mode))
		rc = -EINVAL;
	if (rc == 0) {
		fs_key1(&k, FS_KEY_SYMLINK, ino);
		rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
		if (rc == -ENOENT)
			rc = -EIO;
	}
	if (rc == 0) {
		*n = len;
		if (len > size)
			rc = -ERANGE;
		else
			memcpy(buf, val, len);
	}
	fs_kv_free(val);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_getxattr(struct fs_store *s, uint64_t ino, const char *name,
		size_t name_len, void *buf, size_t size, size_t *n)
{
	struct fs_inode in;
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	if (name_len == 0 || name_len > FS_XATTR_NAME_MAX)
		return -ENODATA;
	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc == 0) {
		fs_key_name(&k, FS_KEY_XATTR, ino, name, name_len);
		rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
		if (rc == -ENOENT)
			rc = -ENODATA;
	}
	if (rc == 0 && (len < 1 || ((uint8_t *)val)[0] != 1))
		rc = -EIO;
	if (rc == 0) {
		*n = len - 1;
		if (size > 0 && len - 1 > size)
			rc = -ERANGE;
		else if (size > 0)
			memcpy(buf, (uint8_t *)val + 1, len - 1);
	}
	fs_kv_free(val);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_listxattr(struct fs_store *s, uint64_t ino, char *buf, size_t size,
		 size_t *n)
{
	struct fs_kv_iter *it = NULL;
	struct fs_inode in;
	struct fs_key lo;
	size_t total = 0;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = get_inode(s, ino, &in);
	if (rc == 0)
		rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc != 0)
		goto out;
	fs_key1(&lo, FS_KEY_XATTR, ino);
	for (fs_kv_iter_seek(it, lo.b, lo.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		if (klen <= 9 || k[0] != FS_KEY_XATTR || fs_rd64(k + 1) != ino)
			break;
		if (size > 0 && total + klen - 9 + 1 <= size) {
			memcpy(buf + total, k + 9, klen - 9);
			buf[total + klen - 9] = '\0';
		}
		total += klen - 9 + 1;
	}
	rc = fs_kv_iter_status(it);
	*n = total;
	if (rc == 0 && size > 0 && total > size)
		rc = -ERANGE;
out:
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_statfs(struct fs_store *s, struct fs_statfs *st)
{
	const struct fs_super *sb = &s->sb;

	pthread_rwlock_rdlock(&s->lock);
	memset(st, 0, sizeof(*st));
	st->block_size = sb->block_size;
	if (sb->block_size > 0) {
		st->blocks = sb->capacity_bytes / sb->block_size;
		st->blocks_free = sb->used_bytes >= sb->capacity_bytes ?
					  0 :
					  (sb->capacity_bytes - sb->used_bytes) /
						  sb->block_size;
	}
	st->files = sb->max_inodes;
	st->files_free = sb->max_inodes > sb->used_inodes ?
				 sb->max_inodes - sb->used_inodes :
				 0;
	st->name_max = sb->name_max;
	pthread_rwlock_unlock(&s->lock);
	return sb->formatted ? 0 : -ENODEV;
}

int fs_orphan_holders(struct fs_store *s, uint64_t ino, uint64_t *holders,
		      uint32_t max, uint32_t *n)
{
	struct fs_key k;
	struct fs_rbuf r;
	void *val = NULL;
	size_t len;
	uint32_t cnt;
	int rc;

	*n = 0;
	pthread_rwlock_rdlock(&s->lock);
	fs_key1(&k, FS_KEY_ORPHAN, ino);
	rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
	if (rc == 0) {
		r = (struct fs_rbuf){val, len, 0, false};
		cnt = fs_get_u32(&r);
		for (uint32_t i = 0; i < cnt && !r.bad; i++) {
			uint64_t h = fs_get_u64(&r);
			if (i < max)
				holders[i] = h;
		}
		if (!fs_rbuf_done(&r))
			rc = -EIO;
		else
			*n = cnt;
	}
	fs_kv_free(val);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int fs_orphans_held_by(struct fs_store *s, uint64_t node,
		       int (*fn)(void *ctx, uint64_t ino), void *ctx)
{
	struct fs_kv_iter *it = NULL;
	uint8_t lo = FS_KEY_ORPHAN;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc != 0)
		goto out;
	for (fs_kv_iter_seek(it, &lo, 1); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		bool held = false;
		uint32_t n;
		if (klen == 0 || k[0] != FS_KEY_ORPHAN)
			break;
		if (klen != 9 || vlen < 4) {
			rc = -EIO;
			goto out;
		}
		n = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
		    (uint32_t)v[2] << 8 | v[3];
		if (vlen != 4 + 8 * (size_t)n) {
			rc = -EIO;
			goto out;
		}
		for (uint32_t i = 0; i < n; i++)
			held |= fs_rd64(v + 4 + 8 * i) == node;
		if (held && (rc = fn(ctx, fs_rd64(k + 1))) != 0)
			goto out;
	}
	rc = fs_kv_iter_status(it);
out:
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}
