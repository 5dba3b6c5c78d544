/*
 * The simulator's safety checks over the whole cluster (Raft paper Figure 3
 * and the persistence rules), run after every event:
 *
 *   election safety       at most one leader per term
 *   one vote per term     no node grants two candidates in one term, even
 *                         across a crash (its vote must be durable)
 *   log matching          equal terms at an index mean equal prefixes
 *   leader completeness   a new leader holds every committed entry
 *   state machine safety  every node applies the same entry at an index
 *   durable terms         a restarted node's term is at least every term it
 *                         showed anyone before the crash
 *
 * Prefixes are compared through chained hashes (struct sim_entry.chain), so
 * one comparison covers a whole prefix.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/internal.h"

static void *grow_zeroed(void *p, uint64_t *n, uint64_t need, size_t elem)
{
	if (need <= *n)
		return p;
	uint64_t cap = *n ? *n : 64;
	while (cap < need)
		cap *= 2;
	p = realloc(p, cap * elem);
	if (!p)
		abort();
	memset((char *)p + *n * elem, 0, (cap - *n) * elem);
	*n = cap;
	return p;
}

void sim_checker_release(struct sim *s)
{
	for (uint64_t i = 0; i < s->n_committed; i++)
		free(s->committed[i].data);
	free(s->leader_of_term);
	free(s->votes);
	free(s->committed);
	free(s->cmd_index);
}

static int record_committed(struct sim *s, struct sim_node *n, uint64_t upto)
{
	const struct sim_log *log = &n->mem_log;
	if (upto > sim_log_last(log))
		return sim_fail(s, "node %llu commits %llu beyond its log %llu",
				(unsigned long long)n->id,
				(unsigned long long)upto,
				(unsigned long long)sim_log_last(log));
	if (upto == 0)
		return 0;
	uint64_t known = s->n_committed;
	uint64_t check = upto < known ? upto : known;
	uint64_t chain, term;
	/* Below its log's start the node holds a snapshot of committed state
	 * (checked when it was taken or installed). */
	if (check > 0 && sim_log_chain_at(log, check, &chain, &term) &&
	    chain != s->committed[check - 1].chain)
		return sim_fail(s, "node %llu: committed prefix up to %llu "
				   "differs from the cluster's",
				(unsigned long long)n->id,
				(unsigned long long)check);
	if (upto > known) {
		if (known < log->offset)
			return sim_fail(s, "node %llu commits %llu but its log "
					   "starts after %llu, beyond the "
					   "cluster's %llu",
					(unsigned long long)n->id,
					(unsigned long long)upto,
					(unsigned long long)log->offset,
					(unsigned long long)known);
		s->committed = grow_zeroed(s->committed, &s->cap_committed,
					   upto, sizeof(*s->committed));
		for (uint64_t i = known + 1; i <= upto; i++) {
			const struct sim_entry *e = sim_log_get(log, i);
			struct sim_committed *c = &s->committed[i - 1];
			c->term = e->term;
			c->chain = e->chain;
			c->type = e->type;
			c->size = e->size;
			c->data = NULL;
			if (e->size) {
				c->data = malloc(e->size);
				if (!c->data)
					abort();
				memcpy(c->data, e->data, e->size);
			}
		}
		s->n_committed = upto;
	}
	return 0;
}

static int check_leader(struct sim *s, struct sim_node *n)
{
	uint64_t term = raft_term(n->raft);
	uint64_t have = s->n_terms;
	s->leader_of_term = grow_zeroed(s->leader_of_term, &have, term + 1,
					sizeof(*s->leader_of_term));
	s->n_terms = have;
	if (s->leader_of_term[term] == 0) {
		s->leader_of_term[term] = n->id;
		s->stats.elections++;
	} else if (s->leader_of_term[term] != n->id) {
		return sim_fail(s, "two leaders in term %llu: %llu and %llu",
				(unsigned long long)term,
				(unsigned long long)s->leader_of_term[term],
				(unsigned long long)n->id);
	}
	if (n->last_state == RAFT_LEADER && n->last_state_term == term)
		return 0;
	/* What it commits from now on is checked against its quorum. */
	n->quorum_checked = raft_commit_index(n->raft);
	n->conf_now = *raft_configuration(n->raft);
	memset(&n->conf_before, 0, sizeof(n->conf_before));
	/* Newly elected: it must hold every committed entry (§5.4.1). */
	uint64_t c = s->n_committed, chain = 0, t = 0;
	if (c > n->mem_log.offset &&
	    (!sim_log_chain_at(&n->mem_log, c, &chain, &t) ||
	     chain != s->committed[c - 1].chain))
		return sim_fail(s, "leader %llu of term %llu lacks committed "
				   "entries up to %llu",
				(unsigned long long)n->id,
				(unsigned long long)term,
				(unsigned long long)c);
	return 0;
}

static int check_log_matching(struct sim *s, struct sim_node *a)
{
	for (uint64_t id = 1; id <= s->cfg.nodes; id++) {
		struct sim_node *b = &s->nodes[id];
		if (b == a || !b->up)
			continue;
		uint64_t la = sim_log_last(&a->mem_log);
		uint64_t lb = sim_log_last(&b->mem_log);
		uint64_t i = la < lb ? la : lb;
		uint64_t ca, ta, cb, tb;
		if (i == 0 || !sim_log_chain_at(&a->mem_log, i, &ca, &ta) ||
		    !sim_log_chain_at(&b->mem_log, i, &cb, &tb))
			continue;
		if (ta == tb && ca != cb)
			return sim_fail(s, "log matching: nodes %llu and %llu "
					   "agree on the term at %llu but not "
					   "on the entries before",
					(unsigned long long)a->id,
					(unsigned long long)b->id,
					(unsigned long long)i);
	}
	return 0;
}

static bool durable_at(const struct sim_node *n, uint64_t index,
		       uint64_t chain)
{
	if (index <= n->disk_snap.meta.index)
		return true; /* inside its snapshot of committed state */
	const struct sim_entry *e = sim_log_get(&n->disk_log, index);
	return e && e->chain == chain;
}

static bool majority_holds(const struct sim *s,
			   const struct raft_configuration *conf,
			   uint64_t index, uint64_t chain)
{
	size_t voters = 0, holding = 0;
	for (uint32_t i = 0; i < conf->n; i++) {
		const struct raft_member *m = &conf->members[i];
		if (m->role != RAFT_VOTER)
			continue;
		voters++;
		if (m->id <= s->cfg.nodes &&
		    durable_at(&s->nodes[m->id], index, chain))
			holding++;
	}
	return voters > 0 && holding >= voters / 2 + 1;
}

/* A leader's commit index must be durable on a majority of the voters of
 * the configuration in force (or, when it changed in the same step, of the
 * one before it): learners never count. */
static int check_quorum(struct sim *s, struct sim_node *n)
{
	const struct raft_configuration *conf = raft_configuration(n->raft);
	if (memcmp(conf, &n->conf_now, sizeof(*conf)) != 0) {
		n->conf_before = n->conf_now;
		n->conf_now = *conf;
	}
	uint64_t commit = raft_commit_index(n->raft);
	if (commit <= n->quorum_checked)
		return 0;
	n->quorum_checked = commit;
	uint64_t chain, term;
	if (!sim_log_chain_at(&n->mem_log, commit, &chain, &term))
		return 0; /* inside its own snapshot */
	if (majority_holds(s, &n->conf_now, commit, chain) ||
	    (n->conf_before.n && majority_holds(s, &n->conf_before, commit,
						chain)))
		return 0;
	return sim_fail(s, "leader %llu commits %llu, which no majority of "
			   "its configuration's voters holds",
			(unsigned long long)n->id, (unsigned long long)commit);
}

static size_t voter_difference(const struct raft_configuration *a,
			       const struct raft_configuration *b)
{
	size_t d = 0;
	for (uint32_t i = 0; i < a->n; i++) {
		const struct raft_member *m = &a->members[i];
		const struct raft_member *o = raft_configuration_get(b, m->id);
		if ((m->role == RAFT_VOTER) != (o && o->role == RAFT_VOTER))
			d++;
	}
	for (uint32_t i = 0; i < b->n; i++) {
		const struct raft_member *m = &b->members[i];
		if (m->role == RAFT_VOTER && !raft_configuration_get(a, m->id))
			d++;
	}
	return d;
}

int sim_check_conf_append(struct sim *s, struct sim_node *n, uint64_t index,
			  const struct raft_entry *e)
{
	struct raft_configuration next, prev;
	if (raft_configuration_decode(e->data, e->size, &next) != 0)
		return sim_fail(s, "leader %llu appends a bad configuration",
				(unsigned long long)n->id);
	s->stats.changes++;
	/* The configuration it replaces: the latest entry before it, or the
	 * snapshot's. */
	uint64_t prev_index = 0;
	bool found = false;
	for (uint64_t i = index - 1; i > n->mem_log.offset && !found; i--) {
		const struct sim_entry *pe = sim_log_get(&n->mem_log, i);
		if (pe && pe->type == RAFT_ENTRY_CONFIG) {
			if (raft_configuration_decode(pe->data, pe->size,
						      &prev) != 0)
				return sim_fail(s, "bad configuration at %llu",
						(unsigned long long)i);
			prev_index = i;
			found = true;
		}
	}
	if (!found) {
		prev = n->disk_snap.meta.conf;
		prev_index = n->disk_snap.meta.conf_index;
	}
	if (prev_index > raft_commit_index(n->raft))
		return sim_fail(s, "leader %llu appends configuration %llu while "
				   "%llu is not committed (changes overlap)",
				(unsigned long long)n->id,
				(unsigned long long)index,
				(unsigned long long)prev_index);
	if (found && voter_difference(&prev, &next) > 1)
		return sim_fail(s, "leader %llu changes more than one voter at "
				   "%llu",
				(unsigned long long)n->id,
				(unsigned long long)index);
	return 0;
}

int sim_check_node(struct sim *s, struct sim_node *n)
{
	char why[256];
	if (raft_check_invariants(n->raft, why, sizeof(why)) != 0)
		return sim_fail(s, "node %llu invariant: %s",
				(unsigned long long)n->id, why);
	int rc = record_committed(s, n, raft_commit_index(n->raft));
	if (rc == 0 && raft_is_leader(n->raft))
		rc = check_leader(s, n);
	if (rc == 0 && raft_is_leader(n->raft))
		rc = check_quorum(s, n);
	if (rc == 0)
		rc = check_log_matching(s, n);
	uint64_t term = raft_term(n->raft);
	if (term > s->stats.max_term)
		s->stats.max_term = term;
	struct raft_status st;
	raft_status_get(n->raft, &st);
	n->last_state = st.state;
	n->last_state_term = term;
	return rc;
}

int sim_check_sent(struct sim *s, struct sim_node *n,
		   const struct raft_message *m)
{
	/* Pre-votes and granted pre-vote answers name a term nobody moved
	 * to; every other message shows the sender's own term. */
	bool prospective = m->type == RAFT_MSG_PREVOTE ||
			   (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject);
	/* Term-free messages (forwarded proposals and reads) must carry no
	 * term at all: they are sent at once, before any sync. */
	bool term_free = m->type == RAFT_MSG_PROPOSE ||
			 m->type == RAFT_MSG_READ_INDEX ||
			 m->type == RAFT_MSG_READ_INDEX_RESP;
	if (term_free && m->term != 0)
		return sim_fail(s, "node %llu sends %s with term %llu",
				(unsigned long long)n->id,
				raft_message_type_name(m->type),
				(unsigned long long)m->term);
	if (!prospective && m->term > n->max_term_sent)
		n->max_term_sent = m->term;
	if (m->type == RAFT_MSG_VOTE_RESP && !m->reject) {
		uint64_t have = s->n_vote_terms;
		s->votes = grow_zeroed(s->votes, &have, m->term + 1,
				       sizeof(*s->votes));
		s->n_vote_terms = have;
		uint64_t *v = &s->votes[m->term][n->id];
		if (*v != 0 && *v != m->to)
			return sim_fail(s, "node %llu voted for %llu and %llu "
					   "in term %llu",
					(unsigned long long)n->id,
					(unsigned long long)*v,
					(unsigned long long)m->to,
					(unsigned long long)m->term);
		*v = m->to;
	}
	return 0;
}

int sim_check_apply(struct sim *s, struct sim_node *n, uint64_t index,
		    const struct sim_entry *e)
{
	if (index <= s->n_committed) {
		if (s->committed[index - 1].chain != e->chain)
			return sim_fail(s, "state machine safety: node %llu "
					   "applies a different entry at %llu",
					(unsigned long long)n->id,
					(unsigned long long)index);
	} else {
		int rc = record_committed(s, n, index);
		if (rc != 0)
			return rc;
	}
	n->applied_chain = e->chain;
	if (e->type == RAFT_ENTRY_NORMAL && e->size >= 8) {
		/* The first 8 bytes are the command's number (machine.c). */
		uint64_t cmd = 0;
		for (int i = 0; i < 8; i++)
			cmd = (cmd << 8) | e->data[i];
		uint64_t have = s->n_cmds;
		s->cmd_index = grow_zeroed(s->cmd_index, &have, cmd + 1,
					   sizeof(*s->cmd_index));
		s->n_cmds = have;
		/* A retried or duplicated proposal may be in the log more
		 * than once (the duplicate table stops its second effect);
		 * the first index is the one acknowledged. */
		if (s->cmd_index[cmd] == 0)
			s->cmd_index[cmd] = index;
	}
	return 0;
}

int sim_check_restart(struct sim *s, struct sim_node *n)
{
	if (n->disk_hs.term < n->max_term_sent)
		return sim_fail(s, "node %llu restarts in term %llu after "
				   "showing term %llu",
				(unsigned long long)n->id,
				(unsigned long long)n->disk_hs.term,
				(unsigned long long)n->max_term_sent);
	uint64_t t = n->disk_hs.term;
	if (t < s->n_vote_terms && s->votes[t][n->id] != 0 &&
	    n->disk_hs.vote != s->votes[t][n->id])
		return sim_fail(s, "node %llu restarts having forgotten its "
				   "vote for %llu in term %llu",
				(unsigned long long)n->id,
				(unsigned long long)s->votes[t][n->id],
				(unsigned long long)t);
	return 0;
}
