/*
 * Unit tests of the Raft core on its own: quorum arithmetic, configuration
 * encoding, the validation of bad input (every malformed or impossible
 * message gets -EINVAL or is ignored, never a crash, and changes nothing),
 * and failing the Nth allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"
#include "tests/lib/test_main.h"

/* quorum.c's functions are private to raft/; exercised through a node. */

static struct raft *node(uint64_t id, uint32_t voters)
{
	struct raft_options o;
	raft_options_default(&o, id);
	struct raft *r = NULL;
	assert_int_equal(raft_create(&o, &r), 0);
	struct raft_configuration c = {.n = voters};
	for (uint32_t i = 0; i < voters; i++) {
		c.members[i].id = i + 1;
		c.members[i].role = RAFT_VOTER;
	}
	assert_int_equal(raft_bootstrap(r, &c), 0);
	return r;
}

/* Hand out and acknowledge everything, persisting at once. */
static void drain(struct raft *r)
{
	while (raft_has_update(r)) {
		struct raft_update u;
		assert_int_equal(raft_update_get(r, &u), 0);
		uint64_t last = u.n_entries ? u.entries[u.n_entries - 1].index : 0;
		uint64_t term = u.n_entries ? u.entries[u.n_entries - 1].term : 0;
		raft_update_done(r, &u);
		if (last)
			assert_int_equal(raft_persisted(r, last, term), 0);
	}
}

static void expect_unchanged(struct raft *r, const struct raft_status *before)
{
	struct raft_status after;
	raft_status_get(r, &after);
	assert_memory_equal(before, &after, sizeof(after));
	char why[200];
	assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
}

static void test_options_validated(void **state)
{
	(void)state;
	struct raft_options o;
	struct raft *r = NULL;
	raft_options_default(&o, 0);
	assert_int_equal(raft_create(&o, &r), -EINVAL);
	raft_options_default(&o, 1);
	o.heartbeat_ticks = o.election_ticks;
	assert_int_equal(raft_create(&o, &r), -EINVAL);
	raft_options_default(&o, 1);
	o.max_batch_bytes = RAFT_MAX_BATCH_BYTES + 1;
	assert_int_equal(raft_create(&o, &r), -EINVAL);
	assert_null(r);
}

static void test_configuration_round_trip(void **state)
{
	(void)state;
	struct raft_configuration c = {.n = 3}, d;
	for (uint32_t i = 0; i < 3; i++) {
		c.members[i].id = 10 + i;
		c.members[i].role = i == 2 ? RAFT_LEARNER : RAFT_VOTER;
		strcpy(c.members[i].address, "127.0.0.1:7000");
	}
	uint8_t buf[1024];
	size_t size = raft_configuration_encoded_size(3);
	raft_configuration_encode(&c, buf);
	assert_int_equal(raft_configuration_decode(buf, size, &d), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.members[2].role, RAFT_LEARNER);
	assert_string_equal(d.members[1].address, "127.0.0.1:7000");
	assert_non_null(raft_configuration_get(&d, 11));
	assert_null(raft_configuration_get(&d, 99));

	/* Every corruption is refused. */
	assert_int_equal(raft_configuration_decode(buf, size - 1, &d), -EINVAL);
	uint8_t bad[1024];
	memcpy(bad, buf, size);
	bad[0] = 99; /* version */
	assert_int_equal(raft_configuration_decode(bad, size, &d), -EINVAL);
	memcpy(bad, buf, size);
	memcpy(bad + 2 + 73, bad + 2, 8); /* duplicate id */
	assert_int_equal(raft_configuration_decode(bad, size, &d), -EINVAL);
	memcpy(bad, buf, size);
	memset(bad + 2, 0, 8); /* id 0 */
	assert_int_equal(raft_configuration_decode(bad, size, &d), -EINVAL);
	memcpy(bad, buf, size);
	bad[2 + 8] = 7; /* role */
	assert_int_equal(raft_configuration_decode(bad, size, &d), -EINVAL);
	memcpy(bad, buf, size);
	memset(bad + 2 + 9, 'a', RAFT_MAX_ADDRESS); /* unterminated */
	assert_int_equal(raft_configuration_decode(bad, size, &d), -EINVAL);
}

static void test_bootstrap_only_once(void **state)
{
	(void)state;
	struct raft *r = node(1, 3);
	struct raft_configuration c = {.n = 1};
	c.members[0].id = 1;
	c.members[0].role = RAFT_VOTER;
	assert_int_equal(raft_bootstrap(r, &c), -EEXIST);
	raft_destroy(r);
}

static void test_bad_messages_rejected(void **state)
{
	(void)state;
	struct raft *r = node(1, 3);
	drain(r);
	struct raft_status before;
	raft_status_get(r, &before);
	uint8_t payload[8] = {0};
	struct raft_entry e[2] = {
		{.term = 1, .index = 2, .type = RAFT_ENTRY_NORMAL, .size = 8,
		 .data = payload},
		{.term = 1, .index = 4, .type = RAFT_ENTRY_NORMAL, .size = 8,
		 .data = payload},
	};
	struct raft_message base = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1,
				    .term = 1, .index = 1, .log_term = 1};
	struct raft_message m;

	m = base;
	m.to = 3; /* not for us */
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.from = 0;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.from = 1; /* ourselves */
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.type = 200;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.n_entries = 2; /* indexes 2, 4: not contiguous */
	m.entries = e;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	e[1].index = 3;
	e[1].term = 5; /* from the future */
	m.n_entries = 2;
	m.entries = e;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.n_entries = RAFT_MAX_BATCH_ENTRIES + 1;
	m.entries = e;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	e[0].size = RAFT_MAX_ENTRY_BYTES + 1;
	m.n_entries = 1;
	m.entries = e;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	e[0].size = 8;
	m = base;
	m.log_term = 7; /* prev term above the message's term */
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.index = UINT64_MAX - 1; /* would overflow */
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.n_entries = 1;
	m.entries = NULL;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.type = RAFT_MSG_VOTE;
	m.log_term = 9; /* claims a last term above its term */
	assert_int_equal(raft_step(r, &m), -EINVAL);
	m = base;
	m.type = RAFT_MSG_SNAPSHOT;
	m.snapshot = NULL;
	assert_int_equal(raft_step(r, &m), -EINVAL);
	expect_unchanged(r, &before);
	raft_destroy(r);
}

static void test_stale_and_unknown_ignored(void **state)
{
	(void)state;
	/* Make node 1 leader of a 3-node cluster in term 2. */
	struct raft *r = node(1, 3);
	drain(r);
	for (int i = 0; i < 40 && !raft_is_leader(r); i++) {
		raft_tick(r);
		drain(r);
		struct raft_message pre = {.type = RAFT_MSG_PREVOTE_RESP,
					   .from = 2, .to = 1,
					   .term = raft_term(r) + 1};
		raft_step(r, &pre);
		drain(r);
		struct raft_message vote = {.type = RAFT_MSG_VOTE_RESP,
					    .from = 2, .to = 1,
					    .term = raft_term(r)};
		raft_step(r, &vote);
		drain(r);
	}
	assert_true(raft_is_leader(r));
	struct raft_status before;
	raft_status_get(r, &before);

	/* A stale-term vote request and append response change nothing. */
	struct raft_message m = {.type = RAFT_MSG_APPEND_RESP, .from = 2,
				 .to = 1, .term = 1, .index = 1};
	assert_int_equal(raft_step(r, &m), 0);
	/* An answer from a node outside the configuration is ignored. */
	m = (struct raft_message){.type = RAFT_MSG_APPEND_RESP, .from = 9,
				  .to = 1, .term = raft_term(r), .index = 1};
	assert_int_equal(raft_step(r, &m), 0);
	/* An impossible hint (far beyond the log) is clamped. */
	m = (struct raft_message){.type = RAFT_MSG_APPEND_RESP, .from = 2,
				  .to = 1, .term = raft_term(r), .reject = true,
				  .index = raft_last_index(r),
				  .hint_index = UINT64_MAX, .hint_term = UINT64_MAX};
	assert_int_equal(raft_step(r, &m), 0);
	/* Acknowledging entries the leader never had is refused. */
	m = (struct raft_message){.type = RAFT_MSG_APPEND_RESP, .from = 3,
				  .to = 1, .term = raft_term(r),
				  .index = raft_last_index(r) + 100};
	assert_int_equal(raft_step(r, &m), -EINVAL);
	drain(r);
	char why[200];
	assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
	assert_true(raft_is_leader(r));
	assert_int_equal(raft_term(r), before.term);
	assert_int_equal(raft_commit_index(r), before.commit);
	raft_destroy(r);
}

/* Node 1 leads a 3-node cluster with its term's entry committed. */
static struct raft *leader_of_three(void)
{
	struct raft *r = node(1, 3);
	drain(r);
	for (int i = 0; i < 40 && !raft_is_leader(r); i++) {
		raft_tick(r);
		drain(r);
		struct raft_message pre = {.type = RAFT_MSG_PREVOTE_RESP,
					   .from = 2, .to = 1,
					   .term = raft_term(r) + 1};
		raft_step(r, &pre);
		drain(r);
		struct raft_message vote = {.type = RAFT_MSG_VOTE_RESP,
					    .from = 2, .to = 1,
					    .term = raft_term(r)};
		raft_step(r, &vote);
		drain(r);
	}
	assert_true(raft_is_leader(r));
	struct raft_message ack = {.type = RAFT_MSG_APPEND_RESP, .from = 2,
				   .to = 1, .term = raft_term(r),
				   .index = raft_last_index(r)};
	assert_int_equal(raft_step(r, &ack), 0);
	drain(r);
	assert_int_equal(raft_commit_index(r), raft_last_index(r));
	return r;
}

/* Hand out one update: the read round its heartbeats start (0: none, and
 * then no heartbeat at all), the contexts of its read states in *ctx. */
static uint64_t flush_reads(struct raft *r, uint64_t *ctx, uint32_t *n_ctx)
{
	uint64_t round = 0;
	uint32_t heartbeats = 0;
	*n_ctx = 0;
	if (!raft_has_update(r))
		return 0;
	struct raft_update u;
	assert_int_equal(raft_update_get(r, &u), 0);
	for (uint32_t i = 0; i < u.n_messages; i++) {
		if (u.messages[i].type != RAFT_MSG_HEARTBEAT)
			continue;
		heartbeats++;
		assert_true(u.messages[i].context != 0);
		assert_true(round == 0 || round == u.messages[i].context);
		round = u.messages[i].context;
	}
	assert_int_equal(heartbeats, round ? 2 : 0); /* both peers */
	for (uint32_t i = 0; i < u.n_read_states; i++) {
		assert_true(u.read_states[i].index != 0);
		ctx[(*n_ctx)++] = u.read_states[i].context;
	}
	raft_update_done(r, &u);
	return round;
}

static void echo_round(struct raft *r, uint64_t from, uint64_t round)
{
	struct raft_message m = {.type = RAFT_MSG_HEARTBEAT_RESP, .from = from,
				 .to = 1, .term = raft_term(r),
				 .context = round};
	assert_int_equal(raft_step(r, &m), 0);
}

/* A read arriving while rounds are out gets a round of its own at once
 * (about one round trip per read, not one to two); reads arriving
 * together share one; at most 4 rounds are out; only an echo of a round
 * started after a read arrived confirms it. */
static void test_read_rounds_overlap(void **state)
{
	(void)state;
	struct raft *r = leader_of_three();
	uint64_t ctx[8];
	uint32_t n;
	assert_int_equal(raft_read_index(r, 1), 0);
	uint64_t a = flush_reads(r, ctx, &n);
	assert_true(a != 0);
	/* Round a is out: read 2 does not wait for it. */
	assert_int_equal(raft_read_index(r, 2), 0);
	uint64_t b = flush_reads(r, ctx, &n);
	assert_int_equal(b, a + 1);
	/* Reads arriving together share a round. */
	assert_int_equal(raft_read_index(r, 3), 0);
	assert_int_equal(raft_read_index(r, 4), 0);
	uint64_t c = flush_reads(r, ctx, &n);
	assert_int_equal(c, b + 1);
	assert_int_equal(raft_read_index(r, 5), 0);
	uint64_t d = flush_reads(r, ctx, &n);
	assert_int_equal(d, c + 1);
	/* Four rounds out: read 6 waits for the oldest to be answered. */
	assert_int_equal(raft_read_index(r, 6), 0);
	assert_int_equal(flush_reads(r, ctx, &n), 0);
	assert_int_equal(n, 0);
	/* An echo of a round never started proves nothing. */
	echo_round(r, 2, d + 100);
	assert_int_equal(flush_reads(r, ctx, &n), 0);
	assert_int_equal(n, 0);
	/* Node 2 answers round a: read 1 completes (a majority with the
	 * leader), and read 6 gets its round. */
	echo_round(r, 2, a);
	uint64_t e = flush_reads(r, ctx, &n);
	assert_int_equal(e, d + 1);
	assert_int_equal(n, 1);
	assert_int_equal(ctx[0], 1);
	/* Node 3 answers round d: it confirms every read before it. */
	echo_round(r, 3, d);
	assert_int_equal(flush_reads(r, ctx, &n), 0);
	assert_int_equal(n, 4);
	for (uint32_t i = 0; i < n; i++)
		assert_true(ctx[i] >= 2 && ctx[i] <= 5);
	/* Read 6 arrived after round d started: only e confirms it. */
	echo_round(r, 2, d);
	assert_int_equal(flush_reads(r, ctx, &n), 0);
	assert_int_equal(n, 0);
	echo_round(r, 2, e);
	assert_int_equal(flush_reads(r, ctx, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ctx[0], 6);
	char why[200];
	assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
	raft_destroy(r);
}

/* A follower's forwarded reads are served the same way: each gets a
 * round at once though another is out. */
static void test_forwarded_read_rounds_overlap(void **state)
{
	(void)state;
	struct raft *r = leader_of_three();
	uint64_t ctx[8];
	uint32_t n;
	struct raft_message m = {.type = RAFT_MSG_READ_INDEX, .from = 2,
				 .to = 1, .context = 11};
	assert_int_equal(raft_step(r, &m), 0);
	uint64_t a = flush_reads(r, ctx, &n);
	assert_true(a != 0);
	m.from = 3;
	m.context = 12;
	assert_int_equal(raft_step(r, &m), 0);
	uint64_t b = flush_reads(r, ctx, &n);
	assert_int_equal(b, a + 1);
	/* Node 3 echoes round b: both are confirmed and answered. */
	echo_round(r, 3, b);
	struct raft_update u;
	assert_true(raft_has_update(r));
	assert_int_equal(raft_update_get(r, &u), 0);
	uint32_t answers = 0;
	for (uint32_t i = 0; i < u.n_messages; i++) {
		const struct raft_message *o = &u.messages[i];
		if (o->type != RAFT_MSG_READ_INDEX_RESP)
			continue;
		answers++;
		assert_false(o->reject);
		assert_int_equal(o->index, raft_commit_index(r));
		assert_int_equal(o->context, o->to == 2 ? 11 : 12);
	}
	assert_int_equal(answers, 2);
	raft_update_done(r, &u);
	raft_destroy(r);
}

static void test_follower_rejects_overwriting_commit(void **state)
{
	(void)state;
	struct raft *r = node(1, 3);
	drain(r);
	uint8_t payload[4] = {1, 2, 3, 4};
	struct raft_entry e[2] = {
		{.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .size = 4,
		 .data = payload},
		{.term = 2, .index = 3, .type = RAFT_ENTRY_NORMAL, .size = 4,
		 .data = payload},
	};
	struct raft_message m = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1,
				 .term = 2, .index = 1, .log_term = 1,
				 .commit = 3, .n_entries = 2, .entries = e};
	assert_int_equal(raft_step(r, &m), 0);
	drain(r);
	assert_int_equal(raft_commit_index(r), 3);
	/* A leader of a later term claiming a different entry 2 is lying
	 * about committed history: what lies below our commit index is never
	 * rewritten (the message is answered with our commit index). */
	struct raft_entry liar = {.term = 3, .index = 2,
				  .type = RAFT_ENTRY_NORMAL, .size = 4,
				  .data = payload};
	m = (struct raft_message){.type = RAFT_MSG_APPEND, .from = 3, .to = 1,
				  .term = 3, .index = 1, .log_term = 1,
				  .commit = 3, .n_entries = 1, .entries = &liar};
	assert_int_equal(raft_step(r, &m), 0);
	drain(r);
	assert_int_equal(raft_term_at(r, 2), 2);
	raft_destroy(r);
}

static void test_reads_and_transfer_refused_without_leader(void **state)
{
	(void)state;
	struct raft *r = node(1, 3);
	drain(r);
	/* No leader known: nothing to ask. */
	assert_int_equal(raft_read_index(r, 7), -EPERM);
	assert_int_equal(raft_transfer_leadership(r, 2), -EPERM);
	/* An answer to a read nobody forwarded, and a TimeoutNow from a node
	 * that is not our leader, change nothing. */
	struct raft_status before;
	raft_status_get(r, &before);
	struct raft_message m = {.type = RAFT_MSG_READ_INDEX_RESP, .from = 2,
				 .to = 1, .context = 7, .index = 99};
	assert_int_equal(raft_step(r, &m), 0);
	assert_false(raft_has_update(r));
	expect_unchanged(r, &before);
	m = (struct raft_message){.type = RAFT_MSG_TIMEOUT_NOW, .from = 2,
				  .to = 1, .term = 0};
	assert_int_equal(raft_step(r, &m), 0);
	expect_unchanged(r, &before);
	/* A follower asked for a read index answers "unknown". */
	m = (struct raft_message){.type = RAFT_MSG_READ_INDEX, .from = 2,
				  .to = 1, .context = 5};
	assert_int_equal(raft_step(r, &m), 0);
	struct raft_update u;
	assert_int_equal(raft_update_get(r, &u), 0);
	assert_int_equal(u.n_messages, 1);
	assert_int_equal(u.messages[0].type, RAFT_MSG_READ_INDEX_RESP);
	assert_true(u.messages[0].reject);
	assert_int_equal(u.messages[0].context, 5);
	raft_update_done(r, &u);
	raft_destroy(r);
}

static void test_read_cancelled(void **state)
{
	(void)state;
	struct raft *r = node(1, 3);
	drain(r);
	/* Node 2 leads term 2: its heartbeat makes it our leader. */
	struct raft_message hb = {.type = RAFT_MSG_HEARTBEAT, .from = 2,
				  .to = 1, .term = 2};
	assert_int_equal(raft_step(r, &hb), 0);
	drain(r);
	assert_int_equal(raft_leader(r), 2);
	/* A forwarded read given up on is dropped: its late answer makes no
	 * read state, and it cannot be cancelled twice. */
	assert_int_equal(raft_read_index(r, 7), 0);
	drain(r);
	assert_int_equal(raft_read_index_cancel(r, 7), 0);
	assert_int_equal(raft_read_index_cancel(r, 7), -ENOENT);
	assert_int_equal(raft_read_index_cancel(r, 8), -ENOENT);
	struct raft_message resp = {.type = RAFT_MSG_READ_INDEX_RESP,
				    .from = 2, .to = 1, .context = 7,
				    .index = 1};
	assert_int_equal(raft_step(r, &resp), 0);
	assert_false(raft_has_update(r));
	/* Another read still gets its answer. */
	assert_int_equal(raft_read_index(r, 9), 0);
	drain(r);
	resp.context = 9;
	assert_int_equal(raft_step(r, &resp), 0);
	struct raft_update u;
	assert_int_equal(raft_update_get(r, &u), 0);
	assert_int_equal(u.n_read_states, 1);
	assert_int_equal(u.read_states[0].context, 9);
	raft_update_done(r, &u);
	raft_destroy(r);
}

static void test_single_voter_reads_and_transfer(void **state)
{
	(void)state;
	struct raft *r = node(1, 1);
	drain(r);
	for (int i = 0; i < 40 && !raft_is_leader(r); i++) {
		raft_tick(r);
		drain(r);
	}
	assert_true(raft_is_leader(r));
	drain(r); /* the no-op commits on its own persistence */
	assert_int_equal(raft_read_index(r, 42), 0);
	struct raft_update u;
	assert_int_equal(raft_update_get(r, &u), 0);
	assert_int_equal(u.n_read_states, 1);
	assert_int_equal(u.read_states[0].context, 42);
	assert_int_equal(u.read_states[0].index, raft_commit_index(r));
	raft_update_done(r, &u);
	/* Nobody to hand leadership to. */
	assert_int_equal(raft_transfer_leadership(r, 0), -EINVAL);
	assert_int_equal(raft_transfer_leadership(r, 1), -EINVAL);
	raft_destroy(r);
}

static struct raft *single_leader(void)
{
	struct raft *r = node(1, 1);
	drain(r);
	for (int i = 0; i < 40 && !raft_is_leader(r); i++) {
		raft_tick(r);
		drain(r);
	}
	assert_true(raft_is_leader(r));
	drain(r);
	return r;
}

static void test_membership_errors(void **state)
{
	(void)state;
	struct raft *f = node(1, 3);
	drain(f);
	assert_int_equal(raft_change_membership(f, RAFT_ADD_LEARNER, 9,
						"127.0.0.9:7000", NULL),
			 -EPERM);
	raft_destroy(f);

	struct raft *r = single_leader();
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 0, "x:1",
						NULL),
			 -EINVAL);
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 2, "",
						NULL),
			 -EINVAL);
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 1, "x:1",
						NULL),
			 -EEXIST);
	assert_int_equal(raft_change_membership(r, RAFT_PROMOTE, 1, NULL,
						NULL),
			 -EINVAL); /* already a voter */
	assert_int_equal(raft_change_membership(r, RAFT_PROMOTE, 5, NULL,
						NULL),
			 -ENOENT);
	assert_int_equal(raft_change_membership(r, RAFT_REMOVE, 1, NULL, NULL),
			 -EINVAL); /* the last voter */
	uint64_t index = 0;
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 2,
						"127.0.0.2:7000", &index),
			 0);
	assert_true(index > 0);
	/* Until it commits, no other change. */
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 3,
						"127.0.0.3:7000", NULL),
			 -EBUSY);
	drain(r);
	assert_true(raft_commit_index(r) >= index);
	assert_int_equal(raft_change_membership(r, RAFT_REMOVE, 2, NULL, NULL),
			 0);
	drain(r);
	/* A tombstone: never again, and its messages are refused. */
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 2,
						"127.0.0.2:7000", NULL),
			 -EEXIST);
	struct raft_message m = {.type = RAFT_MSG_APPEND_RESP, .from = 2,
				 .to = 1, .term = raft_term(r), .index = 1};
	assert_int_equal(raft_step(r, &m), -EPERM);
	raft_destroy(r);
}

static void test_snapshot_taken_validated(void **state)
{
	(void)state;
	struct raft *r = single_leader();
	struct raft_snapshot_meta meta;
	uint64_t applied = raft_commit_index(r);
	assert_int_equal(raft_snapshot_taken(r, applied + 1, 0, &meta), -EINVAL);
	assert_int_equal(raft_snapshot_taken(r, 0, 0, &meta), -EINVAL);
	assert_int_equal(raft_snapshot_taken(r, applied, 0, &meta), 0);
	assert_int_equal(meta.index, applied);
	assert_int_equal(meta.term, raft_term_at(r, applied));
	assert_int_equal(meta.conf.n, 1);
	assert_int_equal(raft_first_index(r), applied + 1);
	/* Not newer than the last one. */
	assert_int_equal(raft_snapshot_taken(r, applied, 0, &meta), -EINVAL);
	/* Stale or unknown transfer reports change nothing. */
	assert_int_equal(raft_snapshot_sent(r, 7, applied, true), 0);
	char why[200];
	assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
	raft_destroy(r);
}

/* A follower asks for a snapshot (a resync): only the leader streams one,
 * to a member other than itself, once; the update lists it. */
static void test_snapshot_request(void **state)
{
	(void)state;
	struct raft *f = node(1, 3);
	drain(f);
	assert_int_equal(raft_snapshot_request(f, 2), -EPERM);
	raft_destroy(f);

	struct raft *r = single_leader();
	assert_int_equal(raft_snapshot_request(r, 1), -ENOENT);
	assert_int_equal(raft_snapshot_request(r, 7), -ENOENT);
	assert_int_equal(raft_change_membership(r, RAFT_ADD_LEARNER, 2,
						"127.0.0.2:7000", NULL),
			 0);
	drain(r);
	assert_int_equal(raft_snapshot_request(r, 2), 0);
	assert_int_equal(raft_snapshot_request(r, 2), 0); /* on its way */
	assert_true(raft_has_update(r));
	struct raft_update u;
	assert_int_equal(raft_update_get(r, &u), 0);
	assert_int_equal(u.n_snapshot_sends, 1);
	assert_int_equal(u.snapshot_sends[0].peer, 2);
	raft_update_done(r, &u);
	drain(r);
	char why[200];
	assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
	raft_destroy(r);
}

/* A passive node (its state machine awaits a snapshot) never campaigns,
 * even alone; it still answers as a follower. */
static void test_passive_never_campaigns(void **state)
{
	(void)state;
	struct raft_options o;
	raft_options_default(&o, 1);
	o.passive = true;
	struct raft *r = NULL;
	assert_int_equal(raft_create(&o, &r), 0);
	struct raft_configuration c = {.n = 1};
	c.members[0].id = 1;
	c.members[0].role = RAFT_VOTER;
	assert_int_equal(raft_bootstrap(r, &c), 0);
	drain(r);
	uint64_t term = raft_term(r);
	for (int i = 0; i < 100; i++) {
		raft_tick(r);
		drain(r);
	}
	assert_false(raft_is_leader(r));
	assert_int_equal(raft_term(r), term);
	assert_int_equal(raft_transfer_leadership(r, 1), -EPERM);
	raft_destroy(r);
}

/* ---- failing the Nth allocation ---- */

struct failing_alloc {
	long countdown; /* fail when it reaches 0 */
	long failures;
};

static void *f_malloc(void *ctx, size_t size)
{
	struct failing_alloc *f = ctx;
	if (f->countdown-- == 0) {
		f->failures++;
		return NULL;
	}
	return malloc(size);
}

static void *f_realloc(void *ctx, void *p, size_t size)
{
	struct failing_alloc *f = ctx;
	if (f->countdown-- == 0) {
		f->failures++;
		return NULL;
	}
	return realloc(p, size);
}

static void f_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* Drive a single-node cluster through election, proposals and commits with
 * allocation number n failing; every error must be clean. */
static void run_with_failure(long n)
{
	struct failing_alloc f = {.countdown = n};
	struct raft_options o;
	raft_options_default(&o, 1);
	o.alloc = (struct raft_alloc){f_malloc, f_realloc, f_free, &f};
	struct raft *r = NULL;
	if (raft_create(&o, &r) != 0) {
		assert_null(r);
		return;
	}
	struct raft_configuration c = {.n = 1};
	c.members[0].id = 1;
	c.members[0].role = RAFT_VOTER;
	(void)raft_bootstrap(r, &c);
	uint8_t data[16] = {0};
	for (int step = 0; step < 60; step++) {
		(void)raft_tick(r);
		const void *d = data;
		uint32_t size = sizeof(data);
		(void)raft_propose(r, &d, &size, 1, NULL, NULL);
		(void)raft_read_index(r, (uint64_t)step);
		if (raft_has_update(r)) {
			struct raft_update u;
			if (raft_update_get(r, &u) == 0) {
				uint64_t last = u.n_entries
							? u.entries[u.n_entries - 1].index
							: 0;
				uint64_t term = u.n_entries
							? u.entries[u.n_entries - 1].term
							: 0;
				raft_update_done(r, &u);
				if (last)
					(void)raft_persisted(r, last, term);
			}
		}
		char why[200];
		assert_int_equal(raft_check_invariants(r, why, sizeof(why)), 0);
	}
	raft_destroy(r);
}

static void test_failing_nth_allocation(void **state)
{
	(void)state;
	for (long n = 0; n < 200; n++)
		run_with_failure(n);
}

TEST_MAIN(cmocka_unit_test(test_options_validated),
	  cmocka_unit_test(test_configuration_round_trip),
	  cmocka_unit_test(test_bootstrap_only_once),
	  cmocka_unit_test(test_bad_messages_rejected),
	  cmocka_unit_test(test_stale_and_unknown_ignored),
	  cmocka_unit_test(test_follower_rejects_overwriting_commit),
	  cmocka_unit_test(test_reads_and_transfer_refused_without_leader),
	  cmocka_unit_test(test_read_rounds_overlap),
	  cmocka_unit_test(test_forwarded_read_rounds_overlap),
	  cmocka_unit_test(test_single_voter_reads_and_transfer),
	  cmocka_unit_test(test_membership_errors),
	  cmocka_unit_test(test_read_cancelled),
	  cmocka_unit_test(test_snapshot_taken_validated),
	  cmocka_unit_test(test_snapshot_request),
	  cmocka_unit_test(test_passive_never_campaigns),
	  cmocka_unit_test(test_failing_nth_allocation))
