/*
 * Peers: the table of nodes this one dials, membership changes to it, and
 * each peer's outbound connection attempts with exponential backoff and
 * jitter. The I/O thread is the table's only writer.
 */
#define _GNU_SOURCE /* IP_BIND_ADDRESS_NO_PORT */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/transport.h"

struct peer *net_peer_find(struct net *n, uint64_t id)
{
	if (id == 0)
		return NULL;
	for (uint32_t i = 0; i < n->n_peers; i++) {
		if (n->peers[i].id == id)
			return &n->peers[i];
	}
	return NULL;
}

/* xorshift64*: jitter only, no security meaning. */
static uint64_t rng_next(struct net *n)
{
	uint64_t x = n->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	n->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

int net_peer_stats(struct net *n, uint64_t peer, struct net_peer_stats *st)
{
	pthread_mutex_lock(&n->lock);
	struct peer *p = net_peer_find(n, peer);
	if (p == NULL) {
		pthread_mutex_unlock(&n->lock);
		return -ENOENT;
	}
	st->up = p->up;
	st->queued_bytes = p->q.bytes;
	st->sent_frames = p->sent_frames;
	st->dropped_frames = p->dropped_frames;
	st->connects = p->connects;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Membership changes.                                                    */

static int queue_change(struct net *n, const struct peer_change *ch)
{
	int rc = 0;
	pthread_mutex_lock(&n->lock);
	bool known = net_peer_find(n, ch->id) != NULL;
	uint32_t used = 0;
	for (uint32_t i = 0; i < n->n_peers; i++)
		used += n->peers[i].id != 0;
	/* Later changes see earlier ones still pending. */
	for (uint32_t i = 0; i < n->n_changes; i++) {
		const struct peer_change *c = &n->changes[i];
		if (c->id == ch->id)
			known = c->add;
		if (c->add && net_peer_find(n, c->id) == NULL)
			used++;
	}
	if (ch->add && (known || ch->id == n->id))
		rc = -EEXIST;
	else if (!ch->add && !known)
		rc = -ENOENT;
	else if ((ch->add && used >= RAFT_MAX_MEMBERS) ||
		 n->n_changes >= NET_MAX_PEER_CHANGES)
		rc = -ENOSPC;
	else
		n->changes[n->n_changes++] = *ch;
	pthread_mutex_unlock(&n->lock);
	if (rc == 0)
		net_wake(n);
	return rc;
}

int net_peer_add(struct net *n, uint64_t id, const char *address)
{
	struct peer_change ch = {.add = true, .id = id};
	if (id == 0 || address == NULL ||
	    strlen(address) >= sizeof(ch.address))
		return -EINVAL;
	snprintf(ch.address, sizeof(ch.address), "%s", address);
	if (net_resolve(ch.address, &ch.addr, &ch.addr_len) < 0)
		return -EINVAL;
	return queue_change(n, &ch);
}

int net_peer_remove(struct net *n, uint64_t id)
{
	struct peer_change ch = {.add = false, .id = id};
	if (id == 0)
		return -EINVAL;
	return queue_change(n, &ch);
}

static void apply_add(struct net *n, const struct peer_change *ch)
{
	struct peer *p = NULL;
	for (uint32_t i = 0; i < n->n_peers && !p; i++) {
		if (n->peers[i].id == 0)
			p = &n->peers[i];
	}
	pthread_mutex_lock(&n->lock);
	if (p == NULL)
		p = &n->peers[n->n_peers++]; /* queue_change kept room */
	/* A sender may still hold a reservation made for the slot's former
	 * peer; it releases it against these counters. */
	uint64_t reserved_bytes = p->q.bytes;
	uint32_t reserved_frames = p->q.frames;
	memset(p, 0, sizeof(*p));
	p->q.bytes = reserved_bytes;
	p->q.frames = reserved_frames;
	p->id = ch->id;
	memcpy(p->address, ch->address, sizeof(p->address));
	p->addr = ch->addr;
	p->addr_len = ch->addr_len;
	p->q.limit_bytes = n->opts.max_queue_bytes;
	p->q.limit_frames = n->opts.max_queue_frames;
	pthread_mutex_unlock(&n->lock);
	net_log(n, NET_LOG_INFO, "peer %" PRIu64 " (%s): added", p->id,
		p->address);
}

static void apply_remove(struct net *n, uint64_t id)
{
	struct peer *p = net_peer_find(n, id);
	if (p == NULL)
		return;
	struct conn *out = p->out;
	if (out) {
		pthread_mutex_lock(&out->mu);
		net_conn_close(n, out, NET_LOG_INFO, "removed from the peers");
		pthread_mutex_unlock(&out->mu);
	}
	for (struct conn *c = n->inbound; c; c = c->next) {
		if (!c->closed && c->who.role == NET_ROLE_NODE &&
		    c->who.node_id == id)
			net_conn_close(n, c, NET_LOG_INFO,
				       "removed from the peers");
	}
	net_sendq_drop_all(n, &p->q);
	pthread_mutex_lock(&n->lock);
	p->id = 0;
	p->up = false;
	pthread_mutex_unlock(&n->lock);
	net_log(n, NET_LOG_INFO, "peer %" PRIu64 ": removed", id);
}

void net_peers_apply_changes(struct net *n)
{
	struct peer_change changes[NET_MAX_PEER_CHANGES];
	pthread_mutex_lock(&n->lock);
	uint32_t count = n->n_changes;
	memcpy(changes, n->changes, count * sizeof(changes[0]));
	pthread_mutex_unlock(&n->lock);
	for (uint32_t i = 0; i < count; i++) {
		if (changes[i].add)
			apply_add(n, &changes[i]);
		else
			apply_remove(n, changes[i].id);
	}
	/* Only now leave the pending list: while they were being applied,
	 * queue_change still saw them there (a second remove of the same
	 * id must fail, not queue again). */
	pthread_mutex_lock(&n->lock);
	memmove(n->changes, n->changes + count,
		(n->n_changes - count) * sizeof(n->changes[0]));
	n->n_changes -= count;
	pthread_mutex_unlock(&n->lock);
}

/* ---------------------------------------------------------------------- */
/* Peers: connecting, connected, closed.                                  */

void net_peer_connected(struct net *n, struct peer *p)
{
	pthread_mutex_lock(&n->lock);
	p->up = true;
	p->direct = p->out;
	p->connects++;
	pthread_mutex_unlock(&n->lock);
	p->failure_logged = false;
	if (n->opts.on_peer)
		n->opts.on_peer(n->opts.ctx, p->id, true);
}

void net_conn_closed_outbound(struct net *n, struct peer *p, bool was_up)
{
	int64_t now = net_now_ms();
	bool lasted = was_up && p->out &&
		      now - p->out->established_ms >= 1000;
	p->out = NULL;
	pthread_mutex_lock(&n->lock);
	p->up = false;
	p->direct = NULL;
	pthread_mutex_unlock(&n->lock);
	/* Stale messages are useless to Raft after a reconnect. */
	net_sendq_drop_all(n, &p->q);
	/* Exponential backoff with jitter; a connection that lasted starts
	 * over from the minimum. */
	if (lasted || p->backoff_ms == 0)
		p->backoff_ms = n->opts.backoff_min_ms;
	else if (p->backoff_ms < n->opts.backoff_max_ms / 2)
		p->backoff_ms *= 2;
	else
		p->backoff_ms = n->opts.backoff_max_ms;
	uint32_t half = p->backoff_ms / 2;
	p->next_attempt_ms = now + half + (int64_t)(rng_next(n) % (half + 1));
	if (was_up && n->opts.on_peer)
		n->opts.on_peer(n->opts.ctx, p->id, false);
}

void net_socket_options(struct net *n, int fd)
{
	int one = 1;
	int idle_s = (int)(n->opts.idle_timeout_ms / 2000);
	int intvl_s = 1, count = 2;
	unsigned int user_timeout = n->opts.idle_timeout_ms;
	if (idle_s < 1)
		idle_s = 1;
	/* Failures only cost latency or liveness detection: not fatal. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s,
			 sizeof(idle_s));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s,
			 sizeof(intvl_s));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
			 sizeof(user_timeout));
}

void net_peer_connect(struct net *n, struct peer *p, int64_t now)
{
	int fd = socket(p->addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	p->next_attempt_ms = INT64_MAX;
	if (fd < 0) {
		net_log(n, NET_LOG_ERROR, "peer %" PRIu64 ": socket: %s", p->id,
			strerror(errno));
		goto retry;
	}
	net_socket_options(n, fd);
	/* The source address is the listen address (port chosen at
	 * connect), so a firewall rule between two nodes' addresses cuts
	 * exactly their link. */
	int one = 1;
	struct sockaddr_storage src = n->listen_addr;
	if (src.ss_family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			 sizeof(one));
	if (src.ss_family == p->addr.ss_family &&
	    bind(fd, (struct sockaddr *)&src, n->listen_addr_len) < 0) {
		net_log(n, NET_LOG_ERROR,
			"peer %" PRIu64 ": bind to the listen address: %s",
			p->id, strerror(errno));
		close(fd);
		goto retry;
	}
	int rc = connect(fd, (struct sockaddr *)&p->addr, p->addr_len);
	if (rc < 0 && errno != EINPROGRESS) {
		int e = errno;
		net_log(n, p->failure_logged ? NET_LOG_DEBUG : NET_LOG_WARN,
			"peer %" PRIu64 " (%s): connect: %s", p->id,
			p->address, strerror(e));
		p->failure_logged = true;
		close(fd);
		goto retry;
	}
	struct conn *c = net_conn_new(n, fd, true, p, p->address);
	if (c == NULL) {
		net_log(n, NET_LOG_ERROR, "peer %" PRIu64 ": out of memory",
			p->id);
		close(fd);
		goto retry;
	}
	c->state = rc == 0 ? CONN_HANDSHAKE : CONN_CONNECTING;
	c->deadline_ms = now + n->opts.connect_timeout_ms;
	p->out = c;
	net_conn_pump(n, c);
	return;
retry:
	net_conn_closed_outbound(n, p, false);
}
