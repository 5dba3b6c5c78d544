/*
 * Snapshots in the runtime on the in-process harness: compaction by
 * policy, restart from snapshot + tail, a follower brought back by a
 * snapshot stream (also with chunks lost, duplicated and reordered), a
 * leader change during a stream, a crash during an install.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/test_main.h"
#include "tests/runtime/harness.h"

#define TIMEOUT_MS 5000u
#define CONVERGE_MS 20000u

static struct harness *current;

static int teardown(void **state)
{
	(void)state;
	harness_destroy(current);
	current = NULL;
	return 0;
}

static void options(struct harness_options *o)
{
	harness_options_default(o, 3);
	o->snapshots = true;
	o->snapshot_entries = 300;
	o->snapshot_keep = 50;
	o->state_bytes = 2u << 20;
	o->chunk_bytes = 64u << 10;
}

static struct harness *start(const struct harness_options *o)
{
	struct harness *h = NULL;
	assert_int_equal(harness_create(o, &h), 0);
	current = h;
	for (uint64_t id = 1; id <= o->nodes; id++)
		assert_int_equal(harness_start_node(h, id), 0);
	assert_int_not_equal(harness_wait_leader(h, TIMEOUT_MS), 0);
	return h;
}

static void status(struct harness *h, uint64_t id,
		   struct raft_runtime_status *st)
{
	struct raft_runtime *rt = harness_runtime(h, id);
	memset(st, 0, sizeof(*st));
	if (rt != NULL)
		raft_runtime_status_get(rt, st);
}

struct writer {
	struct harness *h;
	uint64_t node;
	uint32_t count;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char payload[64];

	for (uint32_t i = 0; i < w->count && w->rc == 0; i++) {
		struct raft_proposal_id id;
		struct harness_result res;
		uint64_t end = harness_now_us() + 10u * 1000000u;
		int rc;
		harness_next_id(w->h, w->node, &id);
		snprintf(payload, sizeof(payload), "node %llu command %u",
			 (unsigned long long)w->node, i);
		do {
			rc = harness_propose(w->h, w->node, &id, payload,
					     (uint32_t)strlen(payload),
					     TIMEOUT_MS, &res);
			if (rc != 0)
				usleep(5000);
		} while (rc != 0 && harness_now_us() < end);
		w->rc = rc;
	}
	return NULL;
}

/* count commands through node, from 8 threads. */
static void write_many(struct harness *h, uint64_t node, uint32_t count)
{
	enum { THREADS = 8 };
	struct writer w[THREADS];
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){h, node, count / THREADS, 0};
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
	}
}

static uint64_t leader_index(struct harness *h, uint64_t leader)
{
	struct raft_runtime_status st;
	status(h, leader, &st);
	return st.raft.commit;
}

static void converge(struct harness *h, uint64_t leader)
{
	uint64_t t0 = harness_now_us();
	assert_int_equal(harness_wait_converged(h, leader_index(h, leader),
						CONVERGE_MS),
			 0);
	fprintf(stderr, "# converged in %llu ms\n",
		(unsigned long long)(harness_now_us() - t0) / 1000u);
}

/* Compaction per policy on every node; a restarted node comes back from
 * its snapshot plus the log's tail. */
static void test_compaction_and_restart(void **state)
{
	(void)state;
	struct harness_options o;
	struct raft_runtime_status st;
	options(&o);
	struct harness *h = start(&o);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);

	write_many(h, leader, 1600);
	converge(h, leader);
	for (uint64_t id = 1; id <= 3; id++) {
		uint64_t end = harness_now_us() + 5000000u;
		do {
			status(h, id, &st);
			/* The policy catches up once the writes stop: at
			 * most the threshold plus a batch after the last
			 * snapshot (a sync that found nothing new to cover
			 * is retried after a second). */
			if (st.snapshots_taken > 0 && st.log_first_index > 1 &&
			    st.raft.last_index - st.snapshot_index < 1000)
				break;
			usleep(5000);
		} while (harness_now_us() < end);
		fprintf(stderr,
			"# node %llu: %llu snapshots, latest %llu, log %llu..%llu\n",
			(unsigned long long)id,
			(unsigned long long)st.snapshots_taken,
			(unsigned long long)st.snapshot_index,
			(unsigned long long)st.log_first_index,
			(unsigned long long)st.raft.last_index);
		assert_true(st.snapshots_taken > 0);
		assert_true(st.log_first_index > 1);
		/* Never more than the policy plus a batch behind. */
		assert_true(st.raft.last_index - st.snapshot_index < 1000);
	}
	uint64_t follower = leader == 1 ? 2 : 1;
	harness_stop_node(h, follower);
	assert_int_equal(harness_start_node(h, follower), 0);
	status(h, follower, &st);
	assert_true(st.snapshot_index > 0);
	assert_true(st.raft.first_index == st.snapshot_index + 1);
	assert_true(st.applied_index >= st.snapshot_index);
	leader = harness_wait_leader(h, TIMEOUT_MS);
	write_many(h, leader, 80);
	converge(h, leader);
}

/* A follower down while the leader compacted past it catches up by a
 * snapshot: the state machines end identical. */
static void catch_up(struct harness_options *o, bool leader_change,
		     bool crash_install)
{
	struct raft_runtime_status st;
	struct harness *h = start(o);
	uint64_t leader = harness_wait_leader(h, TIMEOUT_MS);
	uint64_t lagger = leader == 3 ? 2 : 3;
	uint64_t applied, chain;

	write_many(h, leader, 160);
	converge(h, leader);
	harness_stop_node(h, lagger);
	harness_applied(h, lagger, &applied, &chain);
	write_many(h, leader, 1600);
	/* Every node's log (whoever leads next) starts past the lagger's. */
	uint64_t other = 6 - leader - lagger;
	uint64_t end = harness_now_us() + 5000000u;
	do {
		usleep(5000);
	} while ((harness_log_first_index(h, leader) <= applied + 1 ||
		  harness_log_first_index(h, other) <= applied + 1) &&
		 harness_now_us() < end);
	assert_true(harness_log_first_index(h, other) > applied + 1);
	fprintf(stderr, "# leader %llu log starts at %llu, node %llu at %llu\n",
		(unsigned long long)leader,
		(unsigned long long)harness_log_first_index(h, leader),
		(unsigned long long)lagger, (unsigned long long)applied);
	assert_true(harness_log_first_index(h, leader) > applied + 1);

	uint64_t t0 = harness_now_us();
	assert_int_equal(harness_start_node(h, lagger), 0);
	if (leader_change || crash_install) {
		/* Wait for the transfer to be under way. */
		uint64_t who = crash_install ? lagger : leader;
		bool seen = false;
		end = harness_now_us() + 10000000u;
		while (!seen && harness_now_us() < end) {
			status(h, who, &st);
			for (uint32_t i = 0; i < st.n_transfers; i++)
				seen = seen || st.transfers[i].bytes > 0;
			usleep(1000);
		}
		assert_true(seen);
		if (leader_change) {
			harness_stop_node(h, leader);
			uint64_t next = harness_wait_leader(h, 10000);
			assert_int_not_equal(next, 0);
			assert_int_not_equal(next, lagger);
			converge(h, next);
			assert_int_equal(harness_start_node(h, leader), 0);
			leader = harness_wait_leader(h, TIMEOUT_MS);
		} else {
			harness_stop_node(h, lagger);
			uint64_t a2, c2;
			harness_applied(h, lagger, &a2, &c2);
			(void)a2;
			assert_int_equal(harness_start_node(h, lagger), 0);
		}
	}
	converge(h, leader);
	uint64_t ms = (harness_now_us() - t0) / 1000u;
	/* The state machine switches first, the runtime counts after. */
	end = harness_now_us() + 1000000u;
	do {
		status(h, lagger, &st);
		if (st.snapshots_installed > 0)
			break;
		usleep(1000);
	} while (harness_now_us() < end);
	fprintf(stderr,
		"# node %llu caught up in %llu ms: %llu installs, %llu chunks "
		"sent in all\n",
		(unsigned long long)lagger, (unsigned long long)ms,
		(unsigned long long)st.snapshots_installed,
		(unsigned long long)harness_chunks_sent(h));
	if (!leader_change && !crash_install)
		assert_true(st.snapshots_installed >= 1);
	/* New writes still reach everyone. */
	leader = harness_wait_leader(h, TIMEOUT_MS);
	write_many(h, leader, 40);
	converge(h, leader);
}

static void test_follower_catches_up(void **state)
{
	(void)state;
	struct harness_options o;
	options(&o);
	catch_up(&o, false, false);
}

static void test_chunks_lost_duplicated_reordered(void **state)
{
	(void)state;
	struct harness_options o;
	options(&o);
	o.chunk_drop_pct = 15;
	o.chunk_dup_pct = 10;
	o.chunk_reorder_pct = 15;
	catch_up(&o, false, false);
}

static void test_leader_change_mid_stream(void **state)
{
	(void)state;
	struct harness_options o;
	options(&o);
	o.chunk_delay_us = 20000;
	catch_up(&o, true, false);
}

static void test_crash_mid_install(void **state)
{
	(void)state;
	struct harness_options o;
	options(&o);
	o.chunk_delay_us = 20000;
	catch_up(&o, false, true);
}

/* raft_runtime_snapshot: a snapshot now, below the policy's threshold. */
static void test_snapshot_on_request(void **state)
{
	(void)state;
	struct harness_options o;
	struct raft_runtime_status st;
	options(&o);
	o.nodes = 1;
	o.snapshot_entries = 1000000;
	o.snapshot_keep = 0;
	struct harness *h = start(&o);

	write_many(h, 1, 40);
	status(h, 1, &st);
	assert_int_equal(st.snapshots_taken, 0);
	assert_int_equal(raft_runtime_snapshot(harness_runtime(h, 1)), 0);
	uint64_t end = harness_now_us() + 3000000u;
	do {
		usleep(2000);
		status(h, 1, &st);
	} while (st.snapshots_taken == 0 && harness_now_us() < end);
	assert_int_equal(st.snapshots_taken, 1);
	assert_true(st.snapshot_index >= 40);
	assert_int_equal(st.log_first_index, st.snapshot_index + 1);
	/* Without snapshot support it says so. */
	struct harness_options plain;
	struct harness *h2 = NULL;
	harness_options_default(&plain, 1);
	assert_int_equal(harness_create(&plain, &h2), 0);
	assert_int_equal(harness_start_node(h2, 1), 0);
	assert_int_equal(raft_runtime_snapshot(harness_runtime(h2, 1)),
			 -EOPNOTSUPP);
	harness_destroy(h2);
}

TEST_MAIN(cmocka_unit_test_teardown(test_snapshot_on_request, teardown),
	  cmocka_unit_test_teardown(test_compaction_and_restart, teardown),
	  cmocka_unit_test_teardown(test_follower_catches_up, teardown),
	  cmocka_unit_test_teardown(test_chunks_lost_duplicated_reordered,
				    teardown),
	  cmocka_unit_test_teardown(test_leader_change_mid_stream, teardown),
	  cmocka_unit_test_teardown(test_crash_mid_install, teardown))
