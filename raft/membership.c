/*
 * Membership changes one server at a time (thesis §4.1-4.2): learners that
 * catch up before they vote, removal with tombstones so an id never
 * returns, and a leader that removes itself stepping down once the change
 * commits (§4.2.2). A configuration takes effect when appended; the log
 * keeps it for rollback if the entry is truncated (log.c).
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

/* Whether the latest configuration entry is committed (none pending). */
static bool change_pending(const struct raft *r)
{
	uint64_t conf_index = 0;
	(void)raft_log_conf(&r->log, &conf_index);
	return conf_index > r->commit;
}

static bool address_ok(const char *address)
{
	if (!address)
		return false;
	size_t len = strnlen(address, RAFT_MAX_ADDRESS);
	return len > 0 && len < RAFT_MAX_ADDRESS;
}

int raft_change_membership(struct raft *r, enum raft_change change,
			   uint64_t id, const char *address, uint64_t *index)
{
	if (r->update_out || r->restoring || id == 0)
		return -EINVAL;
	if (r->state != RAFT_LEADER || r->transfer_target)
		return -EPERM;
	/* §4.1: one change at a time, and only once the leader knows what
	 * is committed (an entry of its term has committed; see also the
	 * bug found in single-server changes, Ongaro's raft-dev post). */
	if (!raft_committed_in_term(r) ||
	    (change_pending(r) && !RAFT_BUG(r, RAFT_BUG_OVERLAP_CHANGES)))
		return -EBUSY;
	struct raft_configuration conf = *raft_log_conf(&r->log, NULL);
	struct raft_member *m = NULL;
	for (uint32_t i = 0; i < conf.n; i++)
		if (conf.members[i].id == id)
			m = &conf.members[i];
	switch (change) {
	case RAFT_ADD_LEARNER:
		if (m)
			return -EEXIST; /* a member, or a tombstone */
		if (!address_ok(address))
			return -EINVAL;
		if (conf.n >= RAFT_MAX_MEMBERS)
			return -ENOSPC;
		m = &conf.members[conf.n++];
		memset(m, 0, sizeof(*m));
		m->id = id;
		m->role = RAFT_LEARNER;
		memcpy(m->address, address, strnlen(address, RAFT_MAX_ADDRESS));
		break;
	case RAFT_PROMOTE:
		if (!m || m->role == RAFT_REMOVED)
			return -ENOENT;
		if (m->role != RAFT_LEARNER)
			return -EINVAL;
		m->role = RAFT_VOTER;
		break;
	case RAFT_REMOVE: {
		if (!m || m->role == RAFT_REMOVED)
			return -ENOENT;
		size_t voters = raft_voter_count(r);
		if (m->role == RAFT_VOTER && voters <= 1)
			return -EINVAL; /* nobody could lead */
		m->role = RAFT_REMOVED;
		break;
	}
	default:
		return -EINVAL;
	}
	uint8_t buf[2 + RAFT_MAX_MEMBERS * (8 + 1 + RAFT_MAX_ADDRESS)];
	uint32_t size = (uint32_t)raft_configuration_encoded_size(conf.n);
	raft_configuration_encode(&conf, buf);
	const void *data = buf;
	uint64_t at = raft_log_last_index(&r->log) + 1;
	int rc = raft_leader_append(r, RAFT_ENTRY_CONFIG, &data, &size, 1);
	if (rc == 0 && index)
		*index = at;
	return rc;
}

bool raft_is_member(const struct raft *r, uint64_t id)
{
	const struct raft_member *m =
		raft_configuration_get(raft_log_conf(&r->log, NULL), id);
	return m && m->role != RAFT_REMOVED;
}

bool raft_is_removed(const struct raft *r, uint64_t id)
{
	/* Only a committed removal is final: an uncommitted one may be
	 * rolled back, and refusing the id's messages then could cut us off
	 * from a legitimate leader. */
	const struct raft_member *m = raft_configuration_get(
		raft_log_conf_at(&r->log, r->commit, NULL), id);
	return m && m->role == RAFT_REMOVED;
}

/* §4.2.1: a learner is caught up when a round of replication (everything
 * the leader had when the round began) took less than an election
 * timeout; then the leader promotes it. */
int raft_membership_check_learner(struct raft *r, struct progress *pr)
{
	if (!r->opts.auto_promote || pr->voter || r->state != RAFT_LEADER)
		return 0;
	if (pr->match < pr->catchup_target)
		return 0;
	bool quick = r->ticks - pr->catchup_start < r->opts.election_ticks;
	/* Start the next round either way. */
	pr->catchup_target = raft_log_last_index(&r->log);
	pr->catchup_start = r->ticks;
	if (!quick || r->transfer_target || change_pending(r) ||
	    !raft_committed_in_term(r))
		return 0;
	int rc = raft_change_membership(r, RAFT_PROMOTE, pr->id, NULL, NULL);
	return rc == -EBUSY ? 0 : rc;
}

int raft_membership_after_commit(struct raft *r)
{
	/* §4.2.2: a leader no longer in the configuration steps down once
	 * that configuration is committed. */
	if (r->state == RAFT_LEADER && !raft_is_member(r, r->id) &&
	    !change_pending(r))
		raft_become_follower(r, r->term, 0);
	return 0;
}

bool raft_may_campaign(const struct raft *r)
{
	if (r->passive)
		return false; /* its state machine waits for a snapshot */
	if (raft_is_voter(r, r->id))
		return true;
	/* Thesis §4.2.2: a server that is not part of its own latest
	 * configuration still starts elections while that configuration is
	 * uncommitted: it may be needed to commit it (a leader that removed
	 * itself and lost its leadership holds entries nobody else has). Its
	 * own vote does not count in the new configuration. */
	uint64_t conf_index = 0;
	(void)raft_log_conf(&r->log, &conf_index);
	if (conf_index <= r->commit || conf_index <= r->log.compact_index)
		return false;
	/* The configuration the pending one replaces (after a restart the
	 * commit index is not known yet, so not "the committed one"). */
	const struct raft_member *m = raft_configuration_get(
		raft_log_conf_at(&r->log, conf_index - 1, NULL), r->id);
	return m && m->role == RAFT_VOTER;
}
