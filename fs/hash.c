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

/* Where the hash reads: the store now (view NULL, under its read lock) or
 * a consistent view of it (a check point). */
struct source {
	struct fs_kv *kv;
	const struct fs_kv_view *view;
};

/* Every key and value in key order. */
static int hash_all(const struct source *s, uint8_t out[FS_HASH_BYTES])
{
	struct fs_kv_iter *it = NULL;
	struct fs_sha256 c;
	int rc;

	fs_sha256_init(&c);
	rc = fs_kv_iter_new(s->kv, s->view, &it);
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
	fs_sha256_final(&c, out);
	return rc;
}

int fs_store_hash(struct fs_store *s, uint8_t out[FS_HASH_BYTES])
{
	struct source src = {s->kv, NULL};
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = hash_all(&src, out);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* Hash every key under prefix (prefix byte + ino) into c. */
static int hash_range(const struct source *s, struct fs_sha256 *c,
		      uint8_t prefix, uint64_t ino)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key lo;
	int rc = fs_kv_iter_new(s->kv, s->view, &it);

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

static int subtree(const struct source *s, uint64_t ino, unsigned depth,
		   uint8_t out[FS_HASH_BYTES]);

/* Called for each entry of a directory with its child's subtree hash;
 * non-zero stops the walk and is returned. */
typedef int (*entry_fn)(void *ctx, const uint8_t *value, size_t len,
			const uint8_t hash[FS_HASH_BYTES]);

/* The entries of a directory by cookie, each with its child's hash (into
 * c when c is not NULL; to fn when fn is not NULL). */
static int walk_entries(const struct source *s, struct fs_sha256 *c,
			uint64_t ino, unsigned depth, entry_fn fn, void *ctx)
{
	struct fs_kv_iter *it = NULL;
	struct fs_key lo;
	int rc = fs_kv_iter_new(s->kv, s->view, &it);

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
		else if (c != NULL)
			put_kv(c, k, klen, v, vlen);
		if (rc == 0)
			rc = subtree(s, fs_rd64(v), depth + 1, child);
		if (rc == 0 && c != NULL)
			fs_sha256_update(c, child, sizeof(child));
		if (rc == 0 && fn != NULL)
			rc = fn(ctx, v, vlen, child);
	}
	if (rc == 0)
		rc = fs_kv_iter_status(it);
	fs_kv_iter_free(it);
	return rc;
}

/* The inode's own keys: inode, xattrs, data or target, orphan record. */
static int node_hash(const struct source *s, uint64_t ino, unsigned depth,
		     struct fs_sha256 *c, struct fs_inode *in)
{
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	fs_key1(&k, FS_KEY_INODE, ino);
	rc = fs_kv_get(s->kv, s->view, k.b, k.len, &val, &len);
	if (rc != 0)
		return rc == -ENOENT && depth > 0 ? -EIO : rc;
	rc = fs_inode_decode(val, len, in);
	if (rc == 0)
		put_kv(c, k.b, k.len, val, len);
	fs_kv_free(val);
	if (rc != 0)
		return -EIO;
	rc = hash_range(s, c, FS_KEY_XATTR, ino);
	if (rc == 0 && S_ISREG(in->mode))
		rc = hash_range(s, c, FS_KEY_BLOCK, ino);
	if (rc == 0 && S_ISLNK(in->mode))
		rc = hash_range(s, c, FS_KEY_SYMLINK, ino);
	if (rc == 0 && in->nlink == 0)
		rc = hash_range(s, c, FS_KEY_ORPHAN, ino);
	return rc;
}

static int subtree(const struct source *s, uint64_t ino, unsigned depth,
		   uint8_t out[FS_HASH_BYTES])
{
	struct fs_sha256 c;
	struct fs_inode in;
	int rc;

	/* Deeper than any path the kernel can name: a cycle in a damaged
	 * store, reported rather than recursed into. */
	if (depth > 4096)
		return -EIO;
	fs_sha256_init(&c);
	rc = node_hash(s, ino, depth, &c, &in);
	if (rc == 0 && S_ISDIR(in.mode))
		rc = walk_entries(s, &c, ino, depth, NULL, NULL);
	fs_sha256_final(&c, out);
	return rc;
}

int fs_store_subtree_hash(struct fs_store *s, uint64_t ino,
			  uint8_t out[FS_HASH_BYTES])
{
	int rc;

	struct source src = {s->kv, NULL};

	pthread_rwlock_rdlock(&s->lock);
	rc = subtree(&src, ino, 0, out);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Check points (fs/fs.h): the same hashes over a view taken at an index.  */

enum { HASH_NONE, HASH_RUNNING, HASH_DONE };

struct fs_check_view {
	struct fs_store *store;
	struct fs_kv_view *view;
	uint64_t index;
	/* The hash of every key, computed once (fs_check_view_hash_peek). */
	pthread_mutex_t mu;
	int hash_state;
	int hash_rc;
	uint8_t hash[FS_HASH_BYTES];
};

int fs_check_view_open(struct fs_store *s, struct fs_check_view **out)
{
	struct fs_check_view *v = calloc(1, sizeof(*v));
	int rc;

	*out = NULL;
	if (v == NULL)
		return -ENOMEM;
	v->store = s;
	pthread_mutex_init(&v->mu, NULL);
	/* Under the read lock: the view and the index belong together. */
	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_view_new(s->kv, &v->view);
	v->index = s->sb.applied_index;
	pthread_rwlock_unlock(&s->lock);
	if (rc != 0) {
		pthread_mutex_destroy(&v->mu);
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void fs_check_view_kv(struct fs_check_view *v, struct fs_kv **kv,
		      const struct fs_kv_view **view)
{
	*kv = v->store->kv;
	*view = v->view;
}

uint64_t fs_check_view_index(const struct fs_check_view *v)
{
	return v->index;
}

int fs_check_view_hash(struct fs_check_view *v, uint8_t out[FS_HASH_BYTES])
{
	struct source src = {v->store->kv, v->view};

	return hash_all(&src, out);
}

int fs_check_view_hash_peek(struct fs_check_view *v,
			    uint8_t out[FS_HASH_BYTES], bool *claim)
{
	int rc;

	*claim = false;
	pthread_mutex_lock(&v->mu);
	if (v->hash_state == HASH_DONE) {
		rc = v->hash_rc;
		memcpy(out, v->hash, FS_HASH_BYTES);
	} else {
		rc = -EINPROGRESS;
		if (v->hash_state == HASH_NONE) {
			v->hash_state = HASH_RUNNING;
			*claim = true;
		}
	}
	pthread_mutex_unlock(&v->mu);
	return rc;
}

void fs_check_view_hash_fill(struct fs_check_view *v)
{
	uint8_t h[FS_HASH_BYTES];
	int rc = fs_check_view_hash(v, h);

	pthread_mutex_lock(&v->mu);
	v->hash_rc = rc;
	memcpy(v->hash, h, sizeof(h));
	v->hash_state = HASH_DONE;
	pthread_mutex_unlock(&v->mu);
}

int fs_check_view_node_hash(struct fs_check_view *v, uint64_t ino,
			    uint8_t out[FS_HASH_BYTES], uint32_t *mode)
{
	struct source src = {v->store->kv, v->view};
	struct fs_sha256 c;
	struct fs_inode in;
	int rc;

	fs_sha256_init(&c);
	rc = node_hash(&src, ino, 0, &c, &in);
	fs_sha256_final(&c, out);
	if (rc == 0 && mode != NULL)
		*mode = in.mode;
	return rc;
}

struct entries_ctx {
	fs_check_entry_fn fn;
	void *ctx;
};

static int entry_cb(void *ctx, const uint8_t *value, size_t len,
		    const uint8_t hash[FS_HASH_BYTES])
{
	struct entries_ctx *e = ctx;

	/* The value: ino u64, type u32, name bytes (docs/FS_STORE.md). */
	return e->fn(e->ctx, (const char *)value + 12, len - 12,
		     fs_rd64(value), hash);
}

int fs_check_view_entries(struct fs_check_view *v, uint64_t ino,
			  fs_check_entry_fn fn, void *ctx)
{
	struct source src = {v->store->kv, v->view};
	struct entries_ctx e = {fn, ctx};

	return walk_entries(&src, NULL, ino, 0, entry_cb, &e);
}

void fs_check_view_close(struct fs_check_view *v)
{
	if (v == NULL)
		return;
	fs_kv_view_free(v->store->kv, v->view);
	pthread_mutex_destroy(&v->mu);
	free(v);
}
