#ifndef FS_STORE_H
#define FS_STORE_H

/*
 * The fs store object shared by the files of fs/: its directory, the open
 * database, the cached superblock, and the per-command transaction that
 * apply uses (reads see the command's own earlier writes; everything goes
 * into one WriteBatch). Private to fs/.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/codec.h"
#include "fs/fs.h"
#include "fs/store_kv.h"

struct fs_store {
	char *dir;    /* the store's directory (owned) */
	uint64_t gen; /* the database in use is dir/store-<gen> */
	/* Readers hold it shared; apply and the install switch hold it
	 * exclusive. Protects kv (swapped by an install) and sb. */
	pthread_rwlock_t lock;
	struct fs_kv *kv;
	struct fs_super sb; /* copy of the stored superblock */
	uint32_t test_bugs; /* enum fs_test_bug; apply thread only */
	/* Protects hook and hook_ctx; held while the hook runs (on the
	 * apply thread), so after fs_store_set_hook returns the old hook is
	 * not running. */
	pthread_mutex_t hook_lock;
	void (*hook)(void *ctx, const struct fs_store_event *ev);
	void *hook_ctx;
	/* The lock record keys (K, fs/apply_lock.c) the database holds,
	 * sorted: a cache that spares apply a scan over the K range, which
	 * LevelDB walks version by version (a record rewritten by every lock
	 * command leaves thousands behind until a compaction). Kept by
	 * fs_txn_commit, dropped when the database changes otherwise
	 * (fs_store_switch) and rebuilt by the next fs_txn_lock_keys. Used
	 * under lock held exclusive (apply, the switch). */
	struct fs_key *lock_keys;
	size_t n_lock_keys;
	size_t cap_lock_keys;
	bool lock_keys_valid;
	bool interrupted;   /* open found an unfinished install */
	uint64_t interrupted_index;
	uint64_t interrupted_term;
};

/* Path of dir/store-<gen> into buf; -ENAMETOOLONG when it does not fit. */
/* The database and the LevelDB view a check view reads (fs/hash.c). */
struct fs_check_view;
void fs_check_view_kv(struct fs_check_view *v, struct fs_kv **kv,
		      const struct fs_kv_view **view);

int fs_store_db_path(const struct fs_store *s, uint64_t gen, char *buf,
		     size_t size);
/* Path of dir/<name>. */
int fs_store_file_path(const struct fs_store *s, const char *name, char *buf,
		       size_t size);

/* Make dir/store-<gen> (an open database, complete and synced) the
 * current one: CURRENT is replaced atomically, the old database removed.
 * Takes the lock exclusively. */
int fs_store_switch(struct fs_store *s, uint64_t gen, struct fs_kv *kv);

/* Write the INSTALL marker (synced) / remove it. */
int fs_store_mark_install(struct fs_store *s, uint64_t gen, uint64_t index,
			  uint64_t term);
int fs_store_unmark_install(struct fs_store *s);

/* An install that leaves out the duplicate table (P and R records: a
 * restored backup starts a new cluster, fs/backup.c). */
void fs_install_forget_proposers(struct fs_install *in);
/* Whether the last chunk was installed. */
bool fs_install_complete(const struct fs_install *in);

/* Write a file dir/<name> with content, synced, atomically (via a
 * temporary file and rename, then the directory synced). */
int fs_store_write_file(const struct fs_store *s, const char *name,
			const char *content);

/* ---------------------------------------------------------------------- */
/* The transaction of one command.                                         */

struct fs_txn_op {
	struct fs_key key;
	uint8_t *val; /* NULL when deleted */
	size_t len;
};

struct fs_txn {
	struct fs_store *s;
	struct fs_kv_batch *batch;
	struct fs_txn_op *ops; /* the command's writes, in order */
	size_t n_ops;
	size_t cap_ops;
};

int fs_txn_init(struct fs_txn *t, struct fs_store *s);
void fs_txn_release(struct fs_txn *t);
/* Drop the writes (the batch is cleared too). */
void fs_txn_reset(struct fs_txn *t);

/* *val (malloc'd, the caller frees) of key as this command sees it. */
int fs_txn_get(struct fs_txn *t, const struct fs_key *key, uint8_t **val,
	       size_t *len);
int fs_txn_put(struct fs_txn *t, const struct fs_key *key, const void *val,
	       size_t len);
/* The same, taking val (malloc'd) over: freed with the txn, or at once
 * on an error. Saves a copy of block-sized values. */
int fs_txn_put_owned(struct fs_txn *t, const struct fs_key *key, uint8_t *val,
		     size_t len);
int fs_txn_del(struct fs_txn *t, const struct fs_key *key);

/*
 * The keys in [lo, hi) as this command sees them, sorted: *keys is a
 * malloc'd array of *n keys, the caller frees it.
 */
int fs_txn_keys(struct fs_txn *t, const struct fs_key *lo,
		const struct fs_key *hi, struct fs_key **keys, size_t *n);

/*
 * fs_txn_keys of the lock records' range [K, K+1), from the store's cache
 * of that range (struct fs_store, lock_keys) instead of a scan: the same
 * keys, in the same order. Apply thread (the store's lock exclusive).
 */
int fs_txn_lock_keys(struct fs_txn *t, struct fs_key **keys, size_t *n);

/* Write the batch (not synced); keeps the lock keys' cache. */
int fs_txn_commit(struct fs_txn *t);

/* Compare two keys as LevelDB orders them. */
int fs_key_cmp(const struct fs_key *a, const struct fs_key *b);

#endif
