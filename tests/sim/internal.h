#ifndef TESTS_SIM_INTERNAL_H
#define TESTS_SIM_INTERNAL_H

/* Private to tests/sim: the simulator's state, shared by its files. */

#include <stdio.h>

#include "raft/proposal.h"
#include "tests/sim/sim.h"

/* An entry as a node's disk or memory holds it: payload owned. */
struct sim_entry {
	uint64_t term;
	uint8_t type;
	uint32_t size;
	uint8_t *data;
	uint64_t chain; /* hash of every entry up to and including this one */
};

struct sim_log {
	struct sim_entry *e; /* e[i] is index offset + 1 + i */
	uint64_t n;
	uint64_t cap;
	uint64_t offset;       /* entries up to here were compacted */
	uint64_t offset_term;
	uint64_t offset_chain;
};

/* A snapshot on a node's disk: metadata and the chain of the log prefix
 * whose state it holds. */
struct sim_snapshot {
	struct raft_snapshot_meta meta;
	uint64_t chain;
};

/* A write handed to the disk and not yet durable. */
struct sim_write {
	uint64_t seq;
	uint64_t due_us;
	bool hs_changed;
	struct raft_hard_state hs;
	bool install; /* replace the log by this snapshot first */
	struct sim_snapshot snap;
	uint64_t truncate_from;
	struct sim_entry *entries; /* owned copies */
	uint32_t n_entries;
	uint64_t first_index;
	struct sim_msg **after; /* messages released when durable */
	uint32_t n_after;
	struct sim_write *next;
};

/* A message on the wire: a deep copy, payloads owned. */
struct sim_msg {
	struct raft_message m;
	struct raft_entry *entries;
	struct raft_snapshot_meta snapshot;
};

/* A client proposal waiting for its outcome (applied, or retried with the
 * same id). */
struct sim_pending {
	uint64_t cmd;
	uint64_t seq;
	uint64_t sent_us;
	uint32_t attempts; /* sends so far; the retry delay doubles */
	uint8_t payload[64];
	uint32_t size;
};

/* A read waiting for its read index. */
struct sim_read {
	uint64_t context;
	uint64_t required; /* what was committed when it was invoked */
	uint64_t invoked_us;
};

#define SIM_MAX_PENDING 1024u

struct sim_node {
	uint64_t id;
	bool up;
	bool paused;
	struct raft *raft;
	/* The disk: what survives a crash. */
	struct raft_hard_state disk_hs;
	struct sim_log disk_log;
	struct sim_snapshot disk_snap; /* meta.index 0: none */
	/* What the node has written, durable or not (its view of its log). */
	struct sim_log mem_log;
	struct sim_write *writes; /* FIFO, oldest first */
	struct sim_write *writes_tail;
	uint64_t write_seq;
	uint64_t applied;
	uint64_t applied_chain;
	/* The state machine: the duplicate table and how often each command
	 * took effect (exactly once is the contract). */
	struct raft_dedup_table *dedup;
	uint8_t *effects; /* [cmd] */
	uint64_t cap_effects;
	/* The node's clients: proposals with unknown outcome, reads. */
	uint64_t epoch;
	uint64_t next_seq;
	struct sim_pending pending[SIM_MAX_PENDING];
	uint32_t n_pending;
	struct sim_read *reads;
	uint32_t n_reads;
	uint32_t cap_reads;
	uint64_t max_term_sent; /* externally visible terms */
	uint64_t boot;          /* restarts so far */
	uint64_t next_tick_us;
	uint8_t last_state;
	uint64_t last_state_term;
	/* As a leader: the configurations in force now and before, and the
	 * commit index last checked against them. */
	struct raft_configuration conf_now;
	struct raft_configuration conf_before;
	uint64_t quorum_checked;
};

enum sim_event_type {
	EV_TICK = 1,
	EV_DELIVER = 2,
	EV_SYNC = 3,
	EV_SNAPSHOT = 4, /* a snapshot transfer ends */
};

struct sim_event {
	uint64_t at_us;
	uint64_t seq; /* tie-break: FIFO among equal times */
	uint8_t type;
	uint64_t node;
	uint64_t boot; /* events of a previous life of the node are void */
	struct sim_msg *msg;
	struct sim_transfer *transfer;
};

/* Per index: what the cluster committed there (first node to commit it),
 * with the payload, so a snapshot's state can be rebuilt. */
struct sim_committed {
	uint64_t term;
	uint64_t chain;
	uint8_t type;
	uint32_t size;
	uint8_t *data;
};

/* A snapshot being streamed from a leader to a follower. */
struct sim_transfer {
	uint64_t from;
	uint64_t to;
	uint64_t from_boot;
	uint64_t to_boot;
	uint64_t term;
	struct raft_snapshot_meta meta;
};

struct sim {
	struct sim_config cfg;
	uint64_t now_us;
	uint64_t event_seq;
	uint64_t rng;
	struct sim_net net;
	uint32_t disk_min_us;
	uint32_t disk_max_us;
	bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
	struct sim_node nodes[SIM_MAX_NODES + 1]; /* 1-based */
	/* Event heap. */
	struct sim_event *heap;
	size_t n_heap;
	size_t cap_heap;
	/* Checker state. */
	uint64_t *leader_of_term; /* by term */
	uint64_t n_terms;
	uint64_t (*votes)[SIM_MAX_NODES + 1]; /* [term][voter] = candidate */
	uint64_t n_vote_terms;
	struct sim_committed *committed; /* [index - 1] */
	uint64_t n_committed;
	uint64_t cap_committed;
	uint64_t *cmd_index; /* [cmd] = index first applied at */
	uint64_t n_cmds;
	uint64_t next_cmd;
	uint64_t next_read;
	char violation[512];
	bool failed;
	/* Trace ring. */
	char (*trace)[160];
	uint32_t trace_pos;
	uint32_t trace_count;
	bool verbose;
	struct sim_stats stats;
};

/* log.c */
uint64_t sim_log_last(const struct sim_log *log);
const struct sim_entry *sim_log_get(const struct sim_log *log, uint64_t index);
bool sim_log_chain_at(const struct sim_log *log, uint64_t index,
		      uint64_t *chain, uint64_t *term);
void sim_log_free(struct sim_log *log);
void sim_log_truncate(struct sim_log *log, uint64_t from);
void sim_log_append(struct sim_log *log, uint64_t term, uint8_t type,
		    const void *data, uint32_t size);
void sim_log_copy(struct sim_log *dst, const struct sim_log *src);
void sim_log_compact(struct sim_log *log, uint64_t upto);
void sim_log_reset(struct sim_log *log, uint64_t offset, uint64_t term,
		   uint64_t chain);

/* cluster.c */
uint64_t sim_rand(struct sim *s);
uint64_t sim_rand_range(struct sim *s, uint64_t lo, uint64_t hi);
void sim_trace(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int sim_fail(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
uint64_t sim_chain(uint64_t prev, uint64_t term, uint8_t type,
		   const uint8_t *data, uint32_t size);

/* machine.c */
int sim_machine_reset(struct sim *s, struct sim_node *n);
void sim_machine_release(struct sim_node *n);
int sim_machine_apply(struct sim *s, struct sim_node *n, uint64_t index,
		      const struct sim_entry *e);
/* Rebuild a node's state machine as of index from the cluster's committed
 * entries (what installing a snapshot of that index gives). */
int sim_machine_rebuild(struct sim *s, struct sim_node *n, uint64_t index);
int sim_client_propose(struct sim *s, struct sim_node *n, uint64_t *cmd);
int sim_client_retry(struct sim *s, struct sim_node *n);
int sim_read_start(struct sim *s, struct sim_node *n);
int sim_read_answer(struct sim *s, struct sim_node *n, uint64_t context,
		    uint64_t index);

/* checker.c */
int sim_check_node(struct sim *s, struct sim_node *n);
int sim_check_sent(struct sim *s, struct sim_node *n,
		   const struct raft_message *m);
int sim_check_apply(struct sim *s, struct sim_node *n, uint64_t index,
		    const struct sim_entry *e);
int sim_check_restart(struct sim *s, struct sim_node *n);
/* A leader appends configuration entry e at index: one change at a time. */
int sim_check_conf_append(struct sim *s, struct sim_node *n, uint64_t index,
			  const struct raft_entry *e);
void sim_checker_release(struct sim *s);

#endif
