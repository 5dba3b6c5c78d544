/*
 * Applying the lock commands (LOCK, LOCK_CANCEL, UNLOCK_OWNER) and a
 * node's release of everything it held: the lock table is read from the
 * store's K records into a fs_locks table (fs/locks.h), changed there, and
 * every record written back in the command's transaction. Waiters granted
 * become FS_EVENT_LOCK_GRANTED events for the hook.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/apply_io.h"
#include "fs/locks.h"

struct loaded {
	struct fs_locks *t;
	uint64_t *inos; /* inodes that had a record */
	size_t n;
};

static void on_grant(void *ctx, const struct fs_lock_waiter *w)
{
	struct fs_apply *a = ctx;
	struct fs_store_event *ev;

	if (a->grant_error)
		return;
	ev = realloc(a->lock_events,
		     (a->n_lock_events + 1) * sizeof(*a->lock_events));
	if (!ev) {
		a->grant_error = true;
		return;
	}
	a->lock_events = ev;
	a->lock_events[a->n_lock_events++] = (struct fs_store_event){
		.kind = FS_EVENT_LOCK_GRANTED,
		.ino = w->want.ino,
		.index = a->index,
		.node = w->want.node,
		.epoch = w->epoch,
		.seq = w->seq};
}

static void unload(struct loaded *l)
{
	fs_locks_destroy(l->t);
	free(l->inos);
}

/* Every K record into l->t; a malformed one is -EUCLEAN. */
static int load(struct fs_apply *a, struct loaded *l)
{
	struct fs_key *keys = NULL;
	size_t n = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	if ((rc = fs_locks_create(&l->t)))
		return rc;
	fs_locks_set_grant_fn(l->t, on_grant, a);
	rc = fs_txn_lock_keys(&a->txn, &keys, &n); /* no scan: cached */
	if (rc == 0 && n > 0 && !(l->inos = calloc(n, sizeof(*l->inos))))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t *val = NULL;
		size_t len;
		uint64_t ino;

		if (keys[i].len != 9) {
			rc = -EUCLEAN;
			break;
		}
		ino = fs_rd64(&keys[i].b[1]);
		rc = fs_txn_get(&a->txn, &keys[i], &val, &len);
		if (rc == 0) {
			rc = fs_locks_decode_ino(l->t, ino, val, len);
			if (rc == -EBADMSG || rc == -ENOLCK)
				rc = -EUCLEAN;
		}
		free(val);
		l->inos[l->n++] = ino;
	}
	free(keys);
	if (rc)
		unload(l);
	return rc;
}

static int store_ino(struct fs_apply *a, const struct fs_locks *t,
		     uint64_t ino)
{
	struct fs_wbuf w = {NULL, 0, 0, false};
	struct fs_key k;
	uint8_t *buf;
	int rc;

	fs_key1(&k, FS_KEY_LOCKS, ino);
	if (!fs_locks_encode_ino(t, ino, &w))
		return fs_txn_del(&a->txn, &k);
	buf = malloc(w.len);
	if (!buf)
		return -ENOMEM;
	w = (struct fs_wbuf){buf, w.len, 0, false};
	fs_locks_encode_ino(t, ino, &w);
	rc = fs_txn_put(&a->txn, &k, buf, w.len);
	free(buf);
	return rc;
}

/* Write back the records of every inode loaded, and of ino (0: none). */
static int store_all(struct fs_apply *a, struct loaded *l, uint64_t ino)
{
	bool ino_done = ino == 0;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		rc = store_ino(a, l->t, l->inos[i]);
		ino_done |= l->inos[i] == ino;
	}
	if (rc == 0 && !ino_done)
		rc = store_ino(a, l->t, ino);
	if (rc == 0 && a->grant_error)
		rc = -ENOMEM;
	return rc;
}

static int op_lock(struct fs_apply *a, struct loaded *l)
{
	const struct fs_cmd *c = a->c;
	struct fs_lock req = {.ino = c->ino,
			      .node = c->proposal.id.node,
			      .owner = c->lock_owner,
			      .start = c->lock_start,
			      .end = c->lock_end,
			      .pid = c->lock_pid,
			      .kind = c->lock_kind,
			      .type = c->lock_type};
	struct fs_lock_waiter w = {.id = a->index,
				   .epoch = c->proposal.id.epoch,
				   .seq = c->proposal.id.seq};
	int rc = fs_locks_set(l->t, &req, (c->flags & FS_LOCK_WAIT) ? &w
								   : NULL);

	a->res->ino = c->ino;
	if (rc == 1) {
		a->res->count = 1;
		rc = 0;
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		a->res->err = -rc; /* EAGAIN, EDEADLK, ENOLCK, EINVAL */
	return store_all(a, l, c->ino);
}

int fs_apply_lock(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_inode in;
	struct loaded l;
	int rc;

	if (c->op != FS_OP_LOCK_CANCEL &&
	    (rc = fs_inode_load(a, c->ino, &in)) != 0)
		return rc;
	if ((rc = load(a, &l)))
		return rc;
	switch (c->op) {
	case FS_OP_LOCK:
		rc = op_lock(a, &l);
		break;
	case FS_OP_LOCK_CANCEL:
		rc = fs_locks_cancel(l.t, c->proposal.id.node,
				     c->proposal.id.epoch, c->offset);
		if (rc == -ENOENT)
			a->res->err = ENOENT;
		rc = store_all(a, &l, 0);
		break;
	case FS_OP_UNLOCK_OWNER:
		a->res->ino = c->ino;
		fs_locks_release_owner(l.t, c->ino, c->lock_kind,
				       c->proposal.id.node, c->lock_owner);
		rc = store_all(a, &l, c->ino);
		break;
	default:
		rc = -EBADMSG;
	}
	unload(&l);
	return rc;
}

int fs_locks_release_node_apply(struct fs_apply *a, uint64_t node)
{
	struct loaded l;
	int rc;

	if ((rc = load(a, &l)))
		return rc;
	if (fs_locks_release_node(l.t, node))
		rc = store_all(a, &l, 0);
	unload(&l);
	return rc;
}

static int lock_of_node(void *ctx, const struct fs_lock *l)
{
	return l->node == *(const uint64_t *)ctx;
}

static int waiter_of_node(void *ctx, const struct fs_lock_waiter *w)
{
	return w->want.node == *(const uint64_t *)ctx;
}

int fs_locks_node_holds(struct fs_apply *a, uint64_t node)
{
	struct loaded l;
	int rc;

	if ((rc = load(a, &l)))
		return rc;
	rc = fs_locks_each(l.t, 0, lock_of_node, &node) ||
	     fs_locks_each_waiter(l.t, 0, waiter_of_node, &node);
	unload(&l);
	return rc;
}

/* The lock table of ino as the store holds it now, read outside apply:
 * 1 with *out (the caller destroys it), 0 when ino has no lock record,
 * -EIO or -ENOMEM. */
static int read_table(struct fs_store *s, uint64_t ino, struct fs_locks **out)
{
	struct fs_locks *t = NULL;
	struct fs_key k;
	void *val = NULL;
	size_t len;
	int rc;

	fs_key1(&k, FS_KEY_LOCKS, ino);
	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_get(s->kv, NULL, k.b, k.len, &val, &len);
	pthread_rwlock_unlock(&s->lock);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return -EIO;
	rc = fs_locks_create(&t);
	if (rc == 0 && fs_locks_decode_ino(t, ino, val, len) != 0)
		rc = -EIO;
	fs_kv_free(val);
	if (rc != 0) {
		fs_locks_destroy(t);
		return rc;
	}
	*out = t;
	return 1;
}

int fs_lock_test(struct fs_store *s, uint64_t ino,
		 const struct fs_lock_info *want, struct fs_lock_info *info)
{
	struct fs_lock req = {.ino = ino, .node = want->node,
			      .owner = want->owner, .start = want->start,
			      .end = want->end, .pid = want->pid,
			      .kind = want->kind, .type = want->type}, hit;
	struct fs_locks *t = NULL;
	int rc;

	if (!fs_lock_is_valid(&req) || req.type == FS_LOCK_UNLOCK)
		return -EINVAL;
	rc = read_table(s, ino, &t);
	if (rc <= 0)
		return rc;
	rc = 0;
	if (fs_locks_test(t, &req, &hit)) {
		*info = (struct fs_lock_info){
			.node = hit.node, .owner = hit.owner,
			.start = hit.start, .end = hit.end, .pid = hit.pid,
			.kind = hit.kind, .type = hit.type};
		rc = 1;
	}
	fs_locks_destroy(t);
	return rc;
}

/* ino's record encoded (ok false: no record), or -ENOMEM. */
static int encode_rec(const struct fs_locks *t, uint64_t ino,
		      struct fs_wbuf *w)
{
	uint8_t *buf;

	*w = (struct fs_wbuf){NULL, 0, 0, false};
	if (!fs_locks_encode_ino(t, ino, w))
		return 0;
	buf = malloc(w->len ? w->len : 1);
	if (!buf)
		return -ENOMEM;
	*w = (struct fs_wbuf){buf, w->len, 0, false};
	fs_locks_encode_ino(t, ino, w);
	return 1;
}

int fs_lock_probe(struct fs_store *s, uint64_t ino,
		  const struct fs_lock_info *want)
{
	struct fs_lock req = {.ino = ino, .node = want->node,
			      .owner = want->owner, .start = want->start,
			      .end = want->end, .pid = want->pid,
			      .kind = want->kind, .type = want->type};
	struct fs_wbuf before, after;
	struct fs_locks *t = NULL;
	int rc, had, has, set;

	if (!fs_lock_is_valid(&req))
		return -EINVAL;
	rc = read_table(s, ino, &t);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		/* No record: an unlock has nothing to remove; a lock sets. */
		return req.type == FS_LOCK_UNLOCK ? FS_LOCK_PROBE_NOOP
						  : FS_LOCK_PROBE_CHANGES;
	}
	had = encode_rec(t, ino, &before);
	if (had < 0) {
		fs_locks_destroy(t);
		return had;
	}
	set = fs_locks_set(t, &req, NULL);
	has = encode_rec(t, ino, &after);
	fs_locks_destroy(t);
	rc = FS_LOCK_PROBE_CHANGES;
	if (has >= 0 && had == has &&
	    (!had || (before.len == after.len &&
		      memcmp(before.buf, after.buf, before.len) == 0))) {
		if (set == 0)
			rc = FS_LOCK_PROBE_NOOP;
		else if (set == -EAGAIN)
			rc = FS_LOCK_PROBE_CONFLICT;
	}
	free(before.buf);
	free(after.buf);
	return has < 0 ? has : rc;
}

struct find_waiter {
	uint64_t node, epoch, seq;
};

static int is_waiter(void *ctx, const struct fs_lock_waiter *w)
{
	const struct find_waiter *f = ctx;

	return w->want.node == f->node && w->epoch == f->epoch &&
	       w->seq == f->seq;
}

int fs_lock_is_queued(struct fs_store *s, uint64_t ino, uint64_t node,
		      uint64_t epoch, uint64_t seq)
{
	struct find_waiter f = {node, epoch, seq};
	struct fs_locks *t = NULL;
	int rc = read_table(s, ino, &t);

	if (rc <= 0)
		return rc;
	rc = fs_locks_each_waiter(t, ino, is_waiter, &f);
	fs_locks_destroy(t);
	return rc;
}
