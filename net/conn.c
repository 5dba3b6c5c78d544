/*
 * One connection, driven by the I/O thread: TCP connect, TLS handshake,
 * the identity checks of both sides, reading and dispatching frames, and
 * writing queued frames. Every refusal closes the connection with one log
 * line saying why; nothing here affects other connections.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "net/identity.h"
#include "net/transport.h"

/* Initial receive buffer; it doubles while a frame does not fit. */
#define RBUF_INITIAL (64u * 1024u)
/* Bytes one connection may read or write per turn of the event loop
 * before the others get theirs. */
#define TURN_BUDGET (8u * 1024u * 1024u)
/* Refused inbound connections are logged at most once per this. */
#define REFUSAL_LOG_INTERVAL_MS 10000
/* Frames larger than this are written corked (see pump_write), and
 * never directly by a sender. */
#define CORK_BYTES NET_DIRECT_MAX_BYTES

struct conn *net_conn_new(struct net *n, int fd, bool outbound,
			  struct peer *peer, const char *remote)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ssl = SSL_new(outbound ? n->client_ctx : n->server_ctx);
	if (c->ssl == NULL || !SSL_set_fd(c->ssl, fd)) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	if (outbound)
		SSL_set_connect_state(c->ssl);
	else
		SSL_set_accept_state(c->ssl);
	pthread_mutex_init(&c->mu, NULL);
	c->fd = fd;
	c->outbound = outbound;
	c->peer = peer;
	c->id = ++n->next_conn_id;
	snprintf(c->remote, sizeof(c->remote), "%s", remote);
	c->own_q.limit_bytes = 4u * NET_MAX_ADMIN_PAYLOAD_BYTES;
	c->own_q.limit_frames = 64;
	c->q = outbound ? &peer->q : &c->own_q;
	return c;
}

void net_conn_free(struct net *n, struct conn *c)
{
	if (c == NULL)
		return;
	__atomic_sub_fetch(&n->rbuf_bytes, c->rcap, __ATOMIC_RELAXED);
	SSL_free(c->ssl);
	free(c->rbuf);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void net_conn_set_events(struct net *n, struct conn *c)
{
	uint32_t ev = EPOLLIN;
	if (c->state == CONN_CONNECTING || c->want_write)
		ev = EPOLLOUT;
	if (c->state == CONN_ESTABLISHED && c->want_write)
		ev = EPOLLIN | EPOLLOUT;
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	int op = c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(n->epoll_fd, op, c->fd, &e) == 0)
		c->events = ev;
	else
		net_log(n, NET_LOG_ERROR, "epoll_ctl on %s: %s", c->remote,
			strerror(errno));
}

static void describe(const struct conn *c, char *buf, size_t size)
{
	if (c->outbound)
		snprintf(buf, size, "peer %" PRIu64 " (%s)", c->peer->id,
			 c->remote);
	else if (c->who.role == NET_ROLE_NODE)
		snprintf(buf, size, "inbound from node %" PRIu64 " (%s)",
			 c->who.node_id, c->remote);
	else if (c->who.role == NET_ROLE_ADMIN)
		snprintf(buf, size, "inbound from admin (%s)", c->remote);
	else
		snprintf(buf, size, "inbound from %s", c->remote);
}

void net_conn_close(struct net *n, struct conn *c, int level,
		    const char *fmt, ...)
{
	char reason[600], who[128];
	va_list ap;
	if (c->closed)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	describe(c, who, sizeof(who));
	bool quiet = c->outbound && c->state != CONN_ESTABLISHED &&
		     c->peer->failure_logged && level > NET_LOG_ERROR;
	char more[64] = "";
	if (!c->outbound && c->state != CONN_ESTABLISHED &&
	    level > NET_LOG_ERROR) {
		/* A stranger (a removed node, another cluster, a scanner)
		 * may dial every second: one refusal per interval is logged
		 * at its level, the rest at debug, and counted. */
		int64_t now = net_now_ms();
		if (now - n->refusal_logged_ms < REFUSAL_LOG_INTERVAL_MS) {
			quiet = true;
			n->refusals_quiet++;
		} else {
			if (n->refusals_quiet)
				snprintf(more, sizeof(more),
					 " (%" PRIu64 " more refused since the "
					 "last logged)",
					 n->refusals_quiet);
			n->refusal_logged_ms = now;
			n->refusals_quiet = 0;
		}
	}
	net_log(n, quiet ? NET_LOG_DEBUG : level, "%s: closing: %s%s", who,
		reason, more);
	if (c->outbound && c->state != CONN_ESTABLISHED)
		c->peer->failure_logged = true;
	c->closed = true;
	if (c->events)
		epoll_ctl(n->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->state == CONN_ESTABLISHED && level >= NET_LOG_INFO) {
		/* A polite close: one attempt at close_notify. */
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	close(c->fd);
	c->fd = -1;
	/* Frames taken for writing die with the connection. */
	struct sendq *q = c->q;
	if (c->cur)
		net_sendq_done(n, q, c->cur);
	c->cur = NULL;
	while (c->wq) {
		struct out_frame *f = c->wq;
		c->wq = f->next;
		net_sendq_done(n, q, f);
	}
	if (c->outbound) {
		net_conn_closed_outbound(n, c->peer,
					 c->state == CONN_ESTABLISHED);
	} else {
		pthread_mutex_lock(&n->lock);
		struct conn **pp = &n->inbound;
		while (*pp && *pp != c)
			pp = &(*pp)->next;
		if (*pp)
			*pp = c->next;
		n->n_inbound--;
		pthread_mutex_unlock(&n->lock);
		net_sendq_drop_all(n, &c->own_q);
	}
	c->next = n->graveyard;
	n->graveyard = c;
}

/* ---------------------------------------------------------------------- */
/* Handshake and identity.                                                */

/* Who the peer's certificate names, checked against what this side
 * expects. Returns 0 or closes the connection. */
static int check_identity(struct net *n, struct conn *c)
{
	const char *why;
	X509 *crt = SSL_get0_peer_certificate(c->ssl);
	if (crt == NULL) {
		net_conn_close(n, c, NET_LOG_WARN, "no peer certificate");
		return -EPERM;
	}
	if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "certificate verification failed: %s",
			       X509_verify_cert_error_string(
				       SSL_get_verify_result(c->ssl)));
		return -EPERM;
	}
	if (net_identity_from_x509(crt, &c->who, &why) < 0) {
		net_conn_close(n, c, NET_LOG_WARN, "%s", why);
		return -EPERM;
	}
	if (strcmp(c->who.cluster_id, n->cluster_id) != 0) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "certificate is for cluster %s, this is %s",
			       c->who.cluster_id, n->cluster_id);
		return -EPERM;
	}
	if (c->outbound) {
		if (c->who.role != NET_ROLE_NODE ||
		    c->who.node_id != c->peer->id) {
			net_conn_close(n, c, NET_LOG_WARN,
				       "dialled node %" PRIu64
				       " but its certificate names %s %" PRIu64,
				       c->peer->id,
				       c->who.role == NET_ROLE_NODE ? "node"
								    : "role",
				       c->who.role == NET_ROLE_NODE
					       ? c->who.node_id
					       : c->who.role);
			return -EPERM;
		}
		return 0;
	}
	if (c->who.role == NET_ROLE_ADMIN)
		return 0;
	if (c->who.role != NET_ROLE_NODE) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "certificate is neither a node's nor admin's");
		return -EPERM;
	}
	if (c->who.node_id == n->id || !net_peer_find(n, c->who.node_id)) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "certificate names node %" PRIu64
			       ", not a peer of node %" PRIu64,
			       c->who.node_id, n->id);
		return -EPERM;
	}
	return 0;
}

/* A peer sends its Raft traffic on one connection to us: the first Raft
 * frame on a new one retires the old, which a cut or a restart may have
 * left behind. A connection that only carries admin requests (a peer
 * asking for status) leaves the peer's Raft connection alone. */
static void retire_older(struct net *n, struct conn *c)
{
	c->carries_raft = true;
	for (struct conn *o = n->inbound; o; o = o->next) {
		if (o != c && !o->closed && o->carries_raft &&
		    o->who.role == NET_ROLE_NODE &&
		    o->who.node_id == c->who.node_id) {
			net_conn_close(n, o, NET_LOG_INFO,
				       "replaced by a new connection");
			break;
		}
	}
}

static void handshake(struct net *n, struct conn *c)
{
	char why[600];
	enum tls_result r = net_tls_handshake(c, why, sizeof(why));
	if (r == TLS_AGAIN)
		return;
	if (r != TLS_OK) {
		net_conn_close(n, c, NET_LOG_WARN, "%s", why);
		return;
	}
	if (check_identity(n, c) < 0)
		return;
	c->state = CONN_ESTABLISHED;
	c->want_write = false;
	c->established_ms = c->last_rx_ms = c->last_tx_ms = net_now_ms();
	char who[128];
	describe(c, who, sizeof(who));
	net_log(n, NET_LOG_INFO, "%s: established (%s)", who,
		SSL_get_cipher_name(c->ssl));
	if (c->outbound)
		net_peer_connected(n, c->peer);
}

/* ---------------------------------------------------------------------- */
/* Frames received.                                                       */

static void on_raft_frame(struct net *n, struct conn *c,
			  const struct net_frame *f)
{
	const char *why = NULL;
	struct raft_message m;
	if (c->who.role != NET_ROLE_NODE) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "an admin certificate may not send raft "
			       "traffic");
		return;
	}
	int rc = net_raft_decode(f->body, f->body_bytes, &m, n->entries,
				 RAFT_MAX_BATCH_ENTRIES, &n->snap, &why);
	if (rc < 0) {
		net_conn_close(n, c, NET_LOG_WARN, "bad raft message: %s",
			       why);
		return;
	}
	if (m.from != c->who.node_id) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "raft message claims to be from node %" PRIu64
			       " but the certificate names node %" PRIu64,
			       m.from, c->who.node_id);
		return;
	}
	if (m.to != n->id) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "raft message addressed to node %" PRIu64,
			       m.to);
		return;
	}
	if (!c->outbound && !c->carries_raft)
		retire_older(n, c);
	if (n->opts.on_raft)
		n->opts.on_raft(n->opts.ctx, &m);
}

static void on_chunk_frame(struct net *n, struct conn *c,
			   const struct net_frame *f)
{
	const char *why = NULL;
	struct raft_chunk ch;
	if (c->who.role != NET_ROLE_NODE) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "an admin certificate may not send snapshot "
			       "chunks");
		return;
	}
	int rc = net_chunk_decode(f->body, f->body_bytes, &ch, &why);
	if (rc < 0) {
		net_conn_close(n, c, NET_LOG_WARN, "bad snapshot chunk: %s",
			       why);
		return;
	}
	if (ch.from != c->who.node_id) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "snapshot chunk claims to be from node %" PRIu64
			       " but the certificate names node %" PRIu64,
			       ch.from, c->who.node_id);
		return;
	}
	if (ch.to != n->id) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "snapshot chunk addressed to node %" PRIu64,
			       ch.to);
		return;
	}
	if (n->opts.on_chunk)
		n->opts.on_chunk(n->opts.ctx, &ch);
}

static void on_frame(struct net *n, struct conn *c, const struct net_frame *f)
{
	const char *why = NULL;
	if (c->outbound) {
		/* The peer answers on its own connection; nothing may come
		 * back on ours. */
		net_conn_close(n, c, NET_LOG_WARN,
			       "unexpected frame type %u on an outbound "
			       "connection",
			       f->type);
		return;
	}
	switch (f->type) {
	case NET_FRAME_PING:
		return;
	case NET_FRAME_RAFT:
		on_raft_frame(n, c, f);
		return;
	case NET_FRAME_SNAPSHOT:
		on_chunk_frame(n, c, f);
		return;
	case NET_FRAME_ADMIN_REQUEST: {
		struct net_admin_msg a;
		if (net_admin_decode(f->body, f->body_bytes, &a, &why) < 0) {
			net_conn_close(n, c, NET_LOG_WARN,
				       "bad admin request: %s", why);
			return;
		}
		if (n->opts.on_admin)
			n->opts.on_admin(n->opts.ctx, c->id, &c->who, &a);
		return;
	}
	default:
		net_conn_close(n, c, NET_LOG_WARN,
			       "unexpected frame type %u from a client",
			       f->type);
		return;
	}
}

/* Make room for more bytes: compact, or double while full. The buffer
 * never grows past the frame it is waiting for. */
static int rbuf_room(struct net *n, struct conn *c, size_t need)
{
	if (c->roff > 0 && (c->rlen == c->rcap || c->roff == c->rlen)) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	if (c->rlen < c->rcap)
		return 0;
	size_t cap = c->rcap ? c->rcap * 2 : RBUF_INITIAL;
	if (c->rcap && cap > need)
		cap = need > c->rcap ? need : c->rcap * 2;
	uint8_t *b = realloc(c->rbuf, cap);
	if (b == NULL)
		return -ENOMEM;
	__atomic_add_fetch(&n->rbuf_bytes, cap - c->rcap, __ATOMIC_RELAXED);
	c->rbuf = b;
	c->rcap = cap;
	return 0;
}

/* How many bytes to ask for: while a large frame is arriving, no more than
 * its rest, so that the next frame does not start in this buffer and need
 * moving once this one is consumed. */
static size_t read_size(const struct conn *c, size_t need)
{
	size_t room = c->rcap - c->rlen;
	size_t held = c->rlen - c->roff;
	if (need > held && need - held >= RBUF_INITIAL && need - held < room)
		return need - held;
	return room;
}

static void pump_read(struct net *n, struct conn *c)
{
	size_t budget = TURN_BUDGET;
	size_t need = NET_FRAME_HEADER_BYTES;
	struct net_frame f;
	char why[600];
	/* The frame held from an earlier turn, if any, says what it needs. */
	if (c->rlen > c->roff)
		(void)net_frame_parse(c->rbuf + c->roff, c->rlen - c->roff, &f,
				      &need, NULL);
	while (!c->closed && budget > 0) {
		if (rbuf_room(n, c, need) < 0) {
			net_conn_close(n, c, NET_LOG_ERROR,
				       "out of memory for a receive buffer");
			return;
		}
		size_t got;
		enum tls_result r = net_tls_read(c, c->rbuf + c->rlen,
						 read_size(c, need), &got, why,
						 sizeof(why));
		if (r == TLS_AGAIN)
			return;
		if (r == TLS_CLOSED && c->rlen > c->roff) {
			net_conn_close(n, c, NET_LOG_WARN,
				       "truncated frame: %s after %zu bytes of "
				       "an incomplete frame",
				       why, c->rlen - c->roff);
			return;
		}
		if (r == TLS_CLOSED) {
			net_conn_close(n, c, NET_LOG_INFO, "%s", why);
			return;
		}
		if (r == TLS_ERROR) {
			net_conn_close(n, c, NET_LOG_WARN, "%s", why);
			return;
		}
		c->rlen += got;
		c->last_rx_ms = net_now_ms();
		budget = got < budget ? budget - got : 0;
		while (!c->closed) {
			const char *fwhy = NULL;
			int rc = net_frame_parse(c->rbuf + c->roff,
						 c->rlen - c->roff, &f, &need,
						 &fwhy);
			if (rc == -EAGAIN)
				break;
			if (rc < 0) {
				net_conn_close(n, c, NET_LOG_WARN,
					       "bad frame: %s", fwhy);
				return;
			}
			on_frame(n, c, &f);
			c->roff += need;
			need = NET_FRAME_HEADER_BYTES;
		}
		if (!c->closed && c->roff == c->rlen)
			c->roff = c->rlen = 0;
	}
	if (!c->closed && budget == 0)
		c->again = true;
}

/* ---------------------------------------------------------------------- */
/* Frames sent.                                                           */

static void write_frames(struct net *n, struct conn *c)
{
	size_t budget = TURN_BUDGET;
	char why[600];
	if (c->write_failed) {
		net_conn_close(n, c, c->write_error_level, "%s",
			       c->write_error);
		return;
	}
	while (!c->closed) {
		if (c->cur == NULL) {
			if (c->wq == NULL)
				c->wq = net_sendq_take(n, c->q);
			if (c->wq == NULL)
				break;
			c->cur = c->wq;
			c->wq = c->cur->next;
			c->cur_off = 0;
		}
		if (budget == 0) {
			c->again = true;
			return;
		}
		size_t put;
		size_t len = c->cur->size - c->cur_off;
		enum tls_result r = net_tls_write(c, c->cur->data + c->cur_off,
						  len, &put, why, sizeof(why));
		if (r == TLS_AGAIN) {
			if (c->stalled_since_ms == 0)
				c->stalled_since_ms = net_now_ms();
			return;
		}
		if (r != TLS_OK) {
			net_conn_close(n, c,
				       r == TLS_CLOSED ? NET_LOG_INFO
						       : NET_LOG_WARN,
				       "%s", why);
			return;
		}
		c->last_tx_ms = net_now_ms();
		c->stalled_since_ms = 0;
		c->cur_off += put;
		budget = put < budget ? budget - put : 0;
		if (c->cur_off == c->cur->size) {
			if (c->outbound) {
				pthread_mutex_lock(&n->lock);
				c->peer->sent_frames++;
				pthread_mutex_unlock(&n->lock);
			}
			net_sendq_done(n, c->q, c->cur);
			c->cur = NULL;
		}
	}
	c->want_write = false;
	c->stalled_since_ms = 0;
}

/* Bulk writes are corked: TLS writes one 16 KiB record per system call, and
 * the kernel then sends full segments instead of one per record. Uncorking
 * at the end pushes whatever is left at once. */
static void pump_write(struct net *n, struct conn *c)
{
	int on = 1, off = 0;
	bool bulk = (c->cur && c->cur->size - c->cur_off > CORK_BYTES) ||
		    (c->cur == NULL && c->wq && c->wq->size > CORK_BYTES);
	if (bulk)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	write_frames(n, c);
	if (bulk && !c->closed)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off,
				 sizeof(off));
}

static void finish_connect(struct net *n, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err != 0) {
		net_conn_close(n, c, NET_LOG_WARN, "connect: %s",
			       strerror(err));
		return;
	}
	/* No error yet is not the same as connected: ask. */
	struct sockaddr_storage sa;
	socklen_t sa_len = sizeof(sa);
	if (getpeername(c->fd, (struct sockaddr *)&sa, &sa_len) < 0)
		return;
	c->state = CONN_HANDSHAKE;
}

/* A write to a connection the peer reset raises SIGPIPE in the writing
 * thread. The I/O thread blocks every signal; a sender writing directly
 * blocks SIGPIPE for the write and takes back the one the write raised,
 * if any (as libpq does), so the application's own handling of SIGPIPE
 * is left alone. Returns whether SIGPIPE was pending already. */
static bool sigpipe_block(sigset_t *old)
{
	sigset_t pipe_set, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, old);
	if (!sigismember(old, SIGPIPE))
		return false; /* not blocked before: none can be pending */
	sigpending(&pending);
	return sigismember(&pending, SIGPIPE);
}

static void sigpipe_restore(const sigset_t *old, bool was_pending, bool failed)
{
	if (failed && !was_pending) {
		sigset_t pipe_set, pending;
		int sig;
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			(void)sigwait(&pipe_set, &sig);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

bool net_conn_write_direct(struct net *n, struct conn *c, struct out_frame *f)
{
	char why[600];
	size_t off = 0;
	sigset_t old;
	enum tls_result r = TLS_OK;
	bool was_pending = sigpipe_block(&old);
	while (off < f->size) {
		size_t put;
		r = net_tls_write(c, f->data + off, f->size - off, &put, why,
				  sizeof(why));
		if (r != TLS_OK)
			break;
		off += put;
	}
	sigpipe_restore(&old, was_pending, r == TLS_ERROR || r == TLS_CLOSED);
	if (off > 0)
		c->last_tx_ms = net_now_ms();
	if (off == f->size) {
		c->stalled_since_ms = 0;
		pthread_mutex_lock(&n->lock);
		c->peer->sent_frames++;
		pthread_mutex_unlock(&n->lock);
		net_sendq_done(n, c->q, f);
		return true;
	}
	/* The rest is the I/O thread's, from where this write stopped (the
	 * same buffer: partial and moving writes are enabled, tls.c). */
	f->next = NULL;
	c->cur = f;
	c->cur_off = off;
	c->handed = true;
	if (r == TLS_AGAIN) {
		if (c->stalled_since_ms == 0)
			c->stalled_since_ms = net_now_ms();
	} else {
		c->write_failed = true;
		c->write_error_level =
			r == TLS_CLOSED ? NET_LOG_INFO : NET_LOG_WARN;
		snprintf(c->write_error, sizeof(c->write_error), "%s", why);
	}
	return false;
}

/* c->mu held. */
static void pump(struct net *n, struct conn *c)
{
	c->again = false;
	if (c->state == CONN_CONNECTING)
		finish_connect(n, c);
	if (!c->closed && c->state == CONN_HANDSHAKE)
		handshake(n, c);
	if (!c->closed && c->state == CONN_ESTABLISHED) {
		pump_read(n, c);
		if (!c->closed)
			pump_write(n, c);
	}
	if (!c->closed)
		net_conn_set_events(n, c);
}

void net_conn_pump(struct net *n, struct conn *c)
{
	if (c->closed)
		return; /* closed earlier in this turn; freed after it */
	pthread_mutex_lock(&c->mu);
	pump(n, c);
	pthread_mutex_unlock(&c->mu);
}

void net_conn_kick(struct net *n, struct conn *c)
{
	if (c->closed)
		return;
	pthread_mutex_lock(&c->mu);
	/* A frame being written waits for the socket (EPOLLOUT pumps it),
	 * unless a sender just left it here. */
	bool go = c->state == CONN_ESTABLISHED && (c->cur == NULL || c->handed);
	c->handed = false;
	if (go)
		pump(n, c);
	pthread_mutex_unlock(&c->mu);
}

static void conn_timers(struct net *n, struct conn *c, int64_t now);

void net_conn_timers(struct net *n, struct conn *c, int64_t now)
{
	if (c->closed)
		return;
	pthread_mutex_lock(&c->mu);
	conn_timers(n, c, now);
	pthread_mutex_unlock(&c->mu);
}

static void conn_timers(struct net *n, struct conn *c, int64_t now)
{
	uint32_t idle = n->opts.idle_timeout_ms;
	if (c->state != CONN_ESTABLISHED) {
		if (now >= c->deadline_ms)
			net_conn_close(n, c, NET_LOG_WARN, "%s timed out",
				       c->state == CONN_CONNECTING
					       ? "connect"
					       : "tls handshake");
		return;
	}
	if (!c->outbound && now - c->last_rx_ms > idle) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "nothing received for %" PRId64 " ms",
			       now - c->last_rx_ms);
		return;
	}
	if (c->stalled_since_ms && now - c->stalled_since_ms > idle) {
		net_conn_close(n, c, NET_LOG_WARN,
			       "peer stopped reading: no write progress for "
			       "%" PRId64 " ms",
			       now - c->stalled_since_ms);
		return;
	}
	/* Keep the peer's idle timer and TCP_USER_TIMEOUT fed on a quiet
	 * link: a ping when nothing was written for a quarter of it. */
	if (c->outbound && c->cur == NULL && c->wq == NULL &&
	    now - c->last_tx_ms >= idle / 4) {
		struct out_frame *f =
			malloc(sizeof(*f) + NET_FRAME_HEADER_BYTES);
		if (f == NULL)
			return;
		f->next = NULL;
		f->size = NET_FRAME_HEADER_BYTES;
		f->counted = false;
		net_ping_frame_encode(f->data);
		c->wq = f;
		pump_write(n, c);
		if (!c->closed)
			net_conn_set_events(n, c);
	}
}
