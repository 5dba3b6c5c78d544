#ifndef LAZYFS_STATE_H
#define LAZYFS_STATE_H

/*
 * lazyfs's model of a disk that forgets what was not synced (the durability
 * model is docs/POWER_LOSS.md). The backing directory holds exactly the
 * durable state; this file keeps, in memory, the "current" view every
 * process sees: the durable tree plus every namespace operation and every
 * file write not yet made durable.
 *
 *   - Namespace operations (create, mkdir, unlink, rmdir, rename) are kept
 *     in one list in the order they were made and reach the backing
 *     directory only in that order, as ext4's journal commits them: a sync
 *     that needs operation k durable applies operations 1..k. The durable
 *     tree is therefore always the current tree as it was at some moment.
 *   - File data (writes and truncations) is kept per file and written to
 *     the file's durable location only by an fsync/fdatasync of that file.
 *
 * Threads: none of its own. Everything here is called from the one FUSE
 * loop thread of lazyfs.c, so no field needs a lock.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* One unsynced write of a file: bytes [off, off + len). */
struct lz_extent {
	uint64_t off;
	size_t len;
	size_t cap; /* bytes allocated at data */
	char *data;
};

struct lz_node {
	uint64_t ino;
	bool is_dir;
	mode_t mode; /* with the type bits */
	uid_t uid;
	gid_t gid;
	struct timespec atime;
	struct timespec mtime;
	struct timespec ctime;

	/* The current view: the entry processes see. */
	struct lz_node *parent; /* NULL: the root, or unlinked */
	char *name;
	struct lz_node *first_child; /* directories */
	struct lz_node *next_sibling;

	/* The durable view: the entry in the backing directory. */
	bool durable;            /* has an entry there (the root always) */
	struct lz_node *dparent; /* its directory, when durable */
	char *dname;

	/* Regular files: the data. */
	uint64_t size;  /* current size */
	uint64_t dsize; /* size of the backing file */
	uint64_t keep;  /* bytes of the backing file still valid (<= dsize) */
	struct lz_extent *ext; /* unsynced writes, oldest first */
	size_t n_ext;
	size_t cap_ext;
	int bfd; /* the backing file, opened on first use; -1 */

	uint64_t nlookup;  /* the kernel's references (lookups - forgets) */
	unsigned int opens; /* open file handles */
};

/* The whole state (one per mount). */
struct lz_state {
	int root_fd; /* the backing directory */
	struct lz_node **nodes; /* by inode number; [0] and [2] unused */
	size_t n_nodes;
	size_t cap_nodes;
	struct lz_op *ops_head; /* pending namespace operations, oldest first */
	struct lz_op *ops_tail;
	size_t n_ops;
	struct lz_node *last_writer; /* the file holding the newest write */
	bool failed; /* a backing operation failed: every request gets EIO */
	char err[512]; /* why, when failed */
};

#define LZ_ROOT_INO 1u
#define LZ_CTL_INO 2u /* the control file, see lazyfs.c */
#define LZ_CTL_NAME ".lazyfs"

/* Load the durable tree of backing directory root_fd (owned from now on). */
int lz_state_init(struct lz_state *st, int root_fd, char *err, size_t err_size);
/* Free everything; nothing is written. */
void lz_state_release(struct lz_state *st);

struct lz_node *lz_node_get(struct lz_state *st, uint64_t ino);
struct lz_node *lz_child(const struct lz_node *dir, const char *name);
void lz_node_stat(const struct lz_node *n, struct stat *stbuf);

/* Namespace operations on the current view; 0 or a negative errno. */
int lz_create(struct lz_state *st, struct lz_node *dir, const char *name,
	      mode_t mode, uid_t uid, gid_t gid, struct lz_node **out);
int lz_unlink(struct lz_state *st, struct lz_node *dir, const char *name,
	      bool is_dir);
int lz_rename(struct lz_state *st, struct lz_node *dir, const char *name,
	      struct lz_node *newdir, const char *newname, unsigned int flags);

/* File data on the current view. */
int lz_write(struct lz_state *st, struct lz_node *n, uint64_t off,
	     const char *buf, size_t len);
int lz_truncate(struct lz_state *st, struct lz_node *n, uint64_t size);
/* Read up to len bytes at off into buf; returns the count or -errno. */
long lz_read(struct lz_state *st, struct lz_node *n, uint64_t off, char *buf,
	     size_t len);
/* Forget n's unsynced data (it can never become durable). */
void lz_drop_data(struct lz_state *st, struct lz_node *n);
/* The file has no open handle and no entry any more: data and backing fd. */
void lz_forget_file(struct lz_state *st, struct lz_node *n);

/* Syncs: make durable what the model says (docs/POWER_LOSS.md). */
int lz_fsync_file(struct lz_state *st, struct lz_node *n);
int lz_fsync_dir(struct lz_state *st, struct lz_node *dir);
/* Everything (a clean unmount or the "sync" command). */
int lz_sync_all(struct lz_state *st);

/*
 * Power loss with a torn write: of the newest unsynced write, only the
 * first k bytes reach the backing file, k drawn from seed in [0, len),
 * after the file's older unsynced writes. Nothing else is written. Returns
 * 0 when there was nothing to tear. *desc tells what was torn.
 */
int lz_tear_last_write(struct lz_state *st, uint64_t seed, char *desc,
		       size_t desc_size);

#endif
