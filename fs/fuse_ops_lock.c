/*
 * Locks through FUSE (docs/LOCKS.md): getlk, setlk (POSIX, fcntl) and
 * flock, the release of a closing owner's locks (flush, release), and
 * blocked requests.
 *
 * A grant is answered only after this node applied it and the kernel was
 * told to drop what it cached of the changes before it (reply_granted).
 *
 * Every change is a LOCK command through the log, answered once this node
 * applied it. A blocking request (F_SETLKW, flock without LOCK_NB) whose
 * LOCK was queued in the replicated table is parked here, not in the
 * request machinery of fuse_req.c (it has no deadline), until the store's
 * hook tells that the lock was granted (FS_EVENT_LOCK_GRANTED, on the
 * apply thread, after the grant is in the store) or a signal interrupts it
 * (fuse_req_interrupt_func: LOCK_CANCEL is proposed; withdrawn -> EINTR;
 * already granted -> the grant answers 0). Nothing spins or polls.
 *
 * Races handled under locks->mu: a grant may be applied before the LOCK's
 * own completion ran (kept in the early ring until the completion looks),
 * and while the completion is still arming the interrupt callback (busy:
 * the grant or the interrupt is noted and acted on when it finishes).
 */

#include "fs/fuse_fe.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define EARLY_MAX 64u

struct lock_wait {
	struct lock_wait *next;
	fuse_req_t req;
	uint64_t ino;
	uint64_t epoch;
	uint64_t seq;
	bool busy;          /* the completion is still arming the interrupt */
	bool granted;       /* granted while busy */
	bool cancel_wanted; /* interrupted while busy */
	bool cancelling;    /* LOCK_CANCEL proposed */
};

/* An owner that set locks of kind on ino here: its close must release
 * them through the log. */
struct locker {
	struct locker *next;
	uint64_t ino;
	uint64_t owner;
	uint8_t kind;
};

struct early_grant {
	uint64_t epoch;
	uint64_t seq;
};

struct fs_fuse_locks {
	pthread_mutex_t mu; /* protects everything below */
	struct lock_wait *waits;
	struct locker *lockers;
	struct early_grant early[EARLY_MAX];
	size_t n_early;
	size_t early_next; /* the ring's next slot when full */
	uint64_t last_handle; /* fs_fuse_lock_handle */
};

static struct fs_fuse *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

int fs_fuse_locks_init(struct fs_fuse *fs)
{
	struct fs_fuse_locks *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	fs->locks = l;
	return 0;
}

void fs_fuse_locks_release(struct fs_fuse *fs)
{
	struct fs_fuse_locks *l = fs->locks;

	if (!l)
		return;
	while (l->waits) {
		struct lock_wait *w = l->waits;

		l->waits = w->next;
		fuse_reply_err(w->req, EIO);
		free(w);
	}
	while (l->lockers) {
		struct locker *k = l->lockers;

		l->lockers = k->next;
		free(k);
	}
	pthread_mutex_destroy(&l->mu);
	free(l);
	fs->locks = NULL;
}

uint64_t fs_fuse_lock_handle(struct fs_fuse *fs)
{
	struct fs_fuse_locks *l = fs->locks;
	uint64_t h;

	if (!l)
		return 0;
	pthread_mutex_lock(&l->mu);
	h = ++l->last_handle;
	pthread_mutex_unlock(&l->mu);
	return h;
}

/* The owner of the flock locks set through fi: its handle (every open
 * of a file or directory gets one), else the kernel's owner (a handle of
 * 0 never comes from this node's opens; kept for safety). */
static uint64_t flock_owner(const struct fuse_file_info *fi)
{
	return fi->fh != 0 ? fi->fh : fi->lock_owner;
}

/* ---------------------------------------------------------------------- */
/* Answering a grant.                                                      */

static void reply_granted_now(void *arg)
{
	fuse_reply_err(arg, 0);
}

/*
 * A lock granted (on this node's apply or completion thread: its command
 * and everything before it are applied here) is answered once the kernel
 * was told to forget what those commands changed (fs_fuse_notify_then),
 * so the holder reads what the previous holder wrote even from pages it
 * had cached.
 */
static void reply_granted(struct fs_fuse *fs, fuse_req_t req)
{
	if (!fs->notifier) {
		fuse_reply_err(req, 0);
		return;
	}
	fs_fuse_notify_then(fs, fs_fuse_notify_told(fs), reply_granted_now,
			    req);
}

/* ---------------------------------------------------------------------- */
/* Lockers.                                                                */

static void locker_add(struct fs_fuse *fs, uint64_t ino, uint8_t kind,
		       uint64_t owner)
{
	struct fs_fuse_locks *l = fs->locks;
	struct locker *k;

	pthread_mutex_lock(&l->mu);
	for (k = l->lockers; k; k = k->next)
		if (k->ino == ino && k->kind == kind && k->owner == owner)
			break;
	if (!k && (k = malloc(sizeof(*k)))) {
		*k = (struct locker){l->lockers, ino, owner, kind};
		l->lockers = k;
	}
	pthread_mutex_unlock(&l->mu);
	/* Out of memory: the lock is still proposed; the owner's close
	 * will not release it, the node's next start will. */
}

/* Whether (ino, kind, owner) set locks here; forgotten when it did. */
static bool locker_take(struct fs_fuse *fs, uint64_t ino, uint8_t kind,
			uint64_t owner)
{
	struct fs_fuse_locks *l = fs->locks;
	struct locker **p, *k = NULL;

	pthread_mutex_lock(&l->mu);
	for (p = &l->lockers; *p; p = &(*p)->next) {
		if ((*p)->ino == ino && (*p)->kind == kind &&
		    (*p)->owner == owner) {
			k = *p;
			*p = k->next;
			break;
		}
	}
	pthread_mutex_unlock(&l->mu);
	free(k);
	return k != NULL;
}

/* ---------------------------------------------------------------------- */
/* Internal commands: nobody to answer.                                    */

static void finish_quiet(struct fs_fuse_req *r, int err,
			 const struct fs_result *res, bool answer)
{
	(void)r;
	(void)err;
	(void)res;
	(void)answer;
}

/* Remove the lock r asked for (its requester got an error or is gone). */
static void propose_undo(struct fs_fuse *fs, const struct fs_fuse_req *r)
{
	struct fs_fuse_req *u = fs_fuse_req_internal(fs);
	struct fs_cmd c;

	if (!u)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_LOCK;
	c.ino = r->ino;
	c.lock_kind = r->lock.kind;
	c.lock_type = FS_LOCK_UNLOCK;
	c.lock_start = r->lock.start;
	c.lock_end = r->lock.end;
	c.lock_owner = r->lock.owner;
	fs_fuse_propose(u, &c, finish_quiet);
}

static void cancel_done(struct fs_fuse_req *r, int err,
			const struct fs_result *res, bool answer);

/* Withdraw this node's queued LOCK of proposal seq. */
static void propose_cancel(struct fs_fuse *fs, uint64_t seq,
			   const struct fs_fuse_req *undo)
{
	struct fs_fuse_req *u = fs_fuse_req_internal(fs);
	struct fs_cmd c;

	if (!u)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_LOCK_CANCEL;
	c.offset = seq;
	u->off = seq;
	if (undo) {
		/* Nobody waits: when the grant came first, undo it. */
		u->ino = undo->ino;
		u->lock = undo->lock;
		u->size = 1;
	}
	fs_fuse_propose(u, &c, cancel_done);
}

static struct lock_wait *wait_take(struct fs_fuse_locks *l, uint64_t seq)
{
	struct lock_wait **p, *w;

	for (p = &l->waits; *p; p = &(*p)->next) {
		if ((*p)->seq == seq) {
			w = *p;
			*p = w->next;
			return w;
		}
	}
	return NULL;
}

static void cancel_done(struct fs_fuse_req *r, int err,
			const struct fs_result *res, bool answer)
{
	struct fs_fuse_locks *l = r->fs->locks;
	struct lock_wait *w = NULL;

	(void)answer;
	if (err != 0)
		return; /* outcome unknown: a grant may still answer */
	if (res->err == ENOENT) {
		/* Granted first: the grant answered (or, for an abandoned
		 * request, the lock is undone). */
		if (r->size == 1)
			propose_undo(r->fs, r);
		return;
	}
	if (r->size == 1)
		return;
	pthread_mutex_lock(&l->mu);
	w = wait_take(l, r->off);
	pthread_mutex_unlock(&l->mu);
	if (w) {
		fuse_reply_err(w->req, EINTR);
		free(w);
	}
}

/* ---------------------------------------------------------------------- */
/* Waiting.                                                                */

static void on_interrupt(fuse_req_t req, void *data)
{
	struct fs_fuse *fs = data;
	struct fs_fuse_locks *l = fs->locks;
	struct lock_wait *w;
	uint64_t seq = 0;

	pthread_mutex_lock(&l->mu);
	for (w = l->waits; w; w = w->next)
		if (w->req == req)
			break;
	if (w && w->busy) {
		w->cancel_wanted = true;
	} else if (w && !w->cancelling) {
		w->cancelling = true;
		seq = w->seq;
	}
	pthread_mutex_unlock(&l->mu);
	if (seq)
		propose_cancel(fs, seq, NULL);
}

/* Whether the grant of (epoch, seq) came before its LOCK's completion
 * (and forget it). */
static bool early_take(struct fs_fuse_locks *l, uint64_t epoch, uint64_t seq)
{
	for (size_t i = 0; i < l->n_early; i++) {
		if (l->early[i].epoch == epoch && l->early[i].seq == seq) {
			l->early[i] = l->early[--l->n_early];
			return true;
		}
	}
	return false;
}

/* The LOCK was queued and its requester waits: park it. */
static void park(struct fs_fuse_req *r)
{
	struct fs_fuse *fs = r->fs;
	struct fs_fuse_locks *l = fs->locks;
	struct lock_wait *w = calloc(1, sizeof(*w));
	bool granted, cancel;

	if (!w) {
		fuse_reply_err(r->req, ENOMEM);
		propose_cancel(fs, r->id.seq, r);
		return;
	}
	*w = (struct lock_wait){.req = r->req, .ino = r->ino,
				.epoch = r->id.epoch, .seq = r->id.seq,
				.busy = true};
	pthread_mutex_lock(&l->mu);
	if (early_take(l, w->epoch, w->seq)) {
		pthread_mutex_unlock(&l->mu);
		free(w);
		reply_granted(fs, r->req);
		return;
	}
	w->next = l->waits;
	l->waits = w;
	pthread_mutex_unlock(&l->mu);
	/* May call on_interrupt at once (already interrupted): busy makes
	 * it only take note. */
	fuse_req_interrupt_func(r->req, on_interrupt, fs);
	pthread_mutex_lock(&l->mu);
	w->busy = false;
	granted = w->granted;
	cancel = !granted && w->cancel_wanted && !w->cancelling;
	if (granted)
		wait_take(l, w->seq);
	if (cancel)
		w->cancelling = true;
	pthread_mutex_unlock(&l->mu);
	if (granted) {
		reply_granted(fs, w->req);
		free(w);
	} else if (cancel) {
		propose_cancel(fs, w->seq, NULL);
	}
}

/*
 * After a snapshot install: the grants its commands made were never told
 * here. A parked waiter no longer queued in the new state was granted (a
 * cancel of ours would have answered it; a revoked lease fences every
 * later change anyway): answer it.
 */
static void recheck_waiters(struct fs_fuse *fs)
{
	struct fs_fuse_locks *l = fs->locks;
	struct lock_wait *w;
	uint64_t ino[64], seq[64], epoch[64];
	size_t n = 0;

	pthread_mutex_lock(&l->mu);
	for (w = l->waits; w && n < 64; w = w->next) {
		if (w->busy || w->cancelling)
			continue;
		ino[n] = w->ino;
		epoch[n] = w->epoch;
		seq[n++] = w->seq;
	}
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		if (fs_lock_is_queued(fs->store, ino[i], fs->prop.node_id,
				      epoch[i], seq[i]) != 0)
			continue;
		pthread_mutex_lock(&l->mu);
		w = wait_take(l, seq[i]);
		pthread_mutex_unlock(&l->mu);
		if (w) {
			reply_granted(fs, w->req);
			free(w);
		}
	}
}

void fs_fuse_lock_event(struct fs_fuse *fs, const struct fs_store_event *ev)
{
	struct fs_fuse_locks *l = fs->locks;
	struct lock_wait *w;
	bool reply = false;

	if (l && ev->kind == FS_EVENT_INSTALLED) {
		recheck_waiters(fs);
		return;
	}
	if (!l || ev->node != fs->prop.node_id)
		return;
	pthread_mutex_lock(&l->mu);
	for (w = l->waits; w; w = w->next)
		if (w->epoch == ev->epoch && w->seq == ev->seq)
			break;
	if (w && w->busy) {
		w->granted = true;
	} else if (w) {
		wait_take(l, w->seq);
		reply = true;
	} else {
		size_t at = l->n_early < EARLY_MAX ? l->n_early++
						   : l->early_next++ % EARLY_MAX;

		l->early[at] = (struct early_grant){ev->epoch, ev->seq};
	}
	pthread_mutex_unlock(&l->mu);
	if (reply) {
		reply_granted(fs, w->req);
		free(w);
	}
}

/* ---------------------------------------------------------------------- */
/* setlk, flock.                                                           */

static void lock_done(struct fs_fuse_req *r, int err,
		      const struct fs_result *res, bool answer)
{
	if (err != 0 || res->err != 0) {
		if (r->lock.type == FS_LOCK_UNLOCK && err != 0)
			/* Maybe not unlocked: the close must still try. */
			locker_add(r->fs, r->ino, r->lock.kind, r->lock.owner);
		if (answer)
			fuse_reply_err(r->req, err != 0 ? -err : res->err);
		return;
	}
	if (res->count == 1) {
		if (answer) {
			park(r);
		} else {
			/* Timed out (answered EIO): withdraw it. */
			struct fs_fuse_locks *l = r->fs->locks;
			bool granted;

			pthread_mutex_lock(&l->mu);
			granted = early_take(l, r->id.epoch, r->id.seq);
			pthread_mutex_unlock(&l->mu);
			if (granted)
				propose_undo(r->fs, r);
			else
				propose_cancel(r->fs, r->id.seq, r);
		}
		return;
	}
	if (answer && r->lock.type != FS_LOCK_UNLOCK)
		reply_granted(r->fs, r->req);
	else if (answer)
		fuse_reply_err(r->req, 0);
	else if (r->lock.type != FS_LOCK_UNLOCK)
		propose_undo(r->fs, r);
}

/* Propose r's LOCK (r->ino, r->lock; wait: FS_LOCK_WAIT). */
static void lock_propose(struct fs_fuse_req *r, bool wait)
{
	struct fs_cmd c;

	memset(&c, 0, sizeof(c));
	c.op = FS_OP_LOCK;
	c.ino = r->ino;
	c.lock_kind = r->lock.kind;
	c.lock_type = r->lock.type;
	c.lock_start = r->lock.start;
	c.lock_end = r->lock.end;
	c.lock_owner = r->lock.owner;
	c.lock_pid = r->lock.pid;
	c.flags = wait && r->lock.type != FS_LOCK_UNLOCK ? FS_LOCK_WAIT : 0;
	if (r->lock.type == FS_LOCK_UNLOCK && r->lock.kind == FS_LOCK_FLOCK)
		/* An flock owner holds one lock: after this unlock its
		 * release has nothing left to drop (saves a command per
		 * close of a file flock(1) used). Not unlocked after all
		 * (an error): lock_done adds it again. */
		locker_take(r->fs, r->ino, r->lock.kind, r->lock.owner);
	fs_fuse_propose(r, &c, lock_done);
}

/*
 * Whether the local replica suggests that r changes nothing (a lock the
 * owner already holds so, an unlock of what it does not hold) or, when
 * it may not wait, fails with EAGAIN: only a hint (the replica may be
 * behind), checked again after a read barrier (probe_read).
 */
static bool probe_hint(struct fs_fuse_req *r, bool wait)
{
	int rc = fs_lock_probe(r->fs->store, r->ino, &r->lock);

	return rc == FS_LOCK_PROBE_NOOP ||
	       (rc == FS_LOCK_PROBE_CONFLICT && !wait);
}

/*
 * After a read barrier (every change committed before the request is
 * applied here): a request that changes nothing is answered from the
 * replica, linearizably, without a log commit: a lock already held as
 * asked is granted (once the kernel was told to drop what it cached up to
 * the barrier, as any grant), an unlock of nothing succeeds, a conflict
 * that may not wait fails with EAGAIN. Anything else is proposed as
 * usual (a new request: this one is answered by then).
 */
static void probe_read(struct fs_fuse_req *r, bool wait)
{
	struct fs_fuse_req *p;
	int rc = fs_lock_probe(r->fs->store, r->ino, &r->lock);

	if (rc == FS_LOCK_PROBE_NOOP && r->lock.type != FS_LOCK_UNLOCK) {
		reply_granted(r->fs, r->req);
		return;
	}
	if (rc == FS_LOCK_PROBE_NOOP) {
		if (r->lock.kind == FS_LOCK_FLOCK)
			locker_take(r->fs, r->ino, r->lock.kind,
				    r->lock.owner);
		fuse_reply_err(r->req, 0);
		return;
	}
	if (rc == FS_LOCK_PROBE_CONFLICT && !wait) {
		fuse_reply_err(r->req, EAGAIN);
		return;
	}
	p = fs_fuse_req_new(r->req);
	if (!p)
		return;
	p->ino = r->ino;
	p->lock = r->lock;
	lock_propose(p, wait);
}

static void probe_read_nowait(struct fs_fuse_req *r)
{
	probe_read(r, false);
}

static void probe_read_wait(struct fs_fuse_req *r)
{
	probe_read(r, true);
}

static void lock_request(fuse_req_t req, uint64_t ino, uint64_t owner,
			 uint8_t kind, uint8_t type, uint64_t start,
			 uint64_t end, uint32_t pid, bool wait)
{
	struct fs_fuse *fs = fs_of(req);
	struct fs_fuse_req *r = fs_fuse_req_new(req);

	if (!r)
		return;
	r->ino = ino;
	r->lock = (struct fs_lock_info){.node = fs->prop.node_id,
					.owner = owner, .start = start,
					.end = end, .pid = pid, .kind = kind,
					.type = type};
	if (type != FS_LOCK_UNLOCK)
		locker_add(fs, ino, kind, owner);
	if (probe_hint(r, wait)) {
		r->fresh = true; /* a barrier of its own, in every mode */
		fs_fuse_read(r, wait ? probe_read_wait : probe_read_nowait);
		return;
	}
	lock_propose(r, wait);
}

static int flock_type(short t, uint8_t *type)
{
	switch (t) {
	case F_RDLCK:
		*type = FS_LOCK_READ;
		return 0;
	case F_WRLCK:
		*type = FS_LOCK_WRITE;
		return 0;
	case F_UNLCK:
		*type = FS_LOCK_UNLOCK;
		return 0;
	}
	return -EINVAL;
}

/* The kernel's range (absolute l_start; l_len 0: to the end) as
 * [start, end]. */
static int flock_range(const struct flock *lock, uint64_t *start,
		       uint64_t *end)
{
	if (lock->l_start < 0 || lock->l_len < 0)
		return -EINVAL;
	*start = (uint64_t)lock->l_start;
	if (lock->l_len == 0)
		*end = FS_LOCK_EOF;
	else if ((uint64_t)lock->l_len - 1 > FS_LOCK_EOF - *start)
		return -EINVAL;
	else
		*end = *start + (uint64_t)lock->l_len - 1;
	return 0;
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	uint64_t start, end;
	uint8_t type;
	int rc = flock_type(lock->l_type, &type);

	if (rc == 0)
		rc = flock_range(lock, &start, &end);
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	lock_request(req, ino, fi->lock_owner, FS_LOCK_POSIX, type, start, end,
		     (uint32_t)lock->l_pid, sleep != 0);
}

static void op_flock(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, int op)
{
	uint8_t type;

	switch (op & (LOCK_SH | LOCK_EX | LOCK_UN)) {
	case LOCK_SH:
		type = FS_LOCK_READ;
		break;
	case LOCK_EX:
		type = FS_LOCK_WRITE;
		break;
	case LOCK_UN:
		type = FS_LOCK_UNLOCK;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	lock_request(req, ino, flock_owner(fi), FS_LOCK_FLOCK, type, 0,
		     FS_LOCK_EOF, (uint32_t)fuse_req_ctx(req)->pid,
		     !(op & LOCK_NB));
}

/* ---------------------------------------------------------------------- */
/* getlk.                                                                  */

static void getlk_read(struct fs_fuse_req *r)
{
	struct fs_lock_info hit;
	struct flock out;
	int rc = fs_lock_test(r->fs->store, r->ino, &r->lock, &hit);

	if (rc < 0) {
		fuse_reply_err(r->req, -rc);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.l_whence = SEEK_SET;
	if (rc == 0) {
		out.l_type = F_UNLCK;
		out.l_start = (off_t)r->lock.start;
		out.l_len = r->lock.end == FS_LOCK_EOF
				    ? 0
				    : (off_t)(r->lock.end - r->lock.start + 1);
	} else {
		out.l_type = hit.type == FS_LOCK_WRITE ? F_WRLCK : F_RDLCK;
		out.l_start = (off_t)hit.start;
		out.l_len = hit.end == FS_LOCK_EOF
				    ? 0
				    : (off_t)(hit.end - hit.start + 1);
		out.l_pid = (pid_t)hit.pid;
	}
	fuse_reply_lock(r->req, &out);
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi, struct flock *lock)
{
	struct fs_fuse *fs = fs_of(req);
	struct fs_fuse_req *r;
	uint64_t start, end;
	uint8_t type;
	int rc = flock_type(lock->l_type, &type);

	if (rc == 0)
		rc = flock_range(lock, &start, &end);
	if (rc == 0 && type == FS_LOCK_UNLOCK)
		rc = -EINVAL;
	if (rc != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	r = fs_fuse_req_new(req);
	if (!r)
		return;
	r->ino = ino;
	r->lock = (struct fs_lock_info){.node = fs->prop.node_id,
					.owner = fi->lock_owner,
					.start = start, .end = end,
					.kind = FS_LOCK_POSIX, .type = type};
	r->fresh = true; /* linearizable in every mode */
	fs_fuse_read(r, getlk_read);
}

/* ---------------------------------------------------------------------- */
/* Close.                                                                  */

bool fs_fuse_lock_flush(fuse_req_t req, uint64_t ino,
			const struct fuse_file_info *fi)
{
	struct fs_fuse *fs = fs_of(req);
	struct fs_fuse_req *r;
	struct fs_cmd c;

	if (!locker_take(fs, ino, FS_LOCK_POSIX, fi->lock_owner))
		return false;
	r = fs_fuse_req_new(req);
	if (!r)
		return true;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_UNLOCK_OWNER;
	c.ino = ino;
	c.lock_kind = FS_LOCK_POSIX;
	c.lock_owner = fi->lock_owner;
	fs_fuse_propose(r, &c, fs_fuse_finish_err);
	return true;
}

void fs_fuse_lock_release(struct fs_fuse *fs, uint64_t ino,
			  const struct fuse_file_info *fi)
{
	struct fs_fuse_req *r;
	struct fs_cmd c;

	if (!locker_take(fs, ino, FS_LOCK_FLOCK, flock_owner(fi)))
		return;
	r = fs_fuse_req_internal(fs);
	if (!r)
		return;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_UNLOCK_OWNER;
	c.ino = ino;
	c.lock_kind = FS_LOCK_FLOCK;
	c.lock_owner = flock_owner(fi);
	fs_fuse_propose(r, &c, finish_quiet);
}

void fs_fuse_ops_lock(struct fuse_lowlevel_ops *ops)
{
	ops->getlk = op_getlk;
	ops->setlk = op_setlk;
	ops->flock = op_flock;
}
