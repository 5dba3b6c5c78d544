/*
 * The apply thread: hands committed entries to the state machine in index
 * order and wakes the proposers waiting for them. The driver queues
 * entries from its cache while the queue is under its byte budget; when
 * it is not (a slow state machine), the driver stops queueing and the
 * apply thread, once the queue is drained, claims the next range itself
 * and reads it back from the log store (committed entries are durable).
 * So the driver never waits for apply and the queue's memory is bounded.
 *
 * apply_next is the boundary: indexes below it were queued or claimed,
 * in order, so each entry is applied exactly once.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries the apply thread claims from the store at a time. */
#define CLAIM_ENTRIES 1024u
#define CLAIM_BYTES (16u << 20)

static int queue_push(struct raft_runtime *rt, struct rt_entry *x)
{
	if (rt->aq_n == rt->aq_cap) {
		size_t cap = rt->aq_cap ? rt->aq_cap * 2 : 1024;
		struct rt_entry **q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < rt->aq_n; i++)
			q[i] = rt->aq[(rt->aq_head + i) % rt->aq_cap];
		free(rt->aq);
		rt->aq = q;
		rt->aq_cap = cap;
		rt->aq_head = 0;
	}
	rt->aq[(rt->aq_head + rt->aq_n) % rt->aq_cap] = rt_entry_ref(x);
	rt->aq_n++;
	rt->aq_bytes += x->e.size;
	return 0;
}

void rt_apply_advance(struct raft_runtime *rt, uint64_t index)
{
	pthread_mutex_lock(&rt->apply_mu);
	if (index > rt->apply_target)
		rt->apply_target = index;
	while (!rt->awaiting && rt->apply_next <= rt->apply_target) {
		struct rt_entry *x = rt_cache_get(rt, rt->apply_next);
		if (x == NULL || x->e.index != rt->apply_next)
			break; /* evicted: the apply thread reads the store */
		if (rt->aq_n > 0 &&
		    rt->aq_bytes + x->e.size > rt->o.apply_queue_bytes)
			break; /* full: the same */
		if (queue_push(rt, x) != 0)
			break;
		rt->apply_next++;
	}
	pthread_mutex_unlock(&rt->apply_mu);
	/* After the unlock: the woken thread takes apply_mu first thing. */
	pthread_cond_signal(&rt->apply_wake);
}

struct apply_ctx {
	struct raft_runtime *rt;
	bool fsm_failed;
	uint8_t result[RAFT_RUNTIME_MAX_RESULT_BYTES];
};

static int apply_one(void *arg, const struct raft_entry *e)
{
	struct apply_ctx *ctx = arg;
	struct raft_runtime *rt = ctx->rt;
	struct raft_proposal_id id = {0, 0, 0};
	size_t size = 0;
	int rc = rt->o.fsm.apply(rt->o.fsm.ctx, e, &id, ctx->result, &size);

	if (rc != 0) {
		ctx->fsm_failed = true;
		if (rc == -EPROTONOSUPPORT)
			rt_fail(rt, rc,
				"committed entry %" PRIu64 " holds a command "
				"this build cannot decode or run (a newer "
				"version, op or feature level); stopping "
				"rather than skipping it: run a newer build",
				e->index);
		else
			rt_fail(rt, rc,
				"applying entry %" PRIu64 " failed: %s; the "
				"state machine's store needs checking before "
				"a restart",
				e->index, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&rt->apply_mu);
	rt->applied = e->index;
	rt->applied_term = e->term;
	struct rt_read *reads = rt_reads_take_applied(rt, e->index);
	pthread_mutex_unlock(&rt->apply_mu);
	/* Reads waiting for this index complete right after it applied. */
	rt_reads_complete(reads, 0);
	if (id.node != 0)
		rt_waiter_complete_id(rt, &id,
				      0, ctx->result,
				      size > RAFT_RUNTIME_MAX_RESULT_BYTES
					      ? RAFT_RUNTIME_MAX_RESULT_BYTES
					      : size);
	return 0;
}

void *rt_apply_main(void *arg)
{
	struct raft_runtime *rt = arg;
	struct apply_ctx *ctx = malloc(sizeof(*ctx));
	int rc = 0;

	if (ctx == NULL) {
		rt_fail(rt, -ENOMEM, "apply thread: out of memory");
		return NULL;
	}
	ctx->rt = rt;
	ctx->fsm_failed = false;
	pthread_mutex_lock(&rt->apply_mu);
	while (!rt->apply_stop && rc == 0) {
		/* Syncs, snapshot views and chunks between two applies. */
		if (rt_snap_apply_has_work(rt)) {
			pthread_mutex_unlock(&rt->apply_mu);
			rt_snap_apply_work(rt);
			pthread_mutex_lock(&rt->apply_mu);
			continue;
		}
		if (rt->aq_n > 0) {
			struct rt_entry *x = rt->aq[rt->aq_head];
			rt->aq[rt->aq_head] = NULL;
			rt->aq_head = (rt->aq_head + 1) % rt->aq_cap;
			rt->aq_n--;
			rt->aq_bytes -= x->e.size;
			pthread_mutex_unlock(&rt->apply_mu);
			rc = apply_one(ctx, &x->e);
			rt_entry_unref(x);
			pthread_mutex_lock(&rt->apply_mu);
			continue;
		}
		if (!rt->awaiting && rt->apply_next <= rt->apply_target) {
			/* The driver stopped queueing: read the next range
			 * back from the store. */
			uint64_t from = rt->apply_next;
			uint64_t to = rt->apply_target;
			if (to - from >= CLAIM_ENTRIES)
				to = from + CLAIM_ENTRIES - 1;
			/* Claimed: the driver queues only what follows. */
			rt->apply_next = to + 1;
			pthread_mutex_unlock(&rt->apply_mu);
			while (rc == 0 && from <= to) {
				long n = raft_logstore_read(rt->ls, from, to,
							    CLAIM_BYTES,
							    apply_one, ctx);
				if (n < 0)
					rc = (int)n;
				else
					from += (uint64_t)n;
			}
			pthread_mutex_lock(&rt->apply_mu);
			continue;
		}
		pthread_cond_wait(&rt->apply_wake, &rt->apply_mu);
	}
	pthread_mutex_unlock(&rt->apply_mu);
	if (rc != 0 && !ctx->fsm_failed) {
		char why[400];
		if (rc == -EUCLEAN || rc == -EIO)
			raft_logstore_read_error(rt->ls, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s; restart the node",
				 strerror(-rc));
		rt_fail(rt, rc,
			"apply thread: cannot read committed entries back from "
			"the log store: %s",
			why);
	}
	free(ctx);
	return NULL;
}

void rt_apply_release(struct raft_runtime *rt)
{
	while (rt->aq_n > 0) {
		rt_entry_unref(rt->aq[rt->aq_head]);
		rt->aq_head = (rt->aq_head + 1) % rt->aq_cap;
		rt->aq_n--;
	}
	free(rt->aq);
	rt->aq = NULL;
}
