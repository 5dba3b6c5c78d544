/*
 * The cluster's feature level (docs/FS_STORE.md, "Feature level"), raised
 * by the leader through the log once every member says it supports a
 * higher one. Each node's view (tools/status_view.c) carries
 * "feature_supported=N": FS_FEATURE_LEVEL, or less with -o feature_level.
 * A member that does not answer, or a view without the line (a build from
 * before the gate: level 1), holds the cluster where it is.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_S 2
#define ALIVE_MS 2000u

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

uint32_t feature_level_of_view(const char *view, size_t len)
{
	static const char key[] = "feature_supported=";
	size_t klen = sizeof(key) - 1;

	for (size_t i = 0; i + klen < len; i++) {
		unsigned long v = 0;
		size_t j;
		if ((i > 0 && view[i - 1] != '\n') ||
		    memcmp(view + i, key, klen) != 0)
			continue;
		for (j = i + klen; j < len && view[j] >= '0' && view[j] <= '9' &&
				   v < 1000000;
		     j++)
			v = v * 10 + (unsigned long)(view[j] - '0');
		return j > i + klen && v >= 1 ? (uint32_t)v : 1;
	}
	return 1;
}

/* What member m supports; 0 when it cannot be asked now. */
static uint32_t member_level(const struct control_source *src,
			     const struct raft_member *m)
{
	struct net_admin_msg req = {0}, resp;
	uint8_t *buf = malloc(NET_MAX_ADMIN_PAYLOAD_BYTES);
	char err[256], idline[40];
	uint32_t level = 0;
	int n;

	if (buf == NULL)
		return 0;
	req.kind = ADMIN_KIND_NODE_VIEW;
	req.request_id = 1;
	n = snprintf(idline, sizeof(idline), "id=%" PRIu64 "\n", m->id);
	if (control_admin_call(src, m->address, &req, buf,
			       NET_MAX_ADMIN_PAYLOAD_BYTES, &resp, err,
			       sizeof(err)) != 0)
		daemon_log(LOG_DEBUG, "feature level: node %" PRIu64
				      " did not answer: %s",
			   m->id, err);
	else if (resp.payload_bytes >= (uint32_t)n &&
		 memcmp(resp.payload, idline, (size_t)n) == 0)
		level = feature_level_of_view((const char *)resp.payload,
					      resp.payload_bytes);
	free(buf);
	return level;
}

uint32_t feature_level_of_node(const struct control_source *src,
			       uint64_t id, const char *address)
{
	struct raft_member m = {0};

	m.id = id;
	snprintf(m.address, sizeof(m.address), "%s", address);
	return member_level(src, &m);
}

void feature_level_tick(const struct control_source *src)
{
	static time_t last;
	static uint32_t held_at; /* the level last logged as held */
	struct raft_runtime_status *st;
	struct fs_proposer p;
	uint32_t current, target;
	uint64_t holder = 0;
	int rc;

	if (src->store == NULL || src->fr == NULL || mono_s() - last < TICK_S)
		return;
	last = mono_s();
	current = fs_store_feature_level(src->store);
	if (current >= src->args->feature_level ||
	    !fs_store_is_formatted(src->store))
		return;
	st = malloc(sizeof(*st));
	if (st == NULL)
		return;
	raft_runtime_status_get(src->rt, st);
	target = src->args->feature_level;
	if (st->raft.state != RAFT_LEADER)
		target = 0;
	for (uint32_t i = 0; i < st->conf.n && target > current; i++) {
		const struct raft_member *m = &st->conf.members[i];
		uint32_t level;
		if (m->role == RAFT_REMOVED || m->id == src->args->id)
			continue;
		/* A member not heard from lately cannot say: wait for it. */
		level = st->heard_ms_ago[i] <= ALIVE_MS ? member_level(src, m)
							: 0;
		if (level < target) {
			target = level;
			holder = m->id;
		}
	}
	if (target <= current) {
		if (st->raft.state == RAFT_LEADER && held_at != current + 1) {
			held_at = current + 1;
			daemon_log(LOG_INFO,
				   "cluster feature level %" PRIu32 ": node %" PRIu64
				   " does not support a higher one yet (or did "
				   "not answer); raised when every member does",
				   current, holder);
		}
		free(st);
		return;
	}
	free(st);
	fs_raft_proposer(src->fr, &p);
	rc = fs_raise_feature_level(&p, target);
	if (rc == 0)
		daemon_log(LOG_INFO,
			   "cluster feature level raised from %" PRIu32
			   " to %" PRIu32 " (every member supports it)",
			   current, target);
	else if (rc != -EALREADY)
		daemon_log(LOG_WARN,
			   "raising the cluster feature level to %" PRIu32
			   " failed: %s; trying again",
			   target, strerror(-rc));
}
