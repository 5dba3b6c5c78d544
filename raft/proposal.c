/* Proposal ids, the duplicate-table rules and an in-memory table. */

#include "raft/proposal.h"
#include "raft/byteorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool raft_proposal_is_valid(const struct raft_proposal *p)
{
	return p->id.node != 0 && p->id.epoch != 0 && p->id.seq != 0 &&
	       p->low_water <= p->id.seq;
}

void raft_proposal_encode(const struct raft_proposal *p, uint8_t *buf)
{
	raft_put_u64(buf, p->id.node);
	raft_put_u64(buf + 8, p->id.epoch);
	raft_put_u64(buf + 16, p->id.seq);
	raft_put_u64(buf + 24, p->low_water);
}

int raft_proposal_decode(const uint8_t *buf, size_t size,
			 struct raft_proposal *p)
{
	struct raft_proposal d;

	if (buf == NULL || size < RAFT_PROPOSAL_BYTES)
		return -EINVAL;
	d.id.node = raft_get_u64(buf);
	d.id.epoch = raft_get_u64(buf + 8);
	d.id.seq = raft_get_u64(buf + 16);
	d.low_water = raft_get_u64(buf + 24);
	if (!raft_proposal_is_valid(&d))
		return -EINVAL;
	*p = d;
	return 0;
}

enum raft_dedup_verdict raft_dedup_judge(const struct raft_dedup_state *st,
					 const struct raft_proposal *p,
					 bool has_result)
{
	if (p->id.epoch < st->epoch)
		return RAFT_DEDUP_OLD_EPOCH;
	if (p->id.epoch > st->epoch)
		return RAFT_DEDUP_NEW;
	if (p->id.seq < st->low_water)
		return RAFT_DEDUP_EXPIRED;
	return has_result ? RAFT_DEDUP_DUPLICATE : RAFT_DEDUP_NEW;
}

void raft_dedup_advance(const struct raft_dedup_state *st,
			const struct raft_proposal *p,
			struct raft_dedup_state *next,
			struct raft_dedup_eviction *ev)
{
	memset(ev, 0, sizeof(*ev));
	*next = *st;
	if (p->id.epoch < st->epoch)
		return;
	if (p->id.epoch > st->epoch) {
		next->epoch = p->id.epoch;
		next->low_water = p->low_water;
		ev->all = true;
		return;
	}
	if (p->low_water > st->low_water) {
		ev->from = st->low_water;
		ev->to = p->low_water;
		next->low_water = p->low_water;
	}
}

bool raft_dedup_evicts(const struct raft_dedup_eviction *ev, uint64_t seq)
{
	return ev->all || (seq >= ev->from && seq < ev->to);
}

const char *raft_dedup_verdict_name(enum raft_dedup_verdict v)
{
	switch (v) {
	case RAFT_DEDUP_NEW:
		return "new";
	case RAFT_DEDUP_DUPLICATE:
		return "duplicate";
	case RAFT_DEDUP_EXPIRED:
		return "expired";
	case RAFT_DEDUP_OLD_EPOCH:
		return "old-epoch";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------- */
/* The in-memory table: nodes sorted by id, each with results sorted by    */
/* seq. Proposers keep few ids in flight, so arrays stay short.            */

struct dedup_result {
	uint64_t seq;
	size_t size;
	void *data; /* NULL when size is 0 */
};

struct dedup_node {
	uint64_t node;
	struct raft_dedup_state state;
	size_t n;
	size_t cap;
	struct dedup_result *results;
};

struct raft_dedup_table {
	struct raft_alloc alloc;
	size_t n;
	size_t cap;
	struct dedup_node *nodes;
	size_t count; /* results over all nodes */
};

static void *libc_malloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void *libc_realloc(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	return realloc(ptr, size);
}

static void libc_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

int raft_dedup_table_create(const struct raft_alloc *alloc,
			    struct raft_dedup_table **out)
{
	struct raft_alloc a = {libc_malloc, libc_realloc, libc_free, NULL};
	struct raft_dedup_table *t;

	if (alloc != NULL && alloc->malloc != NULL)
		a = *alloc;
	t = a.malloc(a.ctx, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	memset(t, 0, sizeof(*t));
	t->alloc = a;
	*out = t;
	return 0;
}

static void table_free(struct raft_dedup_table *t, void *p)
{
	if (p != NULL)
		t->alloc.free(t->alloc.ctx, p);
}

void raft_dedup_table_destroy(struct raft_dedup_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		for (size_t j = 0; j < t->nodes[i].n; j++)
			table_free(t, t->nodes[i].results[j].data);
		table_free(t, t->nodes[i].results);
	}
	table_free(t, t->nodes);
	t->alloc.free(t->alloc.ctx, t);
}

/* Index of the first node with id >= node. */
static size_t node_lower_bound(const struct raft_dedup_table *t, uint64_t node)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->nodes[mid].node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct dedup_node *node_find(const struct raft_dedup_table *t,
				    uint64_t node)
{
	size_t i = node_lower_bound(t, node);

	if (i < t->n && t->nodes[i].node == node)
		return &t->nodes[i];
	return NULL;
}

/* Index of the first result with seq' >= seq. */
static size_t result_lower_bound(const struct dedup_node *n, uint64_t seq)
{
	size_t lo = 0, hi = n->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->results[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

enum raft_dedup_verdict raft_dedup_table_check(const struct raft_dedup_table *t,
					       const struct raft_proposal *p,
					       const void **result,
					       size_t *result_size)
{
	struct raft_dedup_state zero = {0, 0};
	const struct dedup_node *n = node_find(t, p->id.node);
	const struct dedup_result *r = NULL;
	enum raft_dedup_verdict v;

	if (n != NULL) {
		size_t i = result_lower_bound(n, p->id.seq);
		if (i < n->n && n->results[i].seq == p->id.seq)
			r = &n->results[i];
	}
	v = raft_dedup_judge(n != NULL ? &n->state : &zero, p, r != NULL);
	if (v == RAFT_DEDUP_DUPLICATE) {
		if (result != NULL)
			*result = r->data;
		if (result_size != NULL)
			*result_size = r->size;
	}
	return v;
}

/* Make room for one more node (or result); 0 or -ENOMEM. */
static int grow(struct raft_dedup_table *t, void **arr, size_t *cap, size_t n,
		size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 4;
	p = t->alloc.realloc(t->alloc.ctx, *arr, ncap * elem);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void node_evict(struct raft_dedup_table *t, struct dedup_node *n,
		       const struct raft_dedup_eviction *ev)
{
	size_t w = 0;

	for (size_t i = 0; i < n->n; i++) {
		if (raft_dedup_evicts(ev, n->results[i].seq)) {
			table_free(t, n->results[i].data);
			t->count--;
		} else {
			n->results[w++] = n->results[i];
		}
	}
	n->n = w;
}

int raft_dedup_table_record(struct raft_dedup_table *t,
			    const struct raft_proposal *p,
			    enum raft_dedup_verdict verdict,
			    const void *result, size_t result_size)
{
	struct raft_dedup_state next;
	struct raft_dedup_eviction ev;
	struct dedup_node *n;
	bool inserted = false;
	void *copy = NULL;
	size_t i;
	int rc;

	if (!raft_proposal_is_valid(p))
		return -EINVAL;
	/* Allocate everything first so that -ENOMEM leaves no change. */
	n = node_find(t, p->id.node);
	if (n == NULL) {
		if (verdict == RAFT_DEDUP_OLD_EPOCH)
			return 0;
		rc = grow(t, (void **)&t->nodes, &t->cap, t->n,
			  sizeof(*t->nodes));
		if (rc != 0)
			return rc;
		i = node_lower_bound(t, p->id.node);
		memmove(&t->nodes[i + 1], &t->nodes[i],
			(t->n - i) * sizeof(*t->nodes));
		memset(&t->nodes[i], 0, sizeof(t->nodes[i]));
		t->nodes[i].node = p->id.node;
		t->n++;
		n = &t->nodes[i];
		inserted = true;
	}
	if (verdict == RAFT_DEDUP_NEW) {
		rc = grow(t, (void **)&n->results, &n->cap, n->n,
			  sizeof(*n->results));
		if (rc == 0 && result_size > 0) {
			copy = t->alloc.malloc(t->alloc.ctx, result_size);
			if (copy == NULL)
				rc = -ENOMEM;
			else
				memcpy(copy, result, result_size);
		}
		if (rc != 0)
			goto undo_insert;
	}
	raft_dedup_advance(&n->state, p, &next, &ev);
	node_evict(t, n, &ev);
	n->state = next;
	if (verdict == RAFT_DEDUP_NEW) {
		i = result_lower_bound(n, p->id.seq);
		if (i < n->n && n->results[i].seq == p->id.seq) {
			/* Only reachable when the caller passed a verdict
			 * that was not judged on this table: replace. */
			table_free(t, n->results[i].data);
			t->count--;
		} else {
			memmove(&n->results[i + 1], &n->results[i],
				(n->n - i) * sizeof(*n->results));
			n->n++;
		}
		n->results[i].seq = p->id.seq;
		n->results[i].size = result_size;
		n->results[i].data = copy;
		t->count++;
	}
	return 0;

undo_insert:
	if (inserted) {
		table_free(t, n->results);
		i = (size_t)(n - t->nodes);
		memmove(&t->nodes[i], &t->nodes[i + 1],
			(t->n - i - 1) * sizeof(*t->nodes));
		t->n--;
	}
	return rc;
}

bool raft_dedup_table_state(const struct raft_dedup_table *t, uint64_t node,
			    struct raft_dedup_state *st)
{
	const struct dedup_node *n = node_find(t, node);

	if (n == NULL) {
		memset(st, 0, sizeof(*st));
		return false;
	}
	*st = n->state;
	return true;
}

size_t raft_dedup_table_count(const struct raft_dedup_table *t)
{
	return t->count;
}

int raft_dedup_table_foreach(const struct raft_dedup_table *t,
			     int (*fn)(void *ctx, uint64_t node, uint64_t epoch,
				       uint64_t seq, const void *result,
				       size_t result_size),
			     void *ctx)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct dedup_node *n = &t->nodes[i];
		for (size_t j = 0; j < n->n; j++) {
			int rc = fn(ctx, n->node, n->state.epoch,
				    n->results[j].seq, n->results[j].data,
				    n->results[j].size);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}
