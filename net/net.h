#ifndef NET_NET_H
#define NET_NET_H

/*
 * net/: the transport between raftfs nodes — wire encoding, certificates and
 * mutually authenticated TLS 1.3 connections. It knows the shape of Raft
 * messages (raft/raft.h) but none of Raft's rules.
 *
 * Errors: functions return 0 or a negative errno. Nothing here prints or
 * exits; the transport reports through the log hook of struct net_options.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

/* ====================================================================== */
/* Wire format                                                            */
/* ====================================================================== */

/*
 * A connection carries frames. Every integer is big-endian.
 *
 *   frame header (NET_FRAME_HEADER_BYTES):
 *     u32 magic     NET_FRAME_MAGIC
 *     u8  version   NET_PROTOCOL_VERSION
 *     u8  type      enum net_frame_type
 *     u16 flags     0 (reserved)
 *     u32 length    body bytes that follow, at most the type's limit
 *
 *   RAFT body: one struct raft_message
 *     u8  type      enum raft_message_type
 *     u8  flags     bit 0 reject, bit 1 transfer, other bits 0
 *     u16 reserved  0
 *     u32 n_entries at most RAFT_MAX_BATCH_ENTRIES; APPEND and PROPOSE only
 *     u64 from, to, term, index, log_term, commit, context, hint_index,
 *         hint_term
 *     n_entries times:
 *       u64 term, u64 index, u8 type (enum raft_entry_type), u8[3] zero,
 *       u32 size (at most RAFT_MAX_ENTRY_BYTES), then size payload bytes
 *     SNAPSHOT only, then:
 *       u64 index, u64 term, u64 conf_index, u32 n (at most
 *       RAFT_MAX_MEMBERS), n times: u64 id (non-zero, distinct),
 *       u8 role (enum raft_role), u8 address length (< RAFT_MAX_ADDRESS),
 *       address bytes (printable ASCII, no NUL)
 *     nothing after that
 *
 *   ADMIN_REQUEST and ADMIN_RESPONSE bodies:
 *     u16 kind (non-zero; meaning agreed by the callers), u16 flags 0,
 *     u64 request id (echoed in the response), then the payload (the rest
 *     of the body, at most NET_MAX_ADMIN_PAYLOAD_BYTES)
 *
 *   PING body: empty (keeps an idle connection's liveness checks fed)
 *
 *   SNAPSHOT body: one struct raft_chunk (raft/raft.h: a piece of a
 *   snapshot stream, or its acknowledgment)
 *     u8  type      enum raft_chunk_type (1 DATA, 2 ACK)
 *     u8  flags     bit 0 last (DATA only), bit 1 done, bit 2 reject (ACK
 *                   only, not both), other bits 0
 *     u16 reserved  0
 *     u32 size      data bytes: DATA 1..RAFT_MAX_CHUNK_BYTES, ACK 0
 *     u64 from, to (non-zero, different), term, stream (non-zero),
 *         offset (offset + size must not overflow)
 *     DATA: the snapshot's metadata exactly as in a RAFT SNAPSHOT body
 *       (index and term non-zero, conf_index <= index, 1..RAFT_MAX_MEMBERS
 *       members), then size data bytes
 *     ACK: u64 index, u64 term (non-zero: the stream's snapshot)
 *     nothing after that
 *
 * Compatibility: the SNAPSHOT frame type (5) was added after version 1
 * shipped inside this repository only; the version stays 1 because every
 * other frame is unchanged. A node built before it refuses a SNAPSHOT
 * frame as an unknown frame type (it closes the connection, which then
 * reconnects), so a cluster streams snapshots only once every member runs
 * a build that knows the frame; nothing is misread.
 */

#define NET_FRAME_MAGIC 0x5246534eu /* "RFSN" */
#define NET_PROTOCOL_VERSION 1u
#define NET_FRAME_HEADER_BYTES 12u

enum net_frame_type {
	NET_FRAME_RAFT = 1,
	NET_FRAME_ADMIN_REQUEST = 2,
	NET_FRAME_ADMIN_RESPONSE = 3,
	NET_FRAME_PING = 4,
	NET_FRAME_SNAPSHOT = 5,
	NET_FRAME_TYPE_MAX = 5,
};

/* Bytes of a RAFT body before its entries. */
#define NET_RAFT_FIXED_BYTES 80u
/* Bytes of an entry's header before its payload. */
#define NET_ENTRY_HEADER_BYTES 24u
/* Bytes of the snapshot section before its members, and per member besides
 * its address. */
#define NET_SNAPSHOT_FIXED_BYTES 28u
#define NET_MEMBER_FIXED_BYTES 10u
#define NET_SNAPSHOT_MAX_BYTES                                                 \
	(NET_SNAPSHOT_FIXED_BYTES +                                            \
	 RAFT_MAX_MEMBERS * (NET_MEMBER_FIXED_BYTES + RAFT_MAX_ADDRESS - 1))

/* Bytes of a SNAPSHOT body before its metadata. */
#define NET_CHUNK_FIXED_BYTES 48u

/* Largest frame of any type, header included: exactly Raft's largest
 * encoded message (raft/raft.h). */
#define NET_MAX_FRAME_BYTES RAFT_MAX_MESSAGE_BYTES
/* Admin frames: kind, flags and request id, then the payload. */
#define NET_ADMIN_FIXED_BYTES 12u
#define NET_MAX_ADMIN_PAYLOAD_BYTES (64u * 1024u)

_Static_assert(NET_ENTRY_HEADER_BYTES <= RAFT_ENTRY_OVERHEAD_BYTES,
	       "an entry header must fit Raft's per-entry overhead");
_Static_assert(NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES <=
		       RAFT_MESSAGE_OVERHEAD_BYTES,
	       "the frame and message headers must fit Raft's overhead");
_Static_assert(NET_FRAME_HEADER_BYTES + NET_RAFT_FIXED_BYTES +
			       NET_SNAPSHOT_MAX_BYTES <=
		       NET_MAX_FRAME_BYTES,
	       "a snapshot message must fit a frame");
_Static_assert(NET_FRAME_HEADER_BYTES + NET_CHUNK_FIXED_BYTES +
			       NET_SNAPSHOT_MAX_BYTES + RAFT_MAX_CHUNK_BYTES <=
		       NET_MAX_FRAME_BYTES,
	       "a snapshot chunk must fit a frame");
_Static_assert(NET_FRAME_HEADER_BYTES + NET_ADMIN_FIXED_BYTES +
			       NET_MAX_ADMIN_PAYLOAD_BYTES <=
		       NET_MAX_FRAME_BYTES,
	       "an admin message must fit a frame");

/*
 * Decoding errors (negative): -EAGAIN the bytes so far are a valid prefix,
 * more are needed; -EPROTO bad magic, version, flags or frame type;
 * -EMSGSIZE a length beyond its limit; -EBADMSG a malformed body. Every
 * decoder may also give a static, human-readable reason in *why (may be
 * NULL) for the log. Decoders never allocate and never read past len.
 */

/* One frame found at the start of a byte stream. */
struct net_frame {
	uint8_t type;        /* enum net_frame_type */
	const uint8_t *body; /* points into the caller's buffer */
	uint32_t body_bytes;
};

/*
 * Look at the first len bytes of a stream. Returns 0 when a whole valid
 * frame is there (*frame filled, *frame_bytes its size header included);
 * -EAGAIN when more bytes are needed (*frame_bytes: the size of the whole
 * frame once the header is known, else NET_FRAME_HEADER_BYTES); or an error
 * as soon as the header is invalid, before its body arrived.
 */
int net_frame_parse(const uint8_t *buf, size_t len, struct net_frame *frame,
		    size_t *frame_bytes, const char **why);

/*
 * Decode a RAFT body into *m. Entries go to entries[0..max_entries) with
 * their data pointing into body; a SNAPSHOT message's metadata goes to
 * *snap (may be NULL only if the caller refuses snapshots: -EBADMSG then).
 * Everything decoded stays valid as long as body does.
 */
int net_raft_decode(const uint8_t *body, size_t len, struct raft_message *m,
		    struct raft_entry *entries, uint32_t max_entries,
		    struct raft_snapshot_meta *snap, const char **why);

/*
 * Supplies the payload of an outgoing entry whose data is NULL (the Raft
 * core leaves normal entries' payloads to the caller): write exactly
 * e->size bytes to dst. Returns 0 or a negative errno, which the encoder
 * returns.
 */
typedef int (*net_payload_fn)(void *ctx, const struct raft_entry *e,
			      void *dst);

/*
 * The frame size of m, header included. Validates m as the decoder would
 * (-EINVAL a bad field, -EMSGSIZE beyond a limit).
 */
int net_raft_frame_size(const struct raft_message *m, size_t *size);

/*
 * Encode m as a whole frame into buf (size from net_raft_frame_size).
 * Entries with data == NULL and size > 0 get their payload from
 * payload(ctx, ...); payload may be NULL when every entry has data.
 */
int net_raft_frame_encode(const struct raft_message *m, net_payload_fn payload,
			  void *payload_ctx, uint8_t *buf, size_t size);

struct net_admin_msg {
	uint16_t kind;       /* non-zero */
	uint64_t request_id; /* echoed by the response */
	const uint8_t *payload;
	uint32_t payload_bytes; /* at most NET_MAX_ADMIN_PAYLOAD_BYTES */
};

/* Frame size of an admin message with this payload. */
size_t net_admin_frame_size(uint32_t payload_bytes);
/* Encode an ADMIN_REQUEST or ADMIN_RESPONSE frame (frame_type). */
int net_admin_frame_encode(uint8_t frame_type, const struct net_admin_msg *a,
			   uint8_t *buf, size_t size);
/* Decode an admin body; payload points into body. */
int net_admin_decode(const uint8_t *body, size_t len, struct net_admin_msg *a,
		     const char **why);
/* Encode a PING frame (NET_FRAME_HEADER_BYTES bytes). */
void net_ping_frame_encode(uint8_t *buf);

/* The frame size of a snapshot chunk, header included; validates c as the
 * decoder would (-EINVAL a bad field, -EMSGSIZE beyond a limit). */
int net_chunk_frame_size(const struct raft_chunk *c, size_t *size);
/* Encode c as a whole SNAPSHOT frame into buf (size from
 * net_chunk_frame_size). */
int net_chunk_frame_encode(const struct raft_chunk *c, uint8_t *buf,
			   size_t size);
/* Decode and validate a SNAPSHOT body; c->data points into body. */
int net_chunk_decode(const uint8_t *body, size_t len, struct raft_chunk *c,
		     const char **why);

/* ====================================================================== */
/* Certificates                                                           */
/* ====================================================================== */

/*
 * A cluster's certificates live in one directory:
 *
 *   ca.crt, ca.key          the cluster CA (P-256); its subjectAltName is
 *                           the URI raftfs://cluster/<cluster id>
 *   node<ID>.crt/.key       node ID: URI raftfs://cluster/<cid>/node/<ID>,
 *                           extended key usage serverAuth and clientAuth
 *   admin.crt, admin.key    the administrator: raftfs://cluster/<cid>/admin,
 *                           clientAuth only (admin requests, never Raft)
 *
 * The cluster id is 32 lowercase hex digits (16 random bytes). Private keys
 * are created with mode 0600 and never overwritten (renew replaces a node's
 * pair atomically, which is what it is asked to do). Functions that can fail
 * for a reason worth telling write one line into err (may be NULL).
 */

#define NET_CLUSTER_ID_CHARS 32u
#define NET_CERT_CA_DAYS 3650
#define NET_CERT_DAYS 365
/* `status` warns when a certificate expires within this many days. */
#define NET_CERT_WARN_DAYS 30
/* Largest node id a certificate may name (`certs create --nodes`). */
#define NET_MAX_NODE_ID 1000000u

enum net_role {
	NET_ROLE_CA = 1,
	NET_ROLE_NODE = 2,
	NET_ROLE_ADMIN = 3,
};

/* Who a certificate names. */
struct net_identity {
	char cluster_id[NET_CLUSTER_ID_CHARS + 1];
	uint8_t role;     /* enum net_role */
	uint64_t node_id; /* NET_ROLE_NODE only, else 0 */
	int64_t not_after; /* expiry, seconds since the epoch */
};

/*
 * `raftfs certs create`: a new cluster id and CA, node1..nodeN and admin in
 * dir (created 0700 if missing). -EEXIST when any of those keys exists
 * already (nothing written then); -EINVAL nodes out of 1..NET_MAX_NODE_ID.
 */
int net_certs_create(const char *dir, uint32_t nodes, char *err,
		     size_t err_size);
/* `raftfs certs add`: node<ID>.crt/.key for a new node (-EEXIST if its key
 * exists). */
int net_certs_add(const char *dir, uint64_t node_id, char *err,
		  size_t err_size);
/* `raftfs certs renew`: a fresh key and certificate for an existing node
 * (-ENOENT if node<ID>.crt does not exist), replacing the old pair. */
int net_certs_renew(const char *dir, uint64_t node_id, char *err,
		    size_t err_size);

/* What one certificate should say; for net_cert_issue. */
struct net_cert_request {
	uint8_t role;            /* NET_ROLE_NODE or NET_ROLE_ADMIN */
	uint64_t node_id;        /* NET_ROLE_NODE */
	const char *cluster_id;  /* NULL: the CA's */
	int64_t not_before_s;    /* validity, seconds relative to now */
	int64_t not_after_s;
};

/*
 * Issue one key pair signed by the CA in ca_dir, written to crt_path and
 * key_path (the key file must not exist: -EEXIST). The building block of
 * the commands above; tests use it to make wrong certificates (another
 * cluster id, expired).
 */
int net_cert_issue(const char *ca_dir, const struct net_cert_request *req,
		   const char *crt_path, const char *key_path, char *err,
		   size_t err_size);

/* A CA (ca.crt, ca.key) for cluster_id in dir, without node certificates
 * (-EEXIST if dir/ca.key exists). */
int net_ca_create(const char *dir, const char *cluster_id, char *err,
		  size_t err_size);

/*
 * For `raftfs status`: whether the CA or node<ID>'s certificate in dir
 * expires within NET_CERT_WARN_DAYS of now (seconds since the epoch), or has
 * expired. Returns 1 with one line in warn ("node2.crt expires in 12 days,
 * on 2026-12-04; run 'raftfs certs renew --node 2'"), 0 when both are good
 * for longer, or a negative errno with the reason in warn.
 */
int net_certs_expiry_warning(const char *dir, uint64_t node_id, int64_t now,
			     char *warn, size_t warn_size);

/* Read the certificate at path and say who it names. -EINVAL when it names
 * no raftfs identity or more than one. */
int net_cert_identity(const char *path, struct net_identity *id, char *err,
		      size_t err_size);

/* ====================================================================== */
/* Transport                                                              */
/* ====================================================================== */

/*
 * struct net: one node's endpoint. It listens on options.listen, keeps one
 * outbound TLS 1.3 connection to every peer (dialled from the listen
 * address as source address, so a firewall rule between two addresses cuts
 * exactly that link) and accepts the peers' connections. Each node sends
 * everything — requests and responses — on its own outbound connection;
 * inbound connections only receive (and carry the answers to admin
 * requests back to an administrator).
 *
 * Both sides authenticate: the peer's certificate must chain to the cluster
 * CA and name the same cluster id; the dialer checks it reached the node id
 * it dialled, the acceptor that the certificate names a known peer and that
 * every Raft message's `from` is that node. An admin certificate may make
 * admin requests but never send Raft traffic.
 *
 * Threads: one I/O thread per struct net owns the sockets (epoll). The
 * callbacks below run on that thread and must not block for long; net_send
 * and net_admin_reply may be called from any thread (also from a callback)
 * and never wait for the network: they encode on the caller's thread and
 * queue, dropping (with an error) when the peer's queue is full or the peer
 * is not connected — Raft tolerates lost messages.
 */

enum net_log_level {
	NET_LOG_ERROR = 0,
	NET_LOG_WARN = 1,
	NET_LOG_INFO = 2,
	NET_LOG_DEBUG = 3,
};

struct net_peer_address {
	uint64_t id;
	char address[RAFT_MAX_ADDRESS]; /* "host:port" */
};

struct net_options {
	uint64_t id;        /* this node */
	const char *listen; /* "host:port", also the source address */
	const char *ca_file;
	const char *cert_file; /* this node's certificate (names id) */
	const char *key_file;
	uint32_t n_peers;
	struct net_peer_address peers[RAFT_MAX_MEMBERS];

	uint32_t idle_timeout_ms;    /* about two election timeouts: an
					inbound connection silent this long
					is closed; TCP_USER_TIMEOUT too */
	uint32_t connect_timeout_ms; /* TCP connect plus TLS handshake */
	uint32_t backoff_min_ms;     /* reconnect delay, doubled per failure */
	uint32_t backoff_max_ms;     /* up to this, with jitter */
	uint64_t max_queue_bytes;    /* per peer; beyond it sends drop */
	uint32_t max_queue_frames;
	uint32_t max_inbound;        /* accepted connections at once */

	/* A Raft message from a peer; m and its entries are valid during the
	 * call only. */
	void (*on_raft)(void *ctx, const struct raft_message *m);
	/* A snapshot chunk or acknowledgment from a peer (valid during the
	 * call only). NULL: they are ignored. */
	void (*on_chunk)(void *ctx, const struct raft_chunk *c);
	/* An admin request on inbound connection conn_id from `who`; answer
	 * with net_admin_reply (now or later). NULL: requests are ignored. */
	void (*on_admin)(void *ctx, uint64_t conn_id,
			 const struct net_identity *who,
			 const struct net_admin_msg *req);
	/* The outbound connection to peer came up or went down. "Up" is
	 * this side's TLS handshake done: in TLS 1.3 the acceptor checks
	 * the dialer's certificate after that, so a refused dialer sees up,
	 * then down, and what it sent in between is lost. */
	void (*on_peer)(void *ctx, uint64_t peer, bool up);
	/* One log line (no newline); NULL: no logging. */
	void (*log)(void *ctx, int level, const char *line);
	void *ctx;
};

/* Defaults for everything but the addresses, files and callbacks. */
void net_options_default(struct net_options *opts, uint64_t id);

struct net;

/*
 * Load the certificates (checking that cert_file names this node of the
 * CA's cluster), resolve addresses, listen and start the I/O thread.
 * Errors: -EINVAL bad options or certificates, -EADDRINUSE, -ENOMEM...,
 * with one line in err.
 */
int net_create(const struct net_options *opts, struct net **out, char *err,
	       size_t err_size);
/* Stop the I/O thread, close every connection, free everything. */
void net_destroy(struct net *n);

/*
 * Queue m for peer m->to (m->from must be this node). Encoded here, on the
 * caller's thread; entries with data NULL get their payload from payload
 * (see net_raft_frame_encode). Returns 0, or: -ENOENT unknown peer,
 * -ENOTCONN not connected, -ENOBUFS queue full (the message is dropped in
 * both cases), -EINVAL/-EMSGSIZE a bad message, -ENOMEM.
 */
int net_send(struct net *n, const struct raft_message *m,
	     net_payload_fn payload, void *payload_ctx);

/* Queue a snapshot chunk for peer c->to (c->from must be this node); as
 * net_send, same errors. */
int net_send_chunk(struct net *n, const struct raft_chunk *c);

/* Answer an admin request on inbound connection conn_id. -ENOENT when the
 * connection is gone, -ENOBUFS when its queue is full. */
int net_admin_reply(struct net *n, uint64_t conn_id,
		    const struct net_admin_msg *resp);

/*
 * Membership changes, from any thread. net_peer_add dials a new peer (and
 * accepts its certificate from then on); net_peer_remove closes the peer's
 * connections, drops its queue and refuses its certificate from then on.
 * Both take effect on the I/O thread right after they return. Errors:
 * -EEXIST already a peer (or this node), -ENOENT not a peer, -EINVAL a bad
 * id or address, -ENOSPC RAFT_MAX_MEMBERS peers already.
 */
int net_peer_add(struct net *n, uint64_t id, const char *address);
int net_peer_remove(struct net *n, uint64_t id);

struct net_peer_stats {
	bool up;               /* outbound connection established */
	uint64_t queued_bytes; /* encoded, not yet written to the socket */
	uint64_t sent_frames;
	uint64_t dropped_frames; /* refused by net_send */
	uint64_t connects;       /* outbound connections established */
};

/* -ENOENT for an unknown peer. */
int net_peer_stats(struct net *n, uint64_t peer, struct net_peer_stats *st);

/*
 * A blocking admin client (`raftfs status --connect HOST:PORT --certs DIR`):
 * connect to address with the given certificate (admin.crt, or a node's),
 * check that the server is a node of the same cluster, send one request and
 * wait for the response with the same request id, all within timeout_ms.
 * The response's payload is copied into resp_buf (resp->payload points
 * there). Errors: -ETIMEDOUT, -ECONNREFUSED and other connect errors,
 * -EPROTO a TLS or identity failure, -EBADMSG a bad response, -EMSGSIZE
 * resp_buf too small; one line in err.
 */
struct net_client_options {
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	uint32_t timeout_ms;
	/* NULL, or a "host" or "host:port" to dial from (a node asking its
	 * peers dials from its listen address, as its Raft traffic does, so
	 * a firewall rule between two addresses cuts both alike). */
	const char *source;
};

int net_admin_call(const char *address, const struct net_client_options *o,
		   const struct net_admin_msg *req, uint8_t *resp_buf,
		   size_t resp_size, struct net_admin_msg *resp, char *err,
		   size_t err_size);

struct net_stats {
	uint32_t inbound; /* accepted connections open */
	/* Bytes allocated for frames being received. A buffer grows only by
	 * doubling when the bytes that arrived fill it, never to a length a
	 * frame header claims. */
	uint64_t receive_buffer_bytes;
};

void net_stats_get(struct net *n, struct net_stats *st);

/* The port the listener is bound to (useful with port 0). */
uint16_t net_listen_port(const struct net *n);

#endif
