/*
 * The Raft paper's Figure 8, driven step by step on a 5-node simulated
 * cluster: an entry of an old term reaches a majority through a later
 * leader, which then crashes before an entry of its own term is committed;
 * a node holding a conflicting entry of a higher term must still be able to
 * win, so the old entry must not have counted as committed.
 *
 * With the correct core the run completes with no violation; with
 * RAFT_BUG_FIGURE8 the checker reports a lost committed entry. Shared by
 * the scenario tests and `raftsim --scenario figure8`.
 */
#include <errno.h>
#include <string.h>

#include "tests/sim/internal.h"

static bool leader_outside(struct sim *s, void *arg)
{
	const uint64_t *avoid = arg;
	uint64_t id = sim_leader(s);
	return id != 0 && id != avoid[0] && id != avoid[1];
}

static bool leader_inside(struct sim *s, void *arg)
{
	const uint64_t *want = arg;
	uint64_t id = sim_leader(s);
	return id != 0 && (id == want[0] || id == want[1]);
}

struct commit_goal {
	uint64_t node;
	uint64_t index;
};

static bool committed_at(struct sim *s, void *arg)
{
	const struct commit_goal *g = arg;
	struct raft *r = sim_raft(s, g->node);
	return r && raft_commit_index(r) >= g->index;
}

static bool any_leader(struct sim *s, void *arg)
{
	(void)arg;
	return sim_leader(s) != 0;
}

int sim_figure8_steps(struct sim *s, uint64_t jitter_us)
{
	const uint64_t wait_us = 40ull * 10 * SIM_TICK_US;
	uint32_t n = s->cfg.nodes;
	int rc;
	if (n < 5)
		return -EINVAL;

	/* (a) S1 leads and replicates entry X to S2 only. */
	rc = sim_run_until(s, any_leader, NULL, wait_us);
	if (rc != 0)
		return rc;
	uint64_t s1 = sim_leader(s), s2 = s1 % n + 1;
	sim_partition(s, (1u << (s1 - 1)) | (1u << (s2 - 1)));
	rc = sim_propose(s, s1, NULL);
	if (rc == 0)
		rc = sim_run_for(s, 5000 + jitter_us);
	if (rc != 0)
		return rc;
	uint64_t x_index = raft_last_index(sim_raft(s, s1));
	/* (b) S1 crashes; S5 (one without X) is elected and appends its own
	 * entries at X's index, but they never leave it. */
	sim_crash(s, s1);
	sim_partition(s, 1u << (s2 - 1)); /* S2 sits this election out */
	uint64_t avoid[2] = {s1, s2};
	rc = sim_run_until(s, leader_outside, avoid, wait_us);
	if (rc != 0)
		return rc;
	uint64_t s5 = sim_leader(s);
	sim_partition(s, 1u << (s5 - 1));
	(void)sim_propose(s, s5, NULL);
	rc = sim_run_for(s, 2000);
	if (rc != 0)
		return rc;
	sim_crash(s, s5);
	sim_heal(s);

	/* (c) S1 comes back and is elected (S1 or S2: both hold X); it
	 * brings the others up to date with X. The moment it counts X as
	 * committed, it crashes. */
	rc = sim_restart(s, s1);
	if (rc != 0)
		return rc;
	uint64_t want[2] = {s1, s2};
	rc = sim_run_until(s, leader_inside, want, wait_us);
	if (rc != 0)
		return rc;
	uint64_t s3 = sim_leader(s);
	struct commit_goal goal = {.node = s3, .index = x_index};
	rc = sim_run_until(s, committed_at, &goal, wait_us);
	if (rc != 0)
		return rc;
	/* Cut it off with the other holder of X (which got its no-op
	 * already) so what it sent last is lost, then crash it. */
	uint64_t other = s3 == s1 ? s2 : s1;
	sim_partition(s, (1u << (s3 - 1)) | (1u << (other - 1)));
	sim_crash(s, s3);
	rc = sim_run_for(s, 10000);
	if (rc != 0)
		return rc;

	/* (d) S5 returns. If X was really committed, S5 cannot win; if the
	 * leader counted an old-term entry, S5 wins with the votes of the
	 * two that hold X but nothing of the crashed leader's term, and
	 * overwrites X: the checker reports a lost committed entry. */
	rc = sim_restart(s, s5);
	if (rc != 0)
		return rc;
	rc = sim_run_for(s, 3ull * 1000 * 1000);
	if (rc != 0)
		return rc;
	sim_heal(s);
	rc = sim_restart(s, s3);
	if (rc != 0)
		return rc;
	return sim_run_for(s, 2ull * 1000 * 1000);
}

int sim_figure8(uint64_t seed, uint32_t test_bugs, struct sim **out)
{
	struct sim_config c;
	sim_config_default(&c, 5, seed);
	c.test_bugs = test_bugs;
	c.max_batch_bytes = 1; /* one entry per AppendEntries */
	c.max_inflight_msgs = 1;
	struct sim *s = NULL;
	int rc = sim_create(&c, &s);
	if (rc != 0)
		return rc;
	*out = s;
	/* Fixed, symmetric network delays keep the steps predictable. */
	struct sim_net net = {.min_delay_us = 1000, .max_delay_us = 1000};
	sim_set_net(s, &net);
	sim_set_disk(s, 100, 100);
	rc = sim_run_for(s, 300000);
	if (rc != 0)
		return rc;
	return sim_figure8_steps(s, 0);
}
