/*
 * The runtime's public side: options, create/start/destroy, received
 * messages. Proposals and their waiters are in raft/runtime_propose.c,
 * read points in raft/runtime_read.c, status and event lines in
 * raft/runtime_status.c, the threads in raft/driver.c,
 * raft/runtime_store.c and raft/runtime_apply.c; locks in
 * raft/runtime_internal.h.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t rt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rt_log(struct raft_runtime *rt, int level, const char *fmt, ...)
{
	char line[1536]; /* a configuration of RAFT_MAX_MEMBERS fits */
	va_list ap;
	int n;

	if (rt->o.log == NULL)
		return;
	n = snprintf(line, sizeof(line), "raft node %" PRIu64 ": ", rt->o.id);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	rt->o.log(rt->o.log_ctx, level, line);
}

void rt_fail(struct raft_runtime *rt, int err, const char *fmt, ...)
{
	va_list ap;
	bool first;

	pthread_mutex_lock(&rt->mu);
	first = rt->failed == 0;
	if (first) {
		rt->failed = err < 0 ? err : -EIO;
		va_start(ap, fmt);
		vsnprintf(rt->error, sizeof(rt->error), fmt, ap);
		va_end(ap);
	}
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->mu);
	if (first)
		rt_log(rt, 0, "stopped: %s", rt->error);
}

/* ---- shared entries and copied messages ---- */

struct rt_entry *rt_entry_new(const struct raft_entry *e)
{
	struct rt_entry *x = malloc(sizeof(*x) + e->size);

	if (x == NULL)
		return NULL;
	atomic_init(&x->refs, 1);
	x->e = *e;
	if (e->size > 0)
		memcpy(x->bytes, e->data, e->size);
	x->e.data = x->bytes;
	return x;
}

struct rt_entry *rt_entry_ref(struct rt_entry *x)
{
	atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
	return x;
}

void rt_entry_unref(struct rt_entry *x)
{
	if (x != NULL &&
	    atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) == 1)
		free(x);
}

struct rt_msg *rt_msg_copy(const struct raft_message *m)
{
	size_t bytes = sizeof(struct rt_msg) +
		       (size_t)m->n_entries * sizeof(struct raft_entry);
	struct rt_msg *c;
	uint8_t *p;

	for (uint32_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].data != NULL)
			bytes += m->entries[i].size;
	c = malloc(bytes);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->bytes = bytes;
	c->m = *m;
	c->m.entries = c->entries;
	p = (uint8_t *)&c->entries[m->n_entries];
	for (uint32_t i = 0; i < m->n_entries; i++) {
		c->entries[i] = m->entries[i];
		if (m->entries[i].data != NULL) {
			memcpy(p, m->entries[i].data, m->entries[i].size);
			c->entries[i].data = p;
			p += m->entries[i].size;
		}
	}
	if (m->snapshot != NULL) {
		c->snap = *m->snapshot;
		c->m.snapshot = &c->snap;
	}
	return c;
}

/* ---- options, create, start, destroy ---- */

void raft_runtime_options_default(struct raft_runtime_options *o, uint64_t id)
{
	memset(o, 0, sizeof(*o));
	o->id = id;
	raft_options_default(&o->raft, id);
	/* Few AppendEntries in flight per follower, each carrying whatever
	 * accumulated meanwhile: a follower persists what it received in one
	 * synced write per batch anyway (group commit), so a window of 4
	 * keeps its disk busy (one write running, the next batches queued)
	 * with a fraction of the messages, wake-ups and store jobs of the
	 * core's default (64) under many proposers (docs/RAFT.md). Batches
	 * of up to RAFT_MAX_BATCH_BYTES (4 MiB, the core's default is 1) keep
	 * 16 MiB in flight for bulk data: a follower's synced write takes up
	 * to max_write_bytes (16 MiB) at once. */
	o->raft.max_inflight_msgs = 4;
	o->raft.max_batch_bytes = RAFT_MAX_BATCH_BYTES;
	o->tick_ms = 10;
	o->apply_queue_bytes = 64u << 20;
	o->entry_cache_bytes = 64u << 20;
	o->inbox_bytes = 256u << 20;
	o->max_write_bytes = 16u << 20;
	o->snapshot_entries = 50000;
	o->snapshot_bytes = 256u << 20;
	o->snapshot_keep_entries = 10000;
	o->snapshot_window = 4;
	o->snapshot_timeout_ms = 10000;
}

static void seterr(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

static int init_sync(struct raft_runtime *rt)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);

	if (rc != 0)
		return -rc;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&rt->mu, NULL);
	pthread_mutex_init(&rt->store_mu, NULL);
	pthread_mutex_init(&rt->apply_mu, NULL);
	pthread_mutex_init(&rt->wait_mu, NULL);
	pthread_mutex_init(&rt->snap_mu, NULL);
	pthread_cond_init(&rt->snap_wake, &ca);
	pthread_cond_init(&rt->wake, &ca);
	pthread_cond_init(&rt->store_wake, &ca);
	pthread_cond_init(&rt->apply_wake, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static bool store_is_empty(const struct raft_logstore_info *info)
{
	return info->hs.term == 0 && info->hs.vote == 0 &&
	       info->last_index == 0 && !info->has_snapshot;
}

int raft_runtime_create(const struct raft_runtime_options *o,
			struct raft_runtime **out, char *err, size_t err_size)
{
	struct raft_runtime *rt = NULL;
	struct raft_logstore_info info;
	int rc;

	*out = NULL;
	if (o->id == 0 || o->dir == NULL || o->cluster_id == NULL ||
	    o->raft.id != o->id || o->tick_ms == 0 ||
	    o->transport.send == NULL || o->fsm.apply == NULL ||
	    strlen(o->dir) >= sizeof(rt->dir) ||
	    strlen(o->cluster_id) > RAFT_LOGSTORE_MAX_CLUSTER_ID ||
	    o->apply_queue_bytes == 0 || o->max_write_bytes == 0) {
		seterr(err, err_size, "raft runtime: invalid options");
		return -EINVAL;
	}
	rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		seterr(err, err_size, "raft runtime: out of memory");
		return -ENOMEM;
	}
	rt->o = *o;
	rt->o.raft.passive = o->await_install;
	strcpy(rt->dir, o->dir);
	strcpy(rt->cluster_id, o->cluster_id);
	rt->o.dir = rt->dir;
	rt->o.cluster_id = rt->cluster_id;
	rt->inbox_tail = &rt->inbox;
	rt->props_tail = &rt->props;
	rt->reads_in_tail = &rt->reads_in;
	rt->conf_dirty = true; /* published (and logged) at the start */
	if (rt->o.retry_ms == 0)
		rt->o.retry_ms = 2u * o->raft.election_ticks * o->tick_ms;
	rt->sq_tail = &rt->sq;
	rt->chunks_in_tail = &rt->chunks_in;
	rt->acks_in_tail = &rt->acks_in;
	rt->snap_enabled =
		o->fsm.sync != NULL && o->fsm.snapshot_open != NULL &&
		o->fsm.snapshot_read != NULL && o->fsm.snapshot_close != NULL &&
		o->fsm.install_begin != NULL && o->fsm.install_chunk != NULL &&
		o->fsm.install_finish != NULL && o->fsm.install_abort != NULL &&
		o->fsm.snapshot_chunk_bytes > 0 &&
		o->fsm.snapshot_chunk_bytes <= RAFT_MAX_CHUNK_BYTES &&
		o->transport.send_chunk != NULL && o->snapshot_window > 0 &&
		o->snapshot_timeout_ms > 0;
	rt->next_stream = ((uint64_t)rt_now_ms() << 20) ^ (o->id << 52);
	rc = init_sync(rt);
	if (rc != 0) {
		free(rt);
		seterr(err, err_size, "raft runtime: %s", strerror(-rc));
		return rc;
	}
	rc = raft_logstore_open(rt->dir, rt->cluster_id, o->id, true, &rt->ls,
				&info, err, err_size);
	if (rc != 0)
		goto fail;
	rc = raft_create(&rt->o.raft, &rt->r);
	if (rc != 0) {
		seterr(err, err_size, "raft runtime: cannot create the core: %s",
		       strerror(-rc));
		goto fail;
	}
	if (!store_is_empty(&info)) {
		rc = raft_logstore_restore(rt->ls, rt->r, err, err_size);
		if (rc != 0)
			goto fail;
		rt_log(rt, 2,
		       "recovered term %" PRIu64 " vote %" PRIu64
		       " log %" PRIu64 "..%" PRIu64,
		       info.hs.term, info.hs.vote, info.first_index,
		       info.last_index);
	} else if (o->bootstrap && o->bootstrap_index > 0) {
		/* The state machine holds a restored state: the log starts
		 * after it, as after an installed snapshot (term 1). */
		struct raft_snapshot_meta meta = {o->bootstrap_index, 1,
						  o->bootstrap_index, o->conf};
		struct raft_logstore_write w = {0};
		if (!raft_configuration_is_valid(&o->conf)) {
			seterr(err, err_size, "raft runtime: bootstrap failed: "
					      "an invalid configuration");
			rc = -EINVAL;
			goto fail;
		}
		w.hard_state_changed = true;
		w.hard_state = (struct raft_hard_state){1, 0};
		w.install = &meta;
		rc = raft_logstore_write(rt->ls, &w, 1, err, err_size);
		if (rc == 0)
			rc = raft_logstore_restore(rt->ls, rt->r, err, err_size);
		if (rc != 0)
			goto fail;
		raft_logstore_info_get(rt->ls, &info);
		rt_log(rt, 2,
		       "bootstrapping a cluster of %" PRIu32 " members from a "
		       "state at index %" PRIu64,
		       o->conf.n, o->bootstrap_index);
	} else if (o->bootstrap) {
		rc = raft_bootstrap(rt->r, &o->conf);
		if (rc != 0) {
			seterr(err, err_size,
			       "raft runtime: bootstrap failed: %s",
			       strerror(-rc));
			goto fail;
		}
		rt_log(rt, 2, "bootstrapping a cluster of %" PRIu32 " members",
		       o->conf.n);
	} else {
		rt_log(rt, 2, "empty log store: waiting to be added");
	}
	rt->durable_index = rt->tail_index = info.last_index;
	rt->tail_term = info.last_term;
	rt->c_first = info.last_index + 1;
	rt->applied = o->applied_index;
	/* Known when the log still holds the entry (or its snapshot). */
	rt->applied_term = raft_term_at(rt->r, o->applied_index);
	if (info.has_snapshot) {
		rt->snap_index = info.snapshot.index;
		rt->snap_term_of = info.snapshot.term;
	}
	rt->log_first_index = info.first_index;
	rt->apply_next = o->applied_index + 1;
	rt->apply_target = o->applied_index;
	rt->awaiting = o->await_install;
	/* The entries after the snapshot must still be in the log. */
	rt->await_min = info.first_index > 0 ? info.first_index - 1 : 0;
	if (o->await_install)
		rt_log(rt, 2, "the state machine awaits a snapshot from the "
			      "leader (log %" PRIu64 "..%" PRIu64 " kept)",
		       info.first_index, info.last_index);
	raft_status_get(rt->r, &rt->status.raft);
	rt->status.durable_index = info.last_index;
	rt->status.snapshot_index = rt->snap_index;
	rt->status.snapshot_term = rt->snap_term_of;
	rt->status.log_first_index = rt->log_first_index;
	*out = rt;
	return 0;
fail:
	raft_destroy(rt->r);
	raft_logstore_close(rt->ls);
	free(rt);
	return rc;
}

/* Tell one of the runtime's threads to stop (its flag under its mutex)
 * and wait for it. */
static void stop_thread(pthread_mutex_t *mu, bool *flag, pthread_cond_t *cond,
			pthread_t thread)
{
	pthread_mutex_lock(mu);
	*flag = true;
	pthread_cond_signal(cond);
	pthread_mutex_unlock(mu);
	pthread_join(thread, NULL);
}

int raft_runtime_start(struct raft_runtime *rt)
{
	int rc;

	if (rt->started)
		return -EINVAL;
	rc = pthread_create(&rt->store_thread, NULL, rt_store_main, rt);
	if (rc != 0)
		return -rc;
	rc = pthread_create(&rt->apply_thread, NULL, rt_apply_main, rt);
	if (rc != 0)
		goto stop_store;
	if (rt->snap_enabled) {
		rc = pthread_create(&rt->snap_thread, NULL, rt_snap_main, rt);
		if (rc != 0)
			goto stop_apply;
	}
	rc = pthread_create(&rt->driver_thread, NULL, rt_driver_main, rt);
	if (rc != 0)
		goto stop_snap;
	rt->started = true;
	return 0;
stop_snap:
	if (rt->snap_enabled) {
		stop_thread(&rt->snap_mu, &rt->snap_stop, &rt->snap_wake,
			    rt->snap_thread);
	}
stop_apply:
	stop_thread(&rt->apply_mu, &rt->apply_stop, &rt->apply_wake,
		    rt->apply_thread);
stop_store:
	stop_thread(&rt->store_mu, &rt->store_stop, &rt->store_wake,
		    rt->store_thread);
	return -rc;
}

void raft_runtime_destroy(struct raft_runtime *rt)
{
	if (rt == NULL)
		return;
	if (rt->started) {
		stop_thread(&rt->mu, &rt->stop, &rt->wake, rt->driver_thread);
		if (rt->snap_enabled) {
			stop_thread(&rt->snap_mu, &rt->snap_stop,
				    &rt->snap_wake, rt->snap_thread);
		}
		stop_thread(&rt->store_mu, &rt->store_stop, &rt->store_wake,
			    rt->store_thread);
		stop_thread(&rt->apply_mu, &rt->apply_stop, &rt->apply_wake,
			    rt->apply_thread);
	}
	pthread_mutex_lock(&rt->mu);
	rt->stop = true;
	pthread_mutex_unlock(&rt->mu);
	rt_waiters_expire(rt, 0, true, -ESHUTDOWN);
	rt_reads_fail_all(rt, -ESHUTDOWN);
	while (rt->inbox != NULL) {
		struct rt_msg *m = rt->inbox;
		rt->inbox = m->next;
		free(m);
	}
	while (rt->props != NULL) {
		struct rt_proposal *p = rt->props;
		rt->props = p->next;
		rt_proposal_unref(p);
	}
	rt_admins_fail(rt->admins, -ESHUTDOWN);
	rt->admins = NULL;
	rt_driver_release(rt);
	rt_apply_release(rt);
	rt_snap_release(rt);
	raft_destroy(rt->r);
	raft_logstore_close(rt->ls);
	pthread_mutex_destroy(&rt->mu);
	pthread_mutex_destroy(&rt->store_mu);
	pthread_mutex_destroy(&rt->apply_mu);
	pthread_mutex_destroy(&rt->wait_mu);
	pthread_mutex_destroy(&rt->snap_mu);
	pthread_cond_destroy(&rt->snap_wake);
	pthread_cond_destroy(&rt->wake);
	pthread_cond_destroy(&rt->store_wake);
	pthread_cond_destroy(&rt->apply_wake);
	free(rt);
}

/* ---- received messages ---- */

void raft_runtime_receive(struct raft_runtime *rt,
			  const struct raft_message *m)
{
	/* Only this runtime, once its state machine holds the snapshot,
	 * tells its core about one (raft/runtime_snapshot.c). */
	if (m->type == RAFT_MSG_SNAPSHOT) {
		pthread_mutex_lock(&rt->mu);
		rt->status.dropped_messages++;
		pthread_mutex_unlock(&rt->mu);
		return;
	}
	rt_receive_msg(rt, m);
}

void rt_receive_msg(struct raft_runtime *rt, const struct raft_message *m)
{
	struct rt_msg *c = rt_msg_copy(m);

	pthread_mutex_lock(&rt->mu);
	if (c == NULL || rt->stop || rt->failed != 0 ||
	    rt->inbox_bytes + c->bytes > rt->o.inbox_bytes) {
		rt->status.dropped_messages++;
		pthread_mutex_unlock(&rt->mu);
		free(c);
		return;
	}
	*rt->inbox_tail = c;
	rt->inbox_tail = &c->next;
	rt->inbox_bytes += c->bytes;
	pthread_mutex_unlock(&rt->mu);
	/* Signalled after the unlock: the driver, woken on the other core,
	 * would otherwise block at once on mu, still held here, and cost a
	 * second wake-up. rt outlives every caller. */
	pthread_cond_signal(&rt->wake);
}
