/*
 * What the runtime says about itself: the status the driver publishes
 * after every round (raft_runtime_status_get) and the event lines of the
 * options' log hook — this node's role, the leader, the configuration.
 *
 * The driver publishes every round, so publishing stays cheap: the
 * configuration is compared and copied only after an update that may have
 * changed it (a configuration entry appended, a truncation), progress only
 * on the leader, and receive times are published as clock readings that
 * the reader turns into "ms ago".
 */

#include "raft/runtime_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void rt_status_heard(struct raft_runtime *rt, uint64_t id, uint64_t now_ms)
{
	uint32_t oldest = 0;

	for (uint32_t i = 0; i < rt->n_heard; i++) {
		if (rt->heard[i].id == id) {
			rt->heard[i].at_ms = now_ms;
			return;
		}
		if (rt->heard[i].at_ms < rt->heard[oldest].at_ms)
			oldest = i;
	}
	/* Full (ids of many past configurations): forget the quietest. */
	if (rt->n_heard == RT_MAX_HEARD)
		rt->heard[oldest] = (struct rt_heard){id, now_ms};
	else
		rt->heard[rt->n_heard++] = (struct rt_heard){id, now_ms};
}

static const char *role_name(uint8_t role)
{
	switch (role) {
	case RAFT_VOTER:
		return "voter";
	case RAFT_LEARNER:
		return "learner";
	case RAFT_REMOVED:
		return "removed";
	default:
		return "?";
	}
}

/* "1 voter 10.0.0.1:7000, 2 learner 10.0.0.2:7000, 3 removed" */
static void format_conf(const struct raft_configuration *c, char *buf,
			size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < c->n && n < size; i++) {
		const struct raft_member *m = &c->members[i];
		int k = snprintf(buf + n, size - n, "%s%" PRIu64 " %s%s%s",
				 i > 0 ? ", " : "", m->id, role_name(m->role),
				 m->address[0] != '\0' ? " " : "", m->address);
		if (k < 0)
			break;
		n += (size_t)k;
	}
}

void rt_status_log_changes(struct raft_runtime *rt,
			   const struct raft_update *u)
{
	if (u->truncate_from != 0)
		rt->conf_dirty = true; /* a configuration may be rolled back */
	for (uint32_t i = 0; i < u->n_entries; i++) {
		const struct raft_entry *e = &u->entries[i];
		struct raft_configuration conf;
		char members[1200];
		if (e->type != RAFT_ENTRY_CONFIG)
			continue;
		rt->conf_dirty = true;
		rt->conf_appended = true;
		if (e->data == NULL ||
		    raft_configuration_decode(e->data, e->size, &conf) != 0)
			continue; /* the core validated it; nothing to say */
		format_conf(&conf, members, sizeof(members));
		rt_log(rt, 2,
		       "configuration appended at index %" PRIu64
		       " term %" PRIu64 ": %s",
		       e->index, e->term, members);
	}
}

static bool conf_equal(const struct raft_configuration *a,
		       const struct raft_configuration *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->members[i].id != b->members[i].id ||
		    a->members[i].role != b->members[i].role ||
		    strcmp(a->members[i].address, b->members[i].address) != 0)
			return false;
	return true;
}

/* The role to report: the core's state, a follower that is a learner (or
 * removed) in the configuration in force named so. */
static const char *state_name(struct raft_runtime *rt,
			      const struct raft_status *st)
{
	if (st->state == RAFT_FOLLOWER) {
		const struct raft_member *m =
			raft_configuration_get(&rt->status.conf, rt->o.id);
		if (m != NULL && m->role != RAFT_VOTER)
			return role_name(m->role);
	}
	return raft_state_name(st->state);
}

static void log_events(struct raft_runtime *rt, const struct raft_status *st,
		       bool conf_changed)
{
	const char *name = state_name(rt, st);

	if (conf_changed && !rt->conf_appended) {
		/* At start, or rolled back by a truncation. */
		char members[1200];
		format_conf(&rt->status.conf, members, sizeof(members));
		rt_log(rt, 2, "configuration in force: %s", members);
	}
	rt->conf_appended = false;
	/* A candidate or leader in a new term is a new candidacy; a
	 * follower's new term shows as its new leader. */
	if (rt->ev_role == NULL || strcmp(name, rt->ev_role) != 0 ||
	    (st->term != rt->ev_term && st->state != RAFT_FOLLOWER))
		rt_log(rt, 2, "became %s in term %" PRIu64, name, st->term);
	rt->ev_role = name;
	rt->ev_term = st->term;
	if (st->leader != rt->ev_leader ||
	    (st->leader != 0 && st->term != rt->ev_leader_term)) {
		if (st->leader != 0)
			rt_log(rt, 2, "leader is node %" PRIu64 " in term %" PRIu64,
			       st->leader, st->term);
		else
			rt_log(rt, 2, "no leader known in term %" PRIu64,
			       st->term);
		rt->ev_leader = st->leader;
		rt->ev_leader_term = st->term;
	}
}

void rt_status_publish(struct raft_runtime *rt)
{
	const struct raft_configuration *conf = NULL;
	struct raft_status st;
	bool conf_changed = false;

	raft_status_get(rt->r, &st);
	if (rt->conf_dirty)
		conf = raft_configuration(rt->r);
	rt->conf_dirty = false;
	pthread_mutex_lock(&rt->mu);
	rt->status.raft = st;
	rt->status.durable_index = rt->durable_index;
	rt->status.snapshot_index = rt->snap_index;
	rt->status.snapshot_term = rt->snap_term_of;
	rt->status.log_first_index = rt->log_first_index;
	rt->status.snapshots_taken = rt->snapshots_taken;
	rt->status.dropped_messages += rt->dropped;
	rt->dropped = 0;
	if (conf != NULL && !conf_equal(conf, &rt->status.conf)) {
		rt->status.conf = *conf;
		conf_changed = true;
	}
	rt->status.n_progress =
		st.state == RAFT_LEADER
			? raft_progress_get(rt->r, rt->status.progress,
					    RAFT_MAX_MEMBERS)
			: 0;
	memcpy(rt->pub_heard, rt->heard, rt->n_heard * sizeof(rt->heard[0]));
	rt->n_pub_heard = rt->n_heard;
	pthread_mutex_unlock(&rt->mu);
	/* rt->status is written by this thread only: reading it unlocked
	 * here is safe. */
	log_events(rt, &st, conf_changed);
}

void raft_runtime_status_get(struct raft_runtime *rt,
			     struct raft_runtime_status *st)
{
	struct rt_heard heard[RT_MAX_HEARD];
	uint32_t n_heard;
	uint64_t now = rt_now_ms();

	pthread_mutex_lock(&rt->mu);
	*st = rt->status;
	st->failed = rt->failed;
	memcpy(st->error, rt->error, sizeof(st->error));
	n_heard = rt->n_pub_heard;
	memcpy(heard, rt->pub_heard, n_heard * sizeof(heard[0]));
	pthread_mutex_unlock(&rt->mu);
	pthread_mutex_lock(&rt->apply_mu);
	st->applied_index = rt->applied;
	st->awaiting_install = rt->awaiting;
	pthread_mutex_unlock(&rt->apply_mu);
	st->n_transfers = 0;
	if (rt->snap_enabled)
		rt_snap_status(rt, st);
	for (uint32_t i = 0; i < RAFT_MAX_MEMBERS; i++) {
		uint64_t id = i < st->conf.n ? st->conf.members[i].id : 0;
		st->heard_ms_ago[i] = id == rt->o.id ? 0 : UINT64_MAX;
		for (uint32_t k = 0; id != 0 && k < n_heard; k++)
			if (heard[k].id == id)
				st->heard_ms_ago[i] = now > heard[k].at_ms
							      ? now - heard[k].at_ms
							      : 0;
	}
}
