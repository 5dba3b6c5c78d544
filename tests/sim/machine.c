/*
 * The simulator's state machine and clients.
 *
 * Each node's clients propose commands carrying a proposal id (node, boot
 * epoch, sequence) and a low-water mark (raft/proposal.h); a proposal whose
 * outcome is unknown after retry_us is proposed again with the SAME id. The
 * state machine applies a command only when the duplicate table judges it
 * new, and counts its effects: a command taking effect twice on a node is a
 * violation (exactly once). Reads go through ReadIndex; a read index must
 * cover everything committed before the read was invoked (no stale reads).
 *
 * A command's payload: its number (8 bytes, big-endian), the encoded
 * proposal (RAFT_PROPOSAL_BYTES), then a few filler bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/internal.h"

#define CMD_HEADER (8u + RAFT_PROPOSAL_BYTES)

static void machine_free(struct sim_node *n)
{
	raft_dedup_table_destroy(n->dedup);
	n->dedup = NULL;
	free(n->effects);
	n->effects = NULL;
	n->cap_effects = 0;
	n->n_pending = 0;
	n->n_reads = 0;
}

int sim_machine_reset(struct sim *s, struct sim_node *n)
{
	(void)s;
	machine_free(n);
	n->epoch = n->boot + 1;
	n->next_seq = 1;
	return raft_dedup_table_create(NULL, &n->dedup);
}

void sim_machine_release(struct sim_node *n)
{
	machine_free(n);
	free(n->reads);
	n->reads = NULL;
	n->cap_reads = 0;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t low_water(const struct sim_node *n)
{
	uint64_t low = n->next_seq;
	for (uint32_t i = 0; i < n->n_pending; i++)
		if (n->pending[i].seq < low)
			low = n->pending[i].seq;
	return low;
}

static int submit(struct sim *s, struct sim_node *n, struct sim_pending *p)
{
	/* The low-water mark is refreshed on every (re)send. */
	struct raft_proposal prop = {
		.id = {.node = n->id, .epoch = n->epoch, .seq = p->seq},
		.low_water = low_water(n),
	};
	raft_proposal_encode(&prop, p->payload + 8);
	p->sent_us = s->now_us;
	p->attempts++;
	const void *data = p->payload;
	uint32_t size = p->size;
	return raft_propose(n->raft, &data, &size, 1, NULL, NULL);
}

int sim_client_propose(struct sim *s, struct sim_node *n, uint64_t *cmd_out)
{
	if (n->n_pending >= SIM_MAX_PENDING)
		return -EBUSY;
	struct sim_pending *p = &n->pending[n->n_pending];
	uint64_t cmd = ++s->next_cmd;
	p->cmd = cmd;
	p->seq = n->next_seq++;
	p->attempts = 0;
	p->size = CMD_HEADER + (uint32_t)(cmd % 16);
	for (int i = 0; i < 8; i++)
		p->payload[i] = (uint8_t)(cmd >> (56 - 8 * i));
	for (uint32_t i = CMD_HEADER; i < p->size; i++)
		p->payload[i] = (uint8_t)(cmd * 31 + i);
	n->n_pending++;
	if (cmd_out)
		*cmd_out = cmd;
	/* Not accepted (no leader, transfer): the outcome is known — it was
	 * not proposed — but the client keeps it and retries. */
	return submit(s, n, p);
}

int sim_client_retry(struct sim *s, struct sim_node *n)
{
	/* A few of the oldest per tick keep the cost bounded. */
	uint32_t budget = 4;
	for (uint32_t i = 0; i < n->n_pending && budget > 0; i++) {
		struct sim_pending *p = &n->pending[i];
		/* Exponential backoff, as a real client: retry_us, then twice
		 * that, up to eight times. */
		uint32_t shift = p->attempts > 4 ? 3 : p->attempts - 1;
		if (s->now_us - p->sent_us < (s->cfg.retry_us << shift))
			continue;
		budget--;
		s->stats.retries++;
		sim_trace(s, "n%llu retry cmd %llu seq %llu",
			  (unsigned long long)n->id, (unsigned long long)p->cmd,
			  (unsigned long long)p->seq);
		int rc = submit(s, n, p);
		if (rc != 0 && rc != -EPERM && rc != -EBUSY)
			return rc;
	}
	return 0;
}

static void resolve_pending(struct sim_node *n, uint64_t seq)
{
	for (uint32_t i = 0; i < n->n_pending; i++) {
		if (n->pending[i].seq != seq)
			continue;
		n->pending[i] = n->pending[--n->n_pending];
		return;
	}
}

int sim_machine_apply(struct sim *s, struct sim_node *n, uint64_t index,
		      const struct sim_entry *e)
{
	if (e->type != RAFT_ENTRY_NORMAL)
		return 0;
	struct raft_proposal prop;
	if (e->size < CMD_HEADER ||
	    raft_proposal_decode(e->data + 8, e->size - 8, &prop) != 0)
		return sim_fail(s, "node %llu applies a malformed command at "
				   "%llu",
				(unsigned long long)n->id,
				(unsigned long long)index);
	uint64_t cmd = get_u64(e->data);
	enum raft_dedup_verdict v =
		raft_dedup_table_check(n->dedup, &prop, NULL, NULL);
	if (s->cfg.dedup_off)
		v = RAFT_DEDUP_NEW;
	uint8_t result[8];
	for (int i = 0; i < 8; i++)
		result[i] = (uint8_t)(index >> (56 - 8 * i));
	if (raft_dedup_table_record(n->dedup, &prop,
				    s->cfg.dedup_off ? RAFT_DEDUP_NEW : v,
				    result, sizeof(result)) != 0)
		return sim_fail(s, "node %llu: duplicate table refused a "
				   "record",
				(unsigned long long)n->id);
	if (prop.id.node == n->id && prop.id.epoch == n->epoch)
		resolve_pending(n, prop.id.seq);
	if (v != RAFT_DEDUP_NEW) {
		s->stats.duplicates++;
		return 0;
	}
	if (cmd >= n->cap_effects) {
		uint64_t cap = n->cap_effects ? n->cap_effects : 256;
		while (cap <= cmd)
			cap *= 2;
		uint8_t *p = realloc(n->effects, cap);
		if (!p)
			abort();
		memset(p + n->cap_effects, 0, cap - n->cap_effects);
		n->effects = p;
		n->cap_effects = cap;
	}
	if (++n->effects[cmd] > 1)
		return sim_fail(s, "exactly once: command %llu (proposal "
				   "%llu/%llu/%llu) took effect twice on node "
				   "%llu, again at index %llu",
				(unsigned long long)cmd,
				(unsigned long long)prop.id.node,
				(unsigned long long)prop.id.epoch,
				(unsigned long long)prop.id.seq,
				(unsigned long long)n->id,
				(unsigned long long)index);
	return 0;
}

int sim_read_start(struct sim *s, struct sim_node *n)
{
	uint64_t context = ++s->next_read;
	int rc = raft_read_index(n->raft, context);
	if (rc != 0)
		return rc;
	if (n->n_reads == n->cap_reads) {
		n->cap_reads = n->cap_reads ? n->cap_reads * 2 : 16;
		n->reads = realloc(n->reads, n->cap_reads * sizeof(*n->reads));
		if (!n->reads)
			abort();
	}
	n->reads[n->n_reads++] = (struct sim_read){
		.context = context,
		.required = s->n_committed,
		.invoked_us = s->now_us,
	};
	sim_trace(s, "n%llu read %llu invoked (committed %llu)",
		  (unsigned long long)n->id, (unsigned long long)context,
		  (unsigned long long)s->n_committed);
	return 0;
}

int sim_read_answer(struct sim *s, struct sim_node *n, uint64_t context,
		    uint64_t index)
{
	for (uint32_t i = 0; i < n->n_reads; i++) {
		struct sim_read *rd = &n->reads[i];
		if (rd->context != context)
			continue;
		struct sim_read done = *rd;
		n->reads[i] = n->reads[--n->n_reads];
		sim_trace(s, "n%llu read %llu answered index %llu",
			  (unsigned long long)n->id,
			  (unsigned long long)context,
			  (unsigned long long)index);
		if (index == 0) {
			s->stats.reads_unknown++;
			return 0;
		}
		s->stats.reads_ok++;
		if (index < done.required)
			return sim_fail(s, "stale read on node %llu: read index "
					   "%llu, but %llu was committed "
					   "before the read began",
					(unsigned long long)n->id,
					(unsigned long long)index,
					(unsigned long long)done.required);
		return 0;
	}
	return sim_fail(s, "node %llu answers read %llu nobody asked for",
			(unsigned long long)n->id,
			(unsigned long long)context);
}

int sim_machine_rebuild(struct sim *s, struct sim_node *n, uint64_t index)
{
	if (index > s->n_committed)
		return -EINVAL;
	/* The machine's state is replaced; the clients' outstanding
	 * proposals stay, and those the snapshot shows applied resolve. */
	raft_dedup_table_destroy(n->dedup);
	n->dedup = NULL;
	if (raft_dedup_table_create(NULL, &n->dedup) != 0)
		return -ENOMEM;
	if (n->effects)
		memset(n->effects, 0, n->cap_effects);
	for (uint64_t i = 1; i <= index; i++) {
		const struct sim_committed *c = &s->committed[i - 1];
		struct sim_entry e = {.term = c->term,
				      .type = c->type,
				      .size = c->size,
				      .data = c->data,
				      .chain = c->chain};
		int rc = sim_machine_apply(s, n, i, &e);
		if (rc != 0)
			return rc;
	}
	n->applied = index;
	n->applied_chain = index ? s->committed[index - 1].chain : 0;
	return 0;
}
