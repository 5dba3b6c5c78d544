/*
 * Snapshots in the runtime (Raft III below the core): compaction by
 * policy, streaming a point-in-time view of the state machine to a
 * follower whose next entry is gone, and installing one.
 *
 * Compaction (driver + apply thread): once enough was appended since the
 * last snapshot the driver asks the apply thread to sync the state
 * machine (fsm.sync, off the driver thread); the apply thread answers
 * with the index it had applied when the sync began (everything up to it
 * is durable). The driver then calls raft_snapshot_taken there (bounded
 * by what the core handed out for apply and by its log) and queues ONE
 * synced log-store write recording the snapshot and deleting the entries
 * below the core's new first index — "the log is compacted only below an
 * index that a synced fs-store write covers".
 *
 * Sending (driver, apply thread, snapshot thread): for each peer the
 * core lists in update.snapshot_sends the driver asks the apply thread to
 * open a view; the apply thread opens it between two applies, at its
 * applied index V whose entry's term it knows (it applied it). The
 * driver describes the view: term of entry V and the configuration in
 * force at V, both from the core's log (V >= the core's snapshot index,
 * because snapshots are taken at indexes already applied), and hands it
 * to the snapshot thread, which streams it in chunks with a bounded
 * window and go-back-N retransmission, and reports to the driver, which
 * calls raft_snapshot_sent for the snapshot the core asked for. The
 * follower's acknowledgment of the install reaches the leader's core as
 * the APPEND_RESP of the install (match = V).
 *
 * Installing (apply thread): chunks are fed to fsm.install_* in order;
 * after the last one the state machine switches to the new state (synced)
 * and only then is the core handed a RAFT_MSG_SNAPSHOT with the stream's
 * metadata, so the core never believes in a state the state machine does
 * not hold. If the state machine already holds V (it caught up meanwhile,
 * or a crash came after the switch but before the log changed), the
 * install is skipped and the core is told all the same.
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A stream's sync attempts and lookups are retried after this. */
#define SYNC_RETRY_MS 1000u
/* Received chunks queued for the apply thread, at most. */
#define CHUNKS_IN_MAX_BYTES (64u << 20)
#define ACKS_IN_MAX 4096u
/* The snapshot thread looks at its streams at least this often. */
#define SNAP_POLL_MS 20u

struct rt_stream {
	struct rt_stream *next;
	uint64_t peer, core_index, term, id;
	struct raft_snapshot_meta meta;
	void *view;
	uint32_t window;
	uint8_t **bufs;   /* window slots, a ring from head */
	size_t *lens;
	uint64_t *offs;
	bool *lasts;
	uint32_t head, n;
	uint64_t read_off;   /* bytes read from the view */
	bool read_done;
	uint64_t acked;      /* bytes the follower holds in order */
	uint64_t started_ms, progress_ms, resent_ms;
};

/* ---- shared helpers ---- */

static void post_result(struct raft_runtime *rt, uint64_t peer,
			uint64_t core_index, uint64_t term, bool ok)
{
	struct rt_send_result *r = malloc(sizeof(*r));

	if (r == NULL)
		return; /* the transfer times out in the core's view: probe */
	*r = (struct rt_send_result){NULL, peer, core_index, term, ok};
	pthread_mutex_lock(&rt->mu);
	r->next = rt->sends_done;
	rt->sends_done = r;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->mu);
}

static struct rt_chunk *chunk_copy(const struct raft_chunk *c)
{
	struct rt_chunk *x = malloc(sizeof(*x) + c->size);

	if (x == NULL)
		return NULL;
	x->next = NULL;
	x->bytes = sizeof(*x) + c->size;
	x->c = *c;
	if (c->size > 0)
		memcpy(x->data, c->data, c->size);
	x->c.data = x->data;
	return x;
}

void raft_runtime_receive_chunk(struct raft_runtime *rt,
				const struct raft_chunk *c)
{
	struct rt_chunk *x;
	bool queued = false;

	if (!rt->snap_enabled || c->to != rt->o.id || !raft_chunk_is_valid(c))
		return;
	x = chunk_copy(c);
	if (x == NULL)
		return;
	if (c->type == RAFT_CHUNK_DATA) {
		pthread_mutex_lock(&rt->apply_mu);
		if (!rt->apply_stop &&
		    rt->chunks_in_bytes + x->bytes <= CHUNKS_IN_MAX_BYTES) {
			*rt->chunks_in_tail = x;
			rt->chunks_in_tail = &x->next;
			rt->chunks_in_bytes += x->bytes;
			queued = true;
			pthread_cond_signal(&rt->apply_wake);
		}
		pthread_mutex_unlock(&rt->apply_mu);
	} else {
		pthread_mutex_lock(&rt->snap_mu);
		uint32_t n = 0;
		for (struct rt_chunk *a = rt->acks_in; a != NULL; a = a->next)
			n++;
		if (!rt->snap_stop && n < ACKS_IN_MAX) {
			*rt->acks_in_tail = x;
			rt->acks_in_tail = &x->next;
			queued = true;
			pthread_cond_signal(&rt->snap_wake);
		}
		pthread_mutex_unlock(&rt->snap_mu);
	}
	if (!queued)
		free(x);
}

/* ====================================================================== */
/* Driver side.                                                           */

void rt_snap_send_requested(struct raft_runtime *rt, uint64_t peer,
			    uint64_t core_index)
{
	struct rt_view_req *q = calloc(1, sizeof(*q));
	uint64_t term = raft_term(rt->r);

	if (q == NULL) {
		post_result(rt, peer, core_index, term, false);
		return;
	}
	q->peer = peer;
	q->core_index = core_index;
	q->term = term;
	pthread_mutex_lock(&rt->apply_mu);
	q->next = rt->view_reqs;
	rt->view_reqs = q;
	pthread_cond_signal(&rt->apply_wake);
	pthread_mutex_unlock(&rt->apply_mu);
}

void rt_snap_installed(struct raft_runtime *rt,
		       const struct raft_snapshot_meta *meta)
{
	rt->snap_index = meta->index;
	rt->snap_term_of = meta->term;
	rt->bytes_since_snapshot = 0;
	rt->log_first_index = meta->index + 1;
	rt_log(rt, 2,
	       "log replaced by the installed snapshot at %" PRIu64
	       " (term %" PRIu64 ")",
	       meta->index, meta->term);
}

static bool leads_in(struct raft_runtime *rt, uint64_t term)
{
	return raft_is_leader(rt->r) && raft_term(rt->r) == term;
}

/* An opened view: describe it and hand it to the snapshot thread. */
static void start_stream(struct raft_runtime *rt, struct rt_view_req *q)
{
	const struct raft_configuration *conf;
	struct rt_stream *s = NULL;
	uint64_t conf_index = 0;

	if (q->rc != 0) {
		rt_log(rt, 1,
		       "cannot open a snapshot for node %" PRIu64 ": %s",
		       q->peer, strerror(-q->rc));
		goto fail;
	}
	if (!leads_in(rt, q->term))
		goto drop;
	/* The view holds entries 1..V: its metadata is V, the term of
	 * entry V and the configuration in force at V (thesis §5.1), all
	 * known to the core since V >= its snapshot index. */
	conf = raft_configuration_at(rt->r, q->index, &conf_index);
	if (conf == NULL || raft_term_at(rt->r, q->index) != q->index_term) {
		rt_log(rt, 1,
		       "snapshot view at %" PRIu64 " for node %" PRIu64
		       " is no longer in the log; asking again",
		       q->index, q->peer);
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->peer = q->peer;
	s->core_index = q->core_index;
	s->term = q->term;
	s->id = ++rt->next_stream;
	s->view = q->view;
	s->meta.index = q->index;
	s->meta.term = q->index_term;
	s->meta.conf_index = conf_index;
	s->meta.conf = *conf;
	rt_log(rt, 2,
	       "sending snapshot at %" PRIu64 " (term %" PRIu64
	       ") to node %" PRIu64 ", stream %" PRIu64,
	       s->meta.index, s->meta.term, s->peer, s->id);
	pthread_mutex_lock(&rt->snap_mu);
	s->next = rt->snap_new;
	rt->snap_new = s;
	pthread_cond_signal(&rt->snap_wake);
	pthread_mutex_unlock(&rt->snap_mu);
	return;
fail:
	if (leads_in(rt, q->term))
		(void)raft_snapshot_sent(rt->r, q->peer, q->core_index, false);
drop:
	if (q->rc == 0)
		rt->o.fsm.snapshot_close(rt->o.fsm.ctx, q->view);
}

static int compact(struct raft_runtime *rt, uint64_t synced)
{
	struct raft_snapshot_meta meta;
	struct raft_status st;
	uint64_t index = synced;
	int rc;

	raft_status_get(rt->r, &st);
	if (index > st.applied_hint)
		index = st.applied_hint;
	if (index > st.last_index)
		index = st.last_index;
	if (index <= rt->snap_index || index < st.first_index - 1)
		return 0;
	rc = raft_snapshot_taken(rt->r, index, rt->o.snapshot_keep_entries,
				 &meta);
	if (rc != 0) {
		rt_log(rt, 1, "snapshot at %" PRIu64 " refused by the core: %s",
		       index, strerror(-rc));
		return 0;
	}
	uint64_t below = raft_first_index(rt->r);
	rc = rt_job_compact(rt, &meta, below);
	if (rc != 0)
		return rc;
	rt->snap_index = meta.index;
	rt->snap_term_of = meta.term;
	rt->bytes_since_snapshot = 0;
	rt->snapshots_taken++;
	if (below > rt->log_first_index)
		rt->log_first_index = below;
	rt_log(rt, 2,
	       "snapshot at %" PRIu64 " (term %" PRIu64
	       "): log compacted below %" PRIu64,
	       meta.index, meta.term, below);
	return 0;
}

int rt_snap_driver_step(struct raft_runtime *rt)
{
	struct rt_view_req *views;
	struct rt_send_result *sends;
	bool synced, now_asked;
	uint64_t asked_for;
	int sync_rc;
	uint64_t sync_index;
	uint64_t now = rt->round_ms;
	int rc = 0;

	pthread_mutex_lock(&rt->mu);
	views = rt->views_done;
	sends = rt->sends_done;
	synced = rt->sync_done;
	sync_rc = rt->sync_rc;
	sync_index = rt->sync_index;
	rt->views_done = NULL;
	rt->sends_done = NULL;
	rt->sync_done = false;
	now_asked = rt->snap_now;
	rt->snap_now = false;
	asked_for = rt->snap_for;
	rt->snap_for = 0;
	pthread_mutex_unlock(&rt->mu);
	if (asked_for != 0) {
		rc = raft_snapshot_request(rt->r, asked_for);
		if (rc == 0)
			rt_log(rt, 2, "node %" PRIu64 " asked for a snapshot: "
				      "streaming one", asked_for);
		else
			rt_log(rt, 1, "node %" PRIu64 " asked for a snapshot: "
				      "%s", asked_for,
			       rc == -EPERM ? "not the leader" : strerror(-rc));
		if (rc == -ENOMEM)
			return rc;
		rc = 0;
	}

	/* Streams belong to one leader term: a step down or a new term
	 * drops them (the core forgot them too). */
	uint64_t term = raft_is_leader(rt->r) ? raft_term(rt->r) : 0;
	if (term != rt->snap_term_set) {
		rt->snap_term_set = term;
		pthread_mutex_lock(&rt->snap_mu);
		rt->snap_term = term;
		pthread_cond_signal(&rt->snap_wake);
		pthread_mutex_unlock(&rt->snap_mu);
	}
	while (sends != NULL) {
		struct rt_send_result *r = sends;
		sends = r->next;
		if (leads_in(rt, r->term))
			(void)raft_snapshot_sent(rt->r, r->peer, r->core_index,
						 r->ok);
		free(r);
	}
	while (views != NULL) {
		struct rt_view_req *q = views;
		views = q->next;
		start_stream(rt, q);
		free(q);
	}
	if (synced) {
		rt->sync_pending = false;
		rt->sync_retry_ms = now + SYNC_RETRY_MS / 10u;
		if (sync_rc != 0) {
			rt_log(rt, 1,
			       "state machine sync for a snapshot failed: %s",
			       strerror(-sync_rc));
			rt->sync_retry_ms = now + SYNC_RETRY_MS;
		} else {
			uint64_t before = rt->snap_index;
			rc = compact(rt, sync_index);
			if (rc == 0 && rt->snap_index == before)
				rt->sync_retry_ms = now + SYNC_RETRY_MS;
		}
	}
	if (now_asked && !rt->sync_pending) {
		rt->sync_pending = true;
		pthread_mutex_lock(&rt->apply_mu);
		rt->sync_req = true;
		pthread_cond_signal(&rt->apply_wake);
		pthread_mutex_unlock(&rt->apply_mu);
	} else if (now_asked) {
		rt->sync_retry_ms = 0; /* one is on its way: it does */
	}
	if (rc == 0 && !rt->sync_pending && now >= rt->sync_retry_ms) {
		uint64_t since = raft_last_index(rt->r) - rt->snap_index;
		if (raft_last_index(rt->r) < rt->snap_index)
			since = 0;
		if ((rt->o.snapshot_entries != 0 &&
		     since > rt->o.snapshot_entries) ||
		    (rt->o.snapshot_bytes != 0 &&
		     rt->bytes_since_snapshot > rt->o.snapshot_bytes)) {
			rt->sync_pending = true;
			pthread_mutex_lock(&rt->apply_mu);
			rt->sync_req = true;
			pthread_cond_signal(&rt->apply_wake);
			pthread_mutex_unlock(&rt->apply_mu);
		}
	}
	return rc;
}

/* ====================================================================== */
/* The snapshot thread (leader side).                                     */

static void stream_free(struct raft_runtime *rt, struct rt_stream *s)
{
	if (s == NULL)
		return;
	if (s->view != NULL)
		rt->o.fsm.snapshot_close(rt->o.fsm.ctx, s->view);
	for (uint32_t i = 0; s->bufs != NULL && i < s->window; i++)
		free(s->bufs[i]);
	free(s->bufs);
	free(s->lens);
	free(s->offs);
	free(s->lasts);
	free(s);
}

static int stream_alloc(struct raft_runtime *rt, struct rt_stream *s)
{
	s->window = rt->o.snapshot_window;
	s->bufs = calloc(s->window, sizeof(*s->bufs));
	s->lens = calloc(s->window, sizeof(*s->lens));
	s->offs = calloc(s->window, sizeof(*s->offs));
	s->lasts = calloc(s->window, sizeof(*s->lasts));
	if (s->bufs == NULL || s->lens == NULL || s->offs == NULL ||
	    s->lasts == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->window; i++) {
		s->bufs[i] = malloc(rt->o.fsm.snapshot_chunk_bytes);
		if (s->bufs[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

static void stream_send(struct raft_runtime *rt, struct rt_stream *s,
			uint32_t slot)
{
	struct raft_chunk c;

	memset(&c, 0, sizeof(c));
	c.type = RAFT_CHUNK_DATA;
	c.last = s->lasts[slot];
	c.from = rt->o.id;
	c.to = s->peer;
	c.term = s->term;
	c.stream = s->id;
	c.offset = s->offs[slot];
	c.meta = s->meta;
	c.size = (uint32_t)s->lens[slot];
	c.data = s->bufs[slot];
	/* A refused send is a lost chunk: sent again after retry_ms. */
	(void)rt->o.transport.send_chunk(rt->o.transport.ctx, &c);
}

/* Read and send what the window allows; 0 or the view's error. */
static int stream_fill(struct raft_runtime *rt, struct rt_stream *s)
{
	while (!s->read_done && s->n < s->window) {
		uint32_t slot = (s->head + s->n) % s->window;
		size_t len = 0;
		bool last = false;
		int rc = rt->o.fsm.snapshot_read(rt->o.fsm.ctx, s->view,
						 s->bufs[slot],
						 rt->o.fsm.snapshot_chunk_bytes,
						 &len, &last);
		if (rc != 0)
			return rc;
		if (len == 0 && !last)
			return -EIO;
		if (len == 0) {
			/* An empty end: mark the previous chunk last, or
			 * the stream would have no chunk at all. */
			if (s->n == 0 && s->read_off == 0)
				return -EIO;
			s->read_done = true;
			if (s->n > 0) {
				uint32_t prev = (s->head + s->n - 1) % s->window;
				s->lasts[prev] = true;
				stream_send(rt, s, prev);
			}
			break;
		}
		s->lens[slot] = len;
		s->offs[slot] = s->read_off;
		s->lasts[slot] = last;
		s->read_off += len;
		s->read_done = last;
		s->n++;
		stream_send(rt, s, slot);
	}
	return 0;
}

/* An acknowledgment for s: 1 the stream ended (ok in *ok), 0 otherwise. */
static int stream_ack(struct raft_runtime *rt, struct rt_stream *s,
		      const struct raft_chunk *a, bool *ok, uint64_t now)
{
	(void)rt;
	if (a->reject) {
		*ok = false;
		return 1;
	}
	if (a->done) {
		*ok = true;
		return 1;
	}
	if (a->offset > s->acked && a->offset <= s->read_off) {
		s->acked = a->offset;
		s->progress_ms = now;
		while (s->n > 0 &&
		       s->offs[s->head] + s->lens[s->head] <= s->acked) {
			s->head = (s->head + 1) % s->window;
			s->n--;
		}
	}
	return 0;
}

static void publish_transfers(struct raft_runtime *rt, struct rt_stream *list,
			      uint64_t now)
{
	struct raft_runtime_transfer t[RAFT_MAX_MEMBERS];
	uint32_t n = 0;

	for (struct rt_stream *s = list; s != NULL && n < RAFT_MAX_MEMBERS;
	     s = s->next) {
		uint64_t ms = now - s->started_ms;
		t[n].peer = s->peer;
		t[n].sending = true;
		t[n].index = s->meta.index;
		t[n].bytes = s->acked;
		t[n].elapsed_ms = ms;
		t[n].bytes_per_s = ms > 0 ? s->acked * 1000u / ms : 0;
		n++;
	}
	pthread_mutex_lock(&rt->snap_mu);
	memcpy(rt->snap_pub, t, n * sizeof(t[0]));
	rt->snap_n_pub = n;
	pthread_mutex_unlock(&rt->snap_mu);
}

static void stream_end(struct raft_runtime *rt, struct rt_stream *s, bool ok,
		       bool report, uint64_t now)
{
	uint64_t ms = now - s->started_ms;

	if (report) {
		rt_log(rt, ok ? 2 : 1,
		       "snapshot at %" PRIu64 " to node %" PRIu64 " %s: %" PRIu64
		       " bytes in %" PRIu64 " ms",
		       s->meta.index, s->peer, ok ? "sent" : "abandoned",
		       s->acked, ms);
		post_result(rt, s->peer, s->core_index, s->term, ok);
	}
	stream_free(rt, s);
}

void *rt_snap_main(void *arg)
{
	struct raft_runtime *rt = arg;
	struct rt_stream *streams = NULL;

	pthread_mutex_lock(&rt->snap_mu);
	for (;;) {
		if (rt->snap_stop)
			break;
		struct rt_stream *fresh = rt->snap_new;
		struct rt_chunk *acks = rt->acks_in;
		uint64_t term = rt->snap_term;
		rt->snap_new = NULL;
		rt->acks_in = NULL;
		rt->acks_in_tail = &rt->acks_in;
		pthread_mutex_unlock(&rt->snap_mu);

		uint64_t now = rt_now_ms();
		while (fresh != NULL) {
			struct rt_stream *s = fresh;
			fresh = s->next;
			/* A new stream to a peer replaces the old one. */
			for (struct rt_stream **pp = &streams; *pp != NULL;) {
				struct rt_stream *o = *pp;
				if (o->peer == s->peer) {
					*pp = o->next;
					stream_end(rt, o, false, false, now);
				} else {
					pp = &o->next;
				}
			}
			s->started_ms = s->progress_ms = s->resent_ms = now;
			if (stream_alloc(rt, s) != 0) {
				stream_end(rt, s, false, true, now);
				continue;
			}
			s->next = streams;
			streams = s;
		}
		while (acks != NULL) {
			struct rt_chunk *a = acks;
			acks = a->next;
			for (struct rt_stream **pp = &streams; *pp != NULL;
			     pp = &(*pp)->next) {
				struct rt_stream *s = *pp;
				bool ok = false;
				if (s->peer != a->c.from || s->id != a->c.stream)
					continue;
				if (stream_ack(rt, s, &a->c, &ok, now)) {
					*pp = s->next;
					stream_end(rt, s, ok, true, now);
				}
				break;
			}
			free(a);
		}
		for (struct rt_stream **pp = &streams; *pp != NULL;) {
			struct rt_stream *s = *pp;
			int rc = 0;
			if (s->term != term) {
				*pp = s->next;
				rt_log(rt, 2,
				       "snapshot stream to node %" PRIu64
				       " dropped: no longer leader of term %" PRIu64,
				       s->peer, s->term);
				stream_end(rt, s, false, false, now);
				continue;
			}
			if (now - s->progress_ms > rt->o.snapshot_timeout_ms) {
				*pp = s->next;
				stream_end(rt, s, false, true, now);
				continue;
			}
			/* Go-back-N: nothing acknowledged for retry_ms,
			 * send the window again from the first missing. */
			if (s->n > 0 &&
			    now - (s->progress_ms > s->resent_ms
					   ? s->progress_ms
					   : s->resent_ms) >= rt->o.retry_ms) {
				for (uint32_t i = 0; i < s->n; i++)
					stream_send(rt, s,
						    (s->head + i) % s->window);
				s->resent_ms = now;
			}
			rc = stream_fill(rt, s);
			if (rc != 0) {
				*pp = s->next;
				rt_log(rt, 1,
				       "reading the snapshot for node %" PRIu64
				       " failed: %s",
				       s->peer, strerror(-rc));
				stream_end(rt, s, false, true, now);
				continue;
			}
			pp = &s->next;
		}
		publish_transfers(rt, streams, now);

		pthread_mutex_lock(&rt->snap_mu);
		if (rt->snap_stop || rt->snap_new != NULL || rt->acks_in != NULL)
			continue;
		if (streams == NULL) {
			pthread_cond_wait(&rt->snap_wake, &rt->snap_mu);
		} else {
			struct timespec ts;
			uint64_t at = rt_now_ms() + SNAP_POLL_MS;
			ts.tv_sec = (time_t)(at / 1000u);
			ts.tv_nsec = (long)(at % 1000u) * 1000000L;
			pthread_cond_timedwait(&rt->snap_wake, &rt->snap_mu, &ts);
		}
	}
	pthread_mutex_unlock(&rt->snap_mu);
	while (streams != NULL) {
		struct rt_stream *s = streams;
		streams = s->next;
		stream_free(rt, s);
	}
	return NULL;
}

/* ====================================================================== */
/* The apply thread: syncs, views, installs.                              */

bool rt_snap_apply_has_work(struct raft_runtime *rt)
{
	return rt->sync_req || rt->view_reqs != NULL || rt->chunks_in != NULL;
}

static void send_ack(struct raft_runtime *rt, const struct raft_chunk *d,
		     uint64_t offset, bool done, bool reject)
{
	struct raft_chunk a;

	memset(&a, 0, sizeof(a));
	a.type = RAFT_CHUNK_ACK;
	a.from = rt->o.id;
	a.to = d->from;
	a.term = d->term;
	a.stream = d->stream;
	a.offset = offset;
	a.done = done;
	a.reject = reject;
	a.meta.index = d->meta.index;
	a.meta.term = d->meta.term;
	(void)rt->o.transport.send_chunk(rt->o.transport.ctx, &a);
}

static void publish_install(struct raft_runtime *rt)
{
	struct rt_install *in = &rt->install;

	pthread_mutex_lock(&rt->apply_mu);
	rt->inst_from = in->active ? in->from : 0;
	rt->inst_index = in->meta.index;
	rt->inst_bytes = in->offset;
	rt->inst_started_ms = in->started_ms;
	pthread_mutex_unlock(&rt->apply_mu);
}

static void install_drop(struct raft_runtime *rt)
{
	struct rt_install *in = &rt->install;

	if (in->active && !in->skip && in->inst != NULL)
		rt->o.fsm.install_abort(rt->o.fsm.ctx, in->inst);
	in->inst = NULL;
	in->active = false;
}

/* The state machine switched to the snapshot at meta: the apply thread's
 * indexes jump there; queued entries it covers are dropped. */
static void install_applied(struct raft_runtime *rt,
			    const struct raft_snapshot_meta *meta)
{
	struct rt_read *reads;

	pthread_mutex_lock(&rt->apply_mu);
	while (rt->aq_n > 0 && rt->aq[rt->aq_head]->e.index <= meta->index) {
		struct rt_entry *x = rt->aq[rt->aq_head];
		rt->aq[rt->aq_head] = NULL;
		rt->aq_head = (rt->aq_head + 1) % rt->aq_cap;
		rt->aq_n--;
		rt->aq_bytes -= x->e.size;
		rt_entry_unref(x);
	}
	rt->applied = meta->index;
	rt->applied_term = meta->term;
	if (rt->awaiting) {
		/* Entries queued or claimed while waiting were not applied:
		 * apply resumes right after the snapshot. */
		rt->awaiting = false;
		rt->apply_next = meta->index + 1;
	}
	if (rt->apply_next <= meta->index)
		rt->apply_next = meta->index + 1;
	if (rt->apply_target < meta->index)
		rt->apply_target = meta->index;
	rt->installs++;
	reads = rt_reads_take_applied(rt, meta->index);
	pthread_mutex_unlock(&rt->apply_mu);
	rt_reads_complete(reads, 0);
}

/* Hand the core the snapshot the state machine now holds (or held
 * already): it replaces its log, or advances its commit. */
static void tell_core(struct raft_runtime *rt, const struct raft_chunk *d)
{
	struct raft_snapshot_meta meta = d->meta;
	struct raft_message m;

	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_SNAPSHOT;
	m.from = d->from;
	m.to = rt->o.id;
	m.term = d->term;
	m.snapshot = &meta;
	rt_receive_msg(rt, &m);
}

static void install_data(struct raft_runtime *rt, const struct raft_chunk *d)
{
	struct rt_install *in = &rt->install;
	uint64_t applied = rt->applied; /* this thread's own */
	int rc;

	if (!in->active || in->from != d->from || in->stream != d->stream) {
		if (!in->active && in->from == d->from &&
		    in->stream == d->stream) {
			/* A late copy of a stream already finished. */
			send_ack(rt, d, in->offset, true, false);
			return;
		}
		if (d->offset != 0) {
			send_ack(rt, d, 0, false, true); /* unknown stream */
			return;
		}
		install_drop(rt);
		memset(in, 0, sizeof(*in));
		in->active = true;
		in->from = d->from;
		in->stream = d->stream;
		in->term = d->term;
		in->meta = d->meta;
		in->started_ms = rt_now_ms();
		in->skip = d->meta.index <= applied;
		if (rt->awaiting && d->meta.index < rt->await_min) {
			/* The entries between it and the log's first one
			 * are gone here: a later view will do. */
			rt_log(rt, 1,
			       "snapshot at %" PRIu64 " refused: this node's "
			       "log starts after it (at %" PRIu64 ")",
			       d->meta.index, rt->await_min + 1);
			in->active = false;
			send_ack(rt, d, 0, false, true);
			return;
		}
		if (!in->skip) {
			rc = rt->o.fsm.install_begin(rt->o.fsm.ctx,
						     d->meta.index,
						     d->meta.term, &in->inst);
			if (rc != 0) {
				rt_log(rt, 1,
				       "cannot begin installing snapshot %" PRIu64
				       ": %s",
				       d->meta.index, strerror(-rc));
				in->inst = NULL;
				in->active = false;
				send_ack(rt, d, 0, false, true);
				return;
			}
		}
		rt_log(rt, 2,
		       "receiving snapshot at %" PRIu64 " (term %" PRIu64
		       ") from node %" PRIu64 "%s",
		       d->meta.index, d->meta.term, d->from,
		       in->skip ? " (already applied: not installed)" : "");
		if (in->skip) {
			/* The state machine holds it: only the log needs
			 * to know. */
			in->active = false;
			tell_core(rt, d);
			send_ack(rt, d, 0, true, false);
			return;
		}
	}
	if (d->offset != in->offset) {
		/* A duplicate, or a gap after a lost chunk: say where we
		 * are; the sender goes back to it. */
		send_ack(rt, d, in->offset, false, false);
		return;
	}
	if (!in->skip) {
		rc = rt->o.fsm.install_chunk(rt->o.fsm.ctx, in->inst, d->data,
					     d->size);
		if (rc == -EPROTONOSUPPORT) {
			/* Asking again brings the same stream: stop. */
			install_drop(rt);
			rt_fail(rt, rc,
				"snapshot %" PRIu64 " from node %" PRIu64
				" is in a format this build does not know; "
				"stopping: run the build the other members run",
				d->meta.index, d->from);
			return;
		}
		if (rc != 0) {
			rt_log(rt, 1,
			       "snapshot %" PRIu64 " from node %" PRIu64
			       ": bad chunk at %" PRIu64 " (%s); abandoned",
			       d->meta.index, d->from, d->offset,
			       strerror(-rc));
			install_drop(rt);
			send_ack(rt, d, 0, false, true);
			return;
		}
	}
	in->offset += d->size;
	if (!d->last) {
		send_ack(rt, d, in->offset, false, false);
		return;
	}
	/* Everything received: stop the resends while the state is made
	 * durable and switched. */
	send_ack(rt, d, in->offset, false, false);
	if (!in->skip && rt->applied >= d->meta.index) {
		rt->o.fsm.install_abort(rt->o.fsm.ctx, in->inst);
		in->skip = true;
	} else if (!in->skip) {
		rc = rt->o.fsm.install_finish(rt->o.fsm.ctx, in->inst);
		in->inst = NULL;
		if (rc != 0) {
			in->active = false;
			send_ack(rt, d, 0, false, true);
			if (rc != -EBADMSG && rc != -EBUSY) {
				rt_fail(rt, rc,
					"installing snapshot %" PRIu64
					" failed: %s; the state machine's store "
					"needs checking before a restart",
					d->meta.index, strerror(-rc));
				return;
			}
			rt_log(rt, 1,
			       "installing snapshot %" PRIu64 " failed: %s; "
			       "the old state is kept",
			       d->meta.index, strerror(-rc));
			return;
		}
		install_applied(rt, &d->meta);
		rt_log(rt, 2,
		       "installed snapshot at %" PRIu64 " (term %" PRIu64
		       "): %" PRIu64 " bytes in %" PRIu64 " ms",
		       d->meta.index, d->meta.term, in->offset,
		       rt_now_ms() - in->started_ms);
	}
	in->inst = NULL;
	in->active = false;
	tell_core(rt, d);
	send_ack(rt, d, in->offset, true, false);
}

void rt_snap_apply_work(struct raft_runtime *rt)
{
	struct rt_view_req *reqs;
	struct rt_chunk *chunks;
	bool sync;

	pthread_mutex_lock(&rt->apply_mu);
	sync = rt->sync_req;
	reqs = rt->view_reqs;
	chunks = rt->chunks_in;
	rt->sync_req = false;
	rt->view_reqs = NULL;
	rt->chunks_in = NULL;
	rt->chunks_in_tail = &rt->chunks_in;
	rt->chunks_in_bytes = 0;
	pthread_mutex_unlock(&rt->apply_mu);

	if (sync) {
		/* Everything applied before the sync began is durable. */
		uint64_t index = rt->applied;
		int rc = rt->o.fsm.sync(rt->o.fsm.ctx);
		pthread_mutex_lock(&rt->mu);
		rt->sync_done = true;
		rt->sync_rc = rc;
		rt->sync_index = index;
		pthread_cond_signal(&rt->wake);
		pthread_mutex_unlock(&rt->mu);
	}
	if (reqs != NULL) {
		struct rt_view_req *done = NULL;
		while (reqs != NULL) {
			struct rt_view_req *q = reqs;
			reqs = q->next;
			q->index = rt->applied;
			q->index_term = rt->applied_term;
			if (q->index == 0 || q->index_term == 0)
				q->rc = -EAGAIN; /* not known since the start */
			else
				q->rc = rt->o.fsm.snapshot_open(
					rt->o.fsm.ctx, q->index, q->index_term,
					&q->view);
			q->next = done;
			done = q;
		}
		pthread_mutex_lock(&rt->mu);
		while (done != NULL) {
			struct rt_view_req *q = done;
			done = q->next;
			q->next = rt->views_done;
			rt->views_done = q;
		}
		pthread_cond_signal(&rt->wake);
		pthread_mutex_unlock(&rt->mu);
	}
	while (chunks != NULL) {
		struct rt_chunk *x = chunks;
		chunks = x->next;
		install_data(rt, &x->c);
		free(x);
	}
	publish_install(rt);
}

/* ====================================================================== */

int raft_runtime_snapshot(struct raft_runtime *rt)
{
	int rc = 0;

	if (!rt->snap_enabled)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&rt->mu);
	if (rt->failed != 0)
		rc = -EIO;
	else
		rt->snap_now = true;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

int raft_runtime_request_snapshot(struct raft_runtime *rt, uint64_t peer)
{
	int rc = 0;

	if (!rt->snap_enabled)
		return -EOPNOTSUPP;
	if (peer == 0 || peer == rt->o.id)
		return -EINVAL;
	pthread_mutex_lock(&rt->mu);
	if (rt->failed != 0)
		rc = -EIO;
	else
		rt->snap_for = peer;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

void rt_snap_status(struct raft_runtime *rt, struct raft_runtime_status *st)
{
	uint64_t now = rt_now_ms();
	uint64_t from, index, bytes, started;

	pthread_mutex_lock(&rt->snap_mu);
	st->n_transfers = rt->snap_n_pub;
	memcpy(st->transfers, rt->snap_pub,
	       rt->snap_n_pub * sizeof(st->transfers[0]));
	pthread_mutex_unlock(&rt->snap_mu);
	pthread_mutex_lock(&rt->apply_mu);
	from = rt->inst_from;
	index = rt->inst_index;
	bytes = rt->inst_bytes;
	started = rt->inst_started_ms;
	st->snapshots_installed = rt->installs;
	pthread_mutex_unlock(&rt->apply_mu);
	if (from != 0 && st->n_transfers < RAFT_MAX_MEMBERS) {
		struct raft_runtime_transfer *t = &st->transfers[st->n_transfers++];
		uint64_t ms = now > started ? now - started : 0;
		t->peer = from;
		t->sending = false;
		t->index = index;
		t->bytes = bytes;
		t->elapsed_ms = ms;
		t->bytes_per_s = ms > 0 ? bytes * 1000u / ms : 0;
	}
}

void rt_snap_release(struct raft_runtime *rt)
{
	install_drop(rt);
	while (rt->chunks_in != NULL) {
		struct rt_chunk *x = rt->chunks_in;
		rt->chunks_in = x->next;
		free(x);
	}
	while (rt->acks_in != NULL) {
		struct rt_chunk *x = rt->acks_in;
		rt->acks_in = x->next;
		free(x);
	}
	while (rt->view_reqs != NULL) {
		struct rt_view_req *q = rt->view_reqs;
		rt->view_reqs = q->next;
		free(q);
	}
	while (rt->views_done != NULL) {
		struct rt_view_req *q = rt->views_done;
		rt->views_done = q->next;
		if (q->rc == 0)
			rt->o.fsm.snapshot_close(rt->o.fsm.ctx, q->view);
		free(q);
	}
	while (rt->sends_done != NULL) {
		struct rt_send_result *r = rt->sends_done;
		rt->sends_done = r->next;
		free(r);
	}
	while (rt->snap_new != NULL) {
		struct rt_stream *s = rt->snap_new;
		rt->snap_new = s->next;
		stream_free(rt, s);
	}
}
