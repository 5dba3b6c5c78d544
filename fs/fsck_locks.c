/* fsck: the lock and lease records (fs/fsck_locks.h). */

#include "fs/fsck_locks.h"

#include <errno.h>
#include <stdio.h>

#include "fs/codec.h"
#include "fs/locks.h"

int fs_fsck_locks(struct fs_kv *kv, const struct fs_kv_view *view,
		  void (*report)(void *ctx, uint64_t ino, const char *detail),
		  void *ctx, char *err, size_t err_size)
{
	struct fs_kv_iter *it = NULL;
	struct fs_locks *t = NULL;
	uint8_t prefix = FS_KEY_LOCKS;
	char why[200];
	int rc;

	if ((rc = fs_locks_create(&t)))
		goto out;
	if ((rc = fs_kv_iter_new(kv, view, &it)))
		goto out;
	for (fs_kv_iter_seek(it, &prefix, 1); fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);
		const uint8_t *v = fs_kv_iter_value(it, &vlen);
		struct fs_key ik;
		void *inode = NULL;
		size_t ilen;
		uint64_t ino;
		int drc;

		if (klen == 0 || k[0] != FS_KEY_LOCKS)
			break;
		if (klen != 9) {
			report(ctx, 0, "malformed lock record key");
			continue;
		}
		ino = fs_rd64(k + 1);
		fs_key1(&ik, FS_KEY_INODE, ino);
		drc = fs_kv_get(kv, view, ik.b, ik.len, &inode, &ilen);
		fs_kv_free(inode);
		if (drc == -ENOENT)
			report(ctx, ino, "locks of an inode that does not exist");
		else if (drc != 0) {
			rc = -EIO;
			break;
		}
		drc = fs_locks_decode_ino(t, ino, v, vlen);
		if (drc == -ENOMEM) {
			rc = drc;
			break;
		}
		if (drc != 0)
			report(ctx, ino,
			       "malformed lock record, or its locks conflict");
	}
	if (rc == 0 && fs_kv_iter_status(it) != 0)
		rc = -EIO;
	if (rc == 0 && fs_locks_check(t, why, sizeof(why)) != 0)
		report(ctx, 0, why);
	/* The lease records: E node -> epoch, renewals, revoked (u64 each). */
	prefix = FS_KEY_LEASE;
	for (fs_kv_iter_seek(it, &prefix, 1); rc == 0 && fs_kv_iter_valid(it);
	     fs_kv_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = fs_kv_iter_key(it, &klen);

		if (klen == 0 || k[0] != FS_KEY_LEASE)
			break;
		fs_kv_iter_value(it, &vlen);
		if (klen != 9 || fs_rd64(k + 1) == 0 || vlen != 24)
			report(ctx, 0, "malformed lease record");
	}
	if (rc == 0 && fs_kv_iter_status(it) != 0)
		rc = -EIO;
out:
	if (rc == -EIO)
		snprintf(err, err_size, "cannot read the lock records");
	else if (rc != 0)
		snprintf(err, err_size, "out of memory checking the locks");
	fs_kv_iter_free(it);
	fs_locks_destroy(t);
	return rc;
}
