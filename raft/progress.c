/*
 * Per-follower replication progress, after etcd's tracker/progress.go:
 *
 *   probe      the leader does not know where the follower's log matches;
 *              it sends one AppendEntries and waits for the answer (or the
 *              next heartbeat) before sending another.
 *   replicate  the follower is known to match up to `match`; the leader
 *              streams entries optimistically (next advances as it sends),
 *              bounded by a window of messages and bytes in flight.
 *   snapshot   the follower needs a snapshot (Raft III).
 *
 * Invariants: match < next; in probe state nothing is in flight.
 */
#include <errno.h>
#include <string.h>

#include "raft/core.h"

int raft_progress_init(struct raft *r, struct progress *pr, uint64_t id,
		       bool voter, uint64_t next)
{
	memset(pr, 0, sizeof(*pr));
	pr->id = id;
	pr->voter = voter;
	pr->state = RAFT_PROGRESS_PROBE;
	pr->next = next;
	pr->ring_cap = r->opts.max_inflight_msgs;
	pr->ring = raft_mem_alloc(r, pr->ring_cap * sizeof(*pr->ring));
	if (!pr->ring)
		return -ENOMEM;
	return 0;
}

void raft_progress_release(struct raft *r, struct progress *pr)
{
	raft_mem_free(r, pr->ring);
	pr->ring = NULL;
}

static void inflight_reset(struct progress *pr)
{
	pr->ring_start = 0;
	pr->ring_count = 0;
	pr->ring_bytes = 0;
}

void raft_progress_become_probe(struct progress *pr)
{
	pr->state = RAFT_PROGRESS_PROBE;
	pr->probe_sent = false;
	pr->next = pr->match + 1;
	inflight_reset(pr);
}

void raft_progress_become_replicate(struct progress *pr)
{
	pr->state = RAFT_PROGRESS_REPLICATE;
	pr->probe_sent = false;
	pr->next = pr->match + 1;
	inflight_reset(pr);
}

void raft_progress_become_snapshot(struct progress *pr, uint64_t index)
{
	pr->state = RAFT_PROGRESS_SNAPSHOT;
	pr->pending_snapshot = index;
	pr->probe_sent = false;
	pr->need_append = false;
	inflight_reset(pr);
}

bool raft_progress_inflight_full(const struct raft *r,
				 const struct progress *pr)
{
	return pr->ring_count >= pr->ring_cap ||
	       (pr->ring_count > 0 &&
		pr->ring_bytes >= r->opts.max_inflight_bytes);
}

void raft_progress_inflight_add(struct progress *pr, uint64_t last,
				uint64_t bytes)
{
	/* Callers check inflight_full first. */
	uint32_t slot = (pr->ring_start + pr->ring_count) % pr->ring_cap;
	pr->ring[slot].last = last;
	pr->ring[slot].bytes = bytes;
	pr->ring_count++;
	pr->ring_bytes += bytes;
}

void raft_progress_inflight_free_to(struct progress *pr, uint64_t index)
{
	while (pr->ring_count > 0 && pr->ring[pr->ring_start].last <= index) {
		pr->ring_bytes -= pr->ring[pr->ring_start].bytes;
		pr->ring_start = (pr->ring_start + 1) % pr->ring_cap;
		pr->ring_count--;
	}
}

void raft_progress_inflight_free_first(struct progress *pr)
{
	if (pr->ring_count == 0)
		return;
	raft_progress_inflight_free_to(pr, pr->ring[pr->ring_start].last);
}
