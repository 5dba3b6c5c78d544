/* A runtime bootstrapped from a restored state (raft_runtime_options.
 * bootstrap_index, `serve -o restore`): the log starts after that index as
 * after a snapshot at (index, term 1) with the configuration, nothing at or
 * below it is ever applied, new entries follow it, and a restart recovers
 * the same log whatever the options say. */

#define _GNU_SOURCE
#include "tests/lib/test_main.h"

#include <ftw.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/proposal.h"
#include "raft/raft.h"

#define RESTORED 1000u

static int remove_one(const char *path, const struct stat *sb, int flag,
		      struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

struct machine {
	atomic_uint_fast64_t first; /* the first index applied (0: none) */
	atomic_uint_fast64_t last;
};

static int apply(void *ctx, const struct raft_entry *e,
		 struct raft_proposal_id *id, void *result, size_t *size)
{
	struct machine *m = ctx;
	uint_fast64_t zero = 0;

	(void)result;
	*size = 0;
	/* The payload is the proposal's id (one process: its bytes). */
	if (e->type == RAFT_ENTRY_NORMAL && e->size == sizeof(*id))
		memcpy(id, e->data, sizeof(*id));
	atomic_compare_exchange_strong(&m->first, &zero, e->index);
	atomic_store(&m->last, e->index);
	return 0;
}

static int send_nothing(void *ctx, const struct raft_message *m)
{
	(void)ctx;
	(void)m;
	return 0; /* one member: nothing to send */
}

static struct raft_runtime *start(const char *dir, struct machine *m,
				  uint64_t applied, uint64_t bootstrap_index)
{
	struct raft_runtime_options o;
	struct raft_runtime *rt = NULL;
	char err[512] = "";

	raft_runtime_options_default(&o, 1);
	o.dir = dir;
	o.cluster_id = "c0ffee00c0ffee00c0ffee00c0ffee00";
	o.bootstrap = true;
	o.bootstrap_index = bootstrap_index;
	o.conf.n = 1;
	o.conf.members[0].id = 1;
	o.conf.members[0].role = RAFT_VOTER;
	snprintf(o.conf.members[0].address, RAFT_MAX_ADDRESS,
		 "127.0.0.1:7000");
	o.tick_ms = 10;
	o.raft.election_ticks = 10;
	o.raft.heartbeat_ticks = 2;
	o.applied_index = applied;
	o.transport.send = send_nothing;
	o.fsm.apply = apply;
	o.fsm.ctx = m;
	if (raft_runtime_create(&o, &rt, err, sizeof(err)) != 0)
		fail_msg("create: %s", err);
	assert_int_equal(raft_runtime_start(rt), 0);
	return rt;
}

static void propose_one(struct raft_runtime *rt, uint64_t seq)
{
	struct raft_proposal_id id = {1, 1, seq};
	size_t size = 0;
	uint8_t result[8];
	int rc = -1;

	/* The single member elects itself within a few election timeouts. */
	for (int i = 0; i < 100 && rc != 0; i++) {
		rc = raft_runtime_propose(rt, &id, &id, sizeof(id), 2000, result,
					  sizeof(result), &size);
		if (rc != 0)
			usleep(50 * 1000);
	}
	assert_int_equal(rc, 0);
}

static void test_log_starts_after_the_restored_state(void **state)
{
	char tmp[] = "/tmp/raftfs-restore.XXXXXX";
	char dir[4200];
	struct machine m = {0, 0};
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct raft_runtime *rt;
	uint64_t last;

	(void)state;
	assert_non_null(st);
	assert_non_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/log", tmp);
	rt = start(dir, &m, RESTORED, RESTORED);
	raft_runtime_status_get(rt, st);
	assert_int_equal(st->snapshot_index, RESTORED);
	assert_int_equal(st->snapshot_term, 1);
	assert_int_equal(st->log_first_index, RESTORED + 1);
	propose_one(rt, 1);
	/* The configuration came from the snapshot record (published by the
	 * driver once it runs: asked after a commit). */
	raft_runtime_status_get(rt, st);
	assert_int_equal(st->conf.n, 1);
	assert_int_equal(st->conf.members[0].id, 1);
	/* Nothing at or below the restored index was applied again. */
	assert_true(atomic_load(&m.first) > RESTORED);
	last = atomic_load(&m.last);
	assert_true(last > RESTORED);
	raft_runtime_destroy(rt);

	/* A restart recovers that log; the options no longer matter. */
	rt = start(dir, &m, last, RESTORED);
	raft_runtime_status_get(rt, st);
	assert_int_equal(st->snapshot_index, RESTORED);
	assert_true(st->raft.last_index >= last);
	propose_one(rt, 2);
	assert_true(atomic_load(&m.last) > last);
	raft_runtime_destroy(rt);
	free(st);
	nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_MAIN(cmocka_unit_test(test_log_starts_after_the_restored_state))
