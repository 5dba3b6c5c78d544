/*
 * The Raft runtime (raft/raft.h, runtime section) on the in-process
 * harness: real stores, real threads, the loopback transport.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/logstore.h"
#include "tests/lib/test_main.h"
#include "tests/runtime/harness.h"

#define TIMEOUT_MS 5000u

/* The cluster of the running test, destroyed by teardown also when an
 * assertion failed (its temp dir is removed either way). */
static struct harness *current;

static void end_cluster(struct harness *h)
{
	harness_destroy(h);
	current = NULL;
}

static int teardown(void **state)
{
	(void)state;
	harness_destroy(current);
	current = NULL;
	return 0;
}

static struct harness *start_cluster(uint32_t nodes, uint32_t apply_delay_us,
				     uint64_t apply_queue_bytes)
{
	struct harness_options o;
	struct harness *h = NULL;
	harness_options_default(&o, nodes);
	o.apply_delay_us = apply_delay_us;
	o.apply_queue_bytes = apply_queue_bytes;
	assert_int_equal(harness_create(&o, &h), 0);
	current = h;
	for (uint64_t id = 1; id <= nodes; id++)
		assert_int_equal(harness_start_node(h, id), 0);
	return h;
}

/* Propose through node until accepted (retrying with the same id while no
 * leader is known or the outcome is unknown). */
static void propose_ok(struct harness *h, uint64_t node, uint32_t i,
		       struct harness_result *res)
{
	struct raft_proposal_id id;
	char payload[32];
	int rc;
	uint64_t end = harness_now_us() + 10u * 1000000u;

	harness_next_id(h, node, &id);
	snprintf(payload, sizeof(payload), "command %u", i);
	do {
		rc = harness_propose(h, node, &id, payload,
				     (uint32_t)strlen(payload), TIMEOUT_MS, res);
		if (rc != 0)
			usleep(5000);
	} while (rc != 0 && rc != -EIO && harness_now_us() < end);
	if (rc != 0)
		fail_msg("proposal %u through node %llu: %d", i,
			 (unsigned long long)node, rc);
}

static void test_single_node(void **state)
{
	(void)state;
	struct harness *h = start_cluster(1, 0, 0);
	struct harness_result res, prev = {0, 0};
	struct raft_runtime_status st;

	assert_int_equal(harness_wait_leader(h, TIMEOUT_MS), 1);
	for (uint32_t i = 0; i < 200; i++) {
		propose_ok(h, 1, i, &res);
		assert_true(res.index > prev.index);
		prev = res;
	}
	/* The status is published at the end of the driver's round, which
	 * may come after the apply that answered the proposer. */
	uint64_t end = harness_now_us() + 1000000u;
	do {
		raft_runtime_status_get(harness_runtime(h, 1), &st);
	} while (st.durable_index < res.index && harness_now_us() < end);
	assert_int_equal(st.failed, 0);
	assert_true(st.durable_index >= res.index);
	assert_true(st.applied_index >= res.index);
	assert_true(st.syncs > 0);
	end_cluster(h);
}

static void test_three_nodes_converge(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result res = {0, 0};
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);

	assert_true(leader != 0);
	/* Through the leader and through followers (forwarded). */
	for (uint32_t i = 0; i < 300; i++)
		propose_ok(h, 1 + i % 3, i, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	end_cluster(h);
}

/* A whole cluster stopped and restarted recovers its log and hard state
 * and keeps going. */
static void test_restart_recovers(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result res = {0, 0};
	struct raft_runtime_status before[4], after;
	uint64_t a0, c0, a, c;

	assert_true(harness_wait_leader(h, TIMEOUT_MS) != 0);
	for (uint32_t i = 0; i < 100; i++)
		propose_ok(h, 1 + i % 3, i, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	harness_applied(h, 1, &a0, &c0);
	for (uint64_t id = 1; id <= 3; id++) {
		raft_runtime_status_get(harness_runtime(h, id), &before[id]);
		harness_stop_node(h, id);
	}
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(harness_start_node(h, id), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		raft_runtime_status_get(harness_runtime(h, id), &after);
		/* A term not yet durable at the stop may be lost (nothing
		 * was sent with it); the committed entries' term is not. */
		assert_true(after.raft.term >= res.term);
		assert_true(before[id].raft.term >= res.term);
		assert_true(after.raft.last_index >= res.index);
	}
	assert_true(harness_wait_leader(h, TIMEOUT_MS) != 0);
	propose_ok(h, 2, 1000, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	/* The replayed prefix is the same. */
	harness_applied(h, 1, &a, &c);
	assert_true(a > a0);
	end_cluster(h);
}

struct load {
	struct harness *h;
	uint64_t node;
	uint32_t count;
	int failures;
};

static void *proposer(void *arg)
{
	struct load *l = arg;
	for (uint32_t i = 0; i < l->count; i++) {
		struct raft_proposal_id id;
		struct harness_result res;
		char payload[16] = "load";
		int rc;
		harness_next_id(l->h, l->node, &id);
		do {
			rc = harness_propose(l->h, l->node, &id, payload,
					     sizeof(payload), TIMEOUT_MS, &res);
			if (rc == -EBUSY || rc == -EPERM)
				usleep(1000);
		} while (rc == -EBUSY || rc == -EPERM || rc == -ETIMEDOUT);
		if (rc != 0)
			l->failures++;
	}
	return NULL;
}

/* Many concurrent proposers share syncs: fewer synced writes than
 * updates persisted, and far fewer than proposals. */
static void test_group_commit(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	enum { PROPOSERS = 32, EACH = 40 };
	pthread_t t[PROPOSERS];
	struct load l[PROPOSERS];
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	struct raft_runtime_status st0, st;

	assert_true(leader != 0);
	raft_runtime_status_get(harness_runtime(h, leader), &st0);
	for (int i = 0; i < PROPOSERS; i++) {
		l[i] = (struct load){h, leader, EACH, 0};
		assert_int_equal(pthread_create(&t[i], NULL, proposer, &l[i]),
				 0);
	}
	for (int i = 0; i < PROPOSERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(l[i].failures, 0);
	}
	raft_runtime_status_get(harness_runtime(h, leader), &st);
	uint64_t syncs = st.syncs - st0.syncs;
	printf("group commit: %d proposals, %llu syncs on the leader\n",
	       PROPOSERS * EACH, (unsigned long long)syncs);
	assert_true(syncs * 2 < (uint64_t)PROPOSERS * EACH);
	assert_true(st.synced_updates - st0.synced_updates >= syncs);
	end_cluster(h);
}

/* A slow state machine with a tiny apply queue: the driver never waits
 * for it (no election happens: heartbeats keep flowing), the apply thread
 * reads the entries back from the store, and everything is applied. */
static void test_slow_apply_keeps_leader(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 1500, 2048);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	struct raft_runtime_status st0, st;
	enum { N = 400 };

	assert_true(leader != 0);
	raft_runtime_status_get(harness_runtime(h, leader), &st0);
	struct load l = {h, leader, N, 0};
	pthread_t t[8];
	struct load ls[8];
	for (int i = 0; i < 8; i++) {
		ls[i] = l;
		ls[i].count = N / 8;
		assert_int_equal(pthread_create(&t[i], NULL, proposer, &ls[i]),
				 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	raft_runtime_status_get(harness_runtime(h, leader), &st);
	/* Applying took 400 x 1.5 ms on every node, far beyond an election
	 * timeout, yet the leader kept its term. */
	assert_int_equal(st.raft.state, RAFT_LEADER);
	assert_int_equal(st.raft.term, st0.raft.term);
	assert_int_equal(harness_wait_converged(h, st.raft.commit, 20000), 0);
	end_cluster(h);
}

/* A store failure on one node: it stops acknowledging and sending, says
 * what to do, the other two go on, and what it had made durable is
 * intact. */
static void test_store_failure_stops_node(void **state)
{
	(void)state;
	struct harness_options o;
	struct harness *h = NULL;
	struct harness_result res = {0, 0};
	struct raft_runtime_status st;

	harness_options_default(&o, 3);
	assert_int_equal(harness_create(&o, &h), 0);
	current = h;
	assert_int_equal(harness_start_node_failing(h, 1, 40, -ENOSPC), 0);
	assert_int_equal(harness_start_node(h, 2), 0);
	assert_int_equal(harness_start_node(h, 3), 0);
	assert_true(harness_wait_leader(h, TIMEOUT_MS) != 0);
	for (uint32_t i = 0; i < 200; i++) {
		raft_runtime_status_get(harness_runtime(h, 1), &st);
		if (st.failed != 0)
			break;
		propose_ok(h, 2 + i % 2, i, &res);
	}
	raft_runtime_status_get(harness_runtime(h, 1), &st);
	assert_int_equal(st.failed, -ENOSPC);
	assert_non_null(strstr(st.error, "disk full"));
	assert_non_null(strstr(st.error, "restart the node"));
	/* Proposals through the failed node are refused at once. */
	struct raft_proposal_id id;
	harness_next_id(h, 1, &id);
	assert_int_equal(harness_propose(h, 1, &id, "x", 1, 1000, &res), -EIO);
	/* It sends nothing more. */
	uint64_t sent = harness_sent(h, 1);
	usleep(300 * 1000);
	assert_int_equal(harness_sent(h, 1), sent);
	/* The others elect a leader if needed and keep committing. */
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	assert_true(leader == 2 || leader == 3);
	for (uint32_t i = 0; i < 20; i++)
		propose_ok(h, leader, 500 + i, &res);
	/* Node 1's store: what it had made durable is intact and agrees
	 * with the cluster. */
	uint64_t durable = st.durable_index;
	harness_stop_node(h, 1);
	char dir[300], err[512];
	struct raft_logstore *ls1 = NULL, *ls2 = NULL;
	struct raft_logstore_info info1;
	harness_node_dir(h, 1, dir, sizeof(dir));
	assert_int_equal(raft_logstore_open(dir, HARNESS_CLUSTER_ID, 1, false,
					    &ls1, &info1, err, sizeof(err)),
			 0);
	assert_true(info1.last_index >= durable);
	harness_stop_node(h, 2);
	harness_node_dir(h, 2, dir, sizeof(dir));
	assert_int_equal(raft_logstore_open(dir, HARNESS_CLUSTER_ID, 2, false,
					    &ls2, NULL, err, sizeof(err)),
			 0);
	for (uint64_t i = 1; i <= durable; i++) {
		struct raft_entry e1, e2;
		void *b1 = NULL, *b2 = NULL;
		assert_int_equal(raft_logstore_get(ls1, i, &e1, &b1), 0);
		assert_int_equal(raft_logstore_get(ls2, i, &e2, &b2), 0);
		assert_int_equal(e1.term, e2.term);
		assert_int_equal(e1.size, e2.size);
		assert_memory_equal(e1.data, e2.data, e1.size);
		free(b1);
		free(b2);
	}
	raft_logstore_close(ls1);
	raft_logstore_close(ls2);
	end_cluster(h);
}

/* The same id proposed again after an unknown outcome gets the original
 * result, not a second apply. */
static void test_retry_same_id(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result r1, r2;
	struct raft_proposal_id id;
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);

	assert_true(leader != 0);
	harness_next_id(h, leader, &id);
	assert_int_equal(harness_propose(h, leader, &id, "once", 4, TIMEOUT_MS,
					 &r1),
			 0);
	assert_int_equal(harness_propose(h, leader, &id, "once", 4, TIMEOUT_MS,
					 &r2),
			 0);
	assert_int_equal(r1.index, r2.index);
	assert_int_equal(r1.term, r2.term);
	end_cluster(h);
}

/* A node cut off from the others cannot commit: its proposal times out
 * (outcome unknown) instead of hanging. */
static void test_minority_times_out(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result res;
	struct raft_proposal_id id;
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);

	assert_true(leader != 0);
	for (uint64_t o = 1; o <= 3; o++) {
		if (o == leader)
			continue;
		harness_cut(h, leader, o, true);
		harness_cut(h, o, leader, true);
	}
	harness_next_id(h, leader, &id);
	uint64_t t0 = harness_now_us();
	int rc = harness_propose(h, leader, &id, "lost", 4, 500, &res);
	assert_true(rc == -ETIMEDOUT || rc == -EPERM);
	assert_true(harness_now_us() - t0 < 2000000u);
	end_cluster(h);
}

/* A proposal through a node, on a thread of its own. */
struct bg_propose {
	struct harness *h;
	uint64_t node;
	struct raft_proposal_id id;
	uint32_t timeout_ms;
	pthread_t t;
	int rc;
	struct harness_result res;
	uint64_t elapsed_us;
};

static void *bg_propose_main(void *arg)
{
	struct bg_propose *b = arg;
	uint64_t t0 = harness_now_us();
	b->rc = harness_propose(b->h, b->node, &b->id, "retried", 7,
				b->timeout_ms, &b->res);
	b->elapsed_us = harness_now_us() - t0;
	return NULL;
}

static void bg_start(struct bg_propose *b, struct harness *h, uint64_t node,
		     uint32_t timeout_ms)
{
	memset(b, 0, sizeof(*b));
	b->h = h;
	b->node = node;
	b->timeout_ms = timeout_ms;
	harness_next_id(h, node, &b->id);
	assert_int_equal(pthread_create(&b->t, NULL, bg_propose_main, b), 0);
}

static void cut_both(struct harness *h, uint64_t a, uint64_t b, bool cut)
{
	harness_cut(h, a, b, cut);
	harness_cut(h, b, a, cut);
}

/* The follower's forwarded PROPOSE is dropped (its link to the leader is
 * cut for a moment): the runtime proposes it again, well before the
 * timeout, and it is applied once. */
static void test_lost_forward_is_retried(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result res;
	struct bg_propose b;
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;
	uint64_t fresh0, dups0, fresh, dups;

	assert_true(leader != 0);
	propose_ok(h, follower, 0, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	harness_dedup_counts(h, leader, &fresh0, &dups0);
	harness_cut(h, follower, leader, true);
	bg_start(&b, h, follower, TIMEOUT_MS);
	usleep(50 * 1000);
	harness_cut(h, follower, leader, false);
	pthread_join(b.t, NULL);
	assert_int_equal(b.rc, 0);
	printf("lost forward: applied after %llu ms\n",
	       (unsigned long long)b.elapsed_us / 1000);
	assert_true(b.elapsed_us < 2000000u);
	assert_int_equal(harness_wait_converged(h, b.res.index, TIMEOUT_MS), 0);
	harness_dedup_counts(h, leader, &fresh, &dups);
	assert_int_equal(fresh - fresh0, 1);
}

/* The leader gets the PROPOSE but the follower hears nothing back for a
 * while: the follower proposes the same id again, the log holds it twice,
 * and the second copy is answered with the first one's result, not
 * applied again. */
static void test_retry_duplicate_answered(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct harness_result res;
	struct bg_propose b;
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;
	uint64_t fresh0, dups0, fresh, dups;

	assert_true(leader != 0);
	propose_ok(h, follower, 0, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	harness_dedup_counts(h, follower, &fresh0, &dups0);
	harness_cut(h, leader, follower, true);
	bg_start(&b, h, follower, TIMEOUT_MS);
	usleep(400 * 1000); /* two retry_ms */
	harness_cut(h, leader, follower, false);
	pthread_join(b.t, NULL);
	assert_int_equal(b.rc, 0);
	uint64_t leader_now = harness_wait_leader(h, TIMEOUT_MS);
	assert_true(leader_now != 0);
	propose_ok(h, leader_now, 1, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	harness_dedup_counts(h, follower, &fresh, &dups);
	assert_int_equal(fresh - fresh0, 2); /* ours, then the last one */
	assert_true(dups - dups0 >= 1);
	assert_true(b.res.index < res.index);
}

/* No leader known anywhere (every link cut): the proposal is not refused
 * at once; healed within its timeout, it is applied. */
static void test_no_leader_then_heal(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3, 0, 0);
	struct raft_runtime_status st;
	struct bg_propose b;
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t node = leader == 1 ? 2 : 1;

	assert_true(leader != 0);
	for (uint64_t a = 1; a <= 3; a++)
		for (uint64_t c = a + 1; c <= 3; c++)
			cut_both(h, a, c, true);
	uint64_t end = harness_now_us() + TIMEOUT_MS * 1000u;
	do {
		usleep(5000);
		raft_runtime_status_get(harness_runtime(h, node), &st);
	} while (st.raft.leader != 0 && harness_now_us() < end);
	assert_int_equal(st.raft.leader, 0);
	bg_start(&b, h, node, TIMEOUT_MS);
	usleep(300 * 1000);
	for (uint64_t a = 1; a <= 3; a++)
		for (uint64_t c = a + 1; c <= 3; c++)
			cut_both(h, a, c, false);
	pthread_join(b.t, NULL);
	assert_int_equal(b.rc, 0);
	printf("no leader, healed after 300 ms: applied after %llu ms\n",
	       (unsigned long long)b.elapsed_us / 1000);
}

/* Log lines of the running test, for the event checks. */
static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[64 * 1024];
static size_t lines_len;

static void capture_line(void *ctx, int level, const char *line)
{
	(void)ctx;
	(void)level;
	pthread_mutex_lock(&lines_mu);
	size_t n = strlen(line);
	if (lines_len + n + 2 < sizeof(lines)) {
		memcpy(lines + lines_len, line, n);
		lines_len += n;
		lines[lines_len++] = '\n';
		lines[lines_len] = '\0';
	}
	pthread_mutex_unlock(&lines_mu);
}

static bool logged(const char *needle)
{
	pthread_mutex_lock(&lines_mu);
	bool found = strstr(lines, needle) != NULL;
	pthread_mutex_unlock(&lines_mu);
	return found;
}

/* The status shows the configuration, the leader's progress per member
 * and when each member was last heard from; the log says who leads and
 * which configuration is in force. */
static void test_status_and_events(void **state)
{
	(void)state;
	struct harness_options o;
	struct harness *h = NULL;
	struct harness_result res;
	struct raft_runtime_status st;
	char line[128];

	lines_len = 0;
	lines[0] = '\0';
	harness_options_default(&o, 3);
	o.log = capture_line;
	assert_int_equal(harness_create(&o, &h), 0);
	current = h;
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(harness_start_node(h, id), 0);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;
	assert_true(leader != 0);
	propose_ok(h, leader, 0, &res);
	assert_int_equal(harness_wait_converged(h, res.index, TIMEOUT_MS), 0);
	usleep(50 * 1000); /* a heartbeat or two */

	raft_runtime_status_get(harness_runtime(h, leader), &st);
	assert_int_equal(st.conf.n, 3);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(st.conf.members[i].id, i + 1);
		assert_int_equal(st.conf.members[i].role, RAFT_VOTER);
		if (st.conf.members[i].id == leader)
			assert_int_equal(st.heard_ms_ago[i], 0);
		else
			assert_true(st.heard_ms_ago[i] < 500);
	}
	assert_int_equal(st.n_progress, 2);
	for (uint32_t i = 0; i < st.n_progress; i++) {
		assert_true(st.progress[i].id != leader);
		assert_true(st.progress[i].match >= res.index);
	}
	raft_runtime_status_get(harness_runtime(h, follower), &st);
	assert_int_equal(st.conf.n, 3);
	assert_int_equal(st.n_progress, 0);
	assert_true(st.heard_ms_ago[leader - 1] < 500);
	assert_int_equal(st.heard_ms_ago[follower - 1], 0);

	/* A follower cut off: the leader stops hearing from it. */
	cut_both(h, leader, follower, true);
	usleep(300 * 1000);
	raft_runtime_status_get(harness_runtime(h, leader), &st);
	assert_true(st.heard_ms_ago[follower - 1] >= 250);
	assert_true(st.heard_ms_ago[follower - 1] != UINT64_MAX);
	cut_both(h, leader, follower, false);

	snprintf(line, sizeof(line), "raft node %llu: became leader in term",
		 (unsigned long long)leader);
	assert_true(logged(line));
	snprintf(line, sizeof(line), "raft node %llu: leader is node %llu",
		 (unsigned long long)follower, (unsigned long long)leader);
	assert_true(logged(line));
	assert_true(logged("configuration appended at index 1 term 1: 1 voter "
			   "127.0.0.1:7000, 2 voter 127.0.0.2:7000, 3 voter "
			   "127.0.0.3:7000"));
	/* Restarted, a node says which configuration it recovered. */
	harness_stop_node(h, follower);
	assert_int_equal(harness_start_node(h, follower), 0);
	snprintf(line, sizeof(line),
		 "raft node %llu: configuration in force: 1 voter",
		 (unsigned long long)follower);
	uint64_t end = harness_now_us() + 1000000u; /* the driver logs it */
	while (!logged(line) && harness_now_us() < end)
		usleep(2000);
	if (!logged(line)) {
		fprintf(stderr, "%s", lines);
		fail_msg("no \"%s\" in the log lines above", line);
	}
	end_cluster(h);
}

TEST_MAIN(cmocka_unit_test_teardown(test_single_node, teardown),
	  cmocka_unit_test_teardown(test_three_nodes_converge, teardown),
	  cmocka_unit_test_teardown(test_restart_recovers, teardown),
	  cmocka_unit_test_teardown(test_group_commit, teardown),
	  cmocka_unit_test_teardown(test_slow_apply_keeps_leader, teardown),
	  cmocka_unit_test_teardown(test_store_failure_stops_node, teardown),
	  cmocka_unit_test_teardown(test_retry_same_id, teardown),
	  cmocka_unit_test_teardown(test_minority_times_out, teardown),
	  cmocka_unit_test_teardown(test_lost_forward_is_retried, teardown),
	  cmocka_unit_test_teardown(test_retry_duplicate_answered, teardown),
	  cmocka_unit_test_teardown(test_no_leader_then_heal, teardown),
	  cmocka_unit_test_teardown(test_status_and_events, teardown))
