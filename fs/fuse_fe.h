#ifndef FS_FUSE_FE_H
#define FS_FUSE_FE_H

/*
 * The FUSE front end's shared state, private to fs/ (docs/FUSE.md):
 *
 *   fuse_session.c   mount options, the session, the loop, unmount
 *   fuse_req.c       one request's life: propose or barrier, the timeout
 *                    thread, answering exactly once, reply helpers
 *   fuse_inodes.c    lookup counts and open counts per inode; orphan
 *                    release when the last local handle closes; the
 *                    page-cache version behind keep_cache
 *   fuse_notify.c    the notifier: the thread that alone sends the
 *                    kernel cache invalidations, its coalescing queue
 *   fuse_ops_*.c     the handlers, one file per group of operations
 *
 * Threads: libfuse workers run the handlers; the proposer's thread runs
 * the completion callbacks (which reply); the timer thread answers EIO to
 * requests past their deadline; the notifier thread sends invalidations
 * and runs the replies that wait for them. Locks: fs_fuse.lock (the pending list and
 * request reference counts) and fs_fuse.inodes_lock (the inode table) are
 * never held together, and neither is held across a FUSE reply, a store
 * read or a call into the proposer.
 */

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/fs.h"

struct fs_fuse_req;
struct fs_fuse_inode;
struct fs_fuse_notifier;
struct fs_fuse_locks;

#define FS_FUSE_INODE_BUCKETS 4096u
/* Relaxed mode: how long reads reuse a read barrier (at most the smallest
 * cache_timeout). */
#define FS_FUSE_FRESH_MS 1000u

struct fs_fuse {
	struct fs_store *store;
	struct fs_proposer prop;
	uint32_t op_timeout_ms;
	unsigned max_threads;
	uint32_t name_max; /* the superblock's, read at mount */
	void (*log)(void *ctx, int level, const char *line); /* or NULL */
	void *log_ctx;
	char *mountpoint;
	struct fuse_session *se;
	bool mounted;
	/* -o cache=relaxed: attributes and entries cached for
	 * cache_timeout seconds, invalidated on every change from another
	 * node (docs/FUSE.md). */
	bool relaxed;
	double cache_timeout;
	/* The mount's readahead was widened (fs_fuse_widen_readahead). */
	int readahead_set;
	/* Relaxed mode: when the newest barrier that completed began
	 * (monotonic ms); reads but open's reuse it for FS_FUSE_FRESH_MS. */
	_Atomic uint64_t fresh_ms;
	struct fs_fuse_notifier *notifier; /* fuse_notify.c */

	/* Protects pending, n_live, draining, stopping; signalled when n_live
	 * drops while draining, or stopping is set. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Unanswered requests in deadline order (a ring with a sentinel). */
	struct fs_fuse_req *pending;
	uint64_t n_live; /* requests not yet freed */
	/* fs_fuse_req_stop waits for n_live to drop: only then does a freed
	 * request signal cond. */
	bool draining;
	bool stopping;
	pthread_t timer;
	bool timer_started;

	/* Protects the inode table. */
	pthread_mutex_t inodes_lock;
	struct fs_fuse_inode *inodes[FS_FUSE_INODE_BUCKETS];

	/* Orphans this node no longer holds, waiting to be released in one
	 * RELEASE_LIST by the releaser thread (fuse_inodes.c). release_lock
	 * protects release_q, release_n, release_cap, release_stop; it is
	 * never held with another lock. releaser/releaser_started belong to
	 * the mounting and destroying thread. */
	pthread_mutex_t release_lock;
	pthread_cond_t release_cond;
	uint64_t *release_q;
	size_t release_n;
	size_t release_cap;
	bool release_stop;
	pthread_t releaser;
	bool releaser_started;

	/* Blocked lock requests and the owners that set locks here
	 * (fuse_ops_lock.c, its own mutex). */
	struct fs_fuse_locks *locks;
};

/*
 * One request in flight. Reference counted under fs->lock: one reference
 * belongs to whoever answers the request (held by the pending list until
 * it is claimed), one to the proposer's callback.
 */
struct fs_fuse_req {
	struct fs_fuse *fs;
	fuse_req_t req; /* NULL: internal (a RELEASE), nobody to answer */
	/* Commands: runs on the proposer's callback whatever happened;
	 * answer says whether this call must reply (false when the request
	 * already timed out). err: 0 (res valid) or negative. */
	void (*finish)(struct fs_fuse_req *r, int err,
		       const struct fs_result *res, bool answer);
	/* Reads: runs after the barrier, must reply. */
	void (*read)(struct fs_fuse_req *r);
	uint64_t deadline_ms;
	int refs;      /* under fs->lock */
	bool answered; /* under fs->lock */
	struct fs_fuse_req *prev, *next; /* in fs->pending, under fs->lock */
	/* The arguments a completion needs (FUSE pointers die when the
	 * handler returns). */
	uint64_t ino;
	uint64_t victim; /* unlink/rename: the inode losing a link, or 0 */
	uint64_t off;
	size_t size;
	int whence;
	bool plus; /* readdirplus */
	bool fresh; /* open, opendir: a barrier of its own, always */
	uint64_t barrier_ms; /* relaxed mode: when its barrier began */
	struct fuse_file_info fi;
	uint32_t name_len;
	char name[FS_NAME_MAX + 1];
	struct raft_proposal_id id; /* commands: set once proposed */
	struct fs_lock_info lock;   /* lock requests: what was asked */
	/* setattr: what it sets (FS_SET_* in set_valid), held across the
	 * barrier that may show it changes nothing (size and UTIME_NOW are
	 * never held: they always change something) */
	uint32_t set_valid;
	uint32_t set_mode;
	uint32_t set_uid;
	uint32_t set_gid;
	struct fs_time set_atime;
	struct fs_time set_mtime;
};

/* ---------------------------------------------------------------------- */
/* Requests (fuse_req.c).                                                  */

/* fuse_session.c: once, after the kernel's INIT: the mount's readahead
 * widened to FS_WRITE_MAX so a sequential read arrives in requests of
 * 1 MiB (one barrier and one reply each) instead of 128 KiB. */
void fs_fuse_widen_readahead(struct fs_fuse *fs);

int fs_fuse_req_start(struct fs_fuse *fs);
void fs_fuse_req_stop(struct fs_fuse *fs);

/* A new request for req (its fs from fuse_req_userdata); NULL on ENOMEM,
 * then req has been answered. */
struct fs_fuse_req *fs_fuse_req_new(fuse_req_t req);
/* The same after checking a name (answers ENAMETOOLONG, EINVAL), with
 * r->ino = ino and the name copied into r->name. */
struct fs_fuse_req *fs_fuse_req_named(fuse_req_t req, uint64_t ino,
				      const char *name);
/* An internal request (no FUSE request to answer). */
struct fs_fuse_req *fs_fuse_req_internal(struct fs_fuse *fs);

/*
 * Encode c (its proposal, clock and, for requests from the kernel, uid and
 * gid are filled here) and submit it; r->finish runs on completion. On any
 * failure before submission r is answered with the error and freed.
 */
void fs_fuse_propose(struct fs_fuse_req *r, struct fs_cmd *c,
		     void (*finish)(struct fs_fuse_req *r, int err,
				    const struct fs_result *res, bool answer));

/* Wait for the barrier, then run read (which replies). Relaxed mode: a
 * barrier that began less than FS_FUSE_FRESH_MS ago serves, unless
 * r->fresh. */
void fs_fuse_read(struct fs_fuse_req *r, void (*read)(struct fs_fuse_req *r));

/* Answer r with an error before it was submitted anywhere; frees it. */
void fs_fuse_req_fail(struct fs_fuse_req *r, int err);

/* Reply helpers: attributes as struct stat; an entry (takes the lookup
 * reference before replying, gives it back when the reply fails). */
void fs_fuse_attr_to_stat(const struct fs_attr *a, struct stat *st);
void fs_fuse_entry_param(const struct fs_fuse *fs, const struct fs_attr *a,
			 struct fuse_entry_param *e);
/* The attribute timeout of replies: 0, or the relaxed mode's. */
double fs_fuse_attr_timeout(const struct fs_fuse *fs);
void fs_fuse_reply_entry(struct fs_fuse *fs, fuse_req_t req,
			 const struct fs_attr *a);
/* Reply to an open or opendir with r->fi: in relaxed mode once every
 * invalidation up to the barrier was sent (close-to-open; the reply may
 * come from the notifier thread), at once otherwise. counted: the open
 * holds a handle (fs_fuse_inode_hold_open), closed when the reply fails. */
void fs_fuse_reply_open(struct fs_fuse_req *r, bool counted);
/* Completions: reply the error (or 0), the entry, the attributes. */
void fs_fuse_finish_err(struct fs_fuse_req *r, int err,
			const struct fs_result *res, bool answer);
void fs_fuse_finish_entry(struct fs_fuse_req *r, int err,
			  const struct fs_result *res, bool answer);
void fs_fuse_finish_attr(struct fs_fuse_req *r, int err,
			 const struct fs_result *res, bool answer);

/* Check a name from the kernel: 0, -ENAMETOOLONG, -EINVAL. */
int fs_fuse_name_check(const struct fs_fuse *fs, const char *name);

/* ---------------------------------------------------------------------- */
/* Inodes (fuse_inodes.c).                                                 */

void fs_fuse_inodes_init(struct fs_fuse *fs);
/* Free the table. */
void fs_fuse_inodes_release(struct fs_fuse *fs);

/* The releaser thread: start (0 or a negative errno); stop proposes what
 * is still queued first. */
int fs_fuse_releaser_start(struct fs_fuse *fs);
void fs_fuse_releaser_stop(struct fs_fuse *fs);

/* Lookup references given to / forgotten by the kernel. */
int fs_fuse_inode_ref(struct fs_fuse *fs, uint64_t ino, uint64_t n);
void fs_fuse_inode_forget(struct fs_fuse *fs, uint64_t ino, uint64_t n);

/*
 * A local open handle of ino: counted first, then the store is read (into
 * *a when not NULL). An inode that is gone, or an orphan this node holds
 * no other handle of, is not opened (-ESTALE, fs_fuse_ino_err: the kernel
 * looks the path up again): its last link went before the open, and this
 * node's release of it may already be on its way.
 * Returns 0, -ESTALE, -ENOMEM, -EIO.
 */
int fs_fuse_inode_hold_open(struct fs_fuse *fs, uint64_t ino,
			    struct fs_attr *a);
void fs_fuse_inode_close(struct fs_fuse *fs, uint64_t ino);

/* The store's hook (fs_store_set_hook; apply thread): an orphan is
 * released unless it is open here; a removed directory the kernel still
 * knows keeps its last attributes in the table. */
void fs_fuse_inode_event(void *fs, const struct fs_store_event *ev);
/* The last attributes of a removed directory the kernel still knows. */
bool fs_fuse_inode_last(struct fs_fuse *fs, uint64_t ino, struct fs_attr *a);

/*
 * An unlink or rename that may drop ino's last link is about to be
 * proposed: true when this node holds ino open (the command must name it
 * as holder); the inode stays pinned until fs_fuse_inode_unlink_end.
 */
bool fs_fuse_inode_unlink_begin(struct fs_fuse *fs, uint64_t ino);
void fs_fuse_inode_unlink_end(struct fs_fuse *fs, uint64_t ino);

/* Page cache (apply thread): ino's contents changed (0: every inode's). */
void fs_fuse_inodes_data_changed(struct fs_fuse *fs, uint64_t ino);
/* At an open, after its barrier: whether the kernel may keep the pages it
 * has of ino (its contents did not change since the pages were read);
 * from now on they are of the current contents. */
bool fs_fuse_inode_keep_cache(struct fs_fuse *fs, uint64_t ino);
/* Whether the kernel knows ino (a lookup reference or an open handle;
 * root always); *open (may be NULL): whether this node has it open. */
bool fs_fuse_inode_known(struct fs_fuse *fs, uint64_t ino, bool *open);
/* fn for every inode the kernel knows (collected first, called without
 * any lock held). */
void fs_fuse_inodes_each_known(struct fs_fuse *fs,
			       void (*fn)(void *ctx, uint64_t ino), void *ctx);

/* ---------------------------------------------------------------------- */
/* The notifier (fuse_notify.c).                                           */

/* State (before the store's hook is set), thread (after the mount), stop
 * (answers whatever still waits; before the session goes), free. */
int fs_fuse_notify_init(struct fs_fuse *fs);
int fs_fuse_notify_start(struct fs_fuse *fs);
void fs_fuse_notify_stop(struct fs_fuse *fs);
void fs_fuse_notify_free(struct fs_fuse *fs);

/* The store's FS_EVENT_CHANGED and FS_EVENT_INSTALLED (apply thread):
 * queues what the kernel must forget; never blocks. */
void fs_fuse_notify_event(struct fs_fuse *fs, const struct fs_store_event *ev);

/* The highest log index whose changes the notifier was told about: after
 * a read barrier, at least the barrier's index. */
uint64_t fs_fuse_notify_told(struct fs_fuse *fs);

/*
 * Run fn(arg) once every invalidation for the commands applied up to
 * index was sent to the kernel: at once on the calling thread when that is
 * already so, else later on the notifier thread. index must be applied
 * locally already (its hook ran), e.g. a command's index in its
 * completion, or fs_fuse_notify_told after a barrier. Only replies to
 * open, opendir and lock requests, and in the default mode (whose
 * notifier sends no entry invalidation) getattr of a regular file, may
 * wait like this: the kernel holds no directory lock for them (a lookup's
 * or a create's would deadlock with an invalidation of that directory).
 */
void fs_fuse_notify_then(struct fs_fuse *fs, uint64_t index,
			 void (*fn)(void *arg), void *arg);

/*
 * The same, blocking the caller until then or until deadline_ms (the
 * monotonic clock in ms, as fs_fuse_req.deadline_ms). Returns 0, or
 * -ETIMEDOUT. Never call it on the apply or proposer threads (a
 * completion or barrier callback): the notifier may be waiting for a
 * directory lock whose holder waits for apply. From a libfuse worker
 * handling a lock request it is safe; fs_fuse_notify_then does the same
 * without a thread.
 */
int fs_fuse_notify_wait(struct fs_fuse *fs, uint64_t index,
			uint64_t deadline_ms);

/* ---------------------------------------------------------------------- */
/* Handlers (fuse_ops_*.c): each fills its operations into ops.            */

void fs_fuse_ops_entry(struct fuse_lowlevel_ops *ops);
void fs_fuse_ops_file(struct fuse_lowlevel_ops *ops);
void fs_fuse_ops_dir(struct fuse_lowlevel_ops *ops);
void fs_fuse_ops_xattr(struct fuse_lowlevel_ops *ops);
void fs_fuse_ops_lock(struct fuse_lowlevel_ops *ops);

/* ---------------------------------------------------------------------- */
/* Locks (fuse_ops_lock.c, docs/LOCKS.md).                                 */

/* 0 or -ENOMEM; before the store's hook is set. */
int fs_fuse_locks_init(struct fs_fuse *fs);
/* Answer EIO to every blocked request (before the session goes); free. */
void fs_fuse_locks_release(struct fs_fuse *fs);
/* The store's hook for FS_EVENT_LOCK_GRANTED, and FS_EVENT_INSTALLED (a
 * snapshot skips grant events: waiters no longer queued in it are
 * answered as granted) (apply thread). */
void fs_fuse_lock_event(struct fs_fuse *fs, const struct fs_store_event *ev);
/* flush: when the owner set POSIX locks on ino here, propose their
 * release and answer req once applied (true: req taken). */
bool fs_fuse_lock_flush(fuse_req_t req, uint64_t ino,
			const struct fuse_file_info *fi);
/* release with flock_release, and every releasedir: the flock lock of
 * the handle fi->fh goes (proposed; nobody waits for it); nothing when
 * that handle set no flock lock here. */
void fs_fuse_lock_release(struct fs_fuse *fs, uint64_t ino,
			  const struct fuse_file_info *fi);
/*
 * The handle (fuse_file_info.fh) of an open of a file or directory:
 * unique on this node for its run, never 0. It owns the flock locks set
 * through the open: the kernel's flock lock owner is the address of its
 * open file,
 * which a later open may get again as soon as the file is freed, while
 * the old file's release (FUSE_RELEASE is sent in the background) may
 * still be on its way and would drop the new open's lock.
 */
uint64_t fs_fuse_lock_handle(struct fs_fuse *fs);

/*
 * The error for a request on an inode the kernel knows that is gone from
 * the store (another node removed its last name in between): ESTALE, not
 * ENOENT, so that the kernel looks the path up again instead of telling
 * the program that a path which exists does not (rename over a file from
 * another node; found by the linearizability checker).
 */
static inline int fs_fuse_ino_err(int rc)
{
	return rc == -ENOENT ? -ESTALE : rc;
}

#endif
