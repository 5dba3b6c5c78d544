/* A committed entry the state machine cannot decode (its apply answers
 * -EPROTONOSUPPORT: a newer command version or op, docs/FS_STORE.md
 * "Feature level") stops the node with an error that says so; nothing
 * after it is applied, and the entry is not skipped. */

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

#define UNKNOWN_OP 0xee

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
	/* An entry of one byte UNKNOWN_OP stands for a command of a newer
	 * build. */
	if (e->type == RAFT_ENTRY_NORMAL && e->size == 1 &&
	    ((const uint8_t *)e->data)[0] == UNKNOWN_OP)
		return -EPROTONOSUPPORT;
	atomic_compare_exchange_strong(&m->first, &zero, e->index);
	atomic_store(&m->last, e->index);
	return 0;
}

static struct raft_runtime *start(const char *dir, struct machine *m)
{
	struct raft_runtime *rt = NULL;
	char err[512] = "";

	if (harness_solo_start(dir, apply, m, 0, 0, &rt, err, sizeof(err)) != 0)
		fail_msg("start: %s", err);
	return rt;
}

static void propose_one(struct raft_runtime *rt, uint64_t seq)
{
	assert_int_equal(harness_solo_propose(rt, seq), 0);
}

static void test_undecodable_entry_stops_the_node(void **state)
{
	char tmp[] = "/tmp/raftfs-undecodable.XXXXXX";
	char dir[4200];
	struct machine m = {0, 0};
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct raft_runtime *rt;
	struct raft_proposal_id id = {1, 1, 2};
	uint8_t bad = UNKNOWN_OP, result[8];
	size_t size = 0;
	uint64_t before;

	(void)state;
	assert_non_null(st);
	assert_non_null(mkdtemp(tmp));
	snprintf(dir, sizeof(dir), "%s/log", tmp);
	rt = start(dir, &m);
	propose_one(rt, 1);
	before = atomic_load(&m.last);
	/* Committed (a single member), then its apply fails: the waiter
	 * gets no result, the node stops. */
	assert_int_not_equal(raft_runtime_propose(rt, &id, &bad, 1, 2000,
						  result, sizeof(result),
						  &size),
			     0);
	for (int i = 0; i < 100; i++) {
		raft_runtime_status_get(rt, st);
		if (st->failed != 0)
			break;
		usleep(20 * 1000);
	}
	assert_int_equal(st->failed, -EPROTONOSUPPORT);
	assert_non_null(strstr(st->error, "cannot decode"));
	assert_non_null(strstr(st->error, "rather than skipping it"));
	/* Nothing after it was applied. */
	assert_int_equal(st->applied_index, before);
	assert_int_equal(atomic_load(&m.last), before);
	raft_runtime_destroy(rt);
	free(st);
	harness_remove_tree(tmp);
}

TEST_MAIN(cmocka_unit_test(test_undecodable_entry_stops_the_node))
