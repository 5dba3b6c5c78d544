/*
 * Commands proposed through any proposer (fs/fs.h) and waited for on the
 * caller's thread: INIT (formatting a new filesystem), CHECK (check
 * points) and RELEASE_ALL (a node that starts releases the orphans it
 * held before).
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
	uint8_t buf[512];
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
