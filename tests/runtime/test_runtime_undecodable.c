/* A committed entry the state machine cannot decode (its apply answers
 * -EPROTONOSUPPORT: a newer command version or op, docs/FS_STORE.md
 * "Feature level") stops the node with an error that says so; nothing
 * after it is applied, and the entry is not skipped. */

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

#define UNKNOWN_OP 0xee

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
	/* An entry of one byte UNKNOWN_OP stands for a command of a newer
	 * build. */
	if (e->type == RAFT_ENTRY_NORMAL && e->size == 1 &&
	    ((const uint8_t *)e->data)[0] == UNKNOWN_OP)
		return -EPROTONOSUPPORT;
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

static struct raft_runtime *start(const char *dir, struct machine *m)
{
	struct raft_runtime_options o;
	struct raft_runtime *rt = NULL;
	char err[512] = "";

	raft_runtime_options_default(&o, 1);
	o.dir = dir;
	o.cluster_id = "c0ffee00c0ffee00c0ffee00c0ffee00";
	o.bootstrap = true;
	o.conf.n = 1;
	o.conf.members[0].id = 1;
	o.conf.members[0].role = RAFT_VOTER;
	snprintf(o.conf.members[0].address, RAFT_MAX_ADDRESS,
		 "127.0.0.1:7000");
	o.tick_ms = 10;
	o.raft.election_ticks = 10;
	o.raft.heartbeat_ticks = 2;
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
	nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST_MAIN(cmocka_unit_test(test_undecodable_entry_stops_the_node))
