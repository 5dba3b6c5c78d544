/* LevelDB behind the small interface of fs/store_kv.h. */

#include "fs/store_kv.h"

#include <errno.h>
#include <stdlib.h>

#include <leveldb/c.h>

struct fs_kv {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
	leveldb_writeoptions_t *wopts_sync;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *filter;
};

struct fs_kv_view {
	const leveldb_snapshot_t *snap;
};

struct fs_kv_iter {
	leveldb_iterator_t *it;
	leveldb_readoptions_t *ropts;
};

struct fs_kv_batch {
	leveldb_writebatch_t *wb;
};

void fs_kv_close(struct fs_kv *kv)
{
	if (kv == NULL)
		return;
	if (kv->db != NULL)
		leveldb_close(kv->db);
	if (kv->opts != NULL)
		leveldb_options_destroy(kv->opts);
	if (kv->cache != NULL)
		leveldb_cache_destroy(kv->cache);
	if (kv->filter != NULL)
		leveldb_filterpolicy_destroy(kv->filter);
	if (kv->ropts != NULL)
		leveldb_readoptions_destroy(kv->ropts);
	if (kv->wopts != NULL)
		leveldb_writeoptions_destroy(kv->wopts);
	if (kv->wopts_sync != NULL)
		leveldb_writeoptions_destroy(kv->wopts_sync);
	free(kv);
}

int fs_kv_open(const char *path, bool create, struct fs_kv **out)
{
	struct fs_kv *kv = calloc(1, sizeof(*kv));
	char *err = NULL;

	if (kv == NULL)
		return -ENOMEM;
	kv->opts = leveldb_options_create();
	kv->ropts = leveldb_readoptions_create();
	kv->wopts = leveldb_writeoptions_create();
	kv->wopts_sync = leveldb_writeoptions_create();
	kv->cache = leveldb_cache_create_lru(32u << 20);
	kv->filter = leveldb_filterpolicy_create_bloom(10);
	if (kv->opts == NULL || kv->ropts == NULL || kv->wopts == NULL ||
	    kv->wopts_sync == NULL || kv->cache == NULL || kv->filter == NULL) {
		fs_kv_close(kv);
		return -ENOMEM;
	}
	leveldb_options_set_create_if_missing(kv->opts, create);
	leveldb_options_set_error_if_exists(kv->opts, create);
	leveldb_options_set_paranoid_checks(kv->opts, 1);
	leveldb_options_set_cache(kv->opts, kv->cache);
	/* 32 MiB: half as many level-0 tables and compactions under bulk
	 * writes as 16 MiB (docs/BENCHMARKS.md, "Bulk data path"); 64 MiB
	 * was faster still but took a node to 246 MB of anonymous memory
	 * during a 1 GiB write (twice the buffer while one is flushed). */
	leveldb_options_set_write_buffer_size(kv->opts, 32u << 20);
	/* Bulk data (docs/BENCHMARKS.md, "Bulk data path"): a miss (a
	 * block past the end of a file, a new name) is answered by a bloom
	 * filter instead of a read of every overlapping table, and tables
	 * of 32 MiB instead of 2 MiB keep a store of gigabytes to a few
	 * dozen files. Neither changes what is stored: a table without a
	 * filter block (an older build's) reads as before. */
	leveldb_options_set_filter_policy(kv->opts, kv->filter);
	leveldb_options_set_max_file_size(kv->opts, 32u << 20);
	/* Blocks are already dense data; leave them uncompressed. */
	leveldb_options_set_compression(kv->opts, leveldb_no_compression);
	leveldb_readoptions_set_verify_checksums(kv->ropts, 1);
	leveldb_writeoptions_set_sync(kv->wopts, 0);
	leveldb_writeoptions_set_sync(kv->wopts_sync, 1);
	kv->db = leveldb_open(kv->opts, path, &err);
	if (kv->db == NULL) {
		leveldb_free(err);
		fs_kv_close(kv);
		return -EIO;
	}
	*out = kv;
	return 0;
}

int fs_kv_destroy(const char *path)
{
	leveldb_options_t *opts = leveldb_options_create();
	char *err = NULL;

	if (opts == NULL)
		return -ENOMEM;
	leveldb_destroy_db(opts, path, &err);
	leveldb_options_destroy(opts);
	if (err != NULL) {
		leveldb_free(err);
		return -EIO;
	}
	return 0;
}

int fs_kv_get(struct fs_kv *kv, const struct fs_kv_view *view,
	      const void *key, size_t klen, void **val, size_t *len)
{
	leveldb_readoptions_t *ropts = kv->ropts;
	char *err = NULL;
	char *v;

	if (view != NULL) {
		ropts = leveldb_readoptions_create();
		if (ropts == NULL)
			return -ENOMEM;
		leveldb_readoptions_set_verify_checksums(ropts, 1);
		leveldb_readoptions_set_snapshot(ropts, view->snap);
	}
	v = leveldb_get(kv->db, ropts, key, klen, len, &err);
	if (view != NULL)
		leveldb_readoptions_destroy(ropts);
	if (err != NULL) {
		leveldb_free(err);
		return -EIO;
	}
	if (v == NULL)
		return -ENOENT;
	*val = v;
	return 0;
}

void fs_kv_free(void *p)
{
	if (p != NULL)
		leveldb_free(p);
}

int fs_kv_view_new(struct fs_kv *kv, struct fs_kv_view **out)
{
	struct fs_kv_view *v = malloc(sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	v->snap = leveldb_create_snapshot(kv->db);
	*out = v;
	return 0;
}

void fs_kv_view_free(struct fs_kv *kv, struct fs_kv_view *view)
{
	if (view == NULL)
		return;
	leveldb_release_snapshot(kv->db, view->snap);
	free(view);
}

int fs_kv_iter_new(struct fs_kv *kv, const struct fs_kv_view *view,
		   struct fs_kv_iter **out)
{
	struct fs_kv_iter *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -ENOMEM;
	it->ropts = leveldb_readoptions_create();
	if (it->ropts == NULL) {
		free(it);
		return -ENOMEM;
	}
	leveldb_readoptions_set_verify_checksums(it->ropts, 1);
	if (view != NULL)
		leveldb_readoptions_set_snapshot(it->ropts, view->snap);
	it->it = leveldb_create_iterator(kv->db, it->ropts);
	*out = it;
	return 0;
}

void fs_kv_iter_free(struct fs_kv_iter *it)
{
	if (it == NULL)
		return;
	leveldb_iter_destroy(it->it);
	leveldb_readoptions_destroy(it->ropts);
	free(it);
}

void fs_kv_iter_seek(struct fs_kv_iter *it, const void *key, size_t klen)
{
	leveldb_iter_seek(it->it, key, klen);
}

void fs_kv_iter_first(struct fs_kv_iter *it)
{
	leveldb_iter_seek_to_first(it->it);
}

bool fs_kv_iter_valid(const struct fs_kv_iter *it)
{
	return leveldb_iter_valid(it->it) != 0;
}

void fs_kv_iter_next(struct fs_kv_iter *it)
{
	leveldb_iter_next(it->it);
}

const uint8_t *fs_kv_iter_key(const struct fs_kv_iter *it, size_t *len)
{
	return (const uint8_t *)leveldb_iter_key(it->it, len);
}

const uint8_t *fs_kv_iter_value(const struct fs_kv_iter *it, size_t *len)
{
	return (const uint8_t *)leveldb_iter_value(it->it, len);
}

int fs_kv_iter_status(const struct fs_kv_iter *it)
{
	char *err = NULL;

	leveldb_iter_get_error(it->it, &err);
	if (err != NULL) {
		leveldb_free(err);
		return -EIO;
	}
	return 0;
}

int fs_kv_batch_new(struct fs_kv_batch **out)
{
	struct fs_kv_batch *b = malloc(sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	b->wb = leveldb_writebatch_create();
	if (b->wb == NULL) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void fs_kv_batch_free(struct fs_kv_batch *b)
{
	if (b == NULL)
		return;
	leveldb_writebatch_destroy(b->wb);
	free(b);
}

void fs_kv_batch_put(struct fs_kv_batch *b, const void *key, size_t klen,
		     const void *val, size_t len)
{
	leveldb_writebatch_put(b->wb, key, klen, val, len);
}

void fs_kv_batch_delete(struct fs_kv_batch *b, const void *key, size_t klen)
{
	leveldb_writebatch_delete(b->wb, key, klen);
}

void fs_kv_batch_clear(struct fs_kv_batch *b)
{
	leveldb_writebatch_clear(b->wb);
}

int fs_kv_write(struct fs_kv *kv, struct fs_kv_batch *b, bool sync)
{
	char *err = NULL;

	leveldb_write(kv->db, sync ? kv->wopts_sync : kv->wopts, b->wb, &err);
	if (err != NULL) {
		leveldb_free(err);
		return -EIO;
	}
	return 0;
}
