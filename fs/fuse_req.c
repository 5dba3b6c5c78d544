/*
 * One FUSE request's life. A handler validates, then either proposes a
 * command or asks for a read barrier, and returns: the answer comes from
 * the proposer's callback, or from the timer thread when the operation
 * timeout passes first. Whoever claims the request (takes it off the
 * pending list under fs->lock) is the only one to answer it, so each
 * request is answered exactly once and a late completion after a timeout
 * answers nothing.
 */

#include "fs/fuse_fe.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* How often the timer looks at the oldest request at most. */
#define TIMER_TICK_MS 50u

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Drop one reference; the last frees r. */
static void req_unref(struct fs_fuse_req *r, int n)
{
	struct fs_fuse *fs = r->fs;
	bool last;

	pthread_mutex_lock(&fs->lock);
	r->refs -= n;
	assert(r->refs >= 0);
	last = r->refs == 0;
	if (last) {
		fs->n_live--;
		/* Only fs_fuse_req_stop waits for n_live: the timer thread
		 * sleeps on the same condition, and a wake-up per request
		 * would cost every request a context switch. */
		if (fs->draining)
			pthread_cond_broadcast(&fs->cond);
	}
	pthread_mutex_unlock(&fs->lock);
	if (last)
		free(r);
}

/* Take r off the pending list: true when the caller is the one to
 * answer it (the list's reference passes to the caller). */
static bool req_claim(struct fs_fuse_req *r)
{
	struct fs_fuse *fs = r->fs;
	bool mine;

	pthread_mutex_lock(&fs->lock);
	mine = !r->answered;
	if (mine) {
		r->answered = true;
		r->prev->next = r->next;
		r->next->prev = r->prev;
		r->prev = r->next = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	return mine;
}

static struct fs_fuse_req *req_alloc(struct fs_fuse *fs, fuse_req_t req)
{
	struct fs_fuse_req *r = calloc(1, sizeof(*r));
	struct fs_fuse_req *head;

	if (r == NULL)
		return NULL;
	r->fs = fs;
	r->req = req;
	r->deadline_ms = now_ms() + fs->op_timeout_ms;
	/* One reference for the answerer, one for the proposer. */
	r->refs = 2;
	pthread_mutex_lock(&fs->lock);
	head = fs->pending;
	r->next = head;
	r->prev = head->prev;
	head->prev->next = r;
	head->prev = r;
	fs->n_live++;
	pthread_mutex_unlock(&fs->lock);
	return r;
}

struct fs_fuse_req *fs_fuse_req_new(fuse_req_t req)
{
	struct fs_fuse *fs = fuse_req_userdata(req);
	struct fs_fuse_req *r = req_alloc(fs, req);

	if (r == NULL)
		fuse_reply_err(req, ENOMEM);
	return r;
}

struct fs_fuse_req *fs_fuse_req_named(fuse_req_t req, uint64_t ino,
				      const char *name)
{
	struct fs_fuse *fs = fuse_req_userdata(req);
	struct fs_fuse_req *r;
	int rc = fs_fuse_name_check(fs, name);

	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return NULL;
	}
	r = fs_fuse_req_new(req);
	if (r == NULL)
		return NULL;
	r->ino = ino;
	r->name_len = (uint32_t)strlen(name);
	memcpy(r->name, name, r->name_len + 1);
	return r;
}

struct fs_fuse_req *fs_fuse_req_internal(struct fs_fuse *fs)
{
	return req_alloc(fs, NULL);
}

void fs_fuse_req_fail(struct fs_fuse_req *r, int err)
{
	if (req_claim(r) && r->req != NULL)
		fuse_reply_err(r->req, err);
	req_unref(r, 2);
}

static void on_applied(void *arg, int err, const struct fs_result *res)
{
	struct fs_fuse_req *r = arg;
	bool mine = req_claim(r);

	r->finish(r, err, res, mine && r->req != NULL);
	req_unref(r, mine ? 2 : 1);
}

void fs_fuse_propose(struct fs_fuse_req *r, struct fs_cmd *c,
		     void (*finish)(struct fs_fuse_req *r, int err,
				    const struct fs_result *res, bool answer))
{
	struct fs_fuse *fs = r->fs;
	uint8_t *buf = NULL;
	size_t size;
	long n;
	int rc;

	r->finish = finish;
	if (r->req != NULL) {
		const struct fuse_ctx *ctx = fuse_req_ctx(r->req);
		c->uid = ctx->uid;
		c->gid = ctx->gid;
	}
	/* Valid before an id is taken: an id once given must be submitted.
	 * The size does not depend on the proposal's values. */
	c->proposal = (struct raft_proposal){{1, 1, 1}, 1};
	size = fs_cmd_encoded_size(c);
	if (size == 0) {
		rc = -EINVAL;
		goto fail;
	}
	buf = malloc(size);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = fs->prop.begin(fs->prop.ctx, &c->proposal, &c->clock);
	if (rc != 0)
		goto fail;
	n = fs_cmd_encode(c, buf, size);
	assert(n == (long)size); /* validated above with the same fields */
	r->id = c->proposal.id;
	rc = fs->prop.submit(fs->prop.ctx, &c->proposal.id, buf, size,
			     on_applied, r);
	if (rc == 0) {
		free(buf);
		return;
	}
fail:
	/* Not proposed: the outcome is known, nothing changed. */
	free(buf);
	r->finish(r, rc, NULL, false);
	fs_fuse_req_fail(r, -rc);
}

static void on_barrier(void *arg, int err)
{
	struct fs_fuse_req *r = arg;
	bool mine = req_claim(r);

	/* Relaxed mode: the store is at least as new as the state when
	 * this barrier began (reads may reuse it, fs_fuse_read). */
	if (err == 0 && r->barrier_ms != 0) {
		uint64_t seen = atomic_load(&r->fs->fresh_ms);
		while (seen < r->barrier_ms &&
		       !atomic_compare_exchange_weak(&r->fs->fresh_ms, &seen,
						     r->barrier_ms))
			;
	}

	if (mine && err != 0)
		fuse_reply_err(r->req, -err);
	else if (mine)
		r->read(r);
	req_unref(r, mine ? 2 : 1);
}

void fs_fuse_read(struct fs_fuse_req *r, void (*read)(struct fs_fuse_req *r))
{
	struct fs_fuse *fs = r->fs;
	int rc;

	r->read = read;
	if (fs->relaxed) {
		/* Relaxed mode: a read other than an open's may use the
		 * local store as it is when a barrier began less than
		 * FS_FUSE_FRESH_MS ago (staleness within that, below the
		 * cache timeout; docs/FUSE.md). open and opendir always
		 * take their own barrier (close-to-open). */
		uint64_t now = now_ms();
		if (!r->fresh && now < atomic_load(&fs->fresh_ms) +
					       FS_FUSE_FRESH_MS) {
			on_barrier(r, 0);
			return;
		}
		r->barrier_ms = now;
	}
	rc = fs->prop.barrier(fs->prop.ctx, on_barrier, r);
	if (rc != 0)
		fs_fuse_req_fail(r, -rc);
}

/* ---------------------------------------------------------------------- */
/* The timer thread.                                                       */

static void *timer_thread(void *arg)
{
	struct fs_fuse *fs = arg;
	uint64_t expired = 0; /* answered EIO since the last log line */

	pthread_mutex_lock(&fs->lock);
	while (!fs->stopping) {
		struct fs_fuse_req *r = fs->pending->next;
		struct timespec ts;

		if (r != fs->pending && r->deadline_ms <= now_ms()) {
			/* Claim it: the list's reference is ours now. */
			r->answered = true;
			r->prev->next = r->next;
			r->next->prev = r->prev;
			r->prev = r->next = NULL;
			pthread_mutex_unlock(&fs->lock);
			if (r->req != NULL) {
				fuse_reply_err(r->req, EIO);
				expired++;
			}
			req_unref(r, 1);
			pthread_mutex_lock(&fs->lock);
			continue;
		}
		if (expired > 0 && fs->log != NULL) {
			/* One line per pass: a partition times out many
			 * requests at once. */
			char line[128];
			snprintf(line, sizeof(line),
				 "fuse: %llu request(s) timed out after %u ms "
				 "(answered EIO)",
				 (unsigned long long)expired, fs->op_timeout_ms);
			pthread_mutex_unlock(&fs->lock);
			fs->log(fs->log_ctx, 1, line);
			pthread_mutex_lock(&fs->lock);
			expired = 0;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)TIMER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->cond, &fs->lock, &ts);
	}
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

int fs_fuse_req_start(struct fs_fuse *fs)
{
	int rc;

	fs->pending = calloc(1, sizeof(*fs->pending));
	if (fs->pending == NULL)
		return -ENOMEM;
	fs->pending->next = fs->pending->prev = fs->pending;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	rc = pthread_create(&fs->timer, NULL, timer_thread, fs);
	if (rc != 0)
		return -rc;
	fs->timer_started = true;
	return 0;
}

void fs_fuse_req_stop(struct fs_fuse *fs)
{
	struct timespec ts;
	bool drained;

	if (fs->pending == NULL)
		return;
	/* Every request gets its callback: wait for them, bounded. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2 * (time_t)(fs->op_timeout_ms / 1000u) + 1;
	pthread_mutex_lock(&fs->lock);
	fs->draining = true;
	while (fs->n_live > 0 &&
	       pthread_cond_timedwait(&fs->cond, &fs->lock, &ts) == 0)
		;
	drained = fs->n_live == 0;
	fs->stopping = true;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	if (fs->timer_started)
		pthread_join(fs->timer, NULL);
	if (!drained) {
		/* The proposer still holds requests: they stay allocated
		 * (its callbacks would use them), and so does our state. */
		fuse_log(FUSE_LOG_ERR,
			 "raftfs: %llu requests still with the proposer at "
			 "unmount\n",
			 (unsigned long long)fs->n_live);
		return;
	}
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->lock);
	free(fs->pending);
	fs->pending = NULL;
}

/* ---------------------------------------------------------------------- */
/* Replies.                                                                */

void fs_fuse_attr_to_stat(const struct fs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = a->blksize;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

double fs_fuse_attr_timeout(const struct fs_fuse *fs)
{
	/* The default visibility contract: the kernel caches nothing that
	 * could go stale unseen. Relaxed: the notifier invalidates what
	 * changes, the timeout bounds what it might miss. */
	return fs->relaxed ? fs->cache_timeout : 0.0;
}

void fs_fuse_entry_param(const struct fs_fuse *fs, const struct fs_attr *a,
			 struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = a->generation;
	fs_fuse_attr_to_stat(a, &e->attr);
	e->attr_timeout = fs_fuse_attr_timeout(fs);
	e->entry_timeout = fs_fuse_attr_timeout(fs);
}

void fs_fuse_reply_entry(struct fs_fuse *fs, fuse_req_t req,
			 const struct fs_attr *a)
{
	struct fuse_entry_param e;
	int rc;

	fs_fuse_entry_param(fs, a, &e);
	/* The reference exists before the kernel can forget it. */
	rc = fs_fuse_inode_ref(fs, a->ino, 1);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0)
		fs_fuse_inode_forget(fs, a->ino, 1);
}

/* An open reply waiting for the notifier (relaxed mode). */
struct open_reply {
	struct fs_fuse *fs;
	fuse_req_t req;
	struct fuse_file_info fi;
	uint64_t ino;
	bool counted;
};

static void open_reply_send(void *arg)
{
	struct open_reply *o = arg;

	if (fuse_reply_open(o->req, &o->fi) != 0 && o->counted)
		fs_fuse_inode_close(o->fs, o->ino);
	free(o);
}

void fs_fuse_reply_open(struct fs_fuse_req *r, bool counted)
{
	struct open_reply *o;

	/* Default mode caches no attributes or entries, and the pages were
	 * settled by keep_cache: nothing to wait for. */
	if (!r->fs->relaxed || (o = malloc(sizeof(*o))) == NULL) {
		if (fuse_reply_open(r->req, &r->fi) != 0 && counted)
			fs_fuse_inode_close(r->fs, r->ino);
		return;
	}
	*o = (struct open_reply){r->fs, r->req, r->fi, r->ino, counted};
	/* Close-to-open: what was applied before the barrier is
	 * invalidated before the program sees the handle. */
	fs_fuse_notify_then(r->fs, fs_fuse_notify_told(r->fs),
			    open_reply_send, o);
}

int fs_fuse_name_check(const struct fs_fuse *fs, const char *name)
{
	size_t len = strnlen(name, FS_NAME_MAX + 1);

	if (len == 0)
		return -EINVAL;
	if (len > fs->name_max)
		return -ENAMETOOLONG;
	return 0;
}

void fs_fuse_finish_err(struct fs_fuse_req *r, int err,
			const struct fs_result *res, bool answer)
{
	if (answer)
		fuse_reply_err(r->req, err != 0 ? -err : res->err);
}

void fs_fuse_finish_entry(struct fs_fuse_req *r, int err,
			  const struct fs_result *res, bool answer)
{
	if (!answer)
		return;
	if (err != 0 || res->err != 0)
		fuse_reply_err(r->req, err != 0 ? -err : res->err);
	else
		fs_fuse_reply_entry(r->fs, r->req, &res->attr);
}

void fs_fuse_finish_attr(struct fs_fuse_req *r, int err,
			 const struct fs_result *res, bool answer)
{
	struct stat st;

	if (!answer)
		return;
	if (err != 0 || res->err != 0) {
		fuse_reply_err(r->req, err != 0 ? -err : res->err);
		return;
	}
	fs_fuse_attr_to_stat(&res->attr, &st);
	fuse_reply_attr(r->req, &st, fs_fuse_attr_timeout(r->fs));
}
