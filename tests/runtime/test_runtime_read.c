/*
 * Read points of the runtime (raft_runtime_read_index) on the in-process
 * harness: a read sees every write acknowledged before it, on the leader
 * and on followers; a node cut off from the majority never answers 0;
 * concurrent reads share rounds; destroy answers -ESHUTDOWN.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/runtime_internal.h"
#include "tests/lib/test_main.h"
#include "tests/runtime/harness.h"

#define TIMEOUT_MS 5000u

static struct harness *current;

static int teardown(void **state)
{
	(void)state;
	harness_destroy(current);
	current = NULL;
	return 0;
}

static struct harness *start_cluster(uint32_t nodes)
{
	struct harness_options o;
	struct harness *h = NULL;
	harness_options_default(&o, nodes);
	assert_int_equal(harness_create(&o, &h), 0);
	current = h;
	for (uint64_t id = 1; id <= nodes; id++)
		assert_int_equal(harness_start_node(h, id), 0);
	return h;
}

static void write_ok(struct harness *h, uint64_t node, uint32_t i,
		     struct harness_result *res)
{
	struct raft_proposal_id id;
	char payload[32];
	int rc;

	harness_next_id(h, node, &id);
	snprintf(payload, sizeof(payload), "write %u", i);
	rc = harness_propose(h, node, &id, payload, (uint32_t)strlen(payload),
			     TIMEOUT_MS, res);
	if (rc != 0)
		fail_msg("write %u through node %llu: %d", i,
			 (unsigned long long)node, rc);
}

/* One read: its outcome and what the node's state machine had applied
 * when it was answered. */
struct read_wait {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct harness *h;
	uint64_t node;
	bool done;
	int rc;
	uint64_t applied_at_done;
	int calls;
};

static void read_done(void *ctx, int rc)
{
	struct read_wait *rw = ctx;
	uint64_t applied, chain;

	harness_applied(rw->h, rw->node, &applied, &chain);
	pthread_mutex_lock(&rw->mu);
	rw->rc = rc;
	rw->applied_at_done = applied;
	rw->calls++;
	rw->done = true;
	pthread_cond_signal(&rw->cond);
	pthread_mutex_unlock(&rw->mu);
}

static void read_init(struct read_wait *rw, struct harness *h, uint64_t node)
{
	memset(rw, 0, sizeof(*rw));
	pthread_mutex_init(&rw->mu, NULL);
	pthread_cond_init(&rw->cond, NULL);
	rw->h = h;
	rw->node = node;
}

static void read_wait_done(struct read_wait *rw)
{
	pthread_mutex_lock(&rw->mu);
	while (!rw->done)
		pthread_cond_wait(&rw->cond, &rw->mu);
	pthread_mutex_unlock(&rw->mu);
	pthread_mutex_destroy(&rw->mu);
	pthread_cond_destroy(&rw->cond);
}

/* A read through node: returns its rc, and the applied index when it was
 * answered. */
static int read_sync(struct harness *h, uint64_t node, uint32_t timeout_ms,
		     uint64_t *applied)
{
	struct read_wait rw;
	int rc;

	read_init(&rw, h, node);
	rc = raft_runtime_read_index(harness_runtime(h, node), timeout_ms,
				     read_done, &rw);
	if (rc != 0) {
		pthread_mutex_destroy(&rw.mu);
		pthread_cond_destroy(&rw.cond);
		return rc;
	}
	read_wait_done(&rw);
	assert_int_equal(rw.calls, 1);
	if (applied != NULL)
		*applied = rw.applied_at_done;
	return rw.rc;
}

/* A write acknowledged on node A is applied on node B when a read on B
 * that began after the acknowledgement is answered — for every pair of
 * nodes, leader and followers alike. */
static void test_read_sees_acknowledged_writes(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);

	assert_true(leader != 0);
	for (uint32_t i = 0; i < 60; i++) {
		struct harness_result res;
		uint64_t a = 1 + i % 3, b = 1 + (i / 3) % 3, applied = 0;
		write_ok(h, a, i, &res);
		assert_int_equal(read_sync(h, b, TIMEOUT_MS, &applied), 0);
		if (applied < res.index)
			fail_msg("read %u on node %llu answered with applied "
				 "%llu < write index %llu (written on %llu)",
				 i, (unsigned long long)b,
				 (unsigned long long)applied,
				 (unsigned long long)res.index,
				 (unsigned long long)a);
	}
	/* Latency on an idle cluster: a heartbeat round trip (plus the
	 * forwarding hop on a follower), not a tick. */
	for (uint64_t node = 1; node <= 3; node++) {
		enum { N = 50 };
		uint64_t t0 = harness_now_us();
		for (int i = 0; i < N; i++)
			assert_int_equal(read_sync(h, node, TIMEOUT_MS, NULL), 0);
		uint64_t us = (harness_now_us() - t0) / N;
		printf("read latency on %s %llu: %llu us (idle, loopback)\n",
		       node == leader ? "leader" : "follower",
		       (unsigned long long)node, (unsigned long long)us);
		/* A tick is 10 ms: far below it. */
		assert_true(us < 5000);
	}
}

/* A node cut off from the majority — a follower, or the leader itself —
 * never confirms a read: every read times out, none answers 0. */
static void test_read_cut_off_times_out(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;

	assert_true(leader != 0);
	assert_int_equal(read_sync(h, follower, TIMEOUT_MS, NULL), 0);
	for (uint64_t o = 1; o <= 3; o++) {
		harness_cut(h, leader, o, true);
		harness_cut(h, o, leader, true);
		harness_cut(h, follower, o, true);
		harness_cut(h, o, follower, true);
	}
	enum { N = 8 };
	struct read_wait rw[2][N];
	uint64_t nodes[2] = {leader, follower};
	uint64_t t0 = harness_now_us();
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < N; i++) {
			read_init(&rw[k][i], h, nodes[k]);
			/* Spread over the leader's last lease. */
			assert_int_equal(
				raft_runtime_read_index(
					harness_runtime(h, nodes[k]),
					300 + 40 * (uint32_t)i, read_done,
					&rw[k][i]),
				0);
			usleep(5000);
		}
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < N; i++) {
			read_wait_done(&rw[k][i]);
			assert_int_equal(rw[k][i].calls, 1);
			assert_int_equal(rw[k][i].rc, -ETIMEDOUT);
		}
	assert_true(harness_now_us() - t0 < 3000000u);
}

struct reader {
	struct harness *h;
	uint64_t node;
	uint32_t count;
	atomic_int *pending;
	atomic_int *failures;
};

static void shared_done(void *ctx, int rc)
{
	struct reader *r = ctx;
	if (rc != 0)
		atomic_fetch_add(r->failures, 1);
	atomic_fetch_sub(r->pending, 1);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	for (uint32_t i = 0; i < r->count; i++) {
		atomic_fetch_add(r->pending, 1);
		if (raft_runtime_read_index(harness_runtime(r->h, r->node),
					    TIMEOUT_MS, shared_done, r) != 0) {
			atomic_fetch_add(r->failures, 1);
			atomic_fetch_sub(r->pending, 1);
		}
		if (i % 64 == 0)
			usleep(200);
	}
	return NULL;
}

/* Thousands of concurrent reads on the leader and a follower share
 * rounds: far fewer raft_read_index rounds than reads. */
static void test_reads_share_rounds(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;
	enum { THREADS = 4, EACH = 1000 };
	pthread_t t[THREADS];
	struct reader r[THREADS];
	atomic_int pending = 0, failures = 0;
	uint64_t rounds0[4], rounds = 0;

	assert_true(leader != 0);
	for (uint64_t id = 1; id <= 3; id++)
		rounds0[id] = atomic_load(&harness_runtime(h, id)->read_rounds);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct reader){h, i % 2 ? leader : follower, EACH,
				       &pending, &failures};
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	uint64_t end = harness_now_us() + TIMEOUT_MS * 1000u;
	while (atomic_load(&pending) > 0 && harness_now_us() < end)
		usleep(1000);
	assert_int_equal(atomic_load(&pending), 0);
	assert_int_equal(atomic_load(&failures), 0);
	for (uint64_t id = 1; id <= 3; id++)
		rounds += atomic_load(&harness_runtime(h, id)->read_rounds) -
			  rounds0[id];
	printf("%d reads, %llu rounds\n", THREADS * EACH,
	       (unsigned long long)rounds);
	assert_true(rounds * 10 < (uint64_t)THREADS * EACH);
}

/* Reads still waiting when the runtime is destroyed are answered
 * -ESHUTDOWN, once. */
static void test_read_destroy_answers(void **state)
{
	(void)state;
	struct harness *h = start_cluster(3);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t follower = leader == 1 ? 2 : 1;
	struct read_wait rw;

	assert_true(leader != 0);
	harness_cut(h, follower, leader, true);
	read_init(&rw, h, follower);
	assert_int_equal(raft_runtime_read_index(harness_runtime(h, follower),
						 TIMEOUT_MS, read_done, &rw),
			 0);
	usleep(20000);
	/* The callback reads the harness's state machine, which outlives
	 * the runtime. */
	harness_stop_node(h, follower);
	read_wait_done(&rw);
	assert_int_equal(rw.calls, 1);
	assert_int_equal(rw.rc, -ESHUTDOWN);
}

TEST_MAIN(cmocka_unit_test_teardown(test_read_sees_acknowledged_writes,
				    teardown),
	  cmocka_unit_test_teardown(test_read_cut_off_times_out, teardown),
	  cmocka_unit_test_teardown(test_reads_share_rounds, teardown),
	  cmocka_unit_test_teardown(test_read_destroy_answers, teardown))
