/*
 * Leadership transfer (thesis §3.10): the leader stops accepting proposals,
 * brings the target's log up to date, and sends it TimeoutNow; the target
 * campaigns at once, without pre-vote, and its vote requests carry the
 * transfer flag so voters that still hear the old leader do not ignore them
 * (§4.2.3). If the target has not won within an election timeout, the
 * leader resumes.
 */
#include <errno.h>

#include "raft/core.h"

uint64_t raft_transfer_target(const struct raft *r)
{
	return r->state == RAFT_LEADER ? r->transfer_target : 0;
}

void raft_transfer_abort(struct raft *r)
{
	r->transfer_target = 0;
	r->transfer_elapsed = 0;
	r->timeout_now_sent = false;
}

int raft_transfer_maybe_send(struct raft *r)
{
	if (r->state != RAFT_LEADER || r->transfer_target == 0 ||
	    r->timeout_now_sent)
		return 0;
	struct progress *pr = raft_peer(r, r->transfer_target);
	if (!pr || pr->match != raft_log_last_index(&r->log))
		return 0;
	struct raft_message m = {
		.type = RAFT_MSG_TIMEOUT_NOW,
		.from = r->id,
		.to = pr->id,
		.term = r->term,
	};
	int rc = raft_send_as_leader(r, &m);
	if (rc == 0)
		r->timeout_now_sent = true;
	return rc;
}

int raft_transfer_leadership(struct raft *r, uint64_t target)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	if (r->state != RAFT_LEADER)
		return -EPERM;
	if (r->transfer_target != 0)
		return -EBUSY;
	if (target == 0) {
		/* The most up-to-date voter needs the least catching up. */
		uint64_t best_match = 0;
		for (uint32_t i = 0; i < r->n_peers; i++) {
			const struct progress *pr = &r->peers[i];
			if (pr->voter && (target == 0 || pr->match > best_match)) {
				target = pr->id;
				best_match = pr->match;
			}
		}
	}
	if (target == 0 || target == r->id || !raft_is_voter(r, target))
		return -EINVAL;
	r->transfer_target = target;
	r->transfer_elapsed = 0;
	r->timeout_now_sent = false;
	struct progress *pr = raft_peer(r, target);
	pr->need_append = true;
	if (pr->state == RAFT_PROGRESS_PROBE)
		pr->probe_sent = false;
	return raft_transfer_maybe_send(r);
}

int raft_handle_timeout_now(struct raft *r, const struct raft_message *m)
{
	/* Only from the leader of our term (step.c settled the term). */
	if (r->state != RAFT_FOLLOWER || (r->leader != 0 && m->from != r->leader))
		return 0;
	if (!raft_may_campaign(r))
		return 0;
	return raft_campaign(r, false, true);
}
