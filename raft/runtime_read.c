/*
 * Read points (raft_runtime_read_index): the core's ReadIndex (thesis
 * §6.4) run by the driver for many readers at once, completed where the
 * state machine catches up.
 *
 * A reader is queued for the driver. The driver asks the core for ONE read
 * index (one context, a "round") for every reader gathered since it last
 * asked: the answer is valid for all of them, because the leader's
 * confirming heartbeat round started after each of them called. Readers
 * arriving while rounds are in flight do not wait for them: the next
 * driver step asks for a round of theirs, so a reader waits about one
 * round trip (not one to two), and the core starts a heartbeat round for
 * it at once (raft/read_index.c). At most RT_READ_ROUNDS are in flight;
 * beyond that readers wait for one to answer, so the rounds per second
 * stay bounded by the round trip, not by the readers.
 *
 * A round answered with index 0 (leadership lost, leader changed), or one
 * the core cannot start (no leader known), is retried on a later tick. A
 * follower's forwarded request or its answer may be lost, and the core
 * only fails it when its leader changes, so a round unanswered for
 * retry_ms is abandoned and started again under a new context (a late
 * answer to the old context is ignored).
 *
 * With its index known, a round's readers wait for the apply thread: it
 * completes them right after applying that index (the driver does at once
 * when it is already applied), so no reader waits for a tick.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

int raft_runtime_read_index(struct raft_runtime *rt, uint32_t timeout_ms,
			    raft_runtime_read_fn done, void *ctx)
{
	struct rt_read *rd;
	int rc = 0;

	if (done == NULL)
		return -EINVAL;
	rd = malloc(sizeof(*rd));
	if (rd == NULL)
		return -ENOMEM;
	rd->next = NULL;
	rd->deadline_ms = rt_now_ms() + timeout_ms;
	rd->index = 0;
	rd->done = done;
	rd->ctx = ctx;
	pthread_mutex_lock(&rt->mu);
	if (rt->failed != 0) {
		rc = -EIO;
	} else if (rt->stop) {
		rc = -ESHUTDOWN;
	} else {
		*rt->reads_in_tail = rd;
		rt->reads_in_tail = &rd->next;
	}
	pthread_mutex_unlock(&rt->mu);
	if (rc == 0) /* after the unlock, as in rt_receive_msg */
		pthread_cond_signal(&rt->wake);
	else
		free(rd);
	return rc;
}

void rt_reads_complete(struct rt_read *list, int rc)
{
	while (list != NULL) {
		struct rt_read *rd = list;
		list = rd->next;
		rd->done(rd->ctx, rc);
		free(rd);
	}
}

static struct rt_read *last_of(struct rt_read *list)
{
	while (list != NULL && list->next != NULL)
		list = list->next;
	return list;
}

/* Put list in front of the readers waiting for a round (they waited
 * longest). */
static void requeue_front(struct raft_runtime *rt, struct rt_read *list)
{
	struct rt_read *last = last_of(list);

	if (last == NULL)
		return;
	last->next = rt->rd_wait;
	if (rt->rd_wait == NULL)
		rt->rd_wait_tail = last;
	rt->rd_wait = list;
}

void rt_reads_add(struct raft_runtime *rt, struct rt_read *list)
{
	struct rt_read *last = last_of(list);

	if (last == NULL)
		return;
	if (rt->rd_wait_tail != NULL)
		rt->rd_wait_tail->next = list;
	else
		rt->rd_wait = list;
	rt->rd_wait_tail = last;
}

static struct rt_read_round *round_of(struct raft_runtime *rt,
				      uint64_t context)
{
	for (uint32_t i = 0; i < RT_READ_ROUNDS; i++)
		if (rt->rd_rounds[i].context == context)
			return &rt->rd_rounds[i];
	return NULL;
}

bool rt_reads_step(struct raft_runtime *rt, uint64_t now_ms)
{
	struct rt_read_round *slot;
	uint64_t context;

	for (uint32_t i = 0; i < RT_READ_ROUNDS; i++) {
		struct rt_read_round *rr = &rt->rd_rounds[i];
		if (rr->context == 0 ||
		    now_ms - rr->start_ms < rt->o.retry_ms)
			continue;
		/* The core would keep the request until its leader
		 * changes. */
		(void)raft_read_index_cancel(rt->r, rr->context);
		requeue_front(rt, rr->list);
		rr->list = NULL;
		rr->context = 0;
	}
	slot = round_of(rt, 0);
	if (slot == NULL || rt->rd_wait == NULL || now_ms < rt->rd_retry_at_ms)
		return false;
	context = ++rt->rd_last_context;
	if (raft_read_index(rt->r, context) != 0) {
		/* No leader known, campaigning, too many reads: a later tick
		 * tries again. */
		rt->rd_retry_at_ms = now_ms + rt->o.tick_ms;
		return false;
	}
	slot->context = context;
	slot->list = rt->rd_wait;
	rt->rd_wait = rt->rd_wait_tail = NULL;
	slot->start_ms = now_ms;
	atomic_fetch_add_explicit(&rt->read_rounds, 1, memory_order_relaxed);
	return true;
}

/* Hand a round's readers to the apply thread, or complete them now when
 * their index is already applied. The check and the hand-over are one
 * critical section, so the apply thread cannot pass the index between
 * them unnoticed. */
static void wait_for_apply(struct raft_runtime *rt, struct rt_read *list,
			   uint64_t index)
{
	struct rt_read *ready = NULL;

	pthread_mutex_lock(&rt->apply_mu);
	if (rt->applied >= index) {
		ready = list;
	} else {
		while (list != NULL) {
			struct rt_read *rd = list;
			list = rd->next;
			rd->index = index;
			rd->next = NULL;
			struct rt_read **pp = &rt->reads_applying;
			/* Read indexes rarely go backwards (a new leader's
			 * commit covers the old one's), so this is almost
			 * always an append. */
			if (rt->reads_applying_tail != NULL &&
			    rt->reads_applying_tail->index <= index)
				pp = &rt->reads_applying_tail->next;
			else
				while (*pp != NULL && (*pp)->index <= index)
					pp = &(*pp)->next;
			rd->next = *pp;
			*pp = rd;
			if (rd->next == NULL)
				rt->reads_applying_tail = rd;
		}
	}
	pthread_mutex_unlock(&rt->apply_mu);
	rt_reads_complete(ready, 0);
}

void rt_reads_answered(struct raft_runtime *rt,
		       const struct raft_read_state *rs, uint64_t now_ms)
{
	struct rt_read_round *rr =
		rs->context != 0 ? round_of(rt, rs->context) : NULL;
	struct rt_read *round;

	if (rr == NULL)
		return; /* an abandoned round's late answer */
	round = rr->list;
	rr->list = NULL;
	rr->context = 0;
	if (rs->index == 0) {
		requeue_front(rt, round);
		rt->rd_retry_at_ms = now_ms + rt->o.tick_ms;
		return;
	}
	wait_for_apply(rt, round, rs->index);
}

struct rt_read *rt_reads_take_applied(struct raft_runtime *rt,
				      uint64_t applied)
{
	struct rt_read *ready = rt->reads_applying, *last = NULL;

	for (struct rt_read *rd = ready; rd != NULL && rd->index <= applied;
	     rd = rd->next)
		last = rd;
	if (last == NULL)
		return NULL;
	rt->reads_applying = last->next;
	if (rt->reads_applying == NULL)
		rt->reads_applying_tail = NULL;
	last->next = NULL;
	return ready;
}

/* Move the readers of *list whose deadline passed to *expired; returns
 * the new last element of *list. */
static struct rt_read *take_expired(struct rt_read **list, uint64_t now_ms,
				    struct rt_read **expired)
{
	struct rt_read **pp = list, *last = NULL;

	while (*pp != NULL) {
		struct rt_read *rd = *pp;
		if (rd->deadline_ms <= now_ms) {
			*pp = rd->next;
			rd->next = *expired;
			*expired = rd;
		} else {
			last = rd;
			pp = &rd->next;
		}
	}
	return last;
}

void rt_reads_expire(struct raft_runtime *rt, uint64_t now_ms)
{
	struct rt_read *expired = NULL;

	rt->rd_wait_tail = take_expired(&rt->rd_wait, now_ms, &expired);
	/* A round whose readers all left still runs; its answer is
	 * dropped. */
	for (uint32_t i = 0; i < RT_READ_ROUNDS; i++)
		(void)take_expired(&rt->rd_rounds[i].list, now_ms, &expired);
	pthread_mutex_lock(&rt->apply_mu);
	rt->reads_applying_tail =
		take_expired(&rt->reads_applying, now_ms, &expired);
	pthread_mutex_unlock(&rt->apply_mu);
	if (expired != NULL) {
		uint64_t n = 0;
		for (struct rt_read *rd = expired; rd != NULL; rd = rd->next)
			n++;
		rt_log(rt, 3, "%" PRIu64 " reads timed out", n);
	}
	rt_reads_complete(expired, -ETIMEDOUT);
}

void rt_reads_fail_all(struct raft_runtime *rt, int rc)
{
	struct rt_read *in, *applying;

	pthread_mutex_lock(&rt->mu);
	in = rt->reads_in;
	rt->reads_in = NULL;
	rt->reads_in_tail = &rt->reads_in;
	pthread_mutex_unlock(&rt->mu);
	pthread_mutex_lock(&rt->apply_mu);
	applying = rt->reads_applying;
	rt->reads_applying = rt->reads_applying_tail = NULL;
	pthread_mutex_unlock(&rt->apply_mu);
	for (uint32_t i = 0; i < RT_READ_ROUNDS; i++) {
		rt_reads_complete(rt->rd_rounds[i].list, rc);
		rt->rd_rounds[i].list = NULL;
		rt->rd_rounds[i].context = 0;
	}
	rt_reads_complete(rt->rd_wait, rc);
	rt->rd_wait = rt->rd_wait_tail = NULL;
	rt_reads_complete(applying, rc);
	rt_reads_complete(in, rc);
}
