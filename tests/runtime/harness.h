#ifndef TESTS_RUNTIME_HARNESS_H
#define TESTS_RUNTIME_HARNESS_H

/*
 * A cluster of 1..5 Raft runtimes in one process with real log stores in a
 * temp dir, joined by an in-process loopback transport (links can be cut),
 * each applying to a test state machine that records what it applied.
 * Used by the runtime tests, the crash-test node and the benchmark.
 *
 * Commands of the test state machine: a proposal id (RAFT_PROPOSAL_BYTES,
 * raft/proposal.h) followed by any bytes. Its result (struct
 * harness_result) says where the command landed. Duplicates of an id are
 * answered with the original result (raft/proposal.h's duplicate table).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/proposal.h"
#include "raft/raft.h"

#define HARNESS_MAX_NODES 5u
#define HARNESS_CLUSTER_ID "c0ffee00c0ffee00c0ffee00c0ffee00"

struct harness;

struct harness_options {
	uint32_t nodes;
	uint32_t tick_ms;         /* default 10 */
	uint32_t election_ticks;  /* default 10 */
	const char *dir;          /* NULL: a new temp dir, removed at the end */
	uint32_t apply_delay_us;  /* each apply sleeps this long */
	uint64_t apply_queue_bytes; /* 0: the runtime's default */
	bool quiet;               /* no runtime log lines on stderr */
	uint64_t epoch_base;      /* proposal epochs start above this */
	/* Another transport for every node (NULL: the loopback); what it
	 * receives goes to harness_deliver. */
	int (*send)(void *ctx, const struct raft_message *m);
	void *send_ctx;
	/* Also called with every runtime log line (any thread). */
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;

	/* Snapshots: the test state machine also keeps a state of
	 * state_bytes (changed by every apply), synced to a file in the
	 * node's dir (sync), streamed in chunks of chunk_bytes, installed
	 * (a temporary file renamed over the state). A restarted node
	 * starts from that file instead of replaying the log from 1. */
	bool snapshots;
	uint64_t state_bytes;     /* default 1 MiB */
	uint32_t chunk_bytes;     /* default 64 KiB */
	uint64_t snapshot_entries; /* the runtime's policy (0: default) */
	uint64_t snapshot_keep;
	/* Faults of the loopback for chunks (percent) and a delay per
	 * chunk sent (microseconds, on the sender's thread). */
	uint32_t chunk_drop_pct;
	uint32_t chunk_dup_pct;
	uint32_t chunk_reorder_pct;
	uint32_t chunk_delay_us;
};

struct harness_result {
	uint64_t index; /* where the command was applied */
	uint64_t term;
};

/*
 * A runtime of one member (id 1, bootstrapped) in dir with no transport,
 * applying through apply(ctx, ...); applied and bootstrap_index as in
 * struct raft_runtime_options. 0 with *out started, or an error with err.
 */
int harness_solo_start(const char *dir,
		       int (*apply)(void *ctx, const struct raft_entry *e,
				    struct raft_proposal_id *id, void *result,
				    size_t *size),
		       void *ctx, uint64_t applied, uint64_t bootstrap_index,
		       struct raft_runtime **out, char *err, size_t err_size);
/* Propose the id {1, 1, seq} (its own bytes as the payload) on a solo
 * runtime, retrying for up to 5 s while the member elects itself. */
int harness_solo_propose(struct raft_runtime *rt, uint64_t seq);

void harness_options_default(struct harness_options *o, uint32_t nodes);
int harness_create(const struct harness_options *o, struct harness **out);
/* Stop every node, remove the temp dir (when the harness made it). */
void harness_destroy(struct harness *h);

/* Start node id (create + start its runtime over its store): bootstraps
 * on an empty store. fail_write_at > 0 injects a store failure (err_no)
 * at that write. */
int harness_start_node(struct harness *h, uint64_t id);
int harness_start_node_failing(struct harness *h, uint64_t id,
			       uint64_t fail_write_at, int err_no);
/* Stop node id as a crash would (what was not durable is lost). */
void harness_stop_node(struct harness *h, uint64_t id);
struct raft_runtime *harness_runtime(struct harness *h, uint64_t id);
const char *harness_node_dir(struct harness *h, uint64_t id, char *buf,
			     size_t size);

/* A message received for node `to` from another transport. */
void harness_deliver(struct harness *h, uint64_t to,
		     const struct raft_message *m);

/* Cut (or heal) the link from -> to. */
void harness_cut(struct harness *h, uint64_t from, uint64_t to, bool cut);
/* Messages node id sent so far (through the loopback). */
uint64_t harness_sent(struct harness *h, uint64_t id);

/* Wait up to timeout_ms for one leader among the running nodes; 0 when
 * none. */
uint64_t harness_wait_leader(struct harness *h, uint32_t timeout_ms);

/* A fresh proposal id of node `node` (epoch 1 + restarts). */
void harness_next_id(struct harness *h, uint64_t node,
		     struct raft_proposal_id *id);

/* Propose a command (the id then payload) through node and wait. */
int harness_propose(struct harness *h, uint64_t node,
		    const struct raft_proposal_id *id, const void *payload,
		    uint32_t size, uint32_t timeout_ms,
		    struct harness_result *res);

/* What node id's state machine applied: count and a hash chained over
 * (index, term, payload) in order. */
void harness_applied(struct harness *h, uint64_t id, uint64_t *index,
		     uint64_t *chain);
/* Commands node id's state machine applied (NEW) and duplicates it
 * answered with the original result (DUPLICATE). */
void harness_dedup_counts(struct harness *h, uint64_t id, uint64_t *fresh,
			  uint64_t *dups);
/* Wait until every running node applied at least index with equal
 * chains; 0 or -ETIMEDOUT. */
int harness_wait_converged(struct harness *h, uint64_t index,
			   uint32_t timeout_ms);

uint64_t harness_now_us(void);

/* Chunks (data and acknowledgments) sent through the loopback. */
uint64_t harness_chunks_sent(struct harness *h);
/* The first index node id's log store holds (its status). */
uint64_t harness_log_first_index(struct harness *h, uint64_t id);

/* Remove the directory tree at dir (errors ignored: test clean-up). */
void harness_remove_tree(const char *dir);

struct net;
/* Three net/ endpoints net[1..3] on 127.0.0.1:port_base+1..+3, mutually
 * authenticated with the certificates in certs (ca.crt, nodeN.crt and
 * nodeN.key, as `raftfs certs` makes them), each handing the Raft messages
 * it receives to on_raft(ctx, m). 0, or -1 with the reason in err. */
int harness_net_create3(struct net *net[4], const char *certs,
			unsigned port_base,
			void (*on_raft)(void *ctx, const struct raft_message *m),
			void *ctx, char *err, size_t err_size);

#endif
