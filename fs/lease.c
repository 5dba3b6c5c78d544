/*
 * The lease keeper (fs.h, docs/LOCKS.md "Leases"): one thread per node.
 * Every lease_ms / 3 it proposes LEASE (one at a time). While this node
 * leads, it watches the other nodes' lease records (fs_lease_each): a
 * node whose renewal count has not moved for lease_ms of this node's
 * monotonic clock, counted from when this node became leader, gets a
 * LEASE_EXPIRE for its newest epoch. Apply then fences that epoch and
 * releases the node's locks. The thread never waits for the cluster:
 * proposals are answered on the proposer's thread.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "fs/fs.h"

#define TICK_MS 100u
#define WATCH_MAX 64u

struct watch {
	uint64_t node;
	uint64_t epoch;    /* as last seen */
	uint64_t renewals; /* as last seen */
	uint64_t seen_ms;  /* when it last moved (or leadership began) */
	bool expiring;     /* a LEASE_EXPIRE of it is in flight */
};

struct fs_lease_keeper {
	struct fs_store *store;
	struct fs_proposer p;
	struct fs_lease_options o;
	pthread_t thread;
	pthread_mutex_t mu; /* protects everything below */
	pthread_cond_t cond;
	bool stop;
	unsigned in_flight; /* proposals not answered yet */
	bool renewing;
	bool fenced_told;
	struct watch w[WATCH_MAX];
	size_t n_w;
	bool leading;
};

struct done_arg {
	struct fs_lease_keeper *k;
	uint64_t node; /* LEASE_EXPIRE's target; 0: a renewal */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void say(struct fs_lease_keeper *k, int level, const char *line)
{
	if (k->o.log)
		k->o.log(k->o.log_ctx, level, line);
}

static void on_done(void *arg, int err, const struct fs_result *res)
{
	struct done_arg *d = arg;
	struct fs_lease_keeper *k = d->k;
	bool tell = false, expired = false;

	pthread_mutex_lock(&k->mu);
	if (d->node == 0) {
		k->renewing = false;
		if (err == 0 && res->err == EIO && !k->fenced_told)
			tell = k->fenced_told = true;
	} else {
		for (size_t i = 0; i < k->n_w; i++) {
			if (k->w[i].node != d->node)
				continue;
			k->w[i].expiring = false;
			/* Not expired (it holds no lock, or restarted, or
			 * the outcome is unknown): watch a whole lease
			 * again before the next try. */
			k->w[i].seen_ms = now_ms();
		}
		expired = err == 0 && res->err == 0;
	}
	pthread_mutex_unlock(&k->mu);
	/* k is still ours until in_flight drops below (the keeper's stop
	 * frees it as soon as nothing is in flight). */
	if (expired) {
		char line[160];

		snprintf(line, sizeof(line),
			 "lease: node %llu was silent for %u ms: its lease is "
			 "revoked (fenced) and its locks released",
			 (unsigned long long)d->node, k->o.lease_ms);
		say(k, 1, line);
	}
	if (tell)
		say(k, 0,
		    "lease: this node's lease was revoked (it was silent "
		    "for longer than the lease): the cluster refuses its "
		    "changes (EIO); restart the node");
	pthread_mutex_lock(&k->mu);
	k->in_flight--;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
	free(d);
}

/* Propose c; on_done is told (or nothing when this fails). */
static int propose(struct fs_lease_keeper *k, struct fs_cmd *c,
		   uint64_t node)
{
	struct done_arg *d = malloc(sizeof(*d));
	uint8_t buf[128];
	long n;
	int rc;

	if (!d)
		return -ENOMEM;
	*d = (struct done_arg){k, node};
	c->proposal = (struct raft_proposal){{1, 1, 1}, 1};
	if (fs_cmd_encoded_size(c) > sizeof(buf)) {
		free(d);
		return -EINVAL;
	}
	rc = k->p.begin(k->p.ctx, &c->proposal, &c->clock);
	if (rc != 0) {
		free(d);
		return rc;
	}
	n = fs_cmd_encode(c, buf, sizeof(buf));
	pthread_mutex_lock(&k->mu);
	k->in_flight++;
	pthread_mutex_unlock(&k->mu);
	rc = k->p.submit(k->p.ctx, &c->proposal.id, buf, (size_t)n, on_done,
			 d);
	if (rc != 0) {
		pthread_mutex_lock(&k->mu);
		k->in_flight--;
		pthread_mutex_unlock(&k->mu);
		free(d);
	}
	return rc;
}

struct scan {
	struct fs_lease_keeper *k;
	uint64_t now;
	uint64_t expire_node[WATCH_MAX];
	uint64_t expire_epoch[WATCH_MAX];
	size_t n_expire;
};

/* One lease record, seen by the leader (k->mu held). */
static int watch_one(void *ctx, const struct fs_lease *l)
{
	struct scan *sc = ctx;
	struct fs_lease_keeper *k = sc->k;
	struct watch *w = NULL;

	if (l->node == k->p.node_id || l->epoch <= l->revoked)
		return 0; /* itself, or fenced already */
	for (size_t i = 0; i < k->n_w; i++)
		if (k->w[i].node == l->node)
			w = &k->w[i];
	if (!w) {
		if (k->n_w == WATCH_MAX)
			return 0;
		w = &k->w[k->n_w++];
		*w = (struct watch){l->node, l->epoch, l->renewals, sc->now,
				    false};
		return 0;
	}
	if (w->renewals != l->renewals || w->epoch != l->epoch) {
		/* Renewed, or started again (a new epoch). */
		w->renewals = l->renewals;
		w->epoch = l->epoch;
		w->seen_ms = sc->now;
		return 0;
	}
	if (!w->expiring && sc->now - w->seen_ms >= k->o.lease_ms &&
	    sc->n_expire < WATCH_MAX) {
		w->expiring = true;
		sc->expire_node[sc->n_expire] = l->node;
		sc->expire_epoch[sc->n_expire++] = l->epoch;
	}
	return 0;
}

static void tick(struct fs_lease_keeper *k, uint64_t *last_renew)
{
	struct scan sc = {.k = k, .now = now_ms()};
	bool leading = k->o.is_leader && k->o.is_leader(k->o.ctx);
	bool renew = false;
	int rc = 0;

	pthread_mutex_lock(&k->mu);
	if (!k->renewing && sc.now - *last_renew >= k->o.lease_ms / 3) {
		k->renewing = renew = true;
		*last_renew = sc.now;
	}
	if (leading && !k->leading)
		k->n_w = 0; /* a new leader: every node gets a full lease */
	k->leading = leading;
	if (leading)
		rc = fs_lease_each(k->store, watch_one, &sc);
	pthread_mutex_unlock(&k->mu);
	if (rc != 0)
		say(k, 1, "lease: cannot read the lease records");
	if (renew) {
		struct fs_cmd c;

		memset(&c, 0, sizeof(c));
		c.op = FS_OP_LEASE;
		if (propose(k, &c, 0) != 0) {
			pthread_mutex_lock(&k->mu);
			k->renewing = false;
			pthread_mutex_unlock(&k->mu);
		}
	}
	for (size_t i = 0; i < sc.n_expire; i++) {
		struct fs_cmd c;

		memset(&c, 0, sizeof(c));
		c.op = FS_OP_LEASE_EXPIRE;
		c.offset = sc.expire_node[i];
		c.length = sc.expire_epoch[i];
		if (propose(k, &c, c.offset) != 0) {
			pthread_mutex_lock(&k->mu);
			for (size_t j = 0; j < k->n_w; j++)
				if (k->w[j].node == c.offset)
					k->w[j].expiring = false;
			pthread_mutex_unlock(&k->mu);
		}
	}
}

static void *keeper_main(void *arg)
{
	struct fs_lease_keeper *k = arg;
	uint64_t last_renew = 0;

	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		struct timespec ts;

		pthread_mutex_unlock(&k->mu);
		tick(k, &last_renew);
		pthread_mutex_lock(&k->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!k->stop)
			pthread_cond_timedwait(&k->cond, &k->mu, &ts);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

int fs_lease_keeper_start(struct fs_store *s, const struct fs_proposer *p,
			  const struct fs_lease_options *o,
			  struct fs_lease_keeper **out)
{
	struct fs_lease_keeper *k;
	int rc;

	if (!s || !p || !o || p->node_id == 0)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->store = s;
	k->p = *p;
	k->o = *o;
	if (k->o.lease_ms == 0)
		k->o.lease_ms = FS_LEASE_DEFAULT_MS;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cond, NULL);
	rc = pthread_create(&k->thread, NULL, keeper_main, k);
	if (rc != 0) {
		pthread_cond_destroy(&k->cond);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return -rc;
	}
	*out = k;
	return 0;
}

void fs_lease_keeper_stop(struct fs_lease_keeper *k)
{
	struct timespec ts;

	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	/* The proposer answers every proposal (at most its timeout). */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	pthread_mutex_lock(&k->mu);
	while (k->in_flight > 0 &&
	       pthread_cond_timedwait(&k->cond, &k->mu, &ts) == 0)
		;
	if (k->in_flight > 0) {
		/* Still out: leave the keeper allocated for them. */
		pthread_mutex_unlock(&k->mu);
		return;
	}
	pthread_mutex_unlock(&k->mu);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
