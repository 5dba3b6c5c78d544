#ifndef RAFT_PROPOSAL_H
#define RAFT_PROPOSAL_H

/*
 * Proposal ids and the rules of the duplicate table: a pure module (libc
 * only; no threads, clock, disk or printing) shared by the fs state machine
 * and the simulator's state machine.
 *
 * A proposer (a node) numbers its commands with ids (node, epoch, seq):
 * epoch is a boot counter the node persists and raises on every start, seq
 * counts from 1 within an epoch. A proposal whose outcome is unknown (leader
 * lost, timeout) is retried with the SAME id. Each command also carries the
 * proposer's low-water mark: every seq below it (same node and epoch) has a
 * known outcome at the proposer and will never be retried. A proposal's own
 * outcome is unknown when it is sent, so low_water <= seq.
 *
 * The state machine keeps, per proposer node, a struct raft_dedup_state
 * {epoch, low_water} and the results of ids in [low_water, ...) of that
 * epoch. An incoming id is judged (raft_dedup_judge):
 *
 *   OLD_EPOCH  its epoch is older than the node's current one: the node
 *              restarted since, nobody waits for the answer; not applied
 *   EXPIRED    same epoch, seq below the low-water mark: its result was
 *              evicted; must not be applied, answered with an error
 *   DUPLICATE  a result is stored for it: answer that result, do not apply
 *   NEW        apply it and store its result
 *
 * and then the state advances (raft_dedup_advance): a newer epoch replaces
 * the state and evicts every stored result of the node; otherwise the
 * low-water mark becomes max(stored, sent) and the results of the seqs it
 * passed are evicted. Commands may reach the log out of send order, so a
 * low-water mark never moves backwards. Applying these rules in log order
 * on every replica evicts the same results everywhere.
 *
 * Encoding: big-endian, field by field, RAFT_PROPOSAL_BYTES bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct raft_proposal_id {
	uint64_t node;  /* proposer node id, non-zero */
	uint64_t epoch; /* proposer boot epoch, non-zero */
	uint64_t seq;   /* sequence within the epoch, non-zero */
};

struct raft_proposal {
	struct raft_proposal_id id;
	/* Every seq below this (same node and epoch) has a known outcome at
	 * the proposer; low_water <= id.seq. */
	uint64_t low_water;
};

/* node, epoch, seq, low_water: four big-endian u64. */
#define RAFT_PROPOSAL_BYTES 32u

/* Whether the fields obey the rules above (ids non-zero, low_water <=
 * seq). */
bool raft_proposal_is_valid(const struct raft_proposal *p);

/* Encode a valid proposal into buf (RAFT_PROPOSAL_BYTES bytes). */
void raft_proposal_encode(const struct raft_proposal *p, uint8_t *buf);

/* Decode RAFT_PROPOSAL_BYTES bytes from buf (size must be at least that)
 * and validate. Returns 0, or -EINVAL (short buffer, invalid fields). */
int raft_proposal_decode(const uint8_t *buf, size_t size,
			 struct raft_proposal *p);

/* ---------------------------------------------------------------------- */
/* The pure rules.                                                         */

/* What the state machine knows about one proposer node. A node never seen
 * has the zero state {0, 0}, older than any valid epoch. */
struct raft_dedup_state {
	uint64_t epoch;
	uint64_t low_water;
};

enum raft_dedup_verdict {
	RAFT_DEDUP_NEW = 1,
	RAFT_DEDUP_DUPLICATE = 2,
	RAFT_DEDUP_EXPIRED = 3,
	RAFT_DEDUP_OLD_EPOCH = 4,
};

/*
 * Judge a valid proposal p against the state of its node. has_result: a
 * result is stored for (p->id.node, p->id.seq); it is ignored when p's epoch
 * is newer than the state's (such results belong to the older epoch and are
 * evicted by raft_dedup_advance).
 */
enum raft_dedup_verdict raft_dedup_judge(const struct raft_dedup_state *st,
					 const struct raft_proposal *p,
					 bool has_result);

/* Stored results to evict once a proposal is seen. */
struct raft_dedup_eviction {
	bool all;      /* every stored result of the node */
	uint64_t from; /* otherwise the seqs in [from, to) */
	uint64_t to;   /* from == to: nothing */
};

/*
 * The state of p's node after p was seen, whatever the verdict (an
 * OLD_EPOCH proposal changes nothing), and the results to evict. Evict
 * BEFORE storing p's own result: p's seq is never in the evicted range, but
 * a new epoch evicts everything stored for the node.
 */
void raft_dedup_advance(const struct raft_dedup_state *st,
			const struct raft_proposal *p,
			struct raft_dedup_state *next,
			struct raft_dedup_eviction *ev);

/* Whether seq is evicted by ev. */
bool raft_dedup_evicts(const struct raft_dedup_eviction *ev, uint64_t seq);

/* Human-readable verdict, for logs and test messages. */
const char *raft_dedup_verdict_name(enum raft_dedup_verdict v);

/* ---------------------------------------------------------------------- */
/* An in-memory duplicate table (for simulators and tests).                */

/*
 * The per-node states and the stored results (small opaque byte blobs,
 * copied in). Not thread-safe: one owner. Iteration is in (node, seq)
 * order, so two tables fed the same proposals are identical.
 */
struct raft_dedup_table;

/* Create an empty table; alloc may be NULL (libc). Returns 0 or -ENOMEM. */
int raft_dedup_table_create(const struct raft_alloc *alloc,
			    struct raft_dedup_table **out);
/* Free the table and every result it holds; accepts NULL. */
void raft_dedup_table_destroy(struct raft_dedup_table *t);

/*
 * Judge p (valid). On DUPLICATE, *result and *result_size (each may be
 * NULL) describe the stored result, owned by the table and valid until the
 * next change of the table.
 */
enum raft_dedup_verdict raft_dedup_table_check(const struct raft_dedup_table *t,
					       const struct raft_proposal *p,
					       const void **result,
					       size_t *result_size);

/*
 * Record that p was seen with the given verdict (from raft_dedup_table_check
 * on the unchanged table): advances the node's state, evicts, and for NEW
 * stores a copy of result (result_size bytes, may be 0). Returns 0, or
 * -ENOMEM (the table is unchanged), -EINVAL (p invalid).
 */
int raft_dedup_table_record(struct raft_dedup_table *t,
			    const struct raft_proposal *p,
			    enum raft_dedup_verdict verdict,
			    const void *result, size_t result_size);

/* The state of a node; false (and *st zeroed) when never seen. */
bool raft_dedup_table_state(const struct raft_dedup_table *t, uint64_t node,
			    struct raft_dedup_state *st);

/* Number of results stored (all nodes). */
size_t raft_dedup_table_count(const struct raft_dedup_table *t);

/*
 * Call fn for every stored result in (node, seq) order; stops at and
 * returns the first non-zero value fn returns (0 otherwise). The table must
 * not change during the walk.
 */
int raft_dedup_table_foreach(const struct raft_dedup_table *t,
			     int (*fn)(void *ctx, uint64_t node, uint64_t epoch,
				       uint64_t seq, const void *result,
				       size_t result_size),
			     void *ctx);

#endif
