/*
 * DIR/cluster.conf: the shape of a local cluster, written by `cluster up`
 * and read by start, stop and down so that they need only --dir. Lines of
 * key=value (docs/CLUSTER.md); '#' starts a comment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cluster.h"

__attribute__((format(printf, 4, 5))) static int
fail(char *err, size_t err_size, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_size > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_size, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* A decimal in lo..hi, the whole string. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int cluster_conf_read(struct cluster *c, char *err, size_t err_size)
{
	char path[PATH_MAX + 32], line[PATH_MAX + 64];
	unsigned lineno = 0;
	bool have_nodes = false, have_port = false;
	FILE *f;
	int rc = 0;

	if (strlen(c->dir) + 64 >= PATH_MAX)
		return fail(err, err_size, -ENAMETOOLONG,
			    "%s: path too long", c->dir);
	snprintf(path, sizeof(path), "%s/cluster.conf", c->dir);
	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		return fail(err, err_size, rc, "cannot read %s: %s", path,
			    strerror(-rc));
	}
	c->raftfs[0] = '\0';
	c->options[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq, *val;
		size_t len = strlen(line);

		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL) {
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		val = eq + 1;
		if (!strcmp(line, "nodes")) {
			rc = parse_uint(val, 1, CLUSTER_MAX_NODES, &c->nodes);
			have_nodes = rc == 0;
		} else if (!strcmp(line, "port")) {
			rc = parse_uint(val, 1, 65535, &c->port);
			have_port = rc == 0;
		} else if (!strcmp(line, "raftfs")) {
			if (strlen(val) >= sizeof(c->raftfs))
				rc = -EINVAL;
			else
				strcpy(c->raftfs, val);
		} else if (!strcmp(line, "options")) {
			if (strlen(val) >= sizeof(c->options))
				rc = -EINVAL;
			else
				strcpy(c->options, val);
		} else {
			rc = -EINVAL;
		}
		if (rc != 0)
			break;
	}
	fclose(f);
	if (rc != 0)
		return fail(err, err_size, rc,
			    "%s: line %u is not nodes=, port=, raftfs= or "
			    "options=", path, lineno);
	if (!have_nodes || !have_port)
		return fail(err, err_size, -EINVAL,
			    "%s: no nodes= or port= line", path);
	return 0;
}

int cluster_conf_write(const struct cluster *c, char *err, size_t err_size)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 48];
	FILE *f;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/cluster.conf", c->dir);
	snprintf(tmp, sizeof(tmp), "%s/.cluster.conf.tmp", c->dir);
	f = fopen(tmp, "we");
	if (f == NULL) {
		rc = -errno;
		return fail(err, err_size, rc, "cannot write %s: %s", tmp,
			    strerror(-rc));
	}
	fprintf(f,
		"# a local raftfs cluster made by `raftfs cluster up`; read by "
		"cluster start|stop|down\n"
		"nodes=%u\nport=%u\nraftfs=%s\noptions=%s\n",
		c->nodes, c->port, c->raftfs, c->options);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return fail(err, err_size, rc, "cannot write %s: %s", path,
			    strerror(-rc));
	}
	fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

void cluster_node_dir(const struct cluster *c, unsigned node, const char *leaf,
		      char *out, size_t out_size)
{
	if (leaf != NULL)
		snprintf(out, out_size, "%s/node%u/%s", c->dir, node, leaf);
	else
		snprintf(out, out_size, "%s/node%u", c->dir, node);
}

void cluster_mount_dir(const struct cluster *c, unsigned node, char *out,
		       size_t out_size)
{
	snprintf(out, out_size, "%s/mnt/%u", c->dir, node);
}

void cluster_certs_dir(const struct cluster *c, char *out, size_t out_size)
{
	snprintf(out, out_size, "%s/certs", c->dir);
}

void cluster_address(const struct cluster *c, unsigned node, char *out,
		     size_t out_size)
{
	snprintf(out, out_size, "127.0.0.%u:%u", node, c->port);
}

int cluster_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}
