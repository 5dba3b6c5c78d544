/*
 * The driver thread: the only thread that touches the node's struct raft.
 * It takes received messages, proposals, ticks and persistence
 * completions from its queues, feeds them to the core and carries out
 * each update the way the core's persistence contract demands
 * (raft/raft.h): entries and hard state become a job for the storage
 * thread, messages go out at once or once their job and every earlier
 * one are durable, the apply index goes to the apply thread. It never
 * waits for the network, the disk or the state machine.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Ticks the driver catches up on after a stall before it resets. */
#define MAX_LATE_TICKS 5u

/* ---- the entry cache: recent entries, for sending and applying ---- */

struct rt_entry *rt_cache_get(struct raft_runtime *rt, uint64_t index)
{
	if (index < rt->c_first || index - rt->c_first >= rt->c_n)
		return NULL;
	return rt->cache[(rt->c_head + (index - rt->c_first)) % rt->c_cap];
}

static void cache_truncate(struct raft_runtime *rt, uint64_t from)
{
	while (rt->c_n > 0 && rt->c_first + rt->c_n - 1 >= from) {
		struct rt_entry **slot =
			&rt->cache[(rt->c_head + rt->c_n - 1) % rt->c_cap];
		rt->c_bytes -= (*slot)->e.size;
		rt_entry_unref(*slot);
		*slot = NULL;
		rt->c_n--;
	}
	if (rt->c_n == 0)
		rt->c_first = from;
}

static int cache_append(struct raft_runtime *rt, struct rt_entry *x)
{
	if (rt->c_n == 0)
		rt->c_first = x->e.index;
	if (x->e.index != rt->c_first + rt->c_n)
		return -EINVAL;
	if (rt->c_n == rt->c_cap) {
		size_t cap = rt->c_cap ? rt->c_cap * 2 : 1024;
		struct rt_entry **c = malloc(cap * sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < rt->c_n; i++)
			c[i] = rt->cache[(rt->c_head + i) % rt->c_cap];
		free(rt->cache);
		rt->cache = c;
		rt->c_cap = cap;
		rt->c_head = 0;
	}
	rt->cache[(rt->c_head + rt->c_n) % rt->c_cap] = rt_entry_ref(x);
	rt->c_n++;
	rt->c_bytes += x->e.size;
	return 0;
}

/* Drop the oldest entries beyond the byte budget; only durable ones (the
 * others cannot be read back from the store yet). */
static void cache_evict(struct raft_runtime *rt)
{
	while (rt->c_n > 0 && rt->c_bytes > rt->o.entry_cache_bytes &&
	       rt->c_first <= rt->durable_index) {
		struct rt_entry *x = rt->cache[rt->c_head];
		rt->cache[rt->c_head] = NULL;
		rt->c_head = (rt->c_head + 1) % rt->c_cap;
		rt->c_n--;
		rt->c_first++;
		rt->c_bytes -= x->e.size;
		rt_entry_unref(x);
	}
}

/* ---- sending ---- */

/* Send m, attaching payloads the core left out (data NULL) from the cache
 * or, for older entries, the store. */
static void send_message(struct raft_runtime *rt, const struct raft_message *m)
{
	struct raft_entry *ents = NULL;
	void **bufs = NULL;
	struct raft_message out = *m;
	int rc = 0;

	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		struct rt_entry *x;
		if (e->data != NULL || e->size == 0)
			continue;
		if (ents == NULL) {
			ents = malloc(m->n_entries * sizeof(*ents));
			bufs = calloc(m->n_entries, sizeof(*bufs));
			if (ents == NULL || bufs == NULL) {
				rc = -ENOMEM;
				break;
			}
			memcpy(ents, m->entries, m->n_entries * sizeof(*ents));
		}
		x = rt_cache_get(rt, e->index);
		if (x != NULL && x->e.term == e->term) {
			ents[i].data = x->e.data;
			continue;
		}
		struct raft_entry stored;
		rc = raft_logstore_get(rt->ls, e->index, &stored, &bufs[i]);
		if (rc == 0 && (stored.term != e->term || stored.size != e->size))
			rc = -ESTALE;
		if (rc != 0)
			break;
		ents[i].data = stored.data;
	}
	if (rc == 0) {
		if (ents != NULL)
			out.entries = ents;
		rc = rt->o.transport.send(rt->o.transport.ctx, &out);
	} else if (rc == -EUCLEAN || rc == -EIO) {
		char why[400];
		raft_logstore_read_error(rt->ls, why, sizeof(why));
		rt_log(rt, 1,
		       "dropping %s to %" PRIu64 ": cannot attach its entries: %s",
		       raft_message_type_name(m->type), m->to, why);
	} else {
		rt_log(rt, 1,
		       "dropping %s to %" PRIu64 ": cannot attach its entries: %s",
		       raft_message_type_name(m->type), m->to, strerror(-rc));
	}
	if (rc != 0)
		rt->dropped++;
	if (bufs != NULL)
		for (uint32_t i = 0; i < m->n_entries; i++)
			free(bufs[i]);
	free(bufs);
	free(ents);
}

bool rt_msg_complete(const struct raft_message *m)
{
	for (uint32_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].data == NULL && m->entries[i].size != 0)
			return false;
	return true;
}

/* ---- jobs ---- */

static void job_free(struct rt_job *job)
{
	if (job == NULL)
		return;
	for (uint32_t i = 0; i < job->w.n_entries; i++)
		rt_entry_unref(job->refs[i]);
	while (job->after != NULL) {
		struct rt_msg *m = job->after;
		job->after = m->next;
		free(m);
	}
	free(job->refs);
	free(job->ents);
	free(job);
}

/* Jobs up to seq are durable: release their messages, tell the core. */
static int on_durable(struct raft_runtime *rt, uint64_t seq)
{
	uint64_t index = 0, term = 0;

	while (rt->jobs != NULL && rt->jobs->seq <= seq) {
		struct rt_job *job = rt->jobs;
		rt->jobs = job->next;
		if (rt->jobs == NULL)
			rt->jobs_tail = NULL;
		/* What the storage thread did not send itself. */
		pthread_mutex_lock(&rt->store_mu);
		struct rt_msg *after = job->after;
		job->after = NULL;
		job->after_tail = &job->after;
		pthread_mutex_unlock(&rt->store_mu);
		while (after != NULL) {
			struct rt_msg *m = after;
			after = m->next;
			send_message(rt, &m->m);
			free(m);
		}
		index = job->last_index;
		term = job->last_term;
		job_free(job);
	}
	rt->seen_durable_seq = seq;
	if (index == 0)
		return 0;
	rt->durable_index = index;
	return raft_persisted(rt->r, index, term);
}

static int job_from_update(struct raft_runtime *rt, const struct raft_update *u,
			   struct rt_job **out)
{
	struct rt_job *job = calloc(1, sizeof(*job));
	uint32_t n = u->n_entries;

	*out = NULL;
	if (job == NULL)
		return -ENOMEM;
	job->ents = calloc(n ? n : 1, sizeof(*job->ents));
	job->refs = calloc(n ? n : 1, sizeof(*job->refs));
	if (job->ents == NULL || job->refs == NULL) {
		job_free(job);
		return -ENOMEM;
	}
	job->after_tail = &job->after;
	job->seq = ++rt->next_seq;
	job->w.hard_state_changed = u->hard_state_changed;
	job->w.hard_state = u->hard_state;
	job->w.truncate_from = u->truncate_from;
	job->w.entries = job->ents;
	if (u->install_snapshot != NULL) {
		/* The log restarts after the snapshot (raft/raft.h). */
		job->snap = *u->install_snapshot;
		job->w.install = &job->snap;
		rt->tail_index = job->snap.index;
		rt->tail_term = job->snap.term;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rt_entry *x = rt_cache_get(rt, u->entries[i].index);
		job->refs[i] = rt_entry_ref(x);
		job->ents[i] = x->e;
		job->payload_bytes += x->e.size;
		job->w.n_entries++;
	}
	if (n > 0) {
		rt->bytes_since_snapshot += job->payload_bytes;
		rt->tail_index = u->entries[n - 1].index;
		rt->tail_term = u->entries[n - 1].term;
	} else if (u->truncate_from != 0) {
		rt->tail_index = u->truncate_from - 1;
		rt->tail_term = raft_term_at(rt->r, rt->tail_index);
	}
	job->last_index = rt->tail_index;
	job->last_term = rt->tail_term;
	*out = job;
	return 0;
}

static void job_queue(struct raft_runtime *rt, struct rt_job *job)
{
	if (rt->jobs_tail != NULL)
		rt->jobs_tail->next = job;
	else
		rt->jobs = job;
	rt->jobs_tail = job;
	rt_store_enqueue(rt, job);
}

int rt_job_compact(struct raft_runtime *rt,
		   const struct raft_snapshot_meta *meta, uint64_t below)
{
	struct rt_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -ENOMEM;
	job->after_tail = &job->after;
	job->seq = ++rt->next_seq;
	job->snap = *meta;
	job->w.snapshot = &job->snap;
	job->w.compact_below = below;
	/* Nothing new becomes durable: the log's end is unchanged. */
	job->last_index = rt->tail_index;
	job->last_term = rt->tail_term;
	job_queue(rt, job);
	return 0;
}

/* ---- one update ---- */

static int handle_update(struct raft_runtime *rt, const struct raft_update *u)
{
	bool persist = u->hard_state_changed || u->truncate_from != 0 ||
		       u->n_entries > 0 || u->install_snapshot != NULL;
	int rc = 0;

	rt_status_log_changes(rt, u);
	/* A snapshot installed: the state machine holds it already (the
	 * runtime hands the core a RAFT_MSG_SNAPSHOT only then); the log
	 * restarts after it, so does the cache. */
	if (u->install_snapshot != NULL) {
		cache_truncate(rt, 0);
		rt->c_first = u->install_snapshot->index + 1;
		rt_snap_installed(rt, u->install_snapshot);
	}

	/* The node's own view of its log changes at once; the cache holds
	 * the payloads for sending and applying. */
	if (u->truncate_from != 0)
		cache_truncate(rt, u->truncate_from);
	else if (u->n_entries > 0 && rt->c_n > 0 &&
		 u->entries[0].index < rt->c_first + rt->c_n)
		cache_truncate(rt, u->entries[0].index);
	for (uint32_t i = 0; i < u->n_entries && rc == 0; i++) {
		struct rt_entry *x = rt_entry_new(&u->entries[i]);
		if (x == NULL)
			return -ENOMEM;
		rc = cache_append(rt, x);
		rt_entry_unref(x);
	}
	if (rc != 0)
		return rc;
	if (persist) {
		struct rt_job *job;
		rc = job_from_update(rt, u, &job);
		if (rc != 0)
			return rc;
		job_queue(rt, job);
	}
	/* The leader's AppendEntries go out before its own sync finishes
	 * (thesis §10.2.1). */
	for (uint32_t i = 0; i < u->n_messages; i++)
		send_message(rt, &u->messages[i]);
	/* Votes, append answers and anything carrying a new term wait for
	 * this update AND every earlier one to be durable: they ride on the
	 * last job, whose storage thread sends them as soon as its synced
	 * write returns (one thread hand-off less on a follower's
	 * acknowledgement), unless it was written meanwhile. */
	for (uint32_t i = 0; i < u->n_messages_after_persist; i++) {
		if (rt->jobs_tail == NULL) {
			send_message(rt, &u->messages_after_persist[i]);
			continue;
		}
		struct rt_msg *m = rt_msg_copy(&u->messages_after_persist[i]);
		if (m == NULL)
			return -ENOMEM;
		pthread_mutex_lock(&rt->store_mu);
		bool durable = rt->jobs_tail->durable;
		if (!durable) {
			m->next = NULL;
			*rt->jobs_tail->after_tail = m;
			rt->jobs_tail->after_tail = &m->next;
		}
		pthread_mutex_unlock(&rt->store_mu);
		if (durable) {
			send_message(rt, &m->m);
			free(m);
		}
	}
	if (u->apply_index != 0)
		rt_apply_advance(rt, u->apply_index);
	for (uint32_t i = 0; i < u->n_read_states; i++)
		rt_reads_answered(rt, &u->read_states[i], rt->round_ms);
	for (uint32_t i = 0; i < u->n_snapshot_sends; i++)
		rt_snap_send_requested(rt, u->snapshot_sends[i].peer,
				       u->snapshot_sends[i].meta.index);
	return 0;
}

static int process_updates(struct raft_runtime *rt)
{
	int rc = 0;

	while (rc == 0 && raft_has_update(rt->r)) {
		struct raft_update u;
		rc = raft_update_get(rt->r, &u);
		if (rc != 0)
			break;
		rc = handle_update(rt, &u);
		raft_update_done(rt->r, &u);
	}
	cache_evict(rt);
	return rc;
}

/* ---- the loop ---- */

/* The node stops on an error: it sends nothing more (so it acknowledges
 * nothing it did not persist, and the others elect a leader without it)
 * and answers every waiting proposer. */
static void halt(struct raft_runtime *rt)
{
	rt->halted = true;
	rt_waiters_expire(rt, 0, true, -EIO);
	rt_reads_fail_all(rt, -EIO);
	rt_status_publish(rt);
}

static void abs_deadline(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000u);
	ts->tv_nsec = (long)(ms % 1000u) * 1000000L;
}

void *rt_driver_main(void *arg)
{
	struct raft_runtime *rt = arg;
	uint64_t next_tick = rt_now_ms() + rt->o.tick_ms;
	int rc;

	rc = process_updates(rt); /* a bootstrap entry to persist */
	if (rc != 0)
		rt_fail(rt, rc, "driver: %s", strerror(-rc));
	rt_status_publish(rt);
	pthread_mutex_lock(&rt->mu);
	for (;;) {
		while (!rt->stop && rt->inbox == NULL && rt->props == NULL &&
		       rt->reads_in == NULL && rt->admins == NULL &&
		       rt->durable_seq == rt->seen_durable_seq &&
		       rt->views_done == NULL && rt->sends_done == NULL &&
		       !rt->sync_done && !rt->snap_now && rt->snap_for == 0 &&
		       !(rt->failed != 0 && !rt->halted) &&
		       rt_now_ms() < next_tick) {
			struct timespec ts;
			abs_deadline(next_tick, &ts);
			pthread_cond_timedwait(&rt->wake, &rt->mu, &ts);
		}
		if (rt->stop)
			break;
		struct rt_msg *msgs = rt->inbox;
		struct rt_proposal *props = rt->props;
		struct rt_read *reads = rt->reads_in;
		struct rt_admin *admins = rt->admins;
		uint64_t durable = rt->durable_seq;
		bool failed = rt->failed != 0;
		rt->inbox = NULL;
		rt->inbox_tail = &rt->inbox;
		rt->inbox_bytes = 0;
		rt->props = NULL;
		rt->props_tail = &rt->props;
		rt->reads_in = NULL;
		rt->reads_in_tail = &rt->reads_in;
		rt->admins = NULL;
		pthread_mutex_unlock(&rt->mu);
		rt_reads_add(rt, reads);

		if (failed && !rt->halted)
			halt(rt);
		rc = 0;
		if (!rt->halted) {
			uint64_t now = rt_now_ms();
			bool ticked = now >= next_tick;
			rt->round_ms = now;
			if (durable != rt->seen_durable_seq)
				rc = on_durable(rt, durable);
			for (struct rt_msg *m = msgs; m != NULL && rc == 0;
			     m = m->next) {
				int src = raft_step(rt->r, &m->m);
				if (src == 0)
					rt_status_heard(rt, m->m.from, now);
				else if (src == -ENOMEM)
					rc = src;
				else if (src != 0)
					rt_log(rt, 3,
					       "ignoring %s from %" PRIu64 ": %s",
					       raft_message_type_name(m->m.type),
					       m->m.from, strerror(-src));
			}
			if (rc == 0 && ticked) {
				for (uint32_t i = 0;
				     i < MAX_LATE_TICKS && now >= next_tick &&
				     rc == 0;
				     i++) {
					rc = raft_tick(rt->r);
					next_tick += rt->o.tick_ms;
				}
				if (now >= next_tick)
					next_tick = now + rt->o.tick_ms;
				rt_waiters_expire(rt, now, false, -ETIMEDOUT);
				rt_reads_expire(rt, now);
			}
			/* After the messages and ticks, so a leader that just
			 * became known gets the waiting proposals at once. */
			if (rc == 0) {
				rt_proposals_run(rt, props, now, ticked);
				props = NULL; /* now the driver's references */
			}
			if (rc == 0) {
				rt_admins_run(rt, admins);
				admins = NULL;
			}
			if (rc == 0) {
				(void)rt_reads_step(rt, now);
				rc = process_updates(rt);
			}
			/* A round answered in that update: the readers that
			 * came meanwhile start the next one at once. */
			if (rc == 0 && rt_reads_step(rt, now))
				rc = process_updates(rt);
			/* Compaction, snapshot streams: they may feed the
			 * core (snapshot sent), whose updates follow. */
			if (rc == 0 && rt->snap_enabled) {
				rc = rt_snap_driver_step(rt);
				if (rc == 0)
					rc = process_updates(rt);
			}
			/* The core referenced the proposals until its
			 * update was done. */
			rt_proposals_round_done(rt);
			if (rc != 0)
				rt_fail(rt, rc, "driver: %s; restart the node",
					strerror(-rc));
			rt_status_publish(rt);
		} else {
			rt->seen_durable_seq = durable;
			/* Only proposals that raced the failure remain. */
			for (struct rt_proposal *p = props; p != NULL;
			     p = p->next)
				rt_waiter_complete_id(rt, &p->id, -EIO, NULL,
						      0);
			rt_reads_fail_all(rt, -EIO);
			next_tick = rt_now_ms() + 1000u;
		}
		rt_admins_fail(admins, -EIO); /* a halted node changes nothing */
		/* The core referenced these until its update was done. */
		while (msgs != NULL) {
			struct rt_msg *m = msgs;
			msgs = m->next;
			free(m);
		}
		while (props != NULL) {
			struct rt_proposal *p = props;
			props = p->next;
			rt_proposal_unref(p);
		}
		pthread_mutex_lock(&rt->mu);
	}
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

void rt_driver_release(struct raft_runtime *rt)
{
	while (rt->jobs != NULL) {
		struct rt_job *job = rt->jobs;
		rt->jobs = job->next;
		job_free(job);
	}
	rt->jobs_tail = NULL;
	cache_truncate(rt, 0);
	free(rt->cache);
	rt->cache = NULL;
	rt_proposals_round_done(rt);
	free(rt->proposed);
	rt->proposed = NULL;
}
