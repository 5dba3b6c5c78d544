/*
 * Snapshots: a consistent view of the store streamed as bounded chunks, and
 * their install into a fresh store beside the current one.
 *
 * Chunk: magic u32 "RFSC", version u8 (FS_SNAPSHOT_VERSION), index u64, term u64, offset u64 (of the
 * payload in the stream), payload length u32, flags u8 (1: last), records
 * u64 (last chunk: records in the stream; else 0), crc u32 (CRC-32C of the
 * stream's payload bytes up to the end of this chunk), then the payload:
 * records, each u32 key length, key, u32 value length, value, in key order;
 * a record never spans chunks.
 */

#include "fs/sha256.h"
#include "fs/store.h"
#include "raft/raft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MAGIC 0x52465343u /* "RFSC" */
#define CHUNK_HEADER_BYTES (4 + 1 + 8 + 8 + 8 + 4 + 1 + 8 + 4)
#define RECORD_VALUE_MAX (FS_BLOCK_SIZE_MAX + 16u)

struct fs_snapshot {
	struct fs_store *s;
	struct fs_kv_view *view;
	struct fs_kv_iter *it;
	uint64_t index;
	uint64_t term;
	uint64_t offset;
	uint64_t records;
	uint32_t crc;
	bool done;
};

int fs_snapshot_begin(struct fs_store *s, uint64_t term,
		      struct fs_snapshot **out)
{
	struct fs_snapshot *snap = calloc(1, sizeof(*snap));
	int rc;

	if (snap == NULL)
		return -ENOMEM;
	snap->s = s;
	snap->term = term;
	pthread_rwlock_rdlock(&s->lock);
	snap->index = s->sb.applied_index;
	rc = fs_kv_view_new(s->kv, &snap->view);
	if (rc == 0)
		rc = fs_kv_iter_new(s->kv, snap->view, &snap->it);
	pthread_rwlock_unlock(&s->lock);
	if (rc != 0) {
		fs_snapshot_end(snap);
		return rc;
	}
	fs_kv_iter_first(snap->it);
	*out = snap;
	return 0;
}

uint64_t fs_snapshot_index(const struct fs_snapshot *snap)
{
	return snap->index;
}

void fs_snapshot_end(struct fs_snapshot *snap)
{
	if (snap == NULL)
		return;
	fs_kv_iter_free(snap->it);
	if (snap->view != NULL)
		fs_kv_view_free(snap->s->kv, snap->view);
	free(snap);
}

int fs_snapshot_next(struct fs_snapshot *snap, uint8_t *buf, size_t size,
		     size_t *len, bool *last)
{
	struct fs_wbuf w = {buf, size, CHUNK_HEADER_BYTES, false};
	size_t payload_len;
	int rc;

	if (size < FS_CHUNK_MIN || snap->done)
		return -EINVAL;
	while (fs_kv_iter_valid(snap->it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(snap->it, &klen);
		const uint8_t *v = fs_kv_iter_value(snap->it, &vlen);
		if (klen > FS_KEY_MAX || vlen > RECORD_VALUE_MAX)
			return -EIO;
		if (w.len + 8 + klen + vlen > size)
			break;
		fs_put_u32(&w, (uint32_t)klen);
		fs_put_bytes(&w, k, klen);
		fs_put_u32(&w, (uint32_t)vlen);
		fs_put_bytes(&w, v, vlen);
		snap->records++;
		fs_kv_iter_next(snap->it);
	}
	rc = fs_kv_iter_status(snap->it);
	if (rc != 0)
		return rc;
	payload_len = w.len - CHUNK_HEADER_BYTES;
	snap->done = !fs_kv_iter_valid(snap->it);
	snap->crc = raft_crc32c(snap->crc, buf + CHUNK_HEADER_BYTES, payload_len);
	w.len = 0;
	fs_put_u32(&w, CHUNK_MAGIC);
	fs_put_u8(&w, FS_SNAPSHOT_VERSION);
	fs_put_u64(&w, snap->index);
	fs_put_u64(&w, snap->term);
	fs_put_u64(&w, snap->offset);
	fs_put_u32(&w, (uint32_t)payload_len);
	fs_put_u8(&w, snap->done ? 1 : 0);
	fs_put_u64(&w, snap->done ? snap->records : 0);
	fs_put_u32(&w, snap->crc);
	snap->offset += payload_len;
	*len = CHUNK_HEADER_BYTES + payload_len;
	*last = snap->done;
	return 0;
}

/* ---------------------------------------------------------------------- */

struct fs_install {
	struct fs_store *s;
	uint64_t gen;
	uint64_t index;
	uint64_t term;
	struct fs_kv *kv;
	struct fs_kv_batch *batch;
	uint64_t offset;
	uint64_t records;
	uint32_t crc;
	struct fs_key last_key; /* keys must come in increasing order */
	bool have_key;
	bool done;
	bool failed;
	bool forget_proposers; /* P and R records counted, not written */
};

void fs_install_forget_proposers(struct fs_install *in)
{
	in->forget_proposers = true;
}

bool fs_install_complete(const struct fs_install *in)
{
	return in->done;
}

int fs_install_begin(struct fs_store *s, uint64_t index, uint64_t term,
		     struct fs_install **out)
{
	struct fs_install *in = calloc(1, sizeof(*in));
	char path[4096];
	int rc;

	if (in == NULL)
		return -ENOMEM;
	in->s = s;
	in->gen = s->gen + 1;
	in->index = index;
	in->term = term;
	rc = fs_store_db_path(s, in->gen, path, sizeof(path));
	if (rc == 0)
		rc = fs_kv_destroy(path);
	/* The marker first: a crash from here on is an unfinished install
	 * that the next open cleans up and reports. */
	if (rc == 0)
		rc = fs_store_mark_install(s, in->gen, index, term);
	if (rc == 0)
		rc = fs_kv_open(path, true, &in->kv);
	if (rc == 0)
		rc = fs_kv_batch_new(&in->batch);
	if (rc != 0) {
		fs_install_abort(in);
		return rc;
	}
	*out = in;
	return 0;
}

static bool prefix_known(uint8_t p)
{
	switch (p) {
	case FS_KEY_SUPER:
	case FS_KEY_INODE:
	case FS_KEY_DENTRY:
	case FS_KEY_COOKIE:
	case FS_KEY_BLOCK:
	case FS_KEY_SYMLINK:
	case FS_KEY_XATTR:
	case FS_KEY_LOCKS:
	case FS_KEY_LEASE:
	case FS_KEY_ORPHAN:
	case FS_KEY_DEDUP:
	case FS_KEY_RESULT:
	case FS_KEY_MEMBERS:
		return true;
	}
	return false;
}

static int install_chunk(struct fs_install *in, const uint8_t *chunk,
			 size_t len)
{
	struct fs_rbuf r = {chunk, len, 0, false};
	uint64_t index, term, offset, records;
	uint32_t payload_len, crc;
	uint8_t flags;
	const uint8_t *payload;

	if (in->done)
		return -EBADMSG;
	if (fs_get_u32(&r) != CHUNK_MAGIC)
		return -EBADMSG;
	/* A stream of another version: not damaged, just not ours. */
	if (fs_get_u8(&r) != FS_SNAPSHOT_VERSION)
		return r.bad ? -EBADMSG : -EPROTONOSUPPORT;
	index = fs_get_u64(&r);
	term = fs_get_u64(&r);
	offset = fs_get_u64(&r);
	payload_len = fs_get_u32(&r);
	flags = fs_get_u8(&r);
	records = fs_get_u64(&r);
	crc = fs_get_u32(&r);
	payload = fs_get_bytes(&r, payload_len);
	if (!fs_rbuf_done(&r) || index != in->index || term != in->term ||
	    offset != in->offset || flags > 1)
		return -EBADMSG;
	in->crc = raft_crc32c(in->crc, payload, payload_len);
	if (crc != in->crc)
		return -EBADMSG;
	r = (struct fs_rbuf){payload, payload_len, 0, false};
	fs_kv_batch_clear(in->batch);
	while (r.off < r.len) {
		struct fs_key k;
		uint32_t vlen;
		const uint8_t *kb, *v;

		k.len = fs_get_u32(&r);
		if (k.len == 0 || k.len > FS_KEY_MAX)
			return -EBADMSG;
		kb = fs_get_bytes(&r, k.len);
		vlen = fs_get_u32(&r);
		if (vlen > RECORD_VALUE_MAX)
			return -EBADMSG;
		v = fs_get_bytes(&r, vlen);
		if (r.bad || !prefix_known(kb[0]))
			return -EBADMSG;
		memcpy(k.b, kb, k.len);
		if (in->have_key && fs_key_cmp(&k, &in->last_key) <= 0)
			return -EBADMSG;
		in->last_key = k;
		in->have_key = true;
		if (!in->forget_proposers ||
		    (kb[0] != FS_KEY_DEDUP && kb[0] != FS_KEY_RESULT))
			fs_kv_batch_put(in->batch, k.b, k.len, v, vlen);
		in->records++;
	}
	if (flags == 1) {
		if (records != in->records)
			return -EBADMSG;
		in->done = true;
	} else if (records != 0) {
		return -EBADMSG;
	}
	in->offset += payload_len;
	return fs_kv_write(in->kv, in->batch, false);
}

int fs_install_chunk(struct fs_install *in, const uint8_t *chunk, size_t len)
{
	int rc;

	if (in->failed)
		return -EBADMSG;
	rc = install_chunk(in, chunk, len);
	if (rc != 0)
		in->failed = true;
	return rc;
}

int fs_install_finish(struct fs_install *in)
{
	struct fs_key k = {{FS_KEY_SUPER}, 1};
	struct fs_store_event ev = {.kind = FS_EVENT_INSTALLED};
	struct fs_store *s;
	struct fs_super sb;
	void *val = NULL;
	size_t len;
	int rc;

	if (in->failed || !in->done)
		return -EBADMSG;
	rc = fs_kv_get(in->kv, NULL, k.b, k.len, &val, &len);
	if (rc == 0)
		rc = fs_super_decode(val, len, &sb);
	fs_kv_free(val);
	if (rc != 0 || sb.applied_index != in->index) {
		in->failed = true;
		return -EBADMSG;
	}
	ev.index = in->index;
	/* Durable before it becomes the store: a synced write flushes
	 * LevelDB's log; its tables are synced when written. */
	fs_kv_batch_clear(in->batch);
	rc = fs_kv_write(in->kv, in->batch, true);
	if (rc != 0)
		return rc;
	rc = fs_store_switch(in->s, in->gen, in->kv);
	if (rc != 0)
		return rc;
	in->kv = NULL; /* the store's now */
	s = in->s;
	fs_kv_batch_free(in->batch);
	free(in);
	/* The snapshot may hold orphans this node never saw lose their last
	 * link: the front end releases those it has not open. */
	pthread_mutex_lock(&s->hook_lock);
	if (s->hook != NULL)
		s->hook(s->hook_ctx, &ev);
	pthread_mutex_unlock(&s->hook_lock);
	return 0;
}

void fs_install_abort(struct fs_install *in)
{
	char path[4096];

	if (in == NULL)
		return;
	fs_kv_batch_free(in->batch);
	fs_kv_close(in->kv);
	if (fs_store_db_path(in->s, in->gen, path, sizeof(path)) == 0)
		fs_kv_destroy(path);
	fs_store_unmark_install(in->s);
	free(in);
}
