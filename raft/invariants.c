/*
 * Invariants of one node, checked after every step by the tests and the
 * simulator, in the manner of LogCabin's RaftConsensusInvariants: static
 * ones that hold of any reachable state, and "before vs after" ones that
 * relate the state to the one seen at the previous check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raft/core.h"

static int fail(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (buf && size)
		vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return -EFAULT;
}

/* Entries up to the last index seen at the previous check are checked
 * already if that entry is still there with the same term (Log Matching
 * within one node); only the rest is scanned, so a check costs O(new). */
static uint64_t first_unchecked(const struct raft *r)
{
	const struct raft_log *log = &r->log;
	uint64_t first = raft_log_first_index(log);
	if (r->seen.valid && r->seen.last_index >= first &&
	    r->seen.last_index <= raft_log_last_index(log) &&
	    raft_log_term(log, r->seen.last_index) == r->seen.last_term)
		return r->seen.last_index;
	return first;
}

static int check_log(const struct raft *r, char *buf, size_t size)
{
	const struct raft_log *log = &r->log;
	uint64_t from = first_unchecked(r);
	uint64_t prev = raft_log_term(log, from - 1);
	for (uint64_t i = from; i <= raft_log_last_index(log); i++) {
		const struct log_meta *m = raft_log_meta(log, i);
		if (m->term < prev)
			return fail(buf, size, "term decreases at index %llu",
				    (unsigned long long)i);
		if (m->term > r->term)
			return fail(buf, size,
				    "entry %llu has term %llu above current %llu",
				    (unsigned long long)i,
				    (unsigned long long)m->term,
				    (unsigned long long)r->term);
		if (m->type == RAFT_ENTRY_CONFIG &&
		    !raft_log_conf_payload(log, i))
			return fail(buf, size, "config entry %llu not tracked",
				    (unsigned long long)i);
		prev = m->term;
	}
	for (size_t k = 0; k < log->n_confs; k++) {
		const struct log_meta *m = raft_log_meta(log, log->confs[k].index);
		if (!m || m->type != RAFT_ENTRY_CONFIG)
			return fail(buf, size, "tracked config %llu not in log",
				    (unsigned long long)log->confs[k].index);
		if (k > 0 && log->confs[k - 1].index >= log->confs[k].index)
			return fail(buf, size, "configs out of order");
	}
	return 0;
}

static int check_leader(const struct raft *r, char *buf, size_t size)
{
	uint64_t last = raft_log_last_index(&r->log);
	if (r->leader != r->id || r->vote != r->id)
		return fail(buf, size, "leader %llu has leader %llu vote %llu",
			    (unsigned long long)r->id,
			    (unsigned long long)r->leader,
			    (unsigned long long)r->vote);
	uint64_t conf_index = 0;
	(void)raft_log_conf(&r->log, &conf_index);
	if (!raft_is_member(r, r->id) && conf_index <= r->commit)
		return fail(buf, size, "leader %llu still leads after its "
				       "removal committed",
			    (unsigned long long)r->id);
	uint64_t uncommitted = 0;
	for (uint64_t i = r->commit + 1; i <= last; i++)
		uncommitted += raft_log_meta(&r->log, i)->size;
	if (uncommitted != r->uncommitted_bytes)
		return fail(buf, size, "uncommitted bytes %llu, recount %llu",
			    (unsigned long long)r->uncommitted_bytes,
			    (unsigned long long)uncommitted);
	for (uint32_t i = 0; i < r->n_peers; i++) {
		const struct progress *pr = &r->peers[i];
		if (pr->match >= pr->next || pr->next > last + 1 ||
		    pr->match > last)
			return fail(buf, size,
				    "peer %llu match %llu next %llu last %llu",
				    (unsigned long long)pr->id,
				    (unsigned long long)pr->match,
				    (unsigned long long)pr->next,
				    (unsigned long long)last);
		if (pr->state != RAFT_PROGRESS_REPLICATE && pr->ring_count != 0)
			return fail(buf, size, "peer %llu probes with inflight",
				    (unsigned long long)pr->id);
		if (pr->ring_count > pr->ring_cap)
			return fail(buf, size, "peer %llu window overflow",
				    (unsigned long long)pr->id);
		uint64_t bytes = 0, prev_last = pr->match;
		for (uint32_t k = 0; k < pr->ring_count; k++) {
			const struct inflight *f =
				&pr->ring[(pr->ring_start + k) % pr->ring_cap];
			if (f->last < prev_last || f->last >= pr->next)
				return fail(buf, size,
					    "peer %llu inflight %llu out of order",
					    (unsigned long long)pr->id,
					    (unsigned long long)f->last);
			prev_last = f->last;
			bytes += f->bytes;
		}
		if (bytes != pr->ring_bytes)
			return fail(buf, size, "peer %llu inflight bytes",
				    (unsigned long long)pr->id);
	}
	return 0;
}

static int check_static(const struct raft *r, char *buf, size_t size)
{
	uint64_t last = raft_log_last_index(&r->log);
	if (r->commit > last)
		return fail(buf, size, "commit %llu beyond last %llu",
			    (unsigned long long)r->commit,
			    (unsigned long long)last);
	if (r->commit < r->log.compact_index)
		return fail(buf, size, "commit below the compacted index");
	if (r->log.snapshot.index < r->log.compact_index ||
	    r->log.snapshot.index > r->commit)
		return fail(buf, size, "snapshot %llu outside [%llu, %llu]",
			    (unsigned long long)r->log.snapshot.index,
			    (unsigned long long)r->log.compact_index,
			    (unsigned long long)r->commit);
	if (r->persisted > last)
		return fail(buf, size, "persisted %llu beyond last %llu",
			    (unsigned long long)r->persisted,
			    (unsigned long long)last);
	if (r->applied_hint > r->commit)
		return fail(buf, size, "applied %llu beyond commit %llu",
			    (unsigned long long)r->applied_hint,
			    (unsigned long long)r->commit);
	if (raft_log_last_term(&r->log) > r->term)
		return fail(buf, size, "last term above current term");
	if (r->state != RAFT_LEADER && r->transfer_target != 0)
		return fail(buf, size, "transfer target without leadership");
	for (uint32_t i = 0; i < r->n_read_reqs; i++) {
		const struct read_request *q = &r->read_reqs[i];
		if (r->state == RAFT_LEADER &&
		    (q->round > r->read_round + 1 || q->index > r->commit))
			return fail(buf, size, "read %llu: round %llu index %llu "
					       "beyond round %llu commit %llu",
				    (unsigned long long)q->context,
				    (unsigned long long)q->round,
				    (unsigned long long)q->index,
				    (unsigned long long)r->read_round,
				    (unsigned long long)r->commit);
		if (r->state != RAFT_LEADER && q->from != 0)
			return fail(buf, size, "follower holds a forwarded read");
	}
	switch (r->state) {
	case RAFT_LEADER:
		return check_leader(r, buf, size);
	case RAFT_CANDIDATE:
		if (r->vote != r->id)
			return fail(buf, size, "candidate did not vote itself");
		if (r->leader != 0)
			return fail(buf, size, "candidate knows a leader");
		break;
	case RAFT_PRECANDIDATE:
	case RAFT_FOLLOWER:
		if (r->leader == r->id)
			return fail(buf, size, "follower thinks it leads");
		break;
	default:
		return fail(buf, size, "unknown state %u", r->state);
	}
	return check_log(r, buf, size);
}

static int check_transition(const struct raft *r, char *buf, size_t size)
{
	if (!r->seen.valid)
		return 0;
	if (r->term < r->seen.term)
		return fail(buf, size, "term went back from %llu to %llu",
			    (unsigned long long)r->seen.term,
			    (unsigned long long)r->term);
	if (r->commit < r->seen.commit)
		return fail(buf, size, "commit went back from %llu to %llu",
			    (unsigned long long)r->seen.commit,
			    (unsigned long long)r->commit);
	if (r->term == r->seen.term && r->seen.vote != 0 &&
	    r->vote != r->seen.vote)
		return fail(buf, size, "vote changed within term %llu",
			    (unsigned long long)r->term);
	if (r->seen.state == RAFT_LEADER && r->state == RAFT_LEADER &&
	    r->term == r->seen.term) {
		/* Leader append-only (Figure 3). */
		if (raft_log_last_index(&r->log) < r->seen.last_index ||
		    raft_log_term(&r->log, r->seen.last_index) !=
			    r->seen.last_term)
			return fail(buf, size, "leader's log lost entries");
	}
	if (r->seen.state == RAFT_LEADER && r->state != RAFT_LEADER &&
	    r->term == r->seen.term && r->state != RAFT_FOLLOWER)
		return fail(buf, size, "leader became candidate in its term");
	return 0;
}

int raft_check_invariants(struct raft *r, char *buf, size_t size)
{
	int rc = check_static(r, buf, size);
	if (rc == 0)
		rc = check_transition(r, buf, size);
	r->seen.valid = true;
	r->seen.term = r->term;
	r->seen.vote = r->vote;
	r->seen.commit = r->commit;
	r->seen.state = r->state;
	r->seen.last_index = raft_log_last_index(&r->log);
	r->seen.last_term = raft_log_last_term(&r->log);
	return rc;
}
