/*
 * Proposals and the proposers waiting for their outcome.
 *
 * A proposal is copied once into a struct rt_proposal shared by its waiter
 * (registered under its proposal id) and the driver. The waiter keeps the
 * bytes until it is completed — by the apply thread when the id is
 * applied here, by the driver at its deadline — because a proposal whose
 * outcome is unknown is proposed again with the SAME id and bytes:
 *
 *   - every retry_ms while it waits, unless it is known to be in this
 *     node's log (appended here as leader at an index whose term has not
 *     changed): such an entry commits or is replaced, and only a replaced
 *     one is proposed again (at once). This covers a forwarded PROPOSE
 *     lost on the way, a leader that dropped it (transfer, cap, lost
 *     leadership) and a refusal here (-EPERM no leader, -EBUSY the cap),
 *     which is therefore not final until the deadline;
 *   - at once when a leader becomes known (a new id or a new term).
 *
 * Proposing again is safe because the state machine judges ids with the
 * duplicate table of raft/proposal.h: the proposer's low-water mark stays
 * at or below the seq of any command whose outcome it does not know, so a
 * second copy of the same id is a DUPLICATE answered with the first
 * copy's result (or OLD_EPOCH after a restart, when nobody waits), never
 * applied twice. Whichever copy applies first completes the waiter; later
 * copies find no waiter.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

/* Proposals handed to raft_propose at once. */
#define PROPOSE_BATCH 256u

struct rt_proposal *rt_proposal_ref(struct rt_proposal *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void rt_proposal_unref(struct rt_proposal *p)
{
	if (p != NULL &&
	    atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		free(p);
}

/* ---- the table of waiters ---- */

static uint32_t id_hash(const struct raft_proposal_id *id)
{
	uint64_t h = id->node * 0x9e3779b97f4a7c15ull ^
		     id->epoch * 0xbf58476d1ce4e5b9ull ^
		     id->seq * 0x94d049bb133111ebull;
	return (uint32_t)((h ^ (h >> 29)) % RT_WAIT_BUCKETS);
}

static bool id_equal(const struct raft_proposal_id *a,
		     const struct raft_proposal_id *b)
{
	return a->node == b->node && a->epoch == b->epoch && a->seq == b->seq;
}

/* The waiter of id, or NULL (wait_mu held). */
static struct rt_waiter *waiter_find(struct raft_runtime *rt,
				     const struct raft_proposal_id *id)
{
	struct rt_waiter *w;

	for (w = rt->buckets[id_hash(id)]; w != NULL; w = w->hnext)
		if (id_equal(&w->id, id))
			break;
	return w;
}

/* Unlink w (wait_mu held). */
static void waiter_unlink(struct raft_runtime *rt, struct rt_waiter *w)
{
	struct rt_waiter **pp = &rt->buckets[id_hash(&w->id)];

	while (*pp != w)
		pp = &(*pp)->hnext;
	*pp = w->hnext;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		rt->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	rt->n_waiters--;
}

static void waiter_free(struct rt_waiter *w)
{
	if (w == NULL)
		return;
	rt_proposal_unref(w->p);
	free(w);
}

void rt_waiter_complete_id(struct raft_runtime *rt,
			   const struct raft_proposal_id *id, int rc,
			   const void *result, size_t result_size)
{
	struct rt_waiter *w;

	pthread_mutex_lock(&rt->wait_mu);
	w = waiter_find(rt, id);
	if (w != NULL)
		waiter_unlink(rt, w);
	pthread_mutex_unlock(&rt->wait_mu);
	if (w == NULL)
		return;
	w->done(w->ctx, rc, result, result_size);
	waiter_free(w);
}

void rt_waiters_expire(struct raft_runtime *rt, uint64_t now_ms, bool all,
		       int rc)
{
	struct rt_waiter *done = NULL, *w, *next;
	uint64_t n = 0;

	pthread_mutex_lock(&rt->wait_mu);
	for (w = rt->waiters; w != NULL; w = next) {
		next = w->next;
		if (all || w->deadline_ms <= now_ms) {
			waiter_unlink(rt, w);
			w->next = done;
			done = w;
			n++;
		}
	}
	pthread_mutex_unlock(&rt->wait_mu);
	if (n > 0 && !all)
		rt_log(rt, 3, "%" PRIu64 " proposals timed out", n);
	for (w = done; w != NULL; w = next) {
		next = w->next;
		/* A refusal says more than "timed out" (no leader known,
		 * the leader's cap); a shutdown or failure says it all. */
		w->done(w->ctx, !all && w->refused != 0 ? w->refused : rc,
			NULL, 0);
		waiter_free(w);
	}
}

/* ---- the API ---- */

int raft_runtime_propose_async(struct raft_runtime *rt,
			       const struct raft_proposal_id *id,
			       const void *data, uint32_t size,
			       uint32_t timeout_ms, raft_runtime_done_fn done,
			       void *ctx)
{
	struct rt_waiter *w;
	struct rt_proposal *p;
	uint64_t now = rt_now_ms();
	uint32_t h;
	int rc = 0;

	if (id == NULL || id->node == 0 || id->epoch == 0 || id->seq == 0 ||
	    size > RAFT_MAX_ENTRY_BYTES || (size > 0 && data == NULL) ||
	    done == NULL)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	p = malloc(sizeof(*p) + size);
	if (w == NULL || p == NULL) {
		free(w);
		free(p);
		return -ENOMEM;
	}
	p->next = NULL;
	atomic_init(&p->refs, 2); /* the waiter's and the driver queue's */
	p->id = *id;
	p->size = size;
	if (size > 0)
		memcpy(p->data, data, size);
	w->id = *id;
	w->deadline_ms = now + timeout_ms;
	w->done = done;
	w->ctx = ctx;
	w->p = p;
	w->queued = true;
	w->retry_at_ms = now + rt->o.retry_ms;

	h = id_hash(id);
	pthread_mutex_lock(&rt->wait_mu);
	if (waiter_find(rt, id) != NULL) {
		rc = -EEXIST;
	} else {
		w->hnext = rt->buckets[h];
		rt->buckets[h] = w;
		w->next = rt->waiters;
		if (rt->waiters != NULL)
			rt->waiters->prev = w;
		rt->waiters = w;
		rt->n_waiters++;
	}
	pthread_mutex_unlock(&rt->wait_mu);
	if (rc != 0) {
		free(w);
		free(p);
		return rc;
	}

	pthread_mutex_lock(&rt->mu);
	if (rt->failed != 0)
		rc = -EIO;
	else if (rt->stop)
		rc = -ESHUTDOWN;
	if (rc == 0) {
		*rt->props_tail = p;
		rt->props_tail = &p->next;
	}
	pthread_mutex_unlock(&rt->mu);
	if (rc == 0) /* after the unlock, as in rt_receive_msg */
		pthread_cond_signal(&rt->wake);
	if (rc != 0) {
		/* Not queued: take the waiter back unless someone (a
		 * shutdown or failure sweep) already answered it. */
		bool mine;
		pthread_mutex_lock(&rt->wait_mu);
		mine = waiter_find(rt, id) == w;
		if (mine)
			waiter_unlink(rt, w);
		pthread_mutex_unlock(&rt->wait_mu);
		rt_proposal_unref(p); /* the queue's */
		if (!mine)
			return 0; /* done was called */
		waiter_free(w);
	}
	return rc;
}

/* A synchronous proposer waits on a semaphore, not a mutex and condition:
 * the completing thread (apply, or the driver at a deadline) posts it
 * after writing the outcome, and the proposer wakes once. A condition
 * signalled under its mutex woke the proposer straight into that mutex,
 * still held by the completer on the other core: a second sleep and
 * wake-up per commit. glibc's sem_post is safe against the waiter
 * returning (and the semaphore on its stack going away) as soon as the
 * count is visible. */
struct sync_wait {
	sem_t sem;
	int rc;
	void *result;
	size_t cap;
	size_t size;
};

static void sync_done(void *ctx, int rc, const void *result,
		      size_t result_size)
{
	struct sync_wait *sw = ctx;

	sw->rc = rc;
	sw->size = result_size;
	if (rc == 0 && result_size > 0 && sw->result != NULL)
		memcpy(sw->result, result,
		       result_size < sw->cap ? result_size : sw->cap);
	sem_post(&sw->sem); /* publishes the fields above */
}

int raft_runtime_propose(struct raft_runtime *rt,
			 const struct raft_proposal_id *id, const void *data,
			 uint32_t size, uint32_t timeout_ms, void *result,
			 size_t result_cap, size_t *result_size)
{
	struct sync_wait sw = {.result = result, .cap = result_cap};
	int rc;

	if (sem_init(&sw.sem, 0, 0) != 0)
		return -errno;
	rc = raft_runtime_propose_async(rt, id, data, size, timeout_ms,
					sync_done, &sw);
	if (rc == 0) {
		while (sem_wait(&sw.sem) != 0)
			; /* EINTR */
		rc = sw.rc;
		if (result_size != NULL)
			*result_size = sw.size;
	}
	sem_destroy(&sw.sem);
	return rc;
}

/* ---- the driver's side ---- */

/* Keep p among the round's proposals (the driver's reference). */
static int keep(struct raft_runtime *rt, struct rt_proposal *p)
{
	if (rt->n_proposed == rt->cap_proposed) {
		uint32_t cap = rt->cap_proposed ? rt->cap_proposed * 2 : 256;
		struct rt_proposal **a =
			realloc(rt->proposed, (size_t)cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		rt->proposed = a;
		rt->cap_proposed = cap;
	}
	rt->proposed[rt->n_proposed++] = p;
	return 0;
}

/* Whether a leader became known since the last round: a new id, or the
 * same one in a new term (it may have lost what was forwarded to it). */
static bool leader_is_new(struct raft_runtime *rt)
{
	uint64_t leader = raft_leader(rt->r), term = raft_term(rt->r);
	bool is_new = leader != 0 && (leader != rt->seen_leader ||
				      term != rt->seen_leader_term);

	rt->seen_leader = leader;
	rt->seen_leader_term = term;
	return is_new;
}

/* Take a reference on every waiting proposal that is due again. */
static void collect_due(struct raft_runtime *rt, uint64_t now_ms,
			bool new_leader)
{
	pthread_mutex_lock(&rt->wait_mu);
	for (struct rt_waiter *w = rt->waiters; w != NULL; w = w->next) {
		bool due;
		if (w->queued || w->deadline_ms <= now_ms)
			continue;
		if (w->log_index != 0) {
			if (raft_term_at(rt->r, w->log_index) == w->log_term)
				continue; /* it commits or is replaced */
			w->log_index = w->log_term = 0;
			due = true; /* replaced by another leader's entry */
		} else {
			due = new_leader || now_ms >= w->retry_at_ms;
		}
		if (!due)
			continue;
		if (keep(rt, rt_proposal_ref(w->p)) != 0) {
			rt_proposal_unref(w->p);
			break; /* the next tick tries again */
		}
		w->retry_at_ms = now_ms + rt->o.retry_ms;
	}
	pthread_mutex_unlock(&rt->wait_mu);
}

/* Record the outcome of raft_propose for ps[0..n) on their waiters;
 * complete those it is final for. index: the first one's (0 when
 * forwarded). */
static void record(struct raft_runtime *rt, struct rt_proposal **ps,
		   uint32_t n, int rc, uint64_t index, uint64_t term,
		   uint64_t now_ms)
{
	struct rt_waiter *final = NULL;
	bool retry = rc == -EPERM || rc == -EBUSY || rc == -ENOMEM;

	pthread_mutex_lock(&rt->wait_mu);
	for (uint32_t i = 0; i < n; i++) {
		struct rt_waiter *w = waiter_find(rt, &ps[i]->id);
		if (w == NULL || w->p != ps[i])
			continue; /* already answered */
		w->queued = false;
		if (rc == 0) {
			w->refused = 0;
			w->log_index = index != 0 ? index + i : 0;
			w->log_term = index != 0 ? term : 0;
		} else if (retry) {
			w->refused = rc == -ENOMEM ? 0 : rc;
		} else {
			waiter_unlink(rt, w);
			w->next = final;
			final = w;
		}
		if (rc != 0 || index == 0)
			w->retry_at_ms = now_ms + rt->o.retry_ms;
	}
	pthread_mutex_unlock(&rt->wait_mu);
	while (final != NULL) {
		struct rt_waiter *w = final;
		final = w->next;
		w->done(w->ctx, rc, NULL, 0);
		waiter_free(w);
	}
}

/* Propose ps[0..n) in batches the core accepts: at most PROPOSE_BATCH
 * entries and, forwarded, RAFT_MAX_BATCH_BYTES. */
static void propose_array(struct raft_runtime *rt, struct rt_proposal **ps,
			  uint32_t n, uint64_t now_ms)
{
	const void *data[PROPOSE_BATCH];
	uint32_t sizes[PROPOSE_BATCH];

	for (uint32_t k = 0; k < n;) {
		uint64_t bytes = 0, index = 0, term = 0;
		uint32_t m = 0;
		while (k + m < n && m < PROPOSE_BATCH &&
		       (m == 0 ||
			bytes + ps[k + m]->size <= RAFT_MAX_BATCH_BYTES)) {
			data[m] = ps[k + m]->data;
			sizes[m] = ps[k + m]->size;
			bytes += ps[k + m]->size;
			m++;
		}
		int rc = raft_propose(rt->r, data, sizes, m, &index, &term);
		record(rt, ps + k, m, rc, index, term, now_ms);
		k += m;
	}
}

void rt_proposals_run(struct raft_runtime *rt, struct rt_proposal *list,
		      uint64_t now_ms, bool ticked)
{
	bool new_leader = leader_is_new(rt);

	/* Queued proposals are skipped here: they follow below. */
	if (ticked || new_leader)
		collect_due(rt, now_ms, new_leader);
	while (list != NULL) {
		struct rt_proposal *p = list;
		list = p->next;
		p->next = NULL;
		if (keep(rt, p) != 0) {
			/* Not proposed now: the retry picks it up. */
			record(rt, &p, 1, -ENOMEM, 0, 0, now_ms);
			rt_proposal_unref(p);
		}
	}
	if (rt->n_proposed > 0)
		propose_array(rt, rt->proposed, rt->n_proposed, now_ms);
}

void rt_proposals_round_done(struct raft_runtime *rt)
{
	for (uint32_t i = 0; i < rt->n_proposed; i++)
		rt_proposal_unref(rt->proposed[i]);
	rt->n_proposed = 0;
}
