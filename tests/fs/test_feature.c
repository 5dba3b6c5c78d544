/* The cluster feature level (docs/FS_STORE.md, "Feature level"): the op
 * table, the propose-time gate, FEATURE applied, and a committed command
 * this build cannot decode stopping the state machine (never skipped). */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "raft/raft.h"
#include "tests/fs/fs_test.h"

struct fixture {
	char *dir;
	struct fs_store *s;
	struct fst_proposer p;
	uint64_t index;
};

static const struct fs_time CLOCK = {1700000000, 0};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = fst_tmpdir("feature");
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	f->p = (struct fst_proposer){1, 1, 0, 0};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	fs_store_close(f->s);
	fst_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static uint8_t *feature_cmd(struct fixture *f, uint32_t level, size_t *len)
{
	struct fs_cmd c;

	fst_cmd(&c, FS_OP_FEATURE, &f->p, CLOCK);
	c.flags = level;
	return fst_encode(&c, len);
}

static int apply(struct fixture *f, const uint8_t *buf, size_t len,
		 struct fs_result *res)
{
	int rc = fs_store_apply(f->s, f->index + 1, buf, len, res);

	if (rc == 0)
		f->index++;
	return rc;
}

static void format(struct fixture *f)
{
	struct fs_cmd c;
	struct fs_result res;
	uint8_t *buf;
	size_t len;

	fst_cmd(&c, FS_OP_INIT, &f->p, CLOCK);
	memcpy(c.fs_id, "raftfs-test-fsid", 16);
	c.block_size = 4096;
	c.capacity_bytes = 1ull << 30;
	c.max_inodes = 1000;
	c.name_max = 255;
	c.mode = 0755;
	buf = fst_encode(&c, &len);
	assert_int_equal(apply(f, buf, len, &res), 0);
	assert_int_equal(res.err, 0);
	free(buf);
}

static void test_table_covers_every_op_once(void **state)
{
	(void)state;
	/* Every op up to APPEND existed before the gate: level 1. */
	for (uint8_t op = FS_OP_INIT; op <= FS_OP_APPEND; op++)
		assert_int_equal(fs_op_feature_level(op), 1);
	assert_int_equal(fs_op_feature_level(FS_OP_FEATURE), 2);
	assert_int_equal(fs_op_feature_level(0), 0);
	assert_int_equal(fs_op_feature_level(99), 0);
	assert_int_equal(fs_op_feature_level(255), 0);
	/* No op needs more than this build supports. */
	for (unsigned op = 0; op < 256; op++)
		assert_true(fs_op_feature_level((uint8_t)op) <=
			    FS_FEATURE_LEVEL);
}

static void test_gate_refuses_newer_ops_and_bad_levels(void **state)
{
	struct fixture *f = *state;
	struct fs_cmd c;
	uint8_t *buf;
	size_t len;

	fst_cmd(&c, FS_OP_RELEASE_ALL, &f->p, CLOCK);
	buf = fst_encode(&c, &len);
	assert_int_equal(fs_cmd_feature_check(buf, len, 1), 0);
	assert_true(fs_cmd_known(buf, len));
	/* Another op number this build does not know. */
	buf[1] = 99;
	assert_false(fs_cmd_known(buf, len));
	assert_int_equal(fs_cmd_feature_check(buf, len, FS_FEATURE_LEVEL),
			 -EBADMSG);
	/* Another command version. */
	buf[1] = FS_OP_RELEASE_ALL;
	buf[0] = 2;
	assert_false(fs_cmd_known(buf, len));
	assert_int_equal(fs_cmd_feature_check(buf, len, 1), -EBADMSG);
	free(buf);

	/* FEATURE is judged by the level it sets. */
	buf = feature_cmd(f, 2, &len);
	assert_int_equal(fs_cmd_feature_check(buf, len, 1), 0);
	assert_int_equal(fs_cmd_feature_check(buf, len, 2), -EOPNOTSUPP);
	free(buf);
	buf = feature_cmd(f, FS_FEATURE_LEVEL + 1, &len);
	assert_int_equal(fs_cmd_feature_check(buf, len, 1), -EOPNOTSUPP);
	free(buf);
	/* Level 1 is where every cluster starts: never a FEATURE. */
	fst_cmd(&c, FS_OP_FEATURE, &f->p, CLOCK);
	c.flags = 1;
	assert_int_equal(fs_cmd_encoded_size(&c), 0);
}

static void test_feature_raises_once_and_persists(void **state)
{
	struct fixture *f = *state;
	struct fs_result res;
	uint8_t *buf;
	size_t len;

	assert_int_equal(fs_store_feature_level(f->s), 1);
	format(f);
	assert_int_equal(fs_store_feature_level(f->s), 1);
	buf = feature_cmd(f, 2, &len);
	assert_int_equal(apply(f, buf, len, &res), 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(fs_store_feature_level(f->s), 2);
	free(buf);
	/* Raised already: the command fails and changes nothing. */
	buf = feature_cmd(f, 2, &len);
	assert_int_equal(apply(f, buf, len, &res), 0);
	assert_int_equal(res.err, EALREADY);
	free(buf);
	/* The level is in the superblock: it survives a reopen. */
	assert_int_equal(fs_store_sync(f->s), 0);
	fs_store_close(f->s);
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	assert_int_equal(fs_store_feature_level(f->s), 2);
	assert_int_equal(fs_store_applied_index(f->s), f->index);
}

static void test_level_above_the_build_stops_apply(void **state)
{
	struct fixture *f = *state;
	struct fs_result res;
	struct fs_cmd c;
	uint8_t *buf;
	size_t len;

	format(f);
	/* Encoded as a newer build would (the codec accepts any level
	 * above 1); this build cannot run it: a store error, not a
	 * skipped command, and nothing moves. */
	fst_cmd(&c, FS_OP_FEATURE, &f->p, CLOCK);
	c.flags = FS_FEATURE_LEVEL + 1;
	buf = fst_encode(&c, &len);
	assert_int_equal(apply(f, buf, len, &res), -EPROTONOSUPPORT);
	assert_int_equal(fs_store_applied_index(f->s), f->index);
	assert_int_equal(fs_store_feature_level(f->s), 1);
	free(buf);
}

/* The Raft state machine (fs/raft_proposer.c) stops on a committed entry
 * of an unknown op or version: -EPROTONOSUPPORT, the applied index stays
 * before it (the runtime stops the node with a one-line error). */
static void test_state_machine_stops_on_unknown_command(void **state)
{
	struct fixture *f = *state;
	struct fs_raft *fr;
	struct raft_fsm fsm;
	struct raft_proposal_id id;
	uint8_t result[RAFT_RUNTIME_MAX_RESULT_BYTES];
	size_t rsize = 0;
	struct fs_cmd c;
	struct raft_entry e;
	uint8_t *buf;
	size_t len;

	format(f);
	assert_int_equal(fs_raft_create(f->s, 1, 1, 1000, &fr), 0);
	fs_raft_fsm(fr, &fsm);
	fst_cmd(&c, FS_OP_RELEASE_ALL, &f->p, CLOCK);
	buf = fst_encode(&c, &len);
	buf[1] = 99; /* an op of a newer build */
	e = (struct raft_entry){1, f->index + 1, RAFT_ENTRY_NORMAL,
				(uint32_t)len, buf};
	memset(&id, 0, sizeof(id));
	assert_int_equal(fsm.apply(fsm.ctx, &e, &id, result, &rsize),
			 -EPROTONOSUPPORT);
	assert_int_equal(fs_store_applied_index(f->s), f->index);
	buf[1] = FS_OP_RELEASE_ALL;
	buf[0] = 7; /* a newer command version */
	assert_int_equal(fsm.apply(fsm.ctx, &e, &id, result, &rsize),
			 -EPROTONOSUPPORT);
	assert_int_equal(fs_store_applied_index(f->s), f->index);
	/* The same entry as this build writes it applies. */
	buf[0] = 1;
	assert_int_equal(fsm.apply(fsm.ctx, &e, &id, result, &rsize), 0);
	assert_int_equal(fs_store_applied_index(f->s), f->index + 1);
	free(buf);
	fs_raft_destroy(fr);
}

/* A snapshot stream carries its version: another one is refused as not
 * ours (-EPROTONOSUPPORT), not as damage, and nothing is installed. */
static void test_snapshot_stream_version_refused(void **state)
{
	struct fixture *f = *state;
	struct fs_snapshot *snap;
	struct fs_install *in;
	struct fs_store *other;
	char *dir = fst_tmpdir("feature-other");
	uint8_t *buf = malloc(FS_CHUNK_MIN);
	size_t len;
	bool last;

	assert_non_null(buf);
	format(f);
	assert_int_equal(fs_snapshot_begin(f->s, 1, &snap), 0);
	assert_int_equal(fs_snapshot_next(snap, buf, FS_CHUNK_MIN, &len, &last),
			 0);
	fs_snapshot_end(snap);
	assert_true(last);
	assert_int_equal(buf[4], FS_SNAPSHOT_VERSION);
	assert_int_equal(fs_store_open(dir, &other), 0);
	buf[4] = FS_SNAPSHOT_VERSION + 1;
	assert_int_equal(fs_install_begin(other, f->index, 1, &in), 0);
	assert_int_equal(fs_install_chunk(in, buf, len), -EPROTONOSUPPORT);
	fs_install_abort(in);
	assert_false(fs_store_is_formatted(other));
	/* The same chunk with its own version installs. */
	buf[4] = FS_SNAPSHOT_VERSION;
	assert_int_equal(fs_install_begin(other, f->index, 1, &in), 0);
	assert_int_equal(fs_install_chunk(in, buf, len), 0);
	assert_int_equal(fs_install_finish(in), 0);
	assert_true(fs_store_is_formatted(other));
	fs_store_close(other);
	fst_rmrf(dir);
	free(dir);
	free(buf);
}

TEST_MAIN(cmocka_unit_test(test_table_covers_every_op_once),
	  cmocka_unit_test_setup_teardown(
		  test_gate_refuses_newer_ops_and_bad_levels, setup, teardown),
	  cmocka_unit_test_setup_teardown(test_feature_raises_once_and_persists,
					  setup, teardown),
	  cmocka_unit_test_setup_teardown(test_level_above_the_build_stops_apply,
					  setup, teardown),
	  cmocka_unit_test_setup_teardown(
		  test_state_machine_stops_on_unknown_command, setup,
		  teardown),
	  cmocka_unit_test_setup_teardown(test_snapshot_stream_version_refused,
					  setup, teardown))
