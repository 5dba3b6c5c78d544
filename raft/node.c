/*
 * The node's lifecycle (create, bootstrap, restore, destroy), the events that
 * are not messages (tick, propose, persisted), membership bookkeeping and the
 * queries.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

void raft_options_default(struct raft_options *opts, uint64_t id)
{
	memset(opts, 0, sizeof(*opts));
	opts->id = id;
	opts->election_ticks = 10;
	opts->heartbeat_ticks = 1;
	opts->max_inflight_msgs = 64;
	opts->max_inflight_bytes = 64u * 1024 * 1024;
	opts->max_batch_bytes = 1024u * 1024;
	opts->max_uncommitted_bytes = 256u * 1024 * 1024;
	opts->auto_promote = true;
	opts->pre_vote = true;
	opts->check_quorum = true;
	opts->seed = id;
}

int raft_create(const struct raft_options *opts, struct raft **out)
{
	*out = NULL;
	if (!opts || opts->id == 0 || opts->election_ticks < 2 ||
	    opts->heartbeat_ticks == 0 ||
	    opts->heartbeat_ticks >= opts->election_ticks ||
	    opts->max_inflight_msgs == 0 || opts->max_batch_bytes == 0 ||
	    opts->max_batch_bytes > RAFT_MAX_BATCH_BYTES)
		return -EINVAL;
	struct raft tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.opts = *opts;
	struct raft *r = raft_mem_alloc(&tmp, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = tmp;
	r->id = opts->id;
	r->state = RAFT_FOLLOWER;
	r->passive = opts->passive;
	raft_log_init(&r->log);
	raft_random_seed(&r->rng, opts->seed ^ (opts->id * 0x9e3779b97f4a7c15ull));
	raft_reset_election_timer(r);
	*out = r;
	return 0;
}

void raft_destroy(struct raft *r)
{
	if (!r)
		return;
	struct raft_update u;
	raft_update_done(r, &u); /* frees the arena */
	for (uint32_t i = 0; i < r->n_peers; i++)
		raft_progress_release(r, &r->peers[i]);
	raft_mem_free(r, r->peers);
	raft_log_release(r, &r->log);
	raft_mem_free(r, r->pending);
	raft_mem_free(r, r->out);
	raft_mem_free(r, r->out_after);
	raft_mem_free(r, r->reads);
	raft_mem_free(r, r->read_reqs);
	raft_mem_free(r, r->snap_sends);
	raft_mem_free(r, r->arena);
	raft_mem_free(r, r);
}

void raft_set_term(struct raft *r, uint64_t term, uint64_t leader)
{
	r->term = term;
	r->vote = 0;
	r->leader = leader;
	r->hs_dirty = true;
}

void raft_reset_election_timer(struct raft *r)
{
	r->election_elapsed = 0;
	r->randomized_timeout = (uint32_t)raft_random_range(
		&r->rng, r->opts.election_ticks, 2u * r->opts.election_ticks);
}

/* ---- membership ---- */

struct progress *raft_peer(struct raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == id)
			return &r->peers[i];
	return NULL;
}

bool raft_is_voter(const struct raft *r, uint64_t id)
{
	const struct raft_member *m =
		raft_configuration_get(raft_log_conf(&r->log, NULL), id);
	return m && m->role == RAFT_VOTER;
}

size_t raft_voter_count(const struct raft *r)
{
	const struct raft_configuration *c = raft_log_conf(&r->log, NULL);
	size_t n = 0;
	for (uint32_t i = 0; i < c->n; i++)
		if (c->members[i].role == RAFT_VOTER)
			n++;
	return n;
}

int raft_peers_rebuild(struct raft *r)
{
	const struct raft_configuration *c = raft_log_conf(&r->log, NULL);
	struct progress *peers = NULL;
	uint32_t n = 0;
	if (c->n > 0) {
		peers = raft_mem_alloc(r, c->n * sizeof(*peers));
		if (!peers)
			return -ENOMEM;
	}
	uint64_t next = raft_log_last_index(&r->log) + 1;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct raft_member *m = &c->members[i];
		if (m->id == r->id || m->role == RAFT_REMOVED)
			continue;
		struct progress *old = raft_peer(r, m->id);
		if (old) {
			peers[n] = *old;
			old->ring = NULL; /* moved */
			peers[n].voter = m->role == RAFT_VOTER;
		} else {
			int rc = raft_progress_init(r, &peers[n], m->id,
						    m->role == RAFT_VOTER, next);
			if (rc != 0) {
				for (uint32_t k = 0; k < n; k++)
					raft_progress_release(r, &peers[k]);
				raft_mem_free(r, peers);
				return rc;
			}
			peers[n].recent_active = true;
			peers[n].need_append = r->state == RAFT_LEADER;
			peers[n].catchup_target = next - 1;
			peers[n].catchup_start = r->ticks;
		}
		n++;
	}
	for (uint32_t i = 0; i < r->n_peers; i++)
		raft_progress_release(r, &r->peers[i]);
	raft_mem_free(r, r->peers);
	r->peers = peers;
	r->n_peers = n;
	return 0;
}

/* ---- bootstrap and restore ---- */

int raft_bootstrap(struct raft *r, const struct raft_configuration *conf)
{
	if (r->has_state || r->term != 0 || raft_log_last_index(&r->log) != 0)
		return -EEXIST;
	if (r->update_out || !raft_configuration_is_valid(conf))
		return -EINVAL;
	uint8_t buf[2 + RAFT_MAX_MEMBERS * (8 + 1 + RAFT_MAX_ADDRESS)];
	uint32_t size = (uint32_t)raft_configuration_encoded_size(conf->n);
	raft_configuration_encode(conf, buf);
	int rc = raft_log_append(r, &r->log, 1, RAFT_ENTRY_CONFIG, size, buf);
	if (rc != 0)
		return rc;
	struct raft_entry e = {
		.term = 1,
		.index = 1,
		.type = RAFT_ENTRY_CONFIG,
		.size = size,
		.data = raft_log_conf_payload(&r->log, 1),
	};
	rc = raft_pending_add(r, &e);
	if (rc == 0)
		rc = raft_peers_rebuild(r);
	if (rc != 0) {
		r->n_pending = 0;
		raft_log_truncate(r, &r->log, 1);
		return rc;
	}
	raft_set_term(r, 1, 0);
	r->has_state = true;
	return 0;
}

int raft_restore_begin(struct raft *r, const struct raft_hard_state *hs,
		       const struct raft_snapshot_meta *snap)
{
	if (r->has_state || r->restoring || !hs)
		return -EINVAL;
	if (hs->vote == r->id && hs->term == 0)
		return -EINVAL;
	if (snap) {
		if (snap->term > hs->term || (snap->index == 0) != (snap->term == 0) ||
		    snap->conf_index > snap->index || !raft_configuration_is_valid(&snap->conf))
			return -EINVAL;
		r->log.compact_index = snap->index;
		r->log.compact_term = snap->term;
		r->log.snapshot = *snap;
	}
	r->term = hs->term;
	r->vote = hs->vote;
	r->restoring = true;
	return 0;
}

int raft_restore_entry(struct raft *r, const struct raft_entry *e)
{
	if (!r->restoring || !e)
		return -EINVAL;
	/* Entries the snapshot covers (a kept tail) are not needed again:
	 * contiguous up to it, they are skipped. */
	if (e->index <= r->log.compact_index) {
		if (r->restore_skipped != 0 && e->index != r->restore_skipped + 1)
			return -EINVAL;
		r->restore_skipped = e->index;
		return 0;
	}
	if (e->index != raft_log_last_index(&r->log) + 1 || e->term == 0 ||
	    e->term < raft_log_last_term(&r->log) || e->term > r->term ||
	    e->size > RAFT_MAX_ENTRY_BYTES)
		return -EINVAL;
	if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP &&
	    e->type != RAFT_ENTRY_CONFIG)
		return -EINVAL;
	return raft_log_append(r, &r->log, e->term, e->type, e->size, e->data);
}

int raft_restore_end(struct raft *r)
{
	if (!r->restoring)
		return -EINVAL;
	int rc = raft_peers_rebuild(r);
	if (rc != 0)
		return rc;
	r->restoring = false;
	r->has_state = r->term > 0 || raft_log_last_index(&r->log) > 0;
	r->persisted = raft_log_last_index(&r->log);
	/* Only what the snapshot covers is known to be committed; the rest
	 * is learned from the next leader. */
	r->commit = r->log.compact_index;
	r->applied_hint = r->commit;
	r->state = RAFT_FOLLOWER;
	r->leader = 0;
	raft_reset_election_timer(r);
	return 0;
}

/* ---- events ---- */

int raft_tick(struct raft *r)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	if (r->state == RAFT_LEADER)
		return raft_tick_leader(r);
	return raft_tick_election(r);
}

int raft_leader_append(struct raft *r, uint8_t type, const void *const *data,
		       const uint32_t *sizes, uint32_t n)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++)
		total += sizes[i];
	/* Always admit something when nothing is uncommitted, so a maximum
	 * entry can never be refused forever. */
	if (type == RAFT_ENTRY_NORMAL && r->uncommitted_bytes > 0 &&
	    r->uncommitted_bytes + total > r->opts.max_uncommitted_bytes)
		return -EBUSY;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t index = raft_log_last_index(&r->log) + 1;
		int rc = raft_log_append(r, &r->log, r->term, type, sizes[i],
					 data[i]);
		if (rc != 0)
			return rc;
		struct raft_entry e = {
			.term = r->term,
			.index = index,
			.type = type,
			.size = sizes[i],
			.data = type == RAFT_ENTRY_CONFIG
					? raft_log_conf_payload(&r->log, index)
					: data[i],
		};
		rc = raft_pending_add(r, &e);
		if (rc != 0) {
			raft_log_truncate(r, &r->log, index);
			return rc;
		}
		r->uncommitted_bytes += sizes[i];
		if (type == RAFT_ENTRY_CONFIG) {
			rc = raft_peers_rebuild(r);
			if (rc != 0)
				return rc;
		}
	}
	/* A single voter commits on its own persistence. */
	raft_maybe_commit(r);
	return 0;
}

int raft_propose(struct raft *r, const void *const *data,
		 const uint32_t *sizes, uint32_t n, uint64_t *index,
		 uint64_t *term)
{
	if (r->update_out || r->restoring || n == 0 || !data || !sizes ||
	    n > RAFT_MAX_BATCH_ENTRIES)
		return -EINVAL;
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (sizes[i] > RAFT_MAX_ENTRY_BYTES || (sizes[i] && !data[i]))
			return -EINVAL;
		total += sizes[i];
	}
	if (r->state == RAFT_LEADER) {
		if (r->transfer_target)
			return -EPERM; /* handing leadership over */
		uint64_t first = raft_log_last_index(&r->log) + 1;
		int rc = raft_leader_append(r, RAFT_ENTRY_NORMAL, data, sizes,
					    n);
		if (rc != 0)
			return rc;
		if (index)
			*index = first;
		if (term)
			*term = r->term;
		return 0;
	}
	if (r->leader == 0 || r->state != RAFT_FOLLOWER)
		return -EPERM;
	if (total > RAFT_MAX_BATCH_BYTES)
		return -EINVAL;
	struct raft_entry *entries = raft_arena_alloc(r, n * sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		entries[i] = (struct raft_entry){
			.type = RAFT_ENTRY_NORMAL,
			.size = sizes[i],
			.data = data[i],
		};
	}
	struct raft_message m = {
		.type = RAFT_MSG_PROPOSE,
		.from = r->id,
		.to = r->leader,
		.term = 0, /* term-free: see step.c */
		.n_entries = n,
		.entries = entries,
	};
	if (index)
		*index = 0;
	if (term)
		*term = 0;
	return raft_send(r, &m);
}

int raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	uint64_t handed_last = raft_log_last_index(&r->log) - r->n_pending;
	if (index > handed_last || raft_log_term(&r->log, index) != term)
		return 0; /* stale: the entry was replaced since */
	if (index > r->persisted)
		r->persisted = index;
	if (r->state == RAFT_LEADER)
		raft_maybe_commit(r);
	return 0;
}

/* ---- queries ---- */

void raft_status_get(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->state = r->state;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->first_index = raft_log_first_index(&r->log);
	st->last_index = raft_log_last_index(&r->log);
	st->last_term = raft_log_last_term(&r->log);
	st->commit = r->commit;
	st->persisted = r->persisted;
	st->applied_hint = r->applied_hint;
}

bool raft_is_leader(const struct raft *r)
{
	return r->state == RAFT_LEADER;
}

uint64_t raft_leader(const struct raft *r)
{
	return r->leader;
}

uint64_t raft_term(const struct raft *r)
{
	return r->term;
}

uint64_t raft_commit_index(const struct raft *r)
{
	return r->commit;
}

uint64_t raft_last_index(const struct raft *r)
{
	return raft_log_last_index(&r->log);
}

uint64_t raft_first_index(const struct raft *r)
{
	return raft_log_first_index(&r->log);
}

int raft_snapshot_taken(struct raft *r, uint64_t index, uint64_t keep_tail,
			struct raft_snapshot_meta *meta)
{
	if (r->update_out || r->restoring || !meta)
		return -EINVAL;
	if (index <= r->log.snapshot.index || index > r->applied_hint ||
	    index < r->log.compact_index || index > raft_log_last_index(&r->log))
		return -EINVAL;
	struct raft_snapshot_meta m;
	memset(&m, 0, sizeof(m));
	m.index = index;
	m.term = raft_log_term(&r->log, index);
	m.conf = *raft_log_conf_at(&r->log, index, &m.conf_index);
	r->log.snapshot = m;
	if (index > keep_tail)
		raft_log_compact(r, &r->log, index - keep_tail);
	*meta = m;
	return 0;
}

int raft_snapshot_request(struct raft *r, uint64_t peer)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	if (r->state != RAFT_LEADER)
		return -EPERM;
	struct progress *pr = raft_peer(r, peer);
	if (!pr || peer == r->id)
		return -ENOENT;
	if (pr->state == RAFT_PROGRESS_SNAPSHOT)
		return 0;
	int rc = raft_snapshot_send_add(r, peer);
	if (rc != 0)
		return rc;
	raft_progress_become_snapshot(pr, r->log.snapshot.index);
	return 0;
}

int raft_snapshot_sent(struct raft *r, uint64_t peer, uint64_t index, bool ok)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	struct progress *pr = raft_peer(r, peer);
	if (r->state != RAFT_LEADER || !pr ||
	    pr->state != RAFT_PROGRESS_SNAPSHOT || pr->pending_snapshot != index)
		return 0; /* stale */
	uint64_t next = ok ? index + 1 : pr->match + 1;
	raft_progress_become_probe(pr);
	/* Ok: the follower installs it and answers; probe right after it.
	 * Failed: probe again, which asks for a snapshot again. */
	pr->next = next > pr->match ? next : pr->match + 1;
	pr->probe_sent = !ok; /* a failed one is retried at the heartbeat */
	pr->need_append = ok;
	return 0;
}

uint64_t raft_term_at(const struct raft *r, uint64_t index)
{
	return raft_log_term(&r->log, index);
}

const struct raft_configuration *raft_configuration(const struct raft *r)
{
	return raft_log_conf(&r->log, NULL);
}

uint32_t raft_progress_get(const struct raft *r, struct raft_progress_info *out,
			   uint32_t max)
{
	if (r->state != RAFT_LEADER)
		return 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->n_peers && n < max; i++, n++) {
		const struct progress *pr = &r->peers[i];
		out[n] = (struct raft_progress_info){
			.id = pr->id,
			.state = pr->state,
			.match = pr->match,
			.next = pr->next,
			.inflight_msgs = pr->ring_count,
			.recent_active = pr->recent_active,
		};
	}
	return n;
}

const char *raft_message_type_name(uint8_t type)
{
	static const char *const names[] = {
		"?",         "append",        "append_resp", "vote",
		"vote_resp", "prevote",       "prevote_resp", "heartbeat",
		"heartbeat_resp", "timeout_now", "propose", "read_index",
		"read_index_resp", "snapshot",
	};
	return type <= RAFT_MSG_TYPE_MAX ? names[type] : "?";
}

const char *raft_state_name(uint8_t state)
{
	switch (state) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	case RAFT_PRECANDIDATE:
		return "precandidate";
	default:
		return "?";
	}
}

const struct raft_configuration *
raft_configuration_at(const struct raft *r, uint64_t index,
		      uint64_t *conf_index)
{
	/* Below the snapshot the log no longer knows the configuration
	 * entries (raft_log_conf_at falls back to the snapshot's). */
	if (index < r->log.snapshot.index || index < r->log.compact_index ||
	    index > raft_log_last_index(&r->log))
		return NULL;
	const struct raft_configuration *c =
		raft_log_conf_at(&r->log, index, conf_index);
	return c->n > 0 ? c : NULL;
}
