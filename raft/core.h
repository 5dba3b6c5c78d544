#ifndef RAFT_CORE_H
#define RAFT_CORE_H

/*
 * Private to raft/: the state of one node of the consensus core and the
 * functions its files share. Everything here runs on the one thread that
 * owns the struct raft; nothing here does I/O.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* ---- allocation (alloc.c) ---- */

void *raft_mem_alloc(struct raft *r, size_t size);
void *raft_mem_realloc(struct raft *r, void *ptr, size_t size);
void raft_mem_free(struct raft *r, void *ptr);

/* ---- seeded randomness (random.c) ---- */

struct raft_random {
	uint64_t state;
};

void raft_random_seed(struct raft_random *g, uint64_t seed);
uint64_t raft_random_next(struct raft_random *g);
/* Uniform in [lo, hi). */
uint64_t raft_random_range(struct raft_random *g, uint64_t lo, uint64_t hi);

/* ---- the log's metadata (log.c) ---- */

/* What the core keeps of an entry: payloads stay with the caller. */
struct log_meta {
	uint64_t term;
	uint32_t size;
	uint8_t type;
};

/* A configuration entry still in the log, kept whole for rollback. */
struct log_conf {
	uint64_t index;
	struct raft_configuration conf;
	uint8_t *encoded; /* the entry's payload, owned */
	uint32_t encoded_size;
};

struct raft_log {
	uint64_t compact_index; /* entries start after it */
	uint64_t compact_term;
	struct log_meta *metas; /* metas[start + i] is index compact_index+1+i */
	size_t start;
	size_t n;
	size_t cap;
	struct log_conf *confs; /* in index order, only those in the log */
	size_t n_confs;
	size_t cap_confs;
	struct raft_snapshot_meta snapshot; /* its configuration */
};

void raft_log_init(struct raft_log *log);
void raft_log_release(struct raft *r, struct raft_log *log);
uint64_t raft_log_last_index(const struct raft_log *log);
uint64_t raft_log_last_term(const struct raft_log *log);
uint64_t raft_log_first_index(const struct raft_log *log);
/* Term at index: the snapshot's term at compact_index, 0 outside. */
uint64_t raft_log_term(const struct raft_log *log, uint64_t index);
const struct log_meta *raft_log_meta(const struct raft_log *log,
				     uint64_t index);
/* Append one entry at last + 1; CONFIG entries are decoded and kept. */
int raft_log_append(struct raft *r, struct raft_log *log, uint64_t term,
		    uint8_t type, uint32_t size, const void *data);
/* Delete entries >= index (index > compact_index). */
void raft_log_truncate(struct raft *r, struct raft_log *log, uint64_t index);
/* The latest configuration in the log (or the snapshot's), and its index. */
const struct raft_configuration *raft_log_conf(const struct raft_log *log,
					       uint64_t *index);
/* The payload of the CONFIG entry at index, NULL if there is none. */
const uint8_t *raft_log_conf_payload(const struct raft_log *log,
				     uint64_t index);
/* Forget entries up to index (compaction), keeping the term of index. */
void raft_log_compact(struct raft *r, struct raft_log *log, uint64_t index);
/* Drop every entry: the log starts after the snapshot meta describes. */
void raft_log_reset(struct raft *r, struct raft_log *log,
		    const struct raft_snapshot_meta *meta);
/* The configuration in force at index (index >= compact_index). */
const struct raft_configuration *raft_log_conf_at(const struct raft_log *log,
						  uint64_t index,
						  uint64_t *conf_index);
/* Largest index <= index whose term is <= term (fast backtracking). */
uint64_t raft_log_find_conflict_by_term(const struct raft_log *log,
					uint64_t index, uint64_t term);
/* Whether (index, term) is at least as up to date as our last (§5.4.1). */
bool raft_log_is_up_to_date(const struct raft_log *log, uint64_t index,
			    uint64_t term);

/* ---- quorum arithmetic (quorum.c), pure functions ---- */

/* The largest index that a majority of the n values reach. */
uint64_t raft_quorum_committed_index(const uint64_t *match, size_t n);
enum raft_vote_result {
	RAFT_VOTE_PENDING = 0,
	RAFT_VOTE_WON = 1,
	RAFT_VOTE_LOST = 2,
};
enum raft_vote_result raft_quorum_vote_result(size_t voters, size_t granted,
					      size_t rejected);

/* ---- per-follower progress (progress.c) ---- */

struct inflight {
	uint64_t last; /* last index the message carried */
	uint64_t bytes;
};

struct progress {
	uint64_t id;
	bool voter;
	uint8_t state; /* enum raft_progress_state */
	uint64_t match;
	uint64_t next;
	bool probe_sent; /* probe: one AppendEntries outstanding */
	bool recent_active; /* heard from since the last quorum check */
	bool need_append; /* send an AppendEntries even if empty */
	uint64_t sent_commit; /* highest commit index sent to it */
	/* Ring of messages in flight (replicate state). */
	struct inflight *ring;
	uint32_t ring_cap;
	uint32_t ring_start;
	uint32_t ring_count;
	uint64_t ring_bytes;
	/* Votes (candidate). */
	bool vote_answered;
	bool vote_granted;
	/* ReadIndex: the latest heartbeat round it answered (leader). */
	uint64_t acked_round;
	/* Snapshot state: the index of the snapshot being streamed. */
	uint64_t pending_snapshot;
	/* Learner catch-up rounds (membership.c). */
	uint64_t catchup_target; /* the leader's last index when it began */
	uint64_t catchup_start;  /* r->ticks then */
};

int raft_progress_init(struct raft *r, struct progress *pr, uint64_t id,
		       bool voter, uint64_t next);
void raft_progress_release(struct raft *r, struct progress *pr);
void raft_progress_become_probe(struct progress *pr);
void raft_progress_become_replicate(struct progress *pr);
void raft_progress_become_snapshot(struct progress *pr, uint64_t index);
bool raft_progress_inflight_full(const struct raft *r,
				 const struct progress *pr);
void raft_progress_inflight_add(struct progress *pr, uint64_t last,
				uint64_t bytes);
void raft_progress_inflight_free_to(struct progress *pr, uint64_t index);
void raft_progress_inflight_free_first(struct progress *pr);

/* ---- read requests (read_index.c) ---- */

struct read_request {
	uint64_t context; /* the requester's id for it */
	uint64_t from;    /* the follower that forwarded it; 0: local */
	uint64_t index;   /* read index; 0 until an entry of the term commits */
	uint64_t round;   /* leader: the first round that may confirm it */
};

/* ---- the node ---- */

struct raft {
	struct raft_options opts;
	uint64_t id;

	/* Persistent state (§5, Figure 2). */
	uint64_t term;
	uint64_t vote;
	struct raft_log log;

	/* Volatile state. */
	uint8_t state; /* enum raft_state */
	bool passive;  /* opts.passive until a snapshot is handed to it */
	uint64_t leader;
	uint64_t commit;
	uint64_t persisted; /* highest index durable in the caller's log */
	uint64_t applied_hint; /* highest apply_index handed out */
	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint64_t ticks; /* ticks since this node started leading */
	uint32_t randomized_timeout;
	struct raft_random rng;
	bool restoring;
	uint64_t restore_skipped; /* restore: last entry skipped (tail) */
	bool has_state; /* bootstrapped, restored or told anything */

	/* Progress of every member but this one (leader; votes as
	 * candidate). Rebuilt when the configuration changes. */
	struct progress *peers;
	uint32_t n_peers;
	uint64_t uncommitted_bytes; /* leader: payload bytes above commit */

	/* ReadIndex (thesis §6.4). A leader's requests wait for an entry of
	 * its term to commit and for a heartbeat round that started after
	 * they arrived to reach a majority; a follower's requests wait for
	 * the leader's answer. */
	struct read_request *read_reqs;
	uint32_t n_read_reqs;
	uint32_t cap_read_reqs;
	uint64_t read_round;       /* leader: the last round started */
	bool read_round_wanted;    /* leader: start a round at the next flush */

	/* Leadership transfer (thesis §3.10), leader only. */
	uint64_t transfer_target;  /* 0: none */
	uint32_t transfer_elapsed; /* ticks since it started */
	bool timeout_now_sent;

	/* The update being accumulated. */
	bool hs_dirty;
	uint64_t truncate_from;
	struct raft_entry *pending; /* entries not yet handed out */
	uint32_t n_pending;
	uint32_t cap_pending;
	struct raft_message *out; /* send now */
	uint32_t n_out;
	uint32_t cap_out;
	struct raft_message *out_after; /* send after persistence */
	uint32_t n_out_after;
	uint32_t cap_out_after;
	struct raft_read_state *reads;
	uint32_t n_reads;
	uint32_t cap_reads;
	struct raft_snapshot_send *snap_sends;
	uint32_t n_snap_sends;
	uint32_t cap_snap_sends;
	bool install_pending; /* install_meta goes out with the update */
	struct raft_snapshot_meta install_meta;
	/* Allocations that live until raft_update_done. */
	void **arena;
	uint32_t n_arena;
	uint32_t cap_arena;
	bool update_out; /* handed out and not done yet */

	/* Snapshot of the last state raft_check_invariants saw. */
	struct {
		bool valid;
		uint64_t term;
		uint64_t vote;
		uint64_t commit;
		uint8_t state;
		uint64_t last_index;
		uint64_t last_term;
	} seen;
};

/* update.c: queue outgoing messages; entries are copied into the arena. */
int raft_send(struct raft *r, const struct raft_message *m);
int raft_send_after_persist(struct raft *r, const struct raft_message *m);
/* The leader's AppendEntries, heartbeats, TimeoutNow: at once once its term
 * is known durable, after persistence before that. */
int raft_send_as_leader(struct raft *r, const struct raft_message *m);
void *raft_arena_alloc(struct raft *r, size_t size);
/* Record entries to persist (appended to the log already). */
int raft_pending_add(struct raft *r, const struct raft_entry *e);
/* Keep pending and storage consistent with a truncation at index. */
void raft_pending_truncate(struct raft *r, uint64_t index);
int raft_read_state_add(struct raft *r, uint64_t context, uint64_t index);
int raft_snapshot_send_add(struct raft *r, uint64_t peer);

/* node.c */
struct progress *raft_peer(struct raft *r, uint64_t id);
int raft_peers_rebuild(struct raft *r);
bool raft_is_voter(const struct raft *r, uint64_t id);
size_t raft_voter_count(const struct raft *r);
void raft_set_term(struct raft *r, uint64_t term, uint64_t leader);
void raft_reset_election_timer(struct raft *r);
/* Append entries to the log as the leader and queue their persistence. */
int raft_leader_append(struct raft *r, uint8_t type, const void *const *data,
		       const uint32_t *sizes, uint32_t n);

/* election.c */
void raft_become_follower(struct raft *r, uint64_t term, uint64_t leader);
int raft_become_leader(struct raft *r);
int raft_campaign(struct raft *r, bool pre_vote, bool transfer);
int raft_tick_election(struct raft *r);
int raft_handle_vote(struct raft *r, const struct raft_message *m);
int raft_handle_vote_resp(struct raft *r, const struct raft_message *m);
/* Whether this node heard a leader within the election timeout and should
 * therefore ignore disruptive vote requests (thesis §4.2.3). */
bool raft_in_lease(const struct raft *r);

/* replication.c */
int raft_handle_append(struct raft *r, const struct raft_message *m);
int raft_handle_append_resp(struct raft *r, const struct raft_message *m);
int raft_handle_heartbeat(struct raft *r, const struct raft_message *m);
int raft_handle_heartbeat_resp(struct raft *r, const struct raft_message *m);
int raft_handle_propose(struct raft *r, const struct raft_message *m);
int raft_handle_snapshot(struct raft *r, const struct raft_message *m);
int raft_tick_leader(struct raft *r);
/* Advance commit from the voters' match indexes (Figure 8 rule). */
bool raft_maybe_commit(struct raft *r);
/* Send what each follower may receive now. */
int raft_flush_appends(struct raft *r);
int raft_broadcast_heartbeat(struct raft *r);

/* membership.c */
bool raft_is_member(const struct raft *r, uint64_t id);
bool raft_is_removed(const struct raft *r, uint64_t id);
/* Whether this node may start elections (a voter, or a voter of the
 * committed configuration while a newer one without it is pending). */
bool raft_may_campaign(const struct raft *r);
int raft_membership_check_learner(struct raft *r, struct progress *pr);
int raft_membership_after_commit(struct raft *r);

/* read_index.c */
int raft_handle_read_index(struct raft *r, const struct raft_message *m);
int raft_handle_read_index_resp(struct raft *r, const struct raft_message *m);
/* A heartbeat answer confirmed a round; reads may complete. */
int raft_reads_advance(struct raft *r);
/* Leadership lost or leader changed: every pending read fails (unknown). */
int raft_reads_fail_all(struct raft *r);
/* Whether a read round should start now (reads wait for a round started
 * after they arrived, and few enough rounds are out). */
bool raft_read_round_due(const struct raft *r);
/* Whether an entry of the leader's term is committed. */
bool raft_committed_in_term(const struct raft *r);

/* transfer.c */
int raft_handle_timeout_now(struct raft *r, const struct raft_message *m);
/* Send TimeoutNow if the target is caught up. */
int raft_transfer_maybe_send(struct raft *r);
void raft_transfer_abort(struct raft *r);

/* Deliberate bugs compiled only into test builds. */
#ifdef RAFT_TEST_BUGS
#define RAFT_BUG(r, bug) (((r)->opts.test_bugs & (bug)) != 0)
#else
#define RAFT_BUG(r, bug) ((void)(r), false)
#endif

#endif
