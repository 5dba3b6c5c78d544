#ifndef RAFT_RAFT_H
#define RAFT_RAFT_H

/*
 * The Raft consensus core: a pure, deterministic state machine.
 *
 * No sockets, threads, clocks, disk, printing or exit. Time arrives as ticks;
 * randomness comes from a generator seeded by the caller; memory comes
 * through an allocation hook. The caller feeds events in and takes plain
 * data out:
 *
 *   events in:  raft_tick, raft_step (a received message), raft_propose,
 *               raft_read_index, raft_persisted (a local sync finished)
 *   data out:   raft_update_get -> struct raft_update: hard state and log
 *               changes to persist, messages to send now, messages to send
 *               only once that persistence finished, the index up to which
 *               entries may be applied, finished read requests
 *
 * A struct raft is not thread-safe: one thread (the driver) owns it.
 *
 * Entry payloads are opaque to the core. It keeps each entry's term, type
 * and size (configuration entries whole, because it interprets them), and an
 * outgoing AppendEntries names its entries by index with their term, type
 * and size but data == NULL for normal entries: the caller attaches the
 * payload from its own log (or cache) when it encodes the message. Incoming
 * entries and proposals are referenced, never copied: the pointers in an
 * update point into memory the caller passed since the last update and must
 * stay valid until the caller is done with that update.
 *
 * Configurations take effect when they are APPENDED to the log, not when
 * committed (thesis §4.1); a configuration removed by log truncation is
 * rolled back to the previous one in the log.
 *
 * Errors: functions return 0 or a negative errno (RAFT_E* below are errno
 * values, listed for what they mean here).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Sizes. Consistent with each other: a batch holds at least one maximum   */
/* entry, and a message holds at least one maximum batch.                  */

/* Largest entry payload: a 1 MiB FUSE write plus its command header. */
#define RAFT_MAX_ENTRY_BYTES (1024u * 1024u + 4096u)
/* Largest sum of payload bytes in one AppendEntries message. */
#define RAFT_MAX_BATCH_BYTES (4u * 1024u * 1024u)
/* Largest number of entries in one message. */
#define RAFT_MAX_BATCH_ENTRIES 8192u
/* Bytes an encoded entry costs besides its payload (term, index, type,
 * length). */
#define RAFT_ENTRY_OVERHEAD_BYTES 32u
/* Bytes an encoded message costs besides its entries. */
#define RAFT_MESSAGE_OVERHEAD_BYTES 1024u
/* Largest encoded message: a full batch, its entry headers and the header. */
#define RAFT_MAX_MESSAGE_BYTES                                                 \
	(RAFT_MAX_BATCH_BYTES +                                                \
	 RAFT_MAX_BATCH_ENTRIES * RAFT_ENTRY_OVERHEAD_BYTES +                  \
	 RAFT_MESSAGE_OVERHEAD_BYTES)
/* Most members of one configuration, tombstones of removed ids included
 * (so at most this many ids over the cluster's life; docs/RAFT.md). */
#define RAFT_MAX_MEMBERS 16u
/* Longest member address ("host:port"), including the terminating NUL. */
#define RAFT_MAX_ADDRESS 64u

_Static_assert(RAFT_MAX_BATCH_BYTES >= RAFT_MAX_ENTRY_BYTES,
	       "a batch must hold a maximum entry");

/* ---------------------------------------------------------------------- */
/* Errors (negative values returned).                                      */

/* EINVAL: a bad argument or a malformed message (nothing changed).
 * ENOMEM: the allocation hook failed (the node stays consistent; retry).
 * EPERM:  this node cannot do that now (not leader and no leader known,
 *         leadership transfer in progress).
 * EBUSY:  the leader's uncommitted bytes are at their cap; retry later.
 * EEXIST: bootstrap of a node that already has state. */

/* ---------------------------------------------------------------------- */
/* Allocation hook: tests fail the Nth allocation through it.              */

struct raft_alloc {
	void *(*malloc)(void *ctx, size_t size);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
	void *ctx;
};

/* ---------------------------------------------------------------------- */
/* Entries and configurations.                                             */

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 1, /* an application command */
	RAFT_ENTRY_NOOP = 2,   /* appended by each new leader (§5.4.2) */
	RAFT_ENTRY_CONFIG = 3, /* a struct raft_configuration, encoded */
};

struct raft_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type; /* enum raft_entry_type */
	uint32_t size; /* payload bytes */
	/* Payload, or NULL in outgoing AppendEntries for normal entries (the
	 * caller attaches it). Never owned by the receiver of the struct. */
	const void *data;
};

enum raft_role {
	RAFT_VOTER = 1,
	RAFT_LEARNER = 2, /* receives the log, never counts for quorum */
	RAFT_REMOVED = 3, /* a tombstone: the id was removed and may never
			     return; its messages are refused */
};

struct raft_member {
	uint64_t id; /* never 0 */
	uint8_t role; /* enum raft_role */
	char address[RAFT_MAX_ADDRESS]; /* opaque to the core, NUL-terminated */
};

struct raft_configuration {
	uint32_t n;
	struct raft_member members[RAFT_MAX_MEMBERS];
};

/* Size of an encoded configuration with n members. */
size_t raft_configuration_encoded_size(uint32_t n);
/* Encode conf into buf (at least raft_configuration_encoded_size bytes). */
void raft_configuration_encode(const struct raft_configuration *conf,
			       uint8_t *buf);
/* Decode and validate (ids non-zero and distinct, roles known, addresses
 * terminated, at most RAFT_MAX_MEMBERS). Returns 0 or -EINVAL. */
int raft_configuration_decode(const uint8_t *buf, size_t size,
			      struct raft_configuration *conf);
/* Whether conf has 1..RAFT_MAX_MEMBERS members with distinct non-zero ids,
 * known roles and terminated addresses. */
bool raft_configuration_is_valid(const struct raft_configuration *conf);
/* The member with this id, or NULL. */
const struct raft_member *
raft_configuration_get(const struct raft_configuration *conf, uint64_t id);

/* ---------------------------------------------------------------------- */
/* Messages.                                                               */

enum raft_message_type {
	RAFT_MSG_APPEND = 1,      /* AppendEntries */
	RAFT_MSG_APPEND_RESP = 2,
	RAFT_MSG_VOTE = 3,        /* RequestVote */
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_PREVOTE = 5,     /* thesis §9.6 */
	RAFT_MSG_PREVOTE_RESP = 6,
	RAFT_MSG_HEARTBEAT = 7,   /* commit propagation and read rounds */
	RAFT_MSG_HEARTBEAT_RESP = 8,
	RAFT_MSG_TIMEOUT_NOW = 9, /* leadership transfer (thesis §3.10) */
	RAFT_MSG_PROPOSE = 10,    /* proposals forwarded to the leader */
	RAFT_MSG_READ_INDEX = 11, /* a follower's read request to the leader */
	RAFT_MSG_READ_INDEX_RESP = 12,
	RAFT_MSG_SNAPSHOT = 13,   /* a snapshot was transferred (see Raft III) */
	RAFT_MSG_TYPE_MAX = 13,
};

/*
 * One flat message; which fields mean what depends on the type:
 *
 *   APPEND          index/log_term: the entry before entries[];
 *                   commit: the leader's commit index
 *   APPEND_RESP     reject=0: index is the follower's match index;
 *                   reject=1: index is the rejected prev index, hint_index
 *                   and hint_term the follower's hint (§5.3 optimisation)
 *   VOTE, PREVOTE   index/log_term: the candidate's last entry;
 *                   transfer=1 when campaigning on TimeoutNow
 *   *_RESP (votes)  reject=1 when not granted
 *   HEARTBEAT       commit: min(leader commit, follower match); context:
 *                   the read round it starts
 *   HEARTBEAT_RESP  context: echoed
 *   PROPOSE         entries[]: the proposals (index/term 0)
 *   READ_INDEX      context: the follower's request id
 *   READ_INDEX_RESP context: echoed; index: the read index; reject=1 when
 *                   the leader could not serve it
 *   SNAPSHOT        snapshot: the metadata of a snapshot fully received
 */
struct raft_snapshot_meta {
	uint64_t index; /* last index the snapshot covers */
	uint64_t term;  /* term of that entry */
	uint64_t conf_index; /* index of the configuration it holds */
	struct raft_configuration conf;
};

struct raft_message {
	uint8_t type; /* enum raft_message_type */
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t index;
	uint64_t log_term;
	uint64_t commit;
	uint64_t context;
	uint64_t hint_index;
	uint64_t hint_term;
	bool reject;
	bool transfer;
	uint32_t n_entries;
	const struct raft_entry *entries; /* not owned by the struct */
	struct raft_snapshot_meta *snapshot; /* SNAPSHOT only; not owned */
};

/* ---------------------------------------------------------------------- */
/* Persistence contract.                                                   */

/*
 * Before sending, a message may depend on local persistence:
 *
 *   sent at once (update.messages):
 *     APPEND from the leader — its own disk write runs in parallel with
 *       the followers' (thesis §10.2.1); the leader counts itself toward
 *       commit only for entries it has persisted (raft_persisted). Its
 *       term is durable before it leads (its vote requests waited for
 *       it), except for a lone voter, which wins without asking anyone:
 *       until an entry of its term is durable, its APPEND, HEARTBEAT and
 *       TIMEOUT_NOW go in messages_after_persist instead
 *     HEARTBEAT and TIMEOUT_NOW (as APPEND), PROPOSE, READ_INDEX and
 *     READ_INDEX_RESP (term-free: they carry term 0), PREVOTE (it changes
 *     no state) and a granted PREVOTE_RESP
 *
 *   sent only after the update's hard state and entries are durable
 *   (update.messages_after_persist):
 *     VOTE — the candidate's new term and self-vote are on disk first
 *     VOTE_RESP — the granted vote is on disk first (one vote per term)
 *     APPEND_RESP — the acknowledged entries are on disk first
 *     HEARTBEAT_RESP — it may carry a term adopted in this update
 *
 * Term and vote (struct raft_hard_state) are persisted in the same synced
 * batch as the entries of the update. Updates are persisted in the order
 * they were handed out, and an update's messages_after_persist go out only
 * once its batch AND every earlier update's batch are durable (an update
 * that persists nothing still waits for the earlier ones: an APPEND_RESP may
 * acknowledge entries an earlier update wrote).
 */
struct raft_hard_state {
	uint64_t term;
	uint64_t vote; /* 0: no vote in this term */
};

/* ---------------------------------------------------------------------- */
/* Configuration of the core.                                              */

struct raft_options {
	uint64_t id;              /* this node's id, non-zero */
	uint32_t election_ticks;  /* election timeout base; randomized in
				     [election_ticks, 2 * election_ticks) */
	uint32_t heartbeat_ticks; /* about election_ticks / 10 */
	uint32_t max_inflight_msgs;  /* AppendEntries in flight per follower */
	uint64_t max_inflight_bytes; /* payload bytes in flight per follower */
	uint64_t max_batch_bytes;    /* payload bytes per AppendEntries,
					<= RAFT_MAX_BATCH_BYTES */
	uint64_t max_uncommitted_bytes; /* leader cap; a single entry is
					   always admitted when nothing is
					   uncommitted */
	bool auto_promote;  /* the leader promotes caught-up learners (on) */
	bool pre_vote;      /* thesis §9.6 (default on) */
	bool check_quorum;  /* leader steps down without a majority (on) */
	uint64_t seed;      /* for election timeout randomization */
	/* The state machine lost its state and waits for a snapshot from the
	 * leader (a resync, docs/FSCK.md): the node never campaigns (nor
	 * takes a leadership transfer) until the runtime hands it one
	 * (RAFT_MSG_SNAPSHOT, after the install). Its log and votes are
	 * untouched, so it votes and acknowledges as before. */
	bool passive;
	struct raft_alloc alloc; /* zeroed: libc malloc/realloc/free */
	/* Test-only deliberate bugs (RAFT_BUG_*), honoured only in builds
	 * with RAFT_TEST_BUGS defined; ignored otherwise. */
	uint32_t test_bugs;
};

/* Sensible defaults for id, to be adjusted by the caller. */
void raft_options_default(struct raft_options *opts, uint64_t id);

/* Deliberate bugs that show the simulator's checks can fail. */
enum raft_test_bug {
	RAFT_BUG_FIGURE8 = 1u << 0,    /* commit entries of older terms by
					  counting replicas */
	RAFT_BUG_VOTE_ANY_LOG = 1u << 1, /* grant votes without the
					    up-to-date log check */
	RAFT_BUG_VOTE_BEFORE_PERSIST = 1u << 2, /* send vote replies before
						   the vote is durable */
	RAFT_BUG_READ_NO_ROUND = 1u << 3, /* answer reads at once, without
					     confirming leadership */
	RAFT_BUG_LEARNER_QUORUM = 1u << 4, /* count learners toward commit */
	RAFT_BUG_OVERLAP_CHANGES = 1u << 5, /* accept a membership change
					       while another is pending */
};

/* ---------------------------------------------------------------------- */
/* Lifecycle.                                                              */

struct raft;

/* Create a node with no state (term 0, empty log). Returns 0 or -ENOMEM,
 * -EINVAL. *out is owned by the caller; free it with raft_destroy. */
int raft_create(const struct raft_options *opts, struct raft **out);
void raft_destroy(struct raft *r);

/*
 * Bootstrap a brand-new cluster: the log gets entry 1 (term 1) holding conf.
 * Every initial member bootstraps with the same conf, so their logs agree.
 * Only on a node with no state (-EEXIST otherwise). The entry is in the next
 * update, to be persisted.
 */
int raft_bootstrap(struct raft *r, const struct raft_configuration *conf);

/*
 * Restore persisted state after a restart, before any other event:
 * raft_restore_begin with the hard state and the snapshot the log starts
 * after (NULL when none), then raft_restore_entry for every persisted entry
 * in index order (data needed for CONFIG entries only), then
 * raft_restore_end. Entries must be contiguous, start right after the
 * snapshot, and have non-decreasing terms not above hs->term; otherwise
 * -EINVAL and the node must not be used.
 */
int raft_restore_begin(struct raft *r, const struct raft_hard_state *hs,
		       const struct raft_snapshot_meta *snap);
int raft_restore_entry(struct raft *r, const struct raft_entry *entry);
int raft_restore_end(struct raft *r);

/* ---------------------------------------------------------------------- */
/* Events.                                                                 */

/* One unit of logical time. */
int raft_tick(struct raft *r);

/*
 * A message received from a peer. Validated first: a message not for this
 * node, from id 0 or this node, of an unknown type, with non-contiguous
 * entries, terms out of order or sizes beyond the limits gets -EINVAL and
 * changes nothing; a message from a removed id (a tombstone of the
 * committed configuration) gets -EPERM and changes nothing. Messages from stale terms are answered or ignored as the
 * algorithm says. Entries' data is referenced until the next update is done.
 */
int raft_step(struct raft *r, const struct raft_message *m);

/*
 * Propose application commands (n >= 1 of them, each at most
 * RAFT_MAX_ENTRY_BYTES; data referenced until the update is done). On the
 * leader they are appended; *index (may be NULL) gets the first one's index
 * and *term the term. On a follower that knows a leader they are forwarded
 * (*index = 0). Errors: -EPERM no leader known or transfer in progress;
 * -EBUSY uncommitted cap reached; -EINVAL bad sizes. An accepted proposal's
 * outcome is learned from the applied log: it may still commit after a
 * leader change, so the caller retries only with the same proposal id.
 */
int raft_propose(struct raft *r, const void *const *data,
		 const uint32_t *sizes, uint32_t n, uint64_t *index,
		 uint64_t *term);

/*
 * Membership changes, one server at a time (thesis §4.1), on the leader:
 *
 *   RAFT_ADD_LEARNER  id joins as a learner (address required); it gets
 *                     the log (or a snapshot) but no vote. With
 *                     auto_promote the leader promotes it once it caught up
 *                     (a round of replication shorter than an election
 *                     timeout, thesis §4.2.1).
 *   RAFT_PROMOTE      a learner becomes a voter
 *   RAFT_REMOVE       a member leaves; its id becomes a tombstone and is
 *                     never accepted again. A leader that removes itself
 *                     keeps leading (without counting itself) until the
 *                     change commits, then steps down.
 *
 * A configuration takes effect when appended (see the top of this file).
 * Accepted only once an entry of the leader's term has committed and no
 * other change is pending (its entry is committed). *index (may be NULL)
 * gets the entry's index. Errors: -EPERM not leader or transfer in
 * progress; -EBUSY a change is pending or the term has no commit yet, retry;
 * -EEXIST the id was ever a member; -ENOENT no such member; -EINVAL bad
 * arguments or no voter would remain; -ENOSPC no room in the configuration.
 */
enum raft_change {
	RAFT_ADD_LEARNER = 1,
	RAFT_PROMOTE = 2,
	RAFT_REMOVE = 3,
};

int raft_change_membership(struct raft *r, enum raft_change change,
			   uint64_t id, const char *address, uint64_t *index);

/*
 * The caller took a snapshot of its state machine at index (at most the
 * last apply_index it was handed, and newer than the previous snapshot) and
 * made it durable. The core records it (its term and the configuration in
 * force at index, returned in *meta), and forgets log entries up to
 * index - keep_tail (a tail is kept so followers slightly behind need no
 * snapshot). The caller may then delete its own entries below
 * raft_first_index(). Returns 0 or -EINVAL.
 */
int raft_snapshot_taken(struct raft *r, uint64_t index, uint64_t keep_tail,
			struct raft_snapshot_meta *meta);

/*
 * The snapshot at index was streamed to peer completely (ok) or the
 * transfer failed or was abandoned (!ok: it will be asked for again).
 */
int raft_snapshot_sent(struct raft *r, uint64_t peer, uint64_t index, bool ok);

/*
 * Leader: stream a snapshot to peer now (raft_snapshot_sent reports it),
 * whatever its log holds: a follower whose state machine lost its state
 * asks for one (raft_options.passive). 0 (also when one is on its way
 * already), -EPERM not the leader, -ENOENT peer is not a member (or is
 * this node), -ENOMEM, -EINVAL inside an update.
 */
int raft_snapshot_request(struct raft *r, uint64_t peer);

/* The first index still in the log (entries before it were compacted). */
uint64_t raft_first_index(const struct raft *r);

/*
 * ReadIndex (thesis §6.4): ask for an index such that serving a read from
 * the local state once it has applied up to that index is linearizable.
 * The answer arrives as a struct raft_read_state with the same context (a
 * caller-chosen id, unique among its outstanding reads) in a later update:
 * index > 0 on success; index 0 when the outcome is unknown (leadership
 * lost, leader changed), to be retried. On the leader the request waits for
 * an entry of the leader's term to commit and for a heartbeat round that
 * started after it arrived to reach a majority; requests share rounds. A
 * follower forwards it to its leader. Errors: -EPERM when no leader is
 * known (or this node is campaigning), -EBUSY when too many reads are
 * outstanding.
 */
int raft_read_index(struct raft *r, uint64_t context);

/*
 * Give up on this node's read request context (its answer is no longer
 * wanted, e.g. a forwarded request whose answer was lost): it is dropped
 * without a read state. Returns 0, -ENOENT when no such request waits,
 * -EINVAL during an update.
 */
int raft_read_index_cancel(struct raft *r, uint64_t context);

/*
 * Leadership transfer (thesis §3.10), on the leader: stop accepting
 * proposals, bring target (0: the most up-to-date voter) up to date, then
 * tell it to campaign at once (TimeoutNow, which bypasses pre-vote and the
 * recent-leader rule). Abandoned after an election timeout if the target did
 * not win; proposals are accepted again then. Errors: -EPERM not leader,
 * -EINVAL target not another voter, -EBUSY a transfer is in progress.
 */
int raft_transfer_leadership(struct raft *r, uint64_t target);
/* The transfer target, 0 when no transfer is in progress. */
uint64_t raft_transfer_target(const struct raft *r);

/*
 * The caller's log now durably holds every entry up to index, the last of
 * which has the given term (and the hard state handed out with it). Stale
 * reports (the entry was since replaced) are ignored.
 */
int raft_persisted(struct raft *r, uint64_t index, uint64_t term);

/* ---------------------------------------------------------------------- */
/* Output.                                                                 */

struct raft_read_state {
	uint64_t context; /* the caller's request id */
	uint64_t index;   /* read index; 0 when the read failed (unknown) */
};

/* A snapshot the caller must stream to a follower (Raft III). */
struct raft_snapshot_send {
	uint64_t peer;
	struct raft_snapshot_meta meta; /* the caller's latest snapshot */
};

struct raft_update {
	/* Persist first, in ONE synced batch: */
	bool hard_state_changed;
	struct raft_hard_state hard_state;
	/* A snapshot received from the leader is to be installed: the log is
	 * replaced by it (every entry deleted, its metadata recorded) and the
	 * state machine by the snapshot's state, BEFORE this update's entries
	 * are appended. NULL: none. */
	const struct raft_snapshot_meta *install_snapshot;
	uint64_t truncate_from; /* 0, or delete entries >= this, then append */
	uint32_t n_entries;
	const struct raft_entry *entries; /* to append; data referenced */

	/* Send now (may precede the persistence above). */
	uint32_t n_messages;
	const struct raft_message *messages;
	/* Send only after the persistence above is durable. */
	uint32_t n_messages_after_persist;
	const struct raft_message *messages_after_persist;

	/* Entries up to here are committed and locally durable: apply them.
	 * 0 when unchanged. */
	uint64_t apply_index;

	/* Read requests answered since the last update. */
	uint32_t n_read_states;
	const struct raft_read_state *read_states;

	/* Followers whose next entry was compacted away: stream them the
	 * snapshot (bounded chunks tagged with index, term and offset), then
	 * report with raft_snapshot_sent. On the follower the complete
	 * snapshot is fed to raft_step as a RAFT_MSG_SNAPSHOT message (from
	 * the leader, with the leader's term and the snapshot's metadata). */
	uint32_t n_snapshot_sends;
	const struct raft_snapshot_send *snapshot_sends;
};

/* Whether raft_update_get would hand out anything (queues the leader's
 * pending AppendEntries first, hence not const). */
bool raft_has_update(struct raft *r);

/*
 * Hand out what accumulated since the last update. The update's memory is
 * the core's until raft_update_done; no event may be fed in between (take
 * copies or encode messages first if persistence is asynchronous).
 * Returns 0 or -ENOMEM.
 */
int raft_update_get(struct raft *r, struct raft_update *u);
void raft_update_done(struct raft *r, struct raft_update *u);

/* ---------------------------------------------------------------------- */
/* Queries.                                                                */

enum raft_state {
	RAFT_FOLLOWER = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3,
	RAFT_PRECANDIDATE = 4,
};

struct raft_status {
	uint64_t id;
	uint8_t state; /* enum raft_state */
	uint64_t term;
	uint64_t vote;
	uint64_t leader; /* 0 when unknown */
	uint64_t first_index;
	uint64_t last_index;
	uint64_t last_term;
	uint64_t commit;
	uint64_t persisted; /* highest index locally durable */
	uint64_t applied_hint; /* highest apply_index handed out */
};

void raft_status_get(const struct raft *r, struct raft_status *st);
bool raft_is_leader(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
/* Term of the entry at index, 0 when compacted or beyond the log. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);
/* The configuration in force (the latest in the log). */
const struct raft_configuration *raft_configuration(const struct raft *r);
/* The configuration in force at index (the latest configuration entry at
 * or before it; *conf_index, may be NULL, its index), or NULL when that is
 * not known exactly: index beyond the log or below the latest snapshot. */
const struct raft_configuration *
raft_configuration_at(const struct raft *r, uint64_t index,
		      uint64_t *conf_index);

/* Per-follower replication progress, as the leader sees it. */
enum raft_progress_state {
	RAFT_PROGRESS_PROBE = 1,
	RAFT_PROGRESS_REPLICATE = 2,
	RAFT_PROGRESS_SNAPSHOT = 3,
};

struct raft_progress_info {
	uint64_t id;
	uint8_t state; /* enum raft_progress_state */
	uint64_t match;
	uint64_t next;
	uint32_t inflight_msgs;
	bool recent_active;
};

/* Fill up to max entries for the members of the configuration (leader
 * only; returns the count, 0 on a follower). */
uint32_t raft_progress_get(const struct raft *r, struct raft_progress_info *out,
			   uint32_t max);

/*
 * Check every invariant of the node's state (LogCabin style): the static
 * ones now, and those relating this state to the one seen at the previous
 * call ("before vs after"). Returns 0, or -EFAULT with a description of the
 * first violation in buf. For tests and the simulator; cost O(log length).
 */
int raft_check_invariants(struct raft *r, char *buf, size_t size);

/* Human-readable names, for logs and traces. */
const char *raft_message_type_name(uint8_t type);
const char *raft_state_name(uint8_t state);

/* ====================================================================== */
/* The runtime (raft/runtime*.c, raft/driver*.c, raft/logstore*.c)        */
/* ====================================================================== */

/*
 * struct raft_runtime runs one node for real: a driver thread owns its
 * struct raft and feeds it ticks, received messages, proposals and
 * persistence completions from queues; a storage thread persists the
 * core's updates in the node's log store (raft/logstore.h), many updates
 * per synced LevelDB batch (group commit), and a message that must wait
 * for persistence leaves only once its update and every earlier one are
 * durable; an apply thread hands committed entries to the state machine
 * through a queue bounded in bytes, reading them back from the store when
 * it falls behind, so a slow apply never delays heartbeats. Thread model
 * and lock order: docs/ARCHITECTURE.md.
 *
 * The runtime knows no sockets: the caller supplies a struct
 * raft_transport to send and calls raft_runtime_receive for what arrives
 * (net/ plugs in from outside raft/; tests use an in-process loopback).
 *
 * A store error while persisting (disk full, I/O error) stops the node:
 * it acknowledges nothing it could not persist (no vote, no AppendEntries
 * answer, no commit counted), sends nothing more, so the others elect a
 * leader without it, fails every waiting proposal with -EIO, and says in
 * raft_runtime_status.error what to do. What was durable stays durable.
 */

struct raft_proposal_id; /* raft/proposal.h */

/*
 * How the runtime sends. send runs on the driver thread and on the storage
 * thread (which sends what waited for its synced write), possibly at the
 * same time, and must not block (queue or drop: Raft tolerates lost
 * messages). m and its entries are
 * valid during the call only; every entry's data is attached (non-NULL
 * when size > 0). Returns 0 or a negative errno (the message was dropped).
 */
struct raft_chunk;

struct raft_transport {
	int (*send)(void *ctx, const struct raft_message *m);
	/* Optional (NULL: this node never streams a snapshot and the log is
	 * never compacted). Sends one snapshot chunk or acknowledgment (see
	 * struct raft_chunk) to c->to; called from the runtime's snapshot
	 * and apply threads, must not block (queue or drop: a lost chunk is
	 * sent again). c and its data are valid during the call only.
	 * Returns 0 or a negative errno (dropped). */
	int (*send_chunk)(void *ctx, const struct raft_chunk *c);
	void *ctx;
};

/* ---------------------------------------------------------------------- */
/* Snapshot transfer between runtimes (Raft III, below the core).          */

/*
 * When the core lists a follower in update.snapshot_sends, the leader's
 * runtime opens a point-in-time view of its state machine (at its applied
 * index V, on the apply thread) and streams it as a sequence of chunks
 * (stream: a number the sender picked for this transfer). At most
 * raft_runtime_options.snapshot_window chunks are unacknowledged at a
 * time; the follower acknowledges what it received in order, and chunks
 * not acknowledged within retry_ms are sent again from the first one
 * missing (go-back-N; lost, duplicated and reordered chunks are fine).
 * The follower builds the new state beside its current one, switches to
 * it once complete and durable, THEN tells its core (a RAFT_MSG_SNAPSHOT
 * with the sender's term and meta), which replaces the log, and answers
 * done. The metadata describes exactly the state streamed: index V, the
 * term of entry V and the configuration in force at V (docs/RAFT.md).
 *
 *   DATA  sender -> follower: bytes [offset, offset + size) of the stream;
 *         meta: the snapshot (whole, in every chunk); last: the final
 *         chunk. size 1..RAFT_MAX_CHUNK_BYTES.
 *   ACK   follower -> sender: offset = bytes of the stream received in
 *         order (the next one expected); done: complete (installed, or
 *         not needed because the follower already holds index V); reject:
 *         abandoned (the follower could not install it), the sender
 *         stops. meta.index and meta.term echo the stream's; size 0.
 */
#define RAFT_MAX_CHUNK_BYTES (2u * 1024u * 1024u)

enum raft_chunk_type {
	RAFT_CHUNK_DATA = 1,
	RAFT_CHUNK_ACK = 2,
};

struct raft_chunk {
	uint8_t type;     /* enum raft_chunk_type */
	bool last;        /* DATA: the final chunk */
	bool done;        /* ACK: the transfer completed */
	bool reject;      /* ACK: the follower abandoned it */
	uint64_t from;
	uint64_t to;
	uint64_t term;    /* the sender's current term */
	uint64_t stream;  /* the leader's transfer id, non-zero */
	uint64_t offset;
	struct raft_snapshot_meta meta; /* ACK: index and term only */
	uint32_t size;    /* DATA: payload bytes; ACK: 0 */
	const void *data; /* not owned */
};

/* Whether c is well formed (type, flags, sizes, ids, the metadata and its
 * configuration); for decoders and the runtime. */
bool raft_chunk_is_valid(const struct raft_chunk *c);

/* Largest result a state machine returns for one command. */
#define RAFT_RUNTIME_MAX_RESULT_BYTES 512u

/*
 * The state machine. apply runs on the apply thread, for every committed
 * entry (all types) in index order, each exactly once per start of the
 * runtime after raft_runtime_options.applied_index. For an entry that
 * carries a proposal id (the runtime never looks inside payloads), it sets
 * *id (zeroed before the call) and writes the command's result, at most
 * RAFT_RUNTIME_MAX_RESULT_BYTES, to result with *result_size: a proposer
 * waiting for that id on this node receives it. A duplicate (a retried id)
 * must report the original result. Returns 0, or a negative errno, which
 * stops the node: nothing after e is applied (-EPROTONOSUPPORT: an entry
 * this build cannot decode, said so in the node's error).
 */
struct raft_fsm {
	int (*apply)(void *ctx, const struct raft_entry *e,
		     struct raft_proposal_id *id, void *result,
		     size_t *result_size);
	void *ctx;

	/*
	 * Snapshots, optional: with any of these NULL the node never
	 * compacts its log nor sends or installs a snapshot. Errors are
	 * negative errnos.
	 *
	 * sync (apply thread, between two applies): make every entry
	 * applied so far durable. The log is compacted only below what a
	 * successful sync covered.
	 */
	int (*sync)(void *ctx);
	/* snapshot_open (apply thread, between two applies): a
	 * point-in-time view of the state as it is now, at index (the last
	 * entry applied) whose term is term; *view is the state machine's.
	 * Apply goes on while the view is read. */
	int (*snapshot_open)(void *ctx, uint64_t index, uint64_t term,
			     void **view);
	/* snapshot_read (the runtime's snapshot thread, concurrently with
	 * apply): the next bytes of the view's stream into buf (cap =
	 * snapshot_chunk_bytes); *len > 0 unless *last; *last at the end. */
	int (*snapshot_read)(void *ctx, void *view, void *buf, size_t cap,
			     size_t *len, bool *last);
	/* snapshot_close (any runtime thread): release the view. */
	void (*snapshot_close)(void *ctx, void *view);
	/* install_* (apply thread): build the state of a snapshot at
	 * (index, term) from its stream, beside the current state;
	 * install_finish makes it durable and switches to it atomically (the
	 * state machine is then at index; a crash before the switch leaves
	 * the old state whole) and releases inst, also when it fails;
	 * install_abort drops a partial one. install_finish failing with
	 * -EBADMSG (a bad stream) or -EBUSY (not now) keeps the old state
	 * and the transfer is retried; any other error stops the node, like
	 * a failed apply. install_chunk failing with -EPROTONOSUPPORT (a
	 * stream format the state machine does not know) stops the node;
	 * other errors abandon the transfer, which is retried. */
	int (*install_begin)(void *ctx, uint64_t index, uint64_t term,
			     void **inst);
	int (*install_chunk)(void *ctx, void *inst, const void *data,
			     size_t len);
	int (*install_finish)(void *ctx, void *inst);
	void (*install_abort)(void *ctx, void *inst);
	/* Bytes per stream chunk, 1..RAFT_MAX_CHUNK_BYTES (snapshot_read
	 * gets a buffer this large). */
	size_t snapshot_chunk_bytes;
};

struct raft_runtime_options {
	uint64_t id;            /* this node, non-zero */
	const char *dir;        /* its log store (a LevelDB directory) */
	const char *cluster_id; /* recorded in, and checked against, the store */
	/* With a new (empty) store: bootstrap a cluster of conf; without
	 * bootstrap an empty store waits to be added. A store that holds
	 * state ignores both and recovers. */
	bool bootstrap;
	/* With bootstrap: non-zero when the state machine already holds the
	 * state up to this index (a restored backup): the new log starts
	 * after it, recorded as a snapshot at (bootstrap_index, term 1) with
	 * conf, instead of conf as entry 1. */
	uint64_t bootstrap_index;
	struct raft_configuration conf;
	struct raft_options raft;  /* the core's options (raft.id == id) */
	uint32_t tick_ms;          /* one raft_tick */
	uint64_t applied_index;    /* the state machine holds up to here */
	/* The state machine lost its state (applied_index means nothing)
	 * while the log is intact: nothing is applied until a snapshot from
	 * the leader is installed (ask for it with
	 * raft_runtime_request_snapshot on the leader); meanwhile the core
	 * is passive (raft_options.passive), and a snapshot that would leave
	 * a gap before the log's first entry is refused. */
	bool await_install;
	uint64_t apply_queue_bytes; /* payload bytes queued for apply */
	uint64_t entry_cache_bytes; /* recent payloads kept for sending */
	uint64_t inbox_bytes;       /* received bytes queued; beyond: dropped */
	uint64_t max_write_bytes;   /* payload bytes per synced batch */
	/* Retries, in ms. A proposal whose waiter still waits (not applied
	 * here yet) is proposed again, with the same id and bytes, every
	 * retry_ms and at once when a (new) leader becomes known — except
	 * one this node appended as leader while that entry is still in its
	 * log (it commits or is replaced; replaced, it is proposed again at
	 * once). A read round unanswered for retry_ms is abandoned and
	 * started again. Set it above the commit latency: a copy proposed
	 * while the first is still on its way is a duplicate in the log
	 * (harmless, answered by the duplicate table, but it costs a log
	 * entry). 0 (the default): 2 election timeouts, 2 *
	 * raft.election_ticks * tick_ms. */
	uint32_t retry_ms;
	/* Snapshots and compaction (only with a state machine and a
	 * transport that support them, see struct raft_fsm). Once more than
	 * snapshot_entries entries (0: never by count) or snapshot_bytes
	 * payload bytes (0: never by size) were appended since the last
	 * snapshot, the state machine is synced and the log compacted below
	 * the synced index, keeping its last snapshot_keep_entries entries
	 * (followers a little behind need no snapshot). Defaults: 50,000
	 * entries, 256 MiB, a tail of 10,000. A transfer keeps at most
	 * snapshot_window chunks unacknowledged (default 4) and is abandoned
	 * (and asked for again) after snapshot_timeout_ms without progress
	 * (default 10,000). */
	uint64_t snapshot_entries;
	uint64_t snapshot_bytes;
	uint64_t snapshot_keep_entries;
	uint32_t snapshot_window;
	uint32_t snapshot_timeout_ms;
	struct raft_transport transport;
	struct raft_fsm fsm;
	/* One log line (no newline), level 0 error, 1 warn, 2 info, 3 debug,
	 * from any runtime thread; NULL: no logging. */
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;
};

/* Defaults for everything but dir, cluster_id, conf, transport and fsm. */
void raft_runtime_options_default(struct raft_runtime_options *o, uint64_t id);

struct raft_runtime;

/*
 * Open (or create) the log store, refuse a bad one, restore the core or
 * bootstrap it. No thread runs yet. Returns 0, or a negative errno with
 * one line in err (the store's refusals, -EINVAL bad options, -ENOMEM).
 */
int raft_runtime_create(const struct raft_runtime_options *o,
			struct raft_runtime **out, char *err, size_t err_size);
/* Start the driver, storage and apply threads. 0 or a negative errno. */
int raft_runtime_start(struct raft_runtime *rt);
/*
 * Stop the threads (what is not yet durable is dropped, as in a crash),
 * answer every waiting proposal with -ESHUTDOWN, close the store, free.
 * Accepts NULL. Not from a runtime thread or callback.
 */
void raft_runtime_destroy(struct raft_runtime *rt);

/*
 * A message received from a peer: copied and queued for the driver (any
 * thread; never blocks on the driver). Dropped when the inbox is full.
 */
void raft_runtime_receive(struct raft_runtime *rt,
			  const struct raft_message *m);

/*
 * A snapshot chunk or acknowledgment received from a peer (any thread;
 * copied, never blocks). Invalid ones and those beyond the inbox's bound
 * are dropped. (A RAFT_MSG_SNAPSHOT given to raft_runtime_receive is
 * dropped: only the runtime itself, once the state it describes is
 * installed, hands one to its core.)
 */
void raft_runtime_receive_chunk(struct raft_runtime *rt,
				const struct raft_chunk *c);

/*
 * The outcome of a proposal, called exactly once on a runtime thread (must
 * not block): rc 0 committed and applied on this node, result is the
 * state machine's (valid during the call); otherwise the outcome is
 * unknown or it was not accepted, and the caller may retry with the SAME
 * id: -ETIMEDOUT (timeout_ms passed), -EPERM (timeout_ms passed and the
 * last attempt found no leader), -EBUSY (timeout_ms passed and the last
 * attempt met the leader's uncommitted cap), -EIO (the node stopped on an
 * error), -ESHUTDOWN (the runtime is being destroyed). Until timeout_ms
 * the runtime itself proposes again (see raft_runtime_options.retry_ms).
 */
typedef void (*raft_runtime_done_fn)(void *ctx, int rc, const void *result,
				     size_t result_size);

/*
 * Propose one command (data copied, and kept until done is called, for
 * retries; size at most RAFT_MAX_ENTRY_BYTES) whose payload carries id
 * (the state machine reports it on apply, and must answer a duplicate of
 * an id with the original result: retries put copies in the log). Any
 * thread. Returns 0 (done will be called), or at once -EINVAL, -ENOMEM,
 * -EEXIST (a proposal with this id is already waiting here), -EIO (the
 * node stopped), -ESHUTDOWN; done is not called then.
 */
int raft_runtime_propose_async(struct raft_runtime *rt,
			       const struct raft_proposal_id *id,
			       const void *data, uint32_t size,
			       uint32_t timeout_ms, raft_runtime_done_fn done,
			       void *ctx);

/*
 * The same, waiting for the outcome: returns its rc; on 0 the result is
 * copied to result (up to result_cap bytes; *result_size gets its full
 * size). Not from a runtime thread or callback.
 */
int raft_runtime_propose(struct raft_runtime *rt,
			 const struct raft_proposal_id *id, const void *data,
			 uint32_t size, uint32_t timeout_ms, void *result,
			 size_t result_cap, size_t *result_size);

/* The outcome of a read point (see raft_runtime_read_index). */
typedef void (*raft_runtime_read_fn)(void *ctx, int rc);

/*
 * A linearizable read point. done(ctx, 0) is called once this node's state
 * machine has applied every entry committed before the call began (the
 * core's ReadIndex: the leader confirms its leadership with a heartbeat
 * round that started after the request, then the node waits until its
 * apply thread applied up to that read index). Reads that arrive while a
 * round is in flight share the next round (one raft_read_index context per
 * driver round, not per read). A round that fails (index 0: leadership lost)
 * or cannot start (no leader known) is retried on later ticks until the
 * timeout; a round that gets no answer within retry_ms (a lost forwarded
 * request) is abandoned and started again. Any thread. Returns 0 (done is
 * called exactly once, later, on a runtime thread, never inside this call)
 * or at once -EINVAL (done NULL), -ENOMEM, -EIO (node stopped),
 * -ESHUTDOWN. done's rc: 0, -ETIMEDOUT, -EIO (the node stopped),
 * -ESHUTDOWN (runtime destroyed). done must not block: it runs on the
 * driver or the apply thread.
 */
int raft_runtime_read_index(struct raft_runtime *rt, uint32_t timeout_ms,
			    raft_runtime_read_fn done, void *ctx);

/*
 * Administrative requests, carried out by the driver on the core:
 * membership changes (raft_change_membership: ADD_LEARNER needs the
 * address; PROMOTE; REMOVE) and a leadership transfer
 * (raft_transfer_leadership: id 0 picks the most up-to-date voter). Any
 * thread. done(ctx, rc, index) is called once, on the driver thread, with
 * the core's answer (0 accepted, index: the configuration entry; or the
 * core's refusal: -EPERM not leader, -EBUSY a change is pending or the
 * term has no commit yet, -EEXIST, -ENOENT, -EINVAL, -ENOSPC), or -EIO /
 * -ESHUTDOWN when the node stopped first. What follows (the entry's
 * commit, a learner's catch-up and promotion, the new leader) shows in
 * raft_runtime_status. Returns 0, or at once -EINVAL, -ENOMEM, -EIO,
 * -ESHUTDOWN (done is not called then).
 */
enum raft_runtime_admin_op {
	RAFT_RUNTIME_ADD_LEARNER = 1,
	RAFT_RUNTIME_PROMOTE = 2,
	RAFT_RUNTIME_REMOVE = 3,
	RAFT_RUNTIME_TRANSFER = 4,
};
typedef void (*raft_runtime_admin_fn)(void *ctx, int rc, uint64_t index);
int raft_runtime_admin(struct raft_runtime *rt, uint8_t op, uint64_t id,
		       const char *address, raft_runtime_admin_fn done,
		       void *ctx);

struct raft_runtime_status {
	struct raft_status raft;  /* the core, as of the driver's last round */
	uint64_t durable_index;   /* the log store holds up to here */
	uint64_t applied_index;   /* the state machine applied up to here */
	uint64_t syncs;           /* synced store writes */
	uint64_t synced_updates;  /* core updates those writes carried */
	uint64_t dropped_messages; /* inbox full or transport refused */
	int failed;               /* 0, or the error that stopped the node */
	char error[320];          /* what failed and what to do */
	struct raft_configuration conf;  /* the configuration in force */
	/* Leader only (n_progress 0 elsewhere): each member's progress (the
	 * other members; the leader is not listed). */
	uint32_t n_progress;
	struct raft_progress_info progress[RAFT_MAX_MEMBERS];
	/* Per member of conf (same order as conf.members): milliseconds since
	 * a message from it was received, UINT64_MAX when never (0 for this
	 * node itself). */
	uint64_t heard_ms_ago[RAFT_MAX_MEMBERS];
	/* Snapshots: the latest one this node took or installed (0: none),
	 * the first entry its log store holds, how many were taken
	 * (compactions) and installed. */
	uint64_t snapshot_index;
	uint64_t snapshot_term;
	uint64_t log_first_index;
	uint64_t snapshots_taken;
	uint64_t snapshots_installed;
	bool awaiting_install;    /* raft_runtime_options.await_install, not
				     installed yet */
	/* Transfers in progress: streams this node sends (sending) and the
	 * one it receives, with the bytes acknowledged (sending) or
	 * received so far, the average rate and how long it has run. */
	uint32_t n_transfers;
	struct raft_runtime_transfer {
		uint64_t peer;
		bool sending;
		uint64_t index; /* the snapshot's */
		uint64_t bytes;
		uint64_t bytes_per_s;
		uint64_t elapsed_ms;
	} transfers[RAFT_MAX_MEMBERS];
};

/*
 * Take a snapshot now (`raftfs snapshot`), whatever the policy says: the
 * state machine is synced and the log compacted below what the sync
 * covered (keeping snapshot_keep_entries), as soon as the driver gets to
 * it. Any thread; returns at once: 0, or -EOPNOTSUPP when the state
 * machine or the transport has no snapshot support, -EIO when the node
 * stopped. Watch raft_runtime_status.snapshots_taken for the result.
 */
int raft_runtime_snapshot(struct raft_runtime *rt);
/* Leader: stream a snapshot to peer (a follower whose state machine
 * awaits one, raft_runtime_options.await_install), on the driver thread.
 * 0 (asked; the driver logs when it is not the leader), -EOPNOTSUPP
 * without snapshot support, -EIO the node failed, -EINVAL bad peer. */
int raft_runtime_request_snapshot(struct raft_runtime *rt, uint64_t peer);

/* Any thread. A snapshot as of the driver's last round (heard_ms_ago as of
 * this call). */
void raft_runtime_status_get(struct raft_runtime *rt,
			     struct raft_runtime_status *st);

/* ---------------------------------------------------------------------- */
/* Checksums.                                                              */

/* CRC-32C (Castagnoli) of data continued from crc (start from 0): the
 * hardware instruction where the CPU has it. Any thread. The same function
 * serves LevelDB (raft/crc32c.c). */
uint32_t raft_crc32c(uint32_t crc, const void *data, size_t len);
/* Whether raft_crc32c uses the CPU's instruction. */
bool raft_crc32c_hardware(void);

#endif
