/*
 * Processes and mounts of a local cluster: fork/exec with a deadline, which
 * pid is a node's serve, what /proc/mounts says, a stat that cannot hang.
 * A FUSE mount whose daemon is stopped or cut off can block a stat for the
 * operation timeout or longer, so every stat of a mount happens in a child
 * process that is killed at its deadline.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "tools/cluster.h"

int64_t cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* In the child after fork: only async-signal-safe calls until exec. */
static void child_exec(const char *exec_path, char *const argv[], int out_fd,
		       int err_fd)
{
	int null_fd = open("/dev/null", O_RDONLY);

	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(err_fd, 2) < 0)
		_exit(127);
	execv(exec_path, argv);
	_exit(127);
}

pid_t cluster_spawn(const char *exec_path, char *const argv[], int out_fd)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_exec(exec_path, argv, out_fd, out_fd);
	return pid;
}

/* Wait for pid until deadline (monotonic ms); SIGKILL it then. Returns the
 * exit status, 128 + signal, or -ETIMEDOUT. */
static int wait_child(pid_t pid, int64_t deadline)
{
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (cluster_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			/* A killed child leaves at once unless stuck in the
			 * kernel; do not wait for it forever either. */
			for (int i = 0; i < 40; i++) {
				if (waitpid(pid, &status, WNOHANG) == pid)
					break;
				cluster_sleep_ms(50);
			}
			return -ETIMEDOUT;
		}
		cluster_sleep_ms(20);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int cluster_run(const char *exec_path, char *const argv[], int timeout_ms,
		char *out, size_t out_size, char *errline, size_t errline_size)
{
	int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
	char errbuf[1024];
	size_t out_len = 0, err_len = 0;
	int64_t deadline = cluster_now_ms() + timeout_ms;
	pid_t pid;
	int rc;

	if (out_size > 0)
		out[0] = '\0';
	if (errline_size > 0)
		errline[0] = '\0';
	if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
		rc = -errno;
		goto close_pipes;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto close_pipes;
	}
	if (pid == 0)
		child_exec(exec_path, argv, out_pipe[1], err_pipe[1]);
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;

	/* Read both pipes until both close or the deadline passes. */
	while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
		struct pollfd p[2] = {{out_pipe[0], POLLIN, 0},
				      {err_pipe[0], POLLIN, 0}};
		int64_t left = deadline - cluster_now_ms();
		char chunk[4096];

		if (left <= 0)
			break;
		if (poll(p, 2, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &out_pipe[0] : &err_pipe[0];
			ssize_t n;

			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (i == 0 && out_size > 0) {
				size_t room = out_size - 1 - out_len;
				size_t take = (size_t)n < room ? (size_t)n
							       : room;
				memcpy(out + out_len, chunk, take);
				out_len += take;
				out[out_len] = '\0';
			} else if (i == 1) {
				size_t room = sizeof(errbuf) - 1 - err_len;
				size_t take = (size_t)n < room ? (size_t)n
							       : room;
				memcpy(errbuf + err_len, chunk, take);
				err_len += take;
			}
		}
	}
	rc = wait_child(pid, deadline);
	errbuf[err_len] = '\0';
	if (errline_size > 0) {
		snprintf(errline, errline_size, "%s", errbuf);
		errline[strcspn(errline, "\n")] = '\0';
	}
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	return rc;
}

bool cluster_pid_is_alive(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL || close_paren[1] != ' ')
		return true;
	return close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* The value of --data in pid's command line, resolved against its working
 * directory when relative; false when it is not a serve. */
static bool serve_data_dir(pid_t pid, char *out, size_t out_size)
{
	char path[64], buf[8192];
	const char *args[256];
	size_t argc = 0;
	ssize_t n;
	int fd;
	bool is_serve = false;
	const char *data = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n && argc < 256; i += (ssize_t)strlen(buf + i) + 1)
		args[argc++] = buf + i;
	for (size_t i = 1; i < argc; i++) {
		if (!strcmp(args[i], "serve") && i == 1)
			is_serve = true;
		if (!strcmp(args[i], "--data") && i + 1 < argc)
			data = args[i + 1];
		else if (!strncmp(args[i], "--data=", 7))
			data = args[i] + 7;
	}
	if (!is_serve || data == NULL)
		return false;
	/* A serve's mount guard (tools/mount_guard.c) has its command line
	 * but is no serve: its name tells. */
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char comm[32];

		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n > 0 && !strncmp(comm, "raftfs-guard", 12))
			return false;
	}
	if (data[0] == '/') {
		snprintf(out, out_size, "%s", data);
	} else {
		char cwd[PATH_MAX];

		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		n = readlink(path, cwd, sizeof(cwd) - 1);
		if (n <= 0)
			return false;
		cwd[n] = '\0';
		snprintf(out, out_size, "%s/%s", cwd, data);
	}
	/* Drop trailing slashes so "DIR/node1/" matches "DIR/node1". */
	for (size_t len = strlen(out); len > 1 && out[len - 1] == '/'; len--)
		out[len - 1] = '\0';
	return true;
}

/* Same directory? Compared by device and inode when both exist, so paths
 * through symlinks or "." match too. */
static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0)
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool cluster_pid_is_serve(pid_t pid, const char *data_dir)
{
	char data[PATH_MAX + 256];

	if (!cluster_pid_is_alive(pid))
		return false;
	if (!serve_data_dir(pid, data, sizeof(data)))
		return false;
	return same_dir(data, data_dir);
}

pid_t cluster_node_pid(const struct cluster *c, unsigned node)
{
	char path[PATH_MAX + 64], data[PATH_MAX + 32], buf[32];
	long pid;
	char *end;
	ssize_t n;
	int fd;

	cluster_node_dir(c, node, "raftfs.pid", path, sizeof(path));
	cluster_node_dir(c, node, NULL, data, sizeof(data));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno || end == buf || (*end != '\n' && *end != '\0') || pid <= 0 ||
	    pid > 0x3fffffff)
		return 0;
	return cluster_pid_is_serve((pid_t)pid, data) ? (pid_t)pid : 0;
}

size_t cluster_find_serves(const struct cluster *c, pid_t *pids, size_t max)
{
	char prefix[PATH_MAX + 8], data[PATH_MAX + 256];
	size_t count = 0, prefix_len;
	struct dirent *e;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "%s/node", c->dir);
	prefix_len = strlen(prefix);
	d = opendir("/proc");
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && count < max) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid == (long)getpid())
			continue;
		if (!serve_data_dir((pid_t)pid, data, sizeof(data)))
			continue;
		if (strncmp(data, prefix, prefix_len) != 0 ||
		    strchr(data + prefix_len, '/') != NULL)
			continue;
		if (cluster_pid_is_alive((pid_t)pid))
			pids[count++] = (pid_t)pid;
	}
	closedir(d);
	return count;
}

/* /proc/mounts escapes ' ', '\t', '\n' and '\\' as \ooo. */
static void unescape_mount(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' &&
		    r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
				      (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Call fn for every mount (point, type) until it returns true. */
static bool each_mount(bool (*fn)(void *ctx, const char *point,
				  const char *type),
		       void *ctx)
{
	char line[2 * PATH_MAX];
	bool stop = false;
	FILE *f = fopen("/proc/mounts", "re");

	if (f == NULL)
		return false;
	while (!stop && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *point, *type;

		if (strtok_r(line, " ", &save) == NULL)
			continue;
		point = strtok_r(NULL, " ", &save);
		type = strtok_r(NULL, " ", &save);
		if (point == NULL || type == NULL)
			continue;
		unescape_mount(point);
		stop = fn(ctx, point, type);
	}
	fclose(f);
	return stop;
}

struct find_type {
	const char *path;
	char *type;
	size_t type_size;
};

static bool match_type(void *ctx, const char *point, const char *type)
{
	struct find_type *ft = ctx;

	if (strcmp(point, ft->path) != 0)
		return false;
	/* The last matching line is the mount on top; keep looking. */
	snprintf(ft->type, ft->type_size, "%s", type);
	return false;
}

bool cluster_mount_type(const char *path, char *type, size_t type_size)
{
	struct find_type ft = {path, type, type_size};

	if (type_size > 0)
		type[0] = '\0';
	each_mount(match_type, &ft);
	return type_size > 0 && type[0] != '\0';
}

bool cluster_is_raftfs_mount(const char *path)
{
	char type[64];

	return cluster_mount_type(path, type, sizeof(type)) &&
	       !strcmp(type, "fuse.raftfs");
}

struct under {
	const char *prefix;
	size_t prefix_len;
	char (*out)[PATH_MAX];
	size_t max;
	size_t count;
};

static bool match_under(void *ctx, const char *point, const char *type)
{
	struct under *u = ctx;

	(void)type;
	if (strncmp(point, u->prefix, u->prefix_len) != 0 ||
	    (point[u->prefix_len] != '\0' && point[u->prefix_len] != '/'))
		return false;
	snprintf(u->out[u->count], PATH_MAX, "%s", point);
	u->count++;
	return u->count >= u->max;
}

size_t cluster_mounts_under(const char *prefix, char (*out)[PATH_MAX],
			    size_t max)
{
	struct under u = {prefix, strlen(prefix), out, max, 0};

	if (max == 0)
		return 0;
	each_mount(match_under, &u);
	return u.count;
}

int cluster_probe(const char *path, int timeout_ms)
{
	struct stat st;
	pid_t pid;
	int rc;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(stat(path, &st) == 0 ? 0 : (errno & 0xff));
	rc = wait_child(pid, cluster_now_ms() + timeout_ms);
	if (rc < 0)
		return rc;
	if (rc >= 128)
		return -EINTR;
	return -rc;
}

int cluster_unmount_lazy(const char *path)
{
	char *argv[] = {(char *)"fusermount3", (char *)"-u", (char *)"-z",
			(char *)path, NULL};
	static const char *const tries[] = {"/usr/bin/fusermount3",
					    "/bin/fusermount3"};
	int rc = -ENOENT;

	for (size_t i = 0; i < 2 && rc != 0; i++) {
		if (access(tries[i], X_OK) == 0)
			rc = cluster_run(tries[i], argv, 10000, NULL, 0, NULL,
					 0);
	}
	if (rc != 0 && umount2(path, MNT_DETACH) == 0)
		rc = 0;
	return rc == 0 ? 0 : -EBUSY;
}
