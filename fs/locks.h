#ifndef FS_LOCKS_H
#define FS_LOCKS_H

/*
 * The lock table (docs/LOCKS.md): POSIX byte-range locks (fcntl) and flock
 * locks of every inode, held by owners (node, lock owner), with the queue
 * of blocked requests. Pure: no I/O, no clock, no threads; the same
 * sequence of calls gives the same table and the same grants on every
 * replica. Private to fs/.
 *
 *   POSIX   read/write locks on inclusive byte ranges [start, end] (end
 *           FS_LOCK_EOF: to the end of any file). One owner's locks never
 *           overlap: setting a range replaces what the owner held there
 *           (splitting its locks), and the owner's locks of one type that
 *           overlap or touch are merged. Unlocking splits.
 *   flock   one lock per owner and inode, shared (read) or exclusive
 *           (write); a conversion first drops the owner's old lock, as
 *           Linux does (not atomic: a failed LOCK_NB conversion leaves the
 *           owner without a lock).
 * The two kinds do not conflict with each other (as on a local Linux
 * filesystem). Two locks conflict when they are of the same inode and
 * kind, of different owners, overlap, and one of them is a write lock.
 *
 * Blocked requests: a request that conflicts and may wait is queued with
 * an id given by the caller (ascending: the log index of the request).
 * After every change of an inode's locks, its waiters are examined in id
 * order and each one that no longer conflicts is granted (and reported
 * through the grant callback). A POSIX request that would wait on an owner
 * that (through the waiters in the table) waits on the requester is
 * refused with -EDEADLK. Non-blocking requests are not held back by
 * waiters (as on Linux).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/codec.h"

/* Most locks and waiters the table holds (ENOLCK beyond). */
#define FS_LOCKS_MAX 65536u
#define FS_LOCK_WAITERS_MAX 8192u

struct fs_lock {
	uint64_t ino;
	uint64_t node;  /* the owner: node ... */
	uint64_t owner; /* ... and the FUSE lock owner there */
	uint64_t start; /* first byte */
	uint64_t end;   /* last byte (inclusive), FS_LOCK_EOF: to the end */
	uint32_t pid;   /* of the process that set it (F_GETLK reports it) */
	uint8_t kind;   /* enum fs_lock_kind */
	uint8_t type;   /* enum fs_lock_type (not UNLOCK in the table) */
};

/* A queued request: want, and who asked (the front end's request is
 * found again by node, epoch and seq of its proposal). */
struct fs_lock_waiter {
	struct fs_lock want;
	uint64_t id; /* order; unique */
	uint64_t epoch;
	uint64_t seq;
};

struct fs_locks;

/* Called for every waiter granted, after the lock is in the table (it
 * may read the table, not change it). */
typedef void (*fs_lock_grant_fn)(void *ctx, const struct fs_lock_waiter *w);

/* 0 or -ENOMEM. */
int fs_locks_create(struct fs_locks **out);
/* Accepts NULL. */
void fs_locks_destroy(struct fs_locks *t);
void fs_locks_set_grant_fn(struct fs_locks *t, fs_lock_grant_fn fn,
			   void *ctx);
/* Drop every lock and waiter. */
void fs_locks_clear(struct fs_locks *t);

/* Whether a lock request is well formed: kind and type known, start <=
 * end, flock locks cover [0, FS_LOCK_EOF]. */
bool fs_lock_is_valid(const struct fs_lock *l);
/* Whether a and b conflict (see above). */
bool fs_lock_conflicts(const struct fs_lock *a, const struct fs_lock *b);

/*
 * F_GETLK: whether req (not UNLOCK) conflicts with a lock held; the first
 * conflicting lock in the table's order into *conflict (may be NULL).
 */
bool fs_locks_test(const struct fs_locks *t, const struct fs_lock *req,
		   struct fs_lock *conflict);

/*
 * Set (or with FS_LOCK_UNLOCK, remove) req. Without w: 0 set, -EAGAIN a
 * conflict. With w (req is copied into w->want): 0 set at once, 1 queued
 * (granted later through the grant callback, or cancelled), -EDEADLK.
 * Also -EINVAL (malformed; an id not above every queued id), -ENOLCK (the
 * table is full). Waiters the change unblocks are granted before it
 * returns.
 */
int fs_locks_set(struct fs_locks *t, const struct fs_lock *req,
		 const struct fs_lock_waiter *w);

/* Remove the waiter of (node, epoch, seq): 0, or -ENOENT (not queued:
 * granted already, or never queued). */
int fs_locks_cancel(struct fs_locks *t, uint64_t node, uint64_t epoch,
		    uint64_t seq);

/* Remove every lock and waiter of node (a node gone or restarted) /
 * every lock of kind that (node, owner) holds on ino (close: flush for
 * POSIX, release for flock; its waiters stay). Waiters unblocked are
 * granted. Returns how many locks and waiters went. */
size_t fs_locks_release_node(struct fs_locks *t, uint64_t node);
size_t fs_locks_release_owner(struct fs_locks *t, uint64_t ino, uint8_t kind,
			      uint64_t node, uint64_t owner);

/* Every lock (sorted by ino, kind, node, owner, start) / waiter (by id) of
 * ino (0: all); fn returning non-zero stops with that value. */
int fs_locks_each(const struct fs_locks *t, uint64_t ino,
		  int (*fn)(void *ctx, const struct fs_lock *l), void *ctx);
int fs_locks_each_waiter(const struct fs_locks *t, uint64_t ino,
			 int (*fn)(void *ctx, const struct fs_lock_waiter *w),
			 void *ctx);
size_t fs_locks_count(const struct fs_locks *t);
size_t fs_locks_waiter_count(const struct fs_locks *t);

/*
 * The record of one inode's locks and waiters (docs/FS_STORE.md, "Locks"),
 * canonical: equal tables give equal bytes. Returns false when ino has
 * neither (no record: the key is deleted).
 */
bool fs_locks_encode_ino(const struct fs_locks *t, uint64_t ino,
			 struct fs_wbuf *w);
/*
 * Add the record of ino to the table as it is (no grants). 0, -EBADMSG
 * (malformed, not canonical, another inode's, or in conflict with the
 * table: see fs_locks_check), -ENOLCK, -ENOMEM.
 */
int fs_locks_decode_ino(struct fs_locks *t, uint64_t ino, const uint8_t *p,
			size_t len);

/*
 * The table's invariants, for tests and fsck: no two held locks conflict;
 * one owner's locks of one inode and kind do not overlap, nor touch when
 * of the same type; an flock owner holds one lock per inode; every
 * waiter conflicts with some held lock; waiter ids ascend. 0, or -EBADMSG
 * with one line in why.
 */
int fs_locks_check(const struct fs_locks *t, char *why, size_t why_size);

#endif
