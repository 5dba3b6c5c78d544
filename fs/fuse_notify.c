/*
 * The notifier: tells the kernel what applied commands changed in what it
 * may cache (docs/FUSE.md, "Kernel caches"). The store's hook (apply
 * thread) queues what must be invalidated; this file's thread alone sends
 * notify_inval_inode, notify_inval_entry and notify_delete.
 *
 * Why a thread of its own: notify_inval_entry takes the parent directory's
 * lock in the kernel, which a request (lookup, create, unlink, rename, ...)
 * may hold while it waits for its answer, and that answer comes from the
 * apply or proposer thread. So apply only queues and never waits, and no
 * reply that may come while the kernel holds a directory lock waits for
 * the notifier: only open and opendir (and lock grants) wait, and they do
 * so without blocking a thread (fs_fuse_notify_then runs their reply here).
 *
 * The queue coalesces: one item per inode and one per (directory, name),
 * so a burst of writes to one file costs one invalidation. It never
 * fills: past NQ_MAX items, or when memory runs out, it drops the items
 * and remembers to invalidate everything the kernel knows instead.
 */

#include "fs/fuse_fe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Most queued items before the queue turns into "everything". */
#define NQ_MAX 65536u
#define NQ_BUCKETS 4096u

struct nq_item {
	struct nq_item *hnext; /* hash chain */
	struct nq_item *next;  /* FIFO */
	bool entry;            /* an entry (dir, name), else an inode */
	bool data;             /* inode: its pages too */
	uint64_t ino;          /* inode, or the entry's directory */
	uint64_t removed;      /* entry: the inode it no longer names, or 0 */
	uint32_t name_len;
	char name[];           /* entry: the name, NUL-terminated */
};

struct nq_waiter {
	struct nq_waiter *next;
	uint64_t index;
	void (*fn)(void *arg);
	void *arg;
};

struct fs_fuse_notifier {
	/* Protects everything below but thread/started. */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the thread: work or stop */
	pthread_cond_t done; /* blocked waiters: issued moved */
	struct nq_item *buckets[NQ_BUCKETS];
	struct nq_item *head, *tail;
	size_t n;
	bool all;         /* invalidate every inode the kernel knows */
	bool busy;        /* the thread is sending a batch */
	bool stop;
	uint64_t told;    /* highest index the hook told about */
	uint64_t issued;  /* every invalidation up to this index is sent */
	struct nq_waiter *waiters;
	struct fuse_session *se; /* set when the thread starts */
	pthread_t thread;
	bool started;
	/* Counters (under lock): what was sent, what the kernel did not
	 * know (ENOENT). */
	uint64_t sent, unknown;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t hash(bool entry, uint64_t ino, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ ino ^ (entry ? 0x5bd1e995u : 0);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 40) % NQ_BUCKETS;
}

/* Drop every queued item (lock held). */
static void drop_items(struct fs_fuse_notifier *q)
{
	struct nq_item *it = q->head, *next;

	for (; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	q->head = q->tail = NULL;
	q->n = 0;
	memset(q->buckets, 0, sizeof(q->buckets));
}

/* Queue (or merge into the queued) item for ino or (ino, name); lock
 * held. */
static void enqueue(struct fs_fuse_notifier *q, bool entry, uint64_t ino,
		    const char *name, uint32_t len, bool data, uint64_t removed)
{
	size_t b;
	struct nq_item *it;

	if (q->all)
		return; /* everything is invalidated anyway */
	b = hash(entry, ino, name, len);
	for (it = q->buckets[b]; it != NULL; it = it->hnext)
		if (it->entry == entry && it->ino == ino &&
		    it->name_len == len &&
		    (len == 0 || memcmp(it->name, name, len) == 0))
			break;
	if (it != NULL) {
		it->data |= data;
		it->removed = removed; /* the latest state of the name */
		return;
	}
	if (q->n >= NQ_MAX ||
	    (it = calloc(1, sizeof(*it) + (entry ? len + 1 : 1))) == NULL) {
		drop_items(q);
		q->all = true;
		return;
	}
	it->entry = entry;
	it->ino = ino;
	it->data = data;
	it->removed = removed;
	it->name_len = entry ? len : 0;
	if (entry)
		memcpy(it->name, name, len);
	it->hnext = q->buckets[b];
	q->buckets[b] = it;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
}

/* Whether every invalidation up to index was sent (lock held). */
static bool caught_up(const struct fs_fuse_notifier *q, uint64_t index)
{
	return q->stop || q->issued >= index ||
	       (q->head == NULL && !q->all && !q->busy);
}

/* ---------------------------------------------------------------------- */
/* The hook (apply thread): decide what to queue. Never blocks.            */

static bool listed(const uint64_t *v, uint32_t n, uint64_t ino)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == ino)
			return true;
	return false;
}

void fs_fuse_notify_event(struct fs_fuse *fs, const struct fs_store_event *ev)
{
	struct fs_fuse_notifier *q = fs->notifier;
	bool other = ev->node != fs->prop.node_id;
	bool append_here = false;
	bool known[FS_CHANGE_INODES_MAX];
	bool open[FS_CHANGE_INODES_MAX];
	bool dir_known[FS_CHANGE_ENTRIES_MAX];

	if (q == NULL)
		return;
	if (ev->kind == FS_EVENT_INSTALLED) {
		/* The store jumped: every page and, in relaxed mode, every
		 * attribute and entry the kernel holds may be stale. */
		fs_fuse_inodes_data_changed(fs, 0);
		pthread_mutex_lock(&q->lock);
		drop_items(q);
		q->all = true;
		if (ev->index > q->told)
			q->told = ev->index;
		pthread_cond_signal(&q->wake);
		pthread_mutex_unlock(&q->lock);
		return;
	}
	if (ev->kind != FS_EVENT_CHANGED)
		return;
	/* Contents changed: the next open of those files starts with an
	 * empty page cache (fs_fuse_inode_keep_cache). */
	for (uint32_t i = 0; i < ev->n_data; i++)
		fs_fuse_inodes_data_changed(fs, ev->data[i]);
	if (ev->all)
		fs_fuse_inodes_data_changed(fs, 0);
	/* What the kernel knows of the inodes and directories touched. */
	for (uint32_t i = 0; i < ev->n_inodes; i++)
		known[i] = fs_fuse_inode_known(fs, ev->inodes[i], &open[i]);
	for (uint32_t i = 0; i < ev->n_entries; i++)
		dir_known[i] = fs_fuse_inode_known(fs, ev->entries[i].dir,
						   NULL);
	/* An append from this node lands where apply finds the end, which
	 * need not be where this kernel put it in its pages. */
	append_here = !other && ev->append;

	pthread_mutex_lock(&q->lock);
	if (ev->all && (other || fs->relaxed)) {
		drop_items(q);
		q->all = true;
	}
	for (uint32_t i = 0; i < ev->n_inodes && !ev->all; i++) {
		uint64_t ino = ev->inodes[i];
		bool data = listed(ev->data, ev->n_data, ino);
		if (!known[i])
			continue;
		if (!other && !(append_here && data))
			continue; /* the kernel saw its own change */
		if (fs->relaxed)
			enqueue(q, false, ino, NULL, 0, data, 0);
		else if (data && open[i])
			/* Default mode: attributes are never cached, and
			 * files not open here are checked at their next
			 * open; pages of open files must go now. */
			enqueue(q, false, ino, NULL, 0, true, 0);
	}
	for (uint32_t i = 0; i < ev->n_entries && !ev->all; i++) {
		const struct fs_change_entry *e = &ev->entries[i];
		if (!fs->relaxed || !other || !dir_known[i])
			continue;
		enqueue(q, true, e->dir, e->name, e->name_len, false,
			e->removed);
	}
	if (ev->index > q->told)
		q->told = ev->index;
	if (q->head != NULL || q->all)
		pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

/* ---------------------------------------------------------------------- */
/* The thread.                                                             */

/* Count one notification's outcome; ENOENT (the kernel does not know the
 * inode or name any more) is normal. */
static void count(struct fs_fuse *fs, int rc, const char *what, uint64_t ino)
{
	struct fs_fuse_notifier *q = fs->notifier;

	pthread_mutex_lock(&q->lock);
	q->sent++;
	if (rc == -ENOENT)
		q->unknown++;
	pthread_mutex_unlock(&q->lock);
	if (rc != 0 && rc != -ENOENT && rc != -ENOTCONN && rc != -ENODEV)
		fuse_log(FUSE_LOG_WARNING,
			 "raftfs: %s of inode %llu failed: %s\n", what,
			 (unsigned long long)ino, strerror(-rc));
}

/*
 * The size of a regular file whose contents changed, handed to the kernel
 * right after its pages are dropped: notify_store of its last byte (a
 * zero-length store moves nothing since Linux 6.13), which raises i_size.
 *
 * Why: every notify_inval_inode makes the kernel discard the reply to any
 * GETATTR it sent before it (its attr_version check), and a read(2) whose
 * GETATTR was discarded goes on with the old i_size: a read past that size
 * answers end of file without asking us, although the file grew before
 * the read began (another node's write applied here while the read's
 * GETATTR waited for its barrier). The store raises i_size under the same
 * lock as it bumps attr_version, so a reply it makes the kernel discard
 * leaves the new size. It comes after the invalidation, not before: raised
 * first, the size would let a read reach the old partial last page before
 * it is dropped (zeros where the new bytes are); after, the stored byte
 * lands in a page that is not up to date, or in one a read just fetched
 * (which holds that byte already). Both are read from the store before
 * the invalidation is sent, so the two notifications go out back to back.
 * The store only ever raises i_size: a file that shrank is found out by
 * the next GETATTR or by a short read, both of which ask us.
 */
struct tail {
	uint64_t size;
	unsigned char last;
};

static bool tail_read(struct fs_fuse *fs, uint64_t ino, struct tail *t)
{
	struct fs_attr a;
	size_t n = 0;

	if (fs_getattr(fs->store, ino, &a) != 0 || !S_ISREG(a.mode) ||
	    a.size == 0 ||
	    fs_read(fs->store, ino, a.size - 1, 1, &t->last, &n) != 0 ||
	    n != 1)
		return false;
	t->size = a.size;
	return true;
}

static void tail_store(struct fs_fuse *fs, uint64_t ino, struct tail *t)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(1);
	int rc;

	bv.buf[0].mem = &t->last;
	rc = fuse_lowlevel_notify_store(fs->notifier->se, ino,
					(off_t)(t->size - 1), &bv, 0);
	count(fs, rc, "notify_store", ino);
}

static void send_item(struct fs_fuse *fs, const struct nq_item *it)
{
	struct fuse_session *se = fs->notifier->se;
	int rc;

	if (!it->entry) {
		struct tail t;
		bool grow = it->data && tail_read(fs, it->ino, &t);
		/* off 0, len 0: every page; off -1: the attributes only. */
		rc = fuse_lowlevel_notify_inval_inode(se, it->ino,
						      it->data ? 0 : -1, 0);
		count(fs, rc, "inval_inode", it->ino);
		if (grow && rc == 0)
			tail_store(fs, it->ino, &t);
		return;
	}
	if (it->removed != 0) {
		rc = fuse_lowlevel_notify_delete(se, it->ino, it->removed,
						 it->name, it->name_len);
		count(fs, rc, "notify_delete", it->ino);
		if (rc != -ENOENT)
			return;
		/* The name now names another inode, or the kernel does
		 * not have it: drop whatever it has under the name. */
	}
	rc = fuse_lowlevel_notify_inval_entry(se, it->ino, it->name,
					      it->name_len);
	count(fs, rc, "inval_entry", it->ino);
}

struct names {
	char (*v)[FS_NAME_MAX + 1];
	size_t n, cap;
};

static int collect_name(void *ctx, const struct fs_dirent *e)
{
	struct names *l = ctx;

	if (e->name_len > FS_NAME_MAX)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		void *v = realloc(l->v, cap * sizeof(*l->v));
		if (v == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n], e->name, e->name_len);
	l->v[l->n][e->name_len] = '\0';
	l->n++;
	return 0;
}

/* One inode the kernel knows, after the store jumped (a snapshot was
 * installed): its attributes and pages; in relaxed mode, for a directory,
 * also every name it has in the store now (collected first: the store's
 * lock is held while it lists, and a notification may wait for a
 * directory lock whose holder waits for apply). */
static void send_inode(void *ctx, uint64_t ino)
{
	struct fs_fuse *fs = ctx;
	struct nq_item it = {.ino = ino, .data = true};
	struct names l = {NULL, 0, 0};
	struct fs_attr a;

	send_item(fs, &it);
	if (!fs->relaxed || fs_getattr(fs->store, ino, &a) != 0 ||
	    !S_ISDIR(a.mode))
		return;
	if (fs_readdir(fs->store, ino, 0, collect_name, &l) != 0)
		fuse_log(FUSE_LOG_WARNING, "raftfs: cannot list directory "
			 "%llu to invalidate its names\n",
			 (unsigned long long)ino);
	for (size_t i = 0; i < l.n; i++) {
		int rc = fuse_lowlevel_notify_inval_entry(
			fs->notifier->se, ino, l.v[i], strlen(l.v[i]));
		count(fs, rc, "inval_entry", ino);
	}
	free(l.v);
}

/* Everything the kernel knows (after a snapshot install, or when the
 * queue overflowed). */
static void send_all(struct fs_fuse *fs)
{
	fs_fuse_inodes_each_known(fs, send_inode, fs);
}

static struct nq_waiter *take_waiters(struct fs_fuse_notifier *q)
{
	struct nq_waiter **pp = &q->waiters, *ready = NULL, *w;

	while ((w = *pp) != NULL) {
		if (caught_up(q, w->index)) {
			*pp = w->next;
			w->next = ready;
			ready = w;
		} else {
			pp = &w->next;
		}
	}
	return ready;
}

static void run_waiters(struct nq_waiter *w)
{
	while (w != NULL) {
		struct nq_waiter *next = w->next;
		w->fn(w->arg);
		free(w);
		w = next;
	}
}

static void *notifier_main(void *arg)
{
	struct fs_fuse *fs = arg;
	struct fs_fuse_notifier *q = fs->notifier;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct nq_item *batch, *it, *next;
		struct nq_waiter *ready;
		uint64_t upto;
		bool all;

		ready = take_waiters(q);
		if (ready != NULL) {
			pthread_mutex_unlock(&q->lock);
			run_waiters(ready);
			pthread_mutex_lock(&q->lock);
			continue;
		}
		if (q->stop)
			break;
		if (q->head == NULL && !q->all) {
			q->issued = q->told;
			pthread_cond_broadcast(&q->done);
			pthread_cond_wait(&q->wake, &q->lock);
			continue;
		}
		/* Take the whole queue: the hook starts a new one. */
		batch = q->head;
		all = q->all;
		upto = q->told;
		q->head = q->tail = NULL;
		q->n = 0;
		q->all = false;
		memset(q->buckets, 0, sizeof(q->buckets));
		q->busy = true;
		pthread_mutex_unlock(&q->lock);
		if (all)
			send_all(fs);
		for (it = batch; it != NULL; it = next) {
			next = it->next;
			if (!all)
				send_item(fs, it);
			free(it);
		}
		pthread_mutex_lock(&q->lock);
		q->busy = false;
		if (upto > q->issued)
			q->issued = upto;
		pthread_cond_broadcast(&q->done);
	}
	/* Stopping: whoever waited was answered above (caught_up is true
	 * once stopping). */
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Life and waiting.                                                       */

int fs_fuse_notify_init(struct fs_fuse *fs)
{
	struct fs_fuse_notifier *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (q == NULL)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->done, &ca);
	pthread_condattr_destroy(&ca);
	fs->notifier = q;
	return 0;
}

int fs_fuse_notify_start(struct fs_fuse *fs)
{
	struct fs_fuse_notifier *q = fs->notifier;
	int rc;

	q->se = fs->se;
	rc = pthread_create(&q->thread, NULL, notifier_main, fs);
	if (rc != 0)
		return -rc;
	q->started = true;
	return 0;
}

void fs_fuse_notify_stop(struct fs_fuse *fs)
{
	struct fs_fuse_notifier *q = fs->notifier;
	struct nq_waiter *ready;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->wake);
	pthread_cond_broadcast(&q->done);
	pthread_mutex_unlock(&q->lock);
	if (q->started)
		pthread_join(q->thread, NULL);
	q->started = false;
	/* Without the thread (never started, or gone): answer the rest. */
	pthread_mutex_lock(&q->lock);
	ready = take_waiters(q);
	pthread_mutex_unlock(&q->lock);
	run_waiters(ready);
}

void fs_fuse_notify_free(struct fs_fuse *fs)
{
	struct fs_fuse_notifier *q = fs->notifier;

	if (q == NULL)
		return;
	if (fs->log != NULL && q->sent > 0) {
		char line[160];
		snprintf(line, sizeof(line),
			 "fuse: %llu cache invalidations sent (%llu for what "
			 "the kernel no longer had)",
			 (unsigned long long)q->sent,
			 (unsigned long long)q->unknown);
		fs->log(fs->log_ctx, 3, line);
	}
	drop_items(q);
	pthread_cond_destroy(&q->done);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->lock);
	free(q);
	fs->notifier = NULL;
}

uint64_t fs_fuse_notify_told(struct fs_fuse *fs)
{
	struct fs_fuse_notifier *q = fs->notifier;
	uint64_t told;

	pthread_mutex_lock(&q->lock);
	told = q->told;
	pthread_mutex_unlock(&q->lock);
	return told;
}

void fs_fuse_notify_then(struct fs_fuse *fs, uint64_t index,
			 void (*fn)(void *arg), void *arg)
{
	struct fs_fuse_notifier *q = fs->notifier;
	struct nq_waiter *w;

	pthread_mutex_lock(&q->lock);
	if (caught_up(q, index) || !q->started ||
	    (w = malloc(sizeof(*w))) == NULL) {
		/* Nothing to wait for (or nobody to wait with, or no
		 * memory: the open goes ahead, as it did before the cache
		 * existed; auto_inval_data still checks the pages). */
		pthread_mutex_unlock(&q->lock);
		fn(arg);
		return;
	}
	*w = (struct nq_waiter){q->waiters, index, fn, arg};
	q->waiters = w;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

int fs_fuse_notify_wait(struct fs_fuse *fs, uint64_t index,
			uint64_t deadline_ms)
{
	struct fs_fuse_notifier *q = fs->notifier;
	int rc = 0;

	if (q == NULL)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (!caught_up(q, index)) {
		struct timespec ts;
		uint64_t now = now_ms();
		if (now >= deadline_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)((deadline_ms - now) / 1000u);
		ts.tv_nsec += (long)((deadline_ms - now) % 1000u) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q->done, &q->lock, &ts);
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}
