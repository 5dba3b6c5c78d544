/*
 * The state hash: SHA-256 over every replicated key of the store, and a
 * Merkle-style hash per subtree so that a mismatch between replicas can be
 * narrowed down to paths (compare the subtree hashes of a directory's
 * entries, descend into the ones that differ).
 */

#include "fs/sha256.h"
#include "fs/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void put_len(struct fs_sha256 *c, size_t len)
{
	uint8_t b[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
			(uint8_t)(len >> 8), (uint8_t)len};

	fs_sha256_update(c, b, 4);
}

static void put_kv(struct fs_sha256 *c, const uint8_t *k, size_t klen,
		   const uint8_t *v, size_t vlen)
{
	put_len(c, klen);
	fs_sha256_update(c, k, klen);
	put_len(c, vlen);
	fs_sha256_update(c, v, vlen);
}

int fs_store_hash(struct fs_store *s, uint8_t out[FS_HASH_BYTES])
{
	struct fs_kv_iter *it = NULL;
	struct fs_sha256 c;
	int rc;

	fs_sha256_init(&c);
	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	if (rc == 0) {
		for (fs_kv_iter_first(it); fs_kv_iter_valid(it);
		     fs_kv_iter_next(it)) {
			size_t klen, vlen;
			const uint8_t *k = fs_kv_iter_key(it, &klen);
			const uint8_t *v = fs_kv_iter_value(it, &vlen);
			put_kv(&c, k, klen, v, vlen);
		}
		rc = fs_kv_iter_status(it);
	}
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	fs_sha256_final(&c, out);
	return rc;
}

/* Hash every key under prefix (prefix byte + ino) into c. */
static int hash_range(struct fs_store *s, struct fs_sha256 *c, uint8_t prefix,
		      uint64_t ino)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key lo;
	int rc = fs_kv_iter_new(s->kv, NULL, &it);

	if (rc != 0)
		return rc;
	fs_key1(&lo, prefix, ino);
	for (fs_kv_iter_seek(it, lo.b, lo.len); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		if (klen < 9 || memcmp(k, lo.b, 9) != 0)
			break;
		put_kv(c, k, klen, v, vlen);
	}
	rc = fs_kv_iter_status(it);
	fs_kv_iter_free(it);
	return rc;
}

static int subtree(struct fs_store *s, uint64_t ino, unsigned depth,
		   uint8_t out[FS_HASH_BYTES]);

/* The entries of a directory by cookie, each with its child's hash. */
static int hash_entries(struct fs_store *s, struct fs_sha256 *c, uint64_t ino,
			unsigned depth)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key lo;
	int rc = fs_kv_iter_new(s->kv, NULL, &it);

	if (rc != 0)
		return rc;
	fs_key1(&lo, FS_KEY_COOKIE, ino);
	for (fs_kv_iter_seek(it, lo.b, lo.len); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		uint8_t child[FS_HASH_BYTES];
		if (klen < 9 || memcmp(k, lo.b, 9) != 0)
			break;
		if (vlen < 12)
			rc = -EIO;
		else
			put_kv(c, k, klen, v, vlen);
		if (rc == 0)
			rc = subtree(s, fs_rd64(v), depth + 1, child);
		if (rc == 0)
			fs_sha256_update(c, child, sizeof(child));
	}
	if (rc == 0)
		rc = fs_kv_iter_status(it);
	fs_kv_iter_free(it);
	return rc;
}

static int subtree(struct fs_store *s, uint64_t ino, unsigned depth,
		   uint8_t out[FS_HASH_BYTES])
{
	struct fs_sha256 c;
	struct fs_inode in;
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	/* Deeper than any path the kernel can name: a cycle in a damaged
	 * store, reported rather than recursed into. */
	if (depth > 4096)
		return -EIO;
	fs_key1(&k, FS_KEY_INODE, ino);
	rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
	if (rc != 0)
		return rc == -ENOENT && depth > 0 ? -EIO : rc;
	rc = fs_inode_decode(val, len, &in);
	fs_sha256_init(&c);
	if (rc == 0)
		put_kv(&c, k.b, k.len, val, len);
	fs_kv_free(val);
	if (rc != 0)
		return -EIO;
	rc = hash_range(s, &c, FS_KEY_XATTR, ino);
	if (rc == 0 && S_ISREG(in.mode))
		rc = hash_range(s, &c, FS_KEY_BLOCK, ino);
	if (rc == 0 && S_ISLNK(in.mode))
		rc = hash_range(s, &c, FS_KEY_SYMLINK, ino);
	if (rc == 0 && in.nlink == 0)
		rc = hash_range(s, &c, FS_KEY_ORPHAN, ino);
	if (rc == 0 && S_ISDIR(in.mode))
		rc = hash_entries(s, &c, ino, depth);
	fs_sha256_final(&c, out);
	return rc;
}

int fs_store_subtree_hash(struct fs_store *s, uint64_t ino,
			  uint8_t out[FS_HASH_BYTES])
{
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = subtree(s, ino, 0, out);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}
