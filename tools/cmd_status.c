/*
 * raftfs status --data DIR [--json]: ask the node running on DIR, through
 * its control socket, for the cluster's status as it sees it (it asks the
 * other members and takes replication progress from the leader). A node
 * that is not running: exit 1.
 */

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/commands.h"

#define ANSWER_TIMEOUT_MS 10000

int cmd_status(int argc, char **argv);

static int usage(void)
{
	fprintf(stderr, "usage: raftfs status --data DIR [--json]\n");
	return EXIT_USAGE;
}

int cmd_status(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *data = NULL;
	bool json = false, error = false, first = true;
	char buf[8192];
	int fd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else
			return usage();
	}
	if (data == NULL)
		return usage();
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path),
			     "%s/control.sock", data) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "raftfs status: data dir path %s is too long\n",
			data);
		return EXIT_FAIL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == ENOENT || e == ECONNREFUSED)
			fprintf(stderr,
				"raftfs status: no node is running on %s "
				"(start it with 'raftfs serve' or 'raftfs "
				"cluster start')\n",
				data);
		else
			fprintf(stderr, "raftfs status: %s: %s\n", sa.sun_path,
				strerror(e));
		if (fd >= 0)
			close(fd);
		return EXIT_FAIL;
	}
	snprintf(buf, sizeof(buf), "status %s\n", json ? "json" : "text");
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
		fprintf(stderr, "raftfs status: the node closed the socket\n");
		close(fd);
		return EXIT_FAIL;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, ANSWER_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "raftfs status: the node on %s did not "
					"answer within %d s\n",
				data, ANSWER_TIMEOUT_MS / 1000);
			close(fd);
			return EXIT_FAIL;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (first && n >= 7 && memcmp(buf, "error: ", 7) == 0)
			error = true;
		first = false;
		fwrite(buf, 1, (size_t)n, error ? stderr : stdout);
	}
	close(fd);
	if (first) {
		fprintf(stderr, "raftfs status: the node on %s gave no answer\n",
			data);
		return EXIT_FAIL;
	}
	return error ? EXIT_FAIL : EXIT_OK;
}
