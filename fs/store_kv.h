#ifndef FS_STORE_KV_H
#define FS_STORE_KV_H

/*
 * The only door to LevelDB in fs/ (fs/store_kv.c): open a database, point
 * reads, consistent views, iterators and write batches. Functions return 0
 * or a negative errno (-ENOENT for a missing key, -EIO for a LevelDB error,
 * -ENOMEM). Private to fs/.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_kv;
struct fs_kv_view;
struct fs_kv_iter;
struct fs_kv_batch;

/* Open the database at path; create it when create is true (error if it
 * exists then). */
int fs_kv_open(const char *path, bool create, struct fs_kv **out);
void fs_kv_close(struct fs_kv *kv);
/* Remove a database directory (closed). */
int fs_kv_destroy(const char *path);

/* *val (free with fs_kv_free) and *len of key, as of view (NULL: now). */
int fs_kv_get(struct fs_kv *kv, const struct fs_kv_view *view,
	      const void *key, size_t klen, void **val, size_t *len);
void fs_kv_free(void *p);

/* A consistent read-only view of the database as it is now. */
int fs_kv_view_new(struct fs_kv *kv, struct fs_kv_view **out);
void fs_kv_view_free(struct fs_kv *kv, struct fs_kv_view *view);

int fs_kv_iter_new(struct fs_kv *kv, const struct fs_kv_view *view,
		   struct fs_kv_iter **out);
void fs_kv_iter_free(struct fs_kv_iter *it);
void fs_kv_iter_seek(struct fs_kv_iter *it, const void *key, size_t klen);
void fs_kv_iter_first(struct fs_kv_iter *it);
bool fs_kv_iter_valid(const struct fs_kv_iter *it);
void fs_kv_iter_next(struct fs_kv_iter *it);
const uint8_t *fs_kv_iter_key(const struct fs_kv_iter *it, size_t *len);
const uint8_t *fs_kv_iter_value(const struct fs_kv_iter *it, size_t *len);
/* 0, or -EIO when the iteration stopped on an error. */
int fs_kv_iter_status(const struct fs_kv_iter *it);

int fs_kv_batch_new(struct fs_kv_batch **out);
void fs_kv_batch_free(struct fs_kv_batch *b);
void fs_kv_batch_put(struct fs_kv_batch *b, const void *key, size_t klen,
		     const void *val, size_t len);
void fs_kv_batch_delete(struct fs_kv_batch *b, const void *key, size_t klen);
void fs_kv_batch_clear(struct fs_kv_batch *b);
/* Apply the batch atomically; sync: wait until it is on disk. */
int fs_kv_write(struct fs_kv *kv, struct fs_kv_batch *b, bool sync);

#endif
