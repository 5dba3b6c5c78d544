#ifndef TOOLS_DAEMON_H
#define TOOLS_DAEMON_H

/*
 * The pieces of `raftfs serve` (private to tools/): its arguments, its log,
 * its data dir and mount point, and the control socket. The daemon itself
 * (tools/serve.c) wires the Raft runtime, the transport, the fs store and
 * the FUSE session together; every rule of the algorithm and the
 * filesystem lives in raft/, net/ and fs/.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs/fs.h"
#include "net/net.h"
#include "raft/raft.h"

/* ---- arguments (tools/serve_args.c) ---- */

#define SERVE_TIMEOUT_DEFAULT_MS 10000u

struct serve_peer {
	uint64_t id;
	char address[RAFT_MAX_ADDRESS]; /* "host:port" */
};

struct serve_args {
	uint64_t id;
	const char *data;
	const char *mount;
	const char *listen;
	const char *certs;
	uint32_t n_peers; /* every member, this node included */
	struct serve_peer peers[RAFT_MAX_MEMBERS];
	bool bootstrap;
	bool join;
	bool foreground;     /* -f */
	int verbose;         /* -v: debug lines in the log */
	bool allow_other;    /* -o allow_other */
	bool fuse_debug;     /* -o debug: libfuse's request trace */
	uint32_t op_timeout_ms; /* -o timeout=SECONDS */
	uint32_t max_threads;   /* -o max_threads=N */
	bool cache_relaxed;       /* -o cache=relaxed (docs/FUSE.md) */
	uint32_t cache_timeout_s; /* -o cache_timeout=S; 0: the default */
	uint32_t lease_ms; /* -o lease=S (docs/LOCKS.md); 0: the default */
	/* -o snapshot_entries=N, -o snapshot_keep=N: the runtime's
	 * compaction policy (raft_runtime_options); has_* when given. */
	bool has_snapshot_entries, has_snapshot_keep;
	uint64_t snapshot_entries;
	uint64_t snapshot_keep;
	/* -o feature_level=N: the highest cluster feature level this node
	 * reports it supports (default FS_FEATURE_LEVEL): holds the
	 * cluster at N, e.g. while an older build may still come back. */
	uint32_t feature_level;
	/* -o restore=FILE: with --bootstrap and a new data dir, the tree
	 * starts as this backup (docs/OPERATIONS.md); "" when not given. */
	char restore[4096];
};

/* Parse serve's arguments (argv[0] is "serve"). 0, or -EINVAL with one
 * line in err (a usage error). Paths are not checked here. */
int serve_args_parse(int argc, char **argv, struct serve_args *a, char *err,
		     size_t err_size);

/* ---- text into a buffer (tools/text_buf.c) ---- */

struct text_buf {
	char *p;
	size_t size;
	size_t len; /* p[len] is NUL */
};

/* Append; what does not fit is cut (the text stays NUL-terminated). */
void text_printf(struct text_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A JSON string: quotes, backslashes and control bytes escaped, bytes
 * above 0x7e as \u00XX, so any name gives valid JSON. */
void text_json_str(struct text_buf *b, const char *s);
/* Write one line into err and return rc. */
int text_error(char *err, size_t size, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- the log (tools/daemon_log.c) ---- */

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Lines go to out (stderr, or the log file of a daemon) with a UTC
 * timestamp, the level and node=ID; lines above max_level are dropped. */
void daemon_log_init(FILE *out, uint64_t node, int max_level);
void daemon_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A log hook for the runtime and the transport: ctx NULL, or a label
 * printed before the line. */
void daemon_log_hook(void *ctx, int level, const char *line);

/* ---- the data dir (tools/data_dir.c, docs/DATA_DIR.md) ---- */

/* Create DIR (0700) if missing and flock DIR/LOCK; -EBUSY with the
 * holder's pid in err when another process holds it. *fd stays open for
 * the life of the process. */
int data_dir_lock(const char *dir, int *fd, char *err, size_t err_size);
/* Check DIR/node against cluster and node (another cluster or node:
 * -EEXIST), raise the epoch and write it durably; *epoch the new one. */
int data_dir_next_epoch(const char *dir, const char *cluster_id,
			uint64_t node, uint64_t *epoch, char *err,
			size_t err_size);
/* Write DIR/raftfs.pid (temp file, rename). */
int data_dir_write_pid(const char *dir, char *err, size_t err_size);
/* Bytes of the files under path (the log store's size for status). */
uint64_t data_dir_bytes(const char *path);

/* ---- rebuilding the tree from the log (tools/resync.c) ---- */

/* With DIR/RESYNC: set DIR/fs aside so the start opens an empty store;
 * returns 1 (a resync), 0 (none) or a negative errno with err. */
int resync_begin(const char *data, char *err, size_t err_size);
/* After the runtime was created: rebuilt (the whole log is there to
 * replay) drops the old store and the marker; otherwise the new store
 * (closed by the caller) goes and the old one comes back. */
int resync_finish(const char *data, bool rebuilt, char *err, size_t err_size);

/* A resync whose log was compacted: the node awaits a snapshot from the
 * leader (raft_runtime_options.await_install). Called by the monitor
 * every 200 ms with the runtime's status: asks the leader for one (at
 * most once a second); once installed drops the old store and the marker
 * and clears *pending. */
struct control_source;
struct raft_runtime_status;
void resync_snapshot_step(const struct control_source *src,
			  const struct raft_runtime_status *st, bool *pending,
			  uint64_t *asked_ms);
/* The leader's side: ADMIN_KIND_SNAPSHOT from node `who`: stream it a
 * snapshot; answers "ok" or "error: ...". */
struct net_identity;
struct net_admin_msg;
void resync_on_snapshot_request(const struct control_source *src,
				uint64_t conn_id, const struct net_identity *who,
				const struct net_admin_msg *req);

/* ---- the mount point (tools/mount_point.c) ---- */

/* Check mnt is a directory; unmount a dead FUSE mount left there by a
 * killed node (ENOTCONN); refuse a live mount (-EBUSY). One line in err. */
int mount_point_prepare(const char *mnt, char *err, size_t err_size);
/* Whether mnt is a mount point in this mount namespace. */
bool mount_point_is_mounted(const char *mnt);

/* ---- the mount guard (tools/mount_guard.c) ---- */

/* A child that aborts the FUSE connection at mnt when the daemon dies
 * without unmounting (docs/DAEMON.md). new: before the mount (resolves
 * mnt); start: right after the mount, from the main thread (records the
 * mount, forks); free: after the unmount of a clean stop (kills and reaps
 * the guard). One line in err. */
struct mount_guard;
int mount_guard_new(const char *mnt, struct mount_guard **out, char *err,
		    size_t err_size);
int mount_guard_start(struct mount_guard *g, char *err, size_t err_size);
void mount_guard_free(struct mount_guard *g);

/* ---- the control socket (tools/control.c) ---- */

/* What the control server asks the daemon for. */
struct fs_raft;

struct control_source {
	struct raft_runtime *rt;
	struct fs_raft *fr;     /* the filesystem's proposer and checks */
	struct net *net;
	const struct serve_args *args;
	const char *cluster_id;
	const char *(*state)(void *ctx); /* "mounted", "waiting ..." */
	void *ctx;
	struct fs_store *store; /* the feature level */
};

struct control;

/* Listen on DIR/control.sock (mode 0600, a stale one replaced) and serve
 * requests on a thread of its own. 0 or a negative errno with err. */
int control_start(const struct control_source *src, struct control **out,
		  char *err, size_t err_size);
void control_stop(struct control *c);
/* Carry out one control-socket request line and write its answer to fd
 * (member changes stream their progress). */
void control_answer(const struct control_source *src, const char *line,
		    int fd);

/* The admin requests a node answers (net's on_admin hook; ctx: the
 * struct control_source). */
void control_on_admin(void *ctx, uint64_t conn_id,
		      const struct net_identity *who,
		      const struct net_admin_msg *req);

/* Admin request kinds between nodes and from `status --connect`. */
enum {
	ADMIN_KIND_NODE_VIEW = 1,
	ADMIN_KIND_CHECK = 2,
	ADMIN_KIND_MEMBER = 3,
	ADMIN_KIND_STATUS = 4, /* payload "json" or "text": the cluster's */
	ADMIN_KIND_SNAPSHOT = 5, /* a resyncing node asks the leader for a
				    snapshot (tools/resync.c) */
	/* The administrator only: a control-socket request (member add |
	 * remove, leader transfer, snapshot), answered whole at its end. */
	ADMIN_KIND_CONTROL = 6,
};

/* This node's view as text lines "key=value" (tools/status_view.c);
 * returns the length (a NUL follows). */
size_t control_node_view(const struct control_source *src, char *buf,
			 size_t size);

/* The cluster's status as this node sees it, asking every other member
 * (up to 1.5 s): one JSON object or a table; returns the length. Not from
 * the transport's thread. */
size_t control_cluster_status(const struct control_source *src, bool json,
			      char *out, size_t size);

/* Answer an admin request through the transport, if it is still there
 * (the daemon's glue; any thread). */
int control_admin_reply(const struct control_source *src, uint64_t conn_id,
			const struct net_admin_msg *resp);
/* An admin request to a peer with this node's certificate, dialled from
 * its listen address (net_admin_call), within 1.5 s. */
int control_admin_call(const struct control_source *src, const char *address,
		       const struct net_admin_msg *req, uint8_t *buf,
		       size_t size, struct net_admin_msg *resp, char *err,
		       size_t err_size);

/* ---- the control socket's client (tools/control_client.c) ---- */

/* Send request (one line, without newline) to DIR/control.sock and read
 * the answer (NUL-terminated, free it) within timeout_ms. A node that is
 * not running: -ENOENT/-ECONNREFUSED. One line in err on failure. */
int control_request(const char *data, const char *request, int timeout_ms,
		    char **answer, size_t *len, char *err, size_t err_size);
/* Ask and print the answer on stdout; a failure or an "error: " answer
 * is one line on stderr ("raftfs WHAT: ..."). Returns 0 or 1 (the exit
 * status). */
int control_print(const char *what, const char *data, const char *request,
		  int timeout_ms);
/* The same, handing each piece of the answer to chunk as it arrives;
 * idle_timeout_ms bounds each wait for more. */
int control_request_stream(const char *data, const char *request,
			   int idle_timeout_ms,
			   void (*chunk)(void *ctx, const char *p, size_t n),
			   void *ctx, char *err, size_t err_size);

/* ---- the cluster's feature level (tools/feature_level.c) ---- */

/* On the leader, at most every 2 s: when every member (voters and
 * learners) answers that it supports a level above the cluster's, propose
 * the lowest of those through the log (FS_OP_FEATURE) and wait for it.
 * From the monitor thread. */
void feature_level_tick(const struct control_source *src);

/* The level node id at address says it supports (its view, over the
 * transport); 0 when it does not answer. */
uint32_t feature_level_of_node(const struct control_source *src,
			       uint64_t id, const char *address);

/* The level a node view (control_node_view's text) says its node
 * supports: 1 when it does not say (a build from before the gate). */
uint32_t feature_level_of_view(const char *view, size_t len);

/* ---- remote admin requests (tools/admin_remote.c) ---- */

/* Ask the node at address (TLS with CERTS/admin.crt, admin.key, ca.crt)
 * one admin request of kind with payload, within timeout_ms; a "busy"
 * node is asked again for up to 2 s. 0 with *answer (NUL-terminated,
 * free it), or a negative errno with one line in err. */
int admin_remote_call(const char *address, const char *certs, uint16_t kind,
		      const char *payload, uint32_t timeout_ms, char **answer,
		      size_t *len, char *err, size_t err_size);

/* ---- slow admin requests (tools/admin_worker.c) ---- */

/* A CHECK or MEMBER request from a peer: answered on a worker thread. */
void admin_on_slow_request(const struct control_source *src,
			   uint64_t conn_id, const struct net_admin_msg *req);
/* Wait until no such request is being answered (at stop, after the
 * transport is gone). */
void admin_workers_wait(void);

/* ---- membership and leadership (tools/membership.c) ---- */

/* On the leader: carry out "add ID ADDRESS", "remove ID" or "transfer
 * ID" after the safety checks; the answer is "ok index=N" or "error: ...".
 * Any thread but the transport's or the runtime's. */
size_t member_answer(const struct control_source *src, const char *request,
		     char *out, size_t size);
/* The control socket's "member add|remove ..." and "leader transfer ...":
 * find the leader, have it carry out the change, then follow it (catch-up,
 * promotion, commit, the new leader), writing progress lines to fd; the
 * last line is "exit N". */
void member_run(const struct control_source *src, const char *request,
		int fd);
/* The monitor's part: keep the transport's peers equal to the
 * configuration in force; true when this node was removed from it (and
 * the removal committed): it must stop. */
bool member_sync_peers(const struct control_source *src,
		       const struct raft_runtime_status *st);

/* ---- fsck --cluster (tools/cluster_check.c) ---- */

/* The replica's answer to a check query (text, see the file). With *fill
 * the store's hash is not computed yet: answer, then check_hash_fill. */
size_t check_answer(struct fs_raft *fr, const char *query, char *out,
		    size_t size, bool *fill);
void check_hash_fill(struct fs_raft *fr, const char *query);
/* What fsck --cluster prints (text or JSON) into its answer. */
struct cluster_report {
	struct text_buf out;
	bool json;
	uint32_t paths; /* differences reported for the current replica */
	uint32_t total; /* differences reported */
};
/*
 * Propose a check point and compare every member's state hash at it
 * (tools/cluster_check.c), printing the members and the differences
 * narrowed down to paths into rep (JSON: the object is opened and left
 * open inside its "differences" array). Returns 0 every replica
 * identical, 1 some differ, 3 some could not be checked, -1 the check
 * point did not commit (an "error: " line printed); *check_id and *index
 * the check point's id and applied index.
 */
int cluster_compare(const struct control_source *src,
		    struct cluster_report *rep, uint64_t *check_id,
		    uint64_t *index);
/* Run `fsck --cluster [--repair]` from this node
 * (tools/cluster_repair.c): the first line of out is
 * "exit N" (0 identical and structurally clean, or clean after the
 * repairs; 1 replicas differ, or structural problems found or left; 3
 * could not check all), then the report (a table, or one JSON object).
 * Returns the length. */
size_t control_cluster_check(const struct control_source *src, bool json,
			     bool repair, char *out, size_t size);

#endif
