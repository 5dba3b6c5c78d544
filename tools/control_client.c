/*
 * The client side of a node's control socket (tools/control.c): one
 * request line, then the whole answer until the node closes.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int control_request_stream(const char *data, const char *request,
			   int idle_timeout_ms,
			   void (*chunk)(void *ctx, const char *p, size_t n),
			   void *ctx, char *err, size_t err_size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[4096];
	bool any = false;
	int fd, rc = 0;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path),
			     "%s/control.sock", data) >= sizeof(sa.sun_path))
		return text_error(err, err_size, -ENAMETOOLONG,
				  "data dir path %.200s is too long", data);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			text_error(err, err_size, rc,
				   "no node is running on %.200s (start it "
				   "with 'raftfs serve' or 'raftfs cluster "
				   "start')",
				   data);
		else
			text_error(err, err_size, rc, "%.200s: %s", sa.sun_path,
				   strerror(-rc));
		goto out;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		rc = text_error(err, err_size, -EPIPE,
				"the node on %.200s closed the socket", data);
		goto out;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, idle_timeout_ms) <= 0) {
			rc = text_error(err, err_size, -ETIMEDOUT,
					"the node on %.200s said nothing for "
					"%d s",
					data, idle_timeout_ms / 1000);
			goto out;
		}
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		any = true;
		chunk(ctx, buf, (size_t)r);
	}
	if (!any)
		rc = text_error(err, err_size, -ECONNRESET,
				"the node on %.200s gave no answer", data);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Collects a whole answer. */
struct collect {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
};

static void collect_chunk(void *ctx, const char *p, size_t n)
{
	struct collect *c = ctx;

	if (c->failed)
		return;
	if (c->len + n + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 8192;
		char *b;
		while (cap < c->len + n + 1)
			cap *= 2;
		b = realloc(c->buf, cap);
		if (b == NULL) {
			c->failed = true;
			return;
		}
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	c->buf[c->len] = '\0';
}

int control_request(const char *data, const char *request, int timeout_ms,
		    char **answer, size_t *len, char *err, size_t err_size)
{
	struct collect c = {NULL, 0, 0, false};
	int rc;

	*answer = NULL;
	*len = 0;
	rc = control_request_stream(data, request, timeout_ms, collect_chunk,
				    &c, err, err_size);
	if (rc == 0 && c.failed)
		rc = text_error(err, err_size, -ENOMEM, "out of memory");
	if (rc != 0) {
		free(c.buf);
		return rc;
	}
	*answer = c.buf;
	*len = c.len;
	return 0;
}

int control_print(const char *what, const char *data, const char *request,
		  int timeout_ms)
{
	char err[512], *answer;
	size_t len;

	if (control_request(data, request, timeout_ms, &answer, &len, err,
			    sizeof(err)) != 0) {
		fprintf(stderr, "raftfs %s: %s\n", what, err);
		return 1;
	}
	if (strncmp(answer, "error: ", 7) == 0) {
		fprintf(stderr, "raftfs %s: %s", what, answer + 7);
		free(answer);
		return 1;
	}
	fwrite(answer, 1, len, stdout);
	free(answer);
	return 0;
}
