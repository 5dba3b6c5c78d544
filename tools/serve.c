/*
 * raftfs serve: one node of a cluster. It wires the pieces together and
 * owns their order of start and stop; the rules live in the modules:
 *
 *   the log       raft/ runtime over DIR/log (its own driver, storage and
 *                 apply threads)
 *   the peers     net/ TLS transport on --listen (its I/O thread)
 *   the tree      fs/ store in DIR/fs, applied by the runtime's apply
 *                 thread through fs_raft's state machine
 *   the mount     fs/ FUSE session at --mount, proposing through fs_raft
 *   the admin     DIR/control.sock and the transport's admin requests
 *
 * Start: check everything that can be checked before forking (arguments,
 * certificates, mount point, the data dir's lock and identity), then
 * daemonize unless -f: the parent waits until the child mounted (exit 0),
 * failed (exit 1 with the child's one-line reason) or is still waiting
 * for its cluster after READY_WAIT_S (exit 0, saying so). A new cluster's
 * first leader formats the filesystem (INIT); the mount appears once this
 * node applied it.
 *
 * Stop: SIGTERM/SIGINT/SIGHUP unmount and stop cleanly; so does a mount
 * lost to `fusermount3 -u` from outside (reported), and a runtime that
 * stopped on a store error (reported with what to do).
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "net/net.h"
#include "tools/commands.h"

int cmd_serve(int argc, char **argv);

#define READY_WAIT_S 60
#define TICK_MS 20u
/* 240-480 ms (randomized in [12, 24) ticks): the failover time is mostly
 * this wait (docs/BENCHMARKS.md, "Failover"); 6 heartbeats of 40 ms fit
 * in the shortest, so a loaded machine still sends one in time. */
#define ELECTION_TICKS 12u
#define HEARTBEAT_TICKS 2u
#define CAPACITY_DEFAULT (1ull << 40)
#define INODES_DEFAULT (1ull << 32)

/* Everything one running node owns. */
struct node {
	const struct serve_args *args;
	char cluster_id[NET_CLUSTER_ID_CHARS + 1];
	uint64_t epoch;
	int ready_fd; /* the waiting parent's pipe, or -1 */

	struct fs_store *store;
	uint64_t restore_index; /* -o restore: the log starts after it */
	struct fs_raft *fr;
	struct fs_fuse *fuse;
	struct mount_guard *guard; /* aborts the mount if we die (-9) */
	struct control *control;
	struct control_source csrc;

	/* The transport and the runtime call each other: the glue lock
	 * lets either be taken away while the other still runs. */
	pthread_mutex_t glue;
	struct raft_runtime *rt; /* NULL once stopping */
	struct net *net;

	_Atomic(const char *) state; /* for status: what the mount does */
	atomic_bool failed;          /* the runtime stopped on an error */
	atomic_bool removed;         /* this node left the configuration */
	pthread_t monitor;
	atomic_bool monitor_stop;
	struct fs_lease_keeper *lease; /* renews, and expires as leader */
	/* A resync after compaction: the runtime awaits the leader's
	 * snapshot; the monitor asks for it (tools/resync.c). */
	bool await_install;
	bool resync_pending; /* monitor thread only, once started */
	uint64_t resync_asked_ms;
};

static volatile sig_atomic_t stop_signal;
/* The session a stop signal ends (fs_fuse_exit only raises a flag, as
 * libfuse's own handler does; the signal's EINTR wakes its loop). */
static struct fs_fuse *volatile signal_fuse;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
	if (signal_fuse != NULL)
		fs_fuse_exit(signal_fuse);
}

static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the parent of a daemon ---- */

/* Tell the waiting parent (once): "ready ..." or "error: ...". */
static void tell_parent(struct node *n, const char *msg)
{
	if (n->ready_fd < 0)
		return;
	if (write(n->ready_fd, msg, strlen(msg)) < 0)
		daemon_log(LOG_DEBUG, "the starting parent went away");
	close(n->ready_fd);
	n->ready_fd = -1;
}

/* Wait for the child's word; returns the exit status of serve. */
static int parent_wait(int fd, const struct serve_args *a, pid_t child)
{
	char msg[1024];
	size_t len = 0;
	time_t end = time(NULL) + READY_WAIT_S;

	while (len + 1 < sizeof(msg)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)(end - time(NULL));
		ssize_t r;
		if (left <= 0 || poll(&p, 1, left * 1000) <= 0) {
			printf("raftfs serve: node %" PRIu64 " started (pid %ld) "
			       "and is waiting for its cluster; see "
			       "%s/raftfs.log\n",
			       a->id, (long)child, a->data);
			return EXIT_OK;
		}
		r = read(fd, msg + len, sizeof(msg) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	msg[len] = '\0';
	if (strncmp(msg, "ready", 5) == 0) {
		printf("raftfs serve: node %" PRIu64 " mounted at %s (pid %ld, "
		       "log %s/raftfs.log)\n",
		       a->id, a->mount, (long)child, a->data);
		return EXIT_OK;
	}
	if (strncmp(msg, "error: ", 7) == 0) {
		fprintf(stderr, "raftfs serve: %s", msg + 7);
		return EXIT_FAIL;
	}
	fprintf(stderr, "raftfs serve: node %" PRIu64 " exited while starting; "
			"see %s/raftfs.log\n",
		a->id, a->data);
	return EXIT_FAIL;
}

/* Fork: the parent waits (and exits), the child goes on as the daemon
 * with its stdio on DIR/raftfs.log. Returns -1 in the parent (after
 * setting *status), 0 in the child. */
static int daemonize(struct node *n, int *status)
{
	char path[4200];
	int p[2], log, nul;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "raftfs serve: pipe: %s\n", strerror(errno));
		*status = EXIT_FAIL;
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "raftfs serve: fork: %s\n", strerror(errno));
		*status = EXIT_FAIL;
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		*status = parent_wait(p[0], n->args, pid);
		close(p[0]);
		return -1;
	}
	close(p[0]);
	n->ready_fd = p[1];
	setsid();
	snprintf(path, sizeof(path), "%s/raftfs.log", n->args->data);
	log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (log >= 0 && nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(log, STDOUT_FILENO);
		dup2(log, STDERR_FILENO);
	}
	if (log >= 0)
		close(log);
	if (nul >= 0)
		close(nul);
	return 0;
}

/* ---- glue between the transport and the runtime ---- */

static int glue_send(void *ctx, const struct raft_message *m)
{
	struct node *n = ctx;
	struct net *net;

	pthread_mutex_lock(&n->glue);
	net = n->net;
	pthread_mutex_unlock(&n->glue);
	/* The runtime stops (and with it every send) before the transport
	 * goes away. */
	return net != NULL ? net_send(net, m, NULL, NULL) : -ENOTCONN;
}

static int glue_send_chunk(void *ctx, const struct raft_chunk *c)
{
	struct node *n = ctx;
	struct net *net;

	pthread_mutex_lock(&n->glue);
	net = n->net;
	pthread_mutex_unlock(&n->glue);
	return net != NULL ? net_send_chunk(net, c) : -ENOTCONN;
}

static void glue_on_chunk(void *ctx, const struct raft_chunk *c)
{
	struct node *n = ctx;

	pthread_mutex_lock(&n->glue);
	if (n->rt != NULL)
		raft_runtime_receive_chunk(n->rt, c);
	pthread_mutex_unlock(&n->glue);
}

static void glue_on_raft(void *ctx, const struct raft_message *m)
{
	struct node *n = ctx;

	pthread_mutex_lock(&n->glue);
	if (n->rt != NULL)
		raft_runtime_receive(n->rt, m);
	pthread_mutex_unlock(&n->glue);
}

static void glue_on_admin(void *ctx, uint64_t conn_id,
			  const struct net_identity *who,
			  const struct net_admin_msg *req)
{
	struct node *n = ctx;

	pthread_mutex_lock(&n->glue);
	if (n->rt != NULL && n->net != NULL)
		control_on_admin(&n->csrc, conn_id, who, req);
	pthread_mutex_unlock(&n->glue);
}

static void glue_on_peer(void *ctx, uint64_t peer, bool up)
{
	(void)ctx;
	daemon_log(up ? LOG_INFO : LOG_WARN, "peer %" PRIu64 " %s", peer,
		   up ? "connected" : "lost");
}

static void glue_net_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	daemon_log_hook(NULL, level, line);
}

int control_admin_reply(const struct control_source *src, uint64_t conn_id,
			const struct net_admin_msg *resp)
{
	struct node *n = src->ctx;
	int rc = -ENOENT;

	pthread_mutex_lock(&n->glue);
	if (n->net != NULL)
		rc = net_admin_reply(n->net, conn_id, resp);
	pthread_mutex_unlock(&n->glue);
	return rc;
}

static const char *node_state(void *ctx)
{
	struct node *n = ctx;
	return atomic_load(&n->state);
}

/* ---- start ---- */

static int open_runtime(struct node *n, char *err, size_t size)
{
	const struct serve_args *a = n->args;
	struct raft_runtime_options o;
	char logdir[4200];
	int rc;

	snprintf(logdir, sizeof(logdir), "%s/log", a->data);
	raft_runtime_options_default(&o, a->id);
	o.dir = logdir;
	o.cluster_id = n->cluster_id;
	o.bootstrap = a->bootstrap;
	o.bootstrap_index = n->restore_index;
	o.conf.n = a->n_peers;
	for (uint32_t i = 0; i < a->n_peers; i++) {
		o.conf.members[i].id = a->peers[i].id;
		o.conf.members[i].role = RAFT_VOTER;
		snprintf(o.conf.members[i].address, RAFT_MAX_ADDRESS, "%s",
			 a->peers[i].address);
	}
	o.tick_ms = TICK_MS;
	o.raft.election_ticks = ELECTION_TICKS;
	o.raft.heartbeat_ticks = HEARTBEAT_TICKS;
	o.applied_index = fs_store_applied_index(n->store);
	o.await_install = n->await_install;
	o.transport.send = glue_send;
	o.transport.send_chunk = glue_send_chunk;
	o.transport.ctx = n;
	if (a->has_snapshot_entries)
		o.snapshot_entries = a->snapshot_entries;
	if (a->has_snapshot_keep)
		o.snapshot_keep_entries = a->snapshot_keep;
	fs_raft_fsm(n->fr, &o.fsm);
	o.log = daemon_log_hook;
	o.log_ctx = NULL; /* its lines name the node already */
	rc = raft_runtime_create(&o, &n->rt, err, size);
	return rc;
}

static int open_net(struct node *n, char *err, size_t size)
{
	const struct serve_args *a = n->args;
	char ca[4200], crt[4200], key[4200];
	struct net_options o;
	struct net *net = NULL;
	int rc;

	net_options_default(&o, a->id);
	snprintf(ca, sizeof(ca), "%s/ca.crt", a->certs);
	snprintf(crt, sizeof(crt), "%s/node%" PRIu64 ".crt", a->certs, a->id);
	snprintf(key, sizeof(key), "%s/node%" PRIu64 ".key", a->certs, a->id);
	o.listen = a->listen;
	o.ca_file = ca;
	o.cert_file = crt;
	o.key_file = key;
	for (uint32_t i = 0; i < a->n_peers; i++) {
		if (a->peers[i].id == a->id)
			continue;
		o.peers[o.n_peers].id = a->peers[i].id;
		memcpy(o.peers[o.n_peers].address, a->peers[i].address,
		       RAFT_MAX_ADDRESS);
		o.n_peers++;
	}
	o.on_raft = glue_on_raft;
	o.on_chunk = glue_on_chunk;
	o.on_admin = glue_on_admin;
	o.on_peer = glue_on_peer;
	o.log = glue_net_log;
	o.ctx = n;
	rc = net_create(&o, &net, err, size);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&n->glue);
	n->net = net;
	n->csrc.net = net;
	pthread_mutex_unlock(&n->glue);
	return 0;
}

/* The certificates name this node of one cluster: its id. */
static int read_identity(struct node *n, char *err, size_t size)
{
	const struct serve_args *a = n->args;
	struct net_identity id;
	char crt[4200];
	int rc;

	snprintf(crt, sizeof(crt), "%s/node%" PRIu64 ".crt", a->certs, a->id);
	if (access(crt, R_OK) != 0) {
		snprintf(err, size,
			 "no certificate for node %" PRIu64 " in %s (make one "
			 "with 'raftfs certs add --dir %s --node %" PRIu64 "')",
			 a->id, a->certs, a->certs, a->id);
		return -ENOENT;
	}
	rc = net_cert_identity(crt, &id, err, size);
	if (rc != 0)
		return rc;
	if (id.role != NET_ROLE_NODE || id.node_id != a->id) {
		snprintf(err, size, "%.300s does not name node %" PRIu64, crt,
			 a->id);
		return -EINVAL;
	}
	memcpy(n->cluster_id, id.cluster_id, sizeof(n->cluster_id));
	return 0;
}

/*
 * The fs store must be able to catch up from the log: its applied index
 * at or after the log's compaction point (else the start is refused). A
 * resync (an empty store) replays the whole log; when its beginning is
 * gone the runtime is opened again awaiting a snapshot from the leader.
 */
static int check_replayable(struct node *n, bool resync, char *err,
			    size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	uint64_t applied = fs_store_applied_index(n->store);
	bool ok;
	int rc = 0;

	if (st == NULL)
		return -ENOMEM;
	raft_runtime_status_get(n->rt, st);
	/* The runtime replays from the store's applied index: entries the
	 * log still holds, and never below its latest snapshot (the core
	 * counts everything up to it as applied). */
	ok = applied + 1 >= st->log_first_index &&
	     applied >= st->snapshot_index;
	if (resync && !ok) {
		/* The whole log is not there to replay: the tree comes from
		 * a snapshot of the leader's (docs/FSCK.md). The old store
		 * and the marker stay until it is installed. */
		raft_runtime_destroy(n->rt);
		n->rt = NULL;
		n->await_install = true;
		rc = open_runtime(n, err, size);
		if (rc == 0) {
			n->resync_pending = true;
			daemon_log(LOG_INFO, "resync: the log was compacted "
					     "(snapshot at %" PRIu64 "); waiting "
					     "for a snapshot from the leader (this "
					     "node does not campaign until it is "
					     "installed)",
				   st->snapshot_index);
		}
		free(st);
		return rc;
	}
	if (resync) {
		rc = resync_finish(n->args->data, true, err, size);
		if (rc == 0)
			daemon_log(LOG_INFO, "resync: rebuilding the tree from "
					     "the log (%" PRIu64 " entries)",
				   st->raft.last_index);
	}
	if (rc == 0 && !ok) {
		snprintf(err, size,
			 "%s: the log was compacted (snapshot at %" PRIu64
			 ", first entry %" PRIu64 ") but the fs store has "
			 "applied only %" PRIu64 "; rebuild its tree from the "
			 "cluster: 'raftfs fsck --data %.200s --resync', then "
			 "start it",
			 "cannot start", st->snapshot_index,
			 st->log_first_index, applied, n->args->data);
		rc = -EUCLEAN;
	}
	free(st);
	return rc;
}

/*
 * -o restore=FILE with --bootstrap: a data dir without a log gets the
 * backup's tree (validated whole before it is switched in) and the new
 * log starts after its index. A data dir with a log ignores the option,
 * like --bootstrap (so `cluster start`'s --join with the option kept in
 * cluster.conf is fine); a new one with --join is refused. A store restored by a start that then died before
 * its log was created is used as it is.
 */
static int restore_backup(struct node *n, char *err, size_t size)
{
	const struct serve_args *a = n->args;
	struct fs_backup_info info;
	char logdir[4200];
	struct stat sb;
	int rc;

	if (a->restore[0] == '\0')
		return 0;
	snprintf(logdir, sizeof(logdir), "%s/log", a->data);
	if (stat(logdir, &sb) == 0) {
		daemon_log(LOG_INFO, "restore: %s holds a log already; "
				     "-o restore ignored",
			   a->data);
		return 0;
	}
	if (!a->bootstrap) {
		snprintf(err, size, "-o restore starts a new cluster: it "
				    "needs --bootstrap (the other members "
				    "--join)");
		return -EINVAL;
	}
	if (fs_store_is_formatted(n->store)) {
		n->restore_index = fs_store_applied_index(n->store);
		daemon_log(LOG_WARN, "restore: the fs store was restored "
				     "before (index %" PRIu64 "); starting from "
				     "it",
			   n->restore_index);
		return 0;
	}
	rc = fs_backup_restore(n->store, a->restore, &info, err, size);
	if (rc != 0)
		return rc;
	n->restore_index = info.index;
	daemon_log(LOG_INFO, "restored %s: the tree at index %" PRIu64
			     " (%" PRIu64 " bytes); the new cluster's log "
			     "starts after it",
		   a->restore, info.index, info.bytes);
	return 0;
}

/* ---- running ---- */

/* Watch the runtime: a node that stopped on an error ends the mount. */
static void *monitor_main(void *arg)
{
	struct node *n = arg;
	struct raft_runtime_status *st = malloc(sizeof(*st));

	while (st != NULL && !atomic_load(&n->monitor_stop)) {
		struct timespec ts = {0, 200 * 1000 * 1000};
		raft_runtime_status_get(n->rt, st);
		if (st->failed == 0)
			resync_snapshot_step(&n->csrc, st, &n->resync_pending,
					     &n->resync_asked_ms);
		if (st->conf.n > 0 && st->failed == 0 &&
		    member_sync_peers(&n->csrc, st)) {
			daemon_log(LOG_ERROR, "this node was removed from the "
					      "cluster; stopping its mount (its "
					      "id may not return: add a new "
					      "node with a new id)");
			atomic_store(&n->removed, true);
			kill(getpid(), SIGTERM);
			break;
		}
		if (st->failed == 0)
			feature_level_tick(&n->csrc);
		if (st->failed != 0) {
			daemon_log(LOG_ERROR, "the node stopped: %s", st->error);
			atomic_store(&n->failed, true);
			/* libfuse's handler ends the loop (fs_fuse_run); the
			 * format wait sees the flag. */
			kill(getpid(), SIGTERM);
			break;
		}
		nanosleep(&ts, NULL);
	}
	free(st);
	return NULL;
}

/* Wait until the fs store is formatted; the leader of a new cluster
 * formats it. 0, or -EINTR (stop signal), -EIO (the node failed). */
static int wait_formatted(struct node *n)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct fs_proposer p;
	bool said = false;
	int rc = 0;

	if (st == NULL)
		return -ENOMEM;
	fs_raft_proposer(n->fr, &p);
	while (!fs_store_is_formatted(n->store)) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		if (stop_signal != 0 || atomic_load(&n->failed)) {
			rc = atomic_load(&n->failed) ? -EIO : -EINTR;
			break;
		}
		raft_runtime_status_get(n->rt, st);
		/* A leader holds every committed entry; once it applied them
		 * all and the tree is still not formatted, the log has no
		 * INIT yet. A second INIT (a leader change in between) is
		 * answered EEXIST and changes nothing. */
		if (st->raft.state == RAFT_LEADER &&
		    st->applied_index >= st->raft.commit) {
			struct fs_format_options fo;
			memset(&fo, 0, sizeof(fo));
			if (getrandom(fo.fs_id, sizeof(fo.fs_id), 0) !=
			    (ssize_t)sizeof(fo.fs_id))
				memcpy(fo.fs_id, n->cluster_id, sizeof(fo.fs_id));
			fo.capacity_bytes = CAPACITY_DEFAULT;
			fo.max_inodes = INODES_DEFAULT;
			fo.mode = 0755;
			rc = fs_format(&p, &fo);
			if (rc == 0)
				daemon_log(LOG_INFO, "formatted a new filesystem");
			rc = 0;
		} else if (!said) {
			daemon_log(LOG_INFO, "waiting for the cluster (leader, "
					     "or this node to be added)");
			said = true;
		}
		nanosleep(&ts, NULL);
	}
	free(st);
	return rc;
}

/* For the lease keeper: whether this node leads (as of the driver's last
 * round). */
static bool node_is_leader(void *ctx)
{
	struct node *n = ctx;
	struct raft_runtime_status *st = malloc(sizeof(*st));
	bool yes = false;

	if (st != NULL) {
		raft_runtime_status_get(n->rt, st);
		yes = st->raft.state == RAFT_LEADER;
	}
	free(st);
	return yes;
}

static void stop_node(struct node *n)
{
	struct raft_runtime *rt;
	struct net *net;

	atomic_store(&n->state, "stopping");
	/* Before the runtime goes: it answers the keeper's proposals. */
	fs_lease_keeper_stop(n->lease);
	n->lease = NULL;
	if (n->fuse != NULL) {
		/* Unmounts; waits for the answers still due, which need
		 * the runtime. */
		fs_fuse_destroy(n->fuse);
		n->fuse = NULL;
	}
	/* After the unmount: a stop that hangs in it stays guarded. */
	mount_guard_free(n->guard);
	n->guard = NULL;
	control_stop(n->control);
	n->control = NULL;
	if (n->monitor) {
		atomic_store(&n->monitor_stop, true);
		pthread_join(n->monitor, NULL);
	}
	pthread_mutex_lock(&n->glue);
	rt = n->rt;
	n->rt = NULL; /* no more deliveries */
	pthread_mutex_unlock(&n->glue);
	raft_runtime_destroy(rt);
	pthread_mutex_lock(&n->glue);
	net = n->net;
	n->net = NULL;
	pthread_mutex_unlock(&n->glue);
	net_destroy(net);
	/* No new check queries now: wait for those being answered. */
	admin_workers_wait();
	fs_raft_destroy(n->fr);
	n->fr = NULL;
	if (n->store != NULL) {
		int rc = fs_store_sync(n->store);
		if (rc != 0)
			daemon_log(LOG_WARN, "fs store sync at stop: %s",
				   strerror(-rc));
		fs_store_close(n->store);
		n->store = NULL;
	}
}

/* The daemon proper, after the fork. Returns the exit status. */
static int run_node(struct node *n)
{
	const struct serve_args *a = n->args;
	struct fs_fuse_config fc;
	struct fs_proposer p;
	char err[512], path[4200], msg[600];
	int rc, resync, status = EXIT_OK;

	resync = resync_begin(a->data, err, sizeof(err));
	if (resync < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/fs", a->data);
	rc = fs_store_open(path, &n->store);
	if (rc != 0) {
		snprintf(err, sizeof(err),
			 "cannot open the fs store %.200s: %s (check it with "
			 "'raftfs fsck --data %.100s')",
			 path, strerror(-rc), a->data);
		goto fail;
	}
	rc = fs_raft_create(n->store, a->id, n->epoch, a->op_timeout_ms,
			    &n->fr);
	if (rc != 0) {
		snprintf(err, sizeof(err), "%s", strerror(-rc));
		goto fail;
	}
	rc = restore_backup(n, err, sizeof(err));
	if (rc != 0)
		goto fail;
	rc = open_runtime(n, err, sizeof(err));
	if (rc != 0)
		goto fail;
	rc = check_replayable(n, resync == 1, err, sizeof(err));
	if (rc != 0)
		goto fail;
	n->csrc = (struct control_source){n->rt, n->fr, NULL, a,
					  n->cluster_id, node_state, n,
					  n->store};
	rc = open_net(n, err, sizeof(err));
	if (rc != 0)
		goto fail;
	fs_raft_attach(n->fr, n->rt);
	rc = raft_runtime_start(n->rt);
	if (rc != 0) {
		snprintf(err, sizeof(err), "cannot start the runtime: %s",
			 strerror(-rc));
		goto fail;
	}
	rc = pthread_create(&n->monitor, NULL, monitor_main, n);
	if (rc != 0) {
		n->monitor = 0;
		snprintf(err, sizeof(err), "cannot start a thread: %s",
			 strerror(rc));
		goto fail;
	}
	rc = control_start(&n->csrc, &n->control, err, sizeof(err));
	if (rc != 0)
		goto fail;
	daemon_log(LOG_INFO, "started: cluster %s, listening on %s, epoch %" PRIu64,
		   n->cluster_id, a->listen, n->epoch);

	rc = wait_formatted(n);
	if (rc == -EINTR) {
		daemon_log(LOG_INFO, "stop signal before mounting; stopping");
		tell_parent(n, "error: stopped before the mount was ready\n");
		stop_node(n);
		return EXIT_OK;
	}
	if (rc != 0) {
		snprintf(err, sizeof(err), "the node stopped before mounting; "
					   "see %s/raftfs.log", a->data);
		goto fail;
	}
	memset(&fc, 0, sizeof(fc));
	fc.mountpoint = a->mount;
	fc.op_timeout_ms = a->op_timeout_ms;
	fc.max_threads = a->max_threads;
	fc.allow_other = a->allow_other;
	fc.cache_relaxed = a->cache_relaxed;
	fc.cache_timeout_s = a->cache_timeout_s;
	fc.debug = a->fuse_debug;
	fc.log = daemon_log_hook;
	fs_raft_proposer(n->fr, &p);
	if (mount_guard_new(a->mount, &n->guard, err, sizeof(err)) != 0)
		goto fail;
	rc = fs_fuse_mount(n->store, &p, &fc, &n->fuse);
	if (rc != 0) {
		snprintf(err, sizeof(err), "cannot mount %s: %s", a->mount,
			 strerror(-rc));
		goto fail;
	}
	/* The main thread forks it: the thread whose death it watches. */
	if (mount_guard_start(n->guard, err, sizeof(err)) != 0)
		goto fail;
	atomic_store(&n->state, "mounted");
	daemon_log(LOG_INFO, "mounted %s", a->mount);
	{
		struct fs_lease_options lo = {.lease_ms = a->lease_ms,
					      .is_leader = node_is_leader,
					      .ctx = n,
					      .log = daemon_log_hook};

		rc = fs_lease_keeper_start(n->store, &p, &lo, &n->lease);
		if (rc != 0) {
			snprintf(err, sizeof(err),
				 "cannot start the lease keeper: %s",
				 strerror(-rc));
			goto fail;
		}
	}
	snprintf(msg, sizeof(msg), "ready\n");
	tell_parent(n, msg);

	/* Our handlers stay (libfuse installs its own only over SIG_DFL):
	 * a signal from now on ends the loop; one that came while mounting
	 * is seen here. */
	signal_fuse = n->fuse;
	if (stop_signal == 0)
		rc = fs_fuse_run(n->fuse, false);
	signal_fuse = NULL;
	if (atomic_load(&n->failed)) {
		status = EXIT_FAIL;
	} else if (stop_signal == 0 && !mount_point_is_mounted(a->mount)) {
		daemon_log(LOG_ERROR, "the mount %s was unmounted from outside; "
				      "stopping the node",
			   a->mount);
		status = EXIT_FAIL;
	} else {
		daemon_log(LOG_INFO, "stop requested; unmounting %s", a->mount);
	}
	if (rc < 0)
		daemon_log(LOG_WARN, "the FUSE loop ended with %s",
			   strerror(-rc));
	stop_node(n);
	daemon_log(LOG_INFO, "stopped");
	return status;

fail:
	daemon_log(LOG_ERROR, "%s", err);
	snprintf(msg, sizeof(msg), "error: %s\n", err);
	tell_parent(n, msg);
	stop_node(n);
	if (n->ready_fd < 0 && n->args->foreground)
		fprintf(stderr, "raftfs serve: %s\n", err);
	return EXIT_FAIL;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_args a;
	struct node n;
	char err[512], pidpath[4200];
	int lock_fd = -1, rc, status;

	rc = serve_args_parse(argc, argv, &a, err, sizeof(err));
	if (rc != 0) {
		/* One line: what is wrong, and where the usage is. */
		fprintf(stderr, "raftfs serve: %s; usage: raftfs serve --id ID "
				"--data DIR --mount MNT --listen HOST:PORT "
				"--peers ID=HOST:PORT,... --certs DIR "
				"(--bootstrap | --join) [-f] [-v] [-o OPT,...]\n",
			err);
		return EXIT_USAGE;
	}
	memset(&n, 0, sizeof(n));
	n.args = &a;
	n.ready_fd = -1;
	pthread_mutex_init(&n.glue, NULL);
	atomic_init(&n.state, "starting");
	rc = read_identity(&n, err, sizeof(err));
	if (rc == 0)
		rc = mount_point_prepare(a.mount, err, sizeof(err));
	if (rc == 0)
		rc = data_dir_lock(a.data, &lock_fd, err, sizeof(err));
	if (rc == 0)
		rc = data_dir_next_epoch(a.data, n.cluster_id, a.id, &n.epoch,
					 err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "raftfs serve: %s\n", err);
		if (lock_fd >= 0)
			close(lock_fd);
		return EXIT_FAIL;
	}
	if (!a.foreground && daemonize(&n, &status) < 0)
		return status; /* the parent */
	catch_stop_signals();
	daemon_log_init(stderr, a.id, a.verbose ? LOG_DEBUG : LOG_INFO);
	if (data_dir_write_pid(a.data, err, sizeof(err)) != 0)
		daemon_log(LOG_WARN, "%s", err);
	status = run_node(&n);
	snprintf(pidpath, sizeof(pidpath), "%s/raftfs.pid", a.data);
	unlink(pidpath);
	close(lock_fd);
	return status;
}
