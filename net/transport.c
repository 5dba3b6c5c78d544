/*
 * The transport's I/O thread and public API: one epoll loop per node owns
 * the listener, every connection and the reconnect timers; other threads
 * hand frames over through per-peer bounded queues and an eventfd.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/identity.h"
#include "net/transport.h"

/* Timers are checked at least this often. */
#define SWEEP_MS 50
#define MAX_EVENTS 64

/* Markers in epoll_event.data.ptr for the two non-connection fds. */
static char listen_marker, wake_marker;

int64_t net_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void net_log(struct net *n, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (n->opts.log == NULL)
		return;
	int len = snprintf(line, sizeof(line), "net: node %" PRIu64 ": ",
			   n->id);
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	n->opts.log(n->opts.ctx, level, line);
}

void net_options_default(struct net_options *opts, uint64_t id)
{
	memset(opts, 0, sizeof(*opts));
	opts->id = id;
	opts->idle_timeout_ms = 2000;
	opts->connect_timeout_ms = 1000;
	opts->backoff_min_ms = 50;
	opts->backoff_max_ms = 1000;
	opts->max_queue_bytes = 64u * 1024u * 1024u;
	opts->max_queue_frames = 4096;
	opts->max_inbound = 32;
}

void net_stats_get(struct net *n, struct net_stats *st)
{
	pthread_mutex_lock(&n->lock);
	st->inbound = n->n_inbound;
	pthread_mutex_unlock(&n->lock);
	st->receive_buffer_bytes =
		__atomic_load_n(&n->rbuf_bytes, __ATOMIC_RELAXED);
}

uint16_t net_listen_port(const struct net *n)
{
	return n->listen_port;
}

/* ---------------------------------------------------------------------- */
/* The listener.                                                          */

static void accept_all(struct net *n)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd = accept4(n->listen_fd, (struct sockaddr *)&sa, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				net_log(n, NET_LOG_ERROR, "accept: %s",
					strerror(errno));
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		char host[INET6_ADDRSTRLEN], serv[8], remote[64];
		if (getnameinfo((struct sockaddr *)&sa, len, host, sizeof(host),
				serv, sizeof(serv),
				NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			snprintf(remote, sizeof(remote), "?");
		else
			snprintf(remote, sizeof(remote), "%s:%s", host, serv);
		if (n->n_inbound >= n->opts.max_inbound) {
			net_log(n, NET_LOG_WARN,
				"inbound from %s: refused: %u connections "
				"already",
				remote, n->n_inbound);
			close(fd);
			continue;
		}
		net_socket_options(n, fd);
		struct conn *c = net_conn_new(n, fd, false, NULL, remote);
		if (c == NULL) {
			net_log(n, NET_LOG_ERROR, "inbound from %s: out of memory",
				remote);
			close(fd);
			continue;
		}
		c->state = CONN_HANDSHAKE;
		c->deadline_ms = net_now_ms() + n->opts.connect_timeout_ms;
		pthread_mutex_lock(&n->lock);
		c->next = n->inbound;
		n->inbound = c;
		n->n_inbound++;
		pthread_mutex_unlock(&n->lock);
		net_conn_pump(n, c);
	}
}

/* ---------------------------------------------------------------------- */
/* The loop.                                                              */

static void sweep(struct net *n, int64_t now)
{
	for (uint32_t i = 0; i < n->n_peers; i++) {
		struct peer *p = &n->peers[i];
		if (p->out)
			net_conn_timers(n, p->out, now);
		else if (p->id != 0 && now >= p->next_attempt_ms)
			net_peer_connect(n, p, now);
	}
	struct conn *c = n->inbound;
	while (c) {
		struct conn *next = c->next;
		net_conn_timers(n, c, now);
		c = next;
	}
}

/* Work handed over by other threads: frames to write. */
static void kick_writers(struct net *n)
{
	for (uint32_t i = 0; i < n->n_peers; i++) {
		struct conn *c = n->peers[i].out;
		if (c)
			net_conn_kick(n, c);
	}
	struct conn *c = n->inbound;
	while (c) {
		struct conn *next = c->next;
		net_conn_kick(n, c);
		c = next;
	}
}

static bool any_again(struct net *n)
{
	for (uint32_t i = 0; i < n->n_peers; i++) {
		if (n->peers[i].out && n->peers[i].out->again)
			return true;
	}
	for (struct conn *c = n->inbound; c; c = c->next) {
		if (c->again)
			return true;
	}
	return false;
}

static void pump_again(struct net *n)
{
	for (uint32_t i = 0; i < n->n_peers; i++) {
		struct conn *c = n->peers[i].out;
		if (c && c->again)
			net_conn_pump(n, c);
	}
	struct conn *c = n->inbound;
	while (c) {
		struct conn *next = c->next;
		if (c->again)
			net_conn_pump(n, c);
		c = next;
	}
}

static void bury(struct net *n)
{
	while (n->graveyard) {
		struct conn *c = n->graveyard;
		n->graveyard = c->next;
		net_conn_free(n, c);
	}
}

static void *io_thread(void *arg)
{
	struct net *n = arg;
	struct epoll_event events[MAX_EVENTS];
	int64_t last_sweep = 0;
	sigset_t all;
	/* Signals are for the application's threads. In particular a write
	 * to a connection the peer reset raises SIGPIPE in the writing
	 * thread: blocked here, the write just fails with EPIPE. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!n->stop) {
		int64_t now = net_now_ms();
		int timeout = SWEEP_MS - (int)(now - last_sweep);
		if (timeout < 0 || any_again(n))
			timeout = 0;
		int k = epoll_wait(n->epoll_fd, events, MAX_EVENTS, timeout);
		if (k < 0 && errno != EINTR) {
			net_log(n, NET_LOG_ERROR, "epoll_wait: %s",
				strerror(errno));
			break;
		}
		for (int i = 0; i < k; i++) {
			void *ptr = events[i].data.ptr;
			if (ptr == &listen_marker) {
				accept_all(n);
			} else if (ptr == &wake_marker) {
				uint64_t v;
				ssize_t rc = read(n->wake_fd, &v, sizeof(v));
				(void)rc;
				/* After the read, before the queues are taken
				 * (net_wake). */
				atomic_store(&n->wake_pending, false);
				net_peers_apply_changes(n);
				kick_writers(n);
			} else {
				struct conn *c = ptr;
				if (!c->closed)
					net_conn_pump(n, c);
			}
		}
		pump_again(n);
		now = net_now_ms();
		if (now - last_sweep >= SWEEP_MS) {
			sweep(n, now);
			last_sweep = now;
		}
		bury(n);
	}
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* Creation and destruction.                                              */

/* "host:port" or "[v6]:port" to a socket address (resolved once, here). */
int net_resolve(const char *address, struct sockaddr_storage *out,
		socklen_t *len)
{
	char host[RAFT_MAX_ADDRESS];
	const char *colon = strrchr(address, ':');
	if (colon == NULL || colon == address || colon[1] == '\0' ||
	    (size_t)(colon - address) >= sizeof(host))
		return -EINVAL;
	const char *start = address;
	size_t hlen = (size_t)(colon - address);
	if (address[0] == '[' && colon[-1] == ']') {
		start++;
		hlen -= 2;
	}
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -EINVAL;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int check_own_certificate(struct net *n, char *err, size_t err_size)
{
	struct net_identity ca, me;
	int rc = net_cert_identity(n->opts.ca_file, &ca, err, err_size);
	if (rc < 0)
		return rc;
	if (ca.role != NET_ROLE_CA)
		return net_err(err, err_size, -EINVAL, "%s is not a cluster CA",
			       n->opts.ca_file);
	rc = net_cert_identity(n->opts.cert_file, &me, err, err_size);
	if (rc < 0)
		return rc;
	if (me.role != NET_ROLE_NODE || me.node_id != n->id ||
	    strcmp(me.cluster_id, ca.cluster_id) != 0)
		return net_err(err, err_size, -EINVAL,
			       "%s is not node %" PRIu64
			       "'s certificate for cluster %s",
			       n->opts.cert_file, n->id, ca.cluster_id);
	memcpy(n->cluster_id, ca.cluster_id, sizeof(n->cluster_id));
	return 0;
}

static int open_listener(struct net *n, char *err, size_t err_size)
{
	int one = 1;
	n->listen_fd = socket(n->listen_addr.ss_family,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->listen_fd < 0)
		return net_err(err, err_size, -errno, "socket: %s",
			       strerror(errno));
	(void)setsockopt(n->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
			 sizeof(one));
	if (bind(n->listen_fd, (struct sockaddr *)&n->listen_addr,
		 n->listen_addr_len) < 0 ||
	    listen(n->listen_fd, 64) < 0)
		return net_err(err, err_size, -errno, "listen on %s: %s",
			       n->opts.listen, strerror(errno));
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	if (getsockname(n->listen_fd, (struct sockaddr *)&sa, &len) == 0)
		n->listen_port = ntohs(sa.ss_family == AF_INET
					       ? ((struct sockaddr_in *)&sa)->sin_port
					       : ((struct sockaddr_in6 *)&sa)->sin6_port);
	return 0;
}

static int epoll_add(struct net *n, int fd, void *ptr)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = ptr};
	return epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static int setup(struct net *n, char *err, size_t err_size)
{
	const struct net_options *o = &n->opts;
	int rc;
	if (o->id == 0 || o->listen == NULL || o->ca_file == NULL ||
	    o->cert_file == NULL || o->key_file == NULL ||
	    o->n_peers > RAFT_MAX_MEMBERS || o->idle_timeout_ms < 100 ||
	    o->connect_timeout_ms == 0 || o->backoff_min_ms == 0 ||
	    o->backoff_max_ms < o->backoff_min_ms || o->max_queue_frames == 0 ||
	    o->max_queue_bytes < NET_MAX_FRAME_BYTES || o->max_inbound == 0)
		return net_err(err, err_size, -EINVAL, "bad transport options");
	rc = check_own_certificate(n, err, err_size);
	if (rc < 0)
		return rc;
	if (net_resolve(o->listen, &n->listen_addr, &n->listen_addr_len) < 0)
		return net_err(err, err_size, -EINVAL,
			       "bad listen address '%s'", o->listen);
	for (uint32_t i = 0; i < o->n_peers; i++) {
		struct peer *p = &n->peers[i];
		const struct net_peer_address *pa = &o->peers[i];
		if (pa->id == 0 || pa->id == o->id || net_peer_find(n, pa->id))
			return net_err(err, err_size, -EINVAL,
				       "bad or duplicate peer id %" PRIu64,
				       pa->id);
		if (memchr(pa->address, '\0', sizeof(pa->address)) == NULL ||
		    net_resolve(pa->address, &p->addr, &p->addr_len) < 0)
			return net_err(err, err_size, -EINVAL,
				       "bad address for peer %" PRIu64, pa->id);
		p->id = pa->id;
		memcpy(p->address, pa->address, sizeof(p->address));
		p->q.limit_bytes = o->max_queue_bytes;
		p->q.limit_frames = o->max_queue_frames;
		n->n_peers++;
	}
	rc = net_tls_ctx_create(o, true, &n->server_ctx, err, err_size);
	if (rc == 0)
		rc = net_tls_ctx_create(o, false, &n->client_ctx, err,
					err_size);
	if (rc < 0)
		return rc;
	n->entries = calloc(RAFT_MAX_BATCH_ENTRIES, sizeof(*n->entries));
	if (n->entries == NULL)
		return net_err(err, err_size, -ENOMEM, "out of memory");
	rc = open_listener(n, err, err_size);
	if (rc < 0)
		return rc;
	n->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->epoll_fd < 0 || n->wake_fd < 0 ||
	    epoll_add(n, n->listen_fd, &listen_marker) < 0 ||
	    epoll_add(n, n->wake_fd, &wake_marker) < 0)
		return net_err(err, err_size, -errno, "epoll: %s",
			       strerror(errno));
	if (getrandom(&n->rng, sizeof(n->rng), 0) != sizeof(n->rng) ||
	    n->rng == 0)
		n->rng = (uint64_t)net_now_ms() ^ (o->id << 32) ^ 1;
	return 0;
}

int net_create(const struct net_options *opts, struct net **out, char *err,
	       size_t err_size)
{
	struct net *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return net_err(err, err_size, -ENOMEM, "out of memory");
	n->opts = *opts;
	n->id = opts->id;
	n->listen_fd = n->epoll_fd = n->wake_fd = -1;
	pthread_mutex_init(&n->lock, NULL);
	int rc = setup(n, err, err_size);
	if (rc == 0) {
		rc = -pthread_create(&n->thread, NULL, io_thread, n);
		if (rc < 0)
			net_err(err, err_size, rc, "cannot start the I/O thread");
		else
			n->thread_started = true;
	}
	if (rc < 0) {
		ERR_clear_error();
		net_destroy(n);
		return rc;
	}
	*out = n;
	return 0;
}

static void conn_destroy(struct net *n, struct conn *c)
{
	if (c->state == CONN_ESTABLISHED) {
		/* close_notify, one attempt: the peer sees a clean close. */
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	struct out_frame *f = c->cur;
	c->cur = NULL;
	while (f || c->wq) {
		if (f == NULL) {
			f = c->wq;
			c->wq = f->next;
		}
		free(f);
		f = NULL;
	}
	net_sendq_drop_all(n, &c->own_q);
	net_conn_free(n, c);
}

void net_destroy(struct net *n)
{
	if (n == NULL)
		return;
	if (n->thread_started) {
		n->stop = true;
		net_wake(n);
		pthread_join(n->thread, NULL);
	}
	for (uint32_t i = 0; i < n->n_peers; i++) {
		struct conn *c = n->peers[i].out;
		if (c) {
			/* No sender finds it any more; one writing to it
			 * now finishes first. */
			pthread_mutex_lock(&n->lock);
			n->peers[i].direct = NULL;
			pthread_mutex_unlock(&n->lock);
			pthread_mutex_lock(&c->mu);
			pthread_mutex_unlock(&c->mu);
			conn_destroy(n, c);
		}
		net_sendq_drop_all(n, &n->peers[i].q);
	}
	while (n->inbound) {
		struct conn *c = n->inbound;
		n->inbound = c->next;
		conn_destroy(n, c);
	}
	bury(n);
	if (n->listen_fd >= 0)
		close(n->listen_fd);
	if (n->epoll_fd >= 0)
		close(n->epoll_fd);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	SSL_CTX_free(n->server_ctx);
	SSL_CTX_free(n->client_ctx);
	free(n->entries);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
