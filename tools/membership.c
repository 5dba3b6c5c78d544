/*
 * Membership and leadership from the command line (`raftfs member add |
 * remove`, `raftfs leader transfer`), and the transport's peers kept equal
 * to the configuration.
 *
 * The node asked finds the leader (itself, or the leader its status
 * names) and has it carry out the change (member_answer, over the
 * transport's admin requests when the leader is another node). The leader
 * refuses what is unsafe before asking the core: removing a voter when the
 * voters that would remain and are alive (heard from within an election
 * timeout) are no majority of the new configuration; the core refuses a
 * second change while one is pending. Then the node asked follows the
 * change in its own status and reports: a new member's catch-up as a
 * learner until the leader promotes it (the core's auto_promote), a
 * removal until it is in force and committed, a transfer until another
 * leader (the target, when one was named) is known.
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRIVER_WAIT_S 10
#define FOLLOW_IDLE_S 600  /* a catch-up that makes no progress this long */
#define COMMIT_WAIT_S 30
#define TRANSFER_WAIT_S 15
#define ALIVE_MS 2000u     /* heard from this recently: alive */

/* A member said this node was removed (member_answer "removed"). */
static atomic_bool told_removed;

static void writef(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void writef(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, line, (size_t)n < sizeof(line) ? (size_t)n
							      : sizeof(line) - 1) < 0)
		return; /* the client went away; the change goes on */
}

/* ---- the leader's side ---- */

struct admin_wait {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
	int rc;
	uint64_t index;
};

static void admin_done(void *ctx, int rc, uint64_t index)
{
	struct admin_wait *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->rc = rc;
	w->index = index;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static const struct raft_member *member_of(const struct raft_configuration *c,
					   uint64_t id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->members[i].id == id)
			return &c->members[i];
	return NULL;
}

/* Alive: heard from lately, and our connection to it is up (a node
 * stopped a moment ago was heard from lately, but its connection is
 * gone). */
static bool is_alive(const struct control_source *src,
		     const struct raft_runtime_status *st, uint32_t i)
{
	struct net_peer_stats ps;

	if (st->conf.members[i].id == src->args->id)
		return true;
	return st->heard_ms_ago[i] <= ALIVE_MS &&
	       net_peer_stats(src->net, st->conf.members[i].id, &ps) == 0 &&
	       ps.up;
}

/* Whether removing id leaves a live majority of the voters that remain. */
static bool removal_is_safe(const struct control_source *src,
			    const struct raft_runtime_status *st, uint64_t id,
			    char *why, size_t size)
{
	uint32_t voters = 0, alive = 0;

	for (uint32_t i = 0; i < st->conf.n; i++) {
		const struct raft_member *m = &st->conf.members[i];
		if (m->role != RAFT_VOTER || m->id == id)
			continue;
		voters++;
		if (is_alive(src, st, i))
			alive++;
	}
	if (voters == 0) {
		snprintf(why, size, "no voter would remain");
		return false;
	}
	if (alive * 2 <= voters) {
		snprintf(why, size,
			 "only %u of the %u voters that would remain are alive: "
			 "no majority; bring members back first",
			 alive, voters);
		return false;
	}
	return true;
}

size_t member_answer(const struct control_source *src, const char *request,
		     char *out, size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct admin_wait w = {PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, false, 0, 0};
	char address[RAFT_MAX_ADDRESS] = "", why[256];
	unsigned long long id = 0;
	uint8_t op;
	struct timespec dl;
	int rc, n;

	if (st == NULL)
		return (size_t)snprintf(out, size, "error: out of memory\n");
	if (sscanf(request, "removed %llu", &id) == 1) {
		/* A member tells this node it was removed: the removing
		 * entry may never reach a removed node (its leader stops
		 * replicating to it). Peers are authenticated members. */
		free(st);
		if (id != src->args->id)
			return (size_t)snprintf(out, size,
						"error: this is node %" PRIu64 "\n",
						src->args->id);
		atomic_store(&told_removed, true);
		return (size_t)snprintf(out, size, "ok index=0\n");
	}
	if (sscanf(request, "add %llu %63s", &id, address) == 2)
		op = RAFT_RUNTIME_ADD_LEARNER;
	else if (sscanf(request, "remove %llu", &id) == 1)
		op = RAFT_RUNTIME_REMOVE;
	else if (sscanf(request, "transfer %llu", &id) == 1)
		op = RAFT_RUNTIME_TRANSFER;
	else {
		free(st);
		return (size_t)snprintf(out, size, "error: bad request\n");
	}
	raft_runtime_status_get(src->rt, st);
	if (st->raft.state != RAFT_LEADER) {
		n = snprintf(out, size, "error: node %" PRIu64 " is not the "
					"leader (leader: %" PRIu64 ")\n",
			     src->args->id, st->raft.leader);
		free(st);
		return (size_t)n;
	}
	if (op == RAFT_RUNTIME_REMOVE &&
	    !removal_is_safe(src, st, id, why, sizeof(why))) {
		n = snprintf(out, size, "error: refusing to remove node %llu: "
					"%s\n",
			     id, why);
		free(st);
		return (size_t)n;
	}
	free(st);
	if (op == RAFT_RUNTIME_ADD_LEARNER && src->store != NULL) {
		/* A new member must run every command the cluster may
		 * send: one that says it supports less is refused (one that
		 * does not answer yet is let in: it stops on a command it
		 * cannot decode rather than skip it). */
		uint32_t cluster = fs_store_feature_level(src->store);
		uint32_t level = feature_level_of_node(src, id, address);
		if (level != 0 && level < cluster)
			return (size_t)snprintf(
				out, size,
				"error: node %llu supports feature level %" PRIu32
				", the cluster is at %" PRIu32 ": run this "
				"build (or a newer one) on it\n",
				id, level, cluster);
	}
	rc = raft_runtime_admin(src->rt, op, id, address, admin_done, &w);
	if (rc == 0) {
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += DRIVER_WAIT_S;
		pthread_mutex_lock(&w.mu);
		while (!w.done &&
		       pthread_cond_timedwait(&w.cond, &w.mu, &dl) == 0)
			;
		rc = w.done ? w.rc : -ETIMEDOUT;
		pthread_mutex_unlock(&w.mu);
		/* A late answer writes into w: wait for it (the driver
		 * answers within a round; a stopping node answers -EIO). */
		while (!w.done) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&w.mu);
			pthread_mutex_unlock(&w.mu);
		}
	}
	switch (rc) {
	case 0:
		return (size_t)snprintf(out, size, "ok index=%" PRIu64 "\n",
					w.index);
	case -EBUSY:
		return (size_t)snprintf(out, size,
					"error: a membership change or transfer "
					"is in progress (or the new leader has "
					"no commit yet); retry in a moment\n");
	case -EEXIST:
		return (size_t)snprintf(out, size,
					"error: node %llu is or was a member; a "
					"removed id is never reused\n", id);
	case -ENOENT:
		return (size_t)snprintf(out, size,
					"error: node %llu is not a member\n", id);
	case -EINVAL:
		return (size_t)snprintf(out, size,
					"error: not possible for node %llu (%s)\n",
					id, op == RAFT_RUNTIME_TRANSFER
						    ? "not another voter"
						    : "no voter would remain, "
						      "or a bad address");
	case -EPERM:
		return (size_t)snprintf(out, size,
					"error: leadership changed; retry\n");
	default:
		return (size_t)snprintf(out, size, "error: %s\n",
					strerror(-rc));
	}
}

/* ---- the node asked ---- */

/* Have the leader carry out request; its answer in out. */
static int ask_leader(const struct control_source *src, const char *request,
		      char *out, size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	const struct raft_member *m;
	struct net_admin_msg req = {0}, resp;
	char err[256];
	int rc = -1;

	if (st == NULL) {
		snprintf(out, size, "error: out of memory\n");
		return -1;
	}
	raft_runtime_status_get(src->rt, st);
	if (st->raft.leader == 0) {
		snprintf(out, size, "error: no leader is known; is a majority "
				    "up?\n");
		goto done;
	}
	if (st->raft.leader == src->args->id) {
		member_answer(src, request, out, size);
		rc = 0;
		goto done;
	}
	m = member_of(&st->conf, st->raft.leader);
	if (m == NULL) {
		snprintf(out, size, "error: the leader is not in the "
				    "configuration this node knows\n");
		goto done;
	}
	req.kind = ADMIN_KIND_MEMBER;
	req.request_id = 1;
	req.payload = (const uint8_t *)request;
	req.payload_bytes = (uint32_t)strlen(request);
	if (control_admin_call(src, m->address, &req, (uint8_t *)out, size - 1,
			       &resp, err, sizeof(err)) != 0) {
		snprintf(out, size, "error: leader %" PRIu64 ": %.200s\n",
			 m->id, err);
		goto done;
	}
	memmove(out, resp.payload, resp.payload_bytes);
	out[resp.payload_bytes] = '\0';
	rc = 0;
done:
	free(st);
	return rc;
}

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Follow a new member until the leader promoted it. */
static int follow_add(const struct control_source *src, uint64_t id, int fd)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	time_t last_progress = mono_s(), last_said = 0;
	uint64_t best = 0;
	int status = 1;

	while (st != NULL) {
		const struct raft_member *m;
		raft_runtime_status_get(src->rt, st);
		m = member_of(&st->conf, id);
		if (m != NULL && m->role == RAFT_VOTER) {
			writef(fd, "node %" PRIu64 " caught up and is a voter\n",
			       id);
			status = 0;
			break;
		}
		if (m != NULL && m->role == RAFT_REMOVED) {
			writef(fd, "error: node %" PRIu64 " left the "
				   "configuration while catching up\n", id);
			break;
		}
		if (m == NULL) {
			/* This node has not appended the change yet. */
			if (mono_s() - last_progress > COMMIT_WAIT_S) {
				writef(fd, "error: the change adding node %" PRIu64
					   " did not reach this node within %d s\n",
				       id, COMMIT_WAIT_S);
				break;
			}
			usleep(100 * 1000);
			continue;
		}
		/* The leader's progress, when this node leads; else the
		 * commit index is what can be said. */
		uint64_t match = 0;
		for (uint32_t i = 0; i < st->n_progress; i++)
			if (st->progress[i].id == id)
				match = st->progress[i].match;
		if (match > best) {
			best = match;
			last_progress = mono_s();
		}
		if (mono_s() - last_said >= 2) {
			if (st->n_progress > 0)
				writef(fd, "node %" PRIu64 " is a learner, "
					   "catching up: %" PRIu64 " of %" PRIu64
					   " entries\n",
				       id, match, st->raft.last_index);
			else
				writef(fd, "node %" PRIu64 " is a learner, "
					   "catching up\n", id);
			last_said = mono_s();
		}
		if (st->n_progress > 0 &&
		    mono_s() - last_progress > FOLLOW_IDLE_S) {
			writef(fd, "error: node %" PRIu64 " made no progress "
				   "for %d s; is it running with --join?\n",
			       id, FOLLOW_IDLE_S);
			break;
		}
		usleep(200 * 1000);
	}
	free(st);
	return status;
}

/* Tell a removed node so (best effort: a node that is down learns
 * nothing and, restarted, finds no leader that answers it). */
static void tell_removed(const struct control_source *src, uint64_t id,
			 const char *address)
{
	struct net_admin_msg req = {0}, resp;
	char request[64], err[256];
	uint8_t buf[256];

	if (id == src->args->id || address[0] == '\0')
		return; /* this node sees its own removal in its log */
	snprintf(request, sizeof(request), "removed %" PRIu64, id);
	req.kind = ADMIN_KIND_MEMBER;
	req.request_id = 1;
	req.payload = (const uint8_t *)request;
	req.payload_bytes = (uint32_t)strlen(request);
	if (control_admin_call(src, address, &req, buf, sizeof(buf), &resp,
			       err, sizeof(err)) != 0)
		daemon_log(LOG_WARN, "could not tell node %" PRIu64 " it was "
				     "removed: %s",
			   id, err);
}

/* Follow a removal until it is committed. */
static int follow_remove(const struct control_source *src, uint64_t id,
			 const char *address, uint64_t index, int fd)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	time_t end = mono_s() + COMMIT_WAIT_S;
	int status = 1;

	while (st != NULL && mono_s() < end) {
		raft_runtime_status_get(src->rt, st);
		if (st->raft.commit >= index) {
			writef(fd, "node %" PRIu64 " removed (configuration at "
				   "index %" PRIu64 " committed)\n", id, index);
			tell_removed(src, id, address);
			status = 0;
			break;
		}
		usleep(100 * 1000);
	}
	if (status != 0)
		writef(fd, "error: the removal at index %" PRIu64 " did not "
			   "commit within %d s (this node may have been the "
			   "one removed; ask another)\n", index, COMMIT_WAIT_S);
	free(st);
	return status;
}

static int follow_transfer(const struct control_source *src, uint64_t target,
			   uint64_t old_leader, int fd)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	time_t end = mono_s() + TRANSFER_WAIT_S;
	int status = 1;

	while (st != NULL && mono_s() < end) {
		raft_runtime_status_get(src->rt, st);
		if (st->raft.leader != 0 && st->raft.leader != old_leader &&
		    (target == 0 || st->raft.leader == target)) {
			writef(fd, "node %" PRIu64 " leads in term %" PRIu64
				   "\n", st->raft.leader, st->raft.term);
			status = 0;
			break;
		}
		usleep(50 * 1000);
	}
	if (status != 0)
		writef(fd, "error: no new leader within %d s; the transfer "
			   "was abandoned\n", TRANSFER_WAIT_S);
	free(st);
	return status;
}

void member_run(const struct control_source *src, const char *request, int fd)
{
	char answer[512], address[RAFT_MAX_ADDRESS] = "", req[300];
	char removed_address[RAFT_MAX_ADDRESS] = "";
	unsigned long long id = 0, index = 0;
	struct raft_runtime_status *st = malloc(sizeof(*st));
	uint64_t old_leader = 0;
	int status = 1;

	if (st == NULL) {
		writef(fd, "error: out of memory\nexit 1\n");
		return;
	}
	raft_runtime_status_get(src->rt, st);
	old_leader = st->raft.leader;
	for (uint32_t i = 0; i < st->conf.n; i++)
		if (sscanf(request, "member remove %llu", &id) == 1 &&
		    st->conf.members[i].id == id)
			memcpy(removed_address, st->conf.members[i].address,
			       RAFT_MAX_ADDRESS);
	free(st);
	if (sscanf(request, "member add %llu %63s", &id, address) == 2)
		snprintf(req, sizeof(req), "add %llu %s", id, address);
	else if (sscanf(request, "member remove %llu", &id) == 1)
		snprintf(req, sizeof(req), "remove %llu", id);
	else if (sscanf(request, "leader transfer %llu", &id) == 1)
		snprintf(req, sizeof(req), "transfer %llu", id);
	else {
		writef(fd, "error: bad request\nexit 2\n");
		return;
	}
	if (ask_leader(src, req, answer, sizeof(answer)) != 0 ||
	    sscanf(answer, "ok index=%llu", &index) != 1) {
		writef(fd, "%s", answer);
		writef(fd, "exit 1\n");
		return;
	}
	if (req[0] == 'a') {
		writef(fd, "node %llu added as a learner (index %llu)\n", id,
		       index);
		status = follow_add(src, id, fd);
	} else if (req[0] == 'r') {
		status = follow_remove(src, id, removed_address, index, fd);
	} else {
		writef(fd, "leadership transfer from node %" PRIu64 " started\n",
		       old_leader);
		status = follow_transfer(src, id, old_leader, fd);
	}
	writef(fd, "exit %d\n", status);
}

/* ---- the transport follows the configuration ---- */

bool member_sync_peers(const struct control_source *src,
		       const struct raft_runtime_status *st)
{
	static uint64_t removed_at; /* our removal seen: the log's end then */
	bool self_removed = false, self_seen = false;

	for (uint32_t i = 0; i < st->conf.n; i++) {
		const struct raft_member *m = &st->conf.members[i];
		if (m->id == src->args->id) {
			self_seen = true;
			self_removed = m->role == RAFT_REMOVED;
			continue;
		}
		if (m->role == RAFT_REMOVED) {
			if (net_peer_remove(src->net, m->id) == 0)
				daemon_log(LOG_INFO, "node %" PRIu64 " was removed "
						     "from the cluster",
					   m->id);
		} else if (net_peer_add(src->net, m->id, m->address) == 0) {
			daemon_log(LOG_INFO, "node %" PRIu64 " (%s) joined the "
					     "cluster",
				   m->id, m->address);
		}
	}
	(void)self_seen;
	if (atomic_load(&told_removed))
		return true;
	if (!self_removed)
		return false;
	/* Stop once the removal is committed (a leader removing itself
	 * leads until then). */
	if (removed_at == 0)
		removed_at = st->raft.last_index;
	return st->raft.commit >= removed_at;
}
