/*
 * Raft scenario tests: deterministic runs of the simulator (tests/sim), each
 * steering the cluster into one situation of the Raft paper and checking the
 * outcome. The simulator's safety checks run after every event throughout;
 * a violation fails the test with the seed and the trace.
 */
#include <errno.h>
#include <stdlib.h>

#include "tests/lib/test_main.h"
#include "tests/sim/sim.h"

#define ELECTION_US (10ull * SIM_TICK_US)
#define SEED 20261122ull

static struct sim *make(uint32_t nodes)
{
	struct sim_config c;
	sim_config_default(&c, nodes, SEED + nodes);
	struct sim *s = NULL;
	assert_int_equal(sim_create(&c, &s), 0);
	return s;
}

static void done(struct sim *s)
{
	const char *why = sim_violation(s);
	if (why) {
		sim_dump_trace(s);
		fail_msg("violation: %s", why);
	}
	sim_destroy(s);
}

static bool any_leader(struct sim *s, void *arg)
{
	(void)arg;
	return sim_leader(s) != 0;
}

static bool leader_other_than(struct sim *s, void *arg)
{
	uint64_t old = *(uint64_t *)arg;
	uint64_t id = sim_leader(s);
	return id != 0 && id != old;
}

struct applied_goal {
	uint64_t cmd;
};

static bool applied_everywhere(struct sim *s, void *arg)
{
	struct applied_goal *g = arg;
	uint64_t index = sim_cmd_applied_index(s, g->cmd);
	return index != 0 && sim_converged(s, index);
}

static uint64_t wait_leader(struct sim *s)
{
	assert_int_equal(sim_run_until(s, any_leader, NULL, 30 * ELECTION_US), 0);
	return sim_leader(s);
}

/* Propose at the leader until one command is applied on every up node. */
static uint64_t commit_one(struct sim *s)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		uint64_t leader = wait_leader(s);
		struct applied_goal g = {0};
		if (sim_propose(s, leader, &g.cmd) != 0) {
			assert_int_equal(sim_run_for(s, ELECTION_US), 0);
			continue;
		}
		int rc = sim_run_until(s, applied_everywhere, &g,
				       10 * ELECTION_US);
		if (rc == 0)
			return g.cmd;
		assert_int_equal(rc, -ETIMEDOUT);
	}
	fail_msg("no command committed in 20 attempts");
	return 0;
}

static void test_initial_election(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 7; n++) {
		struct sim *s = make(n);
		uint64_t leader = wait_leader(s);
		assert_true(leader >= 1 && leader <= n);
		/* Within a few election timeouts, with a single leader. */
		assert_true(sim_now(s) < 5 * ELECTION_US);
		commit_one(s);
		done(s);
	}
}

static void test_reelection_after_leader_loss(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t old = wait_leader(s);
	uint64_t cmd = commit_one(s);
	assert_int_equal(sim_crash(s, old), 0);
	uint64_t t0 = sim_now(s);
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       30 * ELECTION_US),
			 0);
	/* Pre-vote and check-quorum: a new leader within about two
	 * election timeouts (lease expiry, then one election). */
	assert_true(sim_now(s) - t0 < 6 * ELECTION_US);
	commit_one(s);
	assert_true(sim_cmd_applied_index(s, cmd) != 0);
	done(s);
}

static void test_no_commit_without_quorum(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t follower = leader % 5 + 1;
	/* The leader keeps one follower: a minority of 2 out of 5. */
	sim_partition(s, (1u << (leader - 1)) | (1u << (follower - 1)));
	uint64_t commit_before = raft_commit_index(sim_raft(s, leader));
	uint64_t cmd = 0;
	assert_int_equal(sim_propose(s, leader, &cmd), 0);
	assert_int_equal(sim_run_for(s, 5 * ELECTION_US), 0);
	assert_int_equal(sim_cmd_applied_index(s, cmd), 0);
	struct raft *r = sim_raft(s, leader);
	assert_int_equal(raft_commit_index(r), commit_before);
	/* Check-quorum: the cut-off leader stepped down. */
	assert_false(raft_is_leader(r));
	done(s);
}

static void test_old_leader_entries_overwritten(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t old = wait_leader(s);
	commit_one(s);
	sim_partition(s, 1u << (old - 1));
	uint64_t lost[5];
	for (int i = 0; i < 5; i++)
		assert_int_equal(sim_propose(s, old, &lost[i]), 0);
	assert_int_equal(sim_run_for(s, ELECTION_US / 2), 0);
	uint64_t old_last = raft_last_index(sim_raft(s, old));
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       30 * ELECTION_US),
			 0);
	uint64_t kept = 0;
	assert_int_equal(sim_propose(s, sim_leader(s), &kept), 0);
	assert_int_equal(sim_run_for(s, 2 * ELECTION_US), 0);
	assert_true(sim_cmd_applied_index(s, kept) != 0);
	sim_heal(s);
	struct applied_goal g = {.cmd = commit_one(s)};
	assert_true(applied_everywhere(s, &g));
	/* The old leader's uncommitted entries were replaced. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(sim_cmd_applied_index(s, lost[i]), 0);
	assert_true(sim_cmd_applied_index(s, kept) <= old_last);
	done(s);
}

static void test_fast_backtracking_over_50_divergent(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t old = wait_leader(s);
	commit_one(s);
	sim_partition(s, 1u << (old - 1));
	for (int i = 0; i < 50; i++)
		assert_int_equal(sim_propose(s, old, NULL), 0);
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       30 * ELECTION_US),
			 0);
	for (int i = 0; i < 60; i++)
		assert_int_equal(sim_propose(s, sim_leader(s), NULL), 0);
	assert_int_equal(sim_run_for(s, ELECTION_US), 0);
	struct sim_stats before, after;
	sim_stats_get(s, &before);
	sim_heal(s);
	struct applied_goal g = {.cmd = commit_one(s)};
	assert_true(applied_everywhere(s, &g));
	sim_stats_get(s, &after);
	/* One rejection per divergent term, not one per entry. */
	uint64_t rejects = after.append_rejects - before.append_rejects;
	assert_true(rejects <= 4);
	done(s);
}

static void test_figure8(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct sim *s = NULL;
		int rc = sim_figure8(seed, 0, &s);
		if (rc != 0 && s && sim_violation(s))
			sim_dump_trace(s);
		assert_int_equal(rc, 0);
		done(s);
	}
}

static void test_lossy_reordering_network(void **state)
{
	(void)state;
	struct sim *s = make(5);
	wait_leader(s);
	struct sim_net bad = {.min_delay_us = 100,
			      .max_delay_us = 30000,
			      .drop_permille = 200,
			      .dup_permille = 50};
	sim_set_net(s, &bad);
	uint64_t cmds[200];
	for (int i = 0; i < 200; i++) {
		uint64_t leader = sim_leader(s);
		cmds[i] = 0;
		if (leader)
			(void)sim_propose(s, leader, &cmds[i]);
		assert_int_equal(sim_run_for(s, 3000), 0);
	}
	struct sim_net good = {.min_delay_us = 200, .max_delay_us = 2000};
	sim_set_net(s, &good);
	commit_one(s);
	/* Everything is agreed; most proposals made it through. */
	int applied = 0;
	for (int i = 0; i < 200; i++)
		applied += cmds[i] && sim_cmd_applied_index(s, cmds[i]) != 0;
	assert_true(applied >= 100);
	done(s);
}

static void test_crash_restart_churn(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t rng = 42;
	for (int round = 0; round < 60; round++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t id = (rng >> 33) % 5 + 1;
		if (sim_is_up(s, id))
			sim_crash(s, id);
		else
			assert_int_equal(sim_restart(s, id), 0);
		uint64_t leader = sim_leader(s);
		if (leader)
			(void)sim_propose(s, leader, NULL);
		assert_int_equal(sim_run_for(s, ELECTION_US), 0);
	}
	for (uint64_t id = 1; id <= 5; id++)
		if (!sim_is_up(s, id))
			assert_int_equal(sim_restart(s, id), 0);
	commit_one(s);
	done(s);
}

static void test_restart_everyone(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t cmds[10];
	for (int i = 0; i < 10; i++)
		cmds[i] = commit_one(s);
	uint64_t term = raft_term(sim_raft(s, sim_leader(s)));
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(sim_crash(s, id), 0);
	assert_int_equal(sim_run_for(s, ELECTION_US), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(sim_restart(s, id), 0);
		/* Term and vote came back from the disk. */
		assert_true(raft_term(sim_raft(s, id)) >= term);
	}
	commit_one(s);
	/* Every command is still applied at its index on every node. */
	for (int i = 0; i < 10; i++)
		assert_true(sim_cmd_applied_index(s, cmds[i]) != 0);
	assert_true(raft_term(sim_raft(s, sim_leader(s))) > term);
	done(s);
}

/* ---- Raft II ---- */

static void test_prevote_stops_disruptive_node(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t term = raft_term(sim_raft(s, leader));
	uint64_t loner = leader % 5 + 1;
	/* Cut off for many election timeouts: it keeps pre-voting, never
	 * winning, so its term does not grow either. */
	sim_partition(s, 1u << (loner - 1));
	assert_int_equal(sim_run_for(s, 20 * ELECTION_US), 0);
	assert_int_equal(raft_term(sim_raft(s, loner)), term);
	sim_heal(s);
	assert_int_equal(sim_run_for(s, 10 * ELECTION_US), 0);
	struct raft *r = sim_raft(s, leader);
	assert_true(raft_is_leader(r));
	assert_int_equal(raft_term(r), term);
	commit_one(s);
	done(s);
}

static void test_one_way_cut_does_not_depose(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t term = raft_term(sim_raft(s, leader));
	uint64_t deaf = leader % 3 + 1;
	/* It hears nobody, but everyone hears it. */
	for (uint64_t id = 1; id <= 3; id++)
		if (id != deaf)
			sim_cut(s, id, deaf, true);
	assert_int_equal(sim_run_for(s, 20 * ELECTION_US), 0);
	struct raft *r = sim_raft(s, leader);
	assert_true(raft_is_leader(r));
	assert_int_equal(raft_term(r), term);
	sim_heal(s);
	commit_one(s);
	done(s);
}

static void test_check_quorum_step_down(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	sim_partition(s, 1u << (leader - 1));
	uint64_t t0 = sim_now(s);
	while (raft_is_leader(sim_raft(s, leader)))
		assert_int_equal(sim_step(s), 0);
	/* Within two election timeouts of losing the majority. */
	assert_true(sim_now(s) - t0 <= 2 * ELECTION_US + SIM_TICK_US);
	done(s);
}

static bool leader_is(struct sim *s, void *arg)
{
	return sim_leader(s) == *(uint64_t *)arg;
}

static void test_transfer_to_up_to_date(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t target = leader % 3 + 1;
	uint64_t t0 = sim_now(s);
	assert_int_equal(sim_transfer(s, target), 0);
	/* Proposals are refused while handing over. */
	assert_int_equal(sim_propose(s, leader, NULL), -EPERM);
	assert_int_equal(sim_run_until(s, leader_is, &target, 10 * ELECTION_US),
			 0);
	/* At once: no election timeout had to pass. */
	assert_true(sim_now(s) - t0 < ELECTION_US);
	commit_one(s);
	done(s);
}

static void test_transfer_to_lagging(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t target = leader % 3 + 1;
	/* The target misses 30 commands, then the link heals. */
	sim_cut(s, leader, target, true);
	for (int i = 0; i < 30; i++)
		assert_int_equal(sim_propose(s, leader, NULL), 0);
	assert_int_equal(sim_run_for(s, ELECTION_US / 2), 0);
	assert_true(raft_last_index(sim_raft(s, target)) <
		    raft_last_index(sim_raft(s, leader)));
	sim_heal(s);
	assert_int_equal(sim_transfer(s, target), 0);
	assert_int_equal(sim_run_until(s, leader_is, &target, 10 * ELECTION_US),
			 0);
	commit_one(s);
	done(s);
}

static void test_transfer_times_out_and_resumes(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t target = leader % 3 + 1;
	assert_int_equal(sim_crash(s, target), 0);
	assert_int_equal(sim_transfer(s, target), 0);
	assert_int_equal(sim_propose(s, leader, NULL), -EPERM);
	assert_int_equal(sim_run_for(s, 2 * ELECTION_US), 0);
	/* The target never won: the leader resumed. */
	assert_true(raft_is_leader(sim_raft(s, leader)));
	assert_int_equal(raft_transfer_target(sim_raft(s, leader)), 0);
	assert_int_equal(sim_restart(s, target), 0);
	commit_one(s);
	done(s);
}

static void test_read_index(void **state)
{
	(void)state;
	struct sim *s = make(3);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	struct sim_stats before, after;
	sim_stats_get(s, &before);
	/* On the leader and through a follower; many reads share rounds. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(sim_read(s, leader), 0);
		assert_int_equal(sim_read(s, leader % 3 + 1), 0);
	}
	assert_int_equal(sim_run_for(s, ELECTION_US), 0);
	sim_stats_get(s, &after);
	assert_int_equal(after.reads_ok - before.reads_ok, 40);
	assert_int_equal(after.reads_unknown, before.reads_unknown);
	/* Reads share rounds: besides the regular heartbeats (two peers,
	 * one per tick), few rounds for 40 reads. The 20 on the leader share
	 * one; the 20 forwarded arrive one by one over the network's 0.2-2 ms
	 * delays, and each may start a round while fewer than 4 are out (8
	 * rounds with this seed). */
	uint64_t ticks = ELECTION_US / SIM_TICK_US;
	assert_true(after.sent_by_type[RAFT_MSG_HEARTBEAT] -
			    before.sent_by_type[RAFT_MSG_HEARTBEAT] <=
		    2 * (ticks + 1) + 2 * 11);
	done(s);
}

static void test_stale_read_trap(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t old = wait_leader(s);
	commit_one(s);
	/* The old leader keeps one follower: a minority. */
	uint64_t buddy = old % 5 + 1;
	sim_partition(s, (1u << (old - 1)) | (1u << (buddy - 1)));
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       30 * ELECTION_US),
			 0);
	/* The majority moves on... */
	uint64_t fresh = 0;
	assert_int_equal(sim_propose(s, sim_leader(s), &fresh), 0);
	assert_int_equal(sim_run_for(s, ELECTION_US / 2), 0);
	assert_true(sim_cmd_applied_index(s, fresh) != 0);
	/* ...and a read on the old leader (if it still thinks it leads)
	 * never returns its stale state: it fails as unknown within the
	 * check-quorum bound (the simulator checks every answered read). */
	struct sim_stats before, after;
	sim_stats_get(s, &before);
	int rc = sim_read(s, old);
	assert_true(rc == 0 || rc == -EPERM);
	assert_int_equal(sim_run_for(s, 2 * ELECTION_US + SIM_TICK_US), 0);
	sim_stats_get(s, &after);
	assert_int_equal(after.reads_ok, before.reads_ok);
	if (rc == 0)
		assert_int_equal(after.reads_unknown, before.reads_unknown + 1);
	sim_heal(s);
	commit_one(s);
	done(s);
}

static void test_retry_after_leader_change_applied_once(void **state)
{
	(void)state;
	struct sim_config c;
	sim_config_default(&c, 3, SEED);
	c.retry_us = ELECTION_US / 2;
	struct sim *s = NULL;
	assert_int_equal(sim_create(&c, &s), 0);
	uint64_t old = wait_leader(s);
	commit_one(s);
	uint64_t proposer = old % 3 + 1;
	/* The proposal reaches the leader, which is then cut off: its fate
	 * is unknown to the proposer, which retries with the same id. */
	uint64_t cmd = 0;
	assert_int_equal(sim_propose(s, proposer, &cmd), 0);
	sim_partition(s, 1u << (old - 1));
	assert_int_equal(sim_run_for(s, 10 * ELECTION_US), 0);
	sim_heal(s);
	commit_one(s);
	struct sim_stats st;
	sim_stats_get(s, &st);
	assert_true(st.retries > 0);
	/* Applied (once: the simulator checks every node's effects). */
	assert_true(sim_cmd_applied_index(s, cmd) != 0);
	done(s);
}

/* ---- Raft III ---- */

static struct sim *make_with(uint32_t nodes, uint32_t voters,
			     uint64_t snapshot_every, uint64_t tail)
{
	struct sim_config c;
	sim_config_default(&c, nodes, SEED + 100 + nodes);
	c.voters = voters;
	c.snapshot_every = snapshot_every;
	c.snapshot_tail = tail;
	struct sim *s = NULL;
	assert_int_equal(sim_create(&c, &s), 0);
	return s;
}

static bool is_voter(struct sim *s, void *arg)
{
	return sim_is_voter(s, *(uint64_t *)arg);
}

static void test_learner_catch_up_and_promotion(void **state)
{
	(void)state;
	struct sim *s = make_with(4, 3, 0, 0);
	wait_leader(s);
	for (int i = 0; i < 50; i++)
		commit_one(s);
	uint64_t newcomer = 4;
	assert_false(sim_is_member(s, newcomer));
	assert_int_equal(sim_change(s, RAFT_ADD_LEARNER, newcomer), 0);
	/* A learner first: it receives the log but has no vote. */
	assert_true(sim_is_learner(s, newcomer));
	assert_int_equal(sim_voter_count(s), 3);
	assert_int_equal(sim_run_until(s, is_voter, &newcomer, 20 * ELECTION_US),
			 0);
	assert_int_equal(sim_voter_count(s), 4);
	struct applied_goal g = {.cmd = commit_one(s)};
	assert_true(sim_applied(s, newcomer) >= sim_cmd_applied_index(s, g.cmd));
	/* An id that was ever a member is never added again. */
	assert_int_equal(sim_change(s, RAFT_ADD_LEARNER, newcomer), -EEXIST);
	done(s);
}

static void test_remove_the_leader(void **state)
{
	(void)state;
	struct sim *s = make(5);
	uint64_t old = wait_leader(s);
	commit_one(s);
	assert_int_equal(sim_change(s, RAFT_REMOVE, old), 0);
	/* The change commits, the old leader steps down, another leads. */
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       30 * ELECTION_US),
			 0);
	assert_false(raft_is_leader(sim_raft(s, old)));
	assert_false(sim_is_member(s, old));
	assert_int_equal(sim_voter_count(s), 4);
	commit_one(s);
	/* The removed node's messages are refused from now on. */
	assert_int_equal(sim_run_for(s, 10 * ELECTION_US), 0);
	uint64_t leader = sim_leader(s);
	assert_true(leader != old);
	commit_one(s);
	done(s);
}

static void test_follower_needs_snapshot(void **state)
{
	(void)state;
	struct sim *s = make_with(3, 0, 20, 5);
	uint64_t leader = wait_leader(s);
	commit_one(s);
	uint64_t lagger = leader % 3 + 1;
	assert_int_equal(sim_crash(s, lagger), 0);
	for (int i = 0; i < 100; i++)
		commit_one(s);
	/* Its next entry was compacted away everywhere. */
	assert_true(raft_first_index(sim_raft(s, leader)) >
		    sim_applied(s, lagger) + 1);
	assert_int_equal(sim_restart(s, lagger), 0);
	commit_one(s);
	struct sim_stats st;
	sim_stats_get(s, &st);
	assert_true(st.installs >= 1);
	assert_true(sim_converged(s, 100));
	done(s);
}

static bool installed(struct sim *s, void *arg)
{
	(void)arg;
	struct sim_stats st;
	sim_stats_get(s, &st);
	return st.installs > 0;
}

static void test_snapshot_transfer_interrupted(void **state)
{
	(void)state;
	struct sim_config c;
	sim_config_default(&c, 3, SEED + 7);
	c.snapshot_every = 20;
	c.snapshot_tail = 0;
	c.snapshot_transfer_us = 5 * ELECTION_US;
	struct sim *s = NULL;
	assert_int_equal(sim_create(&c, &s), 0);
	uint64_t leader = wait_leader(s);
	uint64_t lagger = leader % 3 + 1;
	assert_int_equal(sim_crash(s, lagger), 0);
	for (int i = 0; i < 60; i++)
		commit_one(s);
	assert_int_equal(sim_restart(s, lagger), 0);
	/* The transfer starts, then the link breaks before it ends. */
	assert_int_equal(sim_run_for(s, ELECTION_US), 0);
	sim_cut(s, leader, lagger, true);
	assert_int_equal(sim_run_for(s, 10 * ELECTION_US), 0);
	struct sim_stats st;
	sim_stats_get(s, &st);
	assert_true(st.snapshots_failed >= 1);
	assert_int_equal(st.installs, 0);
	/* Healed, it is asked for again and completes. */
	sim_heal(s);
	assert_int_equal(sim_run_until(s, installed, NULL, 100 * ELECTION_US),
			 0);
	commit_one(s);
	done(s);
}

static void test_restart_everyone_from_snapshots(void **state)
{
	(void)state;
	struct sim *s = make_with(3, 0, 15, 4);
	wait_leader(s);
	for (int i = 0; i < 80; i++)
		commit_one(s);
	uint64_t before[4], first[4];
	for (uint64_t id = 1; id <= 3; id++) {
		before[id] = sim_applied(s, id);
		first[id] = raft_first_index(sim_raft(s, id));
		assert_true(first[id] > 1); /* compacted */
	}
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(sim_crash(s, id), 0);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(sim_restart(s, id), 0);
		/* Back from its snapshot: nothing it had compacted is asked
		 * for again, commit starts at the snapshot. */
		assert_true(sim_applied(s, id) >= first[id] - 1);
		assert_true(raft_commit_index(sim_raft(s, id)) >= first[id] - 1);
	}
	commit_one(s);
	for (uint64_t id = 1; id <= 3; id++)
		assert_true(sim_applied(s, id) > before[id]);
	done(s);
}

/* Found by the soak: the leader of two voters removes itself, but loses
 * its leadership before the other voter got the change. The other cannot
 * win (the removed one, holding newer entries, refuses its votes), so the
 * removed one must still campaign while its removal is pending (thesis
 * §4.2.2), commit it, and step down. */
static void test_self_removal_pending_then_recovery(void **state)
{
	(void)state;
	struct sim *s = make_with(3, 2, 0, 0);
	uint64_t old = wait_leader(s);
	commit_one(s);
	uint64_t other = old == 1 ? 2 : 1;
	sim_cut(s, old, other, true);
	assert_int_equal(sim_change(s, RAFT_REMOVE, old), 0);
	/* Check-quorum: it cannot reach its only voter and steps down. */
	assert_int_equal(sim_run_for(s, 3 * ELECTION_US), 0);
	assert_false(raft_is_leader(sim_raft(s, old)));
	sim_heal(s);
	assert_int_equal(sim_run_until(s, leader_other_than, &old,
				       60 * ELECTION_US),
			 0);
	assert_int_equal(sim_leader(s), other);
	assert_false(sim_is_member(s, old));
	commit_one(s);
	done(s);
}

TEST_MAIN(cmocka_unit_test(test_initial_election),
	  cmocka_unit_test(test_reelection_after_leader_loss),
	  cmocka_unit_test(test_no_commit_without_quorum),
	  cmocka_unit_test(test_old_leader_entries_overwritten),
	  cmocka_unit_test(test_fast_backtracking_over_50_divergent),
	  cmocka_unit_test(test_figure8),
	  cmocka_unit_test(test_lossy_reordering_network),
	  cmocka_unit_test(test_crash_restart_churn),
	  cmocka_unit_test(test_restart_everyone),
	  cmocka_unit_test(test_prevote_stops_disruptive_node),
	  cmocka_unit_test(test_one_way_cut_does_not_depose),
	  cmocka_unit_test(test_check_quorum_step_down),
	  cmocka_unit_test(test_transfer_to_up_to_date),
	  cmocka_unit_test(test_transfer_to_lagging),
	  cmocka_unit_test(test_transfer_times_out_and_resumes),
	  cmocka_unit_test(test_read_index),
	  cmocka_unit_test(test_stale_read_trap),
	  cmocka_unit_test(test_retry_after_leader_change_applied_once),
	  cmocka_unit_test(test_learner_catch_up_and_promotion),
	  cmocka_unit_test(test_remove_the_leader),
	  cmocka_unit_test(test_follower_needs_snapshot),
	  cmocka_unit_test(test_snapshot_transfer_interrupted),
	  cmocka_unit_test(test_restart_everyone_from_snapshots),
	  cmocka_unit_test(test_self_removal_pending_then_recovery))
