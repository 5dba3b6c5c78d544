/*
 * The client side of a node's control socket (tools/control.c): one
 * request line, then the whole answer until the node closes.
 */

#include "tools/daemon.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int control_request(const char *data, const char *request, int timeout_ms,
		    char **answer, size_t *len, char *err, size_t err_size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t cap = 8192, n = 0;
	char *buf = NULL;
	int fd, rc = 0;

	*answer = NULL;
	*len = 0;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path),
			     "%s/control.sock", data) >= sizeof(sa.sun_path)) {
		snprintf(err, err_size, "data dir path %.200s is too long", data);
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			snprintf(err, err_size,
				 "no node is running on %.200s (start it with "
				 "'raftfs serve' or 'raftfs cluster start')",
				 data);
		else
			snprintf(err, err_size, "%.200s: %s", sa.sun_path,
				 strerror(-rc));
		goto out;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		rc = -EPIPE;
		snprintf(err, err_size, "the node on %.200s closed the socket",
			 data);
		goto out;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;
		if (poll(&p, 1, timeout_ms) <= 0) {
			rc = -ETIMEDOUT;
			snprintf(err, err_size,
				 "the node on %.200s did not answer within %d s",
				 data, timeout_ms / 1000);
			goto out;
		}
		if (n == cap) {
			char *b = realloc(buf, 2 * cap + 1);
			if (b == NULL) {
				rc = -ENOMEM;
				snprintf(err, err_size, "out of memory");
				goto out;
			}
			buf = b;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (n == 0) {
		rc = -ECONNRESET;
		snprintf(err, err_size, "the node on %.200s gave no answer",
			 data);
		goto out;
	}
	buf[n] = '\0';
	*answer = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
