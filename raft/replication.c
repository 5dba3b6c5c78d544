/*
 * Log replication (Raft paper §5.3, thesis §3.5 and §10.2): AppendEntries
 * with batching and pipelining, the consistency check with fast
 * backtracking, commit by counting replicas of current-term entries (§5.4.2,
 * Figure 8), commit propagation by heartbeat, and forwarded proposals.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Send one AppendEntries to pr from pr->next, as much as the batch limits
 * allow. *sent tells whether a message went out. */
static int send_append(struct raft *r, struct progress *pr, bool allow_empty,
		       bool *sent)
{
	*sent = false;
	if (pr->state == RAFT_PROGRESS_SNAPSHOT)
		return 0;
	if (pr->state == RAFT_PROGRESS_PROBE && pr->probe_sent)
		return 0;
	if (pr->state == RAFT_PROGRESS_REPLICATE &&
	    raft_progress_inflight_full(r, pr))
		return 0;

	uint64_t last = raft_log_last_index(&r->log);
	uint64_t prev = pr->next - 1;
	if (prev < r->log.compact_index) {
		/* Its next entry was compacted: it needs the snapshot. The
		 * caller streams it and reports (raft_snapshot_sent). */
		int rc = raft_snapshot_send_add(r, pr->id);
		if (rc != 0)
			return rc;
		raft_progress_become_snapshot(pr, r->log.snapshot.index);
		*sent = true;
		return 0;
	}

	uint32_t n = 0;
	uint64_t bytes = 0;
	for (uint64_t i = pr->next; i <= last && n < RAFT_MAX_BATCH_ENTRIES;
	     i++) {
		const struct log_meta *lm = raft_log_meta(&r->log, i);
		if (n > 0 && bytes + lm->size > r->opts.max_batch_bytes)
			break;
		bytes += lm->size;
		n++;
	}
	if (n == 0 && !allow_empty)
		return 0;

	struct raft_entry *entries = NULL;
	if (n > 0) {
		entries = raft_arena_alloc(r, (size_t)n * sizeof(*entries));
		if (!entries)
			return -ENOMEM;
		for (uint32_t k = 0; k < n; k++) {
			uint64_t idx = pr->next + k;
			const struct log_meta *lm = raft_log_meta(&r->log, idx);
			entries[k].term = lm->term;
			entries[k].index = idx;
			entries[k].type = lm->type;
			entries[k].size = lm->size;
			/* The core has configuration payloads; the caller
			 * attaches the others. */
			entries[k].data =
				lm->type == RAFT_ENTRY_CONFIG
					? raft_log_conf_payload(&r->log, idx)
					: NULL;
		}
	}

	struct raft_message m = {
		.type = RAFT_MSG_APPEND,
		.from = r->id,
		.to = pr->id,
		.term = r->term,
		.index = prev,
		.log_term = raft_log_term(&r->log, prev),
		.commit = r->commit,
		.n_entries = n,
		.entries = entries,
	};
	int rc = raft_send_as_leader(r, &m);
	if (rc != 0)
		return rc;
	uint64_t commit_seen = min_u64(r->commit, prev + n);
	if (commit_seen > pr->sent_commit)
		pr->sent_commit = commit_seen;
	if (pr->state == RAFT_PROGRESS_REPLICATE) {
		if (n > 0) {
			pr->next = prev + n + 1;
			raft_progress_inflight_add(pr, prev + n, bytes);
		}
	} else {
		pr->probe_sent = true;
	}
	pr->need_append = false;
	*sent = true;
	return 0;
}

static int send_heartbeat(struct raft *r, struct progress *pr,
			  uint64_t context)
{
	/* Only what the follower is known to hold may be committed there. */
	uint64_t commit = min_u64(pr->match, r->commit);
	struct raft_message m = {
		.type = RAFT_MSG_HEARTBEAT,
		.from = r->id,
		.to = pr->id,
		.term = r->term,
		.commit = commit,
		.context = context,
	};
	int rc = raft_send_as_leader(r, &m);
	if (rc == 0 && commit > pr->sent_commit)
		pr->sent_commit = commit;
	return rc;
}

int raft_flush_appends(struct raft *r)
{
	if (raft_read_round_due(r)) {
		int rc = raft_broadcast_heartbeat(r);
		if (rc != 0)
			return rc;
	}
	uint64_t last = raft_log_last_index(&r->log);
	for (uint32_t i = 0; i < r->n_peers; i++) {
		struct progress *pr = &r->peers[i];
		bool any = false;
		bool sent;
		int rc;
		/* Stream batches while the window allows (one in probe). */
		do {
			if (pr->next > last)
				break;
			rc = send_append(r, pr, false, &sent);
			if (rc != 0)
				return rc;
			any |= sent;
		} while (sent && pr->state == RAFT_PROGRESS_REPLICATE);
		if (pr->need_append && !any) {
			rc = send_append(r, pr, true, &sent);
			if (rc != 0)
				return rc;
			any |= sent;
		}
		/* A new commit index reaches followers at once, not only with
		 * the next heartbeat. */
		if (!any && min_u64(pr->match, r->commit) > pr->sent_commit) {
			rc = send_heartbeat(r, pr, 0);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int raft_broadcast_heartbeat(struct raft *r)
{
	/* Every broadcast starts a read round (read_index.c). */
	uint64_t context = ++r->read_round;
	r->read_round_wanted = false;
	uint64_t last = raft_log_last_index(&r->log);
	for (uint32_t i = 0; i < r->n_peers; i++) {
		struct progress *pr = &r->peers[i];
		int rc = send_heartbeat(r, pr, context);
		if (rc != 0)
			return rc;
		/* A probe that got no answer is retried once per heartbeat. */
		if (pr->state == RAFT_PROGRESS_PROBE) {
			pr->probe_sent = false;
			if (pr->match < last)
				pr->need_append = true;
		}
	}
	return 0;
}

bool raft_maybe_commit(struct raft *r)
{
	uint64_t match[RAFT_MAX_MEMBERS];
	size_t n = 0;
	if (raft_is_voter(r, r->id))
		match[n++] = r->persisted;
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].voter || RAFT_BUG(r, RAFT_BUG_LEARNER_QUORUM))
			match[n++] = r->peers[i].match;
	uint64_t index = raft_quorum_committed_index(match, n);
	if (index <= r->commit)
		return false;
	/* Figure 8: only an entry of the leader's own term is committed by
	 * counting replicas; earlier ones commit with it (§5.4.2). */
	if (raft_log_term(&r->log, index) != r->term &&
	    !RAFT_BUG(r, RAFT_BUG_FIGURE8))
		return false;
	for (uint64_t i = r->commit + 1; i <= index; i++)
		r->uncommitted_bytes -= raft_log_meta(&r->log, i)->size;
	r->commit = index;
	/* The term's first commit may release waiting reads; an error leaves
	 * them waiting for the next chance. */
	(void)raft_reads_advance(r);
	(void)raft_membership_after_commit(r);
	return true;
}

int raft_tick_leader(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	r->ticks++;
	if (r->transfer_target &&
	    ++r->transfer_elapsed >= r->opts.election_ticks)
		raft_transfer_abort(r); /* the target did not win: resume */
	if (r->election_elapsed >= r->opts.election_ticks) {
		r->election_elapsed = 0;
		if (r->opts.check_quorum) {
			/* Thesis §6.2: a leader that has not heard from a
			 * majority within an election timeout steps down. */
			size_t voters = raft_voter_count(r);
			size_t active = raft_is_voter(r, r->id) ? 1 : 0;
			for (uint32_t i = 0; i < r->n_peers; i++) {
				if (r->peers[i].voter &&
				    r->peers[i].recent_active)
					active++;
				r->peers[i].recent_active = false;
			}
			if (active < voters / 2 + 1) {
				raft_become_follower(r, r->term, 0);
				return 0;
			}
		}
	}
	if (r->heartbeat_elapsed >= r->opts.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		return raft_broadcast_heartbeat(r);
	}
	return 0;
}

/* ---- follower side ---- */

static int respond_append(struct raft *r, const struct raft_message *m,
			  bool reject, uint64_t index, uint64_t hint_index,
			  uint64_t hint_term)
{
	struct raft_message resp = {
		.type = RAFT_MSG_APPEND_RESP,
		.from = r->id,
		.to = m->from,
		.term = r->term,
		.index = index,
		.reject = reject,
		.hint_index = hint_index,
		.hint_term = hint_term,
	};
	/* Acknowledged entries must be durable first. */
	return raft_send_after_persist(r, &resp);
}

int raft_handle_append(struct raft *r, const struct raft_message *m)
{
	/* Here m->term == r->term: step.c adopted or rejected other terms. */
	if (r->state != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;

	if (m->index < r->commit) {
		/* Everything up to our commit index matches the leader. */
		return respond_append(r, m, false, r->commit, 0, 0);
	}
	if (raft_log_term(&r->log, m->index) != m->log_term ||
	    m->index > raft_log_last_index(&r->log)) {
		/* Consistency check failed: hint the largest index whose term
		 * is at most the leader's prev term, so the leader skips a
		 * whole term per round trip (thesis §5.3 optimisation, as in
		 * etcd). */
		uint64_t hint = min_u64(m->index, raft_log_last_index(&r->log));
		hint = raft_log_find_conflict_by_term(&r->log, hint,
						      m->log_term);
		return respond_append(r, m, true, m->index, hint,
				      raft_log_term(&r->log, hint));
	}

	uint64_t last = raft_log_last_index(&r->log);
	uint32_t k = 0;
	/* Skip entries we already have; truncate at the first conflict. */
	for (; k < m->n_entries; k++) {
		const struct raft_entry *e = &m->entries[k];
		if (e->index > last)
			break;
		if (raft_log_term(&r->log, e->index) == e->term)
			continue;
		if (e->index <= r->commit)
			return -EINVAL; /* would overwrite a committed entry */
		raft_pending_truncate(r, e->index);
		raft_log_truncate(r, &r->log, e->index);
		int rc = raft_peers_rebuild(r);
		if (rc != 0)
			return rc;
		break;
	}
	for (; k < m->n_entries; k++) {
		const struct raft_entry *e = &m->entries[k];
		int rc = raft_log_append(r, &r->log, e->term, e->type, e->size,
					 e->data);
		if (rc != 0)
			return rc;
		rc = raft_pending_add(r, e);
		if (rc != 0) {
			raft_log_truncate(r, &r->log, e->index);
			return rc;
		}
		if (e->type == RAFT_ENTRY_CONFIG) {
			rc = raft_peers_rebuild(r);
			if (rc != 0)
				return rc;
		}
	}
	uint64_t new_last = m->index + m->n_entries;
	uint64_t commit = min_u64(m->commit, new_last);
	if (commit > r->commit)
		r->commit = commit;
	return respond_append(r, m, false, new_last, 0, 0);
}

int raft_handle_heartbeat(struct raft *r, const struct raft_message *m)
{
	if (r->state != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	uint64_t commit = min_u64(m->commit, raft_log_last_index(&r->log));
	if (commit > r->commit)
		r->commit = commit;
	/* A heartbeat that only carries a new commit index (context 0, sent
	 * at once after a commit) is not answered: the answer would tell the
	 * leader nothing the periodic heartbeats (every heartbeat_ticks, each
	 * a read round) and the AppendEntries answers do not — liveness for
	 * check-quorum, a freed window slot, a retried probe — and with one
	 * proposer it cost every commit two frames and a driver round on
	 * each side per follower. */
	if (m->context == 0)
		return 0;
	struct raft_message resp = {
		.type = RAFT_MSG_HEARTBEAT_RESP,
		.from = r->id,
		.to = m->from,
		.term = r->term,
		.context = m->context,
	};
	return raft_send_after_persist(r, &resp);
}

/* ---- leader side ---- */

int raft_handle_append_resp(struct raft *r, const struct raft_message *m)
{
	struct progress *pr = raft_peer(r, m->from);
	if (!pr || r->state != RAFT_LEADER)
		return 0;
	pr->recent_active = true;
	if (m->reject) {
		if (pr->state == RAFT_PROGRESS_REPLICATE) {
			if (m->index <= pr->match)
				return 0; /* stale */
			raft_progress_become_probe(pr);
			pr->need_append = true;
			return 0;
		}
		if (pr->state != RAFT_PROGRESS_PROBE || m->index != pr->next - 1)
			return 0; /* stale: not the probe we sent */
		uint64_t probe = m->hint_index;
		if (m->hint_term > 0)
			probe = raft_log_find_conflict_by_term(
				&r->log, m->hint_index, m->hint_term);
		uint64_t next = min_u64(m->index, probe + 1);
		if (next < pr->match + 1)
			next = pr->match + 1;
		pr->next = next;
		pr->probe_sent = false;
		pr->need_append = true;
		return 0;
	}
	if (m->index > raft_log_last_index(&r->log))
		return -EINVAL; /* acknowledges entries we never had */
	bool advanced = false;
	if (m->index > pr->match) {
		pr->match = m->index;
		advanced = true;
	}
	if (pr->next < m->index + 1)
		pr->next = m->index + 1;
	if (pr->state == RAFT_PROGRESS_PROBE) {
		raft_progress_become_replicate(pr);
	} else if (pr->state == RAFT_PROGRESS_REPLICATE) {
		raft_progress_inflight_free_to(pr, m->index);
	} else if (pr->match >= pr->pending_snapshot) {
		/* The snapshot is installed there: stream entries again. */
		raft_progress_become_replicate(pr);
	}
	if (advanced)
		raft_maybe_commit(r);
	if (r->state != RAFT_LEADER)
		return 0; /* it removed itself and stepped down */
	if (!pr->voter) {
		int rc = raft_membership_check_learner(r, pr);
		if (rc != 0)
			return rc;
	}
	if (m->from == r->transfer_target)
		return raft_transfer_maybe_send(r);
	return 0;
}

int raft_handle_heartbeat_resp(struct raft *r, const struct raft_message *m)
{
	struct progress *pr = raft_peer(r, m->from);
	if (!pr || r->state != RAFT_LEADER)
		return 0;
	pr->recent_active = true;
	/* An echo of a round not started (yet) in this term is no proof. */
	if (m->context > pr->acked_round && m->context <= r->read_round)
		pr->acked_round = m->context;
	if (pr->state == RAFT_PROGRESS_PROBE)
		pr->probe_sent = false;
	/* The follower is alive but the window stays full: messages were
	 * probably lost. Free one slot so another AppendEntries goes out; a
	 * gap makes the follower reject it and we fall back to probing (as
	 * etcd does). */
	if (pr->state == RAFT_PROGRESS_REPLICATE &&
	    raft_progress_inflight_full(r, pr))
		raft_progress_inflight_free_first(pr);
	if (pr->match < raft_log_last_index(&r->log))
		pr->need_append = true;
	if (!pr->voter) {
		int rc = raft_membership_check_learner(r, pr);
		if (rc != 0)
			return rc;
	}
	return raft_reads_advance(r);
}

int raft_handle_propose(struct raft *r, const struct raft_message *m)
{
	if (r->state != RAFT_LEADER || r->transfer_target)
		return 0; /* the proposer times out and retries */
	const void *data[64];
	uint32_t sizes[64];
	/* Append in groups of 64 to keep the stack small. */
	for (uint32_t k = 0; k < m->n_entries; k += 64) {
		uint32_t n = m->n_entries - k < 64 ? m->n_entries - k : 64;
		for (uint32_t j = 0; j < n; j++) {
			data[j] = m->entries[k + j].data;
			sizes[j] = m->entries[k + j].size;
		}
		int rc = raft_leader_append(r, RAFT_ENTRY_NORMAL, data, sizes, n);
		if (rc != 0)
			return rc == -EBUSY ? 0 : rc;
	}
	return 0;
}

int raft_handle_snapshot(struct raft *r, const struct raft_message *m)
{
	const struct raft_snapshot_meta *meta = m->snapshot;
	/* The runtime hands one over only once the state machine holds it. */
	r->passive = false;
	if (r->state != RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	r->leader = m->from;
	r->election_elapsed = 0;
	if (meta->index <= r->commit)
		return respond_append(r, m, false, r->commit, 0, 0);
	if (raft_log_term(&r->log, meta->index) == meta->term) {
		/* We hold the entry it ends with: by Log Matching, everything
		 * up to it; it is committed, so no install is needed. */
		r->commit = meta->index;
		return respond_append(r, m, false, meta->index, 0, 0);
	}
	/* Install (thesis §5.1): the whole log is replaced. Entries not yet
	 * handed out are dropped; the caller deletes the rest when it
	 * persists the install, before anything appended after it. */
	r->n_pending = 0;
	r->truncate_from = 0;
	raft_log_reset(r, &r->log, meta);
	r->install_pending = true;
	r->install_meta = *meta;
	r->commit = meta->index;
	r->persisted = meta->index;
	r->applied_hint = meta->index;
	int rc = raft_peers_rebuild(r);
	if (rc != 0)
		return rc;
	return respond_append(r, m, false, meta->index, 0, 0);
}
