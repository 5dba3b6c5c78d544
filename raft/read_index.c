/*
 * Linearizable reads without log writes: ReadIndex (thesis §6.4).
 *
 * On the leader a request gets the commit index once (1) an entry of the
 * leader's own term is committed — until then the leader may not know what
 * is committed — and (2) a heartbeat round that started AFTER the request
 * arrived has been answered by a majority, which proves no other leader had
 * been elected by then. Rounds are numbered; every heartbeat broadcast
 * starts one and followers echo its number, so requests that arrive before
 * the same broadcast share it. A follower forwards requests to its leader
 * and passes the answer on. Whatever the outcome cannot be known for (the
 * leader stepped down, the leader changed) is answered with index 0.
 *
 * Latency: a request that arrives while rounds are out does not wait for
 * them (they started before it, so they cannot confirm it): the next flush
 * starts a round for it at once, so a read costs about one round trip, not
 * one to two. Several rounds may then be out at a time; each flush starts
 * at most one (for every request that arrived since the last), and at most
 * READ_ROUNDS_OUT are out unconfirmed, so however many reads arrive there
 * are at most that many rounds per round trip; requests beyond it wait for
 * the oldest round to be answered (or for the next periodic heartbeat,
 * which always starts a round, should a round's messages be lost).
 *
 * Safety does not depend on how many rounds are out: a request records the
 * number of the first round started after it arrived, and completes only
 * when a majority (this leader included) has echoed that number or a
 * higher one. Numbers only grow within a term (a new term starts again at
 * 0, with every follower's echo reset, and answers of an older term are
 * dropped in step.c), and a follower echoes a number only after it
 * received that heartbeat of this term, sent after the request arrived, so
 * a majority did not know of a newer leader when the request was pending:
 * the commit index the leader held then covers every write completed
 * before the read began (thesis §6.4, steps 2-4).
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

/* Reads a node keeps waiting at once; beyond it callers get -EBUSY. */
#define MAX_READ_REQUESTS 65536u

/* Read rounds a leader keeps out unconfirmed at once (see above). */
#define READ_ROUNDS_OUT 4u

bool raft_committed_in_term(const struct raft *r)
{
	return raft_log_term(&r->log, r->commit) == r->term;
}

static int add_request(struct raft *r, const struct read_request *req)
{
	if (r->n_read_reqs >= MAX_READ_REQUESTS)
		return -EBUSY;
	if (r->n_read_reqs == r->cap_read_reqs) {
		uint32_t cap = r->cap_read_reqs ? r->cap_read_reqs * 2 : 16;
		struct read_request *p = raft_mem_realloc(
			r, r->read_reqs, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->read_reqs = p;
		r->cap_read_reqs = cap;
	}
	r->read_reqs[r->n_read_reqs++] = *req;
	return 0;
}

static int answer(struct raft *r, const struct read_request *req,
		  uint64_t index)
{
	if (req->from == 0)
		return raft_read_state_add(r, req->context, index);
	struct raft_message m = {
		.type = RAFT_MSG_READ_INDEX_RESP,
		.from = r->id,
		.to = req->from,
		.term = 0, /* term-free (step.c): never shows an unsynced term */
		.context = req->context,
		.index = index,
		.reject = index == 0,
	};
	return raft_send(r, &m);
}

/* The highest round a majority of voters (this leader included) has
 * answered. */
static uint64_t confirmed_round(const struct raft *r)
{
	uint64_t rounds[RAFT_MAX_MEMBERS];
	size_t n = 0;
	if (raft_is_voter(r, r->id))
		rounds[n++] = r->read_round;
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].voter)
			rounds[n++] = r->peers[i].acked_round;
	return raft_quorum_committed_index(rounds, n);
}

int raft_reads_advance(struct raft *r)
{
	if (r->state != RAFT_LEADER || r->n_read_reqs == 0)
		return 0;
	if (!raft_committed_in_term(r))
		return 0;
	uint64_t confirmed = confirmed_round(r);
	uint32_t kept = 0;
	int rc = 0;
	for (uint32_t i = 0; i < r->n_read_reqs; i++) {
		struct read_request *req = &r->read_reqs[i];
		if (req->index == 0)
			req->index = r->commit; /* the term's entry committed */
		if (rc == 0 && req->round <= confirmed) {
			rc = answer(r, req, req->index);
			if (rc == 0)
				continue;
		}
		r->read_reqs[kept++] = *req;
	}
	r->n_read_reqs = kept;
	return rc;
}

int raft_reads_fail_all(struct raft *r)
{
	int rc = 0;
	for (uint32_t i = 0; i < r->n_read_reqs; i++) {
		/* A forwarded request whose answer is lost fails at the
		 * follower the same way, when its leader changes. */
		int err = answer(r, &r->read_reqs[i], 0);
		if (rc == 0)
			rc = err;
	}
	r->n_read_reqs = 0;
	return rc;
}

static int leader_read(struct raft *r, uint64_t from, uint64_t context)
{
	struct read_request req = {
		.context = context,
		.from = from,
		.index = raft_committed_in_term(r) ? r->commit : 0,
		.round = r->read_round + 1,
	};
	if (RAFT_BUG(r, RAFT_BUG_READ_NO_ROUND))
		return answer(r, &req, r->commit);
	int rc = add_request(r, &req);
	if (rc != 0)
		return rc;
	/* A lone voter is its own majority: no round to wait for. */
	if (raft_voter_count(r) == 1 && raft_is_voter(r, r->id)) {
		r->read_round++;
		return raft_reads_advance(r);
	}
	r->read_round_wanted = true;
	return 0;
}

bool raft_read_round_due(const struct raft *r)
{
	/* Requests that arrive while rounds are out get a round of their own
	 * at once, unless READ_ROUNDS_OUT are out: then they wait for the
	 * oldest to be confirmed. A lost round is superseded by the next
	 * heartbeat (its number is higher). */
	uint64_t confirmed = confirmed_round(r);
	uint64_t out = r->read_round > confirmed ? r->read_round - confirmed : 0;
	return r->read_round_wanted && out < READ_ROUNDS_OUT;
}

int raft_read_index(struct raft *r, uint64_t context)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	if (r->state == RAFT_LEADER)
		return leader_read(r, 0, context);
	if (r->state != RAFT_FOLLOWER || r->leader == 0)
		return -EPERM;
	struct read_request req = {.context = context};
	int rc = add_request(r, &req);
	if (rc != 0)
		return rc;
	struct raft_message m = {
		.type = RAFT_MSG_READ_INDEX,
		.from = r->id,
		.to = r->leader,
		.context = context,
	};
	rc = raft_send(r, &m);
	if (rc != 0)
		r->n_read_reqs--;
	return rc;
}

int raft_read_index_cancel(struct raft *r, uint64_t context)
{
	if (r->update_out || r->restoring)
		return -EINVAL;
	/* Only this node's own requests (from 0): one forwarded by a
	 * follower is the follower's to give up on. */
	for (uint32_t i = 0; i < r->n_read_reqs; i++) {
		if (r->read_reqs[i].from != 0 ||
		    r->read_reqs[i].context != context)
			continue;
		memmove(&r->read_reqs[i], &r->read_reqs[i + 1],
			(r->n_read_reqs - i - 1) * sizeof(r->read_reqs[0]));
		r->n_read_reqs--;
		return 0;
	}
	return -ENOENT;
}

int raft_handle_read_index(struct raft *r, const struct raft_message *m)
{
	if (r->state != RAFT_LEADER) {
		struct read_request req = {.context = m->context,
					   .from = m->from};
		return answer(r, &req, 0);
	}
	int rc = leader_read(r, m->from, m->context);
	if (rc == -EBUSY) {
		struct read_request req = {.context = m->context,
					   .from = m->from};
		return answer(r, &req, 0);
	}
	return rc;
}

int raft_handle_read_index_resp(struct raft *r, const struct raft_message *m)
{
	/* Only answers from the leader we asked, for a read we forwarded. */
	if (r->state != RAFT_FOLLOWER || m->from != r->leader)
		return 0;
	for (uint32_t i = 0; i < r->n_read_reqs; i++) {
		struct read_request *req = &r->read_reqs[i];
		if (req->context != m->context)
			continue;
		uint64_t index = m->reject ? 0 : m->index;
		r->read_reqs[i] = r->read_reqs[--r->n_read_reqs];
		return raft_read_state_add(r, m->context, index);
	}
	return 0;
}
