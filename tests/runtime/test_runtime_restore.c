/* A runtime bootstrapped from a restored state (raft_runtime_options.
 * bootstrap_index, `serve -o restore`): the log starts after that index as
 * after a snapshot at (index, term 1) with the configuration, nothing at or
 * below it is ever applied, new entries follow it, and a restart recovers
 * the same log whatever the options say. */

#define _GNU_SOURCE
#include "tests/lib/test_main.h"

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
#include "tests/runtime/harness.h"

#define RESTORED 1000u

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

static struct raft_runtime *start(const char *dir, struct machine *m,
				  uint64_t applied, uint64_t bootstrap_index)
{
	struct raft_runtime *rt = NULL;
	char err[512] = "";

	if (harness_solo_start(dir, apply, m, applied, bootstrap_index, &rt,
			       err, sizeof(err)) != 0)
		fail_msg("start: %s", err);
	return rt;
}

static void propose_one(struct raft_runtime *rt, uint64_t seq)
{
	assert_int_equal(harness_solo_propose(rt, seq), 0);
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
	harness_remove_tree(tmp);
}

TEST_MAIN(cmocka_unit_test(test_log_starts_after_the_restored_state))
