/*
 * Admin requests that take time (hashing a tree, waiting for the driver to
 * carry out a membership change) are answered on threads of their own,
 * never on the transport's I/O thread, which must keep Raft's heartbeats
 * flowing. At most ADMIN_WORKERS at once; beyond that the answer is
 * "busy" and the asker comes back.
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_WORKERS 4

struct job {
	const struct control_source *src;
	uint64_t conn_id;
	uint64_t request_id;
	uint16_t kind;
	char query[256];
};

static atomic_int workers;

/* What `--connect` may ask (a backup names a path on the node's own
 * machine: not remotely), answered through a memory file. */
static size_t control_remote(const struct control_source *src,
			     const char *line, char *out, size_t size)
{
	size_t len = 0;
	int fd;

	if (strncmp(line, "member add ", 11) != 0 &&
	    strncmp(line, "member remove ", 14) != 0 &&
	    strncmp(line, "leader transfer ", 16) != 0 &&
	    strcmp(line, "snapshot") != 0)
		return (size_t)snprintf(out, size,
					"error: not a remote request\n");
	fd = memfd_create("raftfs-answer", MFD_CLOEXEC);
	if (fd < 0)
		return (size_t)snprintf(out, size, "error: %s\n",
					strerror(errno));
	control_answer(src, line, fd);
	if (lseek(fd, 0, SEEK_SET) == 0) {
		while (len < size) {
			ssize_t n = read(fd, out + len, size - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	close(fd);
	return len;
}

static void *answer_main(void *arg)
{
	struct job *j = arg;
	char *out = malloc(NET_MAX_ADMIN_PAYLOAD_BYTES);
	struct net_admin_msg resp = {0};

	if (out != NULL) {
		size_t len;
		bool fill = false;
		if (j->kind == ADMIN_KIND_CHECK)
			len = check_answer(j->src->fr, j->query, out,
					   NET_MAX_ADMIN_PAYLOAD_BYTES, &fill);
		else if (j->kind == ADMIN_KIND_CONTROL)
			len = control_remote(j->src, j->query, out,
					     NET_MAX_ADMIN_PAYLOAD_BYTES);
		else if (j->kind == ADMIN_KIND_STATUS)
			len = control_cluster_status(
				j->src, strcmp(j->query, "json") == 0, out,
				NET_MAX_ADMIN_PAYLOAD_BYTES);
		else
			len = member_answer(j->src, j->query, out,
					    NET_MAX_ADMIN_PAYLOAD_BYTES);
		resp.kind = j->kind;
		resp.request_id = j->request_id;
		resp.payload = (const uint8_t *)out;
		resp.payload_bytes = (uint32_t)len;
		/* The transport may be gone if the node is stopping: the
		 * glue answers -ENOENT then. */
		control_admin_reply(j->src, j->conn_id, &resp);
		/* The hash the answer said is pending: the asker comes
		 * back for it. */
		if (fill)
			check_hash_fill(j->src->fr, j->query);
	}
	free(out);
	free(j);
	atomic_fetch_sub(&workers, 1);
	return NULL;
}

void admin_workers_wait(void)
{
	/* Each worker finishes its answer (bounded by the tree's size or
	 * the driver's answer); none starts once the transport is gone. */
	while (atomic_load(&workers) > 0) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

void admin_on_slow_request(const struct control_source *src,
			   uint64_t conn_id, const struct net_admin_msg *req)
{
	struct net_admin_msg resp = {0};
	struct job *j = NULL;
	pthread_attr_t attr;
	pthread_t t;
	bool started = false;

	resp.kind = req->kind;
	resp.request_id = req->request_id;
	resp.payload = (const uint8_t *)"busy\n";
	resp.payload_bytes = 5;
	if (req->payload_bytes >= sizeof(j->query)) {
		resp.payload = (const uint8_t *)"error: request too long\n";
		resp.payload_bytes = 24;
	} else if (atomic_fetch_add(&workers, 1) >= ADMIN_WORKERS) {
		atomic_fetch_sub(&workers, 1);
	} else if ((j = calloc(1, sizeof(*j))) == NULL) {
		atomic_fetch_sub(&workers, 1);
	} else {
		j->src = src;
		j->conn_id = conn_id;
		j->request_id = req->request_id;
		j->kind = req->kind;
		memcpy(j->query, req->payload, req->payload_bytes);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = pthread_create(&t, &attr, answer_main, j) == 0;
		pthread_attr_destroy(&attr);
		if (!started) {
			atomic_fetch_sub(&workers, 1);
			free(j);
		}
	}
	if (!started)
		/* On the transport's thread, inside the glue lock. */
		net_admin_reply(src->net, conn_id, &resp);
}
