/*
 * The update: what the core accumulated between two raft_update_get calls —
 * hard state and log changes to persist, messages to send now or after
 * persistence, the new apply index, answered reads — and the arena that
 * holds its memory until raft_update_done.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

static int grow(struct raft *r, void **array, uint32_t *cap, size_t elem)
{
	uint32_t n = *cap ? *cap * 2 : 16;
	void *p = raft_mem_realloc(r, *array, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = n;
	return 0;
}

void *raft_arena_alloc(struct raft *r, size_t size)
{
	if (r->n_arena == r->cap_arena &&
	    grow(r, (void **)&r->arena, &r->cap_arena, sizeof(void *)) != 0)
		return NULL;
	void *p = raft_mem_alloc(r, size ? size : 1);
	if (!p)
		return NULL;
	r->arena[r->n_arena++] = p;
	return p;
}

static int queue_message(struct raft *r, struct raft_message **queue,
			 uint32_t *n, uint32_t *cap, const struct raft_message *m)
{
	if (*n == *cap && grow(r, (void **)queue, cap, sizeof(*m)) != 0)
		return -ENOMEM;
	(*queue)[(*n)++] = *m;
	return 0;
}

int raft_send(struct raft *r, const struct raft_message *m)
{
	return queue_message(r, &r->out, &r->n_out, &r->cap_out, m);
}

int raft_send_after_persist(struct raft *r, const struct raft_message *m)
{
	return queue_message(r, &r->out_after, &r->n_out_after,
			     &r->cap_out_after, m);
}

int raft_send_as_leader(struct raft *r, const struct raft_message *m)
{
	/* A leader's messages show its term. Usually that term was durable
	 * before its vote requests went out; a lone voter wins without any,
	 * so until an entry of the term (its no-op, written in the same
	 * batch as the term) is durable, they wait for persistence. */
	if (raft_log_term(&r->log, r->persisted) != r->term)
		return raft_send_after_persist(r, m);
	return raft_send(r, m);
}

int raft_pending_add(struct raft *r, const struct raft_entry *e)
{
	if (r->n_pending == r->cap_pending &&
	    grow(r, (void **)&r->pending, &r->cap_pending, sizeof(*e)) != 0)
		return -ENOMEM;
	r->pending[r->n_pending++] = *e;
	return 0;
}

void raft_pending_truncate(struct raft *r, uint64_t index)
{
	/* Entries not handed out yet simply disappear; entries the caller
	 * already has (persisted or being persisted) must be deleted from its
	 * log, before this update's appends. */
	while (r->n_pending > 0 && r->pending[r->n_pending - 1].index >= index)
		r->n_pending--;
	uint64_t handed_last = raft_log_last_index(&r->log) - r->n_pending;
	if (index <= handed_last) {
		if (r->truncate_from == 0 || index < r->truncate_from)
			r->truncate_from = index;
	}
	if (r->persisted >= index)
		r->persisted = index - 1;
}

int raft_read_state_add(struct raft *r, uint64_t context, uint64_t index)
{
	if (r->n_reads == r->cap_reads &&
	    grow(r, (void **)&r->reads, &r->cap_reads, sizeof(*r->reads)) != 0)
		return -ENOMEM;
	r->reads[r->n_reads].context = context;
	r->reads[r->n_reads].index = index;
	r->n_reads++;
	return 0;
}

int raft_snapshot_send_add(struct raft *r, uint64_t peer)
{
	if (r->n_snap_sends == r->cap_snap_sends &&
	    grow(r, (void **)&r->snap_sends, &r->cap_snap_sends,
		 sizeof(*r->snap_sends)) != 0)
		return -ENOMEM;
	r->snap_sends[r->n_snap_sends].peer = peer;
	r->snap_sends[r->n_snap_sends].meta = r->log.snapshot;
	r->n_snap_sends++;
	return 0;
}

static uint64_t apply_limit(const struct raft *r)
{
	return r->commit < r->persisted ? r->commit : r->persisted;
}

bool raft_has_update(struct raft *r)
{
	if (r->update_out)
		return false;
	/* Queue what the followers may receive now, so it is counted. */
	if (r->state == RAFT_LEADER)
		(void)raft_flush_appends(r);
	return r->hs_dirty || r->truncate_from != 0 || r->n_pending > 0 ||
	       r->n_out > 0 || r->n_out_after > 0 || r->n_reads > 0 ||
	       r->install_pending || r->n_snap_sends > 0 ||
	       apply_limit(r) > r->applied_hint;
}

int raft_update_get(struct raft *r, struct raft_update *u)
{
	memset(u, 0, sizeof(*u));
	if (r->update_out)
		return -EINVAL;
	if (r->state == RAFT_LEADER) {
		int rc = raft_flush_appends(r);
		if (rc != 0)
			return rc;
	}
	u->hard_state_changed = r->hs_dirty;
	u->hard_state.term = r->term;
	u->hard_state.vote = r->vote;
	u->truncate_from = r->truncate_from;
	u->n_entries = r->n_pending;
	u->entries = r->pending;
	u->n_messages = r->n_out;
	u->messages = r->out;
	u->n_messages_after_persist = r->n_out_after;
	u->messages_after_persist = r->out_after;
	u->n_read_states = r->n_reads;
	u->read_states = r->reads;
	u->install_snapshot = r->install_pending ? &r->install_meta : NULL;
	u->n_snapshot_sends = r->n_snap_sends;
	u->snapshot_sends = r->snap_sends;
	uint64_t limit = apply_limit(r);
	if (limit > r->applied_hint) {
		u->apply_index = limit;
		r->applied_hint = limit;
	}
	r->update_out = true;
	return 0;
}

void raft_update_done(struct raft *r, struct raft_update *u)
{
	(void)u;
	r->hs_dirty = false;
	r->truncate_from = 0;
	r->n_pending = 0;
	r->n_out = 0;
	r->n_out_after = 0;
	r->n_reads = 0;
	r->n_snap_sends = 0;
	r->install_pending = false;
	for (uint32_t i = 0; i < r->n_arena; i++)
		raft_mem_free(r, r->arena[i]);
	r->n_arena = 0;
	r->update_out = false;
}
