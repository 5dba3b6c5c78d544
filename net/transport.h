#ifndef NET_TRANSPORT_H
#define NET_TRANSPORT_H

/*
 * Private to net/: the state of a struct net shared by transport.c (the
 * I/O thread, its loop and timers, creation), peers.c (the peer table,
 * membership changes, dialling with backoff), send.c (the send queues and
 * the calls of other threads), conn.c (one connection's handshake, reads,
 * frames and writes) and the TLS helpers of tls.c.
 *
 * Ownership: the I/O thread owns every connection, socket and SSL object,
 * with one exception: a thread sending a small frame to a peer whose
 * outbound connection is idle writes it to the socket itself (send.c),
 * saving the hand-off to the I/O thread and its wake-up. conn->mu makes
 * that safe: it covers the SSL object and the write state of a
 * connection (cur, wq, want_write, closed, last_tx_ms, stalled_since_ms).
 * The I/O thread holds it while it pumps a connection, runs its timers
 * or closes it; a sender only ever TRIES it (under n->lock, so the
 * connection cannot be closed and freed meanwhile) and queues the frame
 * as before when it is taken. Lock order: conn->mu, then n->lock.
 * conn->mu is held across a non-blocking SSL write (at most one small
 * frame), never across a wait.
 * n->lock protects only what other threads touch: the send queues
 * (struct sendq), the peers' `up` flags, `direct` and counters, and the
 * inbound list (net_admin_reply looks connections up by id). Nothing
 * holds n->lock across network I/O, a callback or an allocation of a
 * frame.
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "net/net.h"

/* One encoded frame waiting to be written. */
struct out_frame {
	struct out_frame *next;
	size_t size;
	bool counted; /* in its sendq's bytes/frames (pings are not) */
	uint8_t data[];
};

/* Frames handed over by other threads (n->lock). */
struct sendq {
	struct out_frame *head;
	struct out_frame *tail;
	uint64_t bytes;  /* queued here or being written, not yet done */
	uint32_t frames;
	uint64_t limit_bytes;
	uint32_t limit_frames;
};

enum conn_state {
	CONN_CONNECTING = 1, /* TCP connect in progress (outbound) */
	CONN_HANDSHAKE = 2,
	CONN_ESTABLISHED = 3,
};

struct peer;

struct conn {
	pthread_mutex_t mu; /* the SSL object and write state (see above) */
	struct conn *next; /* inbound list, or graveyard once closed */
	uint64_t id;       /* for net_admin_reply */
	int fd;
	SSL *ssl;
	bool outbound;
	bool closed;
	bool carries_raft;       /* inbound: a Raft frame arrived on it */
	enum conn_state state;
	struct peer *peer; /* outbound: the peer dialled */
	struct net_identity who; /* the authenticated remote side */
	char remote[64];         /* "host:port" for logs */
	uint32_t events;         /* epoll interest registered */
	bool want_write;         /* an SSL call asked for POLLOUT */
	/* A direct write (another thread) failed: the I/O thread closes the
	 * connection with this reason at its next pump. */
	bool handed; /* a sender left the rest of cur to the I/O thread */
	bool write_failed;
	int write_error_level;
	char write_error[600];
	bool again;              /* budget exhausted with work left */
	int64_t deadline_ms;     /* connect/handshake deadline */
	int64_t established_ms;
	int64_t last_rx_ms;
	int64_t last_tx_ms;       /* last byte accepted by SSL_write */
	int64_t stalled_since_ms; /* write pending without progress; 0 none */
	/* Receive buffer: bytes [off, len) not yet consumed. Grows only by
	 * doubling when full, so its size stays within twice the bytes
	 * actually received (never a claimed length). */
	uint8_t *rbuf;
	size_t rcap;
	size_t rlen;
	size_t roff;
	/* Frames being written (I/O thread): cur from cur_off, then wq. */
	struct out_frame *cur;
	size_t cur_off;
	struct out_frame *wq;
	struct sendq *q;     /* where other threads queue for this conn */
	struct sendq own_q;  /* inbound: admin replies */
};

struct peer {
	uint64_t id;
	char address[RAFT_MAX_ADDRESS];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct conn *out; /* I/O thread */
	uint32_t backoff_ms;
	int64_t next_attempt_ms;
	bool failure_logged; /* quiet repeated identical failures */
	/* n->lock: */
	bool up;
	/* The established outbound connection a sender may write to
	 * directly (out, once its handshake is done; NULL once closed). */
	struct conn *direct;
	struct sendq q;
	uint64_t sent_frames;
	uint64_t dropped_frames;
	uint64_t connects;
};

/* A membership change waiting for the I/O thread (n->lock). */
struct peer_change {
	bool add;
	uint64_t id;
	char address[RAFT_MAX_ADDRESS];
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

#define NET_MAX_PEER_CHANGES 32

struct net {
	struct net_options opts;
	uint64_t id;
	char cluster_id[NET_CLUSTER_ID_CHARS + 1];
	SSL_CTX *server_ctx;
	SSL_CTX *client_ctx;
	struct sockaddr_storage listen_addr;
	socklen_t listen_addr_len;
	uint16_t listen_port;
	int listen_fd;
	int epoll_fd;
	int wake_fd;
	/* An eventfd write is pending that the I/O thread has not taken:
	 * net_wake skips the system call (net/send.c). */
	_Atomic bool wake_pending;
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;
	uint64_t rng;
	uint64_t next_conn_id;

	pthread_mutex_t lock;
	/* Written by the I/O thread only, under n->lock; a slot with id 0 is
	 * free. Other threads read under n->lock. */
	struct peer peers[RAFT_MAX_MEMBERS];
	uint32_t n_peers; /* slots in use or freed */
	struct peer_change changes[NET_MAX_PEER_CHANGES]; /* n->lock */
	uint32_t n_changes;
	struct conn *inbound; /* n->lock for the list links */
	uint32_t n_inbound;
	struct conn *graveyard; /* closed, freed after the event batch */
	uint64_t rbuf_bytes; /* receive buffers allocated (__atomic) */
	int64_t refusal_logged_ms; /* last inbound refusal logged */
	uint64_t refusals_quiet;   /* refusals logged at debug since */

	/* Decoding scratch of the I/O thread. */
	struct raft_entry *entries;
	struct raft_snapshot_meta snap;
};

/* transport.c */
int64_t net_now_ms(void);
void net_log(struct net *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void net_peer_connected(struct net *n, struct peer *p);
void net_conn_closed_outbound(struct net *n, struct peer *p, bool clean);
struct out_frame *net_sendq_take(struct net *n, struct sendq *q);
void net_sendq_done(struct net *n, struct sendq *q, struct out_frame *f);
void net_sendq_drop_all(struct net *n, struct sendq *q);
struct peer *net_peer_find(struct net *n, uint64_t id);
/* Wake the I/O thread (work was queued for it). */
void net_wake(struct net *n);
/* TCP options of every connection: no delay, keepalive, user timeout. */
void net_socket_options(struct net *n, int fd);

/* peers.c (I/O thread) */
void net_peer_connect(struct net *n, struct peer *p, int64_t now);
void net_peers_apply_changes(struct net *n);
/* "host:port" or "[v6]:port" to a socket address (may resolve a name). */
int net_resolve(const char *address, struct sockaddr_storage *out,
		socklen_t *len);

/* conn.c */
/* Frames up to this size may be written by the sending thread itself
 * (larger ones are corked and written by the I/O thread). */
#define NET_DIRECT_MAX_BYTES (64u * 1024u)
struct conn *net_conn_new(struct net *n, int fd, bool outbound,
			  struct peer *peer, const char *remote);
void net_conn_pump(struct net *n, struct conn *c);
/* I/O thread, woken because frames were queued or handed over: pump c
 * when it has room to write (or a sender left it a frame). */
void net_conn_kick(struct net *n, struct conn *c);
void net_conn_close(struct net *n, struct conn *c, int level,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void net_conn_free(struct net *n, struct conn *c);
void net_conn_set_events(struct net *n, struct conn *c);
void net_conn_timers(struct net *n, struct conn *c, int64_t now);
/* Any thread, c->mu held, c established and idle (no frame being
 * written): write f to the socket now. Returns true when f was written
 * whole (and released); otherwise f stays as the connection's current
 * frame for the I/O thread to finish (or to close the connection on the
 * error met), and the caller wakes it. */
bool net_conn_write_direct(struct net *n, struct conn *c,
			   struct out_frame *f);

/* tls.c */
enum tls_result {
	TLS_OK = 0,      /* progress (bytes moved or handshake done) */
	TLS_AGAIN = 1,   /* would block; conn->want_write says which way */
	TLS_CLOSED = 2,  /* clean close (close_notify) or EOF */
	TLS_ERROR = 3,   /* failure; reason in why */
};

int net_tls_ctx_create(const struct net_options *o, bool server,
		       SSL_CTX **out, char *err, size_t err_size);
enum tls_result net_tls_handshake(struct conn *c, char *why, size_t size);
enum tls_result net_tls_read(struct conn *c, void *buf, size_t len,
			     size_t *got, char *why, size_t size);
enum tls_result net_tls_write(struct conn *c, const void *buf, size_t len,
			      size_t *put, char *why, size_t size);

#endif
