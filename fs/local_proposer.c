/*
 * The local proposer (fs/fs.h): the proposer interface without Raft.
 * Commands are applied to the store by one thread of our own in
 * submission order, which is the order a single-node log would have; the
 * barrier is trivial because a command's callback runs only after its
 * apply, so every acknowledged change is in the store before any read
 * that starts after it.
 */

#include "fs/fs.h"
#include "fs/open_seqs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
	struct item *next;
	uint64_t seq;
	void (*done)(void *arg, int err, const struct fs_result *res);
	void *arg;
	size_t size;
	uint8_t cmd[]; /* the encoded command, copied */
};

struct fs_local_proposer {
	struct fs_store *store;
	uint64_t node;
	uint64_t epoch;
	pthread_t thread;
	/* Protects everything below. */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* an item was queued, or stopping */
	struct item *head;   /* submitted, not yet applied: FIFO */
	struct item *tail;
	bool stopping;
	bool held; /* fs_local_proposer_hold */
	int error; /* the store error that stopped applying, or 0 */
	struct fs_open_seqs open; /* seqs whose outcome is not known yet */
};

static int lp_begin(void *ctx, struct raft_proposal *p, struct fs_time *clock)
{
	struct fs_local_proposer *lp = ctx;
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&lp->lock);
	rc = fs_open_seqs_begin(&lp->open, lp->node, lp->epoch, p);
	clock->sec = ts.tv_sec;
	clock->nsec = (uint32_t)ts.tv_nsec;
	pthread_mutex_unlock(&lp->lock);
	return rc;
}

static int lp_submit(void *ctx, const struct raft_proposal_id *id,
		     const void *cmd, size_t size,
		     void (*done)(void *arg, int err, const struct fs_result *res),
		     void *arg)
{
	struct fs_local_proposer *lp = ctx;
	struct item *it = malloc(sizeof(*it) + size);
	int rc = 0;

	pthread_mutex_lock(&lp->lock);
	if (it != NULL) /* the Raft proposer's gate (fs/fs.h) */
		rc = fs_cmd_feature_check(cmd, size,
					  fs_store_feature_level(lp->store));
	if (it == NULL || lp->stopping || lp->error != 0 || rc != 0) {
		rc = it == NULL		 ? -ENOMEM
		     : rc == -EOPNOTSUPP ? rc
		     : rc != 0		 ? -EINVAL
					 : -EIO;
		fs_open_seqs_close(&lp->open, id->seq);
		pthread_mutex_unlock(&lp->lock);
		free(it);
		return rc;
	}
	it->next = NULL;
	it->seq = id->seq;
	it->done = done;
	it->arg = arg;
	it->size = size;
	memcpy(it->cmd, cmd, size);
	if (lp->tail != NULL)
		lp->tail->next = it;
	else
		lp->head = it;
	lp->tail = it;
	pthread_cond_signal(&lp->cond);
	pthread_mutex_unlock(&lp->lock);
	return 0;
}

static int lp_barrier(void *ctx, void (*done)(void *arg, int err), void *arg)
{
	struct fs_local_proposer *lp = ctx;
	int err;

	pthread_mutex_lock(&lp->lock);
	err = lp->error != 0 ? -EIO : 0;
	pthread_mutex_unlock(&lp->lock);
	done(arg, err);
	return 0;
}

static void *apply_thread(void *arg)
{
	struct fs_local_proposer *lp = arg;

	pthread_mutex_lock(&lp->lock);
	for (;;) {
		struct item *it = lp->head;
		struct fs_result res;
		int rc, err;

		if (it == NULL || (lp->held && !lp->stopping)) {
			if (it == NULL && lp->stopping)
				break;
			pthread_cond_wait(&lp->cond, &lp->lock);
			continue;
		}
		lp->head = it->next;
		if (lp->head == NULL)
			lp->tail = NULL;
		err = lp->error;
		pthread_mutex_unlock(&lp->lock);

		memset(&res, 0, sizeof(res));
		rc = err;
		if (rc == 0)
			rc = fs_store_apply(lp->store,
					    fs_store_applied_index(lp->store) + 1,
					    it->cmd, it->size, &res);

		pthread_mutex_lock(&lp->lock);
		if (rc != 0 && lp->error == 0)
			lp->error = rc; /* a store error stops the node */
		fs_open_seqs_close(&lp->open, it->seq);
		pthread_mutex_unlock(&lp->lock);
		it->done(it->arg, rc == 0 ? 0 : -EIO, rc == 0 ? &res : NULL);
		free(it);
		pthread_mutex_lock(&lp->lock);
	}
	pthread_mutex_unlock(&lp->lock);
	return NULL;
}

int fs_local_proposer_start(struct fs_store *s, uint64_t node, uint64_t epoch,
			    struct fs_local_proposer **out)
{
	struct fs_local_proposer *lp;
	int rc;

	*out = NULL;
	if (s == NULL || node == 0 || epoch == 0)
		return -EINVAL;
	lp = calloc(1, sizeof(*lp));
	if (lp == NULL)
		return -ENOMEM;
	lp->store = s;
	lp->node = node;
	lp->epoch = epoch;
	fs_open_seqs_init(&lp->open);
	pthread_mutex_init(&lp->lock, NULL);
	pthread_cond_init(&lp->cond, NULL);
	rc = pthread_create(&lp->thread, NULL, apply_thread, lp);
	if (rc != 0) {
		pthread_cond_destroy(&lp->cond);
		pthread_mutex_destroy(&lp->lock);
		free(lp);
		return -rc;
	}
	*out = lp;
	return 0;
}

void fs_local_proposer_get(struct fs_local_proposer *lp,
			   struct fs_proposer *out)
{
	out->ctx = lp;
	out->node_id = lp->node;
	out->begin = lp_begin;
	out->submit = lp_submit;
	out->barrier = lp_barrier;
}

void fs_local_proposer_hold(struct fs_local_proposer *lp, bool hold)
{
	pthread_mutex_lock(&lp->lock);
	lp->held = hold;
	pthread_cond_signal(&lp->cond);
	pthread_mutex_unlock(&lp->lock);
}

int fs_local_proposer_error(struct fs_local_proposer *lp)
{
	int err;

	pthread_mutex_lock(&lp->lock);
	err = lp->error;
	pthread_mutex_unlock(&lp->lock);
	return err;
}

void fs_local_proposer_stop(struct fs_local_proposer *lp)
{
	if (lp == NULL)
		return;
	pthread_mutex_lock(&lp->lock);
	lp->stopping = true;
	pthread_cond_signal(&lp->cond);
	pthread_mutex_unlock(&lp->lock);
	pthread_join(lp->thread, NULL);
	pthread_cond_destroy(&lp->cond);
	pthread_mutex_destroy(&lp->lock);
	fs_open_seqs_release(&lp->open);
	free(lp);
}
