/*
 * Open-but-unlinked files across nodes (docs/FUSE.md, docs/FS_STORE.md):
 * who holds an orphan, and releasing a node from every orphan at once.
 *
 * Any node may have a file open when another node removes its last link,
 * and no node tells the others what it has open (opening is a local read,
 * never a command). So apply makes every node a holder: the holders of a
 * regular file that loses its last link are the members of the Raft
 * configuration in force at that log index (the `M` record, written when a
 * configuration entry is applied), plus whatever the command named. All of it
 * is replicated state, so every replica computes the same set. Without a
 * configuration (the local proposer, a store made before the `M` record
 * existed) the proposer stands in for the members. Each node then releases what
 * it does not hold open: at once when it applies the command (the front end's
 * orphan hook), at its last close otherwise, everything at once when it starts
 * (RELEASE_ALL); a node that leaves the configuration is released by the apply
 * of that configuration.
 */

#include "fs/apply_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Sort ids and drop duplicates and zeros; returns the new count. */
static uint32_t sort_unique(uint64_t *ids, uint32_t n)
{
	uint32_t m = 0;

	qsort(ids, n, sizeof(ids[0]), cmp_u64);
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] != 0 && (m == 0 || ids[m - 1] != ids[i]))
			ids[m++] = ids[i];
	return m;
}

/* Decode a holder or member list (u32 count, u64 ids): -EUCLEAN when
 * malformed. */
static int ids_decode(const uint8_t *val, size_t len, uint64_t *ids,
		      uint32_t max, uint32_t *n)
{
	struct fs_rbuf r = {val, len, 0, false};
	uint32_t cnt = fs_get_u32(&r);

	if (r.bad || cnt > max)
		return -EUCLEAN;
	for (uint32_t i = 0; i < cnt; i++)
		ids[i] = fs_get_u64(&r);
	if (!fs_rbuf_done(&r))
		return -EUCLEAN;
	*n = cnt;
	return 0;
}

static size_t ids_encode(const uint64_t *ids, uint32_t n, uint8_t *buf,
			 size_t size)
{
	struct fs_wbuf w = {buf, size, 0, false};

	fs_put_u32(&w, n);
	for (uint32_t i = 0; i < n; i++)
		fs_put_u64(&w, ids[i]);
	return w.len;
}

/* The configuration's members (M), or -ENOENT when none was applied. */
static int members_load(struct fs_txn *t, uint64_t *ids, uint32_t *n)
{
	struct fs_key k = {{FS_KEY_MEMBERS}, 1};
	uint8_t *val = NULL;
	size_t len;
	int rc = fs_txn_get(t, &k, &val, &len);

	if (rc == 0)
		rc = ids_decode(val, len, ids, FS_HOLDERS_MAX, n);
	free(val);
	return rc;
}

int fs_orphan_holders_compute(struct fs_apply *a, const struct fs_inode *in,
			      uint64_t *h, uint32_t *n)
{
	const struct fs_cmd *c = a->c;
	uint64_t ids[2 * FS_HOLDERS_MAX];
	uint32_t m = 0;
	int rc = 0;

	/* Only a regular file can be open: other types keep the old rule
	 * (the holders the command named). */
	if (S_ISREG(in->mode)) {
		rc = members_load(&a->txn, ids, &m);
		if (rc == -ENOENT) {
			ids[0] = c->proposal.id.node;
			m = 1;
			rc = 0;
		}
		if (rc != 0)
			return rc;
	}
	for (uint32_t i = 0; i < c->n_holders && i < FS_HOLDERS_MAX; i++)
		ids[m++] = c->holders[i];
	m = sort_unique(ids, m);
	if (m > FS_HOLDERS_MAX)
		m = FS_HOLDERS_MAX; /* the lowest ids: the same on every replica
				     */
	memcpy(h, ids, m * sizeof(ids[0]));
	*n = m;
	return 0;
}

/* Remove every holder for which drop(ctx, id) is true from every orphan;
 * an orphan left without holders is freed. */
static int release_where(struct fs_apply *a,
			 bool (*drop)(const void *ctx, uint64_t id),
			 const void *ctx)
{
	struct fs_key lo = {{FS_KEY_ORPHAN}, 1}, hi = {{FS_KEY_ORPHAN + 1}, 1};
	struct fs_key *keys = NULL;
	size_t cnt = 0;
	int rc = fs_txn_keys(&a->txn, &lo, &hi, &keys, &cnt);

	for (size_t i = 0; rc == 0 && i < cnt; i++) {
		uint64_t h[FS_HOLDERS_MAX], ino;
		uint8_t *val = NULL, buf[4 + 8 * FS_HOLDERS_MAX];
		uint32_t n = 0, m = 0;
		struct fs_rbuf r = {keys[i].b + 1, keys[i].len - 1, 0, false};
		struct fs_inode in;
		size_t len;

		ino = fs_get_u64(&r);
		if (!fs_rbuf_done(&r)) {
			rc = -EUCLEAN;
			break;
		}
		rc = fs_txn_get(&a->txn, &keys[i], &val, &len);
		if (rc == 0)
			rc = ids_decode(val, len, h, FS_HOLDERS_MAX, &n);
		free(val);
		if (rc != 0)
			break;
		for (uint32_t j = 0; j < n; j++)
			if (!drop(ctx, h[j]))
				h[m++] = h[j];
		if (m == n)
			continue;
		if (m > 0) {
			rc = fs_txn_put(&a->txn, &keys[i], buf,
					ids_encode(h, m, buf, sizeof(buf)));
			continue;
		}
		rc = fs_inode_load(a, ino, &in);
		if (rc == ENOENT)
			rc = -EUCLEAN; /* an orphan record without its inode */
		if (rc == 0)
			rc = fs_inode_free(a, &in);
	}
	free(keys);
	return rc;
}

static bool is_node(const void *ctx, uint64_t id)
{
	return id == *(const uint64_t *)ctx;
}

int fs_orphans_release_node(struct fs_apply *a, uint64_t node)
{
	return release_where(a, is_node, &node);
}

struct member_set {
	const uint64_t *ids;
	uint32_t n;
};

static bool not_member(const void *ctx, uint64_t id)
{
	const struct member_set *ms = ctx;

	for (uint32_t i = 0; i < ms->n; i++)
		if (ms->ids[i] == id)
			return false;
	return true;
}

int fs_store_apply_config(struct fs_store *s, uint64_t index,
			  const uint64_t *members, uint32_t n)
{
	struct fs_key k = {{FS_KEY_MEMBERS}, 1};
	uint64_t ids[FS_HOLDERS_MAX];
	uint8_t buf[4 + 8 * FS_HOLDERS_MAX];
	struct member_set ms = {ids, 0};
	struct fs_apply a;
	int rc;

	if (n == 0 || n > FS_HOLDERS_MAX)
		return -EINVAL;
	memcpy(ids, members, n * sizeof(ids[0]));
	ms.n = sort_unique(ids, n);
	rc = fs_apply_begin(s, index, &a);
	if (rc != 0)
		return rc;
	rc = fs_txn_put(&a.txn, &k, buf,
			ids_encode(ids, ms.n, buf, sizeof(buf)));
	/* Nodes that left the configuration hold nothing any more. */
	if (rc == 0)
		rc = release_where(&a, not_member, &ms);
	return fs_apply_finish(s, &a, rc);
}
