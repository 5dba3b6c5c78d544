/*
 * The control socket: DIR/control.sock (mode 0600, so only the data dir's
 * owner may ask), served by one thread. A client sends one request line
 * ("status json" or "status text") and reads the answer until the server
 * closes; an answer that starts with "error: " is a failure. Also the
 * answer to a peer's or an administrator's NODE_VIEW admin request over
 * the transport.
 */

#define _GNU_SOURCE
#include "tools/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS 2000
#define ANSWER_BYTES (256u * 1024u)
#define PEER_CALL_TIMEOUT_MS 1500u
#define SNAPSHOT_WAIT_MS 60000

struct control {
	struct control_source src;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	int stop_pipe[2];
	pthread_t thread;
};

/* Read one line (up to size-1 bytes) within the timeout. */
static int read_request(int fd, char *line, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, REQUEST_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		n = read(fd, line + len, size - 1 - len);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n') != NULL) {
			*strchr(line, '\n') = '\0';
			return 0;
		}
	}
	return -EMSGSIZE;
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client went away */
		p += n;
		len -= (size_t)n;
	}
}

/* `raftfs snapshot`: a snapshot now; wait for it (the sync of the fs
 * store and the compaction of the log). */
static size_t snapshot_now(const struct control_source *src, char *out,
			   size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	char fsdir[4200];
	uint64_t taken;
	int rc;

	if (st == NULL)
		return (size_t)snprintf(out, size, "error: out of memory\n");
	raft_runtime_status_get(src->rt, st);
	taken = st->snapshots_taken;
	rc = raft_runtime_snapshot(src->rt);
	for (int i = 0; rc == 0 && i < SNAPSHOT_WAIT_MS / 50; i++) {
		raft_runtime_status_get(src->rt, st);
		if (st->snapshots_taken > taken || st->failed != 0)
			break;
		usleep(50 * 1000);
	}
	if (rc == 0 && st->snapshots_taken <= taken)
		rc = st->failed != 0 ? -EIO : -ETIMEDOUT;
	if (rc != 0) {
		free(st);
		return (size_t)snprintf(out, size, "error: no snapshot: %s\n",
					rc == -ETIMEDOUT ? "the node did not take it "
							   "within 60 s"
							 : strerror(-rc));
	}
	snprintf(fsdir, sizeof(fsdir), "%s/fs", src->args->data);
	rc = snprintf(out, size,
		      "snapshot at index %" PRIu64 " (term %" PRIu64
		      "), fs store %" PRIu64 " bytes; the log now starts at "
		      "index %" PRIu64 "\n",
		      st->snapshot_index, st->snapshot_term,
		      data_dir_bytes(fsdir), st->log_first_index);
	free(st);
	return (size_t)rc;
}

/* A read barrier: every change committed before it is applied here. */
struct barrier_wait {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
	int rc;
};

static void barrier_done(void *ctx, int rc)
{
	struct barrier_wait *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->rc = rc;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static int barrier(const struct control_source *src)
{
	struct barrier_wait w = {PTHREAD_MUTEX_INITIALIZER,
				 PTHREAD_COND_INITIALIZER, false, 0};
	int rc = raft_runtime_read_index(src->rt, src->args->op_timeout_ms,
					 barrier_done, &w);

	if (rc != 0)
		return rc;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return w.rc;
}

/* `raftfs snapshot --out FILE`: this node's tree, once it has applied
 * everything committed before the request, into FILE (an absolute path
 * the client resolved). */
static size_t backup_now(const struct control_source *src, const char *path,
			 char *out, size_t size)
{
	struct raft_runtime_status *st = malloc(sizeof(*st));
	struct fs_backup_info info;
	char err[600];
	int rc;

	if (st == NULL)
		return (size_t)snprintf(out, size, "error: out of memory\n");
	rc = barrier(src);
	if (rc != 0) {
		free(st);
		return (size_t)snprintf(out, size,
					"error: no backup: this node cannot "
					"reach a leader to catch up (%s); is "
					"a majority up?\n",
					strerror(-rc));
	}
	raft_runtime_status_get(src->rt, st);
	rc = fs_raft_backup(src->fr, st->raft.term, path, &info, err,
			    sizeof(err));
	free(st);
	if (rc != 0)
		return (size_t)snprintf(out, size, "error: no backup: %s\n",
					err);
	return (size_t)snprintf(out, size,
				"backup at index %" PRIu64 " (term %" PRIu64
				"): %s, %" PRIu64 " bytes\n",
				info.index, info.term, path, info.bytes);
}

void control_answer(const struct control_source *src, const char *line,
		    int fd)
{
	char *answer;
	size_t len = 0;

	if ((strncmp(line, "member ", 7) == 0 ||
	     strncmp(line, "leader transfer ", 16) == 0)) {
		member_run(src, line, fd); /* streams its progress */
		return;
	}
	answer = malloc(ANSWER_BYTES);
	if (answer == NULL)
		return;
	if (line[0] == '\0') {
		len = (size_t)snprintf(answer, ANSWER_BYTES,
				       "error: bad request\n");
	} else if (strcmp(line, "fsck cluster json") == 0 ||
		   strcmp(line, "fsck cluster text") == 0 ||
		   strcmp(line, "fsck cluster json repair") == 0 ||
		   strcmp(line, "fsck cluster text repair") == 0) {
		len = control_cluster_check(src, line[13] == 'j',
					    strlen(line) > 17, answer,
					    ANSWER_BYTES);
	} else if (strcmp(line, "snapshot") == 0) {
		len = snapshot_now(src, answer, ANSWER_BYTES);
	} else if (strncmp(line, "backup /", 8) == 0) {
		len = backup_now(src, line + 7, answer, ANSWER_BYTES);
	} else if (strcmp(line, "status json") == 0 ||
		   strcmp(line, "status text") == 0) {
		len = control_cluster_status(src, line[7] == 'j', answer,
					     ANSWER_BYTES);
	} else {
		len = (size_t)snprintf(answer, ANSWER_BYTES,
				       "error: unknown request '%.60s'\n",
				       line);
	}
	write_all(fd, answer, len);
	free(answer);
}

static void serve_client(struct control *c, int fd)
{
	char line[4200] = "";

	if (read_request(fd, line, sizeof(line)) != 0)
		line[0] = '\0'; /* answered as a bad request */
	control_answer(&c->src, line, fd);
}

static void *control_main(void *arg)
{
	struct control *c = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
				      {.fd = c->stop_pipe[0], .events = POLLIN}};
		int fd;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_client(c, fd);
		close(fd);
	}
	return NULL;
}

int control_start(const struct control_source *src, struct control **out,
		  char *err, size_t err_size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct control *c;
	mode_t old;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->src = *src;
	c->fd = -1;
	c->stop_pipe[0] = c->stop_pipe[1] = -1;
	if ((size_t)snprintf(c->path, sizeof(c->path), "%s/control.sock",
			     src->args->data) >= sizeof(c->path)) {
		snprintf(err, err_size,
			 "data dir path %s is too long for a unix socket",
			 src->args->data);
		free(c);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, c->path, sizeof(c->path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || pipe2(c->stop_pipe, O_CLOEXEC) != 0) {
		rc = -errno;
		goto fail;
	}
	/* We hold the data dir's lock: a socket file left there belongs to
	 * a node that died. */
	unlink(c->path);
	old = umask(077);
	rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || chmod(c->path, 0600) != 0 || listen(c->fd, 16) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = -pthread_create(&c->thread, NULL, control_main, c);
	if (rc != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	snprintf(err, err_size, "control socket %s: %s", c->path,
		 strerror(-rc));
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop_pipe[0] >= 0) {
		close(c->stop_pipe[0]);
		close(c->stop_pipe[1]);
	}
	free(c);
	return rc;
}

void control_stop(struct control *c)
{
	if (c == NULL)
		return;
	if (write(c->stop_pipe[1], "x", 1) != 1)
		daemon_log(LOG_WARN, "control: cannot wake the socket thread");
	pthread_join(c->thread, NULL);
	close(c->fd);
	close(c->stop_pipe[0]);
	close(c->stop_pipe[1]);
	unlink(c->path);
	free(c);
}

void control_on_admin(void *ctx, uint64_t conn_id,
		      const struct net_identity *who,
		      const struct net_admin_msg *req)
{
	const struct control_source *src = ctx;
	struct net_admin_msg resp = {0};
	char view[4096];

	/* A node or the administrator may look; only the administrator
	 * may ask what the control socket's owner may. */
	if (req->kind == ADMIN_KIND_CONTROL && who->role != NET_ROLE_ADMIN) {
		resp.kind = req->kind;
		resp.request_id = req->request_id;
		resp.payload = (const uint8_t *)"error: the administrator's "
						"certificate is needed\n";
		resp.payload_bytes = (uint32_t)strlen((const char *)resp.payload);
		if (net_admin_reply(src->net, conn_id, &resp) != 0)
			daemon_log(LOG_DEBUG, "control: admin answer dropped");
		return;
	}
	if (req->kind == ADMIN_KIND_CHECK || req->kind == ADMIN_KIND_MEMBER ||
	    req->kind == ADMIN_KIND_STATUS || req->kind == ADMIN_KIND_CONTROL) {
		admin_on_slow_request(src, conn_id, req);
		return;
	}
	if (req->kind == ADMIN_KIND_SNAPSHOT) {
		resync_on_snapshot_request(src, conn_id, who, req);
		return;
	}
	if (req->kind != ADMIN_KIND_NODE_VIEW)
		return; /* unknown kinds get no answer; the caller times out */
	resp.kind = req->kind;
	resp.request_id = req->request_id;
	resp.payload = (const uint8_t *)view;
	resp.payload_bytes = (uint32_t)control_node_view(src, view,
							 sizeof(view));
	if (net_admin_reply(src->net, conn_id, &resp) != 0)
		daemon_log(LOG_DEBUG, "control: admin answer dropped");
}

int control_admin_call(const struct control_source *src, const char *address,
		       const struct net_admin_msg *req, uint8_t *buf,
		       size_t size, struct net_admin_msg *resp, char *err,
		       size_t err_size)
{
	const struct serve_args *a = src->args;
	char ca[4200], crt[4200], key[4200];
	struct net_client_options o = {0};

	snprintf(ca, sizeof(ca), "%s/ca.crt", a->certs);
	snprintf(crt, sizeof(crt), "%s/node%llu.crt", a->certs,
		 (unsigned long long)a->id);
	snprintf(key, sizeof(key), "%s/node%llu.key", a->certs,
		 (unsigned long long)a->id);
	o.ca_file = ca;
	o.cert_file = crt;
	o.key_file = key;
	o.timeout_ms = PEER_CALL_TIMEOUT_MS;
	o.source = a->listen;
	return net_admin_call(address, &o, req, buf, size, resp, err,
			      err_size);
}
