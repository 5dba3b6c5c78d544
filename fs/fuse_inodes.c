/*
 * What the kernel and this node's open files hold of each inode. Inodes
 * themselves live in the store; this table only counts:
 *
 *   nlookup    references given to the kernel by entry replies (lookup,
 *              create, mknod, mkdir, symlink, link, readdirplus) and taken
 *              back by forget; an inode the kernel forgot and nobody holds
 *              open leaves the table
 *   nopen      open handles of this node (open, create)
 *   unlinking  unlink/rename proposals in flight that named this node as
 *              a holder of the inode
 *
 * An open file whose last link goes becomes an orphan held by this node
 * (docs/FS_STORE.md, Orphans). When its last local handle closes and no
 * unlink naming it is still in flight, the store tells whether this node
 * still holds it, and if so a RELEASE is proposed.
 */

#include "fs/fuse_fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct fs_fuse_inode {
	struct fs_fuse_inode *next; /* bucket chain */
	uint64_t ino;
	uint64_t nlookup;
	uint64_t nopen;
	uint64_t unlinking;
	/* A removed directory the kernel still knows (a current directory):
	 * its last attributes, malloc'd, or NULL. */
	struct fs_attr *last;
	/* Page cache: data_ver counts the applied changes of the contents
	 * this entry saw; pages says the kernel may hold pages of the
	 * contents as they were at data_ver == pages_ver (set by an open). */
	uint64_t data_ver;
	uint64_t pages_ver;
	bool pages;
};

static size_t bucket(uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 52) %
	       FS_FUSE_INODE_BUCKETS;
}

void fs_fuse_inodes_init(struct fs_fuse *fs)
{
	pthread_mutex_init(&fs->inodes_lock, NULL);
	pthread_mutex_init(&fs->release_lock, NULL);
	pthread_cond_init(&fs->release_cond, NULL);
}

void fs_fuse_inodes_release(struct fs_fuse *fs)
{
	for (size_t b = 0; b < FS_FUSE_INODE_BUCKETS; b++) {
		struct fs_fuse_inode *in = fs->inodes[b], *next;
		for (; in != NULL; in = next) {
			next = in->next;
			free(in->last);
			free(in);
		}
		fs->inodes[b] = NULL;
	}
	pthread_mutex_destroy(&fs->inodes_lock);
	free(fs->release_q);
	fs->release_q = NULL;
	pthread_cond_destroy(&fs->release_cond);
	pthread_mutex_destroy(&fs->release_lock);
}

/* The entry of ino, created when create is set; inodes_lock held. */
static struct fs_fuse_inode *find(struct fs_fuse *fs, uint64_t ino,
				  bool create)
{
	struct fs_fuse_inode **pp = &fs->inodes[bucket(ino)], *in;

	for (in = *pp; in != NULL; in = in->next)
		if (in->ino == ino)
			return in;
	if (!create)
		return NULL;
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->ino = ino;
	in->next = *pp;
	*pp = in;
	return in;
}

/* Drop the entry when nothing holds it any more; inodes_lock held. */
static void maybe_drop(struct fs_fuse *fs, struct fs_fuse_inode *in)
{
	struct fs_fuse_inode **pp = &fs->inodes[bucket(in->ino)];

	if (in->nlookup > 0 || in->nopen > 0 || in->unlinking > 0)
		return;
	while (*pp != in)
		pp = &(*pp)->next;
	*pp = in->next;
	free(in->last);
	free(in);
}

int fs_fuse_inode_ref(struct fs_fuse *fs, uint64_t ino, uint64_t n)
{
	struct fs_fuse_inode *in;
	int rc = 0;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, true);
	if (in != NULL)
		in->nlookup += n;
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&fs->inodes_lock);
	return rc;
}

void fs_fuse_inode_forget(struct fs_fuse *fs, uint64_t ino, uint64_t n)
{
	struct fs_fuse_inode *in;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	if (in != NULL) {
		/* The kernel never forgets more than it was given; a bad
		 * count from it is clamped, not trusted. */
		in->nlookup -= n < in->nlookup ? n : in->nlookup;
		maybe_drop(fs, in);
	}
	pthread_mutex_unlock(&fs->inodes_lock);
}

/* One more local handle of ino: the new count, or -ENOMEM. */
static long inode_open(struct fs_fuse *fs, uint64_t ino)
{
	struct fs_fuse_inode *in;
	long n = -ENOMEM;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, true);
	if (in != NULL)
		n = (long)++in->nopen;
	pthread_mutex_unlock(&fs->inodes_lock);
	return n;
}

int fs_fuse_inode_hold_open(struct fs_fuse *fs, uint64_t ino,
			    struct fs_attr *out)
{
	struct fs_attr a;
	long n = inode_open(fs, ino);
	int rc;

	if (n < 0)
		return (int)n;
	/* Counted before the store is read: the orphan hook, which runs
	 * after the apply that drops the last link, either sees this
	 * handle (and leaves the release to its close) or ran before the
	 * read below, which then sees nlink 0. */
	rc = fs_getattr(fs->store, ino, &a);
	if (rc == 0 && a.nlink == 0 && !S_ISDIR(a.mode) && n == 1)
		rc = -ENOENT;
	rc = fs_fuse_ino_err(rc); /* the kernel looks the path up again */
	if (rc != 0) {
		fs_fuse_inode_close(fs, ino);
		return rc;
	}
	if (out != NULL)
		*out = a;
	return 0;
}

static void release_done(struct fs_fuse_req *r, int err,
			 const struct fs_result *res, bool answer)
{
	(void)answer;
	if (err != 0 || res->err != 0)
		fuse_log(FUSE_LOG_WARNING,
			 "raftfs: release of %llu orphan inodes failed: %d\n",
			 (unsigned long long)r->ino,
			 err != 0 ? err : -res->err);
}

/* Propose one RELEASE_LIST of n inodes (n <= FS_RELEASE_LIST_MAX). */
static void propose_releases(struct fs_fuse *fs, const uint64_t *inos,
			     size_t n)
{
	static uint8_t buf[8 * FS_RELEASE_LIST_MAX]; /* releaser thread only */
	struct fs_fuse_req *r;
	struct fs_cmd c;

	r = fs_fuse_req_internal(fs);
	if (r == NULL) {
		fuse_log(FUSE_LOG_ERR,
			 "raftfs: no memory to release %zu orphan inodes\n", n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++)
			buf[8 * i + b] = (uint8_t)(inos[i] >> (56 - 8 * b));
	r->ino = n; /* for the log line */
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_RELEASE_LIST;
	c.data = buf;
	c.data_len = (uint32_t)(8 * n);
	fs_fuse_propose(r, &c, release_done);
}

/*
 * The releaser: waits for queued releases, lets more arrive for
 * RELEASE_BATCH_MS (an `rm -r` then costs each node one command per batch,
 * not per file), and proposes them as one RELEASE_LIST.
 */
#define RELEASE_BATCH_MS 100

static void *releaser_main(void *arg)
{
	struct fs_fuse *fs = arg;
	uint64_t *batch = malloc(FS_RELEASE_LIST_MAX * sizeof(*batch));
	size_t n;

	pthread_mutex_lock(&fs->release_lock);
	for (;;) {
		while (fs->release_n == 0 && !fs->release_stop)
			pthread_cond_wait(&fs->release_cond, &fs->release_lock);
		if (fs->release_n == 0)
			break; /* stopping, nothing left */
		if (!fs->release_stop && fs->release_n < FS_RELEASE_LIST_MAX) {
			/* The whole window, whatever arrives meanwhile (each
			 * arrival signals): woken early, a list per arrival
			 * would leave (1.7 commits per unlink, measured, for
			 * the one the unlink itself costs). */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += RELEASE_BATCH_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_nsec -= 1000000000L;
				ts.tv_sec++;
			}
			while (!fs->release_stop &&
			       fs->release_n < FS_RELEASE_LIST_MAX &&
			       pthread_cond_timedwait(&fs->release_cond,
						      &fs->release_lock,
						      &ts) != ETIMEDOUT)
				;
		}
		n = fs->release_n < FS_RELEASE_LIST_MAX ? fs->release_n
							: FS_RELEASE_LIST_MAX;
		if (batch != NULL)
			memcpy(batch, fs->release_q, n * sizeof(*batch));
		memmove(fs->release_q, fs->release_q + n,
			(fs->release_n - n) * sizeof(*batch));
		fs->release_n -= n;
		pthread_mutex_unlock(&fs->release_lock);
		if (batch != NULL)
			propose_releases(fs, batch, n);
		else
			fuse_log(FUSE_LOG_ERR, "raftfs: no memory to release "
				 "%zu orphan inodes\n", n);
		pthread_mutex_lock(&fs->release_lock);
	}
	pthread_mutex_unlock(&fs->release_lock);
	free(batch);
	return NULL;
}

int fs_fuse_releaser_start(struct fs_fuse *fs)
{
	int rc = pthread_create(&fs->releaser, NULL, releaser_main, fs);
	if (rc != 0)
		return -rc;
	fs->releaser_started = true;
	return 0;
}

void fs_fuse_releaser_stop(struct fs_fuse *fs)
{
	if (!fs->releaser_started)
		return;
	pthread_mutex_lock(&fs->release_lock);
	fs->release_stop = true;
	pthread_cond_signal(&fs->release_cond);
	pthread_mutex_unlock(&fs->release_lock);
	pthread_join(fs->releaser, NULL);
	fs->releaser_started = false;
}

/* Nothing of this node refers to ino any more: if the store says this
 * node still holds it as an orphan, queue its release. */
static void release_if_held(struct fs_fuse *fs, uint64_t ino)
{
	uint64_t holders[FS_HOLDERS_MAX];
	uint32_t n = 0;
	bool held = false;

	if (fs_orphan_holders(fs->store, ino, holders, FS_HOLDERS_MAX, &n) != 0)
		return;
	for (uint32_t i = 0; i < n && i < FS_HOLDERS_MAX; i++)
		held |= holders[i] == fs->prop.node_id;
	if (!held)
		return;
	pthread_mutex_lock(&fs->release_lock);
	if (fs->release_stop) {
		/* Stopping: the next start's RELEASE_ALL releases it. */
		pthread_mutex_unlock(&fs->release_lock);
		return;
	}
	if (fs->release_n == fs->release_cap) {
		size_t cap = fs->release_cap ? 2 * fs->release_cap : 64;
		uint64_t *q = realloc(fs->release_q, cap * sizeof(*q));
		if (q != NULL) {
			fs->release_q = q;
			fs->release_cap = cap;
		}
	}
	if (fs->release_n < fs->release_cap) {
		fs->release_q[fs->release_n++] = ino;
		/* The releaser waits for the first, then for a full list
		 * (or its window's end). */
		if (fs->release_n == 1 ||
		    fs->release_n == FS_RELEASE_LIST_MAX)
			pthread_cond_signal(&fs->release_cond);
	} else {
		fuse_log(FUSE_LOG_ERR,
			 "raftfs: no memory to release orphan inode %llu\n",
			 (unsigned long long)ino);
	}
	pthread_mutex_unlock(&fs->release_lock);
}

/* Unpin one of nopen or unlinking; releases when nothing is left. */
static void unpin(struct fs_fuse *fs, uint64_t ino, bool open)
{
	struct fs_fuse_inode *in;
	bool settled = false;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	if (in != NULL) {
		uint64_t *count = open ? &in->nopen : &in->unlinking;
		if (*count > 0)
			(*count)--;
		settled = in->nopen == 0 && in->unlinking == 0;
		maybe_drop(fs, in);
	}
	pthread_mutex_unlock(&fs->inodes_lock);
	if (settled)
		release_if_held(fs, ino);
}

void fs_fuse_inode_close(struct fs_fuse *fs, uint64_t ino)
{
	unpin(fs, ino, true);
}

struct held_list {
	uint64_t *v;
	size_t n;
	size_t cap;
};

/* A directory removed while the kernel still knows it: keep its last
 * attributes for getattr, opendir and readdir (docs/FUSE.md). */
static void dir_freed(struct fs_fuse *fs, const struct fs_store_event *ev)
{
	struct fs_fuse_inode *in;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ev->ino, false);
	if (in != NULL && in->nlookup > 0 && in->last == NULL)
		in->last = malloc(sizeof(*in->last));
	if (in != NULL && in->last != NULL)
		*in->last = ev->attr;
	pthread_mutex_unlock(&fs->inodes_lock);
}

static int collect(void *ctx, uint64_t ino)
{
	struct held_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ino;
	return 0;
}

/* After a snapshot install: release the orphans this node holds in the
 * new state but has not open (it never applied the commands that made
 * them). Collected first: the store's lock is held during the walk. */
static void installed(struct fs_fuse *fs)
{
	struct held_list l = {NULL, 0, 0};

	if (fs_orphans_held_by(fs->store, fs->prop.node_id, collect, &l) != 0)
		fuse_log(FUSE_LOG_ERR, "raftfs: cannot list the orphans held "
			 "after a snapshot install\n");
	for (size_t i = 0; i < l.n; i++)
		fs_fuse_inode_event(fs, &(struct fs_store_event){
						.kind = FS_EVENT_ORPHANED,
						.ino = l.v[i]});
	free(l.v);
}

bool fs_fuse_inode_last(struct fs_fuse *fs, uint64_t ino, struct fs_attr *a)
{
	struct fs_fuse_inode *in;
	bool found = false;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	if (in != NULL && in->last != NULL) {
		*a = *in->last;
		found = true;
	}
	pthread_mutex_unlock(&fs->inodes_lock);
	return found;
}

void fs_fuse_inode_event(void *ctx, const struct fs_store_event *ev)
{
	struct fs_fuse *fs = ctx;
	struct fs_fuse_inode *in;
	uint64_t ino = ev->ino;
	bool busy;

	if (ev->kind == FS_EVENT_DIR_FREED) {
		dir_freed(fs, ev);
		return;
	}
	if (ev->kind == FS_EVENT_CHANGED) {
		fs_fuse_notify_event(fs, ev);
		return;
	}
	if (ev->kind == FS_EVENT_INSTALLED) {
		installed(fs);
		fs_fuse_notify_event(fs, ev);
		fs_fuse_lock_event(fs, ev);
		return;
	}
	if (ev->kind == FS_EVENT_LOCK_GRANTED) {
		fs_fuse_lock_event(fs, ev);
		return;
	}
	if (ev->kind != FS_EVENT_ORPHANED)
		return;
	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	busy = in != NULL && (in->nopen > 0 || in->unlinking > 0);
	pthread_mutex_unlock(&fs->inodes_lock);
	/* Busy: the last close (or the end of this node's own unlink)
	 * releases it. */
	if (!busy)
		release_if_held(fs, ino);
}

void fs_fuse_inodes_data_changed(struct fs_fuse *fs, uint64_t ino)
{
	struct fs_fuse_inode *in;

	pthread_mutex_lock(&fs->inodes_lock);
	if (ino != 0) {
		in = find(fs, ino, false);
		if (in != NULL)
			in->data_ver++;
	} else {
		for (size_t b = 0; b < FS_FUSE_INODE_BUCKETS; b++)
			for (in = fs->inodes[b]; in != NULL; in = in->next)
				in->data_ver++;
	}
	pthread_mutex_unlock(&fs->inodes_lock);
}

bool fs_fuse_inode_keep_cache(struct fs_fuse *fs, uint64_t ino)
{
	struct fs_fuse_inode *in;
	bool keep = false;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	if (in != NULL) {
		keep = in->pages && in->pages_ver == in->data_ver;
		in->pages = true;
		in->pages_ver = in->data_ver;
	}
	pthread_mutex_unlock(&fs->inodes_lock);
	return keep;
}

bool fs_fuse_inode_known(struct fs_fuse *fs, uint64_t ino, bool *open)
{
	struct fs_fuse_inode *in;
	bool known;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	known = in != NULL && (in->nlookup > 0 || in->nopen > 0);
	if (open != NULL)
		*open = in != NULL && in->nopen > 0;
	pthread_mutex_unlock(&fs->inodes_lock);
	return known || ino == FS_ROOT_INO; /* the kernel always has root */
}

void fs_fuse_inodes_each_known(struct fs_fuse *fs,
			       void (*fn)(void *ctx, uint64_t ino), void *ctx)
{
	struct held_list l = {NULL, 0, 0};
	bool short_of_memory = false;

	/* Collected first: fn sends notifications, which must not run
	 * under the table's lock. */
	pthread_mutex_lock(&fs->inodes_lock);
	short_of_memory |= collect(&l, FS_ROOT_INO) != 0;
	for (size_t b = 0; b < FS_FUSE_INODE_BUCKETS; b++)
		for (struct fs_fuse_inode *in = fs->inodes[b]; in != NULL;
		     in = in->next)
			if (in->ino != FS_ROOT_INO &&
			    (in->nlookup > 0 || in->nopen > 0))
				short_of_memory |= collect(&l, in->ino) != 0;
	pthread_mutex_unlock(&fs->inodes_lock);
	if (short_of_memory)
		fuse_log(FUSE_LOG_ERR, "raftfs: no memory to list the inodes "
			 "to invalidate; some stay cached until their "
			 "timeout\n");
	for (size_t i = 0; i < l.n; i++)
		fn(ctx, l.v[i]);
	free(l.v);
}

bool fs_fuse_inode_unlink_begin(struct fs_fuse *fs, uint64_t ino)
{
	struct fs_fuse_inode *in;
	bool held = false;

	pthread_mutex_lock(&fs->inodes_lock);
	in = find(fs, ino, false);
	if (in != NULL && in->nopen > 0) {
		in->unlinking++;
		held = true;
	}
	pthread_mutex_unlock(&fs->inodes_lock);
	return held;
}

void fs_fuse_inode_unlink_end(struct fs_fuse *fs, uint64_t ino)
{
	unpin(fs, ino, false);
}
