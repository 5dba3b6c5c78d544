/*
 * Locks in the replicated state (fs/apply_lock.c): LOCK, LOCK_CANCEL and
 * UNLOCK_OWNER applied through fs_store_apply by several nodes, waiters
 * granted through the store's hook, a retried LOCK answered from the
 * duplicate table, RELEASE_ALL dropping a restarted node's locks, F_GETLK
 * through fs_lock_test, what a request would do (fs_lock_probe), leases (renewal, expiry, fencing of the revoked
 * epoch), and the lock records clean under fsck and in the state hash.
 */

#include "tests/lib/test_main.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/codec.h"
#include "fs/fs.h"
#include "fs/store.h"
#include "fs/store_kv.h"
#include "tests/fs/fs_test.h"

struct fix {
	char *dir;
	struct fs_store *s;
	uint64_t index;
	struct fst_proposer p[4];
	struct fs_time clock;
	struct fs_store_event granted[8];
	int n_granted;
	uint64_t ino;
};

static void hook(void *ctx, const struct fs_store_event *ev)
{
	struct fix *f = ctx;

	if (ev->kind == FS_EVENT_LOCK_GRANTED && f->n_granted < 8)
		f->granted[f->n_granted++] = *ev;
}

static int apply_buf(struct fix *f, const uint8_t *buf, size_t len,
		     struct fs_result *res)
{
	assert_int_equal(fs_store_apply(f->s, f->index + 1, buf, len, res), 0);
	f->index++;
	return res->err;
}

static int run(struct fix *f, struct fs_cmd *c, struct fs_result *res)
{
	struct fs_result r;
	size_t len;
	uint8_t *buf = fst_encode(c, &len);
	int err = apply_buf(f, buf, len, res ? res : &r);

	free(buf);
	return err;
}

static void cmd(struct fix *f, int node, struct fs_cmd *c, uint8_t op)
{
	f->clock.sec++;
	fst_cmd(c, op, &f->p[node], f->clock);
}

static void lock_cmd(struct fix *f, int node, struct fs_cmd *c, uint8_t kind,
		     uint8_t type, uint64_t start, uint64_t end, bool wait)
{
	cmd(f, node, c, FS_OP_LOCK);
	c->ino = f->ino;
	c->lock_kind = kind;
	c->lock_type = type;
	c->lock_start = start;
	c->lock_end = end;
	c->lock_owner = 100 + (uint64_t)node;
	c->lock_pid = 1000 + (uint32_t)node;
	c->flags = wait ? FS_LOCK_WAIT : 0;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct fs_result r;
	struct fs_cmd c;

	f->dir = fst_tmpdir("store-locks");
	for (int i = 1; i <= 3; i++)
		f->p[i] = (struct fst_proposer){(uint64_t)i, 1, 0, 1};
	f->clock.sec = 1000;
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	fs_store_set_hook(f->s, hook, f);
	cmd(f, 1, &c, FS_OP_INIT);
	c.block_size = 4096;
	c.capacity_bytes = 1 << 20;
	c.max_inodes = 100;
	c.name_max = 255;
	c.mode = 0755;
	assert_int_equal(run(f, &c, NULL), 0);
	/* Locks and leases need feature level 3 (a new cluster's leader
	 * raises it as soon as every member supports it). */
	cmd(f, 1, &c, FS_OP_FEATURE);
	c.flags = FS_FEATURE_LEVEL;
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 1, &c, FS_OP_CREATE);
	c.ino = FS_ROOT_INO;
	c.name = "db";
	c.name_len = 2;
	c.mode = S_IFREG | 0644;
	assert_int_equal(run(f, &c, &r), 0);
	f->ino = r.ino;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	fs_store_close(f->s);
	fst_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void test_lock_wait_grant_cancel(void **state)
{
	struct fix *f = *state;
	struct fs_lock_info want = {.node = 3, .owner = 1, .start = 0,
				    .end = 0, .kind = FS_LOCK_POSIX,
				    .type = FS_LOCK_READ}, got;
	struct fs_result r;
	struct fs_cmd c;
	uint8_t *buf;
	size_t len;
	uint64_t seq2;

	lock_cmd(f, 1, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 0, 99, false);
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 0);
	assert_int_equal(fs_lock_test(f->s, f->ino, &want, &got), 1);
	assert_int_equal(got.node, 1);
	assert_int_equal(got.owner, 101);
	assert_int_equal(got.pid, 1001);
	assert_int_equal(got.end, 99);
	want.start = 100;
	want.end = FS_LOCK_EOF;
	assert_int_equal(fs_lock_test(f->s, f->ino, &want, &got), 0);
	/* Node 2 in conflict: refused, then queued. */
	lock_cmd(f, 2, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 50, 60, false);
	assert_int_equal(run(f, &c, &r), EAGAIN);
	lock_cmd(f, 2, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 50, 60, true);
	seq2 = c.proposal.id.seq;
	buf = fst_encode(&c, &len);
	assert_int_equal(apply_buf(f, buf, len, &r), 0);
	assert_int_equal(r.count, 1);
	/* Retried: the stored outcome, not a second waiter. */
	assert_int_equal(apply_buf(f, buf, len, &r), 0);
	assert_int_equal(r.count, 1);
	free(buf);
	assert_int_equal(f->n_granted, 0);
	assert_int_equal(fs_lock_is_queued(f->s, f->ino, 2, 1, seq2), 1);
	assert_int_equal(fs_lock_is_queued(f->s, f->ino, 2, 1, seq2 + 1), 0);
	/* Node 1 closes: node 2 is granted, and told through the hook. */
	cmd(f, 1, &c, FS_OP_UNLOCK_OWNER);
	c.ino = f->ino;
	c.lock_kind = FS_LOCK_POSIX;
	c.lock_owner = 101;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(f->n_granted, 1);
	assert_int_equal(f->granted[0].node, 2);
	assert_int_equal(f->granted[0].epoch, 1);
	assert_int_equal(f->granted[0].seq, seq2);
	assert_int_equal(f->granted[0].ino, f->ino);
	assert_int_equal(fs_lock_is_queued(f->s, f->ino, 2, 1, seq2), 0);
	want.start = 55;
	assert_int_equal(fs_lock_test(f->s, f->ino, &want, &got), 1);
	assert_int_equal(got.node, 2);
	/* Cancelling what was granted: ENOENT. */
	cmd(f, 2, &c, FS_OP_LOCK_CANCEL);
	c.offset = seq2;
	assert_int_equal(run(f, &c, NULL), ENOENT);
	/* Node 1 waits, then withdraws. */
	lock_cmd(f, 1, &c, FS_LOCK_POSIX, FS_LOCK_READ, 0, FS_LOCK_EOF, true);
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 1);
	seq2 = c.proposal.id.seq;
	cmd(f, 1, &c, FS_OP_LOCK_CANCEL);
	c.offset = seq2;
	assert_int_equal(run(f, &c, NULL), 0);
	/* A lock of an inode that does not exist. */
	lock_cmd(f, 1, &c, FS_LOCK_FLOCK, FS_LOCK_READ, 0, FS_LOCK_EOF, false);
	c.ino = 999;
	assert_int_equal(run(f, &c, NULL), ENOENT);
}

static void test_deadlock_and_restart(void **state)
{
	struct fix *f = *state;
	struct fs_result r;
	struct fs_cmd c;

	lock_cmd(f, 1, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 0, 9, false);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 2, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 10, 19, false);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 1, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 10, 10, true);
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 1);
	/* Node 2 waiting on node 1 would close the cycle. */
	lock_cmd(f, 2, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 0, 0, true);
	assert_int_equal(run(f, &c, NULL), EDEADLK);
	/* flock is apart from POSIX locks. */
	lock_cmd(f, 3, &c, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, FS_LOCK_EOF, false);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 2, &c, FS_LOCK_FLOCK, FS_LOCK_READ, 0, FS_LOCK_EOF, true);
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 1);
	/* Node 2 restarts: its locks and its waiter go, node 1 is granted. */
	cmd(f, 2, &c, FS_OP_RELEASE_ALL);
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(f->n_granted, 1);
	assert_int_equal(f->granted[0].node, 1);
	/* Node 3 restarts: nothing of node 3 is left. */
	cmd(f, 3, &c, FS_OP_RELEASE_ALL);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 2, &c, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, FS_LOCK_EOF, false);
	assert_int_equal(run(f, &c, NULL), 0);
}

static int lease_of(void *ctx, const struct fs_lease *l)
{
	struct fs_lease *out = ctx;

	if (l->node == out->node)
		*out = *l;
	return 0;
}

/* Leases: LEASE counts renewals, LEASE_EXPIRE fences the node's epoch and
 * releases its locks (a waiter elsewhere is granted), the fenced epoch's
 * commands get EIO, a restart (new epoch) is not fenced, and an expiry of
 * an epoch older than the node's newest is refused (ESTALE). */
static void test_lease_expire_fences(void **state)
{
	struct fix *f = *state;
	struct fs_lease l = {.node = 2};
	struct fs_result r;
	struct fs_cmd c;

	cmd(f, 2, &c, FS_OP_LEASE);
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 2, &c, FS_OP_LEASE);
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_lease_each(f->s, lease_of, &l), 0);
	assert_int_equal(l.epoch, 1);
	assert_int_equal(l.renewals, 2);
	assert_int_equal(l.revoked, 0);
	lock_cmd(f, 2, &c, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, FS_LOCK_EOF, false);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 1, &c, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, FS_LOCK_EOF, true);
	assert_int_equal(run(f, &c, &r), 0);
	assert_int_equal(r.count, 1);
	/* The leader (node 3) expires node 2. */
	cmd(f, 3, &c, FS_OP_LEASE_EXPIRE);
	c.offset = 2;
	c.length = 1;
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(f->n_granted, 1);
	assert_int_equal(f->granted[0].node, 1);
	l = (struct fs_lease){.node = 2};
	assert_int_equal(fs_lease_each(f->s, lease_of, &l), 0);
	assert_int_equal(l.revoked, 1);
	/* Node 2's epoch 1 is fenced: a write, a lock, a renewal. */
	cmd(f, 2, &c, FS_OP_WRITE);
	c.ino = f->ino;
	c.data = "late";
	c.data_len = 4;
	assert_int_equal(run(f, &c, NULL), EIO);
	lock_cmd(f, 2, &c, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, FS_LOCK_EOF, false);
	assert_int_equal(run(f, &c, NULL), EIO);
	cmd(f, 2, &c, FS_OP_LEASE);
	assert_int_equal(run(f, &c, NULL), EIO);
	/* Node 2 starts again (epoch 2). */
	f->p[2] = (struct fst_proposer){2, 2, 0, 1};
	cmd(f, 2, &c, FS_OP_RELEASE_ALL);
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 2, &c, FS_OP_WRITE);
	c.ino = f->ino;
	c.data = "new";
	c.data_len = 3;
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 3, &c, FS_OP_LEASE_EXPIRE);
	c.offset = 2;
	c.length = 1;
	assert_int_equal(run(f, &c, NULL), ESTALE);
	/* Node 2 (epoch 2) holds no lock: an expiry fences nothing. */
	cmd(f, 3, &c, FS_OP_LEASE_EXPIRE);
	c.offset = 2;
	c.length = 2;
	assert_int_equal(run(f, &c, NULL), ENOENT);
	cmd(f, 2, &c, FS_OP_WRITE);
	c.ino = f->ino;
	c.data = "still";
	c.data_len = 5;
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 2, &c, FS_OP_LEASE);
	assert_int_equal(run(f, &c, NULL), 0);
}

static void problem(void *ctx, const struct fs_fsck_problem *p)
{
	(void)ctx;
	print_error("fsck: %s %s\n", p->code, p->detail);
}

static void test_fsck_snapshot_and_hash(void **state)
{
	struct fix *f = *state;
	struct fs_fsck_options o = {.problem = problem};
	struct fs_fsck_summary sum;
	uint8_t h0[FS_HASH_BYTES], h1[FS_HASH_BYTES], h2[FS_HASH_BYTES];
	struct fs_cmd c;
	char err[200];

	assert_int_equal(fs_store_hash(f->s, h0), 0);
	lock_cmd(f, 1, &c, FS_LOCK_POSIX, FS_LOCK_READ, 0, 9, false);
	assert_int_equal(run(f, &c, NULL), 0);
	lock_cmd(f, 2, &c, FS_LOCK_POSIX, FS_LOCK_WRITE, 5, 5, true);
	assert_int_equal(run(f, &c, NULL), 0);
	cmd(f, 3, &c, FS_OP_LEASE);
	assert_int_equal(run(f, &c, NULL), 0);
	assert_int_equal(fs_store_hash(f->s, h1), 0);
	assert_memory_not_equal(h0, h1, FS_HASH_BYTES);
	/* A snapshot carries the lock and lease records. */
	{
		uint8_t *buf = malloc(FS_CHUNK_MIN), h3[FS_HASH_BYTES];
		char *dir2 = fst_tmpdir("store-locks-install");
		struct fs_snapshot *snap = NULL;
		struct fs_install *in = NULL;
		struct fs_store *s2 = NULL;
		bool last = false;
		size_t len;

		assert_int_equal(fs_store_open(dir2, &s2), 0);
		assert_int_equal(fs_snapshot_begin(f->s, 1, &snap), 0);
		assert_int_equal(fs_install_begin(s2, f->index, 1, &in), 0);
		while (!last) {
			assert_int_equal(fs_snapshot_next(snap, buf, FS_CHUNK_MIN,
							  &len, &last),
					 0);
			assert_int_equal(fs_install_chunk(in, buf, len), 0);
		}
		fs_snapshot_end(snap);
		assert_int_equal(fs_install_finish(in), 0);
		assert_int_equal(fs_store_hash(s2, h3), 0);
		assert_memory_equal(h1, h3, FS_HASH_BYTES);
		fs_store_close(s2);
		fst_rmrf(dir2);
		free(dir2);
		free(buf);
	}
	fs_store_close(f->s);
	f->s = NULL;
	memset(&sum, 0, sizeof(sum));
	assert_int_equal(fs_fsck_store(f->dir, &o, &sum, err, sizeof(err)), 0);
	assert_int_equal(sum.problems, 0);
	assert_int_equal(fs_store_open(f->dir, &f->s), 0);
	assert_int_equal(fs_store_hash(f->s, h2), 0);
	assert_memory_equal(h1, h2, FS_HASH_BYTES);
}

/* fs_lock_probe of node's request (its owner 100 + node, pid 1000 +
 * node, as lock_cmd). */
static int probe(struct fix *f, int node, uint8_t kind, uint8_t type,
		 uint64_t start, uint64_t end)
{
	struct fs_lock_info want = {.node = (uint64_t)node,
				    .owner = 100 + (uint64_t)node,
				    .start = start, .end = end,
				    .pid = 1000 + (uint32_t)node,
				    .kind = kind, .type = type};

	return fs_lock_probe(f->s, f->ino, &want);
}

/* ino's lock record as stored (len 0: none); the caller frees it. */
static void *record(struct fix *f, size_t *len)
{
	struct fs_key k;
	void *v = NULL;
	int rc;

	fs_key1(&k, FS_KEY_LOCKS, f->ino);
	rc = fs_kv_get(f->s->kv, NULL, k.b, k.len, &v, len);
	if (rc == -ENOENT) {
		*len = 0;
		return NULL;
	}
	assert_int_equal(rc, 0);
	return v;
}

/* The probe's answer against what applying the same request then does:
 * NOOP and CONFLICT leave the record byte for byte, CONFLICT is refused
 * with EAGAIN, CHANGES changes it. */
static void check_probe(struct fix *f, int node, uint8_t kind, uint8_t type,
			uint64_t start, uint64_t end, int want)
{
	struct fs_cmd c;
	size_t l1, l2;
	void *r1, *r2;
	int got = probe(f, node, kind, type, start, end);
	int rc;

	assert_int_equal(got, want);
	r1 = record(f, &l1);
	lock_cmd(f, node, &c, kind, type, start, end, false);
	rc = run(f, &c, NULL);
	r2 = record(f, &l2);
	if (want == FS_LOCK_PROBE_CONFLICT)
		assert_int_equal(rc, EAGAIN);
	else if (want == FS_LOCK_PROBE_NOOP)
		assert_int_equal(rc, 0);
	else /* a refused flock conversion changes too */
		assert_true(rc == 0 || (rc == EAGAIN && kind == FS_LOCK_FLOCK));
	if (want == FS_LOCK_PROBE_CHANGES) {
		assert_true(l1 != l2 || (l1 && memcmp(r1, r2, l1) != 0));
	} else {
		assert_int_equal(l1, l2);
		if (l1)
			assert_memory_equal(r1, r2, l1);
	}
	fs_kv_free(r1);
	fs_kv_free(r2);
}

static void test_probe(void **state)
{
	struct fix *f = *state;
	const uint64_t eof = FS_LOCK_EOF;

	/* No record: an unlock is a no-op, a lock changes. */
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_UNLOCK, 0, eof,
		    FS_LOCK_PROBE_NOOP);
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_READ, 10, 19,
		    FS_LOCK_PROBE_CHANGES);
	/* Held as asked, or a sub-range of it: no-op. */
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_READ, 10, 19,
		    FS_LOCK_PROBE_NOOP);
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_READ, 12, 15,
		    FS_LOCK_PROBE_NOOP);
	/* Beyond what it holds, or another type: changes. */
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_READ, 15, 25,
		    FS_LOCK_PROBE_CHANGES);
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_WRITE, 30, 30,
		    FS_LOCK_PROBE_CHANGES);
	/* Unlock of a range it does not hold: no-op; of one it holds:
	 * changes. */
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_UNLOCK, 100, 200,
		    FS_LOCK_PROBE_NOOP);
	check_probe(f, 1, FS_LOCK_POSIX, FS_LOCK_UNLOCK, 30, 30,
		    FS_LOCK_PROBE_CHANGES);
	/* Another owner: a write over node 1's read lock conflicts, a read
	 * does not. */
	check_probe(f, 2, FS_LOCK_POSIX, FS_LOCK_WRITE, 20, 40,
		    FS_LOCK_PROBE_CONFLICT);
	check_probe(f, 2, FS_LOCK_POSIX, FS_LOCK_READ, 20, 40,
		    FS_LOCK_PROBE_CHANGES);
	check_probe(f, 2, FS_LOCK_POSIX, FS_LOCK_UNLOCK, 0, eof,
		    FS_LOCK_PROBE_CHANGES);
	/* flock: held exclusive by node 1; node 2 conflicts; node 1 asking
	 * again is a no-op; node 2 holding shared then asking exclusive is a
	 * conversion that drops its lock: changes, although refused. */
	check_probe(f, 1, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, eof,
		    FS_LOCK_PROBE_CHANGES);
	check_probe(f, 1, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, eof,
		    FS_LOCK_PROBE_NOOP);
	check_probe(f, 2, FS_LOCK_FLOCK, FS_LOCK_READ, 0, eof,
		    FS_LOCK_PROBE_CONFLICT);
	check_probe(f, 1, FS_LOCK_FLOCK, FS_LOCK_READ, 0, eof,
		    FS_LOCK_PROBE_CHANGES);
	check_probe(f, 2, FS_LOCK_FLOCK, FS_LOCK_READ, 0, eof,
		    FS_LOCK_PROBE_CHANGES);
	check_probe(f, 2, FS_LOCK_FLOCK, FS_LOCK_WRITE, 0, eof,
		    FS_LOCK_PROBE_CHANGES);
	/* ... refused, and node 2 was left without its shared lock. */
	check_probe(f, 2, FS_LOCK_FLOCK, FS_LOCK_UNLOCK, 0, eof,
		    FS_LOCK_PROBE_NOOP);
	/* Malformed: refused. */
	assert_int_equal(probe(f, 1, FS_LOCK_POSIX, FS_LOCK_READ, 9, 3),
			 -EINVAL);
}

/* fs_txn_lock_keys (the store's cache of the K keys) gives what a scan
 * of the K range gives, as a new command sees the store. */
static void check_lock_keys(struct fs_store *s)
{
	struct fs_key lo = {{FS_KEY_LOCKS}, 1}, hi = {{FS_KEY_LOCKS + 1}, 1};
	struct fs_key *a = NULL, *b = NULL, k;
	size_t na = 0, nb = 0;
	struct fs_txn t;

	assert_int_equal(fs_txn_init(&t, s), 0);
	assert_int_equal(fs_txn_keys(&t, &lo, &hi, &a, &na), 0);
	assert_int_equal(fs_txn_lock_keys(&t, &b, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(a[i].len, b[i].len);
		assert_memory_equal(a[i].b, b[i].b, a[i].len);
	}
	/* The command's own writes: a record dropped and one added. */
	if (na > 0)
		assert_int_equal(fs_txn_del(&t, &a[0]), 0);
	free(a);
	free(b);
	fs_key1(&k, FS_KEY_LOCKS, 999999);
	assert_int_equal(fs_txn_put(&t, &k, "x", 1), 0);
	assert_int_equal(fs_txn_keys(&t, &lo, &hi, &a, &na), 0);
	assert_int_equal(fs_txn_lock_keys(&t, &b, &nb), 0);
	assert_int_equal(na, nb);
	for (size_t i = 0; i < na; i++) {
		assert_int_equal(a[i].len, b[i].len);
		assert_memory_equal(a[i].b, b[i].b, a[i].len);
	}
	free(a);
	free(b);
	fs_txn_release(&t); /* never committed */
}

static uint64_t create_file(struct fix *f, const char *name)
{
	struct fs_result r;
	struct fs_cmd c;

	cmd(f, 1, &c, FS_OP_CREATE);
	c.ino = FS_ROOT_INO;
	c.name = name;
	c.name_len = (uint32_t)strlen(name);
	c.mode = S_IFREG | 0644;
	assert_int_equal(run(f, &c, &r), 0);
	return r.ino;
}

static void test_lock_keys_cache(void **state)
{
	struct fix *f = *state;
	uint64_t inos[3] = {f->ino, create_file(f, "a"), create_file(f, "b")};
	uint32_t seed = 12345;
	struct fs_cmd c;

	check_lock_keys(f->s);
	/* Records appear and go (a file's last lock released) in random
	 * order over three files and three nodes; checked after each. */
	for (int i = 0; i < 300; i++) {
		seed = seed * 1103515245u + 12345u;
		int node = 1 + (int)((seed >> 8) % 3);
		f->ino = inos[(seed >> 12) % 3];
		uint8_t type = (seed >> 16) % 3 == 0 ? FS_LOCK_UNLOCK
			       : (seed >> 18) % 2	  ? FS_LOCK_READ
							  : FS_LOCK_WRITE;
		uint64_t start = (seed >> 20) % 8;
		lock_cmd(f, node, &c, FS_LOCK_POSIX, type, start, start + 2,
			 false);
		run(f, &c, NULL); /* EAGAIN for a conflict is fine */
		check_lock_keys(f->s);
	}
	/* A file freed drops its record. */
	cmd(f, 1, &c, FS_OP_UNLINK);
	c.ino = FS_ROOT_INO;
	c.name = "a";
	c.name_len = 1;
	assert_int_equal(run(f, &c, NULL), 0);
	check_lock_keys(f->s);
	/* Another database switched in (a snapshot install) is not read
	 * from the old one's cache. */
	{
		uint8_t *buf = malloc(FS_CHUNK_MIN);
		char *dir2 = fst_tmpdir("store-locks-cache");
		struct fs_snapshot *snap = NULL;
		struct fs_install *in = NULL;
		struct fs_store *s2 = NULL;
		bool last = false;
		size_t len;

		assert_int_equal(fs_store_open(dir2, &s2), 0);
		check_lock_keys(s2); /* its cache: empty, and valid */
		assert_int_equal(fs_snapshot_begin(f->s, 1, &snap), 0);
		assert_int_equal(fs_install_begin(s2, f->index, 1, &in), 0);
		while (!last) {
			assert_int_equal(fs_snapshot_next(snap, buf, FS_CHUNK_MIN,
							  &len, &last),
					 0);
			assert_int_equal(fs_install_chunk(in, buf, len), 0);
		}
		fs_snapshot_end(snap);
		assert_int_equal(fs_install_finish(in), 0);
		check_lock_keys(s2);
		fs_store_close(s2);
		fst_rmrf(dir2);
		free(dir2);
		free(buf);
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

TEST_MAIN(T(test_lock_wait_grant_cancel), T(test_deadlock_and_restart),
	  T(test_lease_expire_fences), T(test_fsck_snapshot_and_hash),
	  T(test_probe), T(test_lock_keys_cache))
