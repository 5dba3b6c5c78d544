/*
 * Leader election (Raft paper §5.2, §5.4.1; thesis §3.4, §4.2.3, §9.6):
 * randomized election timeouts in ticks, pre-vote, at most one vote per
 * term, votes only for candidates whose log is at least as up to date, and
 * the "recent leader" rule that keeps removed or cut-off servers from
 * disrupting a healthy cluster.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

bool raft_in_lease(const struct raft *r)
{
	return r->opts.check_quorum && r->leader != 0 &&
	       r->election_elapsed < r->opts.election_ticks;
}

static void reset_votes(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_peers; i++) {
		r->peers[i].vote_answered = false;
		r->peers[i].vote_granted = false;
	}
}

void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
	/* Reads waiting on this leadership, or on a leader we no longer
	 * follow, have an unknown outcome now. */
	if (r->state == RAFT_LEADER || term > r->term || leader != r->leader)
		(void)raft_reads_fail_all(r);
	raft_transfer_abort(r);
	if (term > r->term)
		raft_set_term(r, term, leader);
	r->state = RAFT_FOLLOWER;
	r->leader = leader;
	r->uncommitted_bytes = 0;
	raft_reset_election_timer(r);
	reset_votes(r);
}

int raft_become_leader(struct raft *r)
{
	uint64_t last = raft_log_last_index(&r->log);
	r->state = RAFT_LEADER;
	r->leader = r->id;
	r->heartbeat_elapsed = 0;
	r->election_elapsed = 0;
	r->uncommitted_bytes = 0;
	for (uint64_t i = r->commit + 1; i <= last; i++)
		r->uncommitted_bytes += raft_log_meta(&r->log, i)->size;
	r->read_round = 0;
	r->ticks = 0;
	raft_transfer_abort(r);
	for (uint32_t i = 0; i < r->n_peers; i++) {
		struct progress *pr = &r->peers[i];
		pr->match = 0;
		pr->next = last + 1;
		pr->sent_commit = 0;
		raft_progress_become_probe(pr);
		pr->next = last + 1;
		/* Do not step down before anyone could answer. */
		pr->recent_active = true;
		pr->need_append = true;
		pr->acked_round = 0;
		pr->catchup_target = last;
		pr->catchup_start = 0;
	}
	/* §5.4.2 / §8: a no-op of the new term lets the leader learn what is
	 * committed and serve reads. */
	const void *data = NULL;
	uint32_t size = 0;
	return raft_leader_append(r, RAFT_ENTRY_NOOP, &data, &size, 1);
}

static int send_vote_requests(struct raft *r, bool pre_vote, bool transfer)
{
	for (uint32_t i = 0; i < r->n_peers; i++) {
		struct progress *pr = &r->peers[i];
		if (!pr->voter)
			continue;
		struct raft_message m = {
			.type = pre_vote ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE,
			.from = r->id,
			.to = pr->id,
			.term = pre_vote ? r->term + 1 : r->term,
			.index = raft_log_last_index(&r->log),
			.log_term = raft_log_last_term(&r->log),
			.transfer = transfer,
		};
		/* A pre-vote changes no state; a vote request goes out once
		 * the new term and self-vote are durable. */
		int rc = pre_vote ? raft_send(r, &m)
				  : raft_send_after_persist(r, &m);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static size_t granted_votes(const struct raft *r, size_t *rejected)
{
	size_t granted = raft_is_voter(r, r->id) ? 1 : 0;
	*rejected = 0;
	for (uint32_t i = 0; i < r->n_peers; i++) {
		const struct progress *pr = &r->peers[i];
		if (!pr->voter || !pr->vote_answered)
			continue;
		if (pr->vote_granted)
			granted++;
		else
			(*rejected)++;
	}
	return granted;
}

static int tally(struct raft *r)
{
	size_t rejected;
	size_t granted = granted_votes(r, &rejected);
	switch (raft_quorum_vote_result(raft_voter_count(r), granted,
					rejected)) {
	case RAFT_VOTE_WON:
		if (r->state == RAFT_PRECANDIDATE)
			return raft_campaign(r, false, false);
		return raft_become_leader(r);
	case RAFT_VOTE_LOST:
		raft_become_follower(r, r->term, 0);
		return 0;
	default:
		return 0;
	}
}

int raft_campaign(struct raft *r, bool pre_vote, bool transfer)
{
	if (!raft_may_campaign(r))
		return 0;
	if (pre_vote) {
		/* Thesis §9.6: ask first whether we could win, without
		 * disturbing anyone's term. */
		r->state = RAFT_PRECANDIDATE;
	} else {
		raft_set_term(r, r->term + 1, 0);
		r->vote = r->id;
		r->state = RAFT_CANDIDATE;
	}
	r->leader = 0;
	(void)raft_reads_fail_all(r);
	raft_reset_election_timer(r);
	reset_votes(r);
	int rc = send_vote_requests(r, pre_vote, transfer);
	if (rc != 0)
		return rc;
	return tally(r); /* a single voter wins at once */
}

int raft_tick_election(struct raft *r)
{
	if (r->election_elapsed < UINT32_MAX)
		r->election_elapsed++;
	/* A learner (or a node not yet in any configuration) never
	 * campaigns; its time since the leader was heard keeps growing, so
	 * the recent-leader rule stops protecting a leader that is gone and
	 * it answers the vote requests of those who may replace it. */
	if (!raft_may_campaign(r))
		return 0;
	if (r->election_elapsed < r->randomized_timeout)
		return 0;
	r->election_elapsed = 0;
	return raft_campaign(r, r->opts.pre_vote, false);
}

int raft_handle_vote(struct raft *r, const struct raft_message *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	/* One vote per term; a pre-vote for a later term promises nothing. */
	bool can_vote = r->vote == m->from ||
			(r->vote == 0 && r->leader == 0) ||
			(pre && m->term > r->term);
	bool up_to_date = raft_log_is_up_to_date(&r->log, m->index,
						 m->log_term) ||
			  RAFT_BUG(r, RAFT_BUG_VOTE_ANY_LOG);
	struct raft_message resp = {
		.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP,
		.from = r->id,
		.to = m->from,
		.term = r->term,
	};
	if (can_vote && up_to_date) {
		/* A granted pre-vote answers in the term asked about, so the
		 * pre-candidate does not take it for a stale reply. */
		resp.term = m->term;
		if (!pre) {
			r->vote = m->from;
			r->hs_dirty = true;
			r->election_elapsed = 0;
		}
	} else {
		resp.reject = true;
	}
	/* A granted pre-vote promises nothing; a rejection carries our term,
	 * which may not be durable yet. */
	if (pre && !resp.reject)
		return raft_send(r, &resp);
	if (!pre && RAFT_BUG(r, RAFT_BUG_VOTE_BEFORE_PERSIST))
		return raft_send(r, &resp);
	return raft_send_after_persist(r, &resp);
}

int raft_handle_vote_resp(struct raft *r, const struct raft_message *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
	if (pre) {
		if (r->state != RAFT_PRECANDIDATE)
			return 0;
		/* Granted answers carry the term we asked about. */
		if (!m->reject && m->term != r->term + 1)
			return 0;
	} else if (r->state != RAFT_CANDIDATE || m->term != r->term) {
		return 0;
	}
	struct progress *pr = raft_peer(r, m->from);
	if (!pr || !pr->voter || pr->vote_answered)
		return 0;
	pr->vote_answered = true;
	pr->vote_granted = !m->reject;
	return tally(r);
}
