#ifndef RAFT_RUNTIME_INTERNAL_H
#define RAFT_RUNTIME_INTERNAL_H

/*
 * The runtime's insides, shared by raft/runtime.c (API),
 * raft/runtime_propose.c (proposals and their waiters),
 * raft/runtime_read.c (read points), raft/driver.c (the
 * driver thread), raft/runtime_store.c (the storage thread) and
 * raft/runtime_apply.c (the apply thread) and raft/runtime_snapshot.c
 * (compaction, snapshot streams and installs; the snapshot thread).
 * Private to raft/.
 *
 * Locks (never two held at once; none across I/O, a sync, a send or a
 * callback):
 *   rt->mu        the driver's inbox, proposals, new reads, durable_seq,
 *                 failure, the published status
 *   rt->store_mu  the storage thread's job queue
 *   rt->apply_mu  the apply queue and its indexes, the reads waiting
 *                 for apply
 *   rt->wait_mu   the table of waiting proposals and their retry state
 *   rt->snap_mu   the snapshot thread's new streams, acknowledgments
 *                 received, the leader term streams belong to, and the
 *                 transfers it publishes
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/logstore.h"
#include "raft/proposal.h"
#include "raft/raft.h"

/* An entry shared (reference-counted, immutable) by the entry cache, the
 * jobs that persist it and the apply queue. */
struct rt_entry {
	atomic_uint refs;
	struct raft_entry e; /* e.data points to bytes */
	uint8_t bytes[];
};

struct rt_entry *rt_entry_new(const struct raft_entry *e);
struct rt_entry *rt_entry_ref(struct rt_entry *x);
void rt_entry_unref(struct rt_entry *x);

/* A message deep-copied into one allocation (received, or waiting for
 * persistence). Entries with data NULL keep it NULL. */
struct rt_msg {
	struct rt_msg *next;
	size_t bytes;
	struct raft_message m;
	struct raft_snapshot_meta snap;
	struct raft_entry entries[];
};

struct rt_msg *rt_msg_copy(const struct raft_message *m);
/* Queue m for the driver as if received (also a RAFT_MSG_SNAPSHOT). */
void rt_receive_msg(struct raft_runtime *rt, const struct raft_message *m);

/* A snapshot chunk (or acknowledgment) received, copied whole. */
struct rt_chunk {
	struct rt_chunk *next;
	size_t bytes;
	struct raft_chunk c; /* c.data points to data */
	uint8_t data[];
};

/* Leader: a view of the state machine to open for a stream (driver ->
 * apply thread), answered back (apply thread -> driver). */
struct rt_view_req {
	struct rt_view_req *next;
	uint64_t peer;
	uint64_t core_index; /* the snapshot the core asked to send */
	uint64_t term;       /* the leader's term when asked */
	int rc;              /* answer: 0 and view, or an error */
	void *view;
	uint64_t index, index_term; /* what the view holds */
};

/* Leader: a stream finished (snapshot thread -> driver). */
struct rt_send_result {
	struct rt_send_result *next;
	uint64_t peer, core_index, term;
	bool ok;
};

struct rt_stream; /* raft/runtime_snapshot.c, the snapshot thread's */

/* Follower: the install in progress (apply thread only). */
struct rt_install {
	bool active;
	bool skip;   /* the state machine already holds meta.index */
	uint64_t from, stream, term;
	struct raft_snapshot_meta meta;
	void *inst;
	uint64_t offset; /* bytes received in order */
	uint64_t started_ms;
};

/* A proposal's bytes, shared (reference-counted, immutable) by its waiter,
 * which keeps them until it is completed so they can be proposed again,
 * and the driver, while the core references them (until the update after
 * raft_propose is done). */
struct rt_proposal {
	struct rt_proposal *next; /* the driver's queue of new proposals */
	atomic_uint refs;
	struct raft_proposal_id id;
	uint32_t size;
	uint8_t data[];
};

struct rt_proposal *rt_proposal_ref(struct rt_proposal *p);
void rt_proposal_unref(struct rt_proposal *p);

/* One update's persistence, owned by the driver from creation until its
 * batch is durable (the storage thread only reads it in between). */
struct rt_job {
	struct rt_job *next;  /* the driver's FIFO of jobs not yet durable */
	struct rt_job *snext; /* the storage queue */
	uint64_t seq;
	struct raft_logstore_write w; /* w.entries = ents */
	struct raft_snapshot_meta snap; /* w.install or w.snapshot */
	struct raft_entry *ents;
	struct rt_entry **refs;
	uint64_t payload_bytes;
	/* The log's last index and its term once this job is durable. */
	uint64_t last_index;
	uint64_t last_term;
	/* Released once this job and every earlier one are durable: sent
	 * by the storage thread right after its synced write when every
	 * message is complete (no entry payload to attach from the driver's
	 * cache), otherwise by the driver. Under store_mu, with durable. */
	struct rt_msg *after;
	struct rt_msg **after_tail;
	bool durable; /* written (store_mu) */
};

/* A proposer waiting for its outcome. The retry fields are the driver's,
 * under wait_mu like the rest. */
struct rt_waiter {
	struct raft_proposal_id id;
	uint64_t deadline_ms;
	raft_runtime_done_fn done;
	void *ctx;
	struct rt_proposal *p;        /* the bytes (a reference) */
	bool queued;     /* in the driver's queue, not proposed yet */
	uint64_t retry_at_ms; /* proposed again from then on */
	/* Appended to this node's log as leader at (log_index, log_term);
	 * 0: not known to be in the log. Such an entry is proposed again only
	 * once it left the log: until then it may still commit. */
	uint64_t log_index, log_term;
	int refused;     /* the last -EPERM/-EBUSY, reported at the timeout */
	struct rt_waiter *hnext;      /* hash chain */
	struct rt_waiter *prev, *next; /* every waiter, for timeouts */
};

#define RT_WAIT_BUCKETS 1024u

/* When a message from a peer was last received. */
struct rt_heard {
	uint64_t id;
	uint64_t at_ms;
};

/* Peers remembered: members and tombstones of a configuration. */
#define RT_MAX_HEARD (2u * RAFT_MAX_MEMBERS)

/* A reader waiting for its read point (raft/runtime_read.c). It sits on
 * exactly one list at a time — the driver's inbox (rt->mu), the driver's
 * own lists, the apply thread's list (rt->apply_mu) — and whoever takes it
 * off a list under that list's lock calls done, so done runs once. */
struct rt_read {
	struct rt_read *next;
	uint64_t deadline_ms;
	uint64_t index; /* the read index, once its round answered */
	raft_runtime_read_fn done;
	void *ctx;
};

/* Read rounds (raft_read_index requests) a runtime keeps in flight at
 * once: readers arriving while rounds are out start one of their own
 * instead of waiting for those (runtime_read.c). */
#define RT_READ_ROUNDS 4u

struct rt_read_round {
	uint64_t context; /* the core request's; 0: a free slot */
	struct rt_read *list; /* its readers */
	uint64_t start_ms;
};

/* An administrative request on its way to the driver. */
struct rt_admin {
	struct rt_admin *next;
	uint8_t op; /* RAFT_RUNTIME_ADD_LEARNER ... */
	uint64_t id;
	char address[RAFT_MAX_ADDRESS];
	raft_runtime_admin_fn done;
	void *ctx;
};

struct raft_runtime {
	struct raft_runtime_options o;
	char dir[4096];
	char cluster_id[RAFT_LOGSTORE_MAX_CLUSTER_ID + 1];
	struct raft *r;            /* driver thread only (after start) */
	struct raft_logstore *ls;  /* writes: storage thread; reads: any */
	bool started;

	pthread_t driver_thread, store_thread, apply_thread, snap_thread;
	bool snap_enabled; /* the state machine and transport support it */

	/* ---- rt->mu ---- */
	pthread_mutex_t mu;
	pthread_cond_t wake; /* the driver */
	bool stop;
	struct rt_msg *inbox, **inbox_tail;
	uint64_t inbox_bytes;
	struct rt_proposal *props, **props_tail;
	struct rt_admin *admins; /* newest first */
	struct rt_read *reads_in, **reads_in_tail; /* new reads */
	uint64_t durable_seq;  /* every job up to here is durable */
	struct rt_view_req *views_done;    /* opened views for the driver */
	struct rt_send_result *sends_done; /* finished streams */
	bool snap_now;                     /* raft_runtime_snapshot asked */
	uint64_t snap_for;                 /* raft_runtime_request_snapshot */
	bool sync_done;                    /* the apply thread synced: */
	int sync_rc;
	uint64_t sync_index;               /* ... up to here */
	int failed;            /* 0, or what stopped the node */
	char error[320];
	struct raft_runtime_status status; /* published by the driver */
	struct rt_heard pub_heard[RT_MAX_HEARD]; /* heard, as published */
	uint32_t n_pub_heard;

	/* ---- rt->store_mu ---- */
	pthread_mutex_t store_mu;
	pthread_cond_t store_wake;
	bool store_stop;
	struct rt_job *sq, **sq_tail;

	/* ---- rt->apply_mu ---- */
	pthread_mutex_t apply_mu;
	pthread_cond_t apply_wake;
	bool apply_stop;
	struct rt_entry **aq; /* ring */
	size_t aq_head, aq_n, aq_cap;
	uint64_t aq_bytes;
	uint64_t apply_target; /* apply up to here */
	uint64_t apply_next;   /* next index the driver may queue */
	uint64_t applied;
	/* Reads whose round answered, waiting for applied >= their index,
	 * in index order. */
	struct rt_read *reads_applying, *reads_applying_tail;
	bool sync_req;                 /* the driver asks for a sync */
	struct rt_view_req *view_reqs; /* views to open */
	struct rt_chunk *chunks_in, **chunks_in_tail; /* DATA received */
	uint64_t chunks_in_bytes;
	/* The install in progress, as published for status. */
	uint64_t inst_from, inst_index, inst_bytes, inst_started_ms;
	uint64_t installs; /* snapshots installed */
	/* await_install: nothing is applied until an install (apply_mu);
	 * a snapshot below await_min is refused (it would leave a gap). */
	bool awaiting;
	uint64_t await_min;
	/* apply thread only: */
	uint64_t applied_term; /* the term of entry `applied`, 0 unknown */
	struct rt_install install;

	/* ---- rt->wait_mu ---- */
	pthread_mutex_t wait_mu;
	struct rt_waiter *buckets[RT_WAIT_BUCKETS];
	struct rt_waiter *waiters; /* list head */
	uint64_t n_waiters;

	/* ---- rt->snap_mu ---- */
	pthread_mutex_t snap_mu;
	pthread_cond_t snap_wake;
	bool snap_stop;
	uint64_t snap_term;        /* streams of another term are dropped */
	struct rt_stream *snap_new; /* streams to start */
	struct rt_chunk *acks_in, **acks_in_tail;
	uint32_t snap_n_pub;
	struct raft_runtime_transfer snap_pub[RAFT_MAX_MEMBERS];

	/* ---- driver thread only ---- */
	uint64_t snap_index, snap_term_of; /* the core's latest snapshot */
	uint64_t bytes_since_snapshot;     /* payload appended since */
	bool sync_pending;                 /* a sync asked, not answered */
	uint64_t sync_retry_ms;            /* no new sync before this */
	uint64_t snapshots_taken;
	uint64_t log_first_index;          /* in the log store */
	uint64_t snap_term_set;            /* rt->snap_term as last set */
	uint64_t next_stream;
	struct rt_entry **cache; /* ring of recent entries */
	size_t c_head, c_n, c_cap;
	uint64_t c_first; /* index of cache[c_head] */
	uint64_t c_bytes;
	struct rt_job *jobs, *jobs_tail; /* not yet durable */
	uint64_t next_seq;
	uint64_t seen_durable_seq;
	uint64_t durable_index; /* as the completed jobs left the log */
	uint64_t tail_index, tail_term; /* the log once every job is durable */
	bool halted;
	uint64_t dropped;
	uint64_t round_ms; /* the clock at the current round's ticks */
	/* Proposals handed to the core this round (references dropped once
	 * its updates are done). */
	struct rt_proposal **proposed;
	uint32_t n_proposed, cap_proposed;
	/* The leader last seen (and its term): a new one gets the waiting
	 * proposals at once. */
	uint64_t seen_leader, seen_leader_term;
	/* Status and events (raft/runtime_status.c). */
	struct rt_heard heard[RT_MAX_HEARD]; /* by peer id */
	uint32_t n_heard;
	bool conf_dirty;       /* the configuration may have changed */
	bool conf_appended;    /* ... by an appended entry (logged there) */
	const char *ev_role;   /* the role last logged */
	uint64_t ev_term;      /* its term */
	uint64_t ev_leader, ev_leader_term; /* the leader last logged */
	/* Reads (raft/runtime_read.c): waiting for a round, and the rounds
	 * in flight (a slot with context 0 is free). */
	struct rt_read *rd_wait, *rd_wait_tail;
	struct rt_read_round rd_rounds[RT_READ_ROUNDS];
	uint64_t rd_last_context;
	uint64_t rd_retry_at_ms; /* no round starts before this */

	/* raft_read_index calls that started a round (written by the
	 * driver, read by tests). */
	atomic_uint_fast64_t read_rounds;
};

/* runtime.c */
uint64_t rt_now_ms(void);
void rt_log(struct raft_runtime *rt, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Stop the node on err (first error wins); wakes the driver. */
void rt_fail(struct raft_runtime *rt, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* runtime_propose.c */
/* Complete the waiter of id (if any) with rc and result. */
void rt_waiter_complete_id(struct raft_runtime *rt,
			   const struct raft_proposal_id *id, int rc,
			   const void *result, size_t result_size);
/* Complete every waiter whose deadline passed (all when all) with rc (a
 * waiter last refused with -EPERM/-EBUSY gets that instead, unless all). */
void rt_waiters_expire(struct raft_runtime *rt, uint64_t now_ms, bool all,
		       int rc);
/* Driver: propose what is due again (on a tick, or at once for a new
 * leader), then the new proposals of list (the driver's references move to
 * rt->proposed). */
void rt_proposals_run(struct raft_runtime *rt, struct rt_proposal *list,
		      uint64_t now_ms, bool ticked);
/* Driver: the round's updates are done; drop its references. */
void rt_proposals_round_done(struct raft_runtime *rt);

/* runtime_status.c (driver thread) */
/* A message from peer id arrived at now_ms. */
void rt_status_heard(struct raft_runtime *rt, uint64_t id, uint64_t now_ms);
/* An update appended (or truncated) entries: log configuration entries. */
void rt_status_log_changes(struct raft_runtime *rt,
			   const struct raft_update *u);
/* Publish the core's state for raft_runtime_status_get and log what
 * changed (role, leader, configuration). */
void rt_status_publish(struct raft_runtime *rt);

/* runtime_admin.c */
void rt_admins_run(struct raft_runtime *rt, struct rt_admin *list);
void rt_admins_fail(struct rt_admin *list, int rc);

/* driver.c */
void *rt_driver_main(void *arg);
/* Queue a compaction job: record meta, delete entries below `below`. */
int rt_job_compact(struct raft_runtime *rt,
		   const struct raft_snapshot_meta *meta, uint64_t below);
/* Free everything the driver owns (after the threads stopped). */
void rt_driver_release(struct raft_runtime *rt);

/* driver.c: whether m can be sent as it is (no entry payload to attach
 * from the cache); such a message may be sent by any thread. */
bool rt_msg_complete(const struct raft_message *m);

/* runtime_store.c */
void *rt_store_main(void *arg);
void rt_store_enqueue(struct raft_runtime *rt, struct rt_job *job);

/* runtime_apply.c */
void *rt_apply_main(void *arg);
/* The core's new apply index: queue what fits (driver thread). */
void rt_apply_advance(struct raft_runtime *rt, uint64_t index);
void rt_apply_release(struct raft_runtime *rt);

/* runtime_read.c (driver thread unless said) */
/* New reads (taken from rt->reads_in) join those waiting for a round. */
void rt_reads_add(struct raft_runtime *rt, struct rt_read *list);
/* Abandon rounds unanswered for retry_ms; start a round when readers
 * wait and fewer than RT_READ_ROUNDS are in flight. Returns whether one
 * started (its request is in the core's next update). */
bool rt_reads_step(struct raft_runtime *rt, uint64_t now_ms);
/* A read state of the core's update. */
void rt_reads_answered(struct raft_runtime *rt,
		       const struct raft_read_state *rs, uint64_t now_ms);
/* Complete the reads whose deadline passed with -ETIMEDOUT (on ticks). */
void rt_reads_expire(struct raft_runtime *rt, uint64_t now_ms);
/* Apply thread, apply_mu held: detach the reads that applied covers; the
 * caller completes them (rt_reads_complete) once the lock is released. */
struct rt_read *rt_reads_take_applied(struct raft_runtime *rt,
				      uint64_t applied);
/* Call done(ctx, rc) for each read of list and free it (no lock held). */
void rt_reads_complete(struct rt_read *list, int rc);
/* Complete every read with rc: on halt (-EIO), and on destroy once the
 * threads stopped (-ESHUTDOWN). */
void rt_reads_fail_all(struct raft_runtime *rt, int rc);

/* runtime_snapshot.c */
/* Leader-side thread: streams views to followers. */
void *rt_snap_main(void *arg);
/* Driver: after a round, compaction by policy, streams to start and to
 * report, leadership changes. Returns 0 or a negative errno. */
int rt_snap_driver_step(struct raft_runtime *rt);
/* Driver: the core asked for a snapshot to be sent (in an update). */
void rt_snap_send_requested(struct raft_runtime *rt, uint64_t peer,
			    uint64_t core_index);
/* Driver: an update installed a snapshot (log replaced). */
void rt_snap_installed(struct raft_runtime *rt,
		       const struct raft_snapshot_meta *meta);
/* Apply thread, no lock held: serve the driver's sync and view requests
 * and the chunks received. */
void rt_snap_apply_work(struct raft_runtime *rt);
/* Apply thread, apply_mu held: whether rt_snap_apply_work has work. */
bool rt_snap_apply_has_work(struct raft_runtime *rt);
/* Free what is left (threads stopped). */
void rt_snap_release(struct raft_runtime *rt);
/* Status: transfers in progress (any thread but under none of the
 * runtime's locks). */
void rt_snap_status(struct raft_runtime *rt, struct raft_runtime_status *st);

/* driver.c: the cached entry at index, or NULL (driver thread). */
struct rt_entry *rt_cache_get(struct raft_runtime *rt, uint64_t index);

#endif
