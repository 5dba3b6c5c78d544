/*
 * The mount point before a mount: a dead FUSE mount left by a killed node
 * answers ENOTCONN (ECONNABORTED once its connection was aborted) and is
 * cleared (fusermount3 -u -z); a live one is
 * refused, since another node or program is serving it.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Undo the octal escapes of /proc/self/mountinfo (space, tab, newline,
 * backslash). */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] &&
		    r[3]) {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
				      (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

bool mount_point_is_mounted(const char *mnt)
{
	char want[PATH_MAX], line[8192];
	bool found = false;
	FILE *f;

	/* realpath fails on a dead mount (ENOTCONN): compare the path as
	 * given, made absolute. */
	if (realpath(mnt, want) == NULL) {
		if (mnt[0] == '/') {
			snprintf(want, sizeof(want), "%s", mnt);
		} else {
			char cwd[PATH_MAX];
			if (getcwd(cwd, sizeof(cwd)) == NULL)
				return false;
			snprintf(want, sizeof(want), "%.2000s/%.2000s", cwd,
				 mnt);
		}
	}
	f = fopen("/proc/self/mountinfo", "r");
	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		/* id parent major:minor root mountpoint ... */
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok != NULL && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (tok == NULL)
			continue;
		unescape(tok);
		found = strcmp(tok, want) == 0;
	}
	fclose(f);
	return found;
}

/* fusermount3 -u -z mnt; 0 when it succeeded. */
static int lazy_unmount(const char *mnt)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt,
		       (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int mount_point_prepare(const char *mnt, char *err, size_t err_size)
{
	struct stat st;

	if (stat(mnt, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return text_error(err, err_size, -ENOTDIR,
				    "mount point %s is not a directory", mnt);
		if (mount_point_is_mounted(mnt))
			return text_error(err, err_size, -EBUSY,
				    "%s is already mounted and answering (a "
				    "running node?); stop it or unmount it "
				    "first",
				    mnt);
		return 0;
	}
	if (errno == ENOENT)
		return text_error(err, err_size, -ENOENT,
			    "mount point %s does not exist; create it first",
			    mnt);
	if (errno != ENOTCONN && errno != ECONNABORTED)
		return text_error(err, err_size, -errno, "mount point %s: %s", mnt,
			    strerror(errno));
	/* A FUSE mount whose daemon died (kill -9: ENOTCONN) or whose
	 * connection was aborted (umount -f, fusectl's abort: ECONNABORTED):
	 * clear it. */
	if (lazy_unmount(mnt) != 0 || stat(mnt, &st) != 0)
		return text_error(err, err_size, -EBUSY,
			    "mount point %s holds a dead mount that could not "
			    "be cleared; run 'fusermount3 -u -z %s'",
			    mnt, mnt);
	return 0;
}
