/*
 * A node's data dir (docs/DATA_DIR.md): the lock that keeps a second
 * daemon out, the identity and boot epoch file, the pid file.
 */

#include "tools/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int data_dir_lock(const char *dir, int *fd, char *err, size_t err_size)
{
	char path[4200], pid[32] = "";
	int f;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return text_error(err, err_size, -errno,
			    "cannot create data dir %s: %s", dir,
			    strerror(errno));
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0)
		return text_error(err, err_size, -errno, "cannot open %s: %s", path,
			    strerror(errno));
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		FILE *p;

		close(f);
		snprintf(path, sizeof(path), "%s/raftfs.pid", dir);
		p = fopen(path, "r");
		if (p != NULL) {
			if (fscanf(p, "%31s", pid) != 1)
				pid[0] = '\0';
			fclose(p);
		}
		if (rc == -EBUSY)
			return text_error(err, err_size, rc,
				    "data dir %s is in use by another raftfs "
				    "serve%s%s%s; stop it first",
				    dir, pid[0] ? " (pid " : "", pid,
				    pid[0] ? ")" : "");
		return text_error(err, err_size, rc, "cannot lock %s/LOCK: %s", dir,
			    strerror(-rc));
	}
	*fd = f;
	return 0;
}

/* Write path durably: a temporary file, fsync, rename, fsync the dir. */
static int write_durably(const char *dir, const char *name, const char *text)
{
	char path[4200], tmp[4300];
	size_t len = strlen(text);
	int fd, dfd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) != 0)
		rc = -errno;
	close(dfd);
	return rc;
}

int data_dir_next_epoch(const char *dir, const char *cluster_id,
			uint64_t node, uint64_t *epoch, char *err,
			size_t err_size)
{
	char path[4200], line[256], cid[64], text[256];
	unsigned long long n = 0, e = 0;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/node", dir);
	f = fopen(path, "r");
	if (f != NULL) {
		bool ok = fgets(line, sizeof(line), f) != NULL &&
			  sscanf(line, "cluster=%63s node=%llu epoch=%llu", cid,
				 &n, &e) == 3;
		fclose(f);
		if (!ok)
			return text_error(err, err_size, -EUCLEAN,
				    "%s is damaged (expected 'cluster=ID "
				    "node=N epoch=E'); the data dir is not "
				    "usable as it is",
				    path);
		if (strcmp(cid, cluster_id) != 0)
			return text_error(err, err_size, -EEXIST,
				    "data dir %s belongs to cluster %s, not to "
				    "cluster %s of these certificates",
				    dir, cid, cluster_id);
		if (n != node)
			return text_error(err, err_size, -EEXIST,
				    "data dir %s belongs to node %llu, not %" PRIu64,
				    dir, n, node);
	} else if (errno != ENOENT) {
		return text_error(err, err_size, -errno, "cannot read %s: %s", path,
			    strerror(errno));
	}
	*epoch = (uint64_t)e + 1;
	snprintf(text, sizeof(text), "cluster=%s node=%" PRIu64
		 " epoch=%" PRIu64 "\n", cluster_id, node, *epoch);
	rc = write_durably(dir, "node", text);
	if (rc != 0)
		return text_error(err, err_size, rc, "cannot write %s: %s", path,
			    strerror(-rc));
	return 0;
}

int data_dir_write_pid(const char *dir, char *err, size_t err_size)
{
	char path[4200], tmp[4300], text[32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/raftfs.pid", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	f = fopen(tmp, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0 ||
	    rename(tmp, path) != 0)
		return text_error(err, err_size, -EIO, "cannot write %s", path);
	return 0;
}

uint64_t data_dir_bytes(const char *path)
{
	struct dirent *d;
	uint64_t total = 0;
	DIR *dir = opendir(path);

	if (dir == NULL)
		return 0;
	while ((d = readdir(dir)) != NULL) {
		char p[4400];
		struct stat st;

		if (d->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, d->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode))
			total += data_dir_bytes(p);
	}
	closedir(dir);
	return total;
}
