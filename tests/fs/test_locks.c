/*
 * The lock table (fs/locks.c): directed cases (splits, merges, EOF ranges,
 * flock conversion, deadlocks across inodes, grants in order), then random
 * operations against a reference model that keeps one state per owner and
 * byte cell (bytes 0..11 one cell each, cell 12 standing for 12..EOF).
 * After every step the table must hold exactly the model's bytes, in
 * canonical form (fs_locks_check), grant the same waiters in the same
 * order, and survive its record encoding. LOCK_OPS (default 200,000)
 * operations; SEED=n replays a run.
 */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/locks.h"
#include "tests/fs/fs_test.h"

#define CELLS 13 /* cell 12: bytes 12..EOF */
#define INOS 2
#define OWNERS 4 /* node 1 + i / 2, owner 1 + i % 2 */
#define KINDS 2

static uint64_t seed, step;

#define FAIL_AT(...)                                                            \
	do {                                                                   \
		print_error("step %" PRIu64 " (replay: SEED=%" PRIu64 "): ",     \
			    step, seed);                                       \
		print_error(__VA_ARGS__);                                      \
		fail();                                                        \
	} while (0)

/* ---------------------------------------------------------------------- */
/* Directed cases.                                                         */

struct grants {
	uint64_t ids[64];
	size_t n;
};

static void on_grant(void *ctx, const struct fs_lock_waiter *w)
{
	struct grants *g = ctx;

	if (g->n < 64)
		g->ids[g->n++] = w->id;
}

static struct fs_lock plock(uint64_t ino, uint64_t node, uint64_t owner,
			    uint8_t type, uint64_t start, uint64_t end)
{
	return (struct fs_lock){.ino = ino, .node = node, .owner = owner,
				.start = start, .end = end, .pid = 7,
				.kind = FS_LOCK_POSIX, .type = type};
}

static struct fs_lock flk(uint64_t ino, uint64_t node, uint64_t owner,
			  uint8_t type)
{
	return (struct fs_lock){.ino = ino, .node = node, .owner = owner,
				.start = 0, .end = FS_LOCK_EOF,
				.kind = FS_LOCK_FLOCK, .type = type};
}

struct collect {
	struct fs_lock l[16];
	size_t n;
};

static int collect_fn(void *ctx, const struct fs_lock *l)
{
	struct collect *c = ctx;

	if (c->n < 16)
		c->l[c->n++] = *l;
	return 0;
}

static struct collect all_locks(struct fs_locks *t)
{
	struct collect c = {.n = 0};

	fs_locks_each(t, 0, collect_fn, &c);
	return c;
}

static void test_split_merge(void **state)
{
	struct fs_locks *t;
	struct fs_lock a;
	struct collect c;
	char why[160];

	(void)state;
	assert_int_equal(fs_locks_create(&t), 0);
	a = plock(5, 1, 1, FS_LOCK_WRITE, 0, FS_LOCK_EOF);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	/* A read lock in the middle splits the write lock in three. */
	a = plock(5, 1, 1, FS_LOCK_READ, 10, 19);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	c = all_locks(t);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.l[0].end, 9);
	assert_int_equal(c.l[1].type, FS_LOCK_READ);
	assert_int_equal(c.l[2].start, 20);
	assert_int_equal(c.l[2].end, FS_LOCK_EOF);
	/* Another owner may read-lock under the read lock only. */
	a = plock(5, 2, 1, FS_LOCK_READ, 12, 15);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(5, 2, 1, FS_LOCK_READ, 12, 20);
	assert_int_equal(fs_locks_set(t, &a, NULL), -EAGAIN);
	/* Writing over the whole range merges back into one lock (node 2
	 * unlocks first). */
	a = plock(5, 2, 1, FS_LOCK_UNLOCK, 0, FS_LOCK_EOF);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(5, 1, 1, FS_LOCK_WRITE, 10, 19);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	c = all_locks(t);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.l[0].start, 0);
	assert_int_equal(c.l[0].end, FS_LOCK_EOF);
	/* Touching ranges of one type merge; unlocking splits. */
	a = plock(6, 1, 1, FS_LOCK_READ, 0, 4);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(6, 1, 1, FS_LOCK_READ, 5, 9);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(6, 1, 1, FS_LOCK_UNLOCK, 3, 3);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	c = all_locks(t);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.l[1].end, 2);
	assert_int_equal(c.l[2].start, 4);
	assert_int_equal(c.l[2].end, 9);
	assert_int_equal(fs_locks_check(t, why, sizeof(why)), 0);
	/* Malformed requests. */
	a = plock(6, 1, 1, FS_LOCK_READ, 9, 3);
	assert_int_equal(fs_locks_set(t, &a, NULL), -EINVAL);
	a = flk(6, 1, 1, FS_LOCK_READ);
	a.end = 10;
	assert_int_equal(fs_locks_set(t, &a, NULL), -EINVAL);
	fs_locks_destroy(t);
}

static void test_waiters_and_deadlock(void **state)
{
	struct fs_locks *t;
	struct grants g = {.n = 0};
	struct fs_lock a;
	struct fs_lock_waiter w = {.epoch = 1};

	(void)state;
	assert_int_equal(fs_locks_create(&t), 0);
	fs_locks_set_grant_fn(t, on_grant, &g);
	/* Owner A (node 1) holds ino 5, owner B (node 2) holds ino 6. */
	a = plock(5, 1, 1, FS_LOCK_WRITE, 0, 99);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(6, 2, 1, FS_LOCK_WRITE, 0, 99);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	/* B waits for A's range: queued. */
	a = plock(5, 2, 1, FS_LOCK_WRITE, 50, 50);
	w.id = w.seq = 10;
	assert_int_equal(fs_locks_set(t, &a, &w), 1);
	/* A waiting for B's range would close the cycle. */
	a = plock(6, 1, 1, FS_LOCK_READ, 0, 0);
	w.id = w.seq = 11;
	assert_int_equal(fs_locks_set(t, &a, &w), -EDEADLK);
	/* A third owner C waits on B: no cycle. */
	a = plock(6, 3, 1, FS_LOCK_READ, 0, 0);
	w.id = w.seq = 12;
	assert_int_equal(fs_locks_set(t, &a, &w), 1);
	assert_int_equal(fs_locks_waiter_count(t), 2);
	/* A unlocks: B is granted (and C still waits on B). */
	a = plock(5, 1, 1, FS_LOCK_UNLOCK, 0, FS_LOCK_EOF);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ids[0], 10);
	/* B goes away (its node): C is granted. */
	assert_int_equal(fs_locks_release_node(t, 2), 2);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.ids[1], 12);
	/* Cancel. */
	a = plock(6, 1, 1, FS_LOCK_WRITE, 0, 0);
	w.id = w.seq = 13;
	assert_int_equal(fs_locks_set(t, &a, &w), 1);
	assert_int_equal(fs_locks_cancel(t, 1, 1, 13), 0);
	assert_int_equal(fs_locks_cancel(t, 1, 1, 13), -ENOENT);
	/* An id not above the queued ones is refused. */
	w.id = 13;
	assert_int_equal(fs_locks_set(t, &a, &w), 1);
	w.id = 12;
	assert_int_equal(fs_locks_set(t, &a, &w), -EINVAL);
	fs_locks_destroy(t);
}

static void test_flock(void **state)
{
	struct fs_locks *t;
	struct grants g = {.n = 0};
	struct fs_lock a;
	struct fs_lock_waiter w = {.epoch = 1};

	(void)state;
	assert_int_equal(fs_locks_create(&t), 0);
	fs_locks_set_grant_fn(t, on_grant, &g);
	a = flk(5, 1, 1, FS_LOCK_READ);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = flk(5, 2, 1, FS_LOCK_READ);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	/* POSIX locks do not meet flock locks. */
	a = plock(5, 3, 1, FS_LOCK_WRITE, 0, FS_LOCK_EOF);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	/* An upgrade that must wait drops the shared lock first. */
	a = flk(5, 1, 1, FS_LOCK_WRITE);
	w.id = w.seq = 1;
	assert_int_equal(fs_locks_set(t, &a, &w), 1);
	assert_int_equal(fs_locks_count(t), 2);
	/* Node 2's shared lock goes: the upgrade is granted. */
	a = flk(5, 2, 1, FS_LOCK_UNLOCK);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	assert_int_equal(g.n, 1);
	a = flk(5, 2, 1, FS_LOCK_READ);
	assert_int_equal(fs_locks_set(t, &a, NULL), -EAGAIN);
	assert_int_equal(fs_locks_release_owner(t, 5, FS_LOCK_FLOCK, 1, 1), 1);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	fs_locks_destroy(t);
}

/* ---------------------------------------------------------------------- */
/* The reference model.                                                    */

struct mwaiter {
	uint64_t id;
	int ino, kind, owner, type, a, b; /* cells a..b */
};

struct lmodel {
	uint8_t held[INOS][KINDS][OWNERS][CELLS];
	struct mwaiter w[256];
	size_t nw;
	uint64_t granted[64];
	size_t n_granted;
};

static uint64_t owner_node(int o)
{
	return 1 + (uint64_t)o / 2;
}

static uint64_t owner_owner(int o)
{
	return 1 + (uint64_t)o % 2;
}

static bool m_conflicts(const struct lmodel *m, int ino, int kind, int owner,
			int type, int a, int b, int *with)
{
	for (int o = 0; o < OWNERS; o++) {
		if (o == owner)
			continue;
		for (int c = a; c <= b; c++) {
			uint8_t h = m->held[ino][kind][o][c];

			if (h && (h == FS_LOCK_WRITE || type == FS_LOCK_WRITE)) {
				if (with)
					*with = o;
				return true;
			}
		}
	}
	return false;
}

static void m_apply(struct lmodel *m, int ino, int kind, int owner, int type,
		    int a, int b)
{
	for (int c = a; c <= b; c++)
		m->held[ino][kind][owner][c] = (uint8_t)type;
}

static void m_grant(struct lmodel *m, int ino)
{
	bool again = true;

	while (again) {
		again = false;
		for (size_t i = 0; i < m->nw; i++) {
			struct mwaiter w = m->w[i];

			if ((ino >= 0 && w.ino != ino) ||
			    m_conflicts(m, w.ino, w.kind, w.owner, w.type, w.a,
					w.b, NULL))
				continue;
			m_apply(m, w.ino, w.kind, w.owner, w.type, w.a, w.b);
			memmove(&m->w[i], &m->w[i + 1],
				(m->nw - i - 1) * sizeof(m->w[0]));
			m->nw--;
			if (m->n_granted < 64)
				m->granted[m->n_granted++] = w.id;
			again = true;
			break;
		}
	}
}

/* Owners holding something a request of (ino, kind 0, type, a..b) by
 * owner conflicts with: a bit set. */
static unsigned m_blockers(const struct lmodel *m, int ino, int owner,
			   int type, int a, int b)
{
	unsigned set = 0;

	for (int o = 0; o < OWNERS; o++) {
		if (o == owner)
			continue;
		for (int c = a; c <= b; c++) {
			uint8_t h = m->held[ino][0][o][c];

			if (h && (h == FS_LOCK_WRITE || type == FS_LOCK_WRITE))
				set |= 1u << o;
		}
	}
	return set;
}

static bool m_deadlock(const struct lmodel *m, int ino, int owner, int type,
		       int a, int b)
{
	unsigned reach = m_blockers(m, ino, owner, type, a, b), prev = 0;

	while (reach != prev) {
		prev = reach;
		for (size_t i = 0; i < m->nw; i++) {
			const struct mwaiter *w = &m->w[i];

			if (w->kind == 0 && (reach & (1u << w->owner)))
				reach |= m_blockers(m, w->ino, w->owner,
						    w->type, w->a, w->b);
		}
	}
	return reach & (1u << owner);
}

static int m_set(struct lmodel *m, int ino, int kind, int owner, int type,
		 int a, int b, bool wait, uint64_t id)
{
	bool changed = false;

	if (kind == 1 && type != FS_LOCK_UNLOCK) {
		uint8_t own = m->held[ino][1][owner][0];

		if (own == type)
			return 0;
		if (own) {
			m_apply(m, ino, 1, owner, 0, 0, CELLS - 1);
			changed = true;
		}
	}
	if (type == FS_LOCK_UNLOCK ||
	    !m_conflicts(m, ino, kind, owner, type, a, b, NULL)) {
		m_apply(m, ino, kind, owner, type, a, b);
		m_grant(m, ino);
		return 0;
	}
	if (!wait) {
		if (changed)
			m_grant(m, ino);
		return -EAGAIN;
	}
	if (kind == 0 && m_deadlock(m, ino, owner, type, a, b))
		return -EDEADLK; /* (no change: POSIX) */
	m->w[m->nw++] = (struct mwaiter){id, ino, kind, owner, type, a, b};
	if (changed)
		m_grant(m, ino);
	return 1;
}

/* ---------------------------------------------------------------------- */
/* Comparing.                                                              */

struct expand {
	uint8_t held[INOS][KINDS][OWNERS][CELLS];
	bool bad;
};

static int owner_index(uint64_t node, uint64_t owner)
{
	if (node < 1 || node > OWNERS / 2 || owner < 1 || owner > 2)
		return -1;
	return (int)((node - 1) * 2 + owner - 1);
}

static int expand_fn(void *ctx, const struct fs_lock *l)
{
	struct expand *e = ctx;
	int o = owner_index(l->node, l->owner);
	int ino = (int)l->ino - 5, b;

	if (o < 0 || ino < 0 || ino >= INOS || l->start >= CELLS ||
	    (l->end >= CELLS - 1 && l->end != FS_LOCK_EOF) ||
	    (l->pid != 7 && l->kind == FS_LOCK_POSIX)) {
		e->bad = true;
		return 0;
	}
	b = l->end == FS_LOCK_EOF ? CELLS - 1 : (int)l->end;
	for (int c = (int)l->start; c <= b; c++) {
		if (e->held[ino][l->kind - 1][o][c])
			e->bad = true;
		e->held[ino][l->kind - 1][o][c] = l->type;
	}
	return 0;
}

struct wlist {
	struct fs_lock_waiter w[256];
	size_t n;
};

static int wlist_fn(void *ctx, const struct fs_lock_waiter *w)
{
	struct wlist *l = ctx;

	if (l->n < 256)
		l->w[l->n++] = *w;
	return 0;
}

static int lock_list_fn(void *ctx, const struct fs_lock *l)
{
	struct fs_lock **p = ctx;

	*(*p)++ = *l;
	return 0;
}

/* The records of every inode decode into an identical table. */
static void check_roundtrip(struct fs_locks *t)
{
	struct fs_locks *u;
	struct fs_lock *la, *lb, *pa, *pb;
	struct wlist wa = {.n = 0}, wb = {.n = 0};
	uint8_t buf[65536];

	assert_int_equal(fs_locks_create(&u), 0);
	for (uint64_t ino = 5; ino < 5 + INOS; ino++) {
		struct fs_wbuf w = {.buf = buf, .cap = sizeof(buf)};

		if (!fs_locks_encode_ino(t, ino, &w))
			continue;
		assert_false(w.overflow);
		if (fs_locks_decode_ino(u, ino, buf, w.len) != 0)
			FAIL_AT("the record of inode %" PRIu64
				" does not decode\n", ino);
	}
	if (fs_locks_count(u) != fs_locks_count(t) ||
	    fs_locks_waiter_count(u) != fs_locks_waiter_count(t))
		FAIL_AT("decoded table has other counts\n");
	la = pa = calloc(fs_locks_count(t) + 1, sizeof(*la));
	lb = pb = calloc(fs_locks_count(t) + 1, sizeof(*lb));
	fs_locks_each(t, 0, lock_list_fn, &pa);
	fs_locks_each(u, 0, lock_list_fn, &pb);
	for (size_t i = 0; i < fs_locks_count(t); i++)
		if (memcmp(&la[i], &lb[i], sizeof(la[i])) != 0)
			FAIL_AT("decoded lock %zu differs\n", i);
	fs_locks_each_waiter(t, 0, wlist_fn, &wa);
	fs_locks_each_waiter(u, 0, wlist_fn, &wb);
	for (size_t i = 0; i < wa.n; i++)
		if (memcmp(&wa.w[i], &wb.w[i], sizeof(wa.w[i])) != 0)
			FAIL_AT("decoded waiter %zu differs\n", i);
	free(la);
	free(lb);
	fs_locks_destroy(u);
}

static void compare(struct fs_locks *t, const struct lmodel *m,
		    const struct grants *g)
{
	struct expand e;
	struct wlist wl = {.n = 0};
	char why[160];

	memset(&e, 0, sizeof(e));
	if (fs_locks_check(t, why, sizeof(why)) != 0)
		FAIL_AT("table check: %s\n", why);
	fs_locks_each(t, 0, expand_fn, &e);
	if (e.bad)
		FAIL_AT("a lock outside the model's cells or overlapping\n");
	if (memcmp(e.held, m->held, sizeof(e.held)) != 0)
		FAIL_AT("held locks differ from the model\n");
	fs_locks_each_waiter(t, 0, wlist_fn, &wl);
	if (wl.n != m->nw)
		FAIL_AT("%zu waiters, model %zu\n", wl.n, m->nw);
	for (size_t i = 0; i < wl.n; i++)
		if (wl.w[i].id != m->w[i].id)
			FAIL_AT("waiter %zu differs\n", i);
	if (g->n != m->n_granted ||
	    memcmp(g->ids, m->granted, g->n * sizeof(g->ids[0])) != 0)
		FAIL_AT("grants differ: %zu, model %zu\n", g->n,
			m->n_granted);
}

static void random_range(uint64_t *rng, int *a, int *b, uint64_t *start,
			 uint64_t *end)
{
	*a = (int)(fst_rand(rng) % CELLS);
	if (*a == CELLS - 1 || fst_rand(rng) % 4 == 0) {
		*b = CELLS - 1;
		*end = FS_LOCK_EOF;
	} else {
		*b = *a + (int)(fst_rand(rng) % (uint64_t)(CELLS - 1 - *a));
		*end = (uint64_t)*b;
	}
	*start = (uint64_t)*a;
}

static void test_model(void **state)
{
	uint64_t n = fst_env_count("LOCK_OPS", 200000), rng, id = 0;
	uint64_t counts[7] = {0};
	struct fs_locks *t;
	struct lmodel *m = calloc(1, sizeof(*m));
	struct grants g = {.n = 0};

	(void)state;
	seed = fst_seed((uint64_t)time(NULL));
	rng = seed;
	assert_int_equal(fs_locks_create(&t), 0);
	fs_locks_set_grant_fn(t, on_grant, &g);
	for (step = 0; step < n; step++) {
		uint64_t r = fst_rand(&rng) % 100;
		int ino = (int)(fst_rand(&rng) % INOS);
		int owner = (int)(fst_rand(&rng) % OWNERS);
		int kind = (int)(fst_rand(&rng) % 4 == 0); /* 1: flock */
		struct fs_lock req = {.ino = 5 + (uint64_t)ino,
				      .node = owner_node(owner),
				      .owner = owner_owner(owner), .pid = 7,
				      .kind = (uint8_t)(kind + 1)};
		int a = 0, b = CELLS - 1, got, want;

		g.n = 0;
		m->n_granted = 0;
		req.start = 0;
		req.end = FS_LOCK_EOF;
		if (kind == 0)
			random_range(&rng, &a, &b, &req.start, &req.end);
		if (r < 65) {
			bool wait = fst_rand(&rng) % 3 == 0 && m->nw < 200;
			struct fs_lock_waiter w = {.id = ++id, .epoch = 1,
						   .seq = id};

			req.type = (uint8_t)(fst_rand(&rng) % 3);
			got = fs_locks_set(t, &req, wait ? &w : NULL);
			want = m_set(m, ino, kind, owner, req.type, a, b, wait,
				     id);
			counts[got == 1 ? 1 : got == 0 ? 0 : 2]++;
			counts[6] += got == -EDEADLK;
			if (got != want)
				FAIL_AT("set: %d, model %d\n", got, want);
		} else if (r < 75 && m->nw) {
			size_t i = fst_rand(&rng) % m->nw;

			got = fs_locks_cancel(t, owner_node(m->w[i].owner), 1,
					      m->w[i].id);
			if (got != 0)
				FAIL_AT("cancel: %d\n", got);
			memmove(&m->w[i], &m->w[i + 1],
				(m->nw - i - 1) * sizeof(m->w[0]));
			m->nw--;
			counts[3]++;
		} else if (r < 78) {
			uint64_t node = owner_node(owner);
			size_t gone = 0;

			for (int o = 0; o < OWNERS; o++) {
				if (owner_node(o) != node)
					continue;
				for (int i = 0; i < INOS; i++)
					for (int k = 0; k < KINDS; k++)
						for (int c = 0; c < CELLS; c++)
							gone += m->held[i][k][o][c] != 0;
			}
			for (size_t i = 0; i < m->nw;) {
				if (owner_node(m->w[i].owner) == node) {
					memmove(&m->w[i], &m->w[i + 1],
						(m->nw - i - 1) *
							sizeof(m->w[0]));
					m->nw--;
					gone++;
				} else {
					i++;
				}
			}
			got = (int)fs_locks_release_node(t, node);
			if ((got != 0) != (gone != 0))
				FAIL_AT("release_node: %d\n", got);
			for (int o = 0; o < OWNERS; o++) {
				if (owner_node(o) != node)
					continue;
				for (int i = 0; i < INOS; i++)
					for (int k = 0; k < KINDS; k++)
						m_apply(m, i, k, o, 0, 0,
							CELLS - 1);
			}
			m_grant(m, -1);
			counts[4]++;
		} else if (r < 85) {
			got = (int)fs_locks_release_owner(
				t, req.ino, req.kind, req.node, req.owner);
			m_apply(m, ino, kind, owner, 0, 0, CELLS - 1);
			m_grant(m, ino);
			(void)got;
			counts[5]++;
		} else {
			struct fs_lock c;
			bool tg, mg;

			req.type = (uint8_t)(1 + fst_rand(&rng) % 2);
			tg = fs_locks_test(t, &req, &c);
			mg = m_conflicts(m, ino, kind, owner, req.type, a, b,
					 NULL);
			if (tg != mg)
				FAIL_AT("test: %d, model %d\n", tg, mg);
			if (tg && !fs_lock_conflicts(&c, &req))
				FAIL_AT("test reports a lock without "
					"conflict\n");
		}
		compare(t, m, &g);
		if (step % 97 == 0)
			check_roundtrip(t);
	}
	print_message("locks: seed %" PRIu64 ": %" PRIu64
		      " operations: %" PRIu64 " set, %" PRIu64 " queued, %" PRIu64
		      " refused (%" PRIu64 " deadlocks), %" PRIu64
		      " cancelled, %" PRIu64
		      " node releases, %" PRIu64 " owner releases\n",
		      seed, n, counts[0], counts[1], counts[2], counts[6], counts[3],
		      counts[4], counts[5]);
	fs_locks_destroy(t);
	free(m);
}

/* Malformed records are refused and leave the table as it was. */
static void test_records(void **state)
{
	struct fs_locks *t, *u;
	struct fs_lock a = plock(5, 1, 1, FS_LOCK_WRITE, 0, 9);
	uint8_t buf[4096];
	struct fs_wbuf w = {.buf = buf, .cap = sizeof(buf)};
	uint64_t rng = 1;

	(void)state;
	assert_int_equal(fs_locks_create(&t), 0);
	assert_int_equal(fs_locks_create(&u), 0);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	a = plock(5, 2, 1, FS_LOCK_READ, 20, 29);
	assert_int_equal(fs_locks_set(t, &a, NULL), 0);
	assert_true(fs_locks_encode_ino(t, 5, &w));
	for (size_t cut = 0; cut < w.len; cut++)
		assert_int_equal(fs_locks_decode_ino(u, 5, buf, cut), -EBADMSG);
	for (int i = 0; i < 2000; i++) {
		uint8_t bad[4096];
		size_t at = fst_rand(&rng) % w.len;

		memcpy(bad, buf, w.len);
		bad[at] ^= (uint8_t)(1 + fst_rand(&rng) % 255);
		if (fs_locks_decode_ino(u, 5, bad, w.len) == 0)
			fs_locks_clear(u);
		assert_int_equal(fs_locks_count(u), 0);
	}
	assert_int_equal(fs_locks_decode_ino(u, 5, buf, w.len), 0);
	assert_int_equal(fs_locks_decode_ino(u, 5, buf, w.len), -EBADMSG);
	fs_locks_clear(u);
	/* Two locks of different owners that conflict (a lock record is 38
	 * bytes after the count). */
	buf[4 + 38 + 1] = FS_LOCK_WRITE;
	buf[4 + 38 + 2 + 16 + 7] = 5; /* start 5: inside the other lock */
	assert_int_equal(fs_locks_decode_ino(u, 5, buf, w.len), -EBADMSG);
	assert_int_equal(fs_locks_count(u), 0);
	fs_locks_destroy(t);
	fs_locks_destroy(u);
}

TEST_MAIN(cmocka_unit_test(test_split_merge),
	  cmocka_unit_test(test_waiters_and_deadlock),
	  cmocka_unit_test(test_flock), cmocka_unit_test(test_records),
	  cmocka_unit_test(test_model))
