#ifndef TESTS_SIM_SIM_H
#define TESTS_SIM_SIM_H

/*
 * The deterministic cluster simulator: 1-7 nodes of the real Raft core in
 * virtual time, a network that delays, drops, duplicates and reorders
 * messages and can be cut (both ways or one way), disks whose writes become
 * durable only after a simulated sync (a crash loses the rest), and client
 * proposals. Everything follows from the seed.
 *
 * After every event the simulator checks each touched node's invariants
 * (raft_check_invariants) and the cluster's safety properties (checker.c):
 * one leader per term, one vote per node per term, log matching, leader
 * completeness, state machine safety, terms never going back across
 * restarts. A violation stops the run with a message and the recent trace.
 *
 * Used by the random runs (tests/sim/main.c, `make sim`) and by the scenario
 * tests (tests/raft/test_scenarios.c), which drive it step by step.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_MAX_NODES 7

/* Virtual time is in microseconds. */
#define SIM_TICK_US 10000u

struct sim;

/* splitmix64: the simulator's (and its drivers') seeded generator. */
uint64_t sim_splitmix(uint64_t *state);

struct sim_config {
	uint32_t nodes;     /* 1..SIM_MAX_NODES */
	uint32_t voters;    /* the first this many form the cluster (0: all);
			       the others start empty, waiting to be added */
	uint64_t seed;
	uint32_t election_ticks;
	uint32_t heartbeat_ticks;
	uint32_t test_bugs; /* RAFT_BUG_* (only in the test-bugs build) */
	bool pre_vote;
	bool check_quorum;
	uint32_t trace_lines; /* recent events kept for a failure report */
	uint64_t max_batch_bytes;
	uint32_t max_inflight_msgs;
	bool manual_promote; /* learners wait for sim_change(PROMOTE) */
	/* Test-only: the state machine ignores the duplicate table, so a
	 * retried proposal takes effect twice (the check must catch it). */
	bool dedup_off;
	/* Client proposals whose outcome is unknown after this long are
	 * retried with the same id. */
	uint64_t retry_us;
	/* Each node snapshots when it applied this many entries since its
	 * last snapshot (0: never), keeping snapshot_tail entries. */
	uint64_t snapshot_every;
	uint64_t snapshot_tail;
	/* Snapshot transfers take this long (a random share of it). */
	uint64_t snapshot_transfer_us;
};

void sim_config_default(struct sim_config *c, uint32_t nodes, uint64_t seed);

/* Create a cluster; every node bootstraps the same configuration. */
int sim_create(const struct sim_config *c, struct sim **out);
void sim_destroy(struct sim *s);

/* ---- the network ---- */

struct sim_net {
	uint32_t min_delay_us;
	uint32_t max_delay_us; /* delays vary, so messages reorder */
	uint32_t drop_permille;
	uint32_t dup_permille;
};

void sim_set_net(struct sim *s, const struct sim_net *net);
/* Cut or restore the link from a to b (one way). Ids are 1-based. */
void sim_cut(struct sim *s, uint64_t from, uint64_t to, bool cut);
/* Cut every link between the group (bitmask of ids, bit id-1) and the
 * rest, both ways. */
void sim_partition(struct sim *s, uint32_t group);
void sim_heal(struct sim *s);

/* ---- disks ---- */

/* Sync latency range; writes are durable only once synced. */
void sim_set_disk(struct sim *s, uint32_t min_us, uint32_t max_us);

/* ---- nodes ---- */

int sim_crash(struct sim *s, uint64_t id);   /* unsynced writes are lost */
int sim_restart(struct sim *s, uint64_t id); /* recover from the disk */
bool sim_is_up(const struct sim *s, uint64_t id);
struct raft *sim_raft(struct sim *s, uint64_t id);
/* Index of the last entry this node applied. */
uint64_t sim_applied(const struct sim *s, uint64_t id);
/* Stop a node's clock (its ticks) without crashing it, or start it. */
void sim_pause(struct sim *s, uint64_t id, bool paused);
bool sim_is_paused(const struct sim *s, uint64_t id);

/* ---- clients ---- */

/* Propose a new unique command at node id; returns 0 or the core's error.
 * *cmd (may be NULL) gets the command's number for sim_cmd_applied_index. */
int sim_propose(struct sim *s, uint64_t id, uint64_t *cmd);
/* Start a linearizable read (ReadIndex) at node id; the result is checked
 * when it arrives: its read index must cover everything committed before
 * the read was invoked. Returns 0 or the core's error. */
int sim_read(struct sim *s, uint64_t id);
/* Node id snapshots its state now, keeping tail entries (0 or an error). */
int sim_snapshot(struct sim *s, uint64_t id, uint64_t tail);
/* Membership changes through the leader (raft_change_membership). */
int sim_change(struct sim *s, enum raft_change change, uint64_t id);
/* Whether id is a voter or learner of the leader's configuration (of any
 * up node's, when there is no leader). */
bool sim_is_member(const struct sim *s, uint64_t id);
/* Whether id was ever in the leader's configuration (member or tombstone). */
bool sim_was_member(const struct sim *s, uint64_t id);
/* Whether id is a voter of the leader's configuration, and how many. */
bool sim_is_voter(const struct sim *s, uint64_t id);
uint32_t sim_voter_count(const struct sim *s);
/* Whether id is a learner of the leader's configuration. */
bool sim_is_learner(const struct sim *s, uint64_t id);
/* Voters and learners of the leader's configuration. */
uint32_t sim_member_count(const struct sim *s);
/* Ask the leader to hand leadership to target (0: the best voter). */
int sim_transfer(struct sim *s, uint64_t target);
/* The index at which command cmd was first applied anywhere, 0 if never. */
uint64_t sim_cmd_applied_index(const struct sim *s, uint64_t cmd);

/* ---- running ---- */

/* Process the next event. Returns 0, or -EFAULT on a violation, -ENOENT when
 * nothing is scheduled. */
int sim_step(struct sim *s);
/* Run until virtual time passes us microseconds from now. */
int sim_run_for(struct sim *s, uint64_t us);
/* Run until pred holds (checked after each event) or the time budget is
 * spent; returns 0 when it held, -ETIMEDOUT otherwise, -EFAULT on a
 * violation. */
int sim_run_until(struct sim *s, bool (*pred)(struct sim *s, void *arg),
		  void *arg, uint64_t max_us);

uint64_t sim_now(const struct sim *s);
uint64_t sim_events(const struct sim *s);
/* The id of the leader with the highest term among up nodes, 0 if none. */
uint64_t sim_leader(const struct sim *s);
/* Whether every up member has applied the same index, at least min_index. */
bool sim_converged(const struct sim *s, uint64_t min_index);

/* Report a violation found by a check outside the simulator (a scenario's
 * own property); the run stops as for any other. Returns -EFAULT. */
int sim_report(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Number of nodes in the cluster. */
uint32_t sim_nodes(const struct sim *s);

/* The first violation, or NULL. */
const char *sim_violation(const struct sim *s);
/* Write the recent trace to stderr. */
void sim_dump_trace(const struct sim *s);
/* Print every event as it happens (debugging). */
void sim_set_verbose(struct sim *s, bool verbose);

/* Counters for the run's report. */
struct sim_stats {
	uint64_t events;
	uint64_t messages_sent;
	uint64_t messages_dropped;
	uint64_t messages_duplicated;
	uint64_t crashes;
	uint64_t partitions;
	uint64_t proposals;
	uint64_t commands_applied; /* distinct indexes applied anywhere */
	uint64_t elections; /* leaders elected */
	uint64_t max_term;
	uint64_t sent_by_type[RAFT_MSG_TYPE_MAX + 1];
	uint64_t reads_ok;       /* reads answered with an index */
	uint64_t reads_unknown;  /* reads answered "unknown" */
	uint64_t retries;        /* proposals re-sent with the same id */
	uint64_t duplicates;     /* proposals the duplicate table stopped */
	uint64_t transfers;      /* leadership transfers started */
	uint64_t snapshots;      /* snapshots taken */
	uint64_t snapshots_sent; /* transfers completed */
	uint64_t snapshots_failed; /* transfers cut off */
	uint64_t installs;       /* snapshots installed */
	uint64_t changes;        /* membership changes appended */
	uint64_t refused;        /* messages refused from removed ids */
	uint64_t append_rejects; /* APPEND_RESP with reject set */
};

void sim_stats_get(const struct sim *s, struct sim_stats *st);

/* Scenarios shared by the scenario tests and raftsim (figure8.c). Each
 * creates the simulation in *out (destroy it after) and returns 0, -EFAULT
 * on a violation, or another error when the scenario could not unfold. */
int sim_figure8(uint64_t seed, uint32_t test_bugs, struct sim **out);
/* The same steps on a running cluster of at least 5 nodes (the random runs'
 * "churn" fault), with jitter_us added to its first step's duration. */
int sim_figure8_steps(struct sim *s, uint64_t jitter_us);

#endif
