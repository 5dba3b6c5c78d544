/*
 * The lock table (fs/locks.h): two sorted arrays, the locks held (by ino,
 * kind, node, owner, start, so one owner's locks of an inode are
 * contiguous) and the waiters (by id). Linear scans: the table is for the
 * locks of one cluster's open files, bounded by FS_LOCKS_MAX.
 */

#include "fs/locks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fs_locks {
	struct fs_lock *l;
	size_t n;
	size_t cap;
	struct fs_lock_waiter *w;
	size_t nw;
	size_t capw;
	fs_lock_grant_fn grant;
	void *grant_ctx;
};

int fs_locks_create(struct fs_locks **out)
{
	struct fs_locks *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*out = t;
	return 0;
}

void fs_locks_destroy(struct fs_locks *t)
{
	if (!t)
		return;
	free(t->l);
	free(t->w);
	free(t);
}

void fs_locks_set_grant_fn(struct fs_locks *t, fs_lock_grant_fn fn, void *ctx)
{
	t->grant = fn;
	t->grant_ctx = ctx;
}

void fs_locks_clear(struct fs_locks *t)
{
	t->n = 0;
	t->nw = 0;
}

size_t fs_locks_count(const struct fs_locks *t)
{
	return t->n;
}

size_t fs_locks_waiter_count(const struct fs_locks *t)
{
	return t->nw;
}

/* ---------------------------------------------------------------------- */
/* Predicates.                                                             */

bool fs_lock_is_valid(const struct fs_lock *l)
{
	if (l->ino == 0 || l->start > l->end || l->type > FS_LOCK_WRITE)
		return false;
	if (l->kind == FS_LOCK_POSIX)
		return true;
	return l->kind == FS_LOCK_FLOCK && l->start == 0 &&
	       l->end == FS_LOCK_EOF;
}

static bool same_owner(const struct fs_lock *a, const struct fs_lock *b)
{
	return a->node == b->node && a->owner == b->owner;
}

static bool overlaps(const struct fs_lock *a, uint64_t start, uint64_t end)
{
	return a->start <= end && start <= a->end;
}

/* Whether [start, end] begins right after a or ends right before it. */
static bool touches(const struct fs_lock *a, uint64_t start, uint64_t end)
{
	return (a->end != FS_LOCK_EOF && a->end + 1 == start) ||
	       (end != FS_LOCK_EOF && end + 1 == a->start);
}

bool fs_lock_conflicts(const struct fs_lock *a, const struct fs_lock *b)
{
	return a->ino == b->ino && a->kind == b->kind && !same_owner(a, b) &&
	       overlaps(a, b->start, b->end) &&
	       (a->type == FS_LOCK_WRITE || b->type == FS_LOCK_WRITE);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int lock_cmp(const struct fs_lock *a, const struct fs_lock *b)
{
	int c;

	if ((c = cmp_u64(a->ino, b->ino)) || (c = cmp_u64(a->kind, b->kind)) ||
	    (c = cmp_u64(a->node, b->node)) ||
	    (c = cmp_u64(a->owner, b->owner)))
		return c;
	return cmp_u64(a->start, b->start);
}

bool fs_locks_test(const struct fs_locks *t, const struct fs_lock *req,
		   struct fs_lock *conflict)
{
	for (size_t i = 0; i < t->n; i++) {
		if (fs_lock_conflicts(&t->l[i], req)) {
			if (conflict)
				*conflict = t->l[i];
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------------- */
/* The arrays.                                                             */

static int reserve_locks(struct fs_locks *t, size_t extra)
{
	size_t cap;
	struct fs_lock *l;

	if (t->n + extra <= t->cap)
		return 0;
	cap = t->cap ? t->cap * 2 : 16;
	while (cap < t->n + extra)
		cap *= 2;
	l = realloc(t->l, cap * sizeof(*l));
	if (!l)
		return -ENOMEM;
	t->l = l;
	t->cap = cap;
	return 0;
}

/* Index where key would go (first element not below it). */
static size_t lock_pos(const struct fs_locks *t, const struct fs_lock *key)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (lock_cmp(&t->l[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The owner's locks of l's inode and kind: [*lo, *hi). */
static void owner_span(const struct fs_locks *t, const struct fs_lock *l,
		       size_t *lo, size_t *hi)
{
	struct fs_lock key = *l;

	key.start = 0;
	*lo = lock_pos(t, &key);
	*hi = *lo;
	while (*hi < t->n && t->l[*hi].ino == l->ino &&
	       t->l[*hi].kind == l->kind && same_owner(&t->l[*hi], l))
		(*hi)++;
}

/* Replace t->l[lo, hi) by the n_new locks of repl (sorted). Capacity is
 * reserved by the caller. */
static void splice(struct fs_locks *t, size_t lo, size_t hi,
		   const struct fs_lock *repl, size_t n_new)
{
	size_t tail = t->n - hi;

	if (tail && lo + n_new != hi)
		memmove(&t->l[lo + n_new], &t->l[hi], tail * sizeof(*t->l));
	if (n_new)
		memcpy(&t->l[lo], repl, n_new * sizeof(*repl));
	t->n = lo + n_new + tail;
}

static void remove_waiter(struct fs_locks *t, size_t i)
{
	memmove(&t->w[i], &t->w[i + 1], (t->nw - i - 1) * sizeof(*t->w));
	t->nw--;
}

static int insert_waiter(struct fs_locks *t, const struct fs_lock_waiter *w)
{
	size_t i;

	if (t->nw == t->capw) {
		size_t cap = t->capw ? t->capw * 2 : 16;
		struct fs_lock_waiter *nw = realloc(t->w, cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		t->w = nw;
		t->capw = cap;
	}
	i = t->nw;
	while (i > 0 && t->w[i - 1].id > w->id)
		i--;
	memmove(&t->w[i + 1], &t->w[i], (t->nw - i) * sizeof(*t->w));
	t->w[i] = *w;
	t->nw++;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Changing an owner's locks.                                              */

/*
 * Set req for its owner, conflicts already excluded: POSIX replaces the
 * owner's range, splitting and merging; flock replaces the owner's lock.
 * limit: refuse with -ENOLCK a table growing past FS_LOCKS_MAX (grants to
 * waiters are not refused).
 */
static int apply_lock(struct fs_locks *t, const struct fs_lock *req,
		      bool limit)
{
	size_t lo, hi, n_new = 0;
	struct fs_lock *repl;
	uint64_t s = req->start, e = req->end;
	int rc;

	owner_span(t, req, &lo, &hi);
	repl = malloc((hi - lo + 3) * sizeof(*repl));
	if (!repl)
		return -ENOMEM;
	for (size_t i = lo; i < hi && req->kind == FS_LOCK_POSIX; i++) {
		const struct fs_lock *l = &t->l[i];

		if (req->type != FS_LOCK_UNLOCK && l->type == req->type &&
		    (overlaps(l, s, e) || touches(l, s, e))) {
			/* Same type, overlapping or touching: merged. As the
			 * owner's locks do not overlap, a widened [s, e]
			 * meets no lock of the other type it did not meet. */
			s = l->start < s ? l->start : s;
			e = l->end > e ? l->end : e;
			continue;
		}
		if (!overlaps(l, req->start, req->end)) {
			repl[n_new++] = *l;
			continue;
		}
		if (l->start < req->start) {
			repl[n_new] = *l;
			repl[n_new++].end = req->start - 1;
		}
		if (l->end > req->end) {
			repl[n_new] = *l;
			repl[n_new++].start = req->end + 1;
		}
	}
	if (req->type != FS_LOCK_UNLOCK) {
		struct fs_lock nl = *req;
		size_t at = n_new;

		nl.start = s;
		nl.end = e;
		while (at > 0 && repl[at - 1].start > s)
			at--;
		memmove(&repl[at + 1], &repl[at], (n_new - at) * sizeof(*repl));
		repl[at] = nl;
		n_new++;
	}
	rc = 0;
	if (n_new > hi - lo) {
		if (limit && t->n + n_new - (hi - lo) > FS_LOCKS_MAX)
			rc = -ENOLCK;
		else
			rc = reserve_locks(t, n_new - (hi - lo));
	}
	if (rc == 0)
		splice(t, lo, hi, repl, n_new);
	free(repl);
	return rc;
}

/* Grant the waiters of ino (0: every inode) that no longer conflict, in
 * id order, until none can be. */
static void grant_waiters(struct fs_locks *t, uint64_t ino)
{
	bool again = true;

	while (again) {
		again = false;
		for (size_t i = 0; i < t->nw; i++) {
			struct fs_lock_waiter w = t->w[i];

			if ((ino && w.want.ino != ino) ||
			    fs_locks_test(t, &w.want, NULL))
				continue;
			if (apply_lock(t, &w.want, false) < 0)
				continue; /* out of memory: it waits on */
			remove_waiter(t, i);
			if (t->grant)
				t->grant(t->grant_ctx, &w);
			again = true;
			break;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Deadlocks.                                                              */

struct owner_id {
	uint64_t node;
	uint64_t owner;
};

static bool owner_in(const struct owner_id *set, size_t n, uint64_t node,
		     uint64_t owner)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].node == node && set[i].owner == owner)
			return true;
	return false;
}

/*
 * Whether req (POSIX, of owner R) waiting would close a cycle: some owner
 * holding a lock req conflicts with is R, or waits (through its POSIX
 * waiters) on an owner that ... is R. Breadth-first over owners, each
 * expanded once. -ENOMEM when the search cannot run.
 */
static int would_deadlock(const struct fs_locks *t, const struct fs_lock *req)
{
	struct owner_id *seen;
	size_t n_seen = 0, next = 0;
	int rc = 0;

	seen = malloc((t->nw + t->n + 1) * sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct fs_lock *l = &t->l[i];

		if (fs_lock_conflicts(l, req) &&
		    !owner_in(seen, n_seen, l->node, l->owner))
			seen[n_seen++] = (struct owner_id){l->node, l->owner};
	}
	while (next < n_seen && rc == 0) {
		struct owner_id o = seen[next++];

		for (size_t j = 0; j < t->nw && rc == 0; j++) {
			const struct fs_lock *w = &t->w[j].want;

			if (w->kind != FS_LOCK_POSIX || w->node != o.node ||
			    w->owner != o.owner)
				continue;
			for (size_t i = 0; i < t->n; i++) {
				const struct fs_lock *l = &t->l[i];

				if (!fs_lock_conflicts(l, w))
					continue;
				if (same_owner(l, req)) {
					rc = 1;
					break;
				}
				if (!owner_in(seen, n_seen, l->node, l->owner))
					seen[n_seen++] = (struct owner_id){
						l->node, l->owner};
			}
		}
	}
	free(seen);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Requests.                                                               */

int fs_locks_set(struct fs_locks *t, const struct fs_lock *req,
		 const struct fs_lock_waiter *w)
{
	bool changed = false;
	int rc;

	if (!fs_lock_is_valid(req))
		return -EINVAL;
	if (w && req->type != FS_LOCK_UNLOCK) {
		if (t->nw && w->id <= t->w[t->nw - 1].id)
			return -EINVAL;
	}
	if (req->kind == FS_LOCK_FLOCK && req->type != FS_LOCK_UNLOCK) {
		size_t lo, hi;

		owner_span(t, req, &lo, &hi);
		if (hi > lo && t->l[lo].type == req->type)
			return 0;
		if (hi > lo) {
			/* A conversion: the old lock goes first. */
			splice(t, lo, hi, NULL, 0);
			changed = true;
		}
	}
	if (req->type == FS_LOCK_UNLOCK || !fs_locks_test(t, req, NULL)) {
		rc = apply_lock(t, req, true);
		if (rc == 0 || changed)
			grant_waiters(t, req->ino);
		return rc;
	}
	rc = -EAGAIN;
	if (w) {
		struct fs_lock_waiter q = *w;

		q.want = *req;
		rc = 0;
		if (req->kind == FS_LOCK_POSIX)
			rc = would_deadlock(t, req);
		if (rc == 1)
			rc = -EDEADLK;
		else if (rc == 0 && t->nw >= FS_LOCK_WAITERS_MAX)
			rc = -ENOLCK;
		else if (rc == 0)
			rc = insert_waiter(t, &q);
		if (rc == 0)
			rc = 1;
	}
	if (changed)
		grant_waiters(t, req->ino);
	return rc;
}

int fs_locks_cancel(struct fs_locks *t, uint64_t node, uint64_t epoch,
		    uint64_t seq)
{
	for (size_t i = 0; i < t->nw; i++) {
		const struct fs_lock_waiter *w = &t->w[i];

		if (w->want.node == node && w->epoch == epoch && w->seq == seq) {
			remove_waiter(t, i);
			return 0;
		}
	}
	return -ENOENT;
}

size_t fs_locks_release_node(struct fs_locks *t, uint64_t node)
{
	size_t gone = 0, k = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (t->l[i].node == node)
			gone++;
		else
			t->l[k++] = t->l[i];
	}
	t->n = k;
	k = 0;
	for (size_t i = 0; i < t->nw; i++) {
		if (t->w[i].want.node == node)
			gone++;
		else
			t->w[k++] = t->w[i];
	}
	t->nw = k;
	if (gone)
		grant_waiters(t, 0);
	return gone;
}

size_t fs_locks_release_owner(struct fs_locks *t, uint64_t ino, uint8_t kind,
			      uint64_t node, uint64_t owner)
{
	struct fs_lock key = {.ino = ino, .kind = kind, .node = node,
			      .owner = owner};
	size_t lo, hi;

	owner_span(t, &key, &lo, &hi);
	if (hi == lo)
		return 0;
	splice(t, lo, hi, NULL, 0);
	grant_waiters(t, ino);
	return hi - lo;
}

/* ---------------------------------------------------------------------- */
/* Walks and records.                                                      */

int fs_locks_each(const struct fs_locks *t, uint64_t ino,
		  int (*fn)(void *ctx, const struct fs_lock *l), void *ctx)
{
	for (size_t i = 0; i < t->n; i++) {
		int rc;

		if (ino && t->l[i].ino != ino)
			continue;
		if ((rc = fn(ctx, &t->l[i])))
			return rc;
	}
	return 0;
}

int fs_locks_each_waiter(const struct fs_locks *t, uint64_t ino,
			 int (*fn)(void *ctx, const struct fs_lock_waiter *w),
			 void *ctx)
{
	for (size_t i = 0; i < t->nw; i++) {
		int rc;

		if (ino && t->w[i].want.ino != ino)
			continue;
		if ((rc = fn(ctx, &t->w[i])))
			return rc;
	}
	return 0;
}

static void put_lock(struct fs_wbuf *b, const struct fs_lock *l)
{
	fs_put_u8(b, l->kind);
	fs_put_u8(b, l->type);
	fs_put_u64(b, l->node);
	fs_put_u64(b, l->owner);
	fs_put_u64(b, l->start);
	fs_put_u64(b, l->end);
	fs_put_u32(b, l->pid);
}

static void get_lock(struct fs_rbuf *r, uint64_t ino, struct fs_lock *l)
{
	l->ino = ino;
	l->kind = fs_get_u8(r);
	l->type = fs_get_u8(r);
	l->node = fs_get_u64(r);
	l->owner = fs_get_u64(r);
	l->start = fs_get_u64(r);
	l->end = fs_get_u64(r);
	l->pid = fs_get_u32(r);
}

bool fs_locks_encode_ino(const struct fs_locks *t, uint64_t ino,
			 struct fs_wbuf *b)
{
	struct fs_lock key = {.ino = ino};
	size_t lo = lock_pos(t, &key), hi = lo, nw = 0;

	while (hi < t->n && t->l[hi].ino == ino)
		hi++;
	for (size_t i = 0; i < t->nw; i++)
		nw += t->w[i].want.ino == ino;
	if (hi == lo && nw == 0)
		return false;
	fs_put_u32(b, (uint32_t)(hi - lo));
	for (size_t i = lo; i < hi; i++)
		put_lock(b, &t->l[i]);
	fs_put_u32(b, (uint32_t)nw);
	for (size_t i = 0; i < t->nw; i++) {
		if (t->w[i].want.ino != ino)
			continue;
		fs_put_u64(b, t->w[i].id);
		fs_put_u64(b, t->w[i].epoch);
		fs_put_u64(b, t->w[i].seq);
		put_lock(b, &t->w[i].want);
	}
	return true;
}

/* Invariants of ino's locks and waiters; 0 or -EBADMSG with why. */
static int check_ino(const struct fs_locks *t, size_t lo, size_t hi,
		     char *why, size_t why_size)
{
	for (size_t i = lo; i < hi; i++) {
		const struct fs_lock *a = &t->l[i];

		if (!fs_lock_is_valid(a) || a->type == FS_LOCK_UNLOCK) {
			snprintf(why, why_size, "malformed lock on inode %llu",
				 (unsigned long long)a->ino);
			return -EBADMSG;
		}
		if (i > lo && lock_cmp(&t->l[i - 1], a) >= 0) {
			snprintf(why, why_size, "locks of inode %llu out of order",
				 (unsigned long long)a->ino);
			return -EBADMSG;
		}
		for (size_t j = lo; j < i; j++) {
			const struct fs_lock *b = &t->l[j];

			if (fs_lock_conflicts(a, b)) {
				snprintf(why, why_size,
					 "conflicting locks held on inode %llu "
					 "by node %llu and node %llu",
					 (unsigned long long)a->ino,
					 (unsigned long long)a->node,
					 (unsigned long long)b->node);
				return -EBADMSG;
			}
			if (a->kind == b->kind && same_owner(a, b) &&
			    (a->kind == FS_LOCK_FLOCK ||
			     overlaps(a, b->start, b->end) ||
			     (a->type == b->type &&
			      touches(a, b->start, b->end)))) {
				snprintf(why, why_size,
					 "one owner's locks on inode %llu "
					 "overlap or are not merged",
					 (unsigned long long)a->ino);
				return -EBADMSG;
			}
		}
	}
	return 0;
}

int fs_locks_check(const struct fs_locks *t, char *why, size_t why_size)
{
	size_t lo = 0;
	int rc;

	while (lo < t->n) {
		size_t hi = lo;

		while (hi < t->n && t->l[hi].ino == t->l[lo].ino)
			hi++;
		if ((rc = check_ino(t, lo, hi, why, why_size)))
			return rc;
		if (lo > 0 && t->l[lo - 1].ino >= t->l[lo].ino) {
			snprintf(why, why_size, "lock table out of order");
			return -EBADMSG;
		}
		lo = hi;
	}
	for (size_t i = 0; i < t->nw; i++) {
		const struct fs_lock_waiter *w = &t->w[i];

		if (!fs_lock_is_valid(&w->want) ||
		    w->want.type == FS_LOCK_UNLOCK ||
		    (i > 0 && t->w[i - 1].id >= w->id)) {
			snprintf(why, why_size,
				 "malformed or unordered waiter on inode %llu",
				 (unsigned long long)w->want.ino);
			return -EBADMSG;
		}
		if (!fs_locks_test(t, &w->want, NULL)) {
			snprintf(why, why_size,
				 "a waiter on inode %llu waits for no lock",
				 (unsigned long long)w->want.ino);
			return -EBADMSG;
		}
	}
	return 0;
}

int fs_locks_decode_ino(struct fs_locks *t, uint64_t ino, const uint8_t *p,
			size_t len)
{
	struct fs_rbuf r = {.p = p, .len = len};
	struct fs_lock key = {.ino = ino};
	uint32_t n, nw;
	size_t lo, hi;
	char why[160];
	int rc;

	if (ino == 0)
		return -EBADMSG;
	lo = lock_pos(t, &key);
	if (lo < t->n && t->l[lo].ino == ino)
		return -EBADMSG; /* a second record of ino */
	n = fs_get_u32(&r);
	if (r.bad || n > FS_LOCKS_MAX || (size_t)n * 38 > len)
		return -EBADMSG;
	if (t->n + n > FS_LOCKS_MAX)
		return -ENOLCK;
	if ((rc = reserve_locks(t, n)))
		return rc;
	if (n && t->n > lo)
		memmove(&t->l[lo + n], &t->l[lo], (t->n - lo) * sizeof(*t->l));
	for (uint32_t i = 0; i < n; i++)
		get_lock(&r, ino, &t->l[lo + i]);
	t->n += n;
	hi = lo + n;
	rc = r.bad ? -EBADMSG : check_ino(t, lo, hi, why, sizeof(why));
	nw = fs_get_u32(&r);
	if (rc == 0 && (r.bad || nw > FS_LOCK_WAITERS_MAX ||
			t->nw + nw > FS_LOCK_WAITERS_MAX))
		rc = -EBADMSG;
	for (uint32_t i = 0; i < nw && rc == 0; i++) {
		struct fs_lock_waiter w;

		w.id = fs_get_u64(&r);
		w.epoch = fs_get_u64(&r);
		w.seq = fs_get_u64(&r);
		get_lock(&r, ino, &w.want);
		if (r.bad || !fs_lock_is_valid(&w.want) ||
		    w.want.type == FS_LOCK_UNLOCK ||
		    !fs_locks_test(t, &w.want, NULL))
			rc = -EBADMSG;
		for (size_t j = 0; j < t->nw && rc == 0; j++)
			if (t->w[j].id == w.id)
				rc = -EBADMSG;
		if (rc == 0)
			rc = insert_waiter(t, &w);
	}
	if (rc == 0 && !fs_rbuf_done(&r))
		rc = -EBADMSG;
	if (rc) {
		/* Leave the table as it was. */
		size_t k = 0;

		splice(t, lo, hi, NULL, 0);
		for (size_t i = 0; i < t->nw; i++)
			if (t->w[i].want.ino != ino)
				t->w[k++] = t->w[i];
		t->nw = k;
	}
	return rc;
}
