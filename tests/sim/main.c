/*
 * raftsim: random runs of the cluster simulator. Each seed picks a cluster
 * size and runs a chaos phase (crashes and restarts that lose unsynced
 * writes, symmetric and one-way partitions, an isolated leader, lossy,
 * duplicating, reordering links, paused nodes, slow disks, a stream of
 * client proposals) for at least --events events, then heals everything and
 * requires a leader and progress within a bounded number of election
 * timeouts. Any violation prints the seed, the reason and the recent trace.
 *
 *   raftsim --seed S                  one seed (replay)
 *   raftsim --seeds N [--base B]      N seeds from B
 *   options: --events E (10000) --nodes N (random) --verbose
 *            --bug figure8|vote-any-log|vote-before-persist|
 *                  read-no-round|learner-quorum|overlap-changes|dedup-off
 *            --expect-violation        succeed only if some seed fails
 *
 * Ends with "N passed, N failed" (one test per seed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sim/sim.h"

struct run_opts {
	uint64_t events;
	uint32_t nodes;
	uint32_t bugs;
	bool dedup_off; /* the state machine ignores the duplicate table */
	bool verbose;
};

struct rng {
	uint64_t s;
};

static uint64_t range(struct rng *g, uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + sim_splitmix(&g->s) % (hi - lo);
}

static uint64_t random_up(struct sim *s, struct rng *g, uint32_t n)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t id = range(g, 1, n + 1);
		if (sim_is_up(s, id))
			return id;
	}
	return 0;
}

static uint64_t random_down(struct sim *s, struct rng *g, uint32_t n)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t id = range(g, 1, n + 1);
		if (!sim_is_up(s, id))
			return id;
	}
	return 0;
}

static const char *fault_names[] = {
	"crash", "restart", "partition", "one-way", "isolate-leader",
	"heal", "lossy-net", "calm-net", "pause", "slow-disk", "churn",
	"transfer", "flap", "rejoin-check", "member-add", "member-remove",
	"member-promote",
};
#define N_FAULTS (sizeof(fault_names) / sizeof(fault_names[0]))

/* Leadership churn in the schedule family of the Raft paper's Figure 8
 * (tests/sim/figure8.c), where committing old-term entries by counting
 * replicas goes wrong; on clusters of 5 or more nodes, with random timing. */
static void leader_churn(struct sim *s, struct rng *g, uint32_t n)
{
	if (n < 5)
		return;
	sim_heal(s);
	for (uint64_t id = 1; id <= n; id++) {
		sim_pause(s, id, false);
		if (!sim_is_up(s, id))
			sim_restart(s, id);
	}
	(void)sim_figure8_steps(s, range(g, 0, 5000));
}

/* Check-quorum bound: a leader cut off from every other node steps down
 * within two election timeouts (it checks once per timeout and the window
 * it is in may still count old answers). */
static void isolate_leader(struct sim *s, uint64_t id)
{
	/* A lone voter (learners aside) is its own majority. */
	bool alone = sim_voter_count(s) <= 1;
	sim_partition(s, 1u << (id - 1));
	struct raft *r = sim_raft(s, id);
	uint64_t term = raft_term(r);
	if (sim_run_for(s, 2 * 10 * SIM_TICK_US + 2 * SIM_TICK_US) != 0)
		return;
	/* A paused node's clock stops (like SIGSTOP): it cannot notice. */
	r = sim_raft(s, id);
	if (r && raft_is_leader(r) && raft_term(r) == term &&
	    !alone && !sim_is_paused(s, id))
		sim_report(s, "leader %llu of term %llu still leads two election "
			      "timeouts after losing its majority",
			   (unsigned long long)id, (unsigned long long)term);
}

/* A flapping node: its links go down and up several times in a row. */
static void flap(struct sim *s, struct rng *g, uint32_t n)
{
	uint64_t id = range(g, 1, n + 1);
	for (uint64_t k = range(g, 2, 8); k > 0; k--) {
		sim_partition(s, 1u << (id - 1));
		if (sim_run_for(s, range(g, 5000, 150000)) != 0)
			return;
		sim_heal(s);
		if (sim_run_for(s, range(g, 5000, 150000)) != 0)
			return;
	}
}

static bool healthy_and_converged(struct sim *s, void *arg)
{
	(void)arg;
	uint64_t leader = sim_leader(s);
	return leader != 0 &&
	       sim_converged(s, raft_commit_index(sim_raft(s, leader)));
}

/* Pre-vote: in a healthy cluster, a follower cut off for a while (longer
 * than election timeouts) that comes back must not change the leader's
 * term. */
static void rejoin_check(struct sim *s, struct rng *g, uint32_t n)
{
	if (n < 3)
		return;
	sim_heal(s);
	struct sim_net calm = {.min_delay_us = 200, .max_delay_us = 2000};
	sim_set_net(s, &calm);
	sim_set_disk(s, 100, 1500);
	for (uint64_t id = 1; id <= n; id++) {
		sim_pause(s, id, false);
		if (!sim_is_up(s, id))
			sim_restart(s, id);
	}
	if (sim_run_until(s, healthy_and_converged, NULL,
			  50ull * 10 * SIM_TICK_US) != 0)
		return;
	/* Let any election in progress settle. */
	if (sim_run_for(s, 3 * 10 * SIM_TICK_US) != 0)
		return;
	uint64_t leader = sim_leader(s);
	/* The cut-off voter must leave a majority behind. */
	if (!leader || sim_voter_count(s) < 3)
		return;
	uint64_t term = raft_term(sim_raft(s, leader));
	uint64_t follower = 0;
	for (uint64_t k = 1; k <= n && !follower; k++) {
		uint64_t id = (leader + k - 1) % n + 1;
		if (id != leader && sim_is_voter(s, id))
			follower = id;
	}
	if (!follower)
		return;
	sim_partition(s, 1u << (follower - 1));
	if (sim_run_for(s, range(g, 300000, 2000000)) != 0)
		return;
	sim_heal(s);
	if (sim_run_for(s, 1000000) != 0)
		return;
	struct raft *r = sim_raft(s, leader);
	if (!r || !raft_is_leader(r) || raft_term(r) != term)
		sim_report(s, "pre-vote: node %llu rejoining changed the healthy "
			      "leader %llu of term %llu (now %s term %llu)",
			   (unsigned long long)follower,
			   (unsigned long long)leader, (unsigned long long)term,
			   r && raft_is_leader(r) ? "leader" : "not leader",
			   (unsigned long long)(r ? raft_term(r) : 0));
}

static void inject_fault(struct sim *s, struct rng *g, uint32_t n,
			 uint64_t *counts)
{
	uint32_t kind = (uint32_t)range(g, 0, N_FAULTS);
	uint64_t id;
	counts[kind]++;
	switch (kind) {
	case 0:
		if ((id = random_up(s, g, n)) != 0)
			sim_crash(s, id);
		break;
	case 1:
		if ((id = random_down(s, g, n)) != 0)
			sim_restart(s, id);
		break;
	case 2:
		sim_partition(s, (uint32_t)range(g, 1, (1u << n)));
		break;
	case 3: {
		uint64_t a = range(g, 1, n + 1), b = range(g, 1, n + 1);
		sim_cut(s, a, b, true);
		break;
	}
	case 4:
		if ((id = sim_leader(s)) != 0)
			isolate_leader(s, id);
		break;
	case 5:
		sim_heal(s);
		for (uint64_t i = 1; i <= n; i++)
			sim_pause(s, i, false);
		break;
	case 6: {
		struct sim_net net = {
			.min_delay_us = (uint32_t)range(g, 100, 2000),
			.max_delay_us = (uint32_t)range(g, 2000, 60000),
			.drop_permille = (uint32_t)range(g, 0, 300),
			.dup_permille = (uint32_t)range(g, 0, 100),
		};
		sim_set_net(s, &net);
		break;
	}
	case 7: {
		struct sim_net net = {.min_delay_us = 200,
				      .max_delay_us = 2000};
		sim_set_net(s, &net);
		break;
	}
	case 8:
		if ((id = range(g, 1, n + 1)) != 0)
			sim_pause(s, id, range(g, 0, 2) == 0);
		break;
	case 9:
		sim_set_disk(s, (uint32_t)range(g, 50, 500),
			     (uint32_t)range(g, 500, 30000));
		break;
	case 10:
		leader_churn(s, g, n);
		break;
	case 11:
		(void)sim_transfer(s, range(g, 0, n + 1));
		break;
	case 12:
		flap(s, g, n);
		break;
	case 13:
		rejoin_check(s, g, n);
		break;
	case 14:
		/* A spare node joins as a learner (promoted once caught up);
		 * ids never return, so each spare joins at most once. */
		for (uint64_t k = 1; k <= n; k++) {
			if (!sim_is_member(s, k) && !sim_was_member(s, k)) {
				(void)sim_change(s, RAFT_ADD_LEARNER, k);
				break;
			}
		}
		break;
	case 16:
		/* Without automatic promotion learners linger until this. */
		for (uint64_t k = 1; k <= n; k++) {
			if (sim_is_learner(s, k)) {
				(void)sim_change(s, RAFT_PROMOTE, k);
				break;
			}
		}
		break;
	case 15:
		/* Remove a member (sometimes the leader); keep three. */
		if (sim_member_count(s) > 3 && (id = range(g, 1, n + 1)) &&
		    sim_is_member(s, id))
			(void)sim_change(s, RAFT_REMOVE, id);
		break;
	}
}

static bool has_leader(struct sim *s, void *arg)
{
	(void)arg;
	return sim_leader(s) != 0;
}

struct progress_goal {
	uint64_t cmd;
};

static bool cmd_everywhere(struct sim *s, void *arg)
{
	struct progress_goal *goal = arg;
	uint64_t index = sim_cmd_applied_index(s, goal->cmd);
	return index != 0 && sim_converged(s, index);
}

/* After healing: a leader within a bounded number of election timeouts,
 * then a new command applied on every node. */
static int check_liveness(struct sim *s, uint32_t n)
{
	const uint64_t election_us = 10ull * SIM_TICK_US;
	sim_heal(s);
	struct sim_net calm = {.min_delay_us = 200, .max_delay_us = 2000};
	sim_set_net(s, &calm);
	sim_set_disk(s, 100, 1500);
	for (uint64_t id = 1; id <= n; id++) {
		sim_pause(s, id, false);
		if (!sim_is_up(s, id) && sim_restart(s, id) != 0)
			return -EFAULT;
	}
	int rc = sim_run_until(s, has_leader, NULL, 30 * election_us);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "liveness: no leader within 30 election "
				"timeouts after healing\n");
		return rc;
	}
	if (rc != 0)
		return rc;
	/* Progress: a new command reaches every node within 50 election
	 * timeouts (clients may still be retrying a backlog). */
	struct progress_goal goal = {0};
	uint64_t deadline = sim_now(s) + 50 * election_us;
	while (sim_now(s) < deadline) {
		uint64_t leader = sim_leader(s);
		if (leader && sim_propose(s, leader, &goal.cmd) == 0) {
			rc = sim_run_until(s, cmd_everywhere, &goal,
					   5 * election_us);
			if (rc == 0)
				return 0;
			if (rc != -ETIMEDOUT)
				return rc;
		} else {
			rc = sim_run_for(s, election_us);
			if (rc != 0)
				return rc;
		}
	}
	fprintf(stderr, "liveness: no progress within 50 election timeouts "
			"after healing\n");
	return -ETIMEDOUT;
}

static int run_seed(uint64_t seed, const struct run_opts *o,
		    struct sim_stats *out, uint64_t *fault_counts)
{
	static const uint32_t sizes[] = {1, 2, 3, 3, 3, 4, 5, 5, 5, 7};
	struct rng g = {seed * 0x9e3779b97f4a7c15ull + 12345};
	uint32_t n = o->nodes ? o->nodes : sizes[range(&g, 0, 10)];
	struct sim_config c;
	sim_config_default(&c, n, seed);
	c.test_bugs = o->bugs;
	c.dedup_off = o->dedup_off;
	/* Half the clusters start smaller than the nodes there are, leaving
	 * spares to add. */
	if (n >= 3 && range(&g, 0, 2) == 0)
		c.voters = (uint32_t)range(&g, 2, n);
	c.manual_promote = range(&g, 0, 2) == 0;
	/* Small batches and windows split a leader's catch-up of old entries
	 * from its own no-op, which is where commit rules go wrong. */
	static const uint64_t batches[] = {1, 64, 512, 4096, 65536};
	c.max_batch_bytes = batches[range(&g, 0, 5)];
	c.max_inflight_msgs = (uint32_t)range(&g, 1, 17);
	/* Snapshots: never, or every 10..300 applied entries with a tail;
	 * transfers that take up to an election timeout (some far longer). */
	if (range(&g, 0, 4) != 0) {
		c.snapshot_every = range(&g, 10, 300);
		c.snapshot_tail = range(&g, 0, 50);
	}
	c.snapshot_transfer_us = range(&g, 1000, 10 * SIM_TICK_US);
	/* One entry per message and per round trip cannot catch up a backlog
	 * within the liveness bound; keep a window when batches are tiny. */
	if (c.max_batch_bytes < 512 && c.max_inflight_msgs < 8)
		c.max_inflight_msgs = 8;
	struct sim *s = NULL;
	int rc = sim_create(&c, &s);
	if (rc != 0) {
		fprintf(stderr, "seed %llu: cannot create the simulation: %d\n",
			(unsigned long long)seed, rc);
		return rc;
	}
	sim_set_verbose(s, o->verbose);

	/* Fault intensity varies by seed: storms of faults find different
	 * bugs than long calm stretches. */
	static const uint64_t gap_lo[] = {20000, 3000, 50000};
	static const uint64_t gap_hi[] = {400000, 60000, 1000000};
	uint32_t intensity = (uint32_t)range(&g, 0, 3);
	uint64_t next_fault = sim_now(s) + range(&g, gap_lo[intensity],
						 gap_hi[intensity]);
	while (rc == 0 && sim_events(s) < o->events) {
		rc = sim_run_for(s, range(&g, 500, 8000));
		if (rc != 0)
			break;
		/* Clients: most steps propose something somewhere, and
		 * read somewhere through ReadIndex. */
		if (range(&g, 0, 10) < 7) {
			uint64_t id = random_up(s, &g, n);
			if (id)
				(void)sim_propose(s, id, NULL);
		}
		if (range(&g, 0, 10) < 5) {
			uint64_t id = random_up(s, &g, n);
			if (id)
				(void)sim_read(s, id);
		}
		if (sim_now(s) >= next_fault) {
			inject_fault(s, &g, n, fault_counts);
			next_fault = sim_now(s) + range(&g, gap_lo[intensity],
							gap_hi[intensity]);
		}
		if (sim_violation(s))
			rc = -EFAULT;
	}
	if (rc == 0)
		rc = check_liveness(s, n);
	if (rc != 0) {
		const char *why = sim_violation(s);
		fprintf(stderr, "seed %llu FAILED (%u nodes, %llu events): %s\n",
			(unsigned long long)seed, n,
			(unsigned long long)sim_events(s),
			why ? why : "liveness");
		sim_dump_trace(s);
		fprintf(stderr, "replay: make sim SEED=%llu%s\n",
			(unsigned long long)seed,
			o->bugs || o->dedup_off ? " (with the same --bug)" : "");
	}
	sim_stats_get(s, out);
	sim_destroy(s);
	return rc;
}

static int run_figure8(uint64_t seed, uint32_t bugs, bool expect_violation)
{
	struct sim *s = NULL;
	int rc = sim_figure8(seed, bugs, &s);
	const char *why = s ? sim_violation(s) : NULL;
	bool ok;
	if (expect_violation) {
		ok = why != NULL;
		printf("raftsim: figure 8 scenario, seed %llu: %s\n",
		       (unsigned long long)seed,
		       why ? why : "no violation (the bug was NOT caught)");
	} else {
		ok = rc == 0;
		printf("raftsim: figure 8 scenario, seed %llu: %s (%d)\n",
		       (unsigned long long)seed, why ? why : "clean", rc);
	}
	if (!ok && s)
		sim_dump_trace(s);
	sim_destroy(s);
	printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
	return ok ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: raftsim (--seed S | --seeds N [--base B]) [--events E]\n"
		"               [--nodes N] [--bug figure8|vote-any-log|"
		"vote-before-persist|read-no-round|learner-quorum|\n"
		"                overlap-changes|dedup-off]\n"
		"               [--expect-violation] [--verbose]\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*v = x;
	return true;
}

int main(int argc, char **argv)
{
	struct run_opts o = {.events = 10000};
	uint64_t seed = 0, seeds = 0, base = 1, value;
	bool single = false, expect_violation = false, scenario = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seed") && v && parse_u64(v, &seed)) {
			single = true;
			i++;
		} else if (!strcmp(a, "--seeds") && v && parse_u64(v, &seeds)) {
			i++;
		} else if (!strcmp(a, "--base") && v && parse_u64(v, &base)) {
			i++;
		} else if (!strcmp(a, "--events") && v &&
			   parse_u64(v, &o.events)) {
			i++;
		} else if (!strcmp(a, "--nodes") && v && parse_u64(v, &value) &&
			   value >= 1 && value <= SIM_MAX_NODES) {
			o.nodes = (uint32_t)value;
			i++;
		} else if (!strcmp(a, "--bug") && v) {
			if (!strcmp(v, "figure8"))
				o.bugs |= RAFT_BUG_FIGURE8;
			else if (!strcmp(v, "vote-any-log"))
				o.bugs |= RAFT_BUG_VOTE_ANY_LOG;
			else if (!strcmp(v, "vote-before-persist"))
				o.bugs |= RAFT_BUG_VOTE_BEFORE_PERSIST;
			else if (!strcmp(v, "read-no-round"))
				o.bugs |= RAFT_BUG_READ_NO_ROUND;
			else if (!strcmp(v, "learner-quorum"))
				o.bugs |= RAFT_BUG_LEARNER_QUORUM;
			else if (!strcmp(v, "overlap-changes"))
				o.bugs |= RAFT_BUG_OVERLAP_CHANGES;
			else if (!strcmp(v, "dedup-off"))
				o.dedup_off = true;
			else
				return usage();
			i++;
		} else if (!strcmp(a, "--scenario") && v &&
			   !strcmp(v, "figure8")) {
			scenario = true;
			i++;
		} else if (!strcmp(a, "--expect-violation")) {
			expect_violation = true;
		} else if (!strcmp(a, "--verbose")) {
			o.verbose = true;
		} else {
			return usage();
		}
	}
	if (single) {
		base = seed;
		seeds = 1;
	}
	if (scenario)
		return run_figure8(single ? seed : 1, o.bugs, expect_violation);
	if (seeds == 0)
		return usage();

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t passed = 0, failed = 0, events = 0, first_bad = 0;
	uint64_t faults[N_FAULTS] = {0};
	struct sim_stats total = {0};
	for (uint64_t k = 0; k < seeds; k++) {
		struct sim_stats st;
		int rc = run_seed(base + k, &o, &st, faults);
		events += st.events;
		total.messages_sent += st.messages_sent;
		total.messages_dropped += st.messages_dropped;
		total.crashes += st.crashes;
		total.elections += st.elections;
		total.commands_applied += st.commands_applied;
		total.reads_ok += st.reads_ok;
		total.reads_unknown += st.reads_unknown;
		total.retries += st.retries;
		total.duplicates += st.duplicates;
		total.transfers += st.transfers;
		total.snapshots += st.snapshots;
		total.snapshots_sent += st.snapshots_sent;
		total.snapshots_failed += st.snapshots_failed;
		total.installs += st.installs;
		total.changes += st.changes;
		total.refused += st.refused;
		if (rc == 0) {
			passed++;
		} else {
			failed++;
			if (!first_bad)
				first_bad = base + k;
			if (expect_violation)
				break;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("raftsim: seeds %llu..%llu, %llu events (%.0f/s), %llu "
	       "messages (%llu lost), %llu crashes, %llu elections, %llu "
	       "entries committed, %.1fs\n",
	       (unsigned long long)base,
	       (unsigned long long)(base + passed + failed - 1),
	       (unsigned long long)events, (double)events / (secs > 0 ? secs : 1),
	       (unsigned long long)total.messages_sent,
	       (unsigned long long)total.messages_dropped,
	       (unsigned long long)total.crashes,
	       (unsigned long long)total.elections,
	       (unsigned long long)total.commands_applied, secs);
	printf("raftsim: %llu reads answered (%llu unknown), %llu proposals "
	       "retried, %llu duplicates stopped, %llu leadership transfers\n",
	       (unsigned long long)total.reads_ok,
	       (unsigned long long)total.reads_unknown,
	       (unsigned long long)total.retries,
	       (unsigned long long)total.duplicates,
	       (unsigned long long)total.transfers);
	printf("raftsim: %llu snapshots taken, %llu sent (%llu cut off), %llu "
	       "installed\n",
	       (unsigned long long)total.snapshots,
	       (unsigned long long)total.snapshots_sent,
	       (unsigned long long)total.snapshots_failed,
	       (unsigned long long)total.installs);
	printf("raftsim: %llu membership changes, %llu messages refused from "
	       "removed ids\n",
	       (unsigned long long)total.changes,
	       (unsigned long long)total.refused);
	printf("raftsim: faults:");
	for (size_t i = 0; i < N_FAULTS; i++)
		printf(" %s=%llu", fault_names[i], (unsigned long long)faults[i]);
	printf("\n");
	if (expect_violation) {
		if (failed) {
			printf("raftsim: the deliberate bug was caught at seed "
			       "%llu\n",
			       (unsigned long long)first_bad);
			printf("1 passed, 0 failed\n");
			return 0;
		}
		printf("raftsim: the deliberate bug was NOT caught in %llu "
		       "seeds\n",
		       (unsigned long long)seeds);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	printf("%llu passed, %llu failed\n", (unsigned long long)passed,
	       (unsigned long long)failed);
	return failed ? 1 : 0;
}
