#ifndef FS_FSCK_LOCKS_H
#define FS_FSCK_LOCKS_H

/*
 * fsck's check of the lock records (K ino, docs/FSCK.md): each decodes,
 * is canonical, names an existing inode, and the whole table keeps the
 * lock table's invariants (fs_locks_check); each lease record (E node)
 * is well formed. Private to fs/.
 */

#include <stddef.h>
#include <stdint.h>

#include "fs/store_kv.h"

/* report(ctx, ino, detail) for each problem. Returns 0 when the check ran
 * (problems or not), -EIO (unreadable store) or -ENOMEM, with err. */
int fs_fsck_locks(struct fs_kv *kv, const struct fs_kv_view *view,
		  void (*report)(void *ctx, uint64_t ino, const char *detail),
		  void *ctx, char *err, size_t err_size);

#endif
