/* raft/proposal: ids, their encoding, the duplicate-table rules and the
 * in-memory table (the fs store persists the same rules; see test_store). */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/proposal.h"

static struct raft_proposal prop(uint64_t node, uint64_t epoch, uint64_t seq,
				 uint64_t low_water)
{
	struct raft_proposal p = {{node, epoch, seq}, low_water};
	return p;
}

static void test_encode_round_trip_big_endian(void **state)
{
	struct raft_proposal p = prop(0x0102030405060708ull, 2, 0x1000, 0xff);
	struct raft_proposal q;
	uint8_t buf[RAFT_PROPOSAL_BYTES];

	(void)state;
	raft_proposal_encode(&p, buf);
	assert_int_equal(buf[0], 0x01);
	assert_int_equal(buf[7], 0x08);
	assert_int_equal(buf[15], 2);
	assert_int_equal(buf[22], 0x10);
	assert_int_equal(buf[31], 0xff);
	assert_int_equal(raft_proposal_decode(buf, sizeof(buf), &q), 0);
	assert_memory_equal(&p, &q, sizeof(p));
}

static void test_decode_rejects_bad_input(void **state)
{
	struct raft_proposal bad[] = {
		prop(0, 1, 1, 0), prop(1, 0, 1, 0), prop(1, 1, 0, 0),
		prop(1, 1, 5, 6),
	};
	struct raft_proposal good = prop(1, 1, 5, 5), q = prop(9, 9, 9, 9);
	uint8_t buf[RAFT_PROPOSAL_BYTES];

	(void)state;
	raft_proposal_encode(&good, buf);
	assert_int_equal(raft_proposal_decode(buf, sizeof(buf) - 1, &q),
			 -EINVAL);
	assert_int_equal(raft_proposal_decode(NULL, sizeof(buf), &q), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(raft_proposal_is_valid(&bad[i]));
		raft_proposal_encode(&bad[i], buf);
		assert_int_equal(raft_proposal_decode(buf, sizeof(buf), &q),
				 -EINVAL);
	}
	/* A failed decode leaves the output alone. */
	assert_int_equal(q.id.node, 9);
}

static void test_judge_verdicts(void **state)
{
	struct raft_dedup_state zero = {0, 0}, st = {3, 10};
	struct raft_proposal p;

	(void)state;
	p = prop(1, 1, 1, 0);
	assert_int_equal(raft_dedup_judge(&zero, &p, false), RAFT_DEDUP_NEW);
	p = prop(1, 2, 20, 10);
	assert_int_equal(raft_dedup_judge(&st, &p, false),
			 RAFT_DEDUP_OLD_EPOCH);
	p = prop(1, 3, 9, 9);
	assert_int_equal(raft_dedup_judge(&st, &p, true), RAFT_DEDUP_EXPIRED);
	p = prop(1, 3, 10, 10);
	assert_int_equal(raft_dedup_judge(&st, &p, true),
			 RAFT_DEDUP_DUPLICATE);
	assert_int_equal(raft_dedup_judge(&st, &p, false), RAFT_DEDUP_NEW);
	/* A newer epoch is new even if a result of the old one is stored. */
	p = prop(1, 4, 10, 1);
	assert_int_equal(raft_dedup_judge(&st, &p, true), RAFT_DEDUP_NEW);
	assert_string_equal(raft_dedup_verdict_name(RAFT_DEDUP_EXPIRED),
			    "expired");
}

static void test_advance_evicts_and_never_moves_back(void **state)
{
	struct raft_dedup_state st = {3, 10}, next;
	struct raft_dedup_eviction ev;
	struct raft_proposal p;

	(void)state;
	p = prop(1, 3, 20, 15);
	raft_dedup_advance(&st, &p, &next, &ev);
	assert_int_equal(next.epoch, 3);
	assert_int_equal(next.low_water, 15);
	assert_false(ev.all);
	assert_true(raft_dedup_evicts(&ev, 10));
	assert_true(raft_dedup_evicts(&ev, 14));
	assert_false(raft_dedup_evicts(&ev, 15));
	assert_false(raft_dedup_evicts(&ev, 9));

	/* Out of send order: an older low-water mark changes nothing. */
	st = next;
	p = prop(1, 3, 18, 12);
	raft_dedup_advance(&st, &p, &next, &ev);
	assert_int_equal(next.low_water, 15);
	assert_false(raft_dedup_evicts(&ev, 12));

	/* A new epoch evicts everything. */
	p = prop(1, 4, 1, 1);
	raft_dedup_advance(&st, &p, &next, &ev);
	assert_int_equal(next.epoch, 4);
	assert_int_equal(next.low_water, 1);
	assert_true(ev.all);

	/* An old epoch changes nothing. */
	p = prop(1, 2, 100, 100);
	raft_dedup_advance(&st, &p, &next, &ev);
	assert_memory_equal(&next, &st, sizeof(st));
	assert_false(raft_dedup_evicts(&ev, 12));
}

/* Feed p to the table as a state machine would; returns the verdict. */
static enum raft_dedup_verdict feed(struct raft_dedup_table *t,
				    struct raft_proposal p, const char *result)
{
	enum raft_dedup_verdict v = raft_dedup_table_check(t, &p, NULL, NULL);

	assert_int_equal(raft_dedup_table_record(t, &p, v, result,
						 strlen(result) + 1),
			 0);
	return v;
}

static void test_table_duplicates_return_original_result(void **state)
{
	struct raft_dedup_table *t = NULL;
	const void *res;
	size_t size;
	struct raft_proposal p = prop(7, 1, 1, 1);

	(void)state;
	assert_int_equal(raft_dedup_table_create(NULL, &t), 0);
	assert_int_equal(feed(t, p, "first"), RAFT_DEDUP_NEW);
	assert_int_equal(raft_dedup_table_check(t, &p, &res, &size),
			 RAFT_DEDUP_DUPLICATE);
	assert_int_equal(size, 6);
	assert_string_equal(res, "first");
	assert_int_equal(feed(t, p, "second"), RAFT_DEDUP_DUPLICATE);
	assert_int_equal(raft_dedup_table_check(t, &p, &res, &size),
			 RAFT_DEDUP_DUPLICATE);
	assert_string_equal(res, "first");
	assert_int_equal(raft_dedup_table_count(t), 1);

	/* seq 2 carries low water 2: seq 1 is evicted and expires. */
	assert_int_equal(feed(t, prop(7, 1, 2, 2), "two"), RAFT_DEDUP_NEW);
	assert_int_equal(raft_dedup_table_count(t), 1);
	assert_int_equal(feed(t, p, "again"), RAFT_DEDUP_EXPIRED);
	/* A reboot of node 7: old-epoch commands are not applied. */
	assert_int_equal(feed(t, prop(7, 2, 1, 1), "e2"), RAFT_DEDUP_NEW);
	assert_int_equal(feed(t, prop(7, 1, 3, 2), "late"),
			 RAFT_DEDUP_OLD_EPOCH);
	assert_int_equal(raft_dedup_table_count(t), 1);
	raft_dedup_table_destroy(t);
}

struct walk {
	char text[256];
};

static int walk_fn(void *ctx, uint64_t node, uint64_t epoch, uint64_t seq,
		   const void *result, size_t result_size)
{
	struct walk *w = ctx;
	size_t len = strlen(w->text);

	(void)result_size;
	snprintf(w->text + len, sizeof(w->text) - len, "%llu/%llu/%llu=%s ",
		 (unsigned long long)node, (unsigned long long)epoch,
		 (unsigned long long)seq, (const char *)result);
	return 0;
}

static void test_table_iterates_in_node_seq_order(void **state)
{
	struct raft_dedup_table *a = NULL, *b = NULL;
	struct walk wa = {""}, wb = {""};
	struct raft_proposal ps[] = {prop(3, 1, 2, 1), prop(1, 1, 5, 1),
				     prop(3, 1, 1, 1), prop(2, 1, 1, 1),
				     prop(1, 1, 4, 1)};
	size_t n = sizeof(ps) / sizeof(ps[0]);
	char r[24];

	(void)state;
	assert_int_equal(raft_dedup_table_create(NULL, &a), 0);
	assert_int_equal(raft_dedup_table_create(NULL, &b), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(r, sizeof(r), "r%zu", i);
		feed(a, ps[i], r);
	}
	for (size_t i = n; i-- > 0;) {
		snprintf(r, sizeof(r), "r%zu", i);
		feed(b, ps[i], r);
	}
	raft_dedup_table_foreach(a, walk_fn, &wa);
	raft_dedup_table_foreach(b, walk_fn, &wb);
	assert_string_equal(wa.text, "1/1/4=r4 1/1/5=r1 2/1/1=r3 3/1/1=r2 "
				     "3/1/2=r0 ");
	assert_string_equal(wa.text, wb.text);
	raft_dedup_table_destroy(a);
	raft_dedup_table_destroy(b);
}

/* An allocator that fails its Nth call. */
struct failing {
	int countdown;
};

static void *fail_malloc(void *ctx, size_t size)
{
	struct failing *f = ctx;
	return --f->countdown == 0 ? NULL : malloc(size);
}

static void *fail_realloc(void *ctx, void *ptr, size_t size)
{
	struct failing *f = ctx;
	return --f->countdown == 0 ? NULL : realloc(ptr, size);
}

static void fail_free(void *ctx, void *ptr)
{
	(void)ctx;
	free(ptr);
}

static void test_table_out_of_memory_changes_nothing(void **state)
{
	(void)state;
	for (int nth = 2; nth <= 6; nth++) {
		struct failing f = {nth};
		struct raft_alloc alloc = {fail_malloc, fail_realloc,
					   fail_free, &f};
		struct raft_dedup_table *t = NULL;
		struct raft_dedup_state st;
		struct raft_proposal p;
		int failures = 0;

		assert_int_equal(raft_dedup_table_create(&alloc, &t), 0);
		for (uint64_t seq = 1; seq <= 4; seq++) {
			size_t before = raft_dedup_table_count(t);
			bool known = raft_dedup_table_state(t, seq, &st);
			int rc;

			p = prop(seq, 1, seq, 1);
			rc = raft_dedup_table_record(t, &p, RAFT_DEDUP_NEW,
						     "x", 2);
			if (rc == 0)
				continue;
			assert_int_equal(rc, -ENOMEM);
			failures++;
			assert_int_equal(raft_dedup_table_count(t), before);
			assert_int_equal(raft_dedup_table_state(t, seq, &st),
					 known);
		}
		assert_int_equal(failures, 1);
		raft_dedup_table_destroy(t);
	}
}

TEST_MAIN(cmocka_unit_test(test_encode_round_trip_big_endian),
	  cmocka_unit_test(test_decode_rejects_bad_input),
	  cmocka_unit_test(test_judge_verdicts),
	  cmocka_unit_test(test_advance_evicts_and_never_moves_back),
	  cmocka_unit_test(test_table_duplicates_return_original_result),
	  cmocka_unit_test(test_table_iterates_in_node_seq_order),
	  cmocka_unit_test(test_table_out_of_memory_changes_nothing))
