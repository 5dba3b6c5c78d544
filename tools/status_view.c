/*
 * What `raftfs status` shows, assembled by the node it asks: this node's
 * view, each other member's own view (asked over the transport's admin
 * requests, in parallel, from this node's listen address) and the
 * leader's replication progress for every member. Printed as one JSON
 * object (the names of the command-line contract) or as a table.
 *
 * A view travels as text lines "key=value"; the leader adds one line
 * "progress=ID MATCH NEXT HEARD_MS" per member.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNKNOWN UINT64_MAX

struct progress {
	uint64_t id;
	uint64_t match;
	uint64_t next;
	uint64_t heard_ms; /* UNKNOWN: never */
};

/* One member's view of itself. */
struct view {
	bool known; /* answered */
	uint64_t id;
	char state[16];
	uint64_t term;
	uint64_t leader;
	uint64_t last_index;
	uint64_t commit;
	uint64_t applied;
	uint64_t log_bytes;
	uint64_t snapshot_index;
	uint64_t first_index;
	char transfer[96]; /* "to 3: 12.5 MB at 150.0 MB/s" or "" */
	char mount[32];
	uint32_t feature_supported; /* 1 when the view does not say */
	uint32_t feature_level;     /* the cluster's, as this member applied */
	uint32_t n_progress;
	struct progress progress[RAFT_MAX_MEMBERS];
};

static const char *state_name(uint8_t state, bool learner)
{
	if (learner)
		return "learner";
	switch (state) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_CANDIDATE:
	case RAFT_PRECANDIDATE:
		return "candidate";
	default:
		return "follower";
	}
}

size_t control_node_view(const struct control_source *src, char *out,
			 size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct text_buf b = {out, size, 0};
	bool learner = false;
	char logdir[4200];

	if (size == 0)
		return 0;
	out[0] = '\0';
	if (st == NULL)
		return 0;
	raft_runtime_status_get(src->rt, st);
	for (uint32_t i = 0; i < st->conf.n; i++)
		if (st->conf.members[i].id == src->args->id &&
		    st->conf.members[i].role == RAFT_LEARNER)
			learner = true;
	snprintf(logdir, sizeof(logdir), "%s/log", src->args->data);
	text_printf(&b, "id=%" PRIu64 "\n", src->args->id);
	text_printf(&b, "state=%s\n", state_name(st->raft.state, learner));
	text_printf(&b, "term=%" PRIu64 "\n", st->raft.term);
	text_printf(&b, "leader=%" PRIu64 "\n", st->raft.leader);
	text_printf(&b, "last_index=%" PRIu64 "\n", st->raft.last_index);
	text_printf(&b, "commit=%" PRIu64 "\n", st->raft.commit);
	text_printf(&b, "applied=%" PRIu64 "\n", st->applied_index);
	text_printf(&b, "log_bytes=%" PRIu64 "\n", data_dir_bytes(logdir));
	text_printf(&b, "snapshot_index=%" PRIu64 "\n", st->snapshot_index);
	text_printf(&b, "first_index=%" PRIu64 "\n", st->log_first_index);
	for (uint32_t i = 0; i < st->n_transfers; i++) {
		const struct raft_runtime_transfer *t = &st->transfers[i];
		text_printf(&b, "transfer=%s_%" PRIu64 "_%" PRIu64 "_%" PRIu64
				"_%" PRIu64 "\n",
			    t->sending ? "to" : "from", t->peer, t->index,
			    t->bytes, t->bytes_per_s);
	}
	text_printf(&b, "mount=%s\n", src->state(src->ctx));
	text_printf(&b, "feature_supported=%" PRIu32 "\n",
		    src->args->feature_level);
	if (src->store != NULL)
		text_printf(&b, "feature_level=%" PRIu32 "\n",
			    fs_store_feature_level(src->store));
	for (uint32_t i = 0; i < st->n_progress; i++) {
		const struct raft_progress_info *p = &st->progress[i];
		uint64_t heard = UNKNOWN;
		for (uint32_t j = 0; j < st->conf.n; j++)
			if (st->conf.members[j].id == p->id)
				heard = st->heard_ms_ago[j];
		text_printf(&b, "progress=%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			"\n", p->id, p->match, p->next, heard);
	}
	free(st);
	return b.len;
}

static void view_parse(const char *text, size_t len, struct view *v)
{
	char line[256];
	size_t i = 0;

	memset(v, 0, sizeof(*v));
	while (i < len) {
		size_t n = 0;
		unsigned long long a, c, d, e;
		while (i < len && text[i] != '\n' && n + 1 < sizeof(line))
			line[n++] = text[i++];
		while (i < len && text[i] != '\n')
			i++; /* an over-long line is cut */
		i++;
		line[n] = '\0';
		if (sscanf(line, "id=%llu", &a) == 1)
			v->id = a;
		else if (sscanf(line, "state=%15s", v->state) == 1)
			;
		else if (sscanf(line, "term=%llu", &a) == 1)
			v->term = a;
		else if (sscanf(line, "leader=%llu", &a) == 1)
			v->leader = a;
		else if (sscanf(line, "last_index=%llu", &a) == 1)
			v->last_index = a;
		else if (sscanf(line, "commit=%llu", &a) == 1)
			v->commit = a;
		else if (sscanf(line, "applied=%llu", &a) == 1)
			v->applied = a;
		else if (sscanf(line, "log_bytes=%llu", &a) == 1)
			v->log_bytes = a;
		else if (sscanf(line, "mount=%31s", v->mount) == 1)
			;
		else if (sscanf(line, "snapshot_index=%llu", &a) == 1)
			v->snapshot_index = a;
		else if (sscanf(line, "first_index=%llu", &a) == 1)
			v->first_index = a;
		else if (sscanf(line, "feature_level=%llu", &a) == 1 &&
			 a <= UINT32_MAX)
			v->feature_level = (uint32_t)a;
		else if (strncmp(line, "transfer=", 9) == 0 &&
			 v->transfer[0] == '\0') {
			char dir[8];
			if (sscanf(line + 9, "%7[a-z]_%llu_%llu_%llu_%llu", dir,
				   &a, &c, &d, &e) == 5)
				snprintf(v->transfer, sizeof(v->transfer),
					 "%s %llu: snapshot %llu, %.1f MB at "
					 "%.1f MB/s",
					 dir, a, c, (double)d / 1e6,
					 (double)e / 1e6);
		}
		else if (sscanf(line, "progress=%llu %llu %llu %llu", &a, &c,
				&d, &e) == 4 &&
			 v->n_progress < RAFT_MAX_MEMBERS)
			v->progress[v->n_progress++] =
				(struct progress){a, c, d, e};
	}
	v->known = v->id != 0;
	v->feature_supported = feature_level_of_view(text, len);
}

/* Asking one member for its view, on a thread of its own. */
struct ask {
	const struct control_source *src;
	const struct raft_member *m;
	struct view v;
	pthread_t thread;
	bool started;
};

static void *ask_member(void *arg)
{
	struct ask *a = arg;
	struct net_admin_msg req = {0}, resp;
	uint8_t *buf = malloc(NET_MAX_ADMIN_PAYLOAD_BYTES);
	char err[256];

	if (buf == NULL)
		return NULL;
	req.kind = ADMIN_KIND_NODE_VIEW;
	req.request_id = 1;
	if (control_admin_call(a->src, a->m->address, &req, buf,
			       NET_MAX_ADMIN_PAYLOAD_BYTES, &resp, err,
			       sizeof(err)) == 0)
		view_parse((const char *)resp.payload, resp.payload_bytes,
			   &a->v);
	else
		daemon_log(LOG_DEBUG, "status: node %" PRIu64 " did not answer: %s",
			   a->m->id, err);
	if (a->v.id != a->m->id)
		a->v.known = false; /* answered for someone else */
	free(buf);
	return NULL;
}

static void json_u64(struct text_buf *b, const char *name, uint64_t v, bool known)
{
	if (known && v != UNKNOWN)
		text_printf(b, ", \"%s\": %" PRIu64, name, v);
	else
		text_printf(b, ", \"%s\": null", name);
}

static void text_u64(struct text_buf *b, uint64_t v, bool known, int width)
{
	if (known && v != UNKNOWN)
		text_printf(b, " %*" PRIu64, width, v);
	else
		text_printf(b, " %*s", width, "-");
}

/* The leader's progress entry for id, or NULL. */
static const struct progress *progress_of(const struct view *leader,
					  uint64_t id)
{
	if (leader == NULL)
		return NULL;
	for (uint32_t i = 0; i < leader->n_progress; i++)
		if (leader->progress[i].id == id)
			return &leader->progress[i];
	return NULL;
}

size_t control_cluster_status(const struct control_source *src, bool json,
			      char *out, size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct ask *asks = calloc(RAFT_MAX_MEMBERS, sizeof(*asks));
	struct text_buf b = {out, size, 0};
	const struct view *leader = NULL;
	char self[NET_MAX_ADMIN_PAYLOAD_BYTES / 16];
	uint64_t leader_id = 0, term = 0, feature = 0;
	uint32_t n = 0;

	if (size == 0)
		goto out;
	out[0] = '\0';
	if (st == NULL || asks == NULL) {
		text_printf(&b, "error: out of memory\n");
		goto out;
	}
	raft_runtime_status_get(src->rt, st);
	for (uint32_t i = 0; i < st->conf.n && n < RAFT_MAX_MEMBERS; i++) {
		const struct raft_member *m = &st->conf.members[i];
		struct ask *a = &asks[n++];
		if (m->role == RAFT_REMOVED) {
			n--;
			continue;
		}
		a->src = src;
		a->m = m;
		if (m->id == src->args->id) {
			size_t len = control_node_view(src, self, sizeof(self));
			view_parse(self, len, &a->v);
		} else {
			a->started = pthread_create(&a->thread, NULL,
						    ask_member, a) == 0;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		if (asks[i].started)
			pthread_join(asks[i].thread, NULL);
	/* The leader: the highest term's leader any member names, confirmed
	 * by the leader's own view when it answered. */
	for (uint32_t i = 0; i < n; i++) {
		const struct view *v = &asks[i].v;
		if (!v->known)
			continue;
		if (v->term > term || (v->term == term && v->leader != 0)) {
			term = v->term;
			leader_id = v->leader;
		}
	}
	for (uint32_t i = 0; i < n; i++)
		if (asks[i].v.known && asks[i].m->id == leader_id &&
		    strcmp(asks[i].v.state, "leader") == 0)
			leader = &asks[i].v;
	/* The cluster's level: the highest any member applied (it only
	 * rises). */
	for (uint32_t i = 0; i < n; i++)
		if (asks[i].v.known && asks[i].v.feature_level > feature)
			feature = asks[i].v.feature_level;

	if (json) {
		text_printf(&b, "{\"cluster\": ");
		text_json_str(&b, src->cluster_id);
		text_printf(&b, ", \"node\": %" PRIu64, src->args->id);
		json_u64(&b, "leader", leader_id, leader_id != 0);
		text_printf(&b, ", \"term\": %" PRIu64, term);
		json_u64(&b, "feature_level", feature, feature != 0);
		text_printf(&b, ", \"members\": [");
	} else {
		text_printf(&b, "cluster %s  node %" PRIu64 "  leader ", src->cluster_id,
		    src->args->id);
		if (leader_id != 0)
			text_printf(&b, "%" PRIu64, leader_id);
		else
			text_printf(&b, "none");
		text_printf(&b, "  term %" PRIu64, term);
		if (feature != 0)
			text_printf(&b, "  feature level %" PRIu64, feature);
		text_printf(&b, "\n");
		text_printf(&b, "%4s %-22s %-9s %6s %10s %10s %10s %8s %9s %-9s %10s %s\n",
		    "id", "address", "role", "term", "last", "commit",
		    "applied", "lag", "contact", "reachable", "log_bytes",
		    "mount");
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct raft_member *m = asks[i].m;
		const struct view *v = &asks[i].v;
		const struct progress *p = progress_of(leader, m->id);
		const char *role = v->known ? v->state
				   : m->role == RAFT_LEARNER ? "learner"
							     : "follower";
		uint64_t last = v->known ? v->last_index
				: p != NULL ? p->match : UNKNOWN;
		uint64_t lag = UNKNOWN, contact = p != NULL ? p->heard_ms
								: UNKNOWN;

		if (leader != NULL && p != NULL)
			lag = leader->last_index > p->match
				      ? leader->last_index - p->match
				      : 0;
		if (leader != NULL && m->id == leader_id)
			lag = contact = 0; /* the leader itself */
		if (json) {
			text_printf(&b, "%s\n  {\"id\": %" PRIu64 ", \"address\": ",
			    i ? "," : "", m->id);
			text_json_str(&b, m->address);
			text_printf(&b, ", \"role\": ");
			text_json_str(&b, role);
			json_u64(&b, "term", v->term, v->known);
			json_u64(&b, "last_index", last, last != UNKNOWN);
			json_u64(&b, "commit", v->commit, v->known);
			json_u64(&b, "applied", v->applied, v->known);
			json_u64(&b, "lag", lag, true);
			json_u64(&b, "last_contact_ms", contact, true);
			text_printf(&b, ", \"reachable\": %s",
			    v->known ? "true" : "false");
			json_u64(&b, "log_bytes", v->log_bytes, v->known);
			json_u64(&b, "snapshot_index", v->snapshot_index,
				 v->known);
			json_u64(&b, "log_first_index", v->first_index,
				 v->known);
			text_printf(&b, ", \"transfer\": ");
			if (v->known && v->transfer[0] != '\0')
				text_json_str(&b, v->transfer);
			else
				text_printf(&b, "null");
			text_printf(&b, ", \"mount\": ");
			if (v->known)
				text_json_str(&b, v->mount);
			else
				text_printf(&b, "null");
			json_u64(&b, "feature_supported", v->feature_supported,
				 v->known);
			text_printf(&b, "}");
		} else {
			text_printf(&b, "%4" PRIu64 " %-22s %-9s", m->id, m->address,
			    role);
			text_u64(&b, v->term, v->known, 6);
			text_u64(&b, last, true, 10);
			text_u64(&b, v->commit, v->known, 10);
			text_u64(&b, v->applied, v->known, 10);
			text_u64(&b, lag, true, 8);
			if (contact != UNKNOWN)
				text_printf(&b, " %7" PRIu64 "ms", contact);
			else
				text_printf(&b, " %9s", "-");
			text_printf(&b, " %-9s", v->known ? "yes" : "no");
			text_u64(&b, v->log_bytes, v->known, 10);
			text_printf(&b, " %s", v->known ? v->mount : "-");
			if (v->known && v->snapshot_index > 0)
				text_printf(&b, " snapshot %" PRIu64,
					    v->snapshot_index);
			if (v->known && v->transfer[0] != '\0')
				text_printf(&b, " (%s)", v->transfer);
			text_printf(&b, "\n");
		}
	}
	{
		/* Certificates close to their end: the node asked says so. */
		char warn[256] = "";
		bool warned = net_certs_expiry_warning(src->args->certs,
						       src->args->id,
						       (int64_t)time(NULL), warn,
						       sizeof(warn)) == 1;
		if (json) {
			text_printf(&b, "\n], \"warnings\": [");
			if (warned)
				text_json_str(&b, warn);
			text_printf(&b, "]}\n");
		} else if (warned) {
			text_printf(&b, "warning: %s\n", warn);
		}
	}
out:
	free(asks);
	free(st);
	return b.len;
}
