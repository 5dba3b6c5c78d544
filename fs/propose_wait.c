/*
 * Commands proposed through any proposer (fs/fs.h) and waited for on the
 * caller's thread: INIT (formatting a new filesystem), CHECK (check
 * points), RELEASE_ALL (a node that starts releases the orphans it
 * held before) and the repairs of fsck --cluster --repair.
 */

#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

struct format_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
	int32_t result; /* the command's own outcome (positive errno) */
};

static void format_done(void *arg, int err, const struct fs_result *res)
{
	struct format_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->err = err;
	if (res != NULL)
		w->result = res->err;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Propose c (op and fields filled) and wait: 0, the command's own
 * error (negative), or the proposer's. */
static int propose_wait(const struct fs_proposer *p, struct fs_cmd *c)
{
	struct format_wait w = {PTHREAD_MUTEX_INITIALIZER,
				PTHREAD_COND_INITIALIZER, false, 0, 0};
	uint8_t buf[256 + FS_NAME_CODEC_MAX];
	long n;
	int rc;

	rc = p->begin(p->ctx, &c->proposal, &c->clock);
	if (rc != 0)
		return rc;
	n = fs_cmd_encode(c, buf, sizeof(buf));
	if (n < 0)
		return (int)n; /* begin's seq stays open: harmless, never sent */
	rc = p->submit(p->ctx, &c->proposal.id, buf, (size_t)n, format_done,
		       &w);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	if (w.err != 0)
		return w.err;
	return -w.result;
}

int fs_check_point(const struct fs_proposer *p, uint64_t check_id)
{
	struct fs_cmd c;

	if (check_id == 0)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.op = FS_OP_CHECK;
	c.offset = check_id;
	return propose_wait(p, &c);
}

int fs_raise_feature_level(const struct fs_proposer *p, uint32_t level)
{
	struct fs_cmd c;

	memset(&c, 0, sizeof(c));
	c.op = FS_OP_FEATURE;
	c.flags = level;
	return propose_wait(p, &c);
}

int fs_format(const struct fs_proposer *p, const struct fs_format_options *o)
{
	struct fs_cmd c;

	memset(&c, 0, sizeof(c));
	c.op = FS_OP_INIT;
	memcpy(c.fs_id, o->fs_id, sizeof(c.fs_id));
	c.block_size = o->block_size ? o->block_size : FS_BLOCK_SIZE_DEFAULT;
	c.capacity_bytes = o->capacity_bytes;
	c.max_inodes = o->max_inodes;
	c.name_max = o->name_max ? o->name_max : FS_NAME_MAX;
	c.mode = o->mode & 07777;
	c.uid = o->uid;
	c.gid = o->gid;
	return propose_wait(p, &c);
}

int fs_release_all(const struct fs_proposer *p)
{
	struct fs_cmd c;

	memset(&c, 0, sizeof(c));
	c.op = FS_OP_RELEASE_ALL;
	return propose_wait(p, &c);
}

int fs_fix_phase(const struct fs_fsck_fix *f)
{
	switch (f->kind) {
	case FS_FIX_ENTRY_NAME:
	case FS_FIX_ENTRY_COOKIE:
	case FS_FIX_ENTRY_REMOVE:
	case FS_FIX_FREE:
	case FS_FIX_DATA:
		return 1;
	case FS_FIX_LOST_FOUND:
		return 2;
	case FS_FIX_LINKS:
	case FS_FIX_COUNTERS:
		return 3;
	}
	return 0;
}

const char *fs_fix_describe(const struct fs_fsck_fix *f)
{
	switch (f->kind) {
	case FS_FIX_ENTRY_NAME:
		return "entry by name restored from its record by cookie";
	case FS_FIX_ENTRY_COOKIE:
		return "record by cookie restored from the entry by name";
	case FS_FIX_ENTRY_REMOVE:
		return "dangling entry removed";
	case FS_FIX_FREE:
		return "records of the missing inode freed";
	case FS_FIX_DATA:
		return "data beyond the size dropped, stored bytes recounted";
	case FS_FIX_LOST_FOUND:
		return "linked into /lost+found";
	case FS_FIX_LINKS:
		return "link count recounted";
	case FS_FIX_COUNTERS:
		return "superblock counters recounted";
	}
	return "no repair";
}

int fs_fix_propose(const struct fs_proposer *p, const struct fs_fsck_fix *f)
{
	struct fs_cmd c;

	memset(&c, 0, sizeof(c));
	switch (f->kind) {
	case FS_FIX_ENTRY_NAME:
	case FS_FIX_ENTRY_COOKIE:
	case FS_FIX_ENTRY_REMOVE:
		c.op = FS_OP_REPAIR_ENTRY;
		c.ino = f->dir;
		c.flags = f->kind == FS_FIX_ENTRY_NAME ? FS_REPAIR_ENTRY_NAME
			  : f->kind == FS_FIX_ENTRY_COOKIE
				  ? FS_REPAIR_ENTRY_COOKIE
				  : FS_REPAIR_ENTRY_REMOVE;
		c.offset = f->cookie;
		c.ino2 = f->kind == FS_FIX_ENTRY_REMOVE ? f->ino : 0;
		if (f->kind != FS_FIX_ENTRY_NAME) {
			if (f->name_len > FS_NAME_CODEC_MAX)
				return -EINVAL;
			c.name = (const char *)f->name;
			c.name_len = (uint32_t)f->name_len;
		}
		break;
	case FS_FIX_FREE:
		c.op = FS_OP_REPAIR_FREE;
		c.ino = f->ino;
		break;
	case FS_FIX_DATA:
		c.op = FS_OP_REPAIR_DATA;
		c.ino = f->ino;
		break;
	case FS_FIX_LOST_FOUND:
		c.op = FS_OP_REPAIR_LOST_FOUND;
		c.ino = f->ino;
		c.length = f->seen_nlink;
		c.mtime = f->seen_ctime;
		break;
	case FS_FIX_LINKS:
		c.op = FS_OP_REPAIR_LINKS;
		c.ino = f->ino;
		c.length = f->seen_nlink;
		c.size = f->want_nlink;
		break;
	case FS_FIX_COUNTERS:
		c.op = FS_OP_REPAIR_COUNTERS;
		break;
	default:
		return -EINVAL;
	}
	return propose_wait(p, &c);
}
