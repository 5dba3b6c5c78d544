/*
 * Node leases in the replicated state (docs/LOCKS.md, "Leases"): the E
 * records, LEASE and LEASE_EXPIRE, the epoch a node announces (LEASE and
 * RELEASE_ALL), and the fencing check every command passes: a command of
 * a node from an epoch whose lease was revoked is refused with EIO.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/apply_io.h"

#define LEASE_BYTES 24u

static int lease_load(struct fs_apply *a, uint64_t node, struct fs_lease *l)
{
	struct fs_key k;
	struct fs_rbuf r;
	uint8_t *val = NULL;
	size_t len;
	int rc;

	memset(l, 0, sizeof(*l));
	l->node = node;
	fs_key1(&k, FS_KEY_LEASE, node);
	rc = fs_txn_get(&a->txn, &k, &val, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	r = (struct fs_rbuf){val, len, 0, false};
	l->epoch = fs_get_u64(&r);
	l->renewals = fs_get_u64(&r);
	l->revoked = fs_get_u64(&r);
	rc = fs_rbuf_done(&r) ? 0 : -EUCLEAN;
	free(val);
	return rc;
}

static int lease_store(struct fs_apply *a, const struct fs_lease *l)
{
	uint8_t buf[LEASE_BYTES];
	struct fs_wbuf w = {buf, sizeof(buf), 0, false};
	struct fs_key k;

	fs_put_u64(&w, l->epoch);
	fs_put_u64(&w, l->renewals);
	fs_put_u64(&w, l->revoked);
	fs_key1(&k, FS_KEY_LEASE, l->node);
	return fs_txn_put(&a->txn, &k, buf, w.len);
}

int fs_lease_fenced(struct fs_apply *a, bool *fenced)
{
	const struct raft_proposal_id *id = &a->c->proposal.id;
	struct fs_lease l;
	int rc = lease_load(a, id->node, &l);

	*fenced = rc == 0 && l.revoked != 0 && id->epoch <= l.revoked;
	return rc;
}

int fs_lease_announce(struct fs_apply *a, bool renew)
{
	const struct raft_proposal_id *id = &a->c->proposal.id;
	struct fs_lease l;
	int rc = lease_load(a, id->node, &l);

	if (rc != 0)
		return rc;
	if (id->epoch > l.epoch)
		l.epoch = id->epoch;
	if (renew)
		l.renewals++;
	return lease_store(a, &l);
}

int fs_apply_lease_expire(struct fs_apply *a)
{
	const struct fs_cmd *c = a->c;
	struct fs_lease l;
	int rc = lease_load(a, c->offset, &l);

	if (rc != 0)
		return rc;
	if (l.epoch > c->length)
		return ESTALE; /* it started again since */
	if (l.revoked >= c->length)
		return 0; /* revoked already */
	/* Fencing protects locks: a node that holds none (nor waits for
	 * one) keeps its lease, so a node cut off for a while works again
	 * once it reconnects. */
	rc = fs_locks_node_holds(a, c->offset);
	if (rc <= 0)
		return rc == 0 ? ENOENT : rc;
	l.revoked = c->length;
	if ((rc = lease_store(a, &l)))
		return rc;
	return fs_locks_release_node_apply(a, c->offset);
}

int fs_lease_each(struct fs_store *s,
		  int (*fn)(void *ctx, const struct fs_lease *l), void *ctx)
{
	struct fs_kv_iter *it = NULL;
	uint8_t prefix = FS_KEY_LEASE;
	int rc;

	pthread_rwlock_rdlock(&s->lock);
	rc = fs_kv_iter_new(s->kv, NULL, &it);
	for (fs_kv_iter_seek(it, &prefix, 1); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		struct fs_lease l;

		if (klen == 0 || k[0] != FS_KEY_LEASE)
			break;
		if (klen != 9 || vlen != LEASE_BYTES) {
			rc = -EIO;
			break;
		}
		l.node = fs_rd64(k + 1);
		l.epoch = fs_rd64(v);
		l.renewals = fs_rd64(v + 8);
		l.revoked = fs_rd64(v + 16);
		rc = fn(ctx, &l);
	}
	if (rc == 0 && it && fs_kv_iter_status(it) != 0)
		rc = -EIO;
	fs_kv_iter_free(it);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}
