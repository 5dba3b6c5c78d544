/*
 * Administrative requests of the runtime (raft/raft.h,
 * raft_runtime_admin): membership changes and leadership transfers,
 * queued by any thread and carried out by the driver on its core, which
 * alone may touch it. The outcome is the core's answer at once (accepted
 * and appended, or refused); the caller watches the configuration and the
 * progress in the status for what follows (commit, catch-up, promotion).
 */

#include "raft/runtime_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int raft_runtime_admin(struct raft_runtime *rt, uint8_t op, uint64_t id,
		       const char *address, raft_runtime_admin_fn done,
		       void *ctx)
{
	struct rt_admin *a;
	int rc = 0;

	if (done == NULL || op < RAFT_RUNTIME_ADD_LEARNER ||
	    op > RAFT_RUNTIME_TRANSFER ||
	    (op == RAFT_RUNTIME_ADD_LEARNER &&
	     (address == NULL || address[0] == '\0' ||
	      strlen(address) >= RAFT_MAX_ADDRESS)))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->op = op;
	a->id = id;
	if (address != NULL)
		strcpy(a->address, address); /* length checked above */
	a->done = done;
	a->ctx = ctx;
	pthread_mutex_lock(&rt->mu);
	if (rt->failed != 0)
		rc = -EIO;
	else if (rt->stop)
		rc = -ESHUTDOWN;
	if (rc == 0) {
		a->next = rt->admins;
		rt->admins = a;
		pthread_cond_signal(&rt->wake);
	}
	pthread_mutex_unlock(&rt->mu);
	if (rc != 0)
		free(a);
	return rc;
}

/* The driver: carry out each request on the core (order of arrival). */
void rt_admins_run(struct raft_runtime *rt, struct rt_admin *list)
{
	struct rt_admin *rev = NULL;

	while (list != NULL) { /* queued newest first */
		struct rt_admin *a = list;
		list = a->next;
		a->next = rev;
		rev = a;
	}
	while (rev != NULL) {
		struct rt_admin *a = rev;
		uint64_t index = 0;
		int rc;

		rev = a->next;
		switch (a->op) {
		case RAFT_RUNTIME_ADD_LEARNER:
			rc = raft_change_membership(rt->r, RAFT_ADD_LEARNER,
						    a->id, a->address, &index);
			break;
		case RAFT_RUNTIME_PROMOTE:
			rc = raft_change_membership(rt->r, RAFT_PROMOTE, a->id,
						    NULL, &index);
			break;
		case RAFT_RUNTIME_REMOVE:
			rc = raft_change_membership(rt->r, RAFT_REMOVE, a->id,
						    NULL, &index);
			break;
		default:
			rc = raft_transfer_leadership(rt->r, a->id);
			break;
		}
		rt_log(rt, rc == 0 ? 2 : 3, "admin request %u for node %llu: %s",
		       a->op, (unsigned long long)a->id,
		       rc == 0 ? "accepted" : strerror(-rc));
		a->done(a->ctx, rc, index);
		free(a);
	}
}

/* Answer every request still queued (the node stopped or is going). */
void rt_admins_fail(struct rt_admin *list, int rc)
{
	while (list != NULL) {
		struct rt_admin *a = list;
		list = a->next;
		a->done(a->ctx, rc, 0);
		free(a);
	}
}
