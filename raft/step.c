/*
 * A received message: validated first (bad input changes nothing), then the
 * term rules every server follows (Figure 2, "All Servers", with the pre-vote
 * and check-quorum refinements of thesis §9.6 and §4.2.3), then handed to the
 * handler of its type.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

static bool entries_valid(const struct raft_message *m)
{
	uint64_t bytes = 0;
	if (m->n_entries > RAFT_MAX_BATCH_ENTRIES)
		return false;
	if (m->n_entries > 0 && !m->entries)
		return false;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];
		if (e->size > RAFT_MAX_ENTRY_BYTES)
			return false;
		if (e->size > 0 && !e->data)
			return false;
		bytes += e->size;
		if (m->type == RAFT_MSG_PROPOSE) {
			if (e->type != RAFT_ENTRY_NORMAL)
				return false;
			continue;
		}
		if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP &&
		    e->type != RAFT_ENTRY_CONFIG)
			return false;
		if (e->type == RAFT_ENTRY_CONFIG && !e->data)
			return false;
		/* Contiguous after prev, terms non-decreasing, no term from
		 * the future. */
		if (e->index != m->index + 1 + i)
			return false;
		uint64_t prev_term = i == 0 ? m->log_term : m->entries[i - 1].term;
		if (e->term < prev_term || e->term > m->term || e->term == 0)
			return false;
	}
	return bytes <= RAFT_MAX_BATCH_BYTES;
}

static bool message_valid(const struct raft *r, const struct raft_message *m)
{
	if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
		return false;
	if (m->from == 0 || m->from == r->id || m->to != r->id)
		return false;
	if (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_PROPOSE &&
	    m->n_entries != 0)
		return false;
	switch (m->type) {
	case RAFT_MSG_APPEND:
		if (m->index > UINT64_MAX - RAFT_MAX_BATCH_ENTRIES - 1)
			return false;
		if (m->log_term > m->term || (m->index > 0) != (m->log_term > 0))
			return false;
		return entries_valid(m);
	case RAFT_MSG_PROPOSE:
		return m->n_entries > 0 && entries_valid(m);
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		return m->log_term <= m->term && m->term > 0;
	case RAFT_MSG_SNAPSHOT:
		return m->snapshot != NULL && m->snapshot->index > 0 &&
		       m->snapshot->term > 0 && m->snapshot->term <= m->term &&
		       m->snapshot->conf_index <= m->snapshot->index &&
		       raft_configuration_is_valid(&m->snapshot->conf);
	default:
		return true;
	}
}

/* Messages that are requests or answers among the cluster's own members and
 * so carry a term; PROPOSE and READ_INDEX(_RESP) are term-free: they are
 * forwarded requests whose safety does not depend on the sender's term. */
static bool is_term_free(uint8_t type)
{
	return type == RAFT_MSG_PROPOSE || type == RAFT_MSG_READ_INDEX ||
	       type == RAFT_MSG_READ_INDEX_RESP;
}

static bool from_leader(uint8_t type)
{
	return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
	       type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

/* Returns true when the message is to be handled further. */
static bool apply_term_rules(struct raft *r, const struct raft_message *m)
{
	if (m->term > r->term) {
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
			/* Thesis §4.2.3: a server that heard a leader within
			 * the minimum election timeout ignores vote requests,
			 * unless the leader itself asked for the election. */
			if (!m->transfer && raft_in_lease(r))
				return false;
		}
		if (m->type == RAFT_MSG_PREVOTE ||
		    (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* Pre-votes are asked and granted for a future term
			 * without anybody moving to it. */
			return true;
		}
		raft_become_follower(r, m->term,
				     from_leader(m->type) && m->type !=
						     RAFT_MSG_TIMEOUT_NOW
					     ? m->from
					     : 0);
		return true;
	}
	if (m->term < r->term) {
		if ((r->opts.check_quorum || r->opts.pre_vote) &&
		    (m->type == RAFT_MSG_APPEND ||
		     m->type == RAFT_MSG_HEARTBEAT)) {
			/* A leader cut off long enough for us to move on
			 * would never learn our term otherwise (with pre-vote
			 * we never disturb it): tell it, so it steps down. */
			struct raft_message resp = {
				.type = RAFT_MSG_APPEND_RESP,
				.from = r->id,
				.to = m->from,
				.term = r->term,
			};
			/* Our term may be adopted but not durable yet. */
			(void)raft_send_after_persist(r, &resp);
		} else if (m->type == RAFT_MSG_PREVOTE) {
			struct raft_message resp = {
				.type = RAFT_MSG_PREVOTE_RESP,
				.from = r->id,
				.to = m->from,
				.term = r->term,
				.reject = true,
			};
			(void)raft_send_after_persist(r, &resp);
		}
		return false;
	}
	return true;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
	if (!m || r->update_out || r->restoring)
		return -EINVAL;
	if (!message_valid(r, m))
		return -EINVAL;
	/* Thesis §4.1: messages are handled whatever our configuration
	 * says (a joining or lagging node may not know the current one),
	 * except from ids removed for good. */
	if (raft_is_removed(r, m->from))
		return -EPERM;
	r->has_state = true;
	if (!is_term_free(m->type) && !apply_term_rules(r, m))
		return 0;

	switch (m->type) {
	case RAFT_MSG_APPEND:
		return raft_handle_append(r, m);
	case RAFT_MSG_APPEND_RESP:
		return raft_handle_append_resp(r, m);
	case RAFT_MSG_HEARTBEAT:
		return raft_handle_heartbeat(r, m);
	case RAFT_MSG_HEARTBEAT_RESP:
		return raft_handle_heartbeat_resp(r, m);
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		return raft_handle_vote(r, m);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		return raft_handle_vote_resp(r, m);
	case RAFT_MSG_PROPOSE:
		return raft_handle_propose(r, m);
	case RAFT_MSG_TIMEOUT_NOW:
		return raft_handle_timeout_now(r, m);
	case RAFT_MSG_READ_INDEX:
		return raft_handle_read_index(r, m);
	case RAFT_MSG_READ_INDEX_RESP:
		return raft_handle_read_index_resp(r, m);
	case RAFT_MSG_SNAPSHOT:
		return raft_handle_snapshot(r, m);
	default:
		return 0;
	}
}
