/*
 * raftfs cluster up|start|stop|down: a local cluster of 1..7 nodes on one
 * machine (../shared/DESIGN.md "Command-line contract"; docs/CLUSTER.md).
 * Node N listens on 127.0.0.N:PORT, keeps its data in DIR/nodeN and mounts
 * at DIR/mnt/N; the certificates are DIR/certs and the cluster's shape is
 * DIR/cluster.conf. Each node is a `raftfs serve` started from this very
 * binary (/proc/self/exe); this file only decides what to start and stop
 * and waits, with a deadline, until it happened.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/fs.h"
#include "net/net.h"
#include "tools/cluster.h"
#include "tools/commands.h"

int cmd_cluster(int argc, char **argv);

/* How long each step may take. serve's foreground returns at the latest
 * after 60 s ("started, waiting for the cluster"). */
enum {
	SERVE_RETURN_MS = 90 * 1000,
	READY_MS = 60 * 1000,
	START_READY_MS = 30 * 1000,
	STOP_MS = 20 * 1000,
	KILL_MS = 5 * 1000,
	DEAD_MOUNT_GRACE_MS = 2 * 1000,
	STATUS_MS = 5 * 1000,
	PROBE_MS = 5 * 1000,
	POLL_MS = 100,
};

static const char *const usages[][2] = {
	{"up", "raftfs cluster up --dir DIR [--nodes N] [--port P] "
	       "[-o OPT,...]"},
	{"start", "raftfs cluster start --dir DIR --node N"},
	{"stop", "raftfs cluster stop --dir DIR --node N"},
	{"down", "raftfs cluster down --dir DIR"},
	{"add", "raftfs cluster add --dir DIR"},
};

/* The path of this binary, for cluster.conf and serve's argv[0]. */
static char self_path[PATH_MAX];

static const char *usage_of(const char *verb)
{
	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
		if (verb != NULL && !strcmp(usages[i][0], verb))
			return usages[i][1];
	}
	return "raftfs cluster up|start|stop|down|add --dir DIR ...";
}

__attribute__((format(printf, 2, 3))) static int
usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "raftfs cluster%s%s: ", verb ? " " : "",
		verb ? verb : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (usage: %s)\n", usage_of(verb));
	return EXIT_USAGE;
}

__attribute__((format(printf, 2, 3))) static int
failure(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "raftfs cluster %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

/* snprintf that may cut: messages and paths here are bounded by their
 * buffers on purpose (vsnprintf keeps -Wformat-truncation quiet). */
__attribute__((format(printf, 3, 4))) static void
say(char *out, size_t out_size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, out_size, fmt, ap);
	va_end(ap);
}

struct args {
	const char *verb;
	const char *dir;
	const char *nodes;
	const char *port;
	const char *node;
	const char *options;
};

/* A decimal in lo..hi, the whole string. */
static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

/* serve -o takes OPT[=VAL],...: no blanks, quotes or control bytes. */
static bool options_ok(const char *s)
{
	if (s[0] == '\0' || strlen(s) >= CLUSTER_OPTIONS_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' ||
		    *p == '\\')
			return false;
	}
	return true;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	if (argc < 2)
		return usage_error(NULL, "needs an action");
	a->verb = argv[1];
	if (strcmp(a->verb, "up") && strcmp(a->verb, "start") &&
	    strcmp(a->verb, "stop") && strcmp(a->verb, "down") &&
	    strcmp(a->verb, "add")) {
		const char *verb = a->verb;

		a->verb = NULL;
		return usage_error(NULL, "unknown action '%s'", verb);
	}
	bool up = !strcmp(a->verb, "up");
	bool one = !strcmp(a->verb, "start") || !strcmp(a->verb, "stop");
	for (int i = 2; i < argc; i += 2) {
		const char *flag = argv[i], **slot = NULL;

		if (!strcmp(flag, "--dir"))
			slot = &a->dir;
		else if (up && !strcmp(flag, "--nodes"))
			slot = &a->nodes;
		else if (up && !strcmp(flag, "--port"))
			slot = &a->port;
		else if (up && !strcmp(flag, "-o"))
			slot = &a->options;
		else if (one && !strcmp(flag, "--node"))
			slot = &a->node;
		else
			return usage_error(a->verb, "unknown option '%s'",
					   flag);
		if (i + 1 >= argc)
			return usage_error(a->verb, "%s needs a value", flag);
		if (*slot != NULL)
			return usage_error(a->verb, "%s given twice", flag);
		*slot = argv[i + 1];
	}
	if (a->dir == NULL || a->dir[0] == '\0')
		return usage_error(a->verb, "--dir DIR is required");
	if (one && a->node == NULL)
		return usage_error(a->verb, "--node N is required");
	if (a->nodes != NULL) {
		unsigned n;

		if (!parse_uint(a->nodes, 1, CLUSTER_MAX_NODES, &n))
			return usage_error(a->verb,
					   "--nodes must be a number in 1..%d "
					   "(node N listens on 127.0.0.N)",
					   CLUSTER_MAX_NODES);
	}
	if (a->port != NULL) {
		unsigned p;

		if (!parse_uint(a->port, 1, 65535, &p))
			return usage_error(a->verb,
					   "--port must be a number in "
					   "1..65535");
	}
	if (a->node != NULL) {
		unsigned n;

		if (!parse_uint(a->node, 1, CLUSTER_MAX_NODES, &n))
			return usage_error(a->verb,
					   "--node must be a number in 1..%d",
					   CLUSTER_MAX_NODES);
	}
	if (a->options != NULL && !options_ok(a->options))
		return usage_error(a->verb,
				   "-o takes OPT[=VALUE],... without blanks "
				   "or quotes");
	return EXIT_OK;
}

/* Make dir absolute (it must exist) into c->dir. */
static int set_dir(struct cluster *c, const char *dir)
{
	char real[PATH_MAX];

	if (realpath(dir, real) == NULL)
		return -errno;
	/* Room for "/nodeN/raftfs.log" and friends. */
	if (strlen(real) + 64 >= sizeof(c->dir))
		return -ENAMETOOLONG;
	snprintf(c->dir, sizeof(c->dir), "%s", real);
	return 0;
}

/* The cluster recorded in DIR, for start, stop and down. */
static int load(const struct args *a, struct cluster *c)
{
	char err[PATH_MAX + 128];
	int rc;

	memset(c, 0, sizeof(*c));
	rc = set_dir(c, a->dir);
	if (rc < 0)
		return failure(a->verb, "no cluster in %s (%s); make one with "
					"'raftfs cluster up --dir %s'",
			       a->dir, strerror(-rc), a->dir);
	rc = cluster_conf_read(c, err, sizeof(err));
	if (rc == -ENOENT)
		return failure(a->verb,
			       "no cluster in %s (no %s/cluster.conf); make "
			       "one with 'raftfs cluster up --dir %s'",
			       c->dir, c->dir, a->dir);
	if (rc < 0)
		return failure(a->verb, "%s", err);
	if (a->node != NULL) {
		unsigned n = (unsigned)atoi(a->node);

		if (n > c->nodes)
			return failure(a->verb,
				       "the cluster in %s has nodes 1..%u, "
				       "not %u", c->dir, c->nodes, n);
	}
	return EXIT_OK;
}

/* The running serve of node (from its pid file, else found in /proc). */
static pid_t node_pid(const struct cluster *c, unsigned node)
{
	char data[PATH_MAX + 32];
	pid_t pids[64];
	size_t n;
	pid_t pid = cluster_node_pid(c, node);

	if (pid > 0)
		return pid;
	cluster_node_dir(c, node, NULL, data, sizeof(data));
	n = cluster_find_serves(c, pids, 64);
	for (size_t i = 0; i < n; i++) {
		if (cluster_pid_is_serve(pids[i], data))
			return pids[i];
	}
	return 0;
}

/* ---- starting ------------------------------------------------------------ */

struct start_job {
	unsigned node;
	pid_t pid;            /* serve's foreground process; 0 when done */
	int out_fd;           /* its stdout and stderr, an unlinked file */
	int status;           /* its exit status; -ETIMEDOUT */
	bool waiting;         /* it said "waiting for the cluster" */
	int64_t returned_ms;  /* when it returned */
	char line[512];       /* the first line it printed */
};

/* An unlinked file in DIR for one serve's foreground output. */
static int output_file(const struct cluster *c)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/.serve-out.XXXXXX", c->dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int spawn_serve(const struct cluster *c, struct start_job *job,
		       bool bootstrap)
{
	char id[16], data[PATH_MAX + 32], mnt[PATH_MAX + 32];
	char listen[32], certs[PATH_MAX + 32];
	char peers[CLUSTER_MAX_NODES * 32] = "";
	char *argv[24];
	size_t argc = 0;
	pid_t pid;
	int fd;

	snprintf(id, sizeof(id), "%u", job->node);
	cluster_node_dir(c, job->node, NULL, data, sizeof(data));
	cluster_mount_dir(c, job->node, mnt, sizeof(mnt));
	cluster_address(c, job->node, listen, sizeof(listen));
	cluster_certs_dir(c, certs, sizeof(certs));
	for (unsigned n = 1; n <= c->nodes; n++) {
		size_t len = strlen(peers);

		snprintf(peers + len, sizeof(peers) - len, "%s%u=127.0.0.%u:%u",
			 n > 1 ? "," : "", n, n, c->port);
	}
	argv[argc++] = self_path;
	argv[argc++] = (char *)"serve";
	argv[argc++] = (char *)"--id";
	argv[argc++] = id;
	argv[argc++] = (char *)"--data";
	argv[argc++] = data;
	argv[argc++] = (char *)"--mount";
	argv[argc++] = mnt;
	argv[argc++] = (char *)"--listen";
	argv[argc++] = listen;
	argv[argc++] = (char *)"--peers";
	argv[argc++] = peers;
	argv[argc++] = (char *)"--certs";
	argv[argc++] = certs;
	argv[argc++] = (char *)(bootstrap ? "--bootstrap" : "--join");
	if (c->options[0] != '\0') {
		argv[argc++] = (char *)"-o";
		argv[argc++] = (char *)c->options;
	}
	argv[argc] = NULL;

	fd = output_file(c);
	if (fd < 0)
		return fd;
	pid = cluster_spawn("/proc/self/exe", argv, fd);
	if (pid < 0) {
		close(fd);
		return pid;
	}
	job->pid = pid;
	job->out_fd = fd;
	job->status = 0;
	job->waiting = false;
	job->line[0] = '\0';
	return 0;
}

/* What the foreground printed: its first non-empty line, and whether it
 * said it waits for the cluster. */
static void read_output(struct start_job *job)
{
	char buf[4096];
	ssize_t n = pread(job->out_fd, buf, sizeof(buf) - 1, 0);
	char *p = buf;

	close(job->out_fd);
	job->out_fd = -1;
	if (n <= 0)
		return;
	buf[n] = '\0';
	job->waiting = strstr(buf, "waiting for the cluster") != NULL;
	while (*p == '\n')
		p++;
	p[strcspn(p, "\n")] = '\0';
	say(job->line, sizeof(job->line), "%s", p);
}

/* Wait until every job's foreground returned (or the deadline passed). */
static void wait_jobs(struct start_job *jobs, size_t count)
{
	int64_t deadline = cluster_now_ms() + SERVE_RETURN_MS;
	size_t left = count;

	while (left > 0) {
		for (size_t i = 0; i < count; i++) {
			struct start_job *j = &jobs[i];
			int status;
			pid_t r;

			if (j->pid == 0)
				continue;
			r = waitpid(j->pid, &status, WNOHANG);
			if (r == 0 && cluster_now_ms() < deadline)
				continue;
			if (r == 0) {
				/* Killed; reaped if it leaves within 2 s (a
				 * process stuck in the kernel may not). */
				kill(j->pid, SIGKILL);
				for (int k = 0; k < 40; k++) {
					if (waitpid(j->pid, &status, WNOHANG) != 0)
						break;
					cluster_sleep_ms(50);
				}
				j->status = -ETIMEDOUT;
			} else if (r < 0) {
				j->status = -errno;
			} else if (WIFEXITED(status)) {
				j->status = WEXITSTATUS(status);
			} else {
				j->status = 128 + WTERMSIG(status);
			}
			j->pid = 0;
			j->returned_ms = cluster_now_ms();
			read_output(j);
			left--;
		}
		if (left > 0)
			cluster_sleep_ms(POLL_MS);
	}
}

/* One line about a job that failed, into msg. */
static bool job_failed(const struct cluster *c, const struct start_job *j,
		       char *msg, size_t msg_size)
{
	char log[PATH_MAX + 32];

	cluster_node_dir(c, j->node, "raftfs.log", log, sizeof(log));
	if (j->status == 0)
		return false;
	if (j->status == -ETIMEDOUT)
		say(msg, msg_size,
			 "node %u: serve did not return within %d s; see %s",
			 j->node, SERVE_RETURN_MS / 1000, log);
	else if (j->status < 0)
		say(msg, msg_size, "node %u: cannot run serve (%s)",
			 j->node, strerror(-j->status));
	else
		say(msg, msg_size, "node %u did not start: %s; see %s",
			 j->node, j->line[0] ? j->line : "serve failed", log);
	return true;
}

/* ---- waiting until nodes are ready --------------------------------------- */

/* The feature level a new cluster's leader raises it to: this build's,
 * or the hold of -o feature_level=N (docs/FS_STORE.md, "Feature level"). */
static uint32_t wanted_feature_level(const struct cluster *c)
{
	const char *p = strstr(c->options, "feature_level=");
	unsigned long v;

	if (p == NULL || (p != c->options && p[-1] != ','))
		return FS_FEATURE_LEVEL;
	v = strtoul(p + strlen("feature_level="), NULL, 10);
	return v >= 1 && v <= FS_FEATURE_LEVEL ? (uint32_t)v
					       : FS_FEATURE_LEVEL;
}

/* Progress of a node that is not ready yet: its applied index. */
struct catch_up {
	uint64_t applied;  /* last seen, 0: none yet */
	int64_t looked_ms; /* last status query */
	int64_t said_ms;   /* last progress line */
};

/*
 * A node that restarts after missing a large backlog mounts at once but
 * answers a stat (a linearizable read) only once it has applied up to
 * the leader's commit, which can take longer than the wait. While its
 * applied index moves the wait goes on: the deadline is pushed to
 * timeout_ms after the last progress seen (looked at once a second), and
 * a line says how far it is every 5 s. A node that stops progressing
 * fails after timeout_ms as before.
 */
static void note_progress(const struct cluster *c, unsigned n,
			  struct catch_up *cu, int timeout_ms,
			  int64_t *deadline)
{
	struct cluster_status st;
	int64_t now = cluster_now_ms();
	char err[256];

	if (now - cu->looked_ms < 1000)
		return;
	cu->looked_ms = now;
	if (cluster_status_query(c, n, STATUS_MS, &st, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < st.members_count; i++) {
		const struct cluster_member *m = &st.members[i];

		if (m->id != n || !m->has_applied)
			continue;
		if (cu->applied != 0 && m->applied > cu->applied) {
			if (*deadline < now + timeout_ms)
				*deadline = now + timeout_ms;
			if (now - cu->said_ms >= 5000) {
				printf("node %u is catching up: applied %llu "
				       "of %llu; waiting while it progresses\n",
				       n, (unsigned long long)m->applied,
				       (unsigned long long)m->commit);
				fflush(stdout);
				cu->said_ms = now;
			}
		}
		if (m->applied > cu->applied)
			cu->applied = m->applied;
	}
}

/*
 * Wait until each node in which[] runs, its mount is a live fuse.raftfs
 * mount that answers a stat, and (need_leader) its status names a leader
 * and the cluster's feature level is the one its leader raises it to
 * (locks need level 3: a new cluster starts at 1, raised in seconds).
 * On timeout or a node that died, one line naming the node into msg.
 * Without need_leader, -EAGAIN when a node is mounted but its stat does
 * not answer and its status names no leader (no majority runs).
 */
static int wait_ready(const struct cluster *c, const bool *which,
		      bool need_leader, int timeout_ms,
		      const struct start_job *jobs, size_t jobs_count,
		      char *msg, size_t msg_size)
{
	int64_t deadline = cluster_now_ms() + timeout_ms;
	bool ready[CLUSTER_MAX_NODES + 1] = {false};
	char why[CLUSTER_MAX_NODES + 1][512];
	struct catch_up cu[CLUSTER_MAX_NODES + 1];

	memset(cu, 0, sizeof(cu));

	for (;;) {
		bool all = true;

		for (unsigned n = 1; n <= c->nodes; n++) {
			char mnt[PATH_MAX + 32], err[256];
			struct cluster_status st;
			int64_t returned = 0;
			int rc;

			if (!which[n] || ready[n])
				continue;
			all = false;
			for (size_t i = 0; i < jobs_count; i++) {
				if (jobs[i].node == n)
					returned = jobs[i].returned_ms;
			}
			cluster_mount_dir(c, n, mnt, sizeof(mnt));
			if (node_pid(c, n) == 0) {
				say(why[n], sizeof(why[n]),
					 "its serve is not running");
				/* The daemon writes its pid file before
				 * the foreground returns; give it a moment
				 * and then call it dead. */
				if (returned != 0 &&
				    cluster_now_ms() - returned > 3000) {
					say(msg, msg_size,
						 "node %u: serve exited after "
						 "starting", n);
					return -ESRCH;
				}
				continue;
			}
			if (!cluster_is_raftfs_mount(mnt)) {
				say(why[n], sizeof(why[n]),
					 "%s is not mounted", mnt);
				continue;
			}
			if (need_leader) {
				rc = cluster_status_query(c, n, STATUS_MS, &st,
							  err, sizeof(err));
				if (rc < 0) {
					say(why[n], sizeof(why[n]),
						 "status: %s", err);
					continue;
				}
				if (!st.has_leader) {
					say(why[n], sizeof(why[n]),
						 "no leader (term %llu)",
						 (unsigned long long)st.term);
					continue;
				}
				if (st.feature_level != 0 &&
				    st.feature_level <
					    wanted_feature_level(c)) {
					say(why[n], sizeof(why[n]),
					    "feature level %u, not yet %u",
					    (unsigned)st.feature_level,
					    (unsigned)wanted_feature_level(c));
					continue;
				}
			}
			rc = cluster_probe(mnt, PROBE_MS);
			if (rc == -ETIMEDOUT)
				say(why[n], sizeof(why[n]),
				    "stat %s did not answer within %d s", mnt,
				    PROBE_MS / 1000);
			else if (rc < 0)
				say(why[n], sizeof(why[n]), "stat %s: %s", mnt,
				    strerror(-rc));
			/* A node that restarted into a cluster without a
			 * majority mounts but cannot answer: that is not
			 * its failure (start says so and succeeds). */
			if (rc < 0 && !need_leader &&
			    cluster_status_query(c, n, STATUS_MS, &st, err,
						 sizeof(err)) == 0 &&
			    !st.has_leader)
				return -EAGAIN;
			if (rc < 0) {
				note_progress(c, n, &cu[n], timeout_ms,
					      &deadline);
				continue;
			}
			ready[n] = true;
		}
		if (all)
			return 0;
		if (cluster_now_ms() >= deadline)
			break;
		cluster_sleep_ms(200);
	}
	for (unsigned n = 1; n <= c->nodes; n++) {
		char log[PATH_MAX + 32];

		if (!which[n] || ready[n])
			continue;
		cluster_node_dir(c, n, "raftfs.log", log, sizeof(log));
		say(msg, msg_size, "node %u not ready after %d s: %s; see %s",
			 n, timeout_ms / 1000, why[n], log);
		break;
	}
	return -ETIMEDOUT;
}

/* ---- printing ------------------------------------------------------------ */

static void print_table(const struct cluster *c)
{
	struct cluster_status st;
	bool have_status = false;
	char err[256];
	int w_mnt = 5, w_data = 8;

	for (unsigned n = 1; n <= c->nodes && !have_status; n++)
		have_status = cluster_status_query(c, n, STATUS_MS, &st, err,
						   sizeof(err)) == 0;
	for (unsigned n = 1; n <= c->nodes; n++) {
		char p[PATH_MAX + 32];

		cluster_mount_dir(c, n, p, sizeof(p));
		if ((int)strlen(p) > w_mnt)
			w_mnt = (int)strlen(p);
		cluster_node_dir(c, n, NULL, p, sizeof(p));
		if ((int)strlen(p) > w_data)
			w_data = (int)strlen(p);
	}
	printf("%-4s  %-15s  %-9s  %-*s  %-*s  %-7s  %s\n", "node", "address",
	       "role", w_mnt, "mount", w_data, "data dir", "pid", "log");
	for (unsigned n = 1; n <= c->nodes; n++) {
		char addr[32], mnt[PATH_MAX + 32], data[PATH_MAX + 32];
		char log[PATH_MAX + 32], pid_text[16] = "-";
		const char *role = "?";
		pid_t pid = node_pid(c, n);

		cluster_address(c, n, addr, sizeof(addr));
		cluster_mount_dir(c, n, mnt, sizeof(mnt));
		cluster_node_dir(c, n, NULL, data, sizeof(data));
		cluster_node_dir(c, n, "raftfs.log", log, sizeof(log));
		if (pid > 0)
			snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
		else
			role = "stopped";
		for (size_t i = 0; pid > 0 && have_status &&
				   i < st.members_count; i++) {
			if (st.members[i].id == n && st.members[i].role[0])
				role = st.members[i].role;
		}
		printf("%-4u  %-15s  %-9s  %-*s  %-*s  %-7s  %s\n", n, addr,
		       role, w_mnt, mnt, w_data, data, pid_text, log);
	}
	printf("\ncertificates: %s/certs (admin.crt/.key for remote admin "
	       "commands)\n", c->dir);
	printf("stop a node:  %s cluster stop --dir %s --node N  (then "
	       "'cluster start' brings it back)\n", self_path, c->dir);
	printf("stop all:     %s cluster down --dir %s  (keeps the data; "
	       "rm -rf %s removes it)\n", self_path, c->dir, c->dir);
	fflush(stdout);
}

/* ---- up ------------------------------------------------------------------ */

/* DIR/certs: created on the first `up`, reused (and completed with missing
 * node pairs) after that. */
static int ensure_certs(const struct cluster *c, char *err, size_t err_size)
{
	char certs[PATH_MAX + 32], path[PATH_MAX + 64];
	struct stat st;

	cluster_certs_dir(c, certs, sizeof(certs));
	snprintf(path, sizeof(path), "%s/ca.crt", certs);
	if (stat(path, &st) != 0) {
		if (stat(certs, &st) == 0) {
			snprintf(err, err_size,
				 "%s exists without ca.crt; remove it or make "
				 "it with 'raftfs certs create'", certs);
			return -EINVAL;
		}
		return net_certs_create(certs, c->nodes, err, err_size);
	}
	for (unsigned n = 1; n <= c->nodes; n++) {
		int rc;

		snprintf(path, sizeof(path), "%s/node%u.crt", certs, n);
		if (stat(path, &st) == 0)
			continue;
		rc = net_certs_add(certs, n, err, err_size);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int cluster_up(const struct args *a)
{
	struct cluster c;
	struct start_job jobs[CLUSTER_MAX_NODES];
	bool all_nodes[CLUSTER_MAX_NODES + 1] = {false};
	char err[PATH_MAX + 256], msg[PATH_MAX + 512];
	size_t count = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = cluster_mkdirs(a->dir, 0755);
	if (rc == 0)
		rc = set_dir(&c, a->dir);
	if (rc < 0)
		return failure("up", "cannot use %s: %s", a->dir,
			       strerror(-rc));
	rc = cluster_conf_read(&c, err, sizeof(err));
	if (rc == 0) {
		unsigned want;

		if ((a->nodes && parse_uint(a->nodes, 1, 7, &want) &&
		     want != c.nodes) ||
		    (a->port && parse_uint(a->port, 1, 65535, &want) &&
		     want != c.port))
			return failure("up",
				       "%s holds a cluster of %u nodes on port "
				       "%u; run 'raftfs cluster up --dir %s' "
				       "without --nodes/--port, or remove it "
				       "('raftfs cluster down --dir %s', then "
				       "rm -rf %s)",
				       c.dir, c.nodes, c.port, a->dir, a->dir,
				       a->dir);
	} else if (rc == -ENOENT) {
		c.nodes = CLUSTER_DEFAULT_NODES;
		c.port = CLUSTER_DEFAULT_PORT;
		if (a->nodes)
			parse_uint(a->nodes, 1, CLUSTER_MAX_NODES, &c.nodes);
		if (a->port)
			parse_uint(a->port, 1, 65535, &c.port);
	} else {
		return failure("up", "%s", err);
	}
	snprintf(c.raftfs, sizeof(c.raftfs), "%s", self_path);
	if (a->options)
		snprintf(c.options, sizeof(c.options), "%s", a->options);

	rc = ensure_certs(&c, err, sizeof(err));
	if (rc < 0)
		return failure("up", "certificates: %s", err);
	for (unsigned n = 1; n <= c.nodes; n++) {
		char p[PATH_MAX + 32];

		cluster_mount_dir(&c, n, p, sizeof(p));
		rc = cluster_mkdirs(p, 0755);
		if (rc == 0) {
			cluster_node_dir(&c, n, NULL, p, sizeof(p));
			rc = cluster_mkdirs(p, 0700);
		}
		if (rc < 0)
			return failure("up", "cannot make %s: %s", p,
				       strerror(-rc));
	}
	rc = cluster_conf_write(&c, err, sizeof(err));
	if (rc < 0)
		return failure("up", "%s", err);

	for (unsigned n = 1; n <= c.nodes; n++) {
		char log_dir[PATH_MAX + 32];
		struct stat st;

		all_nodes[n] = true;
		if (node_pid(&c, n) > 0)
			continue;
		cluster_node_dir(&c, n, "log", log_dir, sizeof(log_dir));
		memset(&jobs[count], 0, sizeof(jobs[count]));
		jobs[count].node = n;
		/* --bootstrap only on a node's very first start. */
		rc = spawn_serve(&c, &jobs[count], stat(log_dir, &st) != 0);
		if (rc < 0) {
			wait_jobs(jobs, count);
			return failure("up", "node %u: cannot start serve: %s",
				       n, strerror(-rc));
		}
		count++;
	}
	if (count == 0)
		printf("a cluster is already running in %s\n", c.dir);
	else if (count == c.nodes)
		printf("starting %u node%s in %s ...\n", c.nodes,
		       c.nodes == 1 ? "" : "s", c.dir);
	else
		printf("starting %zu of %u nodes in %s (the others run) ...\n",
		       count, c.nodes, c.dir);
	fflush(stdout);
	wait_jobs(jobs, count);
	for (size_t i = 0; i < count; i++) {
		if (job_failed(&c, &jobs[i], msg, sizeof(msg)))
			return failure("up", "%s ('raftfs cluster down --dir "
					     "%s' stops the others)",
				       msg, a->dir);
	}
	rc = wait_ready(&c, all_nodes, true, READY_MS, jobs, count, msg,
			sizeof(msg));
	if (rc < 0)
		return failure("up", "%s", msg);
	print_table(&c);
	return EXIT_OK;
}

/* ---- start --------------------------------------------------------------- */

static int cluster_start(const struct args *a)
{
	struct cluster c;
	struct start_job job;
	bool which[CLUSTER_MAX_NODES + 1] = {false};
	char msg[PATH_MAX + 512], mnt[PATH_MAX + 32];
	unsigned n;
	pid_t pid;
	int rc = load(a, &c);

	if (rc != EXIT_OK)
		return rc;
	n = (unsigned)atoi(a->node);
	which[n] = true;
	cluster_mount_dir(&c, n, mnt, sizeof(mnt));
	pid = node_pid(&c, n);
	if (pid > 0) {
		printf("node %u is already running (pid %d, mount %s)\n", n,
		       (int)pid, mnt);
		return EXIT_OK;
	}
	memset(&job, 0, sizeof(job));
	job.node = n;
	rc = spawn_serve(&c, &job, false);
	if (rc < 0)
		return failure("start", "node %u: cannot start serve: %s", n,
			       strerror(-rc));
	wait_jobs(&job, 1);
	if (job_failed(&c, &job, msg, sizeof(msg)))
		return failure("start", "%s", msg);
	if (job.waiting) {
		printf("node %u started (pid %d) and waits for the cluster: "
		       "no majority yet; %s is mounted once there is one\n",
		       n, (int)node_pid(&c, n), mnt);
		return EXIT_OK;
	}
	rc = wait_ready(&c, which, false, START_READY_MS, &job, 1, msg,
			sizeof(msg));
	if (rc == -EAGAIN) {
		printf("node %u started (pid %d) and mounted at %s, but the "
		       "cluster has no leader: no majority runs; operations "
		       "on the mount fail with EIO until enough nodes are "
		       "started\n", n, (int)node_pid(&c, n), mnt);
		return EXIT_OK;
	}
	if (rc < 0)
		return failure("start", "%s", msg);
	printf("node %u running: 127.0.0.%u:%u, mount %s, pid %d\n", n, n,
	       c.port, mnt, (int)node_pid(&c, n));
	return EXIT_OK;
}

/* ---- stop and down ------------------------------------------------------- */

/*
 * Stop the nodes in which[] together: SIGTERM, then wait until each serve
 * exited and its mount is gone; SIGKILL what is left after STOP_MS and
 * unmount lazily what a dead node left mounted. One line per node.
 * Returns how many nodes could not be stopped cleanly.
 */
static int stop_nodes(const struct cluster *c, const bool *which)
{
	pid_t pids[CLUSTER_MAX_NODES + 1] = {0};
	int64_t exited_ms[CLUSTER_MAX_NODES + 1] = {0};
	bool killed[CLUSTER_MAX_NODES + 1] = {false};
	bool cleared[CLUSTER_MAX_NODES + 1] = {false};
	int64_t deadline = cluster_now_ms() + STOP_MS;
	int problems = 0;

	for (unsigned n = 1; n <= c->nodes; n++) {
		if (!which[n])
			continue;
		pids[n] = node_pid(c, n);
		if (pids[n] > 0)
			kill(pids[n], SIGTERM);
	}
	for (;;) {
		bool done = true;

		for (unsigned n = 1; n <= c->nodes; n++) {
			char mnt[PATH_MAX + 32];

			if (pids[n] <= 0)
				continue;
			if (cluster_pid_is_alive(pids[n])) {
				done = false;
				continue;
			}
			cluster_mount_dir(c, n, mnt, sizeof(mnt));
			if (!cluster_is_raftfs_mount(mnt))
				continue;
			/* Exited but its mount is still there: give the
			 * kernel a moment, then clear it below. */
			if (exited_ms[n] == 0)
				exited_ms[n] = cluster_now_ms();
			if (cluster_now_ms() - exited_ms[n] <
			    DEAD_MOUNT_GRACE_MS)
				done = false;
		}
		if (done || cluster_now_ms() >= deadline)
			break;
		cluster_sleep_ms(POLL_MS);
	}
	for (unsigned n = 1; n <= c->nodes; n++) {
		if (pids[n] > 0 && cluster_pid_is_alive(pids[n])) {
			kill(pids[n], SIGKILL);
			killed[n] = true;
		}
	}
	for (int64_t kill_deadline = cluster_now_ms() + KILL_MS;
	     cluster_now_ms() < kill_deadline;) {
		bool alive = false;

		for (unsigned n = 1; n <= c->nodes; n++)
			alive |= killed[n] && cluster_pid_is_alive(pids[n]);
		if (!alive)
			break;
		cluster_sleep_ms(POLL_MS);
	}
	for (unsigned n = 1; n <= c->nodes; n++) {
		char mnt[PATH_MAX + 32], type[64];

		if (!which[n])
			continue;
		cluster_mount_dir(c, n, mnt, sizeof(mnt));
		if (cluster_mount_type(mnt, type, sizeof(type))) {
			cluster_unmount_lazy(mnt);
			cleared[n] = true;
		}
		if (pids[n] > 0 && cluster_pid_is_alive(pids[n])) {
			printf("node %u: pid %d did not exit even after "
			       "SIGKILL\n", n, (int)pids[n]);
			problems++;
		} else if (cluster_mount_type(mnt, type, sizeof(type))) {
			printf("node %u: %s is still mounted (%s)\n", n, mnt,
			       type);
			problems++;
		} else if (killed[n]) {
			printf("node %u stopped: pid %d did not exit within "
			       "%d s of SIGTERM and was killed%s\n", n,
			       (int)pids[n], STOP_MS / 1000,
			       cleared[n] ? "; its mount was cleared" : "");
		} else if (pids[n] > 0) {
			printf("node %u stopped (pid %d)%s\n", n, (int)pids[n],
			       cleared[n] ? "; it left its mount, which was "
					    "cleared" : "");
		} else {
			printf("node %u was not running%s\n", n,
			       cleared[n] ? "; its dead mount was cleared"
					  : "");
		}
	}
	fflush(stdout);
	return problems;
}

static int cluster_stop(const struct args *a)
{
	struct cluster c;
	bool which[CLUSTER_MAX_NODES + 1] = {false};
	char log[PATH_MAX + 32];
	unsigned n;
	int rc = load(a, &c);

	if (rc != EXIT_OK)
		return rc;
	n = (unsigned)atoi(a->node);
	which[n] = true;
	if (stop_nodes(&c, which) > 0) {
		cluster_node_dir(&c, n, "raftfs.log", log, sizeof(log));
		return failure("stop", "node %u could not be stopped; see %s "
				       "and 'ps'/'grep %s/mnt /proc/mounts'",
			       n, log, c.dir);
	}
	return EXIT_OK;
}

static int cluster_down(const struct args *a)
{
	struct cluster c;
	bool which[CLUSTER_MAX_NODES + 1] = {false};
	char mnt_root[PATH_MAX + 32];
	char (*mounts)[PATH_MAX] = NULL;
	pid_t pids[64];
	size_t count;
	int problems, rc = load(a, &c);

	if (rc != EXIT_OK)
		return rc;
	for (unsigned n = 1; n <= c.nodes; n++)
		which[n] = true;
	problems = stop_nodes(&c, which);

	/* Serves of this cluster that no pid file named (started by hand,
	 * or a node that `cluster add` made): SIGTERM, then SIGKILL. */
	count = cluster_find_serves(&c, pids, 64);
	for (size_t i = 0; i < count; i++)
		kill(pids[i], SIGTERM);
	for (int64_t deadline = cluster_now_ms() + STOP_MS;
	     count > 0 && cluster_now_ms() < deadline;) {
		if (cluster_find_serves(&c, pids, 64) == 0)
			break;
		cluster_sleep_ms(POLL_MS);
	}
	count = cluster_find_serves(&c, pids, 64);
	for (size_t i = 0; i < count; i++) {
		printf("killed a serve of this cluster that did not stop "
		       "(pid %d)\n", (int)pids[i]);
		kill(pids[i], SIGKILL);
	}
	if (count > 0)
		cluster_sleep_ms(500);

	snprintf(mnt_root, sizeof(mnt_root), "%s/mnt", c.dir);
	mounts = calloc(64, PATH_MAX);
	if (mounts == NULL)
		return failure("down", "out of memory");
	count = cluster_mounts_under(mnt_root, mounts, 64);
	for (size_t i = 0; i < count; i++) {
		if (cluster_unmount_lazy(mounts[i]) == 0)
			printf("unmounted %s\n", mounts[i]);
	}
	count = cluster_mounts_under(mnt_root, mounts, 64);
	free(mounts);
	if (count > 0)
		return failure("down", "something is still mounted under %s; "
				       "see /proc/mounts", mnt_root);
	if (cluster_find_serves(&c, pids, 64) > 0)
		return failure("down", "serve pid %d of this cluster still "
				       "runs; kill it by hand", (int)pids[0]);
	if (problems > 0)
		return failure("down", "not every node stopped cleanly (see "
				       "above)");
	printf("cluster in %s is down; its data is kept (rm -rf %s removes "
	       "it)\n", c.dir, c.dir);
	return EXIT_OK;
}

/* ---- add ----------------------------------------------------------------- */

/*
 * Node N+1: its certificate, `serve --join`, then `raftfs member add`
 * through a running node, which streams the catch-up; the new node mounts
 * once it has caught up. cluster.conf counts it as soon as it is a member
 * (before its mount is ready, which may take longer than add waits).
 */
static int cluster_add(const struct args *a)
{
	struct cluster c;
	struct start_job job;
	bool which[CLUSTER_MAX_NODES + 1] = {false};
	char err[PATH_MAX + 256], msg[PATH_MAX + 512], p[PATH_MAX + 32];
	char member[64], data[PATH_MAX + 32];
	char *argv[8];
	unsigned n, via = 0;
	int rc = load(a, &c), status;
	pid_t pid;

	if (rc != EXIT_OK)
		return rc;
	if (c.nodes >= CLUSTER_MAX_NODES)
		return failure("add", "the cluster has %u nodes; a local cluster "
				      "has at most %d (127.0.0.1..%d)",
			       c.nodes, CLUSTER_MAX_NODES, CLUSTER_MAX_NODES);
	for (unsigned k = 1; k <= c.nodes && via == 0; k++)
		if (node_pid(&c, k) > 0)
			via = k;
	if (via == 0)
		return failure("add", "no node of the cluster is running; "
				      "start it first ('cluster start')");
	n = c.nodes + 1;
	c.nodes = n;
	rc = ensure_certs(&c, err, sizeof(err));
	if (rc < 0)
		return failure("add", "certificates: %s", err);
	cluster_mount_dir(&c, n, p, sizeof(p));
	rc = cluster_mkdirs(p, 0755);
	if (rc == 0) {
		cluster_node_dir(&c, n, NULL, p, sizeof(p));
		rc = cluster_mkdirs(p, 0700);
	}
	if (rc < 0)
		return failure("add", "cannot make %s: %s", p, strerror(-rc));
	memset(&job, 0, sizeof(job));
	job.node = n;
	rc = spawn_serve(&c, &job, false);
	if (rc < 0)
		return failure("add", "node %u: cannot start serve: %s", n,
			       strerror(-rc));
	/* The new node waits (not mounted) until it is added. */
	snprintf(member, sizeof(member), "%u=127.0.0.%u:%u", n, n, c.port);
	cluster_node_dir(&c, via, NULL, data, sizeof(data));
	argv[0] = self_path;
	argv[1] = (char *)"member";
	argv[2] = (char *)"add";
	argv[3] = member;
	argv[4] = (char *)"--data";
	argv[5] = data;
	argv[6] = NULL;
	printf("node %u started with --join; adding it through node %u\n", n,
	       via);
	fflush(stdout);
	pid = cluster_spawn("/proc/self/exe", argv, STDOUT_FILENO);
	status = -1;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (job.pid > 0)
			kill(job.pid, SIGKILL);
		wait_jobs(&job, 1);
		pid = node_pid(&c, n);
		if (pid > 0)
			kill(pid, SIGTERM);
		return failure("add", "node %u was not added (see above); its "
				      "serve was stopped",
			       n);
	}
	/* From here node n is a member: cluster.conf counts it at once, so
	 * that start, stop and down know it and no later add reuses its id,
	 * even when it is not ready in time below (a long catch-up). */
	rc = cluster_conf_write(&c, err, sizeof(err));
	if (rc < 0)
		return failure("add", "node %u is a member, but %s", n, err);
	wait_jobs(&job, 1);
	if (job_failed(&c, &job, msg, sizeof(msg)))
		return failure("add", "node %u is a member, but %s", n, msg);
	which[n] = true;
	rc = wait_ready(&c, which, true, START_READY_MS, &job, 1, msg,
			sizeof(msg));
	if (rc < 0)
		return failure("add", "node %u is a member (cluster.conf counts "
				      "it), but %s", n, msg);
	printf("node %u running: 127.0.0.%u:%u, mount ", n, n, c.port);
	cluster_mount_dir(&c, n, p, sizeof(p));
	printf("%s, pid %d\n", p, (int)node_pid(&c, n));
	return EXIT_OK;
}

int cmd_cluster(int argc, char **argv)
{
	struct args a;
	ssize_t n;
	int rc = parse_args(argc, argv, &a);

	if (rc != EXIT_OK)
		return rc;
	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n <= 0)
		return failure(a.verb, "cannot find this binary: %s",
			       strerror(errno));
	self_path[n] = '\0';
	if (!strcmp(a.verb, "up"))
		return cluster_up(&a);
	if (!strcmp(a.verb, "start"))
		return cluster_start(&a);
	if (!strcmp(a.verb, "stop"))
		return cluster_stop(&a);
	if (!strcmp(a.verb, "add"))
		return cluster_add(&a);
	return cluster_down(&a);
}
