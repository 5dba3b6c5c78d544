/*
 * `raftfs fsck --data DIR --resync` asks the next start to rebuild the
 * node's tree rather than trust its fs store (docs/DATA_DIR.md). The
 * daemon sets the damaged store aside (DIR/fs.resync), starts from an
 * empty one and replays its own log from index 1 through the runtime, the
 * same commands in the same order as every replica: the result is the
 * replicas' tree, nothing is patched locally. That needs the whole log:
 * when it was compacted, the old store is put back and the start refused
 * (a node that lost its log's beginning is replaced: member remove, then
 * add under a new id). The log itself is never touched, so the node's
 * votes and acknowledgements stay what they were.
 *
 * When the log was compacted (the node took or installed a snapshot) the
 * whole log is not there to replay: the node then starts with the empty
 * store and its runtime awaiting a snapshot (await_install: nothing is
 * applied, the node never campaigns), asks the leader to stream one
 * (ADMIN_KIND_SNAPSHOT), installs it like a lagging follower, and applies
 * its own log after it. The old store and the marker stay until the
 * install: a restart meanwhile starts the same way again. docs/FSCK.md
 * gives the safety argument.
 */

#define _XOPEN_SOURCE 700
#include "tools/daemon.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"
#include "raft/raft.h"

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int remove_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0
								      : -EIO;
}

int resync_begin(const char *data, char *err, size_t err_size)
{
	char marker[4200], fs[4200], aside[4200];

	snprintf(marker, sizeof(marker), "%s/RESYNC", data);
	if (access(marker, F_OK) != 0)
		return 0;
	snprintf(fs, sizeof(fs), "%s/fs", data);
	snprintf(aside, sizeof(aside), "%s/fs.resync", data);
	/* A resync interrupted before it finished left the old store aside
	 * and a partial new one: the old one stays, the new one goes. */
	if (access(aside, F_OK) == 0) {
		if (remove_tree(fs) != 0)
			return text_error(err, err_size, -EIO,
					  "resync: cannot remove %.300s", fs);
	} else if (access(fs, F_OK) == 0 && rename(fs, aside) != 0) {
		return text_error(err, err_size, -errno,
				  "resync: cannot move %.300s aside: %s", fs,
				  strerror(errno));
	}
	return 1;
}

int resync_finish(const char *data, bool rebuilt, char *err, size_t err_size)
{
	char marker[4200], fs[4200], aside[4200];

	snprintf(marker, sizeof(marker), "%s/RESYNC", data);
	snprintf(fs, sizeof(fs), "%s/fs", data);
	snprintf(aside, sizeof(aside), "%s/fs.resync", data);
	if (rebuilt) {
		if (remove_tree(aside) != 0 || unlink(marker) != 0)
			return text_error(err, err_size, -EIO,
					  "resync: cannot remove %.300s or its "
					  "marker",
					  aside);
		return 0;
	}
	/* Put the old store back; the marker stays for the operator. */
	if (remove_tree(fs) != 0 ||
	    (access(aside, F_OK) == 0 && rename(aside, fs) != 0))
		return text_error(err, err_size, -EIO,
				  "resync: cannot put %.300s back", aside);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void resync_snapshot_step(const struct control_source *src,
			  const struct raft_runtime_status *st, bool *pending,
			  uint64_t *asked_ms)
{
	const struct raft_member *leader = NULL;
	struct net_admin_msg req = {0}, resp;
	char err[256], answer[256];
	uint64_t now = now_ms();

	if (!*pending)
		return;
	if (!st->awaiting_install) {
		if (resync_finish(src->args->data, true, err, sizeof(err)) != 0)
			daemon_log(LOG_WARN, "%s", err);
		daemon_log(LOG_INFO, "resync: installed the leader's snapshot "
				     "(applied index %" PRIu64 "); the old "
				     "store is gone", st->applied_index);
		*pending = false;
		return;
	}
	if (*asked_ms != 0 && now - *asked_ms < 1000u)
		return;
	*asked_ms = now;
	for (uint32_t i = 0; i < st->conf.n; i++)
		if (st->conf.members[i].id == st->raft.leader)
			leader = &st->conf.members[i];
	if (leader == NULL || leader->id == src->args->id)
		return; /* no leader known yet: asked again in a second */
	req.kind = ADMIN_KIND_SNAPSHOT;
	req.request_id = now;
	req.payload = (const uint8_t *)"snapshot";
	req.payload_bytes = 8;
	if (control_admin_call(src, leader->address, &req, (uint8_t *)answer,
			       sizeof(answer) - 1, &resp, err,
			       sizeof(err)) != 0) {
		daemon_log(LOG_DEBUG, "resync: asking node %" PRIu64
				      " for a snapshot: %s", leader->id, err);
		return;
	}
	daemon_log(LOG_DEBUG, "resync: asked node %" PRIu64 " for a snapshot",
		   leader->id);
}

void resync_on_snapshot_request(const struct control_source *src,
				uint64_t conn_id, const struct net_identity *who,
				const struct net_admin_msg *req)
{
	struct net_admin_msg resp = {0};
	char text[128];
	int rc;

	/* Only a node asks, and only for itself. */
	if (who->role != NET_ROLE_NODE || who->node_id == 0)
		rc = -EPERM;
	else
		rc = raft_runtime_request_snapshot(src->rt, who->node_id);
	if (rc == 0)
		daemon_log(LOG_INFO, "node %" PRIu64 " resyncs: it asked for "
				     "a snapshot", who->node_id);
	if (rc == 0)
		snprintf(text, sizeof(text), "ok\n");
	else
		snprintf(text, sizeof(text), "error: %s\n", strerror(-rc));
	resp.kind = req->kind;
	resp.request_id = req->request_id;
	resp.payload = (const uint8_t *)text;
	resp.payload_bytes = (uint32_t)strlen(text);
	if (net_admin_reply(src->net, conn_id, &resp) != 0)
		daemon_log(LOG_DEBUG, "resync: admin answer dropped");
}
