/*
 * The simulated cluster: nodes running the real core, their disks, the
 * network between them and the event loop in virtual time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/internal.h"

/* ---- randomness, hashing, tracing ---- */

uint64_t sim_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_rand(struct sim *s)
{
	return sim_splitmix(&s->rng);
}

uint64_t sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + sim_rand(s) % (hi - lo);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

uint64_t sim_chain(uint64_t prev, uint64_t term, uint8_t type,
		   const uint8_t *data, uint32_t size)
{
	uint64_t h = mix(mix(mix(prev, term), type), size);
	for (uint32_t i = 0; i < size; i++)
		h = mix(h, data[i]);
	return h;
}

void sim_trace(struct sim *s, const char *fmt, ...)
{
	char line[160];
	va_list ap;
	va_start(ap, fmt);
	int len = snprintf(line, sizeof(line), "%10llu ",
			   (unsigned long long)s->now_us);
	if (len > 0 && (size_t)len < sizeof(line))
		vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	if (s->verbose)
		fprintf(stderr, "%s\n", line);
	if (!s->trace)
		return;
	memcpy(s->trace[s->trace_pos], line, sizeof(line));
	s->trace_pos = (s->trace_pos + 1) % s->cfg.trace_lines;
	if (s->trace_count < s->cfg.trace_lines)
		s->trace_count++;
}

int sim_fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return -EFAULT;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
	va_end(ap);
	s->failed = true;
	sim_trace(s, "VIOLATION: %s", s->violation);
	return -EFAULT;
}

int sim_report(struct sim *s, const char *fmt, ...)
{
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return sim_fail(s, "%s", why);
}

uint32_t sim_nodes(const struct sim *s)
{
	return s->cfg.nodes;
}

static void dump_nodes(const struct sim *s)
{
	for (uint64_t id = 1; id <= s->cfg.nodes; id++) {
		const struct sim_node *n = &s->nodes[id];
		if (!n->up) {
			fprintf(stderr, "  node %llu: down\n",
				(unsigned long long)id);
			continue;
		}
		struct raft_status st;
		raft_status_get(n->raft, &st);
		fprintf(stderr,
			"  node %llu: %s term %llu leader %llu last %llu commit "
			"%llu persisted %llu applied %llu%s\n",
			(unsigned long long)id, raft_state_name(st.state),
			(unsigned long long)st.term,
			(unsigned long long)st.leader,
			(unsigned long long)st.last_index,
			(unsigned long long)st.commit,
			(unsigned long long)st.persisted,
			(unsigned long long)n->applied,
			n->paused ? " paused" : "");
		const struct raft_configuration *c = raft_configuration(n->raft);
		fprintf(stderr, "    configuration:");
		for (uint32_t i = 0; i < c->n; i++)
			fprintf(stderr, " %llu%s", (unsigned long long)c->members[i].id,
				c->members[i].role == RAFT_VOTER     ? "v"
				: c->members[i].role == RAFT_LEARNER ? "l"
								     : "x");
		fprintf(stderr, "\n");
		struct raft_progress_info pi[RAFT_MAX_MEMBERS];
		uint32_t np = raft_progress_get(n->raft, pi, RAFT_MAX_MEMBERS);
		for (uint32_t i = 0; i < np; i++)
			fprintf(stderr,
				"    peer %llu: state %u match %llu next %llu "
				"inflight %u%s\n",
				(unsigned long long)pi[i].id, pi[i].state,
				(unsigned long long)pi[i].match,
				(unsigned long long)pi[i].next,
				pi[i].inflight_msgs,
				pi[i].recent_active ? " active" : "");
	}
}

void sim_dump_trace(const struct sim *s)
{
	dump_nodes(s);
	uint32_t n = s->trace_count;
	uint32_t start = (s->trace_pos + s->cfg.trace_lines - n) %
			 (s->cfg.trace_lines ? s->cfg.trace_lines : 1);
	for (uint32_t i = 0; i < n; i++)
		fprintf(stderr, "  %s\n",
			s->trace[(start + i) % s->cfg.trace_lines]);
}

void sim_set_verbose(struct sim *s, bool verbose)
{
	s->verbose = verbose;
}

/* ---- events ---- */

static void heap_push(struct sim *s, struct sim_event ev)
{
	if (s->n_heap == s->cap_heap) {
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
		s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
		if (!s->heap)
			abort();
	}
	ev.seq = s->event_seq++;
	size_t i = s->n_heap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct sim_event *pe = &s->heap[p];
		if (pe->at_us < ev.at_us ||
		    (pe->at_us == ev.at_us && pe->seq < ev.seq))
			break;
		s->heap[i] = *pe;
		i = p;
	}
	s->heap[i] = ev;
}

static bool heap_less(const struct sim_event *a, const struct sim_event *b)
{
	return a->at_us < b->at_us || (a->at_us == b->at_us && a->seq < b->seq);
}

static struct sim_event heap_pop(struct sim *s)
{
	struct sim_event top = s->heap[0];
	struct sim_event last = s->heap[--s->n_heap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct sim_event *best = &last;
		if (l < s->n_heap && heap_less(&s->heap[l], best)) {
			m = l;
			best = &s->heap[l];
		}
		if (r < s->n_heap && heap_less(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (s->n_heap > 0)
		s->heap[i] = last;
	return top;
}

/* ---- messages ---- */

static void msg_free(struct sim_msg *sm)
{
	if (!sm)
		return;
	for (uint32_t i = 0; i < sm->m.n_entries; i++)
		free((void *)sm->entries[i].data);
	free(sm->entries);
	free(sm);
}

/* Deep-copy a message, attaching payloads from the sender's log where the
 * core left them out (normal entries of AppendEntries). */
static struct sim_msg *msg_copy(struct sim *s, struct sim_node *n,
				const struct raft_message *m)
{
	struct sim_msg *sm = calloc(1, sizeof(*sm));
	if (!sm)
		abort();
	sm->m = *m;
	if (m->n_entries) {
		sm->entries = calloc(m->n_entries, sizeof(*sm->entries));
		if (!sm->entries)
			abort();
	}
	for (uint32_t i = 0; i < m->n_entries; i++) {
		struct raft_entry e = m->entries[i];
		const void *src = e.data;
		if (!src && e.size > 0 && m->type == RAFT_MSG_APPEND) {
			const struct sim_entry *have =
				sim_log_get(&n->mem_log, e.index);
			if (!have || have->term != e.term) {
				sim_fail(s, "node %llu sends entry %llu term "
					    "%llu it does not hold",
					 (unsigned long long)n->id,
					 (unsigned long long)e.index,
					 (unsigned long long)e.term);
				src = NULL;
				e.size = 0;
			} else {
				src = have->data;
			}
		}
		void *copy = NULL;
		if (e.size) {
			copy = malloc(e.size);
			if (!copy)
				abort();
			memcpy(copy, src, e.size);
		}
		e.data = copy;
		sm->entries[i] = e;
	}
	sm->m.entries = sm->entries;
	if (m->snapshot) {
		sm->snapshot = *m->snapshot;
		sm->m.snapshot = &sm->snapshot;
	}
	return sm;
}

static void deliver_later(struct sim *s, struct sim_msg *sm)
{
	uint64_t from = sm->m.from, to = sm->m.to;
	s->stats.messages_sent++;
	if (sm->m.type <= RAFT_MSG_TYPE_MAX)
		s->stats.sent_by_type[sm->m.type]++;
	if (sm->m.type == RAFT_MSG_APPEND_RESP && sm->m.reject)
		s->stats.append_rejects++;
	if (to == 0 || to > s->cfg.nodes || s->cut[from][to] ||
	    sim_rand_range(s, 0, 1000) < s->net.drop_permille) {
		s->stats.messages_dropped++;
		msg_free(sm);
		return;
	}
	struct sim_event ev = {
		.at_us = s->now_us + sim_rand_range(s, s->net.min_delay_us,
						    s->net.max_delay_us + 1),
		.type = EV_DELIVER,
		.node = to,
		.boot = s->nodes[to].boot,
		.msg = sm,
	};
	if (sim_rand_range(s, 0, 1000) < s->net.dup_permille) {
		struct sim_event dup = ev;
		dup.msg = msg_copy(s, &s->nodes[from], &sm->m);
		dup.at_us = s->now_us + sim_rand_range(s, s->net.min_delay_us,
						       s->net.max_delay_us + 1);
		s->stats.messages_duplicated++;
		heap_push(s, dup);
	}
	heap_push(s, ev);
}

static int send_msg(struct sim *s, struct sim_node *n, struct sim_msg *sm)
{
	int rc = sim_check_sent(s, n, &sm->m);
	sim_trace(s, "n%llu -> n%llu %s t%llu i%llu lt%llu c%llu n%u%s",
		  (unsigned long long)sm->m.from, (unsigned long long)sm->m.to,
		  raft_message_type_name(sm->m.type),
		  (unsigned long long)sm->m.term,
		  (unsigned long long)sm->m.index,
		  (unsigned long long)sm->m.log_term,
		  (unsigned long long)sm->m.commit, sm->m.n_entries,
		  sm->m.reject ? " reject" : "");
	deliver_later(s, sm);
	return rc;
}

/* ---- updates ---- */

static void apply_write_to_log(struct sim_log *log, const struct sim_write *w)
{
	if (w->install)
		sim_log_reset(log, w->snap.meta.index, w->snap.meta.term,
			      w->snap.chain);
	if (w->truncate_from)
		sim_log_truncate(log, w->truncate_from);
	for (uint32_t i = 0; i < w->n_entries; i++) {
		const struct sim_entry *e = &w->entries[i];
		sim_log_append(log, e->term, e->type, e->data, e->size);
	}
}

static void write_free(struct sim_write *w)
{
	for (uint32_t i = 0; i < w->n_entries; i++)
		free(w->entries[i].data);
	free(w->entries);
	for (uint32_t i = 0; i < w->n_after; i++)
		msg_free(w->after[i]);
	free(w->after);
	free(w);
}

static int apply_entries(struct sim *s, struct sim_node *n, uint64_t upto)
{
	for (uint64_t i = n->applied + 1; i <= upto; i++) {
		const struct sim_entry *e = sim_log_get(&n->mem_log, i);
		const struct sim_entry *d = sim_log_get(&n->disk_log, i);
		if (!e || !d || d->chain != e->chain)
			return sim_fail(s, "node %llu applies entry %llu that "
					   "is not durable",
					(unsigned long long)n->id,
					(unsigned long long)i);
		int rc = sim_check_apply(s, n, i, e);
		if (rc == 0)
			rc = sim_machine_apply(s, n, i, e);
		if (rc != 0)
			return rc;
		n->applied = i;
	}
	return 0;
}

/* The follower installs a snapshot it received: its state machine becomes
 * the snapshot's state (rebuilt from the cluster's committed entries, as a
 * real snapshot would carry it); the log reset becomes durable with the
 * update's write. */
static int install_snapshot(struct sim *s, struct sim_node *n,
			    const struct raft_snapshot_meta *meta)
{
	if (meta->index > s->n_committed)
		return sim_fail(s, "node %llu installs snapshot %llu beyond "
				   "what was ever committed (%llu)",
				(unsigned long long)n->id,
				(unsigned long long)meta->index,
				(unsigned long long)s->n_committed);
	s->stats.installs++;
	sim_trace(s, "n%llu INSTALL snapshot %llu term %llu",
		  (unsigned long long)n->id, (unsigned long long)meta->index,
		  (unsigned long long)meta->term);
	return sim_machine_rebuild(s, n, meta->index);
}

static int start_transfer(struct sim *s, struct sim_node *n,
			  const struct raft_snapshot_send *send)
{
	uint64_t to = send->peer;
	if (to == 0 || to > s->cfg.nodes)
		return sim_fail(s, "node %llu sends a snapshot to %llu",
				(unsigned long long)n->id,
				(unsigned long long)to);
	/* The snapshot it names must be the node's durable one. */
	if (send->meta.index != n->disk_snap.meta.index ||
	    send->meta.term != n->disk_snap.meta.term)
		return sim_fail(s, "node %llu sends snapshot %llu/%llu but "
				   "holds %llu/%llu",
				(unsigned long long)n->id,
				(unsigned long long)send->meta.index,
				(unsigned long long)send->meta.term,
				(unsigned long long)n->disk_snap.meta.index,
				(unsigned long long)n->disk_snap.meta.term);
	struct sim_transfer *t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	t->from = n->id;
	t->to = to;
	t->from_boot = n->boot;
	t->to_boot = s->nodes[to].boot;
	t->term = raft_term(n->raft);
	t->meta = send->meta;
	/* Most transfers are quick; some take several election timeouts. */
	uint64_t span = s->cfg.snapshot_transfer_us;
	uint64_t took = sim_rand_range(s, 0, 10) == 0
				? sim_rand_range(s, span, 8 * span)
				: sim_rand_range(s, span / 10 + 1, span);
	sim_trace(s, "n%llu -> n%llu SNAPSHOT %llu term %llu (%llu us)",
		  (unsigned long long)n->id, (unsigned long long)to,
		  (unsigned long long)t->meta.index,
		  (unsigned long long)t->term, (unsigned long long)took);
	heap_push(s, (struct sim_event){.at_us = s->now_us + took,
					 .type = EV_SNAPSHOT,
					 .node = to,
					 .boot = t->to_boot,
					 .transfer = t});
	return 0;
}

static int take_snapshot(struct sim *s, struct sim_node *n, uint64_t tail)
{
	uint64_t index = n->applied;
	if (index == 0 || index <= n->disk_snap.meta.index)
		return -EINVAL;
	struct raft_snapshot_meta meta;
	int rc = raft_snapshot_taken(n->raft, index, tail, &meta);
	if (rc != 0)
		return rc;
	/* The snapshot is durable before the log is compacted. */
	n->disk_snap.meta = meta;
	n->disk_snap.chain = n->applied_chain;
	uint64_t first = raft_first_index(n->raft);
	sim_log_compact(&n->disk_log, first - 1);
	sim_log_compact(&n->mem_log, first - 1);
	s->stats.snapshots++;
	sim_trace(s, "n%llu snapshot at %llu (log from %llu)",
		  (unsigned long long)n->id, (unsigned long long)index,
		  (unsigned long long)first);
	return 0;
}

static int maybe_snapshot(struct sim *s, struct sim_node *n)
{
	if (s->cfg.snapshot_every == 0 ||
	    n->applied < n->disk_snap.meta.index + s->cfg.snapshot_every)
		return 0;
	/* The log store compacts only what a durable write covers: here the
	 * applied entries are durable (apply follows persistence). */
	int rc = take_snapshot(s, n, s->cfg.snapshot_tail);
	return rc == -EINVAL ? 0 : rc;
}

static int handle_update(struct sim *s, struct sim_node *n,
			 const struct raft_update *u)
{
	int rc = 0;
	struct sim_write *w = NULL;
	if (u->install_snapshot) {
		rc = install_snapshot(s, n, u->install_snapshot);
		if (rc != 0)
			return rc;
	}
	for (uint32_t i = 0; i < u->n_entries; i++) {
		const struct raft_entry *e = &u->entries[i];
		if (e->type == RAFT_ENTRY_CONFIG && raft_is_leader(n->raft) &&
		    e->term == raft_term(n->raft)) {
			rc = sim_check_conf_append(s, n, e->index, e);
			if (rc != 0)
				return rc;
		}
	}
	if (u->hard_state_changed || u->truncate_from || u->n_entries ||
	    u->install_snapshot) {
		w = calloc(1, sizeof(*w));
		if (!w)
			abort();
		w->seq = ++n->write_seq;
		w->hs_changed = u->hard_state_changed;
		w->hs = u->hard_state;
		if (u->install_snapshot) {
			w->install = true;
			w->snap.meta = *u->install_snapshot;
			w->snap.chain =
				s->committed[u->install_snapshot->index - 1].chain;
		}
		w->truncate_from = u->truncate_from;
		w->n_entries = u->n_entries;
		w->entries = calloc(u->n_entries ? u->n_entries : 1,
				    sizeof(*w->entries));
		if (!w->entries)
			abort();
		if (u->n_entries)
			w->first_index = u->entries[0].index;
		for (uint32_t i = 0; i < u->n_entries; i++) {
			const struct raft_entry *e = &u->entries[i];
			w->entries[i].term = e->term;
			w->entries[i].type = e->type;
			w->entries[i].size = e->size;
			if (e->size) {
				w->entries[i].data = malloc(e->size);
				if (!w->entries[i].data)
					abort();
				memcpy(w->entries[i].data, e->data, e->size);
			}
		}
		/* The node's own view of its log changes at once. */
		uint64_t before = u->install_snapshot
					  ? u->install_snapshot->index
				  : u->truncate_from ? u->truncate_from - 1
						     : sim_log_last(&n->mem_log);
		if (u->n_entries && u->entries[0].index != before + 1) {
			write_free(w);
			return sim_fail(s, "node %llu: update appends at %llu "
					"after %llu",
					(unsigned long long)n->id,
					(unsigned long long)u->entries[0].index,
					(unsigned long long)before);
		}
		apply_write_to_log(&n->mem_log, w);
		uint64_t due = s->now_us + sim_rand_range(s, s->disk_min_us,
							  s->disk_max_us + 1);
		if (n->writes_tail && n->writes_tail->due_us > due)
			due = n->writes_tail->due_us;
		w->due_us = due;
		if (n->writes_tail)
			n->writes_tail->next = w;
		else
			n->writes = w;
		n->writes_tail = w;
		heap_push(s, (struct sim_event){.at_us = due,
						 .type = EV_SYNC,
						 .node = n->id,
						 .boot = n->boot});
	}
	for (uint32_t i = 0; i < u->n_messages && rc == 0; i++)
		rc = send_msg(s, n, msg_copy(s, n, &u->messages[i]));
	for (uint32_t i = 0; i < u->n_messages_after_persist && rc == 0; i++) {
		struct sim_msg *sm = msg_copy(s, n, &u->messages_after_persist[i]);
		if (n->writes_tail) {
			/* Released when this and every earlier write is
			 * durable. */
			struct sim_write *t = n->writes_tail;
			t->after = realloc(t->after,
					   (t->n_after + 1) * sizeof(*t->after));
			if (!t->after)
				abort();
			t->after[t->n_after++] = sm;
		} else {
			rc = send_msg(s, n, sm);
		}
	}
	if (rc == 0 && u->apply_index)
		rc = apply_entries(s, n, u->apply_index);
	for (uint32_t i = 0; i < u->n_read_states && rc == 0; i++)
		rc = sim_read_answer(s, n, u->read_states[i].context,
				     u->read_states[i].index);
	for (uint32_t i = 0; i < u->n_snapshot_sends && rc == 0; i++)
		rc = start_transfer(s, n, &u->snapshot_sends[i]);
	return rc;
}

static int process(struct sim *s, struct sim_node *n)
{
	int rc = 0;
	while (rc == 0 && n->up && raft_has_update(n->raft)) {
		struct raft_update u;
		rc = raft_update_get(n->raft, &u);
		if (rc != 0)
			return sim_fail(s, "node %llu: update_get: %d",
					(unsigned long long)n->id, rc);
		rc = handle_update(s, n, &u);
		raft_update_done(n->raft, &u);
		if (rc == 0)
			rc = maybe_snapshot(s, n);
	}
	if (rc == 0 && n->up)
		rc = sim_check_node(s, n);
	return rc;
}

static int on_sync(struct sim *s, struct sim_node *n)
{
	struct sim_write *w = n->writes;
	if (!w)
		return sim_fail(s, "node %llu: sync without a write",
				(unsigned long long)n->id);
	if (w->due_us > s->now_us)
		return 0; /* a later write's event; the FIFO head is not due */
	n->writes = w->next;
	if (!n->writes)
		n->writes_tail = NULL;
	if (w->hs_changed)
		n->disk_hs = w->hs;
	apply_write_to_log(&n->disk_log, w);
	bool w_install = w->install;
	struct sim_snapshot w_snap = w->snap;
	int rc = 0;
	for (uint32_t i = 0; i < w->n_after && rc == 0; i++) {
		rc = send_msg(s, n, w->after[i]);
		w->after[i] = NULL;
	}
	write_free(w);
	if (rc != 0)
		return rc;
	if (w_install)
		n->disk_snap = w_snap;
	uint64_t last = sim_log_last(&n->disk_log), term, chain;
	if (last > 0 && sim_log_chain_at(&n->disk_log, last, &chain, &term)) {
		rc = raft_persisted(n->raft, last, term);
		if (rc != 0)
			return sim_fail(s, "node %llu: persisted: %d",
					(unsigned long long)n->id, rc);
	}
	return process(s, n);
}

/* ---- nodes ---- */

static void schedule_tick(struct sim *s, struct sim_node *n, uint64_t at)
{
	n->next_tick_us = at;
	heap_push(s, (struct sim_event){.at_us = at,
					 .type = EV_TICK,
					 .node = n->id,
					 .boot = n->boot});
}

static int make_raft(struct sim *s, struct sim_node *n)
{
	struct raft_options o;
	raft_options_default(&o, n->id);
	o.election_ticks = s->cfg.election_ticks;
	o.heartbeat_ticks = s->cfg.heartbeat_ticks;
	o.pre_vote = s->cfg.pre_vote;
	o.check_quorum = s->cfg.check_quorum;
	o.auto_promote = !s->cfg.manual_promote;
	o.test_bugs = s->cfg.test_bugs;
	o.seed = s->cfg.seed * 1000003u + n->id * 7919u + n->boot;
	if (s->cfg.max_batch_bytes)
		o.max_batch_bytes = s->cfg.max_batch_bytes;
	if (s->cfg.max_inflight_msgs)
		o.max_inflight_msgs = s->cfg.max_inflight_msgs;
	o.max_inflight_bytes = 64 * 1024;
	o.max_uncommitted_bytes = 256 * 1024;
	return raft_create(&o, &n->raft);
}

void sim_config_default(struct sim_config *c, uint32_t nodes, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->nodes = nodes;
	c->seed = seed;
	c->election_ticks = 10;
	c->heartbeat_ticks = 1;
	c->pre_vote = true;
	c->check_quorum = true;
	/* SIM_TRACE_LINES widens the trace a failure prints. */
	const char *lines = getenv("SIM_TRACE_LINES");
	c->trace_lines = lines ? (uint32_t)strtoul(lines, NULL, 10) : 400;
	if (c->trace_lines == 0)
		c->trace_lines = 1;
	c->max_batch_bytes = 4096;
	c->max_inflight_msgs = 8;
	c->retry_us = 50ull * SIM_TICK_US;
	c->snapshot_transfer_us = 10ull * SIM_TICK_US;
}

int sim_create(const struct sim_config *c, struct sim **out)
{
	*out = NULL;
	if (c->nodes == 0 || c->nodes > SIM_MAX_NODES)
		return -EINVAL;
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *c;
	s->rng = c->seed * 0x2545f4914f6cdd1dull + 1;
	s->net = (struct sim_net){.min_delay_us = 200, .max_delay_us = 2000};
	s->disk_min_us = 100;
	s->disk_max_us = 1500;
	if (c->trace_lines) {
		s->trace = calloc(c->trace_lines, sizeof(*s->trace));
		if (!s->trace) {
			free(s);
			return -ENOMEM;
		}
	}
	struct raft_configuration conf;
	memset(&conf, 0, sizeof(conf));
	conf.n = c->voters && c->voters < c->nodes ? c->voters : c->nodes;
	for (uint32_t i = 0; i < conf.n; i++) {
		conf.members[i].id = i + 1;
		conf.members[i].role = RAFT_VOTER;
		snprintf(conf.members[i].address, RAFT_MAX_ADDRESS,
			 "127.0.0.%u:7000", i + 1);
	}
	int rc = 0;
	for (uint64_t id = 1; id <= c->nodes && rc == 0; id++) {
		struct sim_node *n = &s->nodes[id];
		n->id = id;
		n->up = true;
		rc = sim_machine_reset(s, n);
		if (rc == 0)
			rc = make_raft(s, n);
		/* Spare nodes start empty and wait to be added. */
		if (rc == 0 && id <= conf.n)
			rc = raft_bootstrap(n->raft, &conf);
		if (rc == 0)
			rc = process(s, n);
		if (rc == 0)
			schedule_tick(s, n, sim_rand_range(s, 1, SIM_TICK_US));
	}
	if (rc != 0) {
		sim_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void node_drop_volatile(struct sim_node *n)
{
	while (n->writes) {
		struct sim_write *w = n->writes;
		n->writes = w->next;
		write_free(w);
	}
	n->writes_tail = NULL;
	raft_destroy(n->raft);
	n->raft = NULL;
	sim_log_free(&n->mem_log);
}

void sim_destroy(struct sim *s)
{
	if (!s)
		return;
	for (uint64_t id = 1; id <= s->cfg.nodes; id++) {
		struct sim_node *n = &s->nodes[id];
		node_drop_volatile(n);
		sim_machine_release(n);
		sim_log_free(&n->disk_log);
	}
	for (size_t i = 0; i < s->n_heap; i++) {
		msg_free(s->heap[i].msg);
		free(s->heap[i].transfer);
	}
	free(s->heap);
	sim_checker_release(s);
	free(s->trace);
	free(s);
}

int sim_crash(struct sim *s, uint64_t id)
{
	if (id == 0 || id > s->cfg.nodes || !s->nodes[id].up)
		return -EINVAL;
	struct sim_node *n = &s->nodes[id];
	sim_trace(s, "n%llu CRASH (%llu unsynced writes lost)",
		  (unsigned long long)id,
		  (unsigned long long)(n->writes ? n->write_seq - n->writes->seq + 1
						 : 0));
	node_drop_volatile(n);
	n->up = false;
	n->boot++;
	s->stats.crashes++;
	return 0;
}

int sim_restart(struct sim *s, uint64_t id)
{
	if (id == 0 || id > s->cfg.nodes || s->nodes[id].up)
		return -EINVAL;
	struct sim_node *n = &s->nodes[id];
	int rc = make_raft(s, n);
	if (rc != 0)
		return rc;
	rc = raft_restore_begin(n->raft, &n->disk_hs,
				n->disk_snap.meta.index ? &n->disk_snap.meta
							: NULL);
	for (uint64_t i = 0; i < n->disk_log.n && rc == 0; i++) {
		const struct sim_entry *e = &n->disk_log.e[i];
		struct raft_entry re = {
			.term = e->term,
			.index = n->disk_log.offset + 1 + i,
			.type = e->type,
			.size = e->size,
			.data = e->data,
		};
		rc = raft_restore_entry(n->raft, &re);
	}
	if (rc == 0)
		rc = raft_restore_end(n->raft);
	if (rc != 0)
		return sim_fail(s, "node %llu: restore failed: %d",
				(unsigned long long)id, rc);
	sim_log_copy(&n->mem_log, &n->disk_log);
	n->up = true;
	n->applied = 0;
	n->applied_chain = 0;
	/* The state machine is the snapshot's, then the log is applied again;
	 * clients start a new epoch (what they had outstanding has an unknown
	 * outcome). */
	rc = sim_machine_reset(s, n);
	if (rc == 0 && n->disk_snap.meta.index)
		rc = sim_machine_rebuild(s, n, n->disk_snap.meta.index);
	if (rc != 0)
		return sim_fail(s, "node %llu: state machine: %d",
				(unsigned long long)id, rc);
	n->last_state = 0;
	sim_trace(s, "n%llu RESTART term %llu vote %llu last %llu",
		  (unsigned long long)id, (unsigned long long)n->disk_hs.term,
		  (unsigned long long)n->disk_hs.vote,
		  (unsigned long long)sim_log_last(&n->disk_log));
	rc = sim_check_restart(s, n);
	if (rc != 0)
		return rc;
	schedule_tick(s, n, s->now_us + sim_rand_range(s, 1, SIM_TICK_US));
	return process(s, n);
}

bool sim_is_up(const struct sim *s, uint64_t id)
{
	return id >= 1 && id <= s->cfg.nodes && s->nodes[id].up;
}

struct raft *sim_raft(struct sim *s, uint64_t id)
{
	return sim_is_up(s, id) ? s->nodes[id].raft : NULL;
}

uint64_t sim_applied(const struct sim *s, uint64_t id)
{
	return s->nodes[id].applied;
}

bool sim_is_paused(const struct sim *s, uint64_t id)
{
	return id >= 1 && id <= s->cfg.nodes && s->nodes[id].paused;
}

void sim_pause(struct sim *s, uint64_t id, bool paused)
{
	if (id >= 1 && id <= s->cfg.nodes)
		s->nodes[id].paused = paused;
}

/* ---- network and disk settings ---- */

void sim_set_net(struct sim *s, const struct sim_net *net)
{
	s->net = *net;
	if (s->net.max_delay_us < s->net.min_delay_us)
		s->net.max_delay_us = s->net.min_delay_us;
}

void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut)
{
	if (from >= 1 && from <= s->cfg.nodes && to >= 1 && to <= s->cfg.nodes)
		s->cut[from][to] = cut;
}

void sim_partition(struct sim *s, uint32_t group)
{
	for (uint64_t a = 1; a <= s->cfg.nodes; a++)
		for (uint64_t b = 1; b <= s->cfg.nodes; b++) {
			bool ina = group & (1u << (a - 1));
			bool inb = group & (1u << (b - 1));
			s->cut[a][b] = ina != inb;
		}
	s->stats.partitions++;
	sim_trace(s, "PARTITION group 0x%x", group);
}

void sim_heal(struct sim *s)
{
	memset(s->cut, 0, sizeof(s->cut));
	sim_trace(s, "HEAL");
}

void sim_set_disk(struct sim *s, uint32_t min_us, uint32_t max_us)
{
	s->disk_min_us = min_us;
	s->disk_max_us = max_us < min_us ? min_us : max_us;
}

/* ---- clients ---- */

int sim_propose(struct sim *s, uint64_t id, uint64_t *cmd)
{
	if (!sim_is_up(s, id))
		return -EINVAL;
	struct sim_node *n = &s->nodes[id];
	uint64_t number = 0;
	int rc = sim_client_propose(s, n, &number);
	s->stats.proposals++;
	sim_trace(s, "n%llu propose cmd %llu -> %d",
		  (unsigned long long)id, (unsigned long long)number, rc);
	if (cmd)
		*cmd = number;
	if (rc != 0)
		return rc;
	return process(s, n);
}

int sim_read(struct sim *s, uint64_t id)
{
	if (!sim_is_up(s, id))
		return -EINVAL;
	struct sim_node *n = &s->nodes[id];
	int rc = sim_read_start(s, n);
	if (rc != 0)
		return rc;
	return process(s, n);
}

int sim_snapshot(struct sim *s, uint64_t id, uint64_t tail)
{
	if (!sim_is_up(s, id))
		return -EINVAL;
	struct sim_node *n = &s->nodes[id];
	int rc = take_snapshot(s, n, tail);
	if (rc != 0)
		return rc;
	return process(s, n);
}

int sim_change(struct sim *s, enum raft_change change, uint64_t id)
{
	uint64_t leader = sim_leader(s);
	if (!leader)
		return -EPERM;
	struct sim_node *n = &s->nodes[leader];
	char address[RAFT_MAX_ADDRESS];
	snprintf(address, sizeof(address), "127.0.0.%llu:7000",
		 (unsigned long long)id);
	int rc = raft_change_membership(n->raft, change, id, address, NULL);
	sim_trace(s, "n%llu membership %s %llu -> %d",
		  (unsigned long long)leader,
		  change == RAFT_ADD_LEARNER ? "add"
		  : change == RAFT_PROMOTE   ? "promote"
					     : "remove",
		  (unsigned long long)id, rc);
	if (rc != 0)
		return rc;
	return process(s, n);
}

int sim_transfer(struct sim *s, uint64_t target)
{
	uint64_t id = sim_leader(s);
	if (!id)
		return -EPERM;
	struct sim_node *n = &s->nodes[id];
	int rc = raft_transfer_leadership(n->raft, target);
	sim_trace(s, "n%llu transfer leadership to %llu -> %d",
		  (unsigned long long)id, (unsigned long long)target, rc);
	if (rc != 0)
		return rc;
	s->stats.transfers++;
	return process(s, n);
}

uint64_t sim_cmd_applied_index(const struct sim *s, uint64_t cmd)
{
	return cmd < s->n_cmds ? s->cmd_index[cmd] : 0;
}

/* ---- running ---- */

/* A snapshot transfer ends: delivered (the follower gets the complete
 * snapshot as a RAFT_MSG_SNAPSHOT) or cut off (the leader hears it failed). */
static int on_transfer(struct sim *s, struct sim_transfer *t)
{
	struct sim_node *leader = &s->nodes[t->from];
	struct sim_node *to = &s->nodes[t->to];
	bool leader_same = leader->up && leader->boot == t->from_boot;
	bool ok = to->up && to->boot == t->to_boot && !to->paused &&
		  !s->cut[t->from][t->to];
	int rc = 0;
	if (ok) {
		s->stats.snapshots_sent++;
		struct raft_message m = {
			.type = RAFT_MSG_SNAPSHOT,
			.from = t->from,
			.to = t->to,
			.term = t->term,
			.snapshot = &t->meta,
		};
		sim_trace(s, "n%llu <- n%llu snapshot %llu complete",
			  (unsigned long long)t->to, (unsigned long long)t->from,
			  (unsigned long long)t->meta.index);
		rc = raft_step(to->raft, &m);
		if (rc == -EPERM)
			rc = 0; /* from a removed id */
		else if (rc != 0)
			return sim_fail(s, "node %llu rejects snapshot: %d",
					(unsigned long long)t->to, rc);
		rc = process(s, to);
	} else {
		s->stats.snapshots_failed++;
		sim_trace(s, "n%llu -> n%llu snapshot %llu cut off",
			  (unsigned long long)t->from, (unsigned long long)t->to,
			  (unsigned long long)t->meta.index);
	}
	if (rc == 0 && leader_same) {
		rc = raft_snapshot_sent(leader->raft, t->to, t->meta.index, ok);
		if (rc != 0)
			return sim_fail(s, "node %llu: snapshot_sent: %d",
					(unsigned long long)t->from, rc);
		rc = process(s, leader);
	}
	return rc;
}

static int on_event(struct sim *s, struct sim_event *ev)
{
	struct sim_node *n = &s->nodes[ev->node];
	if (ev->type == EV_SNAPSHOT)
		return on_transfer(s, ev->transfer);
	if (!n->up || ev->boot != n->boot) {
		if (ev->type == EV_DELIVER)
			s->stats.messages_dropped++;
		return 0;
	}
	switch (ev->type) {
	case EV_TICK: {
		if (ev->at_us != n->next_tick_us)
			return 0;
		int rc = n->paused ? 0 : raft_tick(n->raft);
		if (rc != 0)
			return sim_fail(s, "node %llu: tick: %d",
					(unsigned long long)n->id, rc);
		if (!n->paused && (rc = sim_client_retry(s, n)) != 0)
			return sim_fail(s, "node %llu: retry: %d",
					(unsigned long long)n->id, rc);
		schedule_tick(s, n, s->now_us + SIM_TICK_US);
		return n->paused ? 0 : process(s, n);
	}
	case EV_DELIVER: {
		/* A link cut while the message was in flight loses it too. */
		if (n->paused || s->cut[ev->msg->m.from][ev->node]) {
			s->stats.messages_dropped++;
			return 0;
		}
		int rc = raft_step(n->raft, &ev->msg->m);
		if (rc == -EPERM) {
			s->stats.refused++; /* from a removed id */
			return 0;
		}
		if (rc != 0)
			return sim_fail(s, "node %llu rejects %s from %llu: %d",
					(unsigned long long)n->id,
					raft_message_type_name(ev->msg->m.type),
					(unsigned long long)ev->msg->m.from,
					rc);
		return process(s, n);
	}
	case EV_SYNC:
		return on_sync(s, n);
	default:
		return sim_fail(s, "unknown event %u", ev->type);
	}
}

int sim_step(struct sim *s)
{
	if (s->failed)
		return -EFAULT;
	if (s->n_heap == 0)
		return -ENOENT;
	struct sim_event ev = heap_pop(s);
	if (ev.at_us > s->now_us)
		s->now_us = ev.at_us;
	s->stats.events++;
	int rc = on_event(s, &ev);
	msg_free(ev.msg);
	free(ev.transfer);
	return s->failed ? -EFAULT : rc;
}

int sim_run_for(struct sim *s, uint64_t us)
{
	uint64_t end = s->now_us + us;
	while (s->n_heap > 0 && s->heap[0].at_us <= end) {
		int rc = sim_step(s);
		if (rc != 0)
			return rc;
	}
	if (s->now_us < end)
		s->now_us = end;
	return 0;
}

int sim_run_until(struct sim *s, bool (*pred)(struct sim *s, void *arg),
		  void *arg, uint64_t max_us)
{
	uint64_t end = s->now_us + max_us;
	while (!pred(s, arg)) {
		if (s->n_heap == 0 || s->heap[0].at_us > end)
			return -ETIMEDOUT;
		int rc = sim_step(s);
		if (rc != 0)
			return rc;
	}
	return 0;
}

uint64_t sim_now(const struct sim *s)
{
	return s->now_us;
}

uint64_t sim_events(const struct sim *s)
{
	return s->stats.events;
}

uint64_t sim_leader(const struct sim *s)
{
	uint64_t best = 0, best_term = 0;
	for (uint64_t id = 1; id <= s->cfg.nodes; id++) {
		const struct sim_node *n = &s->nodes[id];
		if (!n->up || !raft_is_leader(n->raft))
			continue;
		if (raft_term(n->raft) >= best_term) {
			best = id;
			best_term = raft_term(n->raft);
		}
	}
	return best;
}

bool sim_is_member(const struct sim *s, uint64_t id)
{
	uint64_t leader = sim_leader(s);
	for (uint64_t k = 1; k <= s->cfg.nodes; k++) {
		const struct sim_node *n = &s->nodes[k];
		if (!n->up || (leader && k != leader))
			continue;
		const struct raft_member *m =
			raft_configuration_get(raft_configuration(n->raft), id);
		if (m && m->role != RAFT_REMOVED)
			return true;
		if (leader)
			return false;
	}
	return false;
}

static const struct raft_configuration *leader_conf(const struct sim *s)
{
	uint64_t leader = sim_leader(s);
	return leader ? raft_configuration(s->nodes[leader].raft) : NULL;
}

/* The role of id in the leader's configuration; 0 when absent or when
 * there is no leader. */
static uint8_t leader_role(const struct sim *s, uint64_t id)
{
	const struct raft_configuration *c = leader_conf(s);
	const struct raft_member *m = c ? raft_configuration_get(c, id) : NULL;
	return m ? m->role : 0;
}

/* Members of the leader's configuration with a role in the mask (bit r). */
static uint32_t leader_count(const struct sim *s, uint32_t roles)
{
	const struct raft_configuration *c = leader_conf(s);
	uint32_t n = 0;
	for (uint32_t i = 0; c && i < c->n; i++)
		n += (roles >> c->members[i].role) & 1u;
	return n;
}

bool sim_was_member(const struct sim *s, uint64_t id)
{
	return leader_role(s, id) != 0;
}

bool sim_is_voter(const struct sim *s, uint64_t id)
{
	return leader_role(s, id) == RAFT_VOTER;
}

bool sim_is_learner(const struct sim *s, uint64_t id)
{
	return leader_role(s, id) == RAFT_LEARNER;
}

uint32_t sim_voter_count(const struct sim *s)
{
	return leader_count(s, 1u << RAFT_VOTER);
}

uint32_t sim_member_count(const struct sim *s)
{
	return leader_count(s, (1u << RAFT_VOTER) | (1u << RAFT_LEARNER));
}

bool sim_converged(const struct sim *s, uint64_t min_index)
{
	uint64_t applied = 0;
	bool first = true;
	for (uint64_t id = 1; id <= s->cfg.nodes; id++) {
		const struct sim_node *n = &s->nodes[id];
		if (!n->up || !sim_is_member(s, id))
			continue;
		if (first) {
			applied = n->applied;
			first = false;
		} else if (n->applied != applied) {
			return false;
		}
	}
	return !first && applied >= min_index;
}

const char *sim_violation(const struct sim *s)
{
	return s->failed ? s->violation : NULL;
}

void sim_stats_get(const struct sim *s, struct sim_stats *st)
{
	*st = s->stats;
	st->commands_applied = s->n_committed;
}
