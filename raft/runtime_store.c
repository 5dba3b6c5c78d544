/*
 * The storage thread: persists the driver's jobs (one per update of the
 * core) in order, every job queued by the time it wakes in ONE synced
 * batch of the log store — group commit: while one batch syncs, the next
 * one fills. It reports durability as a job sequence number; the driver
 * calls raft_persisted. The messages waiting for those jobs (a follower's
 * acknowledgements, votes) it sends itself right after the write, before
 * it wakes the driver: a hand-off to the driver less on the commit path.
 * Those that need entry payloads from the driver's cache (rare: a new
 * leader's first AppendEntries) are left to the driver, with those of
 * every later job of the batch. After a failed write it stops the node
 * and writes nothing more.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A synced write slower than this is logged (warn). */
#define SLOW_WRITE_MS 100u

void rt_store_enqueue(struct raft_runtime *rt, struct rt_job *job)
{
	pthread_mutex_lock(&rt->store_mu);
	job->snext = NULL;
	*rt->sq_tail = job;
	rt->sq_tail = &job->snext;
	pthread_mutex_unlock(&rt->store_mu);
	/* After the unlock: the woken thread takes store_mu first thing. */
	pthread_cond_signal(&rt->store_wake);
}

void *rt_store_main(void *arg)
{
	struct raft_runtime *rt = arg;
	struct raft_logstore_write *w = NULL;
	uint32_t w_cap = 0;
	char err[320];

	pthread_mutex_lock(&rt->store_mu);
	for (;;) {
		while (!rt->store_stop && rt->sq == NULL)
			pthread_cond_wait(&rt->store_wake, &rt->store_mu);
		if (rt->store_stop)
			break;
		/* Take every queued job, up to the batch's byte budget (at
		 * least one). */
		struct rt_job *first = rt->sq, *last = NULL;
		uint64_t bytes = 0;
		uint32_t n = 0;
		for (struct rt_job *j = first; j != NULL; j = j->snext) {
			if (n > 0 && bytes + j->payload_bytes > rt->o.max_write_bytes)
				break;
			bytes += j->payload_bytes;
			last = j;
			n++;
		}
		int rc = 0;
		if (n > w_cap) {
			struct raft_logstore_write *nw =
				realloc(w, (size_t)n * 2 * sizeof(*w));
			if (nw == NULL)
				rc = -ENOMEM;
			else {
				w = nw;
				w_cap = n * 2;
			}
		}
		/* Copy the writes out while the queue links are ours. */
		uint32_t i = 0;
		for (struct rt_job *j = first; rc == 0 && i < n; j = j->snext)
			w[i++] = j->w;
		if (rc == 0) {
			rt->sq = last->snext;
			if (rt->sq == NULL)
				rt->sq_tail = &rt->sq;
		}
		pthread_mutex_unlock(&rt->store_mu);

		err[0] = '\0';
		uint64_t t0 = rt_now_ms();
		if (rc == 0)
			rc = raft_logstore_write(rt->ls, w, n, err, sizeof(err));
		uint64_t took_ms = rt_now_ms() - t0;
		/* A slow disk delays every acknowledgement: worth a line. */
		if (rc == 0 && took_ms > SLOW_WRITE_MS)
			rt_log(rt, 1,
			       "slow synced store write: %" PRIu64
			       " ms for %" PRIu32 " updates, %" PRIu64
			       " payload bytes",
			       took_ms, n, bytes);
		if (rc != 0) {
			if (err[0] == '\0')
				strcpy(err, strerror(-rc));
			rt_fail(rt, rc, "%s", err);
			pthread_mutex_lock(&rt->store_mu);
			break; /* nothing more is written after a failure */
		}
		/* Written: the messages that waited for these jobs go now
		 * (the driver frees a job only once durable_seq covers it). */
		struct rt_msg *out = NULL, **out_tail = &out;
		bool leave = false;
		pthread_mutex_lock(&rt->store_mu);
		for (struct rt_job *j = first;; j = j->snext) {
			j->durable = true;
			for (struct rt_msg *m = j->after; m != NULL && !leave;
			     m = m->next)
				leave = !rt_msg_complete(&m->m);
			if (!leave && j->after != NULL) {
				*out_tail = j->after;
				out_tail = j->after_tail;
				j->after = NULL;
				j->after_tail = &j->after;
			}
			if (j == last)
				break;
		}
		pthread_mutex_unlock(&rt->store_mu);
		pthread_mutex_lock(&rt->mu);
		bool failed = rt->failed != 0; /* a failed node sends nothing */
		rt->durable_seq = last->seq;
		rt->status.syncs++;
		rt->status.synced_updates += n;
		pthread_mutex_unlock(&rt->mu);
		uint64_t dropped = 0;
		while (out != NULL) {
			struct rt_msg *m = out;
			out = m->next;
			if (failed ||
			    rt->o.transport.send(rt->o.transport.ctx, &m->m) != 0)
				dropped++;
			free(m);
		}
		pthread_cond_signal(&rt->wake);
		if (dropped > 0) {
			pthread_mutex_lock(&rt->mu);
			rt->status.dropped_messages += dropped;
			pthread_mutex_unlock(&rt->mu);
		}
		pthread_mutex_lock(&rt->store_mu);
	}
	pthread_mutex_unlock(&rt->store_mu);
	free(w);
	return NULL;
}
