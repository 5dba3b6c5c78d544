#ifndef TOOLS_CLUSTER_H
#define TOOLS_CLUSTER_H

/*
 * `raftfs cluster up|start|stop|down` (tools/cmd_cluster.c): a local cluster
 * of 1..7 nodes on 127.0.0.N:PORT in one directory. Private to tools/:
 *
 *   cluster_conf.c    the cluster's shape in DIR/cluster.conf, and its paths
 *   cluster_proc.c    processes (spawn, run with a deadline, is a pid a
 *                     node's serve), mounts (/proc/mounts, a stat with a
 *                     deadline, lazy unmount)
 *   cluster_status.c  `raftfs status --json` run and parsed
 *
 * Every wait here has a deadline; nothing uses system() or a shell.
 * Functions that can fail return 0 or a negative errno and, where they take
 * err, write one line there.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_MAX_NODES     7    /* 127.0.0.1 .. 127.0.0.7 */
#define CLUSTER_DEFAULT_NODES 3
#define CLUSTER_DEFAULT_PORT  7100
#define CLUSTER_OPTIONS_MAX   512

/* What DIR/cluster.conf records (docs/CLUSTER.md). */
struct cluster {
	char dir[PATH_MAX];                   /* absolute, no trailing '/' */
	unsigned nodes;                       /* 1..CLUSTER_MAX_NODES */
	unsigned port;                        /* 1..65535, every node's */
	char raftfs[PATH_MAX];                /* the binary that ran `up` */
	char options[CLUSTER_OPTIONS_MAX];    /* serve -o OPT,...; "" none */
};

/* ---- cluster_conf.c ---------------------------------------------------- */

/* Read DIR/cluster.conf into c (c->dir must be set). -ENOENT when there is
 * none; -EINVAL (with the line in err) when it is not one of ours. */
int cluster_conf_read(struct cluster *c, char *err, size_t err_size);
/* Write DIR/cluster.conf atomically (temporary file, fsync, rename). */
int cluster_conf_write(const struct cluster *c, char *err, size_t err_size);

/* DIR/nodeN, DIR/nodeN/LEAF (leaf may be NULL), DIR/mnt/N, DIR/certs. Paths
 * that do not fit are cut; cluster_conf_read refuses such a DIR first. */
void cluster_node_dir(const struct cluster *c, unsigned node, const char *leaf,
		      char *out, size_t out_size);
void cluster_mount_dir(const struct cluster *c, unsigned node, char *out,
		       size_t out_size);
void cluster_certs_dir(const struct cluster *c, char *out, size_t out_size);
/* "127.0.0.N:PORT" */
void cluster_address(const struct cluster *c, unsigned node, char *out,
		     size_t out_size);

/* mkdir -p with mode for the directories it creates. */
int cluster_mkdirs(const char *path, mode_t mode);

/* ---- cluster_proc.c ---------------------------------------------------- */

int64_t cluster_now_ms(void); /* CLOCK_MONOTONIC */
void cluster_sleep_ms(int ms);

/*
 * Start argv[0] with argv (execv; argv[0] may be "/proc/self/exe" through
 * exec_path), stdin from /dev/null, stdout and stderr into out_fd. Returns
 * the pid, or a negative errno.
 */
pid_t cluster_spawn(const char *exec_path, char *const argv[], int out_fd);

/*
 * Run exec_path with argv and wait at most timeout_ms; stdout into out
 * (NUL-terminated, cut to out_size - 1), stderr's first line into errline.
 * Returns the exit status (0..255), or -ETIMEDOUT (the child was killed),
 * or another negative errno when it could not run.
 */
int cluster_run(const char *exec_path, char *const argv[], int timeout_ms,
		char *out, size_t out_size, char *errline, size_t errline_size);

/* Is pid alive (not a zombie) and a `serve` whose --data is data_dir? */
bool cluster_pid_is_serve(pid_t pid, const char *data_dir);
/* The pid of node's running serve from DIR/nodeN/raftfs.pid, or 0 when the
 * file is missing, stale or names another process. */
pid_t cluster_node_pid(const struct cluster *c, unsigned node);
/* Pids of every running serve whose --data is DIR/node<something>, at most
 * max; returns how many. */
size_t cluster_find_serves(const struct cluster *c, pid_t *pids, size_t max);
bool cluster_pid_is_alive(pid_t pid);

/* Is path in /proc/mounts, and with which type ("" when not mounted)? */
bool cluster_mount_type(const char *path, char *type, size_t type_size);
/* Mounted with type fuse.raftfs? */
bool cluster_is_raftfs_mount(const char *path);
/* Mount points (any type) at or below prefix, at most max, each
 * PATH_MAX bytes; returns how many. */
size_t cluster_mounts_under(const char *prefix, char (*out)[PATH_MAX],
			    size_t max);
/* stat(path) in a child process, killed after timeout_ms: 0, -errno of
 * stat, or -ETIMEDOUT. */
int cluster_probe(const char *path, int timeout_ms);
/* fusermount3 -u -z path, or umount2(MNT_DETACH) when that fails. */
int cluster_unmount_lazy(const char *path);

/* ---- cluster_status.c -------------------------------------------------- */

#define CLUSTER_STATUS_MEMBERS 16

struct cluster_member {
	uint64_t id;
	char address[64];
	char role[16]; /* leader, follower, candidate, learner */
	bool reachable;
	bool has_applied; /* "applied" and "commit" were numbers */
	uint64_t applied;
	uint64_t commit;
};

/* The fields of `raftfs status --json` that the cluster commands use. */
struct cluster_status {
	bool has_leader;
	uint64_t leader; /* when has_leader */
	uint64_t term;
	uint32_t feature_level; /* the cluster's; 0 when not reported */
	size_t members_count; /* at most CLUSTER_STATUS_MEMBERS kept */
	struct cluster_member members[CLUSTER_STATUS_MEMBERS];
};

/* Parse one JSON object as `status --json` prints it; -EINVAL when it is
 * not JSON or lacks "leader", "term" or "members". */
int cluster_status_parse(const char *json, struct cluster_status *st);
/* Run `raftfs status --data DIR/nodeN --json` (at most timeout_ms) and
 * parse it. -ESRCH when status says the node is not running (exit 1). */
int cluster_status_query(const struct cluster *c, unsigned node,
			 int timeout_ms, struct cluster_status *st, char *err,
			 size_t err_size);

#endif
