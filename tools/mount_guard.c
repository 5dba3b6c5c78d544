/*
 * The mount guard: a forked child of serve's main thread that aborts the
 * FUSE connection when the daemon dies without unmounting (kill -9, OOM
 * kill, crash). The kernel aborts a connection only when /dev/fuse is
 * closed, i.e. when the last thread of the daemon has exited; a thread
 * stuck in uninterruptible sleep on the mount itself (the notifier
 * invalidating a page that a reader holds locked, waiting for a FUSE_READ
 * nobody will answer) never exits, so without the guard the mount hangs
 * forever (docs/DAEMON.md, "When a node dies").
 *
 * The guard learns of the death through PR_SET_PDEATHSIG, which the kernel
 * sends when the thread that forked it (the main thread) exits, and the
 * main thread does exit on SIGKILL even while another thread is stuck. It
 * acts only when the mount at MNT is still the one this daemon made (mount
 * id and device read from /proc/self/mountinfo; the mount itself is never
 * touched by a path walk before the connection is aborted), in this order:
 * fusectl's abort file (/sys/fs/fuse/connections/DEV/abort, writable by
 * the mount's owner, so non-root mounts too); with CAP_SYS_ADMIN, fusectl
 * mounted in a private mount namespace of the guard; last, umount2(MNT,
 * MNT_FORCE), which aborts the connection and unmounts when idle. A clean
 * stop kills the guard (SIGKILL) and reaps it.
 *
 * After the fork the child uses only async-signal-safe calls: everything
 * it needs (paths, messages) is prepared before.
 */
#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FUSECTL_DIR "/sys/fs/fuse/connections"

struct mount_guard {
	char path[PATH_MAX];          /* canonical, unescaped */
	char escaped[PATH_MAX * 4];   /* as /proc/self/mountinfo writes it */
	char id[32], dev[32];         /* the mount's fields 1 and 3 */
	char abort_path[128];         /* FUSECTL_DIR/N/abort */
	char stat_path[64];           /* /proc/PARENT/stat */
	char msg_abort[PATH_MAX + 160];
	char msg_fail[PATH_MAX * 2 + 200];
	pid_t pid;                    /* the guard; 0 when none */
};

static void escape(const char *s, char *out, size_t size)
{
	size_t w = 0;

	for (; *s && w + 5 < size; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\') {
			out[w++] = '\\';
			out[w++] = (char)('0' + ((unsigned char)*s >> 6));
			out[w++] = (char)('0' + (((unsigned char)*s >> 3) & 7));
			out[w++] = (char)('0' + ((unsigned char)*s & 7));
		} else {
			out[w++] = *s;
		}
	}
	out[w] = '\0';
}

int mount_guard_new(const char *mnt, struct mount_guard **out, char *err,
		    size_t err_size)
{
	struct mount_guard *g;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return text_error(err, err_size, -ENOMEM, "out of memory");
	/* Before the mount: a path walk onto the mount would wait for the
	 * daemon's own loop. */
	if (realpath(mnt, g->path) == NULL) {
		int rc = -errno;
		free(g);
		return text_error(err, err_size, rc, "mount point %s: %s", mnt,
				  strerror(-rc));
	}
	escape(g->path, g->escaped, sizeof(g->escaped));
	*out = g;
	return 0;
}

/* The fields of one mountinfo line: id, major:minor, mount point (still
 * escaped). false on a malformed line. */
static bool fields(char *line, char **id, char **dev, char **mp)
{
	char *f[5];
	int n = 0;

	for (char *p = line; n < 5;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return false;
		f[n++] = p;
		while (*p && *p != ' ')
			p++;
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	if (n < 5)
		return false;
	*id = f[0];
	*dev = f[2];
	*mp = f[4];
	return true;
}

/* The top mount at g->escaped in /proc/self/mountinfo: whether it is the
 * one recorded (match) or, when record, record it. Uses only open, read
 * and close (the guard calls it after the fork). -1 when none is there. */
static int top_mount(struct mount_guard *g, bool record)
{
	static char buf[4096], line[PATH_MAX * 4 + 512];
	char top_id[32] = "", top_dev[32] = "";
	size_t len = 0;
	bool skipping = false;
	ssize_t r;
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++) {
			char *id, *dev, *mp;

			if (buf[i] != '\n') {
				if (len + 1 < sizeof(line))
					line[len++] = buf[i];
				else
					skipping = true;
				continue;
			}
			line[len] = '\0';
			if (!skipping && fields(line, &id, &dev, &mp) &&
			    strcmp(mp, g->escaped) == 0 &&
			    strlen(id) < sizeof(top_id) &&
			    strlen(dev) < sizeof(top_dev)) {
				strcpy(top_id, id);
				strcpy(top_dev, dev);
			}
			len = 0;
			skipping = false;
		}
	}
	close(fd);
	if (top_id[0] == '\0')
		return -1;
	if (record) {
		strcpy(g->id, top_id);
		strcpy(g->dev, top_dev);
		return 1;
	}
	return strcmp(top_id, g->id) == 0 && strcmp(top_dev, g->dev) == 0;
}

static void say(const char *msg)
{
	ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
	(void)r;
}

/* Write "1" to fusectl's abort file of the connection; 0 when done. */
static int write_abort(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write(fd, "1", 1);
	close(fd);
	return r == 1 ? 0 : -1;
}

/* fusectl mounted in a mount namespace of the guard's own: nothing
 * outside sees it. */
static int abort_private_fusectl(const char *abort_path)
{
	if (unshare(CLONE_NEWNS) != 0)
		return -1;
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	if (mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) != 0)
		return -1;
	return write_abort(abort_path);
}

/* Whether the daemon's main thread has gone: reparented (another pid), or
 * a zombie whose other threads have not all exited. */
static bool parent_gone(const struct mount_guard *g, pid_t parent)
{
	char buf[512];
	ssize_t r;
	int fd;

	if (getppid() != parent)
		return true;
	/* /proc/PID/stat of the thread group leader; its state follows the
	 * last ')' (the name may hold any character). */
	fd = open(g->stat_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return true;
	buf[r] = '\0';
	for (char *p = buf + r - 1; p > buf; p--)
		if (*p == ')')
			return p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	return false;
}

static void guard_abort(struct mount_guard *g)
{
	if (top_mount(g, false) != 1)
		return; /* unmounted (a clean end), or another mount now */
	if (write_abort(g->abort_path) == 0 ||
	    abort_private_fusectl(g->abort_path) == 0 ||
	    umount2(g->path, MNT_FORCE | UMOUNT_NOFOLLOW) == 0 ||
	    errno == EBUSY) /* aborted; busy, so still mounted */
		say(g->msg_abort);
	else
		say(g->msg_fail);
}

static void guard_main(struct mount_guard *g, pid_t parent)
{
	sigset_t set;
	int sig;

	/* None of the daemon's descriptors: not /dev/fuse (its close is
	 * what aborts the connection of a daemon that did exit), not the
	 * data dir's lock, not the ready pipe. stdin/out/err stay. */
	if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	prctl(PR_SET_NAME, "raftfs-guard");
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0)
		_exit(1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	/* The fork race: the main thread may have gone before the prctl. */
	while (!parent_gone(g, parent)) {
		sig = sigwaitinfo(&set, NULL);
		if (sig < 0 && errno != EINTR)
			_exit(1);
	}
	guard_abort(g);
	_exit(0);
}

int mount_guard_start(struct mount_guard *g, char *err, size_t err_size)
{
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	unsigned long maj, min;

	if (top_mount(g, true) != 1)
		return text_error(err, err_size, -ENOENT,
				  "the guard finds no mount at %s", g->path);
	if (sscanf(g->dev, "%lu:%lu", &maj, &min) != 2)
		return text_error(err, err_size, -EINVAL,
				  "the guard cannot read the device %s of %s",
				  g->dev, g->path);
	/* fusectl names a connection by the kernel's dev_t. */
	snprintf(g->abort_path, sizeof(g->abort_path), FUSECTL_DIR "/%lu/abort",
		 (maj << 20) | min);
	snprintf(g->stat_path, sizeof(g->stat_path), "/proc/%d/stat",
		 (int)parent);
	snprintf(g->msg_abort, sizeof(g->msg_abort),
		 "raftfs-guard: the daemon (pid %d) died with %s mounted; "
		 "aborted its FUSE connection\n",
		 (int)parent, g->path);
	snprintf(g->msg_fail, sizeof(g->msg_fail),
		 "raftfs-guard: the daemon (pid %d) died with %s mounted and "
		 "its FUSE connection could not be aborted; run 'umount -f "
		 "%s' as root\n",
		 (int)parent, g->path, g->path);
	/* The child starts with every signal blocked: none of the daemon's
	 * handlers runs there, a group's SIGTERM leaves it alone. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		guard_main(g, parent);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return text_error(err, err_size, -errno, "fork: %s",
				  strerror(errno));
	g->pid = pid;
	return 0;
}

void mount_guard_free(struct mount_guard *g)
{
	if (g == NULL)
		return;
	if (g->pid > 0) {
		kill(g->pid, SIGKILL);
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	free(g);
}
