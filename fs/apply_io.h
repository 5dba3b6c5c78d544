#ifndef FS_APPLY_IO_H
#define FS_APPLY_IO_H

/*
 * The state one command works on while it is applied (fs/apply.c) and the
 * inode, entry and block helpers the operations share (fs/apply_io.c).
 *
 * Return convention inside apply: 0 success; a POSITIVE errno is the
 * command's outcome (ENOENT, EEXIST, ...); a NEGATIVE errno is a store
 * error that stops the node. Private to fs/.
 */

#include <stdint.h>

#include "fs/store.h"

struct fs_apply {
	struct fs_txn txn;
	struct fs_super sb;     /* working copy, written at the end */
	const struct fs_cmd *c;
	uint64_t index;         /* the log index being applied */
	struct fs_time now;     /* the command's time (max rule applied) */
	struct fs_result *res;
	/* for the store's hook: at most one of each per command */
	uint64_t orphaned;      /* an inode that became an orphan, or 0 */
	bool dir_freed;         /* a directory was removed: */
	struct fs_attr dir_attr; /* its last attributes */
	/* What the command changed, for FS_EVENT_CHANGED (ev.all when more
	 * than fits): inodes stored or freed, entries added, removed or
	 * retargeted. */
	struct fs_store_event ev;
	/* FS_EVENT_LOCK_GRANTED events (malloc'd; fs_store_apply frees) */
	struct fs_store_event *lock_events;
	size_t n_lock_events;
	bool grant_error; /* one could not be recorded (out of memory) */
};

/* Delete every key in [lo, hi) in the apply's transaction. */
int fs_apply_delete_range(struct fs_apply *a, const struct fs_key *lo,
			  const struct fs_key *hi);
int fs_inode_load(struct fs_apply *a, uint64_t ino, struct fs_inode *in);
int fs_inode_store(struct fs_apply *a, const struct fs_inode *in);
/* Load a directory: ENOENT, ENOTDIR. */
int fs_dir_load(struct fs_apply *a, uint64_t ino, struct fs_inode *dir);

/* The entry (dir, name): 0 or ENOENT. */
int fs_dentry_load(struct fs_apply *a, uint64_t dir, const char *name,
		   size_t len, struct fs_dentry *de);
/* Add (dir, name) -> ino with the directory's next cookie; dir is
 * updated in memory (the caller stores it). */
int fs_dentry_add(struct fs_apply *a, struct fs_inode *dir, const char *name,
		  size_t len, uint64_t ino, uint32_t type);
/* Remove (dir, name) whose record is de. */
int fs_dentry_remove(struct fs_apply *a, struct fs_inode *dir,
		     const char *name, size_t len, const struct fs_dentry *de);
/* Point the existing entry (dir, name) at another inode, same cookie. */
int fs_dentry_retarget(struct fs_apply *a, uint64_t dir, const char *name,
		       size_t len, uint64_t seq, uint64_t ino, uint32_t type);

/* Delete an inode and everything it owns (blocks, target, xattrs,
 * orphan record) and give its space back. */
int fs_inode_free(struct fs_apply *a, const struct fs_inode *in);
/* One link of in fewer; at zero it becomes an orphan held by the holders
 * fs_orphan_holders_compute gives (a->orphaned is set), or is freed when
 * there are none. Stores in. */
int fs_inode_unlink(struct fs_apply *a, struct fs_inode *in);

/* Orphans (fs/orphans.c). The holders of in when its last link goes:
 * for a regular file the configuration's members (or, without any, the
 * proposer), plus the command's holders; sorted, unique, at most
 * FS_HOLDERS_MAX (the lowest ids). */
int fs_orphan_holders_compute(struct fs_apply *a, const struct fs_inode *in,
			      uint64_t *h, uint32_t *n);
/* Release node from every orphan (freeing those it held last). */
int fs_orphans_release_node(struct fs_apply *a, uint64_t node);

/* Locks (fs/apply_lock.c): LOCK, LOCK_CANCEL, UNLOCK_OWNER; every lock
 * and waiter of node goes (RELEASE_ALL). */
int fs_apply_lock(struct fs_apply *a);
int fs_locks_release_node_apply(struct fs_apply *a, uint64_t node);
/* 1 when node holds a lock or waits for one, 0 not, or a store error. */
int fs_locks_node_holds(struct fs_apply *a, uint64_t node);

/* Leases (fs/apply_lease.c): whether the command's node and epoch are
 * fenced (its lease revoked); the command's epoch becomes its node's
 * newest (and, renew, a renewal is counted); LEASE_EXPIRE. */
int fs_lease_fenced(struct fs_apply *a, bool *fenced);
int fs_lease_announce(struct fs_apply *a, bool renew);
int fs_apply_lease_expire(struct fs_apply *a);

/* Cut stored data to size bytes (shrinking only touches stored blocks). */
int fs_data_truncate(struct fs_apply *a, struct fs_inode *in, uint64_t size);
/* Store len bytes at offset (ENOSPC first, nothing partial). */
int fs_data_write(struct fs_apply *a, struct fs_inode *in, uint64_t offset,
		  const uint8_t *data, size_t len);
/* Zero [off, end): whole blocks are dropped, partial ones zeroed, trailing
 * zeros of a block trimmed (holes take no space). */
int fs_data_punch(struct fs_apply *a, struct fs_inode *in, uint64_t off,
		  uint64_t end);
/* Make [off, end) stored (zeros in holes); ENOSPC first. */
int fs_data_allocate(struct fs_apply *a, struct fs_inode *in, uint64_t off,
		     uint64_t end);

/* One applied entry in one batch: begin takes the transaction and the
 * store's write lock and checks index follows the applied one (-EINVAL);
 * nothing is held on error. finish (rc: the caller's outcome so far)
 * writes the superblock with the new applied index, commits and publishes
 * it when rc is 0, then lets go of the lock and the transaction; returns
 * the final rc. */
/* The FS_OP_REPAIR_* commands (fs/apply_repair.c): 0, a positive errno
 * (ESTALE: the state moved since the check), or a store error. */
int fs_apply_repair(struct fs_apply *a);

int fs_apply_begin(struct fs_store *s, uint64_t index, struct fs_apply *a);
int fs_apply_finish(struct fs_store *s, struct fs_apply *a, int rc);

#endif
